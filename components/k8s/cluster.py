"""The cluster every `kubernetes` target of a stack runs on: an explicit provider and, by config, the NVIDIA GPU
Operator."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pulumi
import pulumi_kubernetes as k8s

from ..catalog import kubernetes as facts

# Labels every object we create carries (the Kubernetes recommended labels).
MANAGED = {"app.kubernetes.io/part-of": "selfhost-llm", "app.kubernetes.io/managed-by": "pulumi"}


# The SDK's class for each built-in kind; anything else (KEDA, Prometheus Operator) is a CustomResource.
KINDS: dict[tuple[str, str], Any] = {
    ("v1", "Namespace"): k8s.core.v1.Namespace, ("v1", "ServiceAccount"): k8s.core.v1.ServiceAccount,
    ("v1", "Secret"): k8s.core.v1.Secret, ("v1", "ConfigMap"): k8s.core.v1.ConfigMap,
    ("v1", "PersistentVolumeClaim"): k8s.core.v1.PersistentVolumeClaim,
    ("v1", "Service"): k8s.core.v1.Service, ("apps/v1", "Deployment"): k8s.apps.v1.Deployment,
    ("policy/v1", "PodDisruptionBudget"): k8s.policy.v1.PodDisruptionBudget,
    ("networking.k8s.io/v1", "NetworkPolicy"): k8s.networking.v1.NetworkPolicy,
    ("networking.k8s.io/v1", "Ingress"): k8s.networking.v1.Ingress,
    ("autoscaling/v2", "HorizontalPodAutoscaler"): k8s.autoscaling.v2.HorizontalPodAutoscaler,
}
SNAKE = {"apiVersion": "api_version", "stringData": "string_data", "automountServiceAccountToken":
         "automount_service_account_token"}


# Kind -> the role that names its resource (`<component>-<role>`); a kind not here goes by its object's name.
ROLES = {"Namespace": "namespace", "ServiceAccount": "identity", "Secret": "secrets", "ConfigMap": "config",
         "PersistentVolumeClaim": "model-cache", "Service": "service", "Deployment": "deployment",
         "PodDisruptionBudget": "pdb", "HorizontalPodAutoscaler": "autoscaler", "ScaledObject": "autoscaler",
         "Ingress": "ingress", "ServiceMonitor": "monitor"}


def declare_object(name: str, manifest: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    """Declare one manifest (a dict as the API takes it) with the SDK's class for its kind."""
    cls = KINDS.get((manifest["apiVersion"], manifest["kind"]))
    if cls is None:
        return k8s.apiextensions.CustomResource(name, api_version=manifest["apiVersion"], kind=manifest["kind"],
                                                metadata=manifest["metadata"], spec=manifest["spec"], opts=opts)
    fields = {SNAKE.get(k, k): v for k, v in manifest.items() if k not in ("apiVersion", "kind")}
    return cls(name, **fields, opts=opts)


# Addresses that are not the internet: egress to "public addresses" excludes them, so a pod allowed out to the
# internet reaches nothing else in the cluster's or the site's networks.
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10")


def pulled(image: str) -> dict[str, Any]:
    """A container's image and pull policy. By digest, the image cannot change: the policy is left to Kubernetes's
    default for digests (IfNotPresent) rather than written, so scanners that read an explicit policy as "not
    Always" (Checkov's Terraform CKV_K8S_15) see what the cluster does. By tag, IfNotPresent, written: a node
    restarts its pods from its cache when the registry is away (an edge site offline); the tag moving under it is
    what the digest rules (k8s-image-digest) report."""
    return {"image": image} if "@sha256:" in image else {"image": image, "imagePullPolicy": "IfNotPresent"}


def in_namespace(name: str) -> dict[str, Any]:
    """A NetworkPolicy peer: every pod of the namespace `name`."""
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def locked_down(meta: Any, allow: str, selector: dict[str, str], callers: list[str], port: int,
                egress: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A namespace's NetworkPolicies: deny everything, then let the pods `selector` picks take `port` from the
    `callers` namespaces, and go out to DNS, to `egress` (more rules), and to HTTPS on public addresses."""
    return [
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta("default-deny"),
         "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta(allow),
         "spec": {"podSelector": {"matchLabels": selector}, "policyTypes": ["Ingress", "Egress"],
                  "ingress": [{"from": [in_namespace(n) for n in dict.fromkeys(callers)],
                               "ports": [{"protocol": "TCP", "port": port}]}],
                  "egress": [
                      {"to": [{**in_namespace("kube-system"), "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                       "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                      *egress,
                      {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_RANGES)}}],
                       "ports": [{"protocol": "TCP", "port": 443}]},
                  ]}},
    ]


def labels_of(tags: dict[str, str]) -> dict[str, str]:
    """Kubernetes labels from the environment's tags, in the characters label keys and values allow (alphanumerics,
    '-', '_', '.'; at most 63, starting and ending alphanumeric): a Hugging Face id's '/' becomes '.'."""
    def clean(text: str) -> str:
        return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", re.sub(r"[^A-Za-z0-9_.-]", ".", text)[:63])
    return {clean(k): clean(v) for k, v in tags.items()}


