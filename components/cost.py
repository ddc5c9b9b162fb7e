"""The cost engine: prices a captured resource graph for a 730-hour month.

Input is the graph a preview captured (resource type, name, parent component, inputs in the provider's wire
format), never the stack config: what is priced is what would be deployed. Each resource type that costs
money has a rule, registered by the platform or target kind that declares it (components/targets/registry.py);
types that cost nothing are listed as free by the same owners; anything else is reported as unpriced.
min / expected / max come from autoscaling bounds and the usage profile. A price the catalog lacks is
unknown: the item shows no amount and the totals say how many items they leave out, never counting it as 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .cost_rules import (
    CAPTURE_BYTES_PER_TOKEN,
    DAYS_PER_MONTH,
    HOURS_PER_MONTH,
    UNKNOWN,
    Ctx,
    Estimate,
    LineItem,
    Lookup,
    Resource,
    Serving,
    with_owner_rates,
)
from .schema import Usage
from .sizing import LORA_THROUGHPUT_NOTE, Throughput
from .targets.registry import KINDS, PLATFORMS, cost_rules, free_types

__all__ = ["CAPTURE_BYTES_PER_TOKEN", "DAYS_PER_MONTH", "HOURS_PER_MONTH", "NOT_ESTIMATED", "UNKNOWN", "Estimate",
           "LineItem", "Resource", "Serving", "estimate", "estimate_from_outputs", "total_text",
           "resources_from_preview", "to_json"]

RULES = cost_rules()
FREE = free_types()

# Log ingestion (flow logs, endpoint logs), DNS queries and image storage in registries are usage-billed and not
# estimated: their resources are listed as free above and the report's footnote says so.
NOT_ESTIMATED = ("log ingestion and storage", "per-GB data processing", "DNS queries", "KMS requests",
                 "registry storage of our serving images", "S3 access log storage")


def estimate(resources: Iterable[Resource], regions: dict[str, str], usage: Usage, lookup: Lookup,
             budget_monthly_usd: float | None = None, routing: dict[str, Any] | None = None,
             adapters: Mapping[str, list[str]] | None = None) -> Estimate:
    """`routing`: the router's order of target components and the burst share (costInputs.routing), when the
    stack has one: the first routed target is planned for the load (less the burst share, if set), each next
    for what the ones before cannot serve at their maximum replicas. `adapters`: the LoRA adapters each target
    component serves (costInputs.adapters), shown with its serving endpoints."""
    route = list((routing or {}).get("order") or [])
    # Routed targets are priced in the router's order, each knowing what the ones before it took.
    resources = sorted(resources, key=lambda r: route.index(r.component) if r.component in route else -1)
    siblings: dict[str | None, list[Resource]] = {}
    for r in resources:
        siblings.setdefault(r.component, []).append(r)
    def stored_bytes(platform: str) -> float:
        return sum(kind.stored_bytes(resources, usage) for kind in KINDS.values() if kind.platform == platform)

    ctx = Ctx(regions, usage, lookup, siblings, stored_bytes)
    est = Estimate(items=[], free=[], unpriced=[], usage=usage, budget_monthly_usd=budget_monthly_usd, route=route,
                   burst_share=(routing or {}).get("burstShare"))
    routed = _RoutedLoad(est, usage)
    for r in resources:
        if r.type.startswith("selfhost:") or r.type.startswith("pulumi:"):
            continue
        rule = RULES.get(r.type)
        if rule is not None:
            before = len(est.serving)
            rule_ctx = routed.ctx(ctx, r.component)
            est.items += rule(r, rule_ctx, est)
            for s in est.serving[before:]:
                s.component = r.component
                s.adapters = tuple((adapters or {}).get(r.component or "", ()))
                if r.component in route:
                    s.planned_requests_per_day = rule_ctx.usage.requests_per_day
        elif r.type in FREE:
            est.free.append(r.name)
        else:
            est.unpriced.append(r.type)
    return est


class _RoutedLoad:
    """The load each routed target is planned for, worked out in the router's order as their rules run."""

    def __init__(self, est: Estimate, usage: Usage):
        self.est, self.usage, self.left = est, usage, float(usage.requests_per_day)
        self.current: str | None = None
        self.assigned = 0.0

    def ctx(self, ctx: Ctx, component: str | None) -> Ctx:
        if component not in self.est.route:
            return ctx
        if component != self.current:
            self._settle()
            self.current = component
            first = self.est.route.index(component) == 0
            share = self.est.burst_share if first and self.est.burst_share else 0.0
            self.assigned = self.left * (1 - share)
        return dataclasses.replace(ctx, usage=self.usage.model_copy(
            update={"requests_per_day": round(self.assigned)}))

    def _settle(self) -> None:
        """What the previous target serves: its load up to what its maximum replicas serve."""
        done = [s for s in self.est.serving if s.component == self.current]
        if self.current is None:
            return
        capacity = sum(s.replica_requests_per_s * self.usage.hours_per_day * 3600 * s.replicas[2] for s in done)
        self.left -= min(self.assigned, capacity) if done else 0.0


