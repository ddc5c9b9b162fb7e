"""`selfhost`: the offline workflow. Every command runs the real Pulumi program under Pulumi's mocks."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console, JustifyMethod
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree
from typer.core import TyperCommand

from .cost_report import (
    adapters_text,
    budget_state,
    capacity_rows,
    diff,
    diff_cells,
    markdown,
    previews_at_ref,
    price_preview,
    routing_text,
    service_level_text,
    to_json,
    total_usd,
    unit_usd,
    usd,
)
from .parallel import StackFailure
from .plan_diff import markdown as plan_markdown
from .plan_diff import plan_diff
from .plan_diff import text as plan_text
from .preview import Preview, project_root
from .prices import app as prices_app
from .project import Project, ProjectError, load_project
from .stage import stage

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
app.add_typer(prices_app, name="prices")
# Wide when piped (CI logs, PR comments): a tree line is cropped, not wrapped.
out = Console(highlight=False, emoji=False, width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True, highlight=False, emoji=False, soft_wrap=True)

EXIT_CONFIG = 2
EXIT_USAGE = 1
EXIT_BUDGET = 3


class _UsageExits1(TyperCommand):
    """`preview`, `cost`, `check`: a usage error (an unknown option, a value of the wrong type, a missing
    argument) exits 1, as their help says, not with click's 2, which is their invalid stack config."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except typer.TyperException as exc:
            if getattr(exc, "exit_code", None) == 2:  # click's UsageError, whatever its kind
                setattr(exc, "exit_code", EXIT_USAGE)  # noqa: B010 (TyperException's type has no exit_code)
            raise


@app.callback()
def _root() -> None:
    """Preview, cost and size the environments in stacks/, with no cloud account and no Pulumi CLI."""


@app.command(cls=_UsageExits1)
def preview(
    stack: Annotated[str | None, typer.Argument(help="Stack name: stacks/Pulumi.<stack>.yaml.")] = None,
    all_stacks: Annotated[bool, typer.Option("--all", help="Preview every stack in stacks/.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full resource graph as JSON.")] = False,
    base: Annotated[str | None, typer.Option(
        "--base", help="Git ref to compare with (e.g. origin/main): print what the change adds, changes and "
                       "replaces instead of the tree.")] = None,
    fmt: Annotated[str | None, typer.Option(
        "--format", help="With --base: text, or markdown (a pull request comment).", show_default="text")] = None,
    project_dir: Annotated[Path | None, typer.Option("--project", help="Project root (holds Pulumi.yaml).")] = None,
) -> None:
    """Run the Pulumi program for a stack under mocks: the resource tree, the inputs that matter, the outputs.

    With --base, the same stack is previewed at that git ref (in a temporary worktree, with that commit's code),
    and the output is the plan diff instead: resources added, removed and changed, each changed input old -> new
    (secrets never shown), and which changes replace a resource rather than update it, with a warning where that
    loses data, causes downtime or changes an address.

    Exit codes (the highest that applies): 0 ok; 2 invalid stack config (every problem listed); 3 expected monthly
    cost above the stack's budget.monthlyUsd (the program's costEstimate output, shown under Outputs); 1 no such
    stack or project, a bad option, or a --base that cannot be previewed.
    """
    if fmt is not None and (base is None or fmt not in ("text", "markdown")):
        _fail(f"--format {fmt!r}: allowed with --base: text, markdown", EXIT_USAGE)
    if base is not None and as_json:
        _fail("--base prints a plan diff, not the graph: drop --json (or run --json at each commit)", EXIT_USAGE)
    project, stacks = _select(stack, all_stacks, project_dir)
    runs = _Runs()
    previews: list[Preview] = [p for _, p in runs.previews(project, stacks)]

    if as_json:
        doc: Any = previews[0].to_json() if not all_stacks and previews else {"stacks": [p.to_json() for p in previews]}
        if previews or all_stacks:
            sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    elif base is not None:
        # The diff replaces the tree: a reviewer (and a pull request comment) wants what changes, and the tree of
        # an unchanged stack is dozens of lines around it. `selfhost preview <env>` still prints the tree.
        olds = _at_base(project, base, [p.stack for p in previews])
        for p in previews:
            old = olds[p.stack]
            if isinstance(old, StackFailure):
                runs.fail(p.stack, old)
                continue
            change = plan_diff(old, p.to_json(), base, str(project.root))
            sys.stdout.write(plan_markdown(change) + "\n" if fmt == "markdown" else plan_text(change))
            sys.stdout.flush()  # before any stack's error lines
    else:
        for p in previews:
            _print_preview(p)
    # The budget verdict is the program's own estimate, its `costEstimate` output: what `pulumi preview` shows.
    code = max([runs.code, *(_over_budget(p.stack, p.outputs.get("costEstimate"), f"; see `selfhost cost {p.stack}`")
                             for p in previews)])
    raise typer.Exit(code)


def _over_budget(stack: str, estimate: dict[str, Any] | None, hint: str = "") -> int:
    """EXIT_BUDGET, with an error line, when `estimate` (a `cost` report, or the program's `costEstimate` output:
    one serializer writes both) puts the expected monthly cost over the stack's budget; else 0."""
    if estimate is None or budget_state(estimate) != "over":
        return 0
    err.print(f"error: stack '{stack}': expected monthly cost {escape(total_usd(estimate, 'expected'))} is over its "
              f"budget {usd(estimate['budget']['monthlyUsd'])} (selfhost-llm:budget.monthlyUsd){hint}")
    return EXIT_BUDGET


