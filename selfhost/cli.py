"""`selfhost`: the offline workflow. Every command runs the real Pulumi program under Pulumi's mocks."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from components.config import ConfigError

from .preview import Preview, project_root, run_preview
from .project import ProjectError, load_project

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
# Wide when piped (CI logs, PR comments): a tree line is cropped, not wrapped.
out = Console(highlight=False, emoji=False, width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True, highlight=False, emoji=False, soft_wrap=True)

EXIT_CONFIG = 2
EXIT_USAGE = 1

# The inputs worth a glance per resource type in the tree (the full set is in --json).
SUMMARY: dict[str, tuple[str, ...]] = {
    "aws:ec2/vpc:Vpc": ("cidrBlock",),
    "aws:ec2/subnet:Subnet": ("availabilityZone", "cidrBlock"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": ("serviceName", "vpcEndpointType"),
    "aws:ec2/flowLog:FlowLog": ("trafficType",),
    "aws:kms/key:Key": ("enableKeyRotation",),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "rules[0].applyServerSideEncryptionByDefault.sseAlgorithm",),
    "aws:s3/bucketVersioning:BucketVersioning": ("versioningConfiguration.status",),
    "aws:cloudwatch/logGroup:LogGroup": ("name", "retentionInDays"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("metricName", "threshold"),
    "aws:sagemaker/model:Model": ("primaryContainer.image", "enableNetworkIsolation"),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": (
        "productionVariants[0].instanceType", "productionVariants[0].initialInstanceCount",
        "productionVariants[0].containerStartupHealthCheckTimeoutInSeconds"),
    "aws:sagemaker/endpoint:Endpoint": ("name",),
    "aws:appautoscaling/target:Target": ("minCapacity", "maxCapacity"),
}


@app.callback()
def _root() -> None:
    """Preview, validate and (soon) cost the environments in stacks/, with no cloud account and no Pulumi CLI."""


@app.command()
def preview(
    stack: Annotated[Optional[str], typer.Argument(help="Stack name: stacks/Pulumi.<stack>.yaml.")] = None,
    all_stacks: Annotated[bool, typer.Option("--all", help="Preview every stack in stacks/.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full resource graph as JSON.")] = False,
    project_dir: Annotated[Optional[Path], typer.Option("--project", help="Project root (holds Pulumi.yaml).")] = None,
) -> None:
    """Run the Pulumi program for a stack under mocks: the resource tree, the inputs that matter, the outputs.

    Exit codes: 0 ok; 2 invalid stack config (every problem listed); 1 no such stack or project.
    """
    try:
        project = load_project(project_root(project_dir))
        stacks = project.stacks() if all_stacks else [stack] if stack else []
    except ProjectError as exc:
        _fail(str(exc), EXIT_USAGE)
    if not stacks:
        _fail("name a stack or pass --all" + (f"; stacks: {', '.join(project.stacks())}" if project.stacks() else ""),
              EXIT_USAGE)

    previews: list[Preview] = []
    code = 0
    for name in stacks:
        try:
            previews.append(run_preview(project, name))
        except ConfigError as exc:
            err.print(escape(str(exc)))
            code = max(code, EXIT_CONFIG)
        except ProjectError as exc:
            err.print(f"error: {escape(str(exc))}")
            code = max(code, EXIT_USAGE)

    if as_json:
        doc: Any = previews[0].to_json() if not all_stacks and previews else {"stacks": [p.to_json() for p in previews]}
        if previews or all_stacks:
            sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        for p in previews:
            _print_preview(p)
    raise typer.Exit(code)


def _print_preview(p: Preview) -> None:
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
            details = [f"{k.split('.')[-1].split('[')[0]}={_fmt(_get(r.inputs, k))}" for k in SUMMARY.get(r.type, ())
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


def _fail(message: str, code: int) -> None:
    err.print(f"error: {escape(message)}")
    raise typer.Exit(code)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
