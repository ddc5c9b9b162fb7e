"""Every stack's resource graph against a golden copy: what a refactoring must leave alone.

The copies were taken from `selfhost preview --json`: onprem and edge when they were added (issue 11); the
AWS and Google Cloud stacks were last regenerated for the security fixes of issue 12 (AWS: the access-logged
artifacts bucket, incomplete uploads aborted, production log retention, the scoped interface permission;
Google Cloud: the Cloud KMS key and the dataset, secret and repository encrypted with it), after checking that
nothing else changed: the URNs of every resource that existed before are the same. For each resource
they hold its URN, type, parent, protection, dependencies and inputs (secret inputs by path only; the
checkout's own path as `{repo}`). A change that alters any of them fails here, unless it is one of the
deliberate differences listed in `EXPECTED_CHANGES` below, each with its reason. After a deliberate change,
regenerate the copy of the stacks it changed, and only those:
`SELFHOST_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden_graph.py -k <stack>`; say why in the commit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT

GOLDEN = ROOT / "tests" / "golden" / "graph"
SELFHOST = str(Path(sys.executable).with_name("selfhost"))
# Every shipped stack (stacks/Pulumi.<stack>.yaml): a new one needs its golden copy, taken once with
# SELFHOST_UPDATE_GOLDEN=1 (below), or it fails here.
STACKS = tuple(sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml")
                      for p in (ROOT / "stacks").glob("Pulumi.*.yaml")))
KEPT = ("type", "parent", "custom", "protect", "dependencies", "inputs", "secretInputs")

# (stack, urn or "*", input path prefix) -> why it differs from the golden copy.
IDENTITY = "issue 9: every resource of a target says which model it serves, for which target"
EXPECTED_CHANGES: dict[tuple[str, str, str], str] = {
    **{(stack, "*", f"inputs.{field}.selfhost-{key}"): IDENTITY
       for stack in STACKS for field in ("tags", "labels", "userLabels") for key in ("model", "target")},
    # The SageMaker model's own `model-id` tag gave way to the `selfhost-model` tag every resource now has.
    **{(stack, "*", "inputs.tags.model-id"): "issue 9: replaced by selfhost-model"
       for stack in ("aws-dev", "aws-prod")},
    # AWS lists `network-interface` for ec2:DeleteNetworkInterfacePermission: it left the `*` statement.
    **{(stack, f"urn:pulumi:{stack}::selfhost-llm::selfhost:aws:SageMakerExecutionRole$aws:iam/rolePolicy:"
               f"RolePolicy::{stack}-chat-execution-policy", "inputs.policy"): "issue 12: scoped to interfaces"
       for stack in ("aws-dev", "aws-prod")},
}


def graph(stack: str) -> dict[str, dict[str, Any]]:
    """The stack's resources as kept here; the checkout's own path (image build contexts) as `{repo}`."""
    run = subprocess.run([SELFHOST, "preview", stack, "--json"], capture_output=True, text=True, cwd=ROOT,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    text = run.stdout.replace(json.dumps(str(ROOT))[1:-1], "{repo}")
    return {r["urn"]: {k: r[k] for k in KEPT} for r in json.loads(text)["resources"]}


def _flatten(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{path}.{key}" if path else key))
        return out
    return {path: value}


def differences(stack: str, golden: dict[str, dict], now: dict[str, dict]) -> list[str]:
    found = [f"added {urn}" for urn in now.keys() - golden.keys()]
    found += [f"removed {urn}" for urn in golden.keys() - now.keys()]
    for urn in golden.keys() & now.keys():
        before, after = _flatten(golden[urn]), _flatten(now[urn])
        for path in sorted(before.keys() | after.keys()):
            if before.get(path, "<absent>") == after.get(path, "<absent>"):
                continue
            if any(s == stack and u in (urn, "*") and path.startswith(p) for s, u, p in EXPECTED_CHANGES):
                continue
            found.append(f"{urn}: {path}: {before.get(path, '<absent>')!r} -> {after.get(path, '<absent>')!r}")
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_the_resource_graph_is_the_golden_one(stack: str) -> None:
    now = graph(stack)
    path = GOLDEN / f"{stack}.json"
    if os.environ.get("SELFHOST_UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
    assert path.exists(), f"no golden copy of {stack}: take it with SELFHOST_UPDATE_GOLDEN=1 (see the docstring)"
    golden = json.loads(path.read_text())
    found = differences(stack, golden, now)
    assert not found, f"{len(found)} differences from the golden graph:\n" + "\n".join(found[:40])