def _at_base(project: Project, base: str, stacks: list[str]) -> dict[str, dict[str, Any] | StackFailure | None]:
    """The stacks' graphs at git ref `base` (None where a stack does not exist there, a `StackFailure` where its
    preview there failed), or exit 1 when the ref cannot be checked out."""
    try:
        return previews_at_ref(project.root, base, stacks) if stacks else {}
    except subprocess.CalledProcessError as exc:
        _fail(f"--base {base}: {exc.stderr or exc}", EXIT_USAGE)


def _select(stack: str | None, all_stacks: bool, project_dir: Path | None) -> tuple[Project, list[str]]:
    """The project and the stacks a command was asked for (exits 1 when there are none)."""
    try:
        project = load_project(project_root(project_dir))
    except ProjectError as exc:
        _fail(str(exc), EXIT_USAGE)
    stacks = project.stacks() if all_stacks else [stack] if stack else []
    if not stacks:
        known = project.stacks()
        _fail("name a stack or pass --all" + (f"; stacks: {', '.join(known)}" if known else ""), EXIT_USAGE)
    return project, stacks


class _Runs:
    """Previews the stacks asked for, several at once in worker processes (selfhost/parallel.py; as many as the
    cores, or SELFHOST_JOBS), handing them back in order; a stack that fails is reported and remembered in `code`,
    the others go on. While stacks run, a progress line on a terminal's stderr (none when it is not a terminal)."""

    def __init__(self) -> None:
        self.code = 0

    def previews(self, project: Project, stacks: list[str]) -> Iterator[tuple[str, Preview]]:
        from .parallel import preview_stacks

        status = err.status(f"previewing {len(stacks)} stacks") if err.is_terminal and len(stacks) > 1 else None
        finished: list[str] = []

        def done(stack: str) -> None:
            finished.append(stack)
            if status is not None:
                status.update(f"previewed {len(finished)}/{len(stacks)} stacks (last: {stack})")

        if status is not None:
            status.start()
        try:
            jobs = int(os.environ.get("SELFHOST_JOBS", "0") or 0) or None
            for name, result in preview_stacks(project, stacks, workers=jobs, on_done=done):
                if isinstance(result, StackFailure):
                    if status is not None:
                        status.stop()
                    self.fail(name, result)
                    continue
                yield name, result
        finally:
            if status is not None:
                status.stop()

    def fail(self, stack: str, failure: StackFailure) -> None:
        """Report a stack that could not be previewed (here, or with --base at the base ref); the others go on."""
        err.print(escape(failure.message) if failure.kind == "config" else
                  f"error: {escape(stack)}: {escape(failure.message)}")
        self.code = max(self.code, EXIT_CONFIG if failure.kind == "config" else EXIT_USAGE)


def _lookup():
    from components.catalog.pricing import lookup

    return lookup


@app.command(cls=_UsageExits1)
def cost(
    stack: Annotated[str | None, typer.Argument(help="Stack name: stacks/Pulumi.<stack>.yaml.")] = None,
    all_stacks: Annotated[bool, typer.Option("--all", help="Every stack in stacks/.")] = False,
    fmt: Annotated[str, typer.Option("--format", help="table, json or markdown (a pull request comment).")] = "table",
    base: Annotated[str | None, typer.Option("--base", help="Git ref to compare with (e.g. origin/main).")] = None,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Exit 5 when any item has no price (for CI: a total must be a whole).")] = False,
    plot_file: Annotated[Path | None, typer.Option(
        "--plot", help="Also draw the break-even chart into FILE.svg or FILE.png (one stack).")] = None,
    project_dir: Annotated[Path | None, typer.Option("--project", help="Project root (holds Pulumi.yaml).")] = None,
) -> None:
    """Monthly cost of a stack's previewed resources (730 h): min / expected / max from autoscaling bounds and
    the stack's usage profile, $ per 1M tokens, each replica at the service level and at saturation, and the
    break-even against pay-per-token APIs (a chart in the markdown, and with --plot).

    With --base, the same stack is previewed at that git ref (in a temporary worktree, with that commit's code)
    and the report shows what the change adds, removes and changes, at the current usage profile.

    A total never hides what it cannot price: "at least $X + N items unpriced". Exit codes (the highest that
    applies): 0 ok; 5 with --strict, an unpriced item; 3 expected monthly cost above the stack's budget.monthlyUsd;
    2 invalid stack config; 1 no such stack, bad option."""
    if fmt not in ("table", "json", "markdown"):
        _fail(f"--format {fmt!r}: allowed: table, json, markdown", EXIT_USAGE)
    if plot_file is not None and (all_stacks or plot_file.suffix not in (".svg", ".png")):
        _fail(f"--plot {plot_file}: one stack, into a .svg or .png file", EXIT_USAGE)
    project, stacks = _select(stack, all_stacks, project_dir)
    lookup = _lookup()
    runs = _Runs()
    graphs = {name: preview.to_json() for name, preview in runs.previews(project, stacks)}
    olds = _at_base(project, base, list(graphs)) if base is not None else {}
    reports: list[dict[str, Any]] = []
    bases: list[dict[str, Any] | None] = []  # with --base, one per report
    for name, graph in graphs.items():
        old = olds.get(name)
        if isinstance(old, StackFailure):
            runs.fail(name, old)
            continue
        reports.append(to_json(name, price_preview(graph, lookup)))
        if base is not None:
            usage = (graph["outputs"].get("costInputs") or {}).get("usage")
            bases.append(to_json(name, price_preview(old, lookup, usage)) if old else {"items": [], "totals": {
                "min": 0.0, "expected": 0.0, "max": 0.0}})
    if plot_file is not None and reports:
        _plot(reports[0], plot_file)
    if fmt == "json":
        docs = [{**r, **({"base": base, "diff": diff(b, r)} if base else {})}
                for r, b in zip(reports, bases or [None] * len(reports), strict=True)]
        sys.stdout.write(json.dumps(docs[0] if not all_stacks and docs else {"stacks": docs}, indent=2) + "\n")
    elif fmt == "markdown":
        for r, b in zip(reports, bases or [None] * len(reports), strict=True):
            sys.stdout.write(markdown(r, b, base) + "\n")
    else:
        for r, b in zip(reports, bases or [None] * len(reports), strict=True):
            _print_cost(r, b, base)
    code = max([runs.code, *(_over_budget(r["stack"], r) for r in reports)])
    incomplete = [r for r in reports if r["unpricedItems"]]
    if strict and incomplete:
        for r in incomplete:
            err.print(f"error: {r['stack']}: {r['unpricedItems']} item(s) unpriced ({escape(r['total'])}): "
                      + "; ".join(escape(f"{i['resource']}: {i['note']}") for i in r["items"] if i["unitUsd"] is None)
                      + "".join(f"; no cost rule for {t}" for t in r["unpricedTypes"]))
        code = max(code, EXIT_UNPRICED)
    raise typer.Exit(code)


