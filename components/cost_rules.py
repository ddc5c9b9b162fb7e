"""The cost engine's vocabulary: the resources it prices, line items, the estimate, and the helpers rules are
written with. Rules themselves live with what declares the resources they price (the target kinds and the
platforms, components/targets/); components/cost.py runs them over a captured graph.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeGuard, TypeVar

from .catalog.api_prices import API_PRICES
from .catalog.models import ModelFacts
from .schema import DAYS_PER_MONTH, HOURS_PER_MONTH, UNKNOWN, Usage
from .sizing import PLANNING_CONCURRENCY, max_concurrency, throughput

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
    replica_requests_per_s: float
    needed_replicas: int
    replica_usd_per_hour: float | None = None


@dataclass
class Estimate:
    items: list[LineItem]
    free: list[str]
    unpriced: list[str]
    """Resource types with no rule: neither priced nor known to be free."""
    usage: Usage
    serving: list[Serving] = field(default_factory=list)
    budget_monthly_usd: float | None = None

    def total(self) -> tuple[float, float, float]:
        known = [m for m in (i.monthly for i in self.items) if m is not None]
        return sum(m[0] for m in known), sum(m[1] for m in known), sum(m[2] for m in known)

    @property
    def unknown(self) -> list[LineItem]:
        return [i for i in self.items if i.unit_usd is None]

    @property
    def usd_per_1m_tokens(self) -> float | None:
        tokens = self.usage.tokens_per_month
        if not tokens or not self.serving or self.unknown:
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
            api = API_PRICES[key]
            per_request = api.request_usd(u.input_tokens_per_request, u.output_tokens_per_request)
            rows.append({
                "api": key, "provider": api.provider, "model": api.model,
                "usdPer1mInput": api.usd_per_1m_input, "usdPer1mOutput": api.usd_per_1m_output,
                "monthlyUsd": per_request * u.requests_per_day * DAYS_PER_MONTH,
                **dict(zip(("breakEvenRequestsPerDay", "breakEvenNote"), self.break_even(per_request), strict=True)),
                "source": api.source,
            })
        return rows

    def break_even(self, api_usd_per_request: float) -> tuple[float | None, str]:
        """Requests/day where the API's bill reaches the self-hosted cost, scanning replica counts from the
        minimum up: n replicas cost the rest of the stack plus n hosts in the busy hours, and serve
        n x (requests/s) over the busy hours. No value when prices are unknown, when several endpoints share
        the load, or when the API stays cheaper at every load the maximum replicas can serve (the note says)."""
        if self.unknown:
            return None, "unknown prices"
        if len(self.serving) != 1:
            return None, "one serving endpoint needed to compare"
        s = self.serving[0]
        if s.replica_usd_per_hour is None or not s.replica_requests_per_s:
            return None, "unknown replica capacity"
        low, _, high = s.replicas
        busy = self.usage.hours_per_day / 24
        rest = self.total()[0] - low * s.replica_usd_per_hour * HOURS_PER_MONTH
        capacity = 0.0
        for n in range(low, high + 1):
            monthly = rest + (low * (1 - busy) + n * busy) * s.replica_usd_per_hour * HOURS_PER_MONTH
            requests = monthly / (api_usd_per_request * DAYS_PER_MONTH)
            capacity = n * s.replica_requests_per_s * self.usage.hours_per_day * 3600
            if requests <= capacity:
                return requests, f"with {n} replica{'s' * (n > 1)}"
        return None, f"the API is cheaper at every load up to {high} replicas ({capacity:,.0f} requests/day)"


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

    def price(self, provider: str, service: str, sku: str) -> tuple[float | None, str]:
        found = self.lookup(provider, service, self.regions.get(provider, ""), sku)
        return (found.usd, f"{found.source} ({found.as_of})") if found else (None, "")

    def item(self, r: Resource, provider: str, service: str, sku: str, unit: str, quantity: tuple[float, float, float],
             description: str, note: str = "") -> LineItem:
        usd, source = self.price(provider, service, sku)
        if usd is None:
            note = f"no price for {provider}/{service}/{sku} in {self.regions.get(provider, '?')}" + (
                f"; {note}" if note else "")
        return LineItem(r.name, r.type, r.component, description, unit, quantity, usd, source, note)


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


def plan_replicas(facts: ModelFacts | None, gpu_count: int, memory_gib: float, bandwidth: float, tflops: float,
                  low: int, high: int, usage: Usage, quantization: str = "none", max_streams: int | None = None
                  ) -> tuple[int, float, int]:
    """Replicas the busy hours need (clamped to the bounds), one replica's requests/s, and the unclamped need.
    `max_streams`: where the engine answers fewer requests at once than memory would hold."""
    if facts is None:
        return low, 0.0, low
    tokens = usage.input_tokens_per_request + usage.output_tokens_per_request
    streams = min(max_concurrency(facts, quantization, gpu_count, memory_gib, tokens), PLANNING_CONCURRENCY,
                  max_streams or PLANNING_CONCURRENCY)
    if streams == 0:
        return high, 0.0, high
    rps = throughput(facts, quantization, bandwidth, tflops, gpu_count, streams, usage.input_tokens_per_request,
                     usage.output_tokens_per_request).requests_per_s
    need = math.ceil(usage.busy_requests_per_s / rps) if usage.requests_per_day else 0
    return min(max(need, low), high), rps, need


def monthly(provider: str, service: str, sku: str, description: str, note: str = ""):
    def rule(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
        return [ctx.item(r, provider, service, sku, "month", flat(1), description, note)]
    return rule


def hourly(provider: str, service: str, sku: str, description: str, note: str = ""):
    def rule(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
        return [ctx.item(r, provider, service, sku, "hour", flat(HOURS_PER_MONTH), description, note)]
    return rule


