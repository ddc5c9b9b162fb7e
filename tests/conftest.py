from __future__ import annotations

import json
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