def regions_of(outputs: Mapping[str, Any]) -> dict[str, str]:
    """Platform -> the stack's region, from the `<platform>Region` outputs its foundation exported."""
    return {name: outputs[f"{name}Region"] for name in PLATFORMS if outputs.get(f"{name}Region")}


def estimate_from_outputs(resources: Iterable[Resource], outputs: Mapping[str, Any], lookup: Lookup,
                          usage: dict[str, Any] | None = None) -> Estimate:
    """The one estimate of a stack: `resources` (a captured graph: the program's own capture for its
    `costEstimate` output, a preview's graph for `selfhost cost`, `check` and `--base`, the engine's at policy
    time for the policy pack) priced with the inputs the stack exports in `outputs`: each platform's region
    (`awsRegion`, `gcpRegion`, ...) and `costInputs` (usage profile, budget, owner's rates, routing, adapters). Every
    caller goes through here, so they all price alike. `usage` overrides the profile (to compare two commits at
    the same load)."""
    inputs = outputs.get("costInputs") or {}
    return estimate(resources, regions_of(outputs), Usage.from_wire(usage or inputs.get("usage")),
                    with_owner_rates(lookup, inputs.get("platforms") or {}), inputs.get("budgetMonthlyUsd"),
                    inputs.get("routing"), inputs.get("adapters"))


def resources_from_preview(graph: dict[str, Any]) -> list[Resource]:
    """The engine's view of a `selfhost preview --json` stack document."""
    names = {r["urn"]: r["name"] for r in graph["resources"]}
    return [Resource(r["type"], r["name"], names.get(r["parent"]) if r.get("parent") else None, r["inputs"])
            for r in graph["resources"] if r.get("custom", True)]


def total_text(usd: float, unpriced: int, money: Callable[[float], str] = lambda v: f"${v:,.2f}") -> str:
    """A monthly total as it may be shown, the only writer of one: never a partial sum passed off as the whole
    ("at least $X + N items unpriced"). `money` formats the amount (a table rounds to whole dollars)."""
    text = money(usd)
    return f"at least {text} + {unpriced} item{'s' * (unpriced != 1)} unpriced" if unpriced else text


