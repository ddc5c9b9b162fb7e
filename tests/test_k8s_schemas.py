"""tests/k8s_schemas.py, the schema check the rendered manifests go through: valid objects pass, typos and wrong types
are reported with their path, and an object without a known schema is an error, never a pass."""

from __future__ import annotations

from typing import Any

import pytest

from tests.k8s_schemas import UnknownSchemaError, problems, supported_versions

VERSION = "1.31"


def deployment() -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": "llm"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "llm", "namespace": "llm", "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "engine",
                            "image": "ghcr.io/example/engine:1.0",
                            "imagePullPolicy": "IfNotPresent",
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "resources": {"limits": {"nvidia.com/gpu": 1, "memory": "16Gi"}},
                        }
                    ]
                },
            },
        },
    }


def scaled_object() -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "llm", "namespace": "llm"},
        "spec": {
            "scaleTargetRef": {"name": "llm"},
            "minReplicaCount": 1,
            "maxReplicaCount": 4,
            "triggers": [
                {
                    "type": "prometheus",
                    "metadata": {
                        "serverAddress": "http://prometheus.monitoring:9090",
                        "query": "sum(rate(requests_total[1m]))",
                        "threshold": "10",
                    },
                }
            ],
        },
    }


def service_monitor() -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "llm", "namespace": "llm", "labels": {"release": "prometheus"}},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "llm"}},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": "30s"}],
        },
    }


def prometheus_rule() -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "llm", "namespace": "llm"},
        "spec": {
            "groups": [
                {
                    "name": "llm",
                    "partial_response_strategy": "WARN",
                    "rules": [
                        {
                            "alert": "QueueBacklog",
                            "expr": "max(vllm:num_requests_waiting) > 10",
                            "for": "10m",
                            "labels": {"severity": "warning"},
                            "annotations": {"summary": "{{ $value }} waiting"},
                        }
                    ],
                }
            ]
        },
    }


# --- built-in kinds -----------------------------------------------------------------------------------------------


def test_supported_versions_are_the_minor_versions_kubernetes_validate_ships() -> None:
    versions = supported_versions()
    assert versions[0] == "1.25" and "1.31" in versions and "1.37" in versions
    assert [int(v.split(".")[1]) for v in versions] == sorted({int(v.split(".")[1]) for v in versions})


def test_valid_deployment_passes() -> None:
    assert problems(deployment(), VERSION) == []


@pytest.mark.parametrize("version", supported_versions())
def test_valid_deployment_passes_in_every_supported_version(version: str) -> None:
    assert problems(deployment(), version) == []


def test_misspelt_field_is_reported_with_its_path() -> None:
    manifest = deployment()
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container["imagePullPolicyy"] = container.pop("imagePullPolicy")
    assert problems(manifest, VERSION) == ["spec.template.spec.containers[0].imagePullPolicyy: unknown field"]


def test_wrong_type_is_reported_with_its_path() -> None:
    manifest = deployment()
    manifest["spec"]["replicas"] = "2"
    [problem] = problems(manifest, VERSION)
    assert problem.startswith("spec.replicas: '2' is not of type 'integer'")


def test_missing_required_field_is_reported() -> None:
    manifest = deployment()
    del manifest["spec"]["template"]["spec"]["containers"][0]["name"]
    assert problems(manifest, VERSION) == ["spec.template.spec.containers[0]: 'name' is a required property"]


BUILTINS: list[dict[str, Any]] = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "llm"}},
    {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "llm", "namespace": "llm"}},
    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hf"}, "type": "Opaque", "stringData": {"t": "x"}},
    {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "llm"},
        "spec": {"selector": {"app": "llm"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    },
    {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "models"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "50Gi"}}},
    },
    {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "llm"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "llm"}}},
    },
    {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "llm"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "llm"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"protocol": "TCP", "port": 8080}]}],
        },
    },
    {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "llm"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llm"},
            "minReplicas": 1,
            "maxReplicas": 4,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                }
            ],
        },
    },
    {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "llm"},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": "llm.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "llm", "port": {"name": "http"}}},
                            }
                        ]
                    },
                }
            ],
        },
    },
]


@pytest.mark.parametrize("manifest", BUILTINS, ids=[m["kind"] for m in BUILTINS])
def test_every_builtin_kind_the_project_renders_has_a_schema(manifest: dict[str, Any]) -> None:
    assert problems(manifest, VERSION) == []
    assert problems({**manifest, "bogus": 1}, VERSION) == ["bogus: unknown field"]


def test_unknown_top_level_field_is_reported() -> None:
    assert problems({**deployment(), "sepc": {}}, VERSION) == ["sepc: unknown field"]


# --- custom resources -------------------------------------------------------------------------------------------


def test_valid_scaled_object_passes() -> None:
    assert problems(scaled_object(), VERSION) == []


def test_scaled_object_without_triggers_fails() -> None:
    manifest = scaled_object()
    del manifest["spec"]["triggers"]
    assert problems(manifest, VERSION) == ["spec: 'triggers' is a required property"]