class GpuOperatorConfig(Protocol):
    """The GPU Operator's settings, as the cluster reads them."""

    @property
    def enabled(self) -> bool: ...
    @property
    def version(self) -> str:
        """The chart version, pinned."""
        ...
    @property
    def namespace(self) -> str: ...
    @property
    def driver(self) -> bool:
        """Let the operator install the NVIDIA driver."""
        ...


class ClusterConfig(Protocol):
    """What the cluster and the objects declared on it read of the stack's `kubernetes` section: the config model
    (components/targets/) satisfies it, and this package imports no config model."""

    @property
    def name(self) -> str: ...
    @property
    def context(self) -> str | None:
        """A context of the deploying machine's kubeconfig, when no kubeconfig secret is given."""
        ...
    @property
    def version(self) -> str:
        """The Kubernetes minor version, e.g. 1.31: the namespaces enforce Pod Security at it."""
        ...
    @property
    def gpu_operator(self) -> GpuOperatorConfig: ...
    @property
    def ingress_namespace(self) -> str: ...
    @property
    def monitoring_namespace(self) -> str: ...
    @property
    def monitoring_labels(self) -> Mapping[str, str]: ...
    @property
    def prometheus_url(self) -> str | None:
        """The Prometheus KEDA queries for queue-depth autoscaling."""
        ...


@dataclass(frozen=True)
class ClusterFoundation:
    name: str
    config: ClusterConfig
    provider: k8s.Provider
    gpu_operator: k8s.helm.v3.Release | None = None
    """The GPU Operator release, when the stack installs it: GPU workloads wait for it."""


class Cluster(pulumi.ComponentResource):
    """The provider, built from a kubeconfig kept as a secret or a named context, never the machine's default;
    and the NVIDIA GPU Operator as a pinned Helm release in its own namespace, whose Pod Security level is
    `privileged`: its driver, container toolkit and device plugin daemonsets run privileged with host paths."""

    def __init__(self, name: str, config: ClusterConfig, kubeconfig: pulumi.Output[str] | None, gpu: bool,
                 labels: dict[str, str], opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:k8s:Cluster", name, None, opts)
        # Server-side apply (the provider's default) lets the autoscalers own `replicas` without a fight.
        self.provider = k8s.Provider(f"{name}-provider", kubeconfig=kubeconfig, context=config.context,
                                     enable_server_side_apply=True, opts=pulumi.ResourceOptions(parent=self))
        child = pulumi.ResourceOptions(parent=self, provider=self.provider)
        self.gpu_operator: k8s.helm.v3.Release | None = None
        operator = config.gpu_operator
        if operator.enabled and gpu:
            namespace = k8s.core.v1.Namespace(f"{name}-gpu-operator-namespace", metadata={
                "name": operator.namespace,
                "labels": {**labels, **MANAGED, "pod-security.kubernetes.io/enforce": "privileged",
                           "app.kubernetes.io/name": "gpu-operator"}}, opts=child)
            self.gpu_operator = k8s.helm.v3.Release(
                f"{name}-gpu-operator", name="gpu-operator", chart=facts.GPU_OPERATOR_CHART,
                version=operator.version, repository_opts={"repo": facts.GPU_OPERATOR_REPO},
                namespace=operator.namespace, create_namespace=False, atomic=True, timeout=900,
                values={"driver": {"enabled": operator.driver}},
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[namespace])))
        self.register_outputs({"gpuOperator": self.gpu_operator.status if self.gpu_operator else None})


def declare_cluster(env: str, config: ClusterConfig, kubeconfig: pulumi.Output[str] | None, gpu: bool,
                    tags: dict[str, str]) -> tuple[ClusterFoundation, dict[str, object]]:
    cluster = Cluster(f"{env}-{config.name}", config, kubeconfig, gpu, labels_of(tags))
    return (ClusterFoundation(config.name, config, cluster.provider, cluster.gpu_operator),
            {"kubernetesRegion": config.name, "kubernetesVersion": config.version})
