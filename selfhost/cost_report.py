"""`selfhost cost`: price a stack's previewed graph and report it as a table, JSON or a pull request comment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from components.cost import NOT_ESTIMATED, Estimate, LineItem, estimate_from_outputs, resources_from_preview


def price_preview(graph: dict[str, Any], lookup, usage: dict[str, Any] | None = None) -> Estimate:
    """Price one stack document of `selfhost preview --json`. The usage profile and budget are the stack's own
    (its `costInputs` output) unless `usage` overrides them (to compare two commits at the same load)."""
    return estimate_from_outputs(resources_from_preview(graph), graph.get("outputs", {}), lookup, usage)


def to_json(stack: str, est: Estimate) -> dict[str, Any]:
    low, expected, high = est.total()
    u = est.usage
    return {
        "stack": stack,
        "hoursPerMonth": 730,
        "usage": {"hoursPerDay": u.hours_per_day, "requestsPerDay": u.requests_per_day,
                  "inputTokensPerRequest": u.input_tokens_per_request,
                  "outputTokensPerRequest": u.output_tokens_per_request, "tokensPerMonth": u.tokens_per_month},
        "totals": {"min": low, "expected": expected, "max": high},
        "unknownItems": len(est.unknown),
        "items": [_item_json(i) for i in est.items],
        "freeResources": len(est.free),
        "unpricedTypes": sorted(set(est.unpriced)),
        "notEstimated": list(NOT_ESTIMATED),
        "serving": [{"resource": s.resource, "model": s.model,
                     "replicas": dict(zip(("min", "expected", "max"), s.replicas, strict=True)),
                     "replicaRequestsPerSecond": s.replica_requests_per_s, "replicasNeeded": s.needed_replicas}
                    for s in est.serving],
        "usdPer1mTokens": est.usd_per_1m_tokens,
        "apiComparison": est.api_comparison(),
        "budget": {"monthlyUsd": est.budget_monthly_usd, "withinBudget": not est.over_budget}
        if est.budget_monthly_usd is not None else None,
    }


def _item_json(i: LineItem) -> dict[str, Any]:
    monthly = i.monthly
    return {"resource": i.resource, "type": i.type, "component": i.component, "description": i.description,
            "unit": i.unit, "quantity": dict(zip(("min", "expected", "max"), i.quantity, strict=True)),
            "unitUsd": i.unit_usd,
            "monthlyUsd": dict(zip(("min", "expected", "max"), monthly, strict=True)) if monthly else None,
            "source": i.source, "note": i.note}


def usd(value: float | None) -> str:
    if value is None:
        return "unknown"
    if 0 < abs(value) < 0.1:  # unit prices: keep their significant digits ($0.005, $0.045)
        return f"${value:.4f}".rstrip("0")
    return f"${value:,.2f}" if abs(value) < 1000 else f"${value:,.0f}"


def unit_usd(value: float | None) -> str:
    """A unit price with its significant digits: $1.515, $0.045, $37.69."""
    if value is None:
        return "unknown"
    whole, decimals = f"{value:,.4f}".split(".")
    return f"${whole}.{decimals.rstrip('0').ljust(2, '0')}"


def diff(base: dict[str, Any] | None, head: dict[str, Any]) -> list[dict[str, Any]]:
    """Per line item: added, removed or changed in expected monthly cost between two reports."""
    key = lambda i: (i["resource"], i["type"], i["unit"], i["description"].split(" ")[0])  # noqa: E731
    before = {key(i): i for i in (base or {}).get("items", [])}
    after = {key(i): i for i in head["items"]}
    rows = []
    for k in sorted(before.keys() | after.keys()):
        b, a = before.get(k), after.get(k)
        old = (b["monthlyUsd"] or {}).get("expected") if b else None
        new = (a["monthlyUsd"] or {}).get("expected") if a else None
        change = "added" if b is None else "removed" if a is None else "changed" if old != new else None
        if change:
            item = a or b
            assert item is not None  # k is a key of `before` or `after`
            rows.append({"change": change, "resource": k[0], "description": item["description"],
                         "beforeUsd": old, "afterUsd": new,
                         "deltaUsd": None if (b and old is None) or (a and new is None) else (new or 0) - (old or 0)})
    return rows


def markdown(report: dict[str, Any], base: dict[str, Any] | None = None, base_ref: str | None = None) -> str:
    t = report["totals"]
    lines = [f"### selfhost-llm cost estimate: `{report['stack']}`", ""]
    unknown = report["unknownItems"]
    lines += ["| | min | expected | max |", "|---|---:|---:|---:|",
              f"| **Monthly total** (730 h) | {usd(t['min'])} | {usd(t['expected'])} | {usd(t['max'])} |"]
    if base is not None:
        bt = base["totals"]
        lines.append(f"| {base_ref or 'base'} | {usd(bt['min'])} | {usd(bt['expected'])} | {usd(bt['max'])} |")
        lines.append(f"| **Change** | {_signed(t['min'] - bt['min'])} | {_signed(t['expected'] - bt['expected'])} "
                     f"| {_signed(t['max'] - bt['max'])} |")
    lines.append("")
    if unknown:
        lines.append(f"**{unknown} item(s) have no known price** and are not in the totals.")
    budget = report.get("budget")
    if budget:
        verdict = "within" if budget["withinBudget"] else "**over**"
        lines.append(f"Budget {usd(budget['monthlyUsd'])}/month: expected cost is {verdict} budget.")
    u = report["usage"]
    per_m = report["usdPer1mTokens"]
    lines.append(f"At {u['requestsPerDay']:,} requests/day ({u['inputTokensPerRequest']} in + "
                 f"{u['outputTokensPerRequest']} out tokens, {u['hoursPerDay']:g} busy hours/day): "
                 f"**{usd(per_m)} per 1M tokens**.")
    lines.append("")
    if base is not None:
        rows = diff(base, report)
        lines += [f"#### Change against `{base_ref or 'base'}`", ""]
        if rows:
            lines += ["| change | resource | item | before | after | delta |", "|---|---|---|---:|---:|---:|"]
            lines += [f"| {r['change']} | `{r['resource']}` | {r['description']} | {usd(r['beforeUsd'])} | "
                      f"{usd(r['afterUsd'])} | {_signed(r['deltaUsd'])} |" for r in rows]
        else:
            lines.append("No cost change.")
        lines.append("")
    lines += ["<details><summary>Per resource (expected monthly)</summary>", "",
              "| resource | item | quantity/month | unit price | min | expected | max |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for i in report["items"]:
        m = i["monthlyUsd"] or {}
        lines.append(f"| `{i['resource']}` | {i['description']} | {i['quantity']['expected']:,.1f} {i['unit']} | "
                     f"{unit_usd(i['unitUsd'])} | {usd(m.get('min'))} | {usd(m.get('expected'))} | "
                     f"{usd(m.get('max'))} |")
    lines += ["", "</details>", ""]
    if report["apiComparison"]:
        lines += ["| pay-per-token API | $/1M in / out | same tokens per month | break-even requests/day |",
                  "|---|---:|---:|---|"]
        for a in report["apiComparison"]:
            even = a["breakEvenRequestsPerDay"]
            lines.append(f"| {a['provider']} {a['model']} | {a['usdPer1mInput']:g} / {a['usdPer1mOutput']:g} | "
                         f"{usd(a['monthlyUsd'])} | {'-' if even is None else f'{even:,.0f}'} ({a['breakEvenNote']}) |")
        lines.append("")
    lines.append(f"_Not estimated: {', '.join(report['notEstimated'])}. Prices: see each item's source._")
    return "\n".join(lines) + "\n"


def _signed(value: float | None) -> str:
    if value is None:
        return "unknown"
    return ("+" if value > 0 else "-" if value < 0 else "") + usd(abs(value))


def preview_at_ref(project_root: Path, ref: str, stack: str) -> dict[str, Any] | None:
    """`selfhost preview --json` of `stack` as committed at `ref`, run from a temporary git worktree with that
    commit's own code. None when the stack does not exist there."""
    with tempfile.TemporaryDirectory(prefix="selfhost-base-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(project_root), "worktree", "add", "--detach", "--quiet", str(tree), ref],
                       check=True, capture_output=True, text=True)
        try:
            if not (tree / "stacks" / f"Pulumi.{stack}.yaml").exists():
                return None
            env = {**os.environ, "PYTHONPATH": str(tree)}
            run = subprocess.run([sys.executable, "-m", "selfhost.cli", "preview", stack, "--json", "--project",
                                  str(tree)], capture_output=True, text=True, cwd=tree, env=env, timeout=600)
            if run.returncode != 0:
                raise RuntimeError(f"preview of {stack} at {ref} failed:\n{run.stderr.strip()}")
            return json.loads(run.stdout)
        finally:
            subprocess.run(["git", "-C", str(project_root), "worktree", "remove", "--force", str(tree)],
                           capture_output=True, text=True)

