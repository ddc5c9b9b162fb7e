"""The cost engine's vocabulary: the resources it prices, line items, the estimate, and the helpers rules are
written with. Rules themselves live with what declares the resources they price (the target kinds and the
platforms, components/targets/); components/cost.py runs them over a captured graph.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard, TypeVar

from .catalog.api_prices import api_price
from .catalog.engines import QUANT_BYTES_PER_PARAM
from .catalog.models import ModelFacts
from .schema import DAYS_PER_MONTH, HOURS_PER_MONTH, UNKNOWN, Usage
from .sizing import Capacity, Hardware, LoraSlots, capacity, engine_limits

# Captured request/response JSON, bytes per token (UTF-8 text plus JSON framing).
CAPTURE_BYTES_PER_TOKEN = 8

Lookup = Callable[[str, str, str, str], Any]
Rule = Callable[["Resource", "Ctx", "Estimate"], list["LineItem"]]


@dataclass(frozen=True)
class Resource:
    type: str
    name: str
    component: str | None
    inputs: dict[str, Any]


@dataclass
class LineItem:
    resource: str
    type: str
    component: str | None
    description: str
    unit: str
    quantity: tuple[float, float, float]
    """Units per month at min / expected / max."""
    unit_usd: float | None
    source: str = ""
    note: str = ""
    confidence: str = "list"
    """The price's: `list`, or high/medium/low for a derived one (catalog/pricing)."""

    @property
    def monthly(self) -> tuple[float, float, float] | None:
        if self.unit_usd is None:
            return None
        low, expected, high = self.quantity
        return low * self.unit_usd, expected * self.unit_usd, high * self.unit_usd


@dataclass
class Serving:
    """What one serving endpoint can do at the configured load (for $/1M tokens and warnings)."""

    resource: str
    model: str
    replicas: tuple[int, int, int]
    plan: Plan
    replica_usd_per_hour: float | None = None
    component: str | None = None
    """The component (target) it belongs to; the engine sets it."""
    planned_requests_per_day: float | None = None
    """Behind a router: the share of the load it was planned for (the engine sets it)."""
    adapters: tuple[str, ...] = ()
    """The LoRA adapters its replicas serve beside the base model (costInputs.adapters; the engine sets it)."""

    @property
    def replica_requests_per_s(self) -> float:
        return self.plan.requests_per_s

    @property
    def needed_replicas(self) -> int:
        return self.plan.need