EXIT_UNPRICED = 5
EXIT_QUOTA_SHORT = 6


@app.command()
def quota(
    stack: Annotated[str | None, typer.Argument(help="Stack name: stacks/Pulumi.<stack>.yaml.")] = None,
    all_stacks: Annotated[bool, typer.Option("--all", help="Every stack in stacks/.")] = False,
    fmt: Annotated[str, typer.Option("--format", help="table, json or markdown (a pull request comment).")] = "table",
    check_account: Annotated[bool, typer.Option(
        "--check", help="Read the account's applied quotas (AWS credentials; Google application-default "
        "credentials) and say, for each, enough / short by N / unknown.")] = False,
    project_dir: Annotated[Path | None, typer.Option("--project", help="Project root (holds Pulumi.yaml).")] = None,
) -> None:
    """The cloud quotas the stack's previewed plan needs before `pulumi up` can run it: each quota's service, its
    code or metric, the region, and the amount at the minimum and maximum replicas and during an update (a
    blue/green SageMaker update runs two fleets; a pool's rollout adds surge instances): SageMaker endpoint
    instances per type, EC2 vCPUs per instance class on demand and spot, Compute Engine GPUs per region and
    family, Vertex AI custom-model-serving GPUs. Capacity hints: whether spot spans enough types and zones, and
    whether the GPU is offered in the region.

    Offline this is the whole answer. With --check it compares with the account. Exit codes: 0 ok; 6 with
    --check, a quota short of the plan; 2 invalid stack config; 1 no such stack, bad option."""
    from .quota_report import markdown as quota_markdown
    from .quota_report import plan_of
    from .quota_report import to_json as quota_json

    if fmt not in ("table", "json", "markdown"):
        _fail(f"--format {fmt!r}: allowed: table, json, markdown", EXIT_USAGE)
    project, stacks = _select(stack, all_stacks, project_dir)
    runs = _Runs()
    reports = []
    for name, preview in runs.previews(project, stacks):
        quota_plan = plan_of(preview.to_json())
        statuses = None
        if check_account:
            from components.quota_check import check

            statuses = check(quota_plan.needs)
        reports.append(quota_json(name, quota_plan, statuses))
    if fmt == "json":
        sys.stdout.write(json.dumps(reports[0] if not all_stacks and reports else {"stacks": reports}, indent=2)
                         + "\n")
    elif fmt == "markdown":
        for r in reports:
            sys.stdout.write(quota_markdown(r) + "\n")
    else:
        for r in reports:
            _print_quota(r)
    short = any((n.get("check") or {}).get("state") == "short" for r in reports for n in r["needs"])
    raise typer.Exit(max(EXIT_QUOTA_SHORT if short else 0, runs.code))


def _print_quota(report: dict[str, Any]) -> None:
    from .quota_report import amount, quota_label

    if not report["needs"]:
        out.print(f"{report['stack']}: no cloud quota needed")
    else:
        table = Table(title=f"Stack {report['stack']}: quotas needed", title_justify="left")
        for column in ("service", "quota", "region", "unit", "at min", "at max", "in an update"):
            table.add_column(column, justify="right" if column.startswith(("at", "in")) else "left")
        if report["checked"]:
            table.add_column("limit", justify="right")
            table.add_column("state")
        for n in report["needs"]:
            row = [escape(str(v)) for v in (n["service"], quota_label(n), n["region"], n["unit"],
                                            amount(n["atMin"]), amount(n["atMax"]), amount(n["atUpdate"]))]
            if report["checked"]:
                c = n.get("check") or {}
                state = c.get("state", "unknown")
                row += ["unknown" if c.get("limit") is None else amount(c["limit"]),
                        f"[red]short by {amount(c['shortBy'])}[/]" if state == "short" else
                        "[green]enough[/]" if state == "enough" else "[yellow]unknown[/]"]
            table.add_row(*row)
        out.print(table)
    for n in report["needs"]:
        c = n.get("check") or {}
        if c.get("note") or c.get("increase"):
            out.print(f"  {escape(n['quotaName'])} ({n['region']}): {escape(c.get('note', ''))}"
                      + (f" To raise it: {escape(c['increase'])}" if c.get("state") == "short" else ""))
    for u in report["unknown"]:
        out.print(f"  [yellow]no quota known[/] for {escape(u)}")
    for h in report["capacityHints"]:
        color = "yellow" if h["severity"] == "warning" else "dim"
        out.print(f"  [{color}]capacity[/] {escape(h['resource'])}: {escape(h['message'])}")