def to_json(stack: str | None, est: Estimate, *, full: bool = True) -> dict[str, Any]:
    """The one serialization of an estimate. In full: `selfhost cost --format json`, and what the table and the
    pull request comment are written from. With `full=False`, its headline only (no stack name, line items,
    capacity or charts): the program's `costEstimate` output, what `pulumi preview` and `selfhost preview` show
    and the budget check of `selfhost preview` reads. Totals are in cents and $ per 1M tokens to 4 places, the
    same in both. `budget.withinBudget` is None while a total that is under the budget is only a lower bound."""
    low, expected, high = est.total()
    unpriced = est.unpriced_count()
    per_1m = est.usd_per_1m_tokens
    budget = est.budget_monthly_usd
    headline: dict[str, Any] = {
        "hoursPerMonth": HOURS_PER_MONTH,
        "totals": {"min": round(low, 2), "expected": round(expected, 2), "max": round(high, 2)},
        "total": total_text(expected, unpriced),
        "complete": not unpriced,
        "unpricedItems": unpriced,
        "usdPer1mTokens": None if per_1m is None else round(per_1m, 4),
        "budget": None if budget is None else {
            "monthlyUsd": budget, "withinBudget": False if est.over_budget else None if unpriced else True},
    }
    if not full:
        return headline
    u = est.usage
    return {
        "stack": stack,
        **headline,
        "usage": {"hoursPerDay": u.hours_per_day, "requestsPerDay": u.requests_per_day,
                  "inputTokensPerRequest": u.input_tokens_per_request,
                  "outputTokensPerRequest": u.output_tokens_per_request, "tokensPerMonth": u.tokens_per_month},
        "unknownItems": len(est.unknown),
        "items": [_item_json(i) for i in est.items],
        "freeResources": len(est.free),
        "unpricedTypes": sorted(set(est.unpriced)),
        "notEstimated": list(NOT_ESTIMATED),
        "serviceLevel": {"minTokensPerSecondPerStream": u.min_tokens_per_second_per_stream,
                         "maxTimeToFirstTokenSeconds": u.max_time_to_first_token_seconds},
        "serving": [_serving_json(s, u.input_tokens_per_request + u.output_tokens_per_request) for s in est.serving],
        "apiComparison": est.api_comparison(),
        "chart": est.chart(),
        "routing": {"order": est.route, "burstShare": est.burst_share} if est.route else None,
    }


def _serving_json(s: Serving, tokens_per_request: int) -> dict[str, Any]:
    cap = s.plan.capacity

    def point(t: Throughput | None) -> dict[str, Any] | None:
        if t is None:
            return None
        per_1m = (s.replica_usd_per_hour / (t.requests_per_s * 3600 * tokens_per_request) * 1e6
                  if s.replica_usd_per_hour is not None and t.requests_per_s else None)
        return {"concurrency": t.concurrency, "tokensPerSecondPerStream": t.decode_tokens_per_s_per_stream,
                "timeToFirstTokenSeconds": t.ttft_s, "outputTokensPerSecond": t.output_tokens_per_s,
                "requestsPerSecond": t.requests_per_s, "usdPer1mTokens": per_1m}

    return {"resource": s.resource, "model": s.model, "adapters": list(s.adapters),
            "adaptersNote": LORA_THROUGHPUT_NOTE if s.adapters else None,
            "replicas": dict(zip(("min", "expected", "max"), s.replicas, strict=True)),
            "replicaRequestsPerSecond": s.replica_requests_per_s, "replicasNeeded": s.needed_replicas,
            "replicaUsdPerHour": s.replica_usd_per_hour, "plannedRequestsPerDay": s.planned_requests_per_day,
            "serviceLevelMet": cap.service_level_met if cap else None,
            "atServiceLevel": point(cap.at_service_level if cap else None),
            "saturation": point(cap.saturation if cap else None),
            "saturationLimit": cap.limit if cap else None}


def _item_json(i: LineItem) -> dict[str, Any]:
    monthly = i.monthly
    return {"resource": i.resource, "type": i.type, "component": i.component, "description": i.description,
            "unit": i.unit, "quantity": dict(zip(("min", "expected", "max"), i.quantity, strict=True)),
            "unitUsd": i.unit_usd,
            "monthlyUsd": dict(zip(("min", "expected", "max"), monthly, strict=True)) if monthly else None,
            "source": i.source, "confidence": i.confidence, "note": i.note}
