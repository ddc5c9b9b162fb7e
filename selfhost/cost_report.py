"""`selfhost cost`: price a stack's previewed graph and report it as a table, JSON or a pull request comment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from components.cost import Estimate, estimate_from_outputs, resources_from_preview, total_text
from components.cost import to_json as to_json  # the one serializer, with the engine (the program exports it too)

from .parallel import StackFailure
from .project import ProjectError, load_project


def price_preview(graph: dict[str, Any], lookup, usage: dict[str, Any] | None = None) -> Estimate:
    """Price one stack document of `selfhost preview --json` with the one estimate function
    (`components.cost.estimate_from_outputs`). The usage profile and budget are the stack's own (its `costInputs`
    output) unless `usage` overrides them (to compare two commits at the same load)."""
    return estimate_from_outputs(resources_from_preview(graph), graph.get("outputs", {}), lookup, usage)


def usd(value: float | None) -> str:
    if value is None:
        return "unknown"
    if 0 < abs(value) < 0.1:  # unit prices: keep their significant digits ($0.005, $0.045)
        return f"${value:.4f}".rstrip("0")
    return f"${value:,.2f}" if abs(value) < 1000 else f"${value:,.0f}"


def unit_usd(value: float | None, confidence: str = "list") -> str:
    """A unit price with its significant digits: $1.515, $0.045, $37.69; a derived one says how trusted."""
    if value is None:
        return "unknown"
    whole, decimals = f"{value:,.4f}".split(".")
    text = f"${whole}.{decimals.rstrip('0').ljust(2, '0')}"
    return text if confidence == "list" else f"{text} (derived, {confidence})"


def total_usd(report: dict[str, Any], which: str) -> str:
    """A total of a report (or of a `costEstimate` output) as a table shows it: "at least $X + N items unpriced"
    while anything is unpriced (components.cost.total_text writes it)."""
    return total_text(report["totals"][which], report.get("unpricedItems", 0), usd)


def budget_state(report: dict[str, Any]) -> str | None:
    """The budget verdict of a report (or a `costEstimate` output): "within", "over", or "not known" while the
    total is a lower bound under the budget; None without a budget."""
    budget = report.get("budget")
    return None if not budget else {True: "within", False: "over"}.get(budget["withinBudget"], "not known")


NONE = "none"
"""What a cost diff shows for the side where an item does not exist (before an added one, after a removed one):
never "unknown", which is an item that exists and has no price."""


def diff_cells(row: dict[str, Any]) -> tuple[str, str, str]:
    """A `diff` row's before, after and change as text and markdown show them."""
    before = NONE if row["change"] == "added" else usd(row["beforeUsd"])
    after = NONE if row["change"] == "removed" else usd(row["afterUsd"])
    return before, after, _signed(row["deltaUsd"])


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
    unknown = report.get("unpricedItems", report["unknownItems"])
    lines += ["| | min | expected | max |", "|---|---:|---:|---:|",
              f"| **Monthly total** (730 h) | {total_usd(report, 'min')} | {total_usd(report, 'expected')} | "
              f"{total_usd(report, 'max')} |"]
    if base is not None:
        bt = base["totals"]
        # A change between two totals is only known when both are whole.
        whole = not unknown and not base.get("unpricedItems")
        lines.append(f"| {base_ref or 'base'} | {total_usd(base, 'min')} | {total_usd(base, 'expected')} | "
                     f"{total_usd(base, 'max')} |")
        lines.append("| **Change** | " + " | ".join(_signed(t[k] - bt[k] if whole else None)
                                                   for k in ("min", "expected", "max")) + " |")
    lines.append("")
    if unknown:
        lines.append(f"**Incomplete: {report['total']}.** {unknown} item(s) have no known price; the totals are "
                     "lower bounds.")
    derived = [i for i in report["items"] if i.get("confidence", "list") != "list"]
    if derived:
        lines.append(f"{len(derived)} item(s) are priced from derived figures (no first-party price was reachable): "
                     "each says its confidence and its source gives the derivation.")
    state = budget_state(report)
    if state:
        budget = usd(report["budget"]["monthlyUsd"])
        lines.append(f"Budget {budget}/month: expected cost is {'**over**' if state == 'over' else state} budget."
                     if state != "not known" else
                     f"Budget {budget}/month: not known whether the expected cost ({report['total']}) is within it.")
    u = report["usage"]
    per_m = report["usdPer1mTokens"]
    lines.append(f"At {u['requestsPerDay']:,} requests/day ({u['inputTokensPerRequest']} in + "
                 f"{u['outputTokensPerRequest']} out tokens, {u['hoursPerDay']:g} busy hours/day): "
                 f"**{usd(per_m)} per 1M tokens**.")
    lines.append("")
    if report.get("routing"):
        lines += [routing_text(report), ""]
    lines += _capacity_markdown(report)
    lines += _adapters_markdown(report)
    if base is not None:
        rows = diff(base, report)
        lines += [f"#### Change against `{base_ref or 'base'}`", ""]
        if rows:
            lines += ["| change | resource | item | before | after | delta |", "|---|---|---|---:|---:|---:|"]
            lines += [f"| {r['change']} | `{r['resource']}` | {r['description']} | " + " | ".join(diff_cells(r)) + " |"
                      for r in rows]
        else:
            lines.append("No cost change.")
        lines.append("")
    lines += ["<details><summary>Per resource (expected monthly)</summary>", "",
              "| resource | item | quantity/month | unit price | min | expected | max |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for i in report["items"]:
        m = i["monthlyUsd"] or {}
        lines.append(f"| `{i['resource']}` | {i['description']} | {i['quantity']['expected']:,.1f} {i['unit']} | "
                     f"{unit_usd(i['unitUsd'], i.get('confidence', 'list'))} | {usd(m.get('min'))} | "
                     f"{usd(m.get('expected'))} | "
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
    if report.get("chart"):
        from .charts import mermaid

        lines += [mermaid(report["chart"]), ""]
    lines.append(f"_Not estimated: {', '.join(report['notEstimated'])}. Prices: see each item's source._")
    return "\n".join(lines) + "\n"


def service_level_text(report: dict[str, Any]) -> str:
    level = report.get("serviceLevel") or {}
    parts = []
    if level.get("minTokensPerSecondPerStream"):
        parts.append(f">= {level['minTokensPerSecondPerStream']:g} tokens/s per stream")
    if level.get("maxTimeToFirstTokenSeconds"):
        parts.append(f"first token <= {level['maxTimeToFirstTokenSeconds']:g} s")
    return " and ".join(parts) or "no service level (saturation)"


def routing_text(report: dict[str, Any]) -> str:
    """How a router splits the load, as planned: each routed endpoint's requests/day."""
    share = report["routing"]["burstShare"]
    planned = ", ".join(f"`{s['resource']}` {s['plannedRequestsPerDay']:,.0f}" for s in report["serving"]
                        if s.get("plannedRequestsPerDay") is not None)
    how = (f"{share:.0%} of requests past the first (burstShare)" if share else
           "each next target planned for what the ones before cannot serve at their maximum replicas")
    return f"Behind the router, in order {' -> '.join(report['routing']['order'])}: {how}; requests/day: {planned}."


def adapters_text(serving: dict[str, Any]) -> str:
    """What a serving endpoint's line adds for the LoRA adapters its replicas serve beside the base model: the
    adapters by name, on the same replicas (one endpoint, not one each); empty without adapters."""
    names = serving.get("adapters") or []
    return f" + {len(names)} LoRA adapter{'s' * (len(names) != 1)} ({', '.join(names)})" if names else ""


def capacity_rows(report: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(endpoint, "service level" | "saturation", point) for each serving endpoint with a capacity."""
    rows = []
    for s in report["serving"]:
        for label, key in (("service level", "atServiceLevel"), ("saturation", "saturation")):
            if s.get(key):
                rows.append((s["resource"], label, s[key]))
    return rows


def _capacity_markdown(report: dict[str, Any]) -> list[str]:
    rows = capacity_rows(report)
    if not rows:
        return []
    lines = [f"One replica, planned at the service level ({service_level_text(report)}) and at saturation:", "",
             "| endpoint | at | concurrent requests | tokens/s per stream | first token | output tokens/s | "
             "requests/s | $/1M tokens |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for resource, label, p in rows:
        lines.append(f"| `{resource}` | {label} | {p['concurrency']:,} | {p['tokensPerSecondPerStream']:,.1f} | "
                     f"{p['timeToFirstTokenSeconds']:.2f} s | {p['outputTokensPerSecond']:,.0f} | "
                     f"{p['requestsPerSecond']:,.2f} | {usd(p['usdPer1mTokens'])} |")
    missed = [s["resource"] for s in report["serving"] if s.get("serviceLevelMet") is False]
    if missed:
        lines.append("")
        lines.append(f"**Service level not met** by {', '.join(f'`{m}`' for m in missed)} even at one stream: "
                     "planned at one stream; a faster GPU, fp8 or a smaller model would meet it.")
    lines.append("")
    return lines


def _adapters_markdown(report: dict[str, Any]) -> list[str]:
    """A line for each serving endpoint with LoRA adapters (several adapters on one endpoint, not an endpoint
    each), and what sizing leaves out of their speed."""
    adapted = [s for s in report["serving"] if s.get("adapters")]
    if not adapted:
        return []
    return [*(f"`{s['resource']}` serves {s['model']}{adapters_text(s)} on the same replicas." for s in adapted),
            "", f"{adapted[0]['adaptersNote']}.", ""]


def _signed(value: float | None) -> str:
    if value is None:
        return "unknown"
    return ("+" if value > 0 else "-" if value < 0 else "") + usd(abs(value))


def previews_at_ref(project_root: Path, ref: str,
                    stacks: list[str]) -> dict[str, dict[str, Any] | StackFailure | None]:
    """`selfhost preview --json` of each of `stacks` as committed at `ref`, run from one temporary git worktree
    with that commit's own code: one process for them all (`preview --all --json` when there are several, its
    stacks in parallel as ever), not a worktree and an interpreter's start-up per stack. None for a stack that
    does not exist there. A stack over its budget at `ref` has its graph all the same; one that cannot be previewed
    there is a `StackFailure` (kind `base`) with what that preview printed, the others going on. Raises
    CalledProcessError when git cannot check `ref` out."""
    with tempfile.TemporaryDirectory(prefix="selfhost-base-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(project_root), "worktree", "add", "--detach", "--quiet", str(tree), ref],
                       check=True, capture_output=True, text=True)
        try:
            try:
                at_ref = load_project(tree)
                present = [s for s in stacks if at_ref.stack_file(s).exists()]
            except ProjectError:  # no project at `ref` yet: every stack is new
                present = []
            graphs: dict[str, dict[str, Any] | StackFailure | None] = dict.fromkeys(stacks)
            if present:
                graphs.update(_preview_tree(tree, ref, present))
            return graphs
        finally:
            subprocess.run(["git", "-C", str(project_root), "worktree", "remove", "--force", str(tree)],
                           capture_output=True, text=True)


def _preview_tree(tree: Path, ref: str, stacks: list[str]) -> dict[str, dict[str, Any] | StackFailure]:
    which = [stacks[0]] if len(stacks) == 1 else ["--all"]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    try:
        run = subprocess.run([sys.executable, "-m", "selfhost.cli", "preview", *which, "--json", "--project",
                              str(tree)], capture_output=True, text=True, cwd=tree, env=env, timeout=BASE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return dict.fromkeys(stacks, StackFailure("base", f"its preview at {ref} took over {BASE_TIMEOUT_S} s"))
    try:
        doc = json.loads(run.stdout) if run.stdout.strip() else {"stacks": []}
    except json.JSONDecodeError:
        doc = {"stacks": []}
    graphs = {g["stack"]: g for g in doc.get("stacks", [doc])}
    # The exit code is not the verdict: 3 (over budget) comes with the graph, and under --all, which previews every
    # stack at `ref` (those this branch deleted too), another stack's failure says nothing of the ones asked for.
    failure = StackFailure("base", f"its preview at {ref} failed:\n{run.stderr.strip()}")
    return {s: graphs.get(s, failure) for s in stacks}


BASE_TIMEOUT_S = 600  # every stack at the base together: seconds when it works, so only a hang comes near it