def test_scaled_object_misspelt_or_mistyped_trigger_fields_fail() -> None:
    manifest = scaled_object()
    trigger = manifest["spec"]["triggers"][0]
    trigger["metdata"] = trigger.pop("metadata")
    assert problems(manifest, VERSION) == [
        "spec.triggers[0].metdata: unknown field",
        "spec.triggers[0]: 'metadata' is a required property",
    ]
    manifest = scaled_object()
    manifest["spec"]["triggers"][0]["metadata"]["threshold"] = 10  # KEDA's trigger metadata is string to string
    assert problems(manifest, VERSION) == ["spec.triggers[0].metadata.threshold: 10 is not of type 'string'"]


def test_scaled_object_cel_rule_min_not_above_max() -> None:
    manifest = scaled_object()
    manifest["spec"]["minReplicaCount"] = 5
    assert problems(manifest, VERSION) == ["spec: minReplicaCount must be less than or equal to maxReplicaCount"]
    del manifest["spec"]["maxReplicaCount"]  # the rule's default maximum is 100
    assert problems(manifest, VERSION) == []


def test_valid_service_monitor_passes() -> None:
    assert problems(service_monitor(), VERSION) == []


def test_service_monitor_misspelt_endpoint_field_fails() -> None:
    manifest = service_monitor()
    endpoint = manifest["spec"]["endpoints"][0]
    endpoint["intervall"] = endpoint.pop("interval")
    assert problems(manifest, VERSION) == ["spec.endpoints[0].intervall: unknown field"]


def test_service_monitor_pattern_and_int_or_string() -> None:
    manifest = service_monitor()
    manifest["spec"]["endpoints"][0].update(interval="30 seconds", targetPort=8080)
    [problem] = problems(manifest, VERSION)
    assert problem.startswith("spec.endpoints[0].interval: '30 seconds' does not match")
    manifest["spec"]["endpoints"][0].update(interval="1m", targetPort=1.5)
    assert problems(manifest, VERSION) == [
        "spec.endpoints[0].targetPort: 1.5 is not valid under any of the given schemas"
    ]


def test_valid_prometheus_rule_passes() -> None:
    # Its schema's Go pattern `^(?i)(abort|warn)?$` (case-insensitive) is read as the API server reads it.
    assert problems(prometheus_rule(), VERSION) == []


def test_prometheus_rule_misspelt_or_mistyped_fields_fail() -> None:
    manifest = prometheus_rule()
    rule = manifest["spec"]["groups"][0]["rules"][0]
    rule["annotation"] = rule.pop("annotations")
    rule["for"] = "10 minutes"
    found = problems(manifest, VERSION)
    assert found[0] == "spec.groups[0].rules[0].annotation: unknown field"
    assert found[1].startswith("spec.groups[0].rules[0].for: '10 minutes' does not match")
    manifest = prometheus_rule()
    manifest["spec"]["groups"][0]["partial_response_strategy"] = "ignore"
    [problem] = problems(manifest, VERSION)
    assert problem.startswith("spec.groups[0].partial_response_strategy: 'ignore' does not match")
    manifest = prometheus_rule()
    manifest["spec"]["groups"].append({"name": "llm", "rules": []})  # a list map keyed by name
    assert problems(manifest, VERSION) == ["spec.groups[1]: duplicate entry (name='llm'), as item 0"]


def test_custom_resource_unknown_top_level_field_and_metadata_are_checked() -> None:
    manifest = {**service_monitor(), "status": {}, "extra": 1}
    manifest["metadata"] = {**manifest["metadata"], "lables": {}}
    assert problems(manifest, VERSION) == ["extra: unknown field", "metadata.lables: unknown field"]
    manifest = scaled_object()
    manifest["metadata"]["labels"] = {"app.kubernetes.io/name": 1}
    [problem] = problems(manifest, VERSION)
    assert problem.startswith("metadata.labels[\"app.kubernetes.io/name\"]: 1 is not of type 'string'")


# --- no schema: an error, never a pass --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("v1", "Sevrice"),  # a misspelt built-in kind
        ("policy/v1beta1", "PodDisruptionBudget"),  # removed in 1.25
        ("example.com/v1", "Widget"),  # a custom resource without a stored CRD
        ("keda.sh/v1alpha1", "ScaledJob"),
        ("keda.sh/v1", "ScaledObject"),  # a CRD kind at a version not stored
        ("apps.example.com/v1", "Deployment"),  # not apps/v1, though kubernetes_validate alone would take it so
    ],
)
def test_unknown_kind_raises(api_version: str, kind: str) -> None:
    with pytest.raises(UnknownSchemaError, match=kind):
        problems({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}, VERSION)


def test_missing_kind_is_a_problem() -> None:
    assert problems({"apiVersion": "v1", "metadata": {"name": "x"}}, VERSION) == [
        "kind: missing (or not a non-empty string), so the object has no schema"
    ]


@pytest.mark.parametrize("version", ["1.24", "1.3", "1.38", "v1.31", "1.31.0", ""])
def test_unsupported_version_raises(version: str) -> None:
    with pytest.raises(ValueError, match="ships schemas for"):
        problems(deployment(), version)
