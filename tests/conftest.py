from __future__ import annotations

import copy
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from selfhost.preview import Preview, run_preview
from selfhost.project import Project, load_project

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def project() -> Project:
    return load_project(ROOT)


_previews: dict[str, Preview] = {}


@pytest.fixture(scope="session")
def previews(project: Project) -> dict[str, Preview]:
    """Every stack in stacks/, previewed once per test session through the real program."""
    if not _previews:
        for stack in project.stacks():
            _previews[stack] = run_preview(project, stack)
    return _previews


def policy_doc(value) -> dict:
    return json.loads(value) if isinstance(value, str) else value


def git_project(tmp_path: Path) -> Path:
    """A git repository holding the project as it is (code and stacks, not its tests), committed once: a base for
    `--base`."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns(".venv", ".tools", ".git", "__pycache__", "containers",
                                                              "tests", "benchmarks", ".pytest_cache"))
    # The router's auth module is read by the program (components/litellm.py), unlike the images' sources.
    shutil.copytree(ROOT / "containers" / "router", repo / "containers" / "router",
                    ignore=shutil.ignore_patterns("__pycache__"))
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    return repo


def git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
                          check=True, capture_output=True, text=True)


def in_component(p, component_type: str) -> set[str]:
    """The URNs of a preview's resources inside the components of `component_type`, at any depth."""
    urns, size = {r.urn for r in p.resources if r.type == component_type}, -1
    while size != len(urns):
        size = len(urns)
        urns |= {r.urn for r in p.resources if r.parent in urns}
    return urns


def split_by_component(p, token: str, component_type: str) -> tuple[list, list]:
    """A preview's resources of type `token`: those outside the components of `component_type`, and those inside."""
    inside = in_component(p, component_type)
    found = p.by_type(token)
    return [r for r in found if r.urn not in inside], [r for r in found if r.urn in inside]


def mutate_plan(items: list[Any], token: str, change: Callable[[dict[str, Any]], Any], name: str = "") -> list[Any]:
    """A copy of a plan (components.cost Resources) where the first resource of type `token` (whose name contains
    `name`) is changed: what a policy rule is broken against."""
    from components.cost import Resource

    out, done = [], False
    for r in items:
        if not done and r.type == token and name in r.name:
            inputs = copy.deepcopy(r.inputs)
            change(inputs)
            r, done = Resource(r.type, r.name, r.component, inputs), True
        out.append(r)
    assert done, f"no {token} {name} in the plan"
    return out


def platform_types(platform: str) -> set[str]:
    """The resource types a platform and its kinds declare, as the registry knows them: each is priced or said to
    be free by its owner (components/targets/registry.py), in the platform's packages."""
    from components.targets.registry import PLATFORMS, cost_rules, free_types

    packages = tuple(f"{p}:" for p in PLATFORMS[platform].packages)
    return {t for t in (*cost_rules(), *free_types()) if t.startswith(packages)}