def _plot(report: dict[str, Any], path: Path) -> None:
    if not report.get("chart"):
        _fail(f"--plot: no break-even chart for {report['stack']} (it needs one priced serving endpoint and an API "
              "to compare with)", EXIT_USAGE)
    try:
        from .charts import plot
        plot(report["chart"], path, f"{report['stack']}: monthly cost by load")
    except ImportError:
        _fail("--plot needs matplotlib, the `plot` extra: `make venv` (or `uv sync --extra plot`) installs it",
              EXIT_USAGE)
    err.print(f"wrote {path}")


def _print_cost(report: dict, base: dict | None, base_ref: str | None) -> None:
    table = Table(title=f"Stack {report['stack']}: monthly cost (730 h)", show_lines=False)
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("resource", "left"), ("item", "left"), ("quantity/month", "right"), ("unit price", "right"), ("min", "right"),
        ("expected", "right"), ("max", "right"))
    for col, justify in columns:
        table.add_column(col, justify=justify)
    for i in report["items"]:
        m = i["monthlyUsd"] or {}
        table.add_row(escape(i["resource"]), escape(i["description"]),
                      f"{i['quantity']['expected']:,.1f} {i['unit']}", unit_usd(i["unitUsd"], i["confidence"]),
                      usd(m.get("min")),
                      usd(m.get("expected")), usd(m.get("max")))
    table.add_row("[bold]total[/]", f"[yellow]{report['unpricedItems']} unpriced[/]" if report["unpricedItems"] else "",
                  "", "", total_usd(report, "min"), total_usd(report, "expected"), total_usd(report, "max"))
    out.print(table)
    if report["unpricedItems"]:
        out.print(f"[yellow]Incomplete:[/] {escape(report['total'])} a month; the totals are lower bounds.")
    u = report["usage"]
    out.print(f"At {u['requestsPerDay']:,} requests/day ({u['inputTokensPerRequest']} in + "
              f"{u['outputTokensPerRequest']} out tokens, {u['hoursPerDay']:g} busy h/day): "
              f"{usd(report['usdPer1mTokens'])} per 1M tokens")
    if report.get("routing"):
        out.print(f"  {routing_text(report)}")
    rows = capacity_rows(report)
    for s in report["serving"]:
        r = s["replicas"]
        planned = s.get("plannedRequestsPerDay")
        out.print(f"  {s['resource']}: {s['model']}{adapters_text(s)}, replicas {r['min']}..{r['max']} "
                  f"(expected {r['expected']}), "
                  f"one replica serves {s['replicaRequestsPerSecond']:.2f} req/s"
                  + (f", planned for {planned:,.0f} requests/day" if planned is not None else "")
                  + (f"; [yellow]the load needs {s['replicasNeeded']}[/]" if s["replicasNeeded"] > r["max"] else ""))
        for _, label, p in (row for row in rows if row[0] == s["resource"]):
            out.print(f"    {label:13} {p['concurrency']:>5,} concurrent: {p['tokensPerSecondPerStream']:,.1f} tok/s "
                      f"per stream, first token {p['timeToFirstTokenSeconds']:.2f} s, "
                      f"{p['outputTokensPerSecond']:,.0f} output tok/s, {usd(p['usdPer1mTokens'])} per 1M tokens "
                      "fully used")
        if s.get("adapters") and s.get("adaptersNote"):
            out.print(f"    {escape(s['adaptersNote'])}")
    if report["serving"]:
        out.print(f"  service level: {service_level_text(report)}"
                  + ("" if all(s.get("serviceLevelMet") is not False for s in report["serving"])
                     else " [yellow](not met even at one stream: planned at one)[/]"))
    state = budget_state(report)
    if state:
        verdict = {"within": "within", "over": "[red]over[/]"}.get(state, f"[yellow]not known[/] "
                                                                           f"({escape(report['total'])})")
        out.print(f"Budget {usd(report['budget']['monthlyUsd'])}/month: {verdict}")
    for a in report["apiComparison"]:
        even = a["breakEvenRequestsPerDay"]
        out.print(f"  vs {a['provider']} {a['model']}: {usd(a['monthlyUsd'])}/month for the same tokens; "
                  + (f"break-even at {even:,.0f} requests/day ({a['breakEvenNote']})" if even is not None
                     else f"no break-even: {a['breakEvenNote']}"))
    if base is not None:
        out.print(f"[bold]Change against {base_ref}[/]: expected {total_usd(base, 'expected')} -> "
                  f"{total_usd(report, 'expected')}")
        for row in diff(base, report):
            before, after, delta = diff_cells(row)
            out.print(f"  {row['change']:8} {escape(row['resource'])}: {escape(row['description'])} "
                      f"{before} -> {after} ({delta})")
    out.print()


EXIT_POLICY = 4


