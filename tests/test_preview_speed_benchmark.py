"""The pure helpers of benchmarks/preview_speed.py: the token-to-class rules its floor rests on, the synthetic
stacks and the figures it reports. (The benchmark itself runs on demand, never in the test suite.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks.preview_speed import (
    CLI_PROCESS_EPILOGUE,
    CLI_PROCESS_PROLOGUE,
    KIND_STACKS,
    ClassRef,
    UnmappedToken,
    class_for,
    flatness,
    floor_classes,
    floor_source,
    marginal_ms,
    marginal_span,
    replicate,
    summarize_kind,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("token", "module", "name"), [
    ("aws:sagemaker/endpoint:Endpoint", "pulumi_aws.sagemaker", "Endpoint"),
    ("gcp:compute/network:Network", "pulumi_gcp.compute", "Network"),
    ("kubernetes:apps/v1:Deployment", "pulumi_kubernetes.apps.v1", "Deployment"),
    ("kubernetes:core/v1:Service", "pulumi_kubernetes.core.v1", "Service"),
    ("kubernetes:networking.k8s.io/v1:Ingress", "pulumi_kubernetes.networking.v1", "Ingress"),
    ("kubernetes:policy/v1:PodDisruptionBudget", "pulumi_kubernetes.policy.v1", "PodDisruptionBudget"),
    ("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "pulumi_kubernetes.autoscaling.v2",
     "HorizontalPodAutoscaler"),
    ("kubernetes:rbac.authorization.k8s.io/v1:Role", "pulumi_kubernetes.rbac.v1", "Role"),
    ("kubernetes:helm.sh/v3:Release", "pulumi_kubernetes.helm.v3", "Release"),
    ("docker-build:index:Image", "pulumi_docker_build", "Image"),
    ("random:index/randomPassword:RandomPassword", "pulumi_random", "RandomPassword"),
    ("command:local:Command", "pulumi_command.local", "Command"),
    ("pulumi:providers:kubernetes", "pulumi_kubernetes", "Provider"),
    ("pulumi:providers:docker-build", "pulumi_docker_build", "Provider"),
])
def test_class_for_maps_a_token_to_the_class_declaring_it(token: str, module: str, name: str) -> None:
    assert class_for(token) == ClassRef(module, name, token)


@pytest.mark.parametrize("token", ["kubernetes:keda.sh/v1alpha1:ScaledObject",
                                   "kubernetes:monitoring.coreos.com/v1:ServiceMonitor",
                                   "kubernetes:gateway.networking.k8s.io/v1:Gateway"])
def test_custom_resources_are_the_generic_class(token: str) -> None:
    assert class_for(token) == ClassRef("pulumi_kubernetes.apiextensions", "CustomResource", None)


def test_dynamic_resources_and_our_components() -> None:
    assert class_for("pulumi-python:dynamic/hf:InferenceEndpoint") == ClassRef("pulumi.dynamic", "Resource", None)
    assert class_for("selfhost:aws:SageMakerEndpoint") is None


@pytest.mark.parametrize("token", ["pulumi:pulumi:Stack", "kubernetes:widgets/v1:Widget", "kubernetes:apps:Thing",
                                   "aws:sagemaker", "aws:bad-module/x:X", "gcp:compute/network:not-a-name"])
def test_a_token_no_rule_covers_is_an_error(token: str) -> None:
    with pytest.raises(UnmappedToken):
        class_for(token)


def test_floor_classes_reports_what_it_cannot_map_and_dedupes() -> None:
    refs, unmapped = floor_classes(["aws:kms/key:Key", "aws:kms/key:Key", "selfhost:aws:Network",
                                    "kubernetes:keda.sh/v1alpha1:ScaledObject",
                                    "kubernetes:monitoring.coreos.com/v1:ServiceMonitor", "pulumi:pulumi:Stack"])
    assert refs == [ClassRef("pulumi_aws.kms", "Key", "aws:kms/key:Key"),
                    ClassRef("pulumi_kubernetes.apiextensions", "CustomResource", None)]
    assert unmapped == ["pulumi:pulumi:Stack"]


def test_floor_source_is_the_imports_inside_the_cli_treatment() -> None:
    refs = [ClassRef("pulumi_aws.appautoscaling", "Policy", None),
            ClassRef("pulumi_aws.appautoscaling", "Target", None), ClassRef("pulumi_aws.autoscaling", "Policy", None)]
    source = floor_source(refs)
    assert source.startswith(CLI_PROCESS_PROLOGUE) and source.endswith(CLI_PROCESS_EPILOGUE)
    assert "gc.disable()" in CLI_PROCESS_PROLOGUE and "os._exit(0)" in CLI_PROCESS_EPILOGUE
    assert "from pulumi_aws.appautoscaling import Policy, Target\n" in source
    assert "from pulumi_aws.autoscaling import Policy\n" in source
    compile(source, "<floor>", "exec")


def test_replicate_names_targets_and_keeps_the_stack_valid_to_preview() -> None:
    targets = [{"kind": "kubernetes", "name": "chat", "ingress": {"host": "llm.example"}},
               {"kind": "hf-endpoint", "name": "burst"}]
    config: dict[str, Any] = {"selfhost-llm:targets": targets, "selfhost-llm:router": {"order": ["chat", "burst"]},
                              "selfhost-llm:budget": {"monthlyUsd": 40}}
    out = replicate(config, "kubernetes", 3)
    assert [t["name"] for t in out["selfhost-llm:targets"]] == ["t0", "t1", "t2"]
    assert [t["ingress"]["host"] for t in out["selfhost-llm:targets"]] == ["t0.llm.example", "t1.llm.example",
                                                                           "t2.llm.example"]
    assert "selfhost-llm:router" not in out
    assert out["selfhost-llm:budget"]["monthlyUsd"] >= 40 * 3
    assert config["selfhost-llm:targets"][0]["name"] == "chat"  # the input is left alone
    with pytest.raises(ValueError):
        replicate(config, "vertex", 2)


@pytest.mark.parametrize("kind", sorted(KIND_STACKS))
def test_every_kind_has_a_shipped_stack_to_replicate(kind: str) -> None:
    shipped = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{KIND_STACKS[kind]}.yaml").read_text())["config"]
    names = [t["name"] for t in replicate(shipped, kind, 200)["selfhost-llm:targets"]]
    assert len(set(names)) == 200 and all(len(n) <= 24 for n in names)


def test_flatness_counts_sizes_from_ten_up() -> None:
    spread, flat = flatness({1: 9.0, 10: 3.0, 50: 3.3, 200: 3.6})
    assert spread == pytest.approx(0.2) and flat is True
    assert flatness({10: 3.0, 200: 4.0})[1] is False
    assert flatness({1: 3.0, 10: 3.0}) == (None, None)


def test_marginal_cost_cancels_the_fixed_part() -> None:
    # 0.5 s fixed, 2 ms per resource: the marginal is 2 ms whatever the sizes.
    points = {n: (r, 0.5 + r * 0.002) for n, r in {10: 150, 50: 710, 200: 2810}.items()}
    assert marginal_ms(points, 10, 200) == pytest.approx(2.0)
    assert marginal_span([1, 10, 50, 200]) == (10, 200)
    assert marginal_span([1, 10]) == (1, 10)
    assert marginal_span([10]) is None


def test_summarize_kind_takes_medians_per_size() -> None:
    runs = [(1, 60, (0.2, 0.3, 0.9)), (10, 177, (0.5, 0.6, 0.55)), (50, 700, (2.0, 2.1, 2.2))]
    rows = [{"n": n, "resources": r, "seconds": s} for n, r, ss in runs for s in ss]
    s = summarize_kind(rows)
    assert [x["seconds"] for x in s["sizes"]] == [0.3, 0.55, 2.1]
    assert s["marginal_span"] == [10, 50]
    assert s["marginal_ms_per_resource"] == pytest.approx((2.1 - 0.55) / (700 - 177) * 1000)
    assert [(g["from"], g["to"]) for g in s["segments"]] == [(1, 10), (10, 50)]
