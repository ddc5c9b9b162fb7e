"""The hybrid entry point: the LiteLLM proxy on the stack's cluster, in front of the targets `router.order` names,
configured from their endpoint records (components/routing.py).

`manifests` builds every object as the Kubernetes API takes it; `Router` declares exactly those, so `selfhost
render` writes the same objects. The keys (the router's master key, each target's key) are files of a Secret the
proxy reads when it loads its config: neither the ConfigMap nor the pod's environment holds one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pulumi

from .. import litellm
from ..keys import api_keys
from .cluster import MANAGED, ROLES, ClusterFoundation, declare_object, locked_down, pulled
from .serving import PORT as SERVING_PORT

CONFIG_DIR = "/etc/litellm"
NOBODY = 65534
GRACE_S = 90
"""SIGTERM to SIGKILL (the LiteLLM Helm chart's default): open streams finish."""


class RouterOptions(Protocol):
    """What the router component reads of the stack's `router` section (components/routing.py RouterSpec)."""

    @property
    def replicas(self) -> int: ...
    @property
    def resources(self) -> Any: ...
    """`cpu` and `memory`, requests and limits."""
    @property
    def ingress(self) -> Any: ...
    """`host`, `className`, `clusterIssuer` or `tlsSecret`, as a kubernetes target's; None: inside the cluster."""
    @property
    def allow_from_namespaces(self) -> Sequence[str]: ...
    @property
    def timeout_seconds(self) -> float: ...
    def namespace_in(self, environment: str) -> str: ...


@dataclass(frozen=True)
class RouterArgs:
    environment: str
    foundation: ClusterFoundation
    spec: RouterOptions
    image: str
    config: pulumi.Input[str]
    """The proxy's config.yaml (components/router.py renders it), every secret named by its mounted file."""
    module: str
    """The proxy's auth and usage module (litellm.ROUTER_MODULE), next to config.yaml."""
    secrets: Mapping[str, pulumi.Input[str]]
    """File name -> secret value: the router's Secret, mounted at litellm.SECRETS_DIR."""
    generated: Sequence[str]
    """More files of that Secret: keys the component generates (its callers', its admin key)."""
    route_order: Sequence[str]
    """The targets' names, in the order the router tries them."""
    labels: dict[str, str]


def manifests(args: RouterArgs, secrets: Mapping[str, pulumi.Input[str]], config_hash: pulumi.Input[str]
              ) -> list[dict[str, Any]]:
    """Every object of the router, in apply order."""
    s, ns, cluster = args.spec, args.spec.namespace_in(args.environment), args.foundation.config
    name = "router"
    selector = {"app.kubernetes.io/name": "litellm", "app.kubernetes.io/instance": name}
    labels = {**args.labels, **MANAGED, **selector, "app.kubernetes.io/component": "router"}
    meta = lambda object_name, **extra: {"name": object_name, "namespace": ns, "labels": labels, **extra}  # noqa: E731
    probe = lambda path, **more: {"httpGet": {"path": path, "port": "http"}, "periodSeconds": 10,  # noqa: E731
                                  "timeoutSeconds": 5, **more}
    container = {
        "name": "litellm", **pulled(args.image),
        # The image's entrypoint passes these to `litellm`.
        "args": ["--config", f"{CONFIG_DIR}/{litellm.CONFIG_FILE}", "--host", "0.0.0.0", "--port", str(litellm.PORT),
                 "--telemetry", "False"],
        "ports": [{"name": "http", "containerPort": litellm.PORT, "protocol": "TCP"}],
        "env": [{"name": k, "value": v} for k, v in {
            # The model price map from the image, not fetched from GitHub at start; no admin UI (it needs a
            # database this router does without); no .env file read.
            "LITELLM_LOCAL_MODEL_COST_MAP": "True", "DISABLE_ADMIN_UI": "True", "LITELLM_MODE": "PRODUCTION",
            "LITELLM_LOG": "INFO"}.items()],
        "resources": {"requests": {"cpu": s.resources.cpu, "memory": s.resources.memory},
                      "limits": {"cpu": s.resources.cpu, "memory": s.resources.memory}},
        # The chart's probes: liveness on the process, readiness and start-up on the router being loaded.
        "startupProbe": probe(litellm.READINESS_ROUTE, failureThreshold=30),
        "readinessProbe": probe(litellm.READINESS_ROUTE, failureThreshold=3),
        "livenessProbe": probe(litellm.LIVENESS_ROUTE, failureThreshold=5, periodSeconds=15),
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                         {"name": "secrets", "mountPath": litellm.SECRETS_DIR, "readOnly": True},
                         # HOME and the caches of the image (XDG_CACHE_HOME=/app/.cache).
                         {"name": "tmp", "mountPath": "/tmp"}, {"name": "cache", "mountPath": "/app/.cache"}],
    }
    pod = {
        "serviceAccountName": name, "automountServiceAccountToken": False, "enableServiceLinks": False,
        "terminationGracePeriodSeconds": GRACE_S,
        "securityContext": {"runAsNonRoot": True, "runAsUser": NOBODY, "runAsGroup": NOBODY, "fsGroup": NOBODY,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                       "whenUnsatisfiable": "ScheduleAnyway",
                                       "labelSelector": {"matchLabels": selector}}],
        "containers": [container],
        "volumes": [
            {"name": "config", "configMap": {"name": "router-config"}},
            {"name": "secrets", "secret": {"secretName": "router-secrets", "defaultMode": 0o440, "items": [
                {"key": key, "path": key} for key in secrets]}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
            {"name": "cache", "emptyDir": {"sizeLimit": "1Gi"}},
        ],
    }
    order = ",".join(args.route_order)
    out: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {
            **args.labels, **MANAGED, "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": f"v{cluster.version}",
            "pod-security.kubernetes.io/warn": "restricted", "pod-security.kubernetes.io/audit": "restricted"}}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(name), "automountServiceAccountToken": False},
        {"apiVersion": "v1", "kind": "Secret", "metadata": meta("router-secrets"), "type": "Opaque",
         "stringData": dict(secrets)},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("router-config"),
         "data": {"config.yaml": args.config, f"{litellm.ROUTER_MODULE}.py": args.module}},
        *network_policies(args, selector, meta),
        {"apiVersion": "v1", "kind": "Service", "metadata": meta(name),
         "spec": {"type": "ClusterIP", "selector": selector,
                  "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": meta(name, annotations={"selfhost.dev/role": "router", "selfhost.dev/route-order": order}),
         "spec": {"replicas": s.replicas, "selector": {"matchLabels": selector}, "revisionHistoryLimit": 5,
                  "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                  "template": {"metadata": {"labels": labels, "annotations": {
                      # A new config rolls the pods (the proxy reads it at start only).
                      "selfhost.dev/config-sha256": config_hash}}, "spec": pod}}},
    ]
    if s.replicas > 1:
        out.append({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta(name),
                    "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector},
                             "unhealthyPodEvictionPolicy": "AlwaysAllow"}})
    if s.ingress:
        notes = {"cert-manager.io/cluster-issuer": s.ingress.cluster_issuer} if s.ingress.cluster_issuer else {}
        if s.ingress.class_name == "nginx":
            # Streams: no buffering, and as long as an attempt may take.
            timeout = str(int(s.timeout_seconds) + 60)
            notes |= {"nginx.ingress.kubernetes.io/proxy-buffering": "off",
                      "nginx.ingress.kubernetes.io/proxy-read-timeout": timeout,
                      "nginx.ingress.kubernetes.io/proxy-send-timeout": timeout,
                      "nginx.ingress.kubernetes.io/proxy-body-size": "1m"}
        out.append({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta(name, annotations=notes),
                    "spec": {"ingressClassName": s.ingress.class_name,
                             "tls": [{"hosts": [s.ingress.host], "secretName": s.ingress.tls_secret or "router-tls"}],
                             "rules": [{"host": s.ingress.host, "http": {"paths": [{
                                 "path": "/", "pathType": "Prefix",
                                 "backend": {"service": {"name": name, "port": {"name": "http"}}}}]}}]}})
    return out


