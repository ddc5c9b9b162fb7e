"""The `kubernetes` platform: a cluster of the team's own, reached through an explicit provider (a kubeconfig kept
as a secret, or a named context), never the machine's ambient default; with the NVIDIA GPU Operator by config.

Its config is the `kubernetes` section (how to reach the cluster, its version, what its hours cost the owner, the
optional GPU Operator) and the `kubeconfig` secret. On-prem hardware has no price list: the owner's rates per
GPU-hour and node-hour price it (`cost_inputs`), the same way the clouds' list prices do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import Field

from ..catalog import kubernetes as facts_k8s
from ..catalog.kubernetes import DNS_LABEL
from ..schema import MISSING, PROJECT, EnvironmentSpec, Problem, Slug, StackSecrets, Strict
from .base import Platform, RouterEndpoint, RouterRuntime, TargetKind


class OwnerRates(Strict):
    """What an hour of the owner's hardware costs: amortised purchase, power, cooling, space, support."""

    gpu_hour_usd: float = Field(ge=0)
    """One GPU for one hour."""
    node_hour_usd: float = Field(default=0.0, ge=0)
    """The rest of one replica's server for one hour (CPU, memory, its share of the chassis); for a CPU-only
    replica, all of it."""
    cpu_hour_usd: float | None = Field(default=None, ge=0)
    """One CPU core of the cluster's general-purpose nodes for one hour: what the router's pods cost."""
    basis: str = Field(default="owner's rate", min_length=1, max_length=200)
    """How the rates were worked out, shown as their source in cost reports."""
    as_of: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    """When (ISO date)."""


class GpuOperator(Strict):
    enabled: bool = False
    version: str = Field(default=facts_k8s.GPU_OPERATOR_VERSION, pattern=r"^v\d+\.\d+\.\d+$")
    """The chart version, pinned."""
    namespace: str = Field(default="gpu-operator", pattern=DNS_LABEL)
    driver: bool = True
    """Let the operator install the NVIDIA driver; false where the nodes already have one."""


class KubernetesCluster(Strict):
    """The `kubernetes` section: the cluster every `kubernetes` target of the stack runs on."""

    name: Slug
    """The cluster's name in outputs and cost reports."""
    context: str | None = Field(default=None, min_length=1, max_length=253)
    """A context of the kubeconfig file on the machine that runs `pulumi up`; or set `kubeconfig` (a secret)."""
    version: str = Field(pattern=r"^1\.\d{1,2}$")
    """The cluster's Kubernetes minor version, e.g. 1.31: manifests are checked against its API schemas."""
    cost: OwnerRates
    gpu_operator: GpuOperator = GpuOperator()
    ingress_namespace: str = Field(default="ingress-nginx", pattern=DNS_LABEL)
    """Where the ingress controller runs: the only namespace allowed in to an Ingress-fronted target."""
    monitoring_namespace: str = Field(default="monitoring", pattern=DNS_LABEL)
    """Where Prometheus runs: allowed to scrape /metrics."""
    monitoring_labels: dict[str, str] = Field(default={}, max_length=10)
    """Labels the cluster's Prometheus selects ServiceMonitors and PrometheusRules by, put on ours: a
    kube-prometheus-stack install selects `release: <its Helm release>` unless its `*SelectorNilUsesHelmValues` are
    false, e.g. {release: kube-prometheus-stack}."""
    prometheus_url: str | None = Field(default=None, pattern=r"^https?://[\w.-]+(:\d+)?(/.*)?$")
    """The Prometheus KEDA queries for queue-depth autoscaling."""


class ClusterSettings(Strict):
    cluster: KubernetesCluster | None = Field(default=None, alias="kubernetes")
    """The cluster `kubernetes` targets (and the router) run on."""
    kubeconfig: bool = Field(default=False, alias="kubeconfig")
    """Whether a kubeconfig is configured (a secret). Its value never enters this model."""


