from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

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