@app.command(cls=_UsageExits1)
def check(
    stack: Annotated[str | None, typer.Argument(help="Stack name: stacks/Pulumi.<stack>.yaml.")] = None,
    all_stacks: Annotated[bool, typer.Option("--all", help="Every stack in stacks/.")] = False,
    checkov: Annotated[Path | None, typer.Option(
        "--checkov", help="A Checkov JSON report (`-o json`) of the stacks' exports, each written as "
        "<stack>.json by `selfhost export`: say why each failed check stands.")] = None,
    project_dir: Annotated[Path | None, typer.Option("--project", help="Project root (holds Pulumi.yaml).")] = None,
) -> None:
    """Run the policy pack's rules (components/policies.py) on the previewed plan, offline: each violation with
    the resource, the rule's severity, its Checkov id and the fix; advisories; and where a platform makes a rule
    impossible, the exemption and why. With --checkov, each check Checkov failed on the stack's export, and why it
    stands: the rule of ours that reports it there, or the platform's note (a check not adopted, a scanner limit);
    a finding nothing explains is "unexplained". Exit codes (the highest that applies): 0 no mandatory violation
    (and no unexplained Checkov finding); 4 violations or unexplained findings; 2 invalid config; 1 no such stack,
    bad option, unreadable report."""
    from components.cost import resources_from_preview
    from components.policies import BY_ID, RULES, explain
    from components.policies import check as run_rules

    from .export import checkov_failures, terraform_plan

    project, stacks = _select(stack, all_stacks, project_dir)
    scanned: dict[str, list[tuple[str, str]]] | None = None
    if checkov is not None:
        try:
            scanned = checkov_failures(checkov.read_text())
        except (OSError, ValueError) as exc:
            _fail(f"--checkov {checkov}: {exc}", EXIT_USAGE)
    runs = _Runs()
    code = 0
    for name, preview in runs.previews(project, stacks):
        graph = preview.to_json()
        report = run_rules(resources_from_preview(graph), price_preview(graph, _lookup()), graph["outputs"])
        for label, findings in (("[red]violation[/]", report.violations), ("[yellow]advisory[/]", report.advisories),
                                ("[dim]exempt[/]", report.exemptions)):
            for f in findings:
                r = BY_ID[f.rule]
                ids = f" ({', '.join(r.checkov)})" if r.checkov else ""
                why = f"; exempt: {f.exempt}" if f.exempt else f"; fix: {r.fix}"
                severity = escape(f"[{r.severity}]")
                out.print(f"{name}: {label} {f.rule} {severity}{ids}: {escape(f.resource or 'stack')}: "
                          f"{escape(f.message)}{escape(why)}")
        verdict = "compliant" if report.passed else f"{len(report.violations)} mandatory violations"
        out.print(f"{name}: {verdict} ({len(RULES)} rules; {len(report.advisories)} advisories, "
                  f"{len(report.exemptions)} exemptions)")
        code = max(code, 0 if report.passed else EXIT_POLICY)
        if scanned is None:
            continue
        export = terraform_plan(graph)
        if not export.addresses:
            out.print(f"{name}: nothing for Checkov to scan (no resource of it has a Terraform type)")
            continue
        if name not in scanned:
            out.print(f"{name}: [yellow]not in the Checkov report[/] (scan `selfhost export {name} --out "
                      f"{name}.json`)")
            continue
        name_of = {address: urn.rsplit("::", 1)[-1] for urn, address in export.addresses.items()}
        unexplained = 0
        for check_id, address in scanned[name]:
            why_label, why = explain(check_id, name_of.get(address, address), report)
            unexplained += why_label == "unexplained"
            colour = "red" if why_label in ("unexplained", "violation") else "dim"
            # One line each, never wrapped: the plan job's summary reads them.
            out.print(f"{name}: checkov {check_id} {escape(address)}: [{colour}]{why_label}[/]: {escape(why)}",
                      soft_wrap=True)
        failed = len(scanned[name])
        out.print(f"{name}: Checkov failed {failed} check{'' if failed == 1 else 's'}, {unexplained} unexplained")
        code = max(code, EXIT_POLICY if unexplained else 0)
    raise typer.Exit(max(code, runs.code))


@app.command()
def platforms(
    stack: Annotated[str | None, typer.Argument(
        help="Stack name: stacks/Pulumi.<stack>.yaml (default: every registered platform).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print them as a JSON list.")] = False,
    project_dir: Annotated[Path | None, typer.Option("--project", help="Project root (holds Pulumi.yaml).")] = None,
) -> None:
    """The registered platforms: each one's name, title, default region and what a deploy needs to reach it (its
    login), and whether `selfhost quota --check` reads its quotas. With a stack, only the platforms its config
    uses (its targets' kinds stand on, and the cluster its router runs on), each with the stack's region there:
    the deploy workflow picks its login steps from `selfhost platforms <stack> --json`. Offline: the config alone,
    no preview. Exit codes: 0 ok; 2 invalid stack config; 1 no such stack."""
    from components.config import load_environment
    from components.schema import ConfigError
    from components.targets.registry import PLATFORMS

    from .project import stack_config

    env = None
    if stack is not None:
        project, _ = _select(stack, False, project_dir)
        try:
            config, secret_keys = stack_config(project, stack)
            env = load_environment(stack, config, set(secret_keys))
        except ProjectError as exc:
            _fail(str(exc), EXIT_USAGE)
        except ConfigError as exc:
            err.print(escape(str(exc)))
            raise typer.Exit(EXIT_CONFIG) from None
    used = set(PLATFORMS) if env is None else set(env.platforms_used)
    rows: list[dict[str, Any]] = [
        {"name": p.name, "title": p.title, "defaultRegion": p.default_region, "login": p.login,
         "quotaCheck": p.quota_reader() is not None, **({"region": p.region(env)} if env is not None else {})}
        for p in PLATFORMS.values() if p.name in used]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if not rows:
        out.print(f"{escape(stack or '')}: no platform (no targets and no router)")
        return
    table = Table("platform", "title", "region" if env is not None else "default region", "quota check", "login",
                  title=f"Stack {escape(stack)}: platforms used" if stack else "Platforms", title_justify="left")
    for r in rows:
        region = r["region"] if env is not None else r["defaultRegion"]
        table.add_row(r["name"], escape(r["title"]), escape(region or "-"), "yes" if r["quotaCheck"] else "no",
                      escape(r["login"]))
    out.print(table)