@dataclass
class Estimate:
    items: list[LineItem]
    free: list[str]
    unpriced: list[str]
    """Resource types with no rule: neither priced nor known to be free."""
    usage: Usage
    serving: list[Serving] = field(default_factory=list)
    budget_monthly_usd: float | None = None
    route: list[str] = field(default_factory=list)
    """The components of the targets behind a router, in the order it tries them (empty: no router)."""
    burst_share: float | None = None
    """The share of requests past the first routed target, when the user sets it (else from capacity)."""

    def total(self) -> tuple[float, float, float]:
        known = [m for m in (i.monthly for i in self.items) if m is not None]
        return sum(m[0] for m in known), sum(m[1] for m in known), sum(m[2] for m in known)

    @property
    def unknown(self) -> list[LineItem]:
        return [i for i in self.items if i.unit_usd is None]

    @property
    def usd_per_1m_tokens(self) -> float | None:
        tokens = self.usage.tokens_per_month
        if not tokens or not self.serving or self.unpriced_count():
            return None
        return self.total()[1] / tokens * 1e6

    @property
    def over_budget(self) -> bool:
        return self.budget_monthly_usd is not None and self.total()[1] > self.budget_monthly_usd

    def api_comparison(self) -> list[dict[str, Any]]:
        """Monthly cost of the same tokens on each API, and the break-even load: the fewest requests/day at
        which self-hosting costs no more than the API, with as many replicas as that load needs."""
        u = self.usage
        rows = []
        for key in u.compare_with:
            api = api_price(key)
            assert api is not None  # Usage validated the names
            per_request = api.request_usd(u.input_tokens_per_request, u.output_tokens_per_request)
            rows.append({
                "api": key, "provider": api.provider, "model": api.model,
                "usdPer1mInput": api.usd_per_1m_input, "usdPer1mOutput": api.usd_per_1m_output,
                "monthlyUsd": per_request * u.requests_per_day * DAYS_PER_MONTH,
                **dict(zip(("breakEvenRequestsPerDay", "breakEvenNote"), self.break_even(per_request), strict=True)),
                "source": api.source,
            })
        return rows

    def unpriced_count(self) -> int:
        """Line items without a price plus resources no rule prices: what a total cannot include."""
        return len(self.unknown) + len(self.unpriced)

    def _fleet(self) -> list[tuple[Serving, float]] | str:
        """The serving endpoints that share the load, in the order they take it, each with one replica's
        requests/day; or why the load cannot be varied."""
        if self.unpriced_count():
            return "unknown prices"
        if self.route:
            by_component = {s.component: s for s in self.serving}
            if len(self.serving) != len(self.route) or any(c not in by_component for c in self.route):
                return "every serving endpoint must be behind the router to compare"
            fleet = [by_component[c] for c in self.route]
        elif len(self.serving) != 1:
            return "one serving endpoint needed to compare (or a router in front of them)"
        else:
            fleet = self.serving
        if any(s.replica_usd_per_hour is None or not s.replica_requests_per_s for s in fleet):
            return "unknown replica capacity"
        return [(s, s.replica_requests_per_s * self.usage.hours_per_day * 3600) for s in fleet]

    def split(self, requests_per_day: float, fleet: Sequence[tuple[Serving, float]]) -> list[float] | None:
        """The requests/day each endpoint of `fleet` serves: the first all it can at its maximum replicas (all
        but `burst_share` when that is set), each next what is left up to its own maximum; None when some are
        left over."""
        loads, left = [], requests_per_day
        for i, (s, per_replica) in enumerate(fleet):
            wanted = left * (1 - self.burst_share) if i == 0 and self.burst_share and len(fleet) > 1 else left
            loads.append(min(wanted, per_replica * s.replicas[2]))
            left -= loads[-1]
        return loads if left <= 1e-9 * max(requests_per_day, 1.0) else None

    def _replicas_for(self, requests_per_day: float, fleet: Sequence[tuple[Serving, float]]) -> list[int] | None:
        loads = self.split(requests_per_day, fleet)
        if loads is None:
            return None
        return [max(s.replicas[0], math.ceil(load / per_replica - 1e-9))
                for (s, per_replica), load in zip(fleet, loads, strict=True)]

    def _monthly_with(self, fleet: Sequence[tuple[Serving, float]], counts: Sequence[int]) -> float:
        """The expected monthly cost with `counts[i]` replicas of each endpoint in the busy hours (their minimum
        outside them)."""
        busy = self.usage.hours_per_day / 24
        total = self.total()[0]
        for (s, _), n in zip(fleet, counts, strict=True):
            assert s.replica_usd_per_hour is not None
            low = s.replicas[0]
            total += (low * (1 - busy) + n * busy - low) * s.replica_usd_per_hour * HOURS_PER_MONTH
        return total

    def self_hosted_monthly(self, requests_per_day: float) -> float | None:
        """The stack's expected monthly cost at another load: as many replicas in the busy hours as the load
        needs at the service level (behind a router, split as `split` says). None when not computable (unknown
        prices, several endpoints without a router, unknown capacity) or beyond what the maximum replicas
        serve."""
        fleet = self._fleet()
        if isinstance(fleet, str):
            return None
        counts = self._replicas_for(requests_per_day, fleet)
        return None if counts is None else self._monthly_with(fleet, counts)

    def _capacity(self, fleet: Sequence[tuple[Serving, float]]) -> float:
        """The most requests/day the endpoints serve together, at their maximum replicas."""
        if self.burst_share and len(fleet) > 1:
            # The first serves only its share, so it reaches its maximum at a higher total.
            first, per_first = fleet[0]
            rest = sum(per * s.replicas[2] for s, per in fleet[1:])
            return min(per_first * first.replicas[2] / (1 - self.burst_share) + rest,
                       per_first * first.replicas[2] + rest)
        return sum(per * s.replicas[2] for s, per in fleet)

    def chart(self, points: int = 21) -> dict[str, Any] | None:
        """Monthly cost against requests/day for the stack and each compared API, on one grid from 0 to past the
        break-even points (within what the maximum replicas serve): the data of the break-even picture."""
        fleet = self._fleet()
        if isinstance(fleet, str) or self.self_hosted_monthly(0) is None or not self.usage.compare_with:
            return None
        capacity = self._capacity(fleet)
        evens = [row["breakEvenRequestsPerDay"] for row in self.api_comparison() if row["breakEvenRequestsPerDay"]]
        wanted = max([self.usage.requests_per_day * 2, *(e * 1.5 for e in evens)])
        top = min(_nice(min(wanted, capacity) or capacity), capacity)
        grid = [top * i / (points - 1) for i in range(points)]
        series = [{"name": "self-hosted (this stack)", "monthlyUsd": [self.self_hosted_monthly(x) for x in grid]}]
        u = self.usage
        for key in u.compare_with:
            api = api_price(key)
            assert api is not None
            per_request = api.request_usd(u.input_tokens_per_request, u.output_tokens_per_request)
            series.append({"name": f"{api.provider} {api.model}",
                           "monthlyUsd": [per_request * x * DAYS_PER_MONTH for x in grid]})
        return {"requestsPerDay": grid, "series": series, "currentRequestsPerDay": u.requests_per_day}

    def break_even(self, api_usd_per_request: float) -> tuple[float | None, str]:
        """Requests/day where the API's bill reaches the self-hosted cost. The self-hosted cost is a staircase
        (one step per replica added); each step is tried from the lowest load up: its cost over the API's price
        per request/day is the break-even if the step holds it. No value when prices are unknown, when several
        endpoints share the load without a router, or when the API stays cheaper at every load the maximum
        replicas can serve (the note says)."""
        fleet = self._fleet()
        if isinstance(fleet, str):
            return None, fleet
        per_day = api_usd_per_request * DAYS_PER_MONTH
        capacity = self._capacity(fleet)
        start = 0.0
        for end in self._step_ends(fleet, capacity):
            counts = self._replicas_for(end, fleet)
            assert counts is not None  # within capacity
            requests = self._monthly_with(fleet, counts) / per_day
            if requests <= end * (1 + 1e-12):
                # Within the step the cost is flat: the API's bill reaches it there, or already at the step's start.
                return max(requests, start), "with " + " + ".join(
                    f"{n} replica{'s' * (n != 1)}" + (f" of {s.component}" if len(fleet) > 1 else "")
                    for (s, _), n in zip(fleet, counts, strict=True))
            start = end
        served = f"{capacity:,.0f} requests/day"
        return None, (f"the API is cheaper at every load up to {fleet[0][0].replicas[2]} replicas ({served})"
                      if len(fleet) == 1 else f"the API is cheaper at every load the endpoints serve ({served})")

    def _step_ends(self, fleet: Sequence[tuple[Serving, float]], capacity: float) -> list[float]:
        """Where the cost staircase steps up, to `capacity`: the totals at which an endpoint's n-th replica is
        fully used (n from its minimum to its maximum), in order. Between two of them every endpoint keeps its
        replicas."""
        ends = {capacity}
        for i, (s, per_replica) in enumerate(fleet):
            for n in range(max(s.replicas[0], 1), s.replicas[2] + 1):
                total = self._total_where(i, n * per_replica, fleet, capacity)
                if total is not None and 0 < total < capacity:
                    ends.add(total)
        return sorted(ends)

    def _total_where(self, i: int, load: float, fleet: Sequence[tuple[Serving, float]], capacity: float
                     ) -> float | None:
        """The total requests/day at which endpoint `i` serves `load` (its share grows with the total), by
        bisection; None if it never does."""
        def served(total: float) -> float:
            loads = self.split(total, fleet)
            assert loads is not None
            return loads[i]
        if served(capacity) < load * (1 - 1e-12):
            return None
        low, high = 0.0, capacity
        for _ in range(100):
            mid = (low + high) / 2
            low, high = (mid, high) if served(mid) < load else (low, mid)
        return high


