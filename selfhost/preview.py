"""Runs the project's own `__main__.py` for a stack under Pulumi's mocks and captures the resource graph."""

from __future__ import annotations

import runpy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import Stack, run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.schema import SECRET_PLACEHOLDER

from .mocks import PreviewMocks, Recorded, RecordingMonitor
from .project import Project, stack_config

SCHEMA_VERSION = 1


@dataclass
class Preview:
    project: str
    stack: str
    resources: list[Recorded]
    outputs: dict[str, Any]
    secret_outputs: list[str]
    unmocked_types: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "schemaVersion": SCHEMA_VERSION,
            "project": self.project,
            "stack": self.stack,
            "resources": [
                {
                    "urn": r.urn, "type": r.type, "name": r.name, "parent": r.parent, "custom": r.custom,
                    "id": r.id or None, "protect": r.protect, "dependencies": r.dependencies,
                    "inputs": r.inputs, "secretInputs": r.secret_paths, "computed": r.computed,
                    **({"outputs": r.outputs} if r.outputs else {}),
                    **({"provider": r.provider} if r.provider else {}),
                }
                for r in self.resources
            ],
            "outputs": self.outputs,
            "secretOutputs": self.secret_outputs,
            "unmockedTypes": self.unmocked_types,
        }

    def by_type(self, token: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == token]


def run_preview(project: Project, stack: str) -> Preview:
    """Run the project's `__main__.py` for `stack` under mocks, with the stack file's config.
    Raises what the program raises (ConfigError on bad config)."""
    config, secret_keys = stack_config(project, stack)
    program = project.root / "__main__.py"
    return run_program(project.name, stack, config, secret_keys,
                       lambda: runpy.run_path(str(program), run_name="__main__"))


def run_program(project: str, stack: str, config: dict[str, str], secret_keys: list[str],
                program: Callable[[], Any]) -> Preview:
    """Run `program` as the Pulumi engine would run a stack's program, with mocks in place of the engine and
    providers, and capture every registration and the stack outputs.

    Resources come sorted by URN: the SDK registers them from a thread pool, so arrival order varies."""
    # Mocks and config are process-wide: start each run from a clean slate.
    settings.ROOT.set(None)
    set_all_config(config, secret_keys)
    mocks = PreviewMocks(config)
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    with _without_stack_traces():
        _sync_await(run_pulumi_func(program))

    root = settings.get_root_resource()
    outputs: dict[str, Any] = {}
    secret_outputs: list[str] = []
    # The root resource is the program's Stack: its `outputs` are what the program exported.
    for key, value in (root.outputs if isinstance(root, Stack) else {}).items():
        outputs[key] = _sync_await(_resolve(value, key, secret_outputs))
    return Preview(
        project=project, stack=stack, resources=sorted(monitor.recorded.values(), key=lambda r: r.urn),
        outputs=outputs, secret_outputs=secret_outputs, unmocked_types=sorted(mocks.unmocked),
    )


@contextmanager
def _without_stack_traces() -> Iterator[None]:
    """The SDK walks and resolves the Python call stack of every resource it registers (traceback.extract_stack,
    then a file lookup per frame) so the engine can show where a resource was declared; our recording monitor is
    the engine here and never reads it, and it is about a tenth of a preview's time per resource. Skipped for the
    run, and only if the SDK still has the function (a private one): otherwise nothing changes."""
    from pulumi.runtime import resource as sdk

    original = getattr(sdk, "_get_stack_trace", None)
    if original is None:
        yield
        return
    from pulumi.runtime.proto import source_pb2

    sdk._get_stack_trace = source_pb2.StackTrace  # an empty trace, what the SDK sends when it finds no frames
    try:
        yield
    finally:
        sdk._get_stack_trace = original


async def _resolve(value: Any, path: str, secrets: list[str]) -> Any:
    """Await an output value, nested ones included, hiding every secret behind a marker."""
    if isinstance(value, pulumi.Output):
        if await value.is_secret():
            secrets.append(path)
            return SECRET_PLACEHOLDER
        return await _resolve(await value.future(), path, secrets)
    if isinstance(value, dict):
        return {k: await _resolve(v, f"{path}.{k}", secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [await _resolve(v, f"{path}[{i}]", secrets) for i, v in enumerate(value)]
    return value


def project_root(start: Path | None = None) -> Path:
    """The nearest directory at or above `start` holding Pulumi.yaml."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "Pulumi.yaml").is_file():
            return d
    return here