@app.command()
def render(
    stack: Annotated[str, typer.Argument(help="Stack name: stacks/Pulumi.<stack>.yaml.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write the manifests into.")],
    project_dir: Annotated[Path | None, typer.Option("--project", help="Project root (holds Pulumi.yaml).")] = None,
) -> None:
    """Write the stack's Kubernetes objects as YAML manifests, one file per object in apply order, with a
    kustomization.yaml: for kubectl or a GitOps tool, without Pulumi. Secrets are never written (the README in
    the directory says how to create them).

    Exit codes: 0 ok; 2 invalid stack config; 1 no such stack, or no Kubernetes objects in it.
    """
    from .render import RenderError
    from .render import render as write

    project, stacks = _select(stack, False, project_dir)
    runs = _Runs()
    previews = [p for _, p in runs.previews(project, stacks)]
    if not previews:
        raise typer.Exit(runs.code)
    try:
        result = write(previews[0], out_dir)
    except RenderError as exc:
        _fail(str(exc), EXIT_USAGE)
    manifests = [f for f in result.files if f.name[:2].isdigit()]
    out.print(f"{len(manifests)} manifests for stack '{stack}' in {out_dir}/ (kustomization.yaml lists them; "
              f"README.md says the order)")
    for s in result.secrets:
        out.print(f"  secret {s['namespace']}/{s['name']} not written: create it with keys {', '.join(s['keys'])}")
    for command in result.helm:
        out.print(f"  add-on: {command}")


@app.command(name="export")
def export_plan(
    stack: Annotated[str, typer.Argument(help="Stack name: stacks/Pulumi.<stack>.yaml.")],
    fmt: Annotated[str, typer.Option(
        "--format", help="terraform-plan: Terraform's plan JSON, as `terraform show -json <plan>` writes it.")
    ] = "terraform-plan",
    out_file: Annotated[Path | None, typer.Option("--out", help="File to write (default: standard output).")] = None,
    project_dir: Annotated[Path | None, typer.Option("--project", help="Project root (holds Pulumi.yaml).")] = None,
) -> None:
    """Write the stack's previewed plan for the scanners a team runs on Terraform plans, such as Checkov
    (`checkov -f plan.json --framework terraform_plan`). Each Pulumi type becomes its Terraform resource
    type (selfhost/export.py), inputs their Terraform arguments; secrets stay "[secret]"; types with no Terraform
    resource are listed, not written.

    Exit codes: 0 ok; 2 invalid stack config; 1 no such stack, or an unknown --format.
    """
    from .export import terraform_plan

    if fmt != "terraform-plan":
        _fail(f"--format {fmt!r}: allowed: terraform-plan", EXIT_USAGE)
    project, stacks = _select(stack, False, project_dir)
    runs = _Runs()
    previews = [p for _, p in runs.previews(project, stacks)]
    if not previews:
        raise typer.Exit(runs.code)
    result = terraform_plan(previews[0].to_json())
    text = json.dumps(result.document, indent=2) + "\n"
    if out_file is None:
        sys.stdout.write(text)
    else:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(text)
    skipped = sorted({m["type"] for m in result.not_mapped})
    err.print(f"{stack}: {len(result.addresses)} resources as a Terraform plan"
              + (f" in {escape(str(out_file))}" if out_file else "")
              + (f"; no Terraform type, not written: {', '.join(skipped)}" if skipped else ""))


