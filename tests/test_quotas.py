"""Quota preflight (components/quotas.py, `selfhost quota`): the quotas each shipped stack's previewed plan
needs, at its bounds and during an update, summed per quota; the capacity hints; and the CLI's formats. The
account check itself is tested on recorded API responses in tests/test_quota_check.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from components.quotas import QuotaNeed
from selfhost.quota_report import markdown, plan_of, to_json

from .conftest import ROOT

SELFHOST = str(Path(sys.executable).with_name("selfhost"))


def needs(previews, stack: str) -> dict[str, QuotaNeed]:
    return {n.need: n for n in plan_of(previews[stack].to_json()).needs}


def bounds(n: QuotaNeed) -> tuple[float, float, float]:
    return n.at_min, n.at_max, n.at_update


def test_sagemaker_needs_its_instances_and_twice_the_fleet_for_a_blue_green_update(previews):
    found = needs(previews, "aws-prod")
    n = found.pop("sagemaker-endpoint:ml.g5.2xlarge")
    router = found.pop("fargate-vcpus:on-demand")
    assert not found
    assert (n.platform, n.service, n.unit, n.region) == ("aws", "sagemaker", "instances", "us-east-1")
    assert n.quota_name == "ml.g5.2xlarge for endpoint usage"
    # 1..4 replicas; a blue/green (canary) update brings up a second fleet of the same size beside the first.
    assert bounds(n) == (1, 4, 8)
    assert n.resources == ("aws-prod-chat-config",) and n.source
    # The router on Fargate: 2..4 tasks of 1 vCPU; a deployment starts a new set beside the old (maximumPercent
    # 200).
    assert (router.platform, router.service, router.unit, router.region) == ("aws", "fargate", "vCPUs", "us-east-1")
    assert router.quota_name == "Fargate On-Demand vCPU resource count" and router.quota_code == "L-3032A538"
    assert bounds(router) == (2, 4, 8)
    assert router.resources == ("aws-prod-router-service",) and router.source


def test_an_ec2_pool_needs_vcpus_on_demand_for_its_base_and_spot_above_it(previews):
    found = needs(previews, "aws-pool")
    on_demand, spot = found.pop("ec2-vcpus:on-demand:G"), found.pop("ec2-vcpus:spot:G")
    assert not found
    # One on-demand instance always (onDemandBase 1), spot above it up to 6, each counted as the pool's largest
    # type (g5.4xlarge and g6.4xlarge: 16 vCPUs); the instance refresh never exceeds the group.
    assert bounds(on_demand) == (16, 16, 16) and bounds(spot) == (0, 80, 80)
    assert on_demand.quota_name == "Running On-Demand G and VT instances" and on_demand.quota_code == "L-DB2E81BA"
    assert spot.unit == on_demand.unit == "vCPUs"
    (hint,) = plan_of(previews["aws-pool"].to_json()).hints
    assert hint.severity == "ok" and "6 instance types in 3 zones" in hint.message


def test_a_gce_pool_needs_preemptible_gpus_in_its_region_and_in_all_regions(previews):
    found = needs(previews, "gcp-pool")
    regional = found.pop("gce-gpus:spot:nvidia-l4")
    everywhere = found.pop("gce-gpus-all-regions")
    assert not found
    # 1..4 g2-standard-8 VMs of one L4 each; a rollout adds up to 3 surge VMs (maxSurgeFixed).
    assert bounds(regional) == bounds(everywhere) == (1, 4, 7)
    assert (regional.region, everywhere.region) == ("us-central1", "global")
    assert regional.project == "acme-llm-pool" and regional.unit == "GPUs"


def test_vertex_needs_its_custom_model_serving_gpus(previews):
    found = needs(previews, "gcp-prod")
    n = found.pop("vertex-gpus:NVIDIA_L4")
    router = found.pop("cloud-run-cpu")
    assert not found
    assert n.service == "aiplatform.googleapis.com" and n.resources == ("gcp-prod-chat-deployment",)
    assert (bounds(n), n.region, n.project) == ((1, 3, 3), "us-central1", "acme-llm-prod")
    # The router on Cloud Run: 1..3 instances of 1 vCPU; a new revision's minimum starts beside the old one's.
    assert (router.service, router.unit, router.quota_name) == (
        "run.googleapis.com", "milli-vCPUs", "CpuAllocPerProjectRegion")
    assert (bounds(router), router.region, router.project) == ((1000, 3000, 4000), "us-central1", "acme-llm-prod")
    assert router.resources == ("gcp-prod-router-service",)


@pytest.mark.parametrize("stack", ["onprem", "edge", "hf-dev", "hybrid"])
def test_stacks_on_our_own_hardware_or_hugging_face_need_no_cloud_quota(previews, stack):
    quota_plan = plan_of(previews[stack].to_json())
    assert quota_plan.needs == [] and quota_plan.unknown == []
    if stack in ("hf-dev", "hybrid"):  # Hugging Face's own limits are named, not checked
        (hint,) = quota_plan.hints
        assert "Hugging Face namespace's own GPU limits" in hint.message


def test_two_targets_on_one_quota_are_summed(previews):
    graph = previews["aws-prod"].to_json()
    twice = json.loads(json.dumps(graph))
    for r in graph["resources"]:
        copy = json.loads(json.dumps(r))
        copy["urn"] += "-b"
        copy["name"] += "-b"
        if copy.get("parent"):
            copy["parent"] += "-b"
        twice["resources"].append(copy)
    summed = {n.need: n for n in plan_of(twice).needs}
    n, router = summed.pop("sagemaker-endpoint:ml.g5.2xlarge"), summed.pop("fargate-vcpus:on-demand")
    assert not summed
    assert bounds(n) == (2, 8, 16) and n.resources == ("aws-prod-chat-config", "aws-prod-chat-config-b")
    assert bounds(router) == (4, 8, 16)
    assert router.resources == ("aws-prod-router-service", "aws-prod-router-service-b")


def test_the_pull_request_section_lists_each_quota_with_its_amounts(previews):
    text = markdown(to_json("aws-prod", plan_of(previews["aws-prod"].to_json())))
    assert "#### Quotas needed: `aws-prod`" in text
    assert "| sagemaker | ml.g5.2xlarge for endpoint usage" in text and "| us-east-1 | instances | 1 | 4 | 8 |" in text
    assert "not a check of the account" in text
    assert "No cloud quota" in markdown(to_json("onprem", plan_of(previews["onprem"].to_json())))


def selfhost(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SELFHOST, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_the_cli_reports_every_stack_in_every_format():
    run = selfhost("quota", "--all", "--format", "json")
    assert run.returncode == 0, run.stderr
    stacks = {s["stack"]: s for s in json.loads(run.stdout)["stacks"]}
    assert set(stacks) >= {"aws-prod", "aws-pool", "gcp-pool", "gcp-prod", "onprem"}
    found = {n["need"]: n for n in stacks["aws-prod"]["needs"]}
    assert set(found) == {"sagemaker-endpoint:ml.g5.2xlarge", "fargate-vcpus:on-demand"}
    n, router = found["sagemaker-endpoint:ml.g5.2xlarge"], found["fargate-vcpus:on-demand"]
    assert (n["atMin"], n["atMax"], n["atUpdate"], "check" in n) == (1, 4, 8, False)
    assert (router["atMin"], router["atMax"], router["atUpdate"], "check" in router) == (2, 4, 8, False)
    assert stacks["aws-prod"]["checked"] is False
    table = selfhost("quota", "aws-pool")
    assert table.returncode == 0 and "Running On-Demand G and VT instances" in table.stdout
    assert selfhost("quota", "nope").returncode == 1
    assert selfhost("quota", "aws-pool", "--format", "yaml").returncode == 1


def test_check_without_credentials_says_unknown_and_how_to_get_them():
    env = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true", "NO_GCE_CHECK": "True", "AWS_CONFIG_FILE": "/dev/null",
           "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "GOOGLE_APPLICATION_CREDENTIALS": ""}
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        env.pop(key, None)
    run = subprocess.run([SELFHOST, "quota", "aws-prod", "--check", "--format", "json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600, env={**env, "HOME": "/nonexistent"})
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert {n["need"] for n in report["needs"]} == {"sagemaker-endpoint:ml.g5.2xlarge", "fargate-vcpus:on-demand"}
    assert report["checked"] is True
    for n in report["needs"]:  # the router's Fargate quota as the endpoint's: unknown without credentials
        assert n["check"]["state"] == "unknown" and "no credentials" in n["check"]["note"], n["need"]


def test_a_short_quota_fails_the_check_with_exit_6(monkeypatch):
    from typer.testing import CliRunner

    import components.quota_check as quota_check
    from selfhost.cli import app

    def short(needs):
        return [quota_check.QuotaStatus(n, limit=2.0, usage=0.0, state="short", short_by=n.at_update - 2,
                                        note=f"{n.at_update:g} needed during an update, 2 allowed.",
                                        increase="aws service-quotas request-service-quota-increase ...")
                for n in needs]

    monkeypatch.setattr(quota_check, "check", short)
    result = CliRunner().invoke(app, ["quota", "aws-prod", "--check", "--format", "markdown"])
    assert result.exit_code == 6, result.output
    assert "**short by 6**" in result.output and "To raise it: aws service-quotas" in result.output
