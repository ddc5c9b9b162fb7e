"""Every exit code `selfhost preview`, `cost` and `check` document (their help, the README), from the real CLI in
a subprocess, on a temporary project of four stacks: `ok` (hf-dev as shipped: priced, compliant, within its
budget), `tight` (the same with a $1 budget), `unpriced` (hybrid without the cluster's CPU-hour rate, so the
router's CPU has no price, with a $1 budget: over it even by the lower bound) and `broken` (an invalid config).
Each command line runs once, as many at a time as there are cores (23 processes, half of them a preview)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from selfhost.cli import EXIT_BUDGET, EXIT_CONFIG, EXIT_UNPRICED, EXIT_USAGE
from selfhost.cli import EXIT_POLICY as EXIT_VIOLATIONS

from .conftest import ROOT, git

SELFHOST = str(Path(sys.executable).with_name("selfhost"))
OK = 0

# (command line, exit code, what stderr or stdout says). The stack names are the temporary project's.
CASES: list[tuple[tuple[str, ...], int, str]] = [
    (("preview", "ok"), OK, "costEstimate"),
    (("preview", "tight"), EXIT_BUDGET, "error: stack 'tight': expected monthly cost $"),
    (("preview", "broken"), EXIT_CONFIG, "selfhost-llm:targets[0].scaling.maxReplicas"),
    (("preview", "nope"), EXIT_USAGE, "nope"),
    (("preview",), EXIT_USAGE, "name a stack or pass --all"),
    (("preview", "ok", "--format", "markdown"), EXIT_USAGE, "allowed with --base"),
    (("preview", "ok", "--base", "HEAD", "--json"), EXIT_USAGE, "drop --json"),
    (("preview", "ok", "--base", "no-such-ref"), EXIT_USAGE, "--base no-such-ref"),
    (("preview", "ok", "--no-such-option"), EXIT_USAGE, "No such option"),
    (("cost", "ok"), OK, "Budget $500.00/month: within"),
    (("cost", "tight"), EXIT_BUDGET, "is over its budget $1.00"),
    (("cost", "unpriced"), EXIT_BUDGET, "expected monthly cost at least $"),
    (("cost", "unpriced", "--strict"), EXIT_UNPRICED, "1 item(s) unpriced"),  # the highest code that applies
    (("cost", "broken"), EXIT_CONFIG, "selfhost-llm:targets[0].scaling.maxReplicas"),
    (("cost", "nope"), EXIT_USAGE, "nope"),
    (("cost", "ok", "--format", "yaml"), EXIT_USAGE, "allowed: table, json, markdown"),
    (("cost", "--all", "--plot", "chart.svg"), EXIT_USAGE, "one stack"),
    (("cost", "ok", "--strict", "--no-such-option"), EXIT_USAGE, "No such option"),
    (("check", "ok"), OK, "ok: compliant"),
    (("check", "tight"), EXIT_VIOLATIONS, "monthly-budget"),
    (("check", "broken"), EXIT_CONFIG, "selfhost-llm:targets[0].scaling.maxReplicas"),
    (("check", "nope"), EXIT_USAGE, "nope"),
    (("check", "ok", "--no-such-option"), EXIT_USAGE, "No such option"),
]


def _stack(project: Path, name: str, shipped: str, change: Callable[[dict], object]) -> None:
    doc = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{shipped}.yaml").read_text())
    change(doc["config"])
    (project / "stacks" / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(doc))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[tuple[str, ...], subprocess.CompletedProcess[str]]:
    project = tmp_path_factory.mktemp("exit-codes")
    (project / "stacks").mkdir()
    for name in ("Pulumi.yaml", "__main__.py"):
        (project / name).write_text((ROOT / name).read_text())
    (project / "components").symlink_to(ROOT / "components")
    tiny_budget = {"selfhost-llm:budget": {"monthlyUsd": 1}}
    _stack(project, "ok", "hf-dev", lambda c: None)
    _stack(project, "tight", "hf-dev", lambda c: c.update(tiny_budget))
    _stack(project, "unpriced", "hybrid", lambda c: (c["selfhost-llm:kubernetes"]["cost"].pop("cpuHourUsd"),
                                                     c.update(tiny_budget)))
    _stack(project, "broken", "hf-dev",
           lambda c: c["selfhost-llm:targets"][0]["scaling"].update(maxReplicas="lots"))
    git(project, "init", "-q")  # a repository without the ref --base names

    def run(argv: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([SELFHOST, *argv, "--project", str(project)], capture_output=True, text=True,
                              cwd=project, timeout=300, env={**os.environ, "SELFHOST_JOBS": "1"})

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return dict(zip((c[0] for c in CASES), pool.map(run, (c[0] for c in CASES)), strict=True))


@pytest.mark.parametrize(("argv", "code", "says"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_exit_code(runs, argv: tuple[str, ...], code: int, says: str) -> None:
    run = runs[argv]
    assert run.returncode == code, f"selfhost {' '.join(argv)}: {run.returncode}\n{run.stdout[-2000:]}{run.stderr}"
    assert says in run.stdout + run.stderr


def test_every_documented_code_is_tested() -> None:
    """Each command's help names its codes; each of them is a row above."""
    from typer.core import TyperGroup
    from typer.main import get_command

    from selfhost.cli import app

    group = get_command(app)
    assert isinstance(group, TyperGroup)
    for name in ("preview", "cost", "check"):
        codes = " ".join((group.commands[name].help or "").split()).split("Exit codes", 1)[1]
        documented = {int(c) for c in re.findall(r"[:;] (\d) ", codes)}
        tested = {code for argv, code, _ in CASES if argv[0] == name}
        assert documented == tested, name