@app.command()
def size(
    model: Annotated[str, typer.Argument(help="Hugging Face model id (or a unique part of one) from the catalog.")],
    context: Annotated[int, typer.Option(help="Tokens per sequence (prompt + completion) that must fit.")] = 4096,
    concurrency: Annotated[int, typer.Option(help="Sequences at full context that must fit at once.")] = 1,
    cloud: Annotated[list[str] | None, typer.Option(
        help="A platform to size on (repeat): any registered one (`selfhost platforms`); default every platform "
             "with list prices.", show_default=False)] = None,
    quantization: Annotated[str, typer.Option(help="none, fp8, int8, awq, gptq, nf4.")] = "none",
    region: Annotated[list[str] | None, typer.Option(
        help="PLATFORM=REGION: the region a platform is priced in (repeat); default its usual one.",
        show_default=False)] = None,
    gpu_hour_usd: Annotated[float | None, typer.Option(
        help="Your cost of one GPU-hour, for platforms of your own hardware (a cluster).")] = None,
    node_hour_usd: Annotated[float, typer.Option(
        help="Your cost of the rest of a server for one hour (power, space, ops).")] = 0.0,
    input_tokens: Annotated[int, typer.Option(help="Prompt tokens of a typical request.")] = 500,
    output_tokens: Annotated[int, typer.Option(help="Completion tokens of a typical request.")] = 200,
    min_tokens_per_second: Annotated[float | None, typer.Option(
        help="Service level: each stream decodes at least this fast (0: no floor).")] = 10,
    max_ttft: Annotated[float | None, typer.Option(
        help="Service level: time to first token at most this many seconds (0: no ceiling).")] = 2.0,
    limit: Annotated[int, typer.Option(help="Rows to show.")] = 20,
    lora_slots: Annotated[int, typer.Option(
        help="LoRA adapters resident on the GPU at once (vLLM's --max-loras; 0: none).")] = 0,
    lora_rank: Annotated[int, typer.Option(help="The largest adapter's rank.")] = 16,
    as_json: Annotated[bool, typer.Option("--json", help="All feasible options as JSON.")] = False,
) -> None:
    """Where a model fits: every host option, cheapest $ per 1M tokens at the service level first, with memory
    margin, and each replica's throughput both at the service level (the most concurrent requests that still
    meet it) and at saturation. With --lora-slots, the adapters' slots take their memory first."""
    from components.catalog.engines import QUANT_BYTES_PER_PARAM, VLLM_LORA, lora_rank_setting
    from components.catalog.models import MODELS
    from components.sizing import LORA_THROUGHPUT_NOTE, LoraSlots, ServiceLevel
    from components.sizing_options import options
    from components.targets.registry import hosts

    matches = [m for m in MODELS if m == model] or [m for m in MODELS if model.lower() in m.lower()]
    if len(matches) != 1:
        _fail(f"model {model!r}: {'ambiguous: ' + ', '.join(matches) if matches else 'not in the catalog'}; "
              f"known: {', '.join(MODELS)}", EXIT_USAGE)
    if quantization not in QUANT_BYTES_PER_PARAM:
        _fail(f"--quantization {quantization!r}: allowed: {', '.join(QUANT_BYTES_PER_PARAM)}", EXIT_USAGE)
    if lora_slots < 0 or not 1 <= lora_rank <= VLLM_LORA.ranks[-1]:
        _fail(f"--lora-slots {lora_slots}, --lora-rank {lora_rank}: allowed: slots 0 or more, rank "
              f"1..{VLLM_LORA.ranks[-1]} (vLLM's largest)", EXIT_USAGE)
    lora = LoraSlots(lora_slots, lora_rank_setting(lora_rank)) if lora_slots else None
    rates = {"gpuHourUsd": gpu_hour_usd, "nodeHourUsd": node_hour_usd} if gpu_hour_usd is not None else None
    names, regions = _size_platforms(cloud, region, rates)
    model_id = matches[0]
    candidates = hosts(names, regions, _lookup(), rates)
    level = ServiceLevel(min_tokens_per_second or None, max_ttft or None)
    rows = options(MODELS[model_id], quantization, context, concurrency, candidates, input_tokens, output_tokens,
                   level, lora=lora)

    if as_json:
        _size_json(rows, level)
    else:
        adapters = f", LoRA {lora.text}" if lora else ""
        _size_table(rows, level, f"{model_id}: {context} tokens x {concurrency}, {quantization}{adapters}; requests "
                                 f"of {input_tokens} in + {output_tokens} out", limit)
        if lora:
            out.print(LORA_THROUGHPUT_NOTE)


def _size_platforms(cloud: list[str] | None, region: list[str] | None, rates: dict[str, float] | None
                    ) -> tuple[list[str], dict[str, str]]:
    """The platforms `selfhost size` prices (every one with list prices unless told) and their regions."""
    from components.targets.registry import PLATFORMS, platform_named, size_problems

    bad = [c for c in cloud or [] if platform_named(c) is None]
    if bad:
        _fail(f"--cloud {bad[0]!r}: allowed: "
              f"{', '.join([*PLATFORMS, *(a for p in PLATFORMS.values() for a in p.aliases)])}", EXIT_USAGE)
    names = [p.name for c in cloud if (p := platform_named(c))] if cloud else [
        p.name for p in PLATFORMS.values() if not p.owner_rates]
    regions: dict[str, str] = {}
    for item in region or []:
        name, _, where = item.partition("=")
        platform = platform_named(name)
        if platform is None or not where:
            _fail(f"--region {item!r}: PLATFORM=REGION, PLATFORM one of {', '.join(PLATFORMS)}", EXIT_USAGE)
        regions[platform.name] = where
    for problem in size_problems(names, rates):
        _fail(problem, EXIT_USAGE)
    return names, regions


def _size_json(rows: list[Any], level: Any) -> None:
    def point(o: Any, t: Any) -> dict[str, Any] | None:
        return None if t is None else {
            "concurrency": t.concurrency, "tokensPerSecondPerStream": t.decode_tokens_per_s_per_stream,
            "timeToFirstTokenSeconds": t.ttft_s, "outputTokensPerSecond": t.output_tokens_per_s,
            "requestsPerSecond": t.requests_per_s, "usdPer1mTokens": o.usd_per_1m_tokens(t)}

    sys.stdout.write(json.dumps({"serviceLevel": {"minTokensPerSecondPerStream": level.min_stream_tokens_per_s,
                                                  "maxTimeToFirstTokenSeconds": level.max_ttft_s},
                                 "options": [{
        "cloud": o.host.cloud, "target": o.host.target, "host": o.host.name, "region": o.host.region,
        "gpus": f"{o.host.gpu_count} x {o.host.gpu.name}", "requiredGib": o.fit.required_gib,
        "availableGib": o.fit.available_gib, "marginGib": o.fit.margin_gib,
        "serviceLevelMet": o.capacity.service_level_met if o.capacity else None,
        "atServiceLevel": point(o, o.at_service_level), "saturation": point(o, o.saturation),
        "usdPerHour": o.host.usd_per_hour, "priceSource": o.host.price_source,
        "priceConfidence": o.host.price.confidence if o.host.price else None,
    } for o in rows]}, indent=2) + "\n")