def _nice(x: float) -> float:
    """`x` rounded up to 1, 2 or 5 times a power of ten (a chart's axis end)."""
    if x <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(x))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= x - 1e-9)


# ---------------------------------------------------------------------------------------------------------
# Rules


@dataclass
class Ctx:
    regions: dict[str, str]
    usage: Usage
    lookup: Lookup
    siblings: dict[str | None, list[Resource]]
    stored_bytes: Callable[[str], float] = lambda platform: 0.0
    """Bytes the targets keep in a platform's storage (staged weights, captured requests)."""

    def sibling(self, r: Resource, token: str) -> Resource | None:
        """The resource of type `token` in the same component as `r` (a group beside its template, ...)."""
        return next((s for s in self.siblings.get(r.component, []) if s.type == token), None)

    def price(self, provider: str, service: str, sku: str, region: str | None = None
              ) -> tuple[float | None, str, str]:
        """The unit price, its source with date, and its confidence; in the platform's region unless the
        resource names its own (a Hugging Face endpoint's vendor)."""
        found = self.lookup(provider, service, self.regions.get(provider, "") if region is None else region, sku)
        if not found:
            return None, "", "list"
        return found.usd, f"{found.source} ({found.as_of})", getattr(found, "confidence", "list")

    def item(self, r: Resource, provider: str, service: str, sku: str, unit: str, quantity: tuple[float, float, float],
             description: str, note: str = "", region: str | None = None) -> LineItem:
        usd, source, confidence = self.price(provider, service, sku, region)
        if usd is None:
            where = self.regions.get(provider, "?") if region is None else region
            note = f"no price for {provider}/{service}/{sku} in {where}" + (f"; {note}" if note else "")
        return LineItem(r.name, r.type, r.component, description, unit, quantity, usd, source, note, confidence)


