"""`selfhost platforms [STACK] [--json]`: the registered platforms, or the ones a stack's config uses (its targets'
kinds and its router's cluster), read from the registry and the stack file alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from components.config import load_environment
from components.targets.registry import PLATFORMS, kind_of
from selfhost.cli import app
from selfhost.project import load_project, stack_config

from .conftest import ROOT

STACKS = load_project(ROOT).stacks()


def run(*args: str):
    return CliRunner().invoke(app, ["platforms", *args])


def test_every_registered_platform_with_its_login():
    result = run("--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == list(PLATFORMS)
    for r in rows:
        p = PLATFORMS[r["name"]]
        assert (r["title"], r["defaultRegion"], r["login"]) == (p.title, p.default_region, p.login)
        assert r["login"], f"{p.name}: say what a deploy needs to reach it"
        assert r["quotaCheck"] is (p.quota_reader() is not None)
        assert "region" not in r
    table = run()
    assert table.exit_code == 0 and all(p.title in table.stdout for p in PLATFORMS.values())


@pytest.mark.parametrize("stack", STACKS)
def test_a_stack_lists_the_platforms_its_config_uses(stack: str):
    result = run(stack, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    config, secret_keys = stack_config(load_project(ROOT), stack)
    env = load_environment(stack, config, set(secret_keys))
    used = {kind_of(t).platform for t in env.targets} | ({env.router_platform} if env.router_platform else set())
    assert rows and [r["name"] for r in rows] == [name for name in PLATFORMS if name in used]
    assert all(r["region"] == PLATFORMS[r["name"]].region(env) for r in rows)


def test_known_stacks():
    def names(stack: str) -> list[str]:
        return [r["name"] for r in json.loads(run(stack, "--json").stdout)]

    assert names("aws-prod") == ["aws"] and names("gcp-pool") == ["gcp"]
    # A router runs on the stack's cluster: its platform is used even where no target stands on it.
    assert "kubernetes" in names("hybrid")
    [aws] = json.loads(run("aws-prod", "--json").stdout)
    assert aws["region"] == "us-east-1" and aws["quotaCheck"] is True
    assert "aws-prod: platforms used" in run("aws-prod").stdout


def test_no_such_stack_exits_1_and_an_invalid_one_2(tmp_path: Path):
    missing = run("no-such-stack")
    assert missing.exit_code == 1 and "no stack 'no-such-stack'" in missing.output
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "Pulumi.broken.yaml").write_text("config:\n  selfhost-llm:targets: 3\n")
    invalid = run("broken", "--project", str(tmp_path))
    assert invalid.exit_code == 2, invalid.output
    assert "Invalid configuration for stack 'broken'" in invalid.output