def _size_table(rows: list[Any], level: Any, title: str, limit: int) -> None:
    table = Table(title=title)
    for col in ("target", "host", "region", "GPU memory need/usable", "streams SL/sat", "tok/s/stream",
                "out tok/s SL/sat", "$/hour", "$/1M SL", "$/1M sat"):
        table.add_column(col, justify="left" if col in ("target", "host", "region") else "right")
    for o in rows[:limit]:
        sl, sat = o.at_service_level, o.saturation
        met = o.capacity is not None and o.capacity.service_level_met
        table.add_row(o.host.target, escape(o.host.name), o.host.region,
                      f"{o.fit.required_gib:.1f} / {o.fit.available_gib:.1f} GiB",
                      f"{sl.concurrency}/{sat.concurrency}" if sl and sat else "0",
                      (f"{sl.decode_tokens_per_s_per_stream:,.0f}" + ("" if met else " [yellow](below)[/]"))
                      if sl else "-",
                      f"{sl.output_tokens_per_s:,.0f}/{sat.output_tokens_per_s:,.0f}" if sl and sat else "-",
                      unit_usd(o.host.usd_per_hour, o.host.price.confidence if o.host.price else "list"),
                      usd(o.usd_per_1m_tokens(sl)), usd(o.usd_per_1m_tokens(sat)))
    out.print(table)
    out.print(f"{len(rows)} feasible options. SL: at the service level ({_level_text(level)}), the most "
              "concurrent requests that still meet it; sat: at saturation (as many as memory and vLLM's "
              "max_num_seqs admit). Throughput from components/sizing.py's model (fit to published "
              "measurements); $ per 1M tokens (in + out) with the host fully used.")


def _level_text(level: Any) -> str:
    parts = ([f">= {level.min_stream_tokens_per_s:g} tok/s per stream"] if level.min_stream_tokens_per_s else []) + (
        [f"first token <= {level.max_ttft_s:g} s"] if level.max_ttft_s else [])
    return " and ".join(parts) or "none"


def _print_preview(p: Preview) -> None:
    from components.targets.registry import summary_fields

    summary = summary_fields()  # the inputs worth a glance per resource type (the full set is in --json)
    custom = [r for r in p.resources if r.custom]
    out.print(f"[bold]Stack {p.stack}[/] ({p.project}): {len(custom)} resources in "
              f"{len(p.resources) - len(custom)} components")
    children: dict[str | None, list] = {}
    urns = {r.urn for r in p.resources}
    for r in sorted(p.resources, key=lambda r: r.name):
        children.setdefault(r.parent if r.parent in urns else None, []).append(r)

    tree = Tree(f"[bold]{p.project}-{p.stack}[/] [dim]pulumi:pulumi:Stack[/]")

    def add(node: Tree, parent: str | None) -> None:
        for r in children.get(parent, []):
            label = f"{escape(r.name)} [dim]{escape(r.type)}[/]"
            details = [f"{k.split('.')[-1].split('[')[0]}={_fmt(_get(r.inputs, k))}" for k in summary.get(r.type, ())
                       if _get(r.inputs, k) is not None]
            if r.secret_paths:
                details.append(f"secret: {', '.join(r.secret_paths)}")
            if r.protect:
                details.append("protected")
            if details:
                label += "  " + escape("  ".join(details))
            add(node.add(label), r.urn)

    add(tree, None)
    out.print(tree)
    out.print("[bold]Outputs[/]")
    for key, value in p.outputs.items():
        text = value if isinstance(value, str) else json.dumps(value, indent=2).replace("\n", "\n  ")
        out.print(f"  {key}: {escape(text)}")
    if p.unmocked_types:
        out.print(f"[yellow]warning[/]: no faithful mock for {', '.join(p.unmocked_types)}: outputs echo inputs")
    out.print()


def _get(data: Any, path: str) -> Any:
    for part in path.replace("[", ".[").split("."):
        if part.startswith("["):
            idx = int(part[1:-1])
            data = data[idx] if isinstance(data, list) and len(data) > idx else None
        else:
            data = data.get(part) if isinstance(data, dict) else None
        if data is None:
            return None
    return data


def _fmt(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 70 else text[:67] + "..."


def _fail(message: str, code: int) -> NoReturn:
    err.print(f"error: {escape(message)}")
    raise typer.Exit(code)


# `selfhost serve`: the serving adapter and engine on this machine (selfhost/serve.py; it never imports them).
from .serve import SERVE_SETTINGS, serve  # noqa: E402

app.command(**SERVE_SETTINGS)(serve)
app.command(name="stage")(stage)


# Commands that run as long as their user wants (the serving adapter, a weight copy): the collector stays on and
# the interpreter shuts down as usual.
LONG_RUNNING = ("serve", "stage")


def main() -> None:
    """The `selfhost` entry point. A preview makes millions of short-lived objects in a few seconds and then
    exits: the cyclic collector, which re-scans the ever-larger heap, would spend about a third of the run, and
    tearing the provider SDKs' modules down at exit another second. So for everything but the long-running
    commands the collector is off, and once the output is flushed the process ends without the teardown."""
    quick = not (set(sys.argv[1:2]) & set(LONG_RUNNING))
    if quick:
        gc.disable()
    code: int | str | None = 0
    try:
        app()
    except SystemExit as exc:
        code = exc.code
    finally:
        if not quick:
            _close_event_loops()
    if isinstance(code, str):
        err.print(code)
        code = 1
    if quick:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code or 0)
    sys.exit(code)


def _close_event_loops() -> None:
    """Close the event loops the Pulumi SDK left open (one per thread it ran work on), here, rather than leave
    them to the garbage collector at exit: by then their self-pipe sockets may already be gone, and
    `BaseEventLoop.__del__` prints an "Invalid file descriptor: -1" traceback now and then."""
    import asyncio
    import contextlib
    import gc

    for loop in [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop)]:
        if not loop.is_closed() and not loop.is_running():
            with contextlib.suppress(Exception):
                loop.close()


if __name__ == "__main__":
    main()
