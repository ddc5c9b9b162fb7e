"""A platform and a kind added from outside the project's code (tests/toy_platform: a fake provider SDK with two
resource classes, the platform and the kind, their price and quota rows, a project with one stack), registered by
one call and loaded through SELFHOST_PLUGINS as a team's own would be. Its stack previews, prices fully from its own
rows, passes `selfhost check` with its tag rule applied, exports, lists its quotas and shows in `selfhost size`,
with no file outside that package naming it: the proof the next platforms rely on.

Every command runs as a user runs it, in a process of its own (the registry is process-wide, and the other tests'
processes must not see the toy)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT

SELFHOST = str(Path(sys.executable).with_name("selfhost"))
PACKAGE = ROOT / "tests" / "toy_platform"
PROJECT = ["--project", str(PACKAGE / "project")]
ENV = {**os.environ, "SELFHOST_PLUGINS": "tests.toy_platform", "PYTHONPATH": str(ROOT)}
PRICES = "tests/toy_platform/prices.csv"


def run(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([SELFHOST, *args], capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=300)
    assert done.returncode == code, done.stderr + done.stdout
    return done


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=ENV,
                          timeout=300)


@pytest.fixture(scope="module")
def graph() -> dict[str, Any]:
    return json.loads(run("preview", "toy", *PROJECT, "--json").stdout)


def of_type(graph: dict[str, Any], token: str) -> list[dict[str, Any]]:
    return [r for r in graph["resources"] if r["type"] == token]


def test_the_stack_previews_on_the_toy_platform_with_its_mocks(graph: dict[str, Any]) -> None:
    assert graph["unmockedTypes"] == []
    (net,) = of_type(graph, "toycloud:network/privateNet:PrivateNet")
    (server,) = of_type(graph, "toycloud:compute/gpuServer:GpuServer")
    # The platform's mocks answer in its formats, in the stack's region (its own config key).
    assert server["computed"]["privateUrl"].endswith(".toy-east.toycloud.example")
    assert net["id"].startswith("net-") and server["inputs"]["networkId"] == net["id"]
    assert server["inputs"]["labels"]["selfhost-model"] == "Qwen/Qwen2.5-1.5B-Instruct"
    record = graph["outputs"]["endpoints"]["chat"]
    assert (record["kind"], record["platform"], record["region"]) == ("toy-gpu", "toycloud", "toy-east")
    assert graph["outputs"]["toycloudRegion"] == "toy-east"


def test_it_prices_fully_from_its_own_rows() -> None:
    report = json.loads(run("cost", "toy", *PROJECT, "--format", "json").stdout)
    assert report["complete"] and report["unpricedItems"] == 0 and report["unknownItems"] == 0
    items = {i["type"]: i for i in report["items"]}
    assert set(items) == {"toycloud:network/privateNet:PrivateNet", "toycloud:compute/gpuServer:GpuServer"}
    assert all(i["source"].startswith(PRICES) for i in items.values())
    # One server at $0.50 all month, up to two: the kind's rule over the toy's own rows.
    assert items["toycloud:compute/gpuServer:GpuServer"]["monthlyUsd"] == {"min": 365.0, "expected": 365.0,
                                                                            "max": 730.0}
    assert report["totals"] == {"min": 375.0, "expected": 375.0, "max": 740.0}
    assert report["usdPer1mTokens"] is not None and report["serving"]


def test_it_passes_check_and_its_tag_rule_applies() -> None:
    assert "compliant" in run("check", "toy", *PROJECT).stdout
    # The same plan with a server's labels cut short: the tag rule reads the toy platform's tag field.
    found = python(
        "import json, subprocess, sys\n"
        "from components.cost import resources_from_preview\n"
        "from components.policies import BY_ID, Plan\n"
        f"graph = json.loads(subprocess.run([{SELFHOST!r}, 'preview', 'toy', *{PROJECT!r}, '--json'],"
        " capture_output=True, text=True, check=True).stdout)\n"
        "for r in graph['resources']:\n"
        "    if r['type'] == 'toycloud:compute/gpuServer:GpuServer':\n"
        "        del r['inputs']['labels']['owner']\n"
        "plan = Plan(resources_from_preview(graph), None, graph['outputs'])\n"
        "print(json.dumps([f.__dict__ for f in BY_ID['environment-tags'].run(plan)]))\n")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout) == [{"rule": "environment-tags", "resource": "toy-chat-server",
                                         "message": "labels lack owner", "exempt": None}]


def test_it_exports_its_types_to_the_terraform_plan() -> None:
    plan = json.loads(run("export", "toy", *PROJECT).stdout)
    resources = {r["type"]: r for r in plan["planned_values"]["root_module"]["resources"]}
    assert set(resources) == {"toycloud_private_net", "toycloud_gpu_server"}
    assert resources["toycloud_gpu_server"]["provider_name"] == "registry.terraform.io/example/toycloud"
    assert resources["toycloud_gpu_server"]["values"]["labels"]["environment"] == "toy"
    assert plan["selfhost_export"]["not_mapped"] == []


def test_it_lists_its_quotas() -> None:
    quotas = json.loads(run("quota", "toy", *PROJECT, "--format", "json").stdout)
    (need,) = quotas["needs"]
    assert (need["need"], need["platform"], need["region"], need["atMin"], need["atMax"]) == (
        "toy-gpus:L4", "toycloud", "toy-east", 1, 2)
    assert need["source"].startswith("tests/toy_platform/quotas.csv")


def test_it_shows_in_size_in_each_of_its_regions() -> None:
    def hosts(*args: str) -> dict[str, Any]:
        out = json.loads(run("size", "Qwen/Qwen2.5-1.5B-Instruct", "--cloud", "toycloud", *args, "--json").stdout)
        return {o["host"]: o for o in out["options"]}

    east = hosts()
    assert set(east) == {"toy-l4-1", "toy-l40s-1"} and {o["region"] for o in east.values()} == {"toy-east"}
    assert east["toy-l4-1"]["usdPerHour"] == 0.5 and east["toy-l4-1"]["priceSource"].startswith(PRICES)
    west = hosts("--region", "toycloud=toy-west")
    assert west["toy-l4-1"]["usdPerHour"] == 0.55 and west["toy-l40s-1"]["usdPerHour"] is None


def test_its_config_is_checked_by_its_own_rules(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "stacks").mkdir(parents=True)
    (project / "Pulumi.yaml").write_text((PACKAGE / "project" / "Pulumi.yaml").read_text())
    (project / "__main__.py").write_text((PACKAGE / "project" / "__main__.py").read_text().replace(
        "parents[3]", "parents[0]").replace('Path(__file__).resolve().parents[0] / "__main__.py"',
                                           repr(str(ROOT / "__main__.py"))))
    stack = (PACKAGE / "project" / "stacks" / "Pulumi.toy.yaml").read_text()
    (project / "stacks" / "Pulumi.bad.yaml").write_text(
        stack.replace("toycloud:region: toy-east", "toycloud:region: mars-1").replace("machine: toy-l4-1",
                                                                                      "machine: toy-h100-8"))
    err = run("preview", "bad", "--project", str(project), code=2).stderr
    assert "toycloud:region: 'mars-1': not a Toy Cloud region; allowed: toy-east, toy-west" in err
    assert "selfhost-llm:targets[0].machine: 'toy-h100-8': not a Toy Cloud machine; allowed: toy-l4-1, toy-l40s-1" \
        in err
    assert "Traceback" not in err


def test_a_second_owner_of_a_type_is_refused_at_registration() -> None:
    clash = python(
        "import tests.toy_platform\n"
        "from components.targets.registry import register\n"
        "from tests.toy_platform.kind import ToyGpu\n"
        "class Again(ToyGpu):\n"
        "    kind = 'toy-gpu-again'\n"
        "register(Again())\n")
    assert clash.returncode == 1
    assert ("ValueError: toycloud:compute/gpuServer:GpuServer has two cost rules: toy-gpu and toy-gpu-again"
            in clash.stderr)


def test_no_file_outside_its_package_names_it() -> None:
    # Code and data only: the docs point to the package as the example it is.
    named = subprocess.run(["git", "grep", "-l", "-i", "toycloud\\|toy-gpu\\|toy_platform", "--", ".",
                            ":!tests/toy_platform", ":!tests/test_toy_platform.py", ":!*.md"],
                           capture_output=True, text=True, cwd=ROOT)
    assert named.returncode == 1 and named.stdout == "", named.stdout