class Cluster(Platform):
    name = "kubernetes"
    title = "Kubernetes"
    settings = ClusterSettings
    secrets: ClassVar[dict[str, str]] = {
        "kubeconfig": "set it with `pulumi config set --secret kubeconfig < ~/.kube/config`"}
    packages = ("kubernetes", "random")
    owner_rates = True
    aliases = ("onprem",)
    login = ("the stack's `kubeconfig` secret, or a context of the runner's kubeconfig (the repository secret "
             "KUBECONFIG)")
    nat_modes = ("none", "single", "per-az")  # the cluster's egress is its own; `network` does not apply
    free_types = frozenset({"kubernetes:helm.sh/v3:Release", "kubernetes:core/v1:Namespace"})

    def of(self, env: EnvironmentSpec) -> ClusterSettings:
        return env.settings(self.name)

    def region(self, env: EnvironmentSpec) -> str | None:
        cluster = self.of(env).cluster
        return cluster.name if cluster else None

    def validate(self, env: EnvironmentSpec) -> list[Problem]:
        settings = self.of(env)
        cluster = settings.cluster
        if cluster is None:
            return [Problem(f"{PROJECT}:kubernetes", MISSING, "required for kubernetes targets and the router",
                            "{name, version, cost: {gpuHourUsd, nodeHourUsd, asOf}, and context or kubeconfig}")]
        problems = []
        if cluster.version not in facts_k8s.SUPPORTED_VERSIONS:
            problems.append(Problem(f"{PROJECT}:kubernetes.version", cluster.version,
                                    "no API schemas to check the manifests against",
                                    ", ".join(facts_k8s.SUPPORTED_VERSIONS)))
        if settings.kubeconfig == (cluster.context is not None):
            problems.append(Problem(f"{PROJECT}:kubernetes.context", cluster.context,
                                    "set exactly one way to reach the cluster" if settings.kubeconfig else
                                    "no way to reach the cluster",
                                    "a kubeconfig context name, or `pulumi config set --secret kubeconfig "
                                    "< kubeconfig.yaml` (not both)"))
        return problems

    def cost_inputs(self, env: EnvironmentSpec) -> dict[str, Any]:
        cluster = self.of(env).cluster
        return {"ownerRates": cluster.cost.model_dump(by_alias=True)} if cluster else {}

    def declare(self, env: EnvironmentSpec, needs: frozenset[str], secrets: StackSecrets
                ) -> tuple[Any, dict[str, Any]]:
        from ..k8s.cluster import declare_cluster

        cluster = self.of(env).cluster
        assert cluster is not None  # validated: its targets require it
        return declare_cluster(env.name, cluster, secrets.get("kubeconfig"), gpu="gpu" in needs, tags=env.all_tags)

    router_needs = frozenset()
    router_secrets_as = "files"  # a Secret mounted read-only: the restricted profile keeps secrets out of env

    def router_reaches(self, kind: TargetKind, target: Any) -> str | None:
        if kind.platform not in (self.name, "huggingface"):
            return "it answers only inside its cloud network, which the cluster is not part of"
        auth = kind.auth(target)
        # The router presents a key: our adapter's, or a Hugging Face token. IAM-signed calls need the cloud's
        # credentials, which a pod on the team's cluster does not hold.
        if auth not in ("api-key", "hf-token"):
            return f"it authenticates with {auth} (kubernetes targets, and hf-endpoint targets of endpointType " \
                   "authenticated, take a key)"
        return None

    def declare_router(self, env: EnvironmentSpec, foundation: Any, runtime: RouterRuntime) -> RouterEndpoint:
        from ..k8s.cluster import labels_of
        from ..k8s.router import Router, RouterArgs
        from ..litellm import CONFIG_FILE, FILE_VARIABLES, ROUTER_MODULE

        # On the cluster the files are a ConfigMap and the secrets a mounted Secret (`router_secrets_as`), not the
        # environment variables a cloud's command reads.
        files = {FILE_VARIABLES[variable]: text for variable, text in runtime.files.items()}
        module = files[f"{ROUTER_MODULE}.py"]
        assert isinstance(module, str)
        router = Router(runtime.name, RouterArgs(
            environment=env.name, foundation=foundation, spec=env.router, image=runtime.image,
            config=files[CONFIG_FILE], module=module, secrets=runtime.secrets, generated=runtime.generated,
            route_order=[e.name for e in runtime.routes], labels=labels_of(env.all_tags)))
        return RouterEndpoint(base_url=router.base_url, keys=router.keys, details={
            "inClusterUrl": router.in_cluster_url, "namespace": router.namespace})

    def tag_field(self, token: str) -> tuple[str, ...] | None:
        # Helm releases carry no labels of their own; random passwords exist only in state.
        if token.startswith("kubernetes:") and not token.startswith("kubernetes:helm.sh/"):
            return ("metadata", "labels")
        return None

    def mocks(self) -> Mapping[str, Any]:
        from ..k8s.mocks import RESOURCES

        return RESOURCES

    def terraform(self) -> tuple[Mapping[str, Any], Mapping[str, str], Mapping[str, str]]:
        from ..k8s.terraform import NOT_MAPPED, PROVIDERS, TYPES

        return TYPES, PROVIDERS, NOT_MAPPED

    def replacement_rules(self) -> tuple[Mapping[str, Any], tuple[tuple[str, Any], ...]]:
        from ..k8s.replacement import PREFIXES, RULES

        return RULES, PREFIXES

    def policy_rules(self) -> Sequence[Any]:
        from ..k8s.policies import RULES

        return RULES

    def deletes_before_replace(self, token: str) -> bool:
        # pulumi-kubernetes replaces an object with a fixed metadata.name delete-first (the API allows one name).
        return token.startswith("kubernetes:")


CLUSTER = Cluster()
