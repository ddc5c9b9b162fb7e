"""The `kubernetes` platform's Pulumi types as Terraform resources, for `selfhost export` (components/terraform.py):
Kubernetes objects come in the Kubernetes API's shape and map to the Terraform kubernetes provider's `*_v1` resources
(`containers` -> `container` blocks, every object a block); custom resources to `kubernetes_manifest`; Helm releases
and generated passwords to the helm and random providers' resources.

Read through `Platform.terraform()` of the `kubernetes` platform (components/targets/cluster.py).
"""

from __future__ import annotations

import json
from typing import Any

from ..terraform import TfType

PROVIDERS = {
    "kubernetes": "registry.terraform.io/hashicorp/kubernetes",
    "helm": "registry.terraform.io/hashicorp/helm",
    "random": "registry.terraform.io/hashicorp/random",
}


def _helm(inputs: dict[str, Any]) -> dict[str, Any]:
    """helm_release: the chart repository is an argument of its own, the values a list of YAML documents."""
    out = {k: v for k, v in inputs.items() if k not in ("repositoryOpts", "values", "compat")}
    if repo := (inputs.get("repositoryOpts") or {}).get("repo"):
        out["repository"] = repo
    if "values" in inputs:
        out["values"] = [json.dumps(inputs["values"], sort_keys=True)]  # JSON is YAML
    return out


# The Kubernetes API's lists of objects that the Terraform provider has as repeated blocks of a singular name.
_POD = {"containers": "container", "init_containers": "init_container", "volumes": "volume",
        "volume_mounts": "volume_mount", "ports": "port", "tolerations": "toleration",
        "topology_spread_constraints": "topology_spread_constraint", "http_headers": "http_header",
        "readiness_gates": "readiness_gate", "sysctls": "sysctl", "node_selector_terms": "node_selector_term"}
_K8S_DROP = frozenset({"api_version", "kind"})

TYPES: dict[str, TfType] = {
    "kubernetes:apps/v1:Deployment": TfType("kubernetes_deployment_v1", _POD, drop=_K8S_DROP),
    "kubernetes:apps/v1:StatefulSet": TfType("kubernetes_stateful_set_v1", _POD, drop=_K8S_DROP),
    "kubernetes:apps/v1:DaemonSet": TfType("kubernetes_daemon_set_v1", _POD, drop=_K8S_DROP),
    "kubernetes:core/v1:Pod": TfType("kubernetes_pod_v1", _POD, drop=_K8S_DROP),
    "kubernetes:core/v1:Namespace": TfType("kubernetes_namespace_v1", drop=_K8S_DROP),
    "kubernetes:core/v1:Service": TfType("kubernetes_service_v1", {"ports": "port"}, maps=frozenset({"selector"}),
                                         drop=_K8S_DROP),
    "kubernetes:core/v1:ServiceAccount": TfType(
        "kubernetes_service_account_v1", {"secrets": "secret", "image_pull_secrets": "image_pull_secret"},
        drop=_K8S_DROP),
    "kubernetes:core/v1:Secret": TfType("kubernetes_secret_v1", {"string_data": "data"},
                                        maps=frozenset({"data", "binary_data"}), drop=_K8S_DROP),
    "kubernetes:core/v1:ConfigMap": TfType("kubernetes_config_map_v1", maps=frozenset({"data", "binary_data"}),
                                           drop=_K8S_DROP),
    "kubernetes:core/v1:PersistentVolumeClaim": TfType("kubernetes_persistent_volume_claim_v1", drop=_K8S_DROP),
    "kubernetes:networking.k8s.io/v1:Ingress": TfType(
        "kubernetes_ingress_v1", {"rules": "rule", "paths": "path"}, drop=_K8S_DROP),
    "kubernetes:networking.k8s.io/v1:NetworkPolicy": TfType("kubernetes_network_policy_v1", drop=_K8S_DROP),
    "kubernetes:policy/v1:PodDisruptionBudget": TfType("kubernetes_pod_disruption_budget_v1", drop=_K8S_DROP),
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": TfType(
        "kubernetes_horizontal_pod_autoscaler_v2", {"metrics": "metric", "policies": "policy"}, drop=_K8S_DROP),
    # Custom resources: Terraform's kubernetes_manifest holds any object as it is.
    "kubernetes:keda.sh/v1alpha1:ScaledObject": TfType("kubernetes_manifest", manifest=True),
    "kubernetes:monitoring.coreos.com/v1:ServiceMonitor": TfType("kubernetes_manifest", manifest=True),
    "kubernetes:monitoring.coreos.com/v1:PrometheusRule": TfType("kubernetes_manifest", manifest=True),
    "kubernetes:helm.sh/v3:Release": TfType("helm_release", adapt=_helm),
    "random:index/randomPassword:RandomPassword": TfType("random_password"),
}

NOT_MAPPED: dict[str, str] = {
    "pulumi:providers:kubernetes": "a provider configuration (its kubeconfig is a secret), not a resource",
}