def network_policies(args: RouterArgs, selector: dict[str, str], meta: Any) -> list[dict[str, Any]]:
    """Deny everything, then allow callers in (the ingress controller, the configured namespaces) on the proxy's
    port; out: DNS, our serving pods in the cluster, and HTTPS to public addresses (cloud targets)."""
    s, cluster = args.spec, args.foundation.config
    callers = [*s.allow_from_namespaces, *([cluster.ingress_namespace] if s.ingress else [])]
    # The serving pods of this project's targets on the cluster (each admits the router back).
    serving = {"to": [{"namespaceSelector": {"matchLabels": MANAGED},
                       "podSelector": {"matchLabels": {"app.kubernetes.io/component": "serving"}}}],
               "ports": [{"protocol": "TCP", "port": SERVING_PORT}]}
    return locked_down(meta, "allow-router", selector, callers, litellm.PORT, [serving])


class Router(pulumi.ComponentResource):
    """The LiteLLM proxy in a Pod Security `restricted` namespace: its keys (the callers', the targets', the admin
    key) in a Secret mounted as files, its config and auth module in a ConfigMap (rolled into the pods by the
    config's hash), non-root, read-only root, no capabilities, probes on LiteLLM's health routes, spread over nodes
    with a disruption budget, a default-deny NetworkPolicy with what routing needs, and by config an Ingress with
    TLS."""

    def __init__(self, name: str, args: RouterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:k8s:Router", name, None, opts)
        self.keys = api_keys(name, args.generated, self)
        secrets = {**args.secrets, **self.keys}
        digest = pulumi.Output.from_input(args.config).apply(
            lambda text: hashlib.sha256((text + args.module).encode()).hexdigest())
        child = pulumi.ResourceOptions(parent=self, provider=args.foundation.provider)
        declared: dict[str, pulumi.CustomResource] = {}
        for manifest in manifests(args, secrets, digest):
            kind = manifest["kind"]
            role = ROLES.get(kind) or manifest["metadata"]["name"]
            after = list(declared.values()) if kind == "Deployment" else (
                [declared["namespace"]] if "namespace" in declared else [])
            options = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=after))
            declared[role] = declare_object(f"{name}-{role}", manifest, options)
        ns = args.spec.namespace_in(args.environment)
        self.in_cluster_url = f"http://router.{ns}.svc.cluster.local"
        self.base_url = f"https://{args.spec.ingress.host}/v1" if args.spec.ingress else f"{self.in_cluster_url}/v1"
        self.namespace = ns
        self.register_outputs({"namespace": ns, "baseUrl": self.base_url})
