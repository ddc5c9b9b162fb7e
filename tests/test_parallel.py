"""Previews of several stacks in worker processes (selfhost/parallel.py): the same output as one after another, in
the order asked for, a failing stack reported without losing the others, and the worker groups."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from selfhost.parallel import groups, preview_stacks
from selfhost.project import load_project

from .conftest import ROOT

SELFHOST = str(Path(sys.executable).with_name("selfhost"))


def run(*args: str, jobs: int, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SELFHOST, *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "SELFHOST_JOBS": str(jobs)})


def test_workers_give_the_same_output_as_one_process():
    one, two = run("cost", "--all", "--format", "json", jobs=1), run("cost", "--all", "--format", "json", jobs=2)
    assert one.returncode == two.returncode == 0, one.stderr + two.stderr
    assert one.stdout == two.stdout
    # Not a terminal: no progress line.
    assert two.stderr == ""


@pytest.fixture
def broken_project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, root)
    (root / "components").symlink_to(ROOT / "components")
    shutil.copytree(ROOT / "stacks", root / "stacks")
    stack = root / "stacks" / "Pulumi.aws-pool.yaml"
    stack.write_text(stack.read_text().replace("selfhost-llm:owner:", "selfhost-llm:ownr:"))
    return root


def test_a_failing_stack_is_reported_and_the_others_still_are(broken_project: Path):
    result = run("cost", "--all", "--format", "markdown", jobs=2, cwd=broken_project)
    assert result.returncode == 2, result.stderr
    assert "Invalid configuration for stack 'aws-pool'" in result.stderr and "ownr" in result.stderr
    shown = [line.split("`")[1] for line in result.stdout.splitlines() if line.startswith("### ")]
    stacks = load_project(broken_project).stacks()
    assert shown == [s for s in stacks if s != "aws-pool"], "every other stack, in order"


ORDER_SCRIPT = """
import sys, threading
from selfhost.parallel import StackFailure, preview_stacks
from selfhost.project import load_project
assert threading.active_count() == 1
order = ["hf-dev", "aws-pool", "edge", "aws-dev"]
finished = []
from pathlib import Path
results = list(preview_stacks(load_project(Path(sys.argv[1])), order, workers=2, on_done=finished.append))
assert [name for name, _ in results] == order, results
assert sorted(finished) == sorted(order)
failure = dict(results)["aws-pool"]
assert isinstance(failure, StackFailure) and failure.kind == "config", failure
assert dict(results)["edge"].stack == "edge"
print("ok")
"""


def test_results_come_back_in_the_order_asked_for(broken_project: Path):
    # In a fresh interpreter: this test process has threads (earlier previews' thread pools), where
    # preview_stacks rightly declines to fork.
    run = subprocess.run([sys.executable, "-c", ORDER_SCRIPT, str(broken_project)], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0 and run.stdout == "ok\n", run.stderr


def test_a_process_with_threads_previews_one_stack_after_another(broken_project: Path, monkeypatch):
    import threading

    import selfhost.parallel as parallel

    def no_fork(*args, **kwargs):
        raise AssertionError("forked from a process with threads")

    monkeypatch.setattr(parallel, "ProcessPoolExecutor", no_fork)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        results = list(preview_stacks(load_project(broken_project), ["edge", "hf-dev"], workers=2))
    finally:
        stop.set()
    assert [name for name, _ in results] == ["edge", "hf-dev"]


def test_stacks_on_the_same_platforms_share_a_worker():
    project = load_project(ROOT)
    split = groups(project, project.stacks(), 2)
    assert sorted(s for g in split for s in g) == project.stacks()
    home = {s: i for i, g in enumerate(split) for s in g}
    assert home["aws-dev"] == home["aws-prod"] == home["aws-pool"]
    assert home["gcp-prod"] == home["gcp-pool"]
    (alone,) = groups(project, project.stacks(), 1)
    assert sorted(alone) == project.stacks()