def flat(n: float) -> tuple[float, float, float]:
    return (n, n, n)


_T = TypeVar("_T")


def known(value: _T | None) -> TypeGuard[_T]:
    """Whether an input is there and known (not None, not the preview's unknown marker)."""
    return value is not None and value != UNKNOWN


def replica_hours(replicas: tuple[int, int, int], usage: Usage) -> tuple[float, float, float]:
    low, expected, high = replicas
    busy = usage.hours_per_day / 24
    return (low * HOURS_PER_MONTH, (low * (1 - busy) + expected * busy) * HOURS_PER_MONTH, high * HOURS_PER_MONTH)


@dataclass(frozen=True)
class Plan:
    """Replicas the busy hours need at the usage's service level, clamped to the scaling bounds."""

    expected: int
    need: int
    """Unclamped."""
    capacity: Capacity | None
    """One replica at the service level and at saturation (None: the model does not fit, or is unknown)."""

    @property
    def requests_per_s(self) -> float:
        return self.capacity.at_service_level.requests_per_s if self.capacity else 0.0


def serving_dtypes(tags: Mapping[str, Any] | None) -> tuple[str, float]:
    """The weights' quantization and the bytes per KV cache element a serving resource's identity tags (AWS
    tags, GCP labels: TargetKind.identity_tags) name; the defaults when they name none."""
    tags = tags or {}
    quantization = str(tags.get("selfhost-quantization", "none"))
    return (quantization if quantization in QUANT_BYTES_PER_PARAM else "none",
            1.0 if tags.get("selfhost-kv-cache") == "fp8" else 2.0)


def lora_of(tags: Mapping[str, Any] | None, key: str = "selfhost-lora") -> LoraSlots | None:
    """The LoRA slots a serving resource's identity tags (or annotations) name (`<slots>x<rank>`), or None."""
    match = re.fullmatch(r"(\d+)x(\d+)", str((tags or {}).get(key, "")))
    return LoraSlots(int(match[1]), int(match[2])) if match else None


def plan_replicas(facts: ModelFacts | None, hw: Hardware, low: int, high: int, usage: Usage,
                  quantization: str = "none", max_streams: int | None = None, kv_bytes: float = 2.0,
                  lora: LoraSlots | None = None) -> Plan:
    """`max_streams`: where the engine answers fewer requests at once than its defaults (llama.cpp: one). `lora`:
    the adapters' slots, whose memory the KV cache does not have."""
    if facts is None:
        return Plan(low, low, None)
    found = capacity(facts, quantization, hw, usage.input_tokens_per_request, usage.output_tokens_per_request,
                     usage.service_level, engine_limits(max_streams, hw), kv_bytes, lora)
    if found is None:
        return Plan(high, high, None)
    rps = found.at_service_level.requests_per_s
    need = math.ceil(usage.busy_requests_per_s / rps) if usage.requests_per_day else 0
    return Plan(min(max(need, low), high), need, found)


def monthly(provider: str, service: str, sku: str, description: str, note: str = ""):
    def rule(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
        return [ctx.item(r, provider, service, sku, "month", flat(1), description, note)]
    return rule


def hourly(provider: str, service: str, sku: str, description: str, note: str = ""):
    def rule(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
        return [ctx.item(r, provider, service, sku, "hour", flat(HOURS_PER_MONTH), description, note)]
    return rule




def with_owner_rates(lookup: Lookup, platforms: Mapping[str, Any]) -> Lookup:
    """`lookup`, answering for hardware the owner prices (a cluster's `ownerRates`: per GPU-hour and per
    node-hour, with their basis and date) from those rates; everything else from the price catalog."""
    from .catalog.pricing import Price

    def find(provider: str, service: str, region: str, sku: str) -> Any:
        rates = (platforms.get(provider) or {}).get("ownerRates")
        if rates is None:
            return lookup(provider, service, region, sku)
        usd = {"gpu-hour": rates.get("gpuHourUsd"), "node-hour": rates.get("nodeHourUsd"),
               "cpu-hour": rates.get("cpuHourUsd")}.get(service)
        return None if usd is None else Price(float(usd), "hour", f"{rates.get('basis')} ({provider}.cost)",
                                              str(rates.get("asOf")))
    return find
