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
from collections.abc import Iterable
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
)
from .schema import Usage
from .targets.registry import KINDS, PLATFORMS, cost_rules, free_types

__all__ = ["CAPTURE_BYTES_PER_TOKEN", "DAYS_PER_MONTH", "HOURS_PER_MONTH", "NOT_ESTIMATED", "UNKNOWN", "Estimate",
           "LineItem", "Resource", "Serving", "estimate", "estimate_from_outputs", "total_text",
           "resources_from_preview", "summary", "with_owner_rates"]

RULES = cost_rules()
FREE = free_types()

# Log ingestion (flow logs, endpoint logs), DNS queries and image storage in registries are usage-billed and not
# estimated: their resources are listed as free above and the report's footnote says so.
NOT_ESTIMATED = ("log ingestion and storage", "per-GB data processing", "DNS queries", "KMS requests",
                 "registry storage of our serving images", "S3 access log storage")


def estimate(resources: Iterable[Resource], regions: dict[str, str], usage: Usage, lookup: Lookup,
             budget_monthly_usd: float | None = None, routing: dict[str, Any] | None = None) -> Estimate:
    """`routing`: the router's order of target components and the burst share (costInputs.routing), when the
    stack has one: the first routed target is planned for the load (less the burst share, if set), each next
    for what the ones before cannot serve at their maximum replicas."""
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


def estimate_from_outputs(resources: Iterable[Resource], outputs: dict[str, Any], lookup: Lookup,
                          usage: dict[str, Any] | None = None) -> Estimate:
    """Price `resources` with the regions, usage profile, budget and owner's rates the stack exported
    (`awsRegion`, `gcpRegion`, `costInputs`); `usage` overrides the profile (to compare two commits at the same
    load)."""
    inputs = outputs.get("costInputs") or {}
    regions = {name: outputs[f"{name}Region"] for name in PLATFORMS if outputs.get(f"{name}Region")}
    return estimate(resources, regions, Usage.from_wire(usage or inputs.get("usage")),
                    with_owner_rates(lookup, inputs.get("platforms") or {}), inputs.get("budgetMonthlyUsd"),
                    inputs.get("routing"))


def with_owner_rates(lookup: Lookup, platforms: dict[str, Any]) -> Lookup:
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


def resources_from_preview(graph: dict[str, Any]) -> list[Resource]:
    """The engine's view of a `selfhost preview --json` stack document."""
    names = {r["urn"]: r["name"] for r in graph["resources"]}
    return [Resource(r["type"], r["name"], names.get(r["parent"]) if r.get("parent") else None, r["inputs"])
            for r in graph["resources"] if r.get("custom", True)]


def total_text(usd: float, unpriced: int) -> str:
    """A monthly total as it may be shown: never a partial sum passed off as the whole."""
    text = f"${usd:,.2f}"
    return f"at least {text} + {unpriced} item{'s' * (unpriced != 1)} unpriced" if unpriced else text


def summary(est: Estimate) -> dict[str, Any]:
    """The short form the program exports as its `costEstimate` output."""
    low, expected, high = est.total()
    unpriced = est.unpriced_count()
    out: dict[str, Any] = {
        "monthlyUsd": {"min": round(low, 2), "expected": round(expected, 2), "max": round(high, 2)},
        "total": total_text(expected, unpriced),
        "complete": not unpriced,
        "unpricedItems": unpriced,
        "usdPer1mTokens": None if est.usd_per_1m_tokens is None else round(est.usd_per_1m_tokens, 4),
    }
    if est.budget_monthly_usd is not None:
        out["budgetMonthlyUsd"] = est.budget_monthly_usd
        out["withinBudget"] = not est.over_budget
    return out
