"""The router's configuration: one OpenAI-compatible entry point (the LiteLLM proxy) in front of the stack's
serving targets, tried in order, with its own callers' keys and limits.

`RouterSpec` is the stack config's `router` section; `router_problems` checks it against the targets and the
platform it runs on (`router_platform`: the stack's cluster, or AWS or Google Cloud, where the platform's
`declare_router` runs it in its serverless container service). The proxy's own configuration, written from the
targets' endpoint records, is components/litellm.py's.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from .catalog.kubernetes import DNS_LABEL
from .schema import MISSING, PROJECT, Problem, Slug, Strict
from .targets.kubernetes import Ingress, Resources

if TYPE_CHECKING:
    from .schema import EnvironmentSpec

IMAGE_REF = r"^[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)+(:[\w.-]+)?(@sha256:[0-9a-f]{64})?$"

DIGEST_HELP = ("the image pinned by digest, <name>:<tag>@sha256:<64 hex>: `docker buildx imagetools inspect "
               "ghcr.io/berriai/litellm-non_root:<tag>` (or `crane digest ...`) prints the digest of the tag")

CLUSTER = "kubernetes"
"""The platform of the stack's own cluster: where the router runs by default when the stack has one."""
CLUSTER_ONLY = ("namespace", "ingress", "allow_from_namespaces")
"""Keys only a router on the cluster reads; a cloud router is reached through its load balancer instead."""
CLOUD_ONLY = ("max_replicas", "allowed_cidrs", "certificate")
"""Keys only a router on a cloud's container service reads."""


class Caller(Strict):
    """One caller of the router: its own generated key (a secret in the `router` stack output), and its limits,
    which the router enforces per replica (components/litellm.py says how)."""

    id: Slug
    requests_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    tokens_per_minute: int | None = Field(default=None, ge=1, le=1_000_000_000)
    """Prompt and completion tokens."""
    max_concurrent: int | None = Field(default=None, ge=1, le=10_000)
    """Requests in flight at once."""


class RouterSpec(Strict):
    """The `router` section: one OpenAI-compatible entry point, the LiteLLM proxy, in front of targets of the stack
    that serve the same model, tried in `order`: on the stack's Kubernetes cluster, or on AWS (ECS on Fargate
    behind an internal HTTPS load balancer) or Google Cloud (Cloud Run, internal ingress)."""

    order: list[Slug] = Field(min_length=1, max_length=8)
    """Target names, first used first: the next takes a request only while every earlier one fails (refused,
    5xx, 429, timeout) or is cooling down after failing. One target: an OpenAI entry point with keys in front."""
    platform: str | None = None
    """Where it runs: `kubernetes` (the stack's cluster; the default when the stack has one), `aws`, `gcp` (the
    default, without a cluster: the platform of the first target in `order`)."""
    callers: list[Caller] = Field(default=[Caller(id="default")], min_length=1, max_length=50)
    """Who may call it, each with a key of its own; rotate a key by renaming its caller."""
    namespace: str | None = Field(default=None, pattern=DNS_LABEL)
    """On the cluster. Default: <environment>-router."""
    replicas: int = Field(default=2, ge=1, le=20)
    """Replicas (on a cloud: the minimum)."""
    max_replicas: int | None = Field(default=None, ge=1, le=100)
    """On a cloud: the most replicas autoscaling may run. Default: `replicas`."""
    allowed_cidrs: list[str] = Field(default=[], max_length=50)
    """On a cloud: address ranges beside the stack's own network that may reach the router (peered networks, a
    VPN)."""
    certificate: str | None = Field(default=None, min_length=1, max_length=2048)
    """On a cloud: the certificate its load balancer presents (an ACM ARN on AWS). Default: one the stack issues
    from its own CA (AWS; the CA certificate is in the `router` output), or the platform's own (Cloud Run)."""
    ingress: Ingress | None = None
    """As a kubernetes target's `ingress` (host, className, clusterIssuer or tlsSecret): callers outside the
    cluster reach the router there."""
    allow_from_namespaces: list[str] = Field(default=[], max_length=50)
    """Namespaces whose pods may call the router (its NetworkPolicy denies everyone else)."""
    cooldown_seconds: float = Field(default=30, gt=0, le=3600)
    """How long a failing target is skipped (unless its own Retry-After says otherwise)."""
    timeout_seconds: float = Field(default=600, ge=10, le=3600)
    """The longest a single attempt may take: keep it above the longest generation."""
    retries: int = Field(default=1, ge=0, le=5)
    """Retries of a failed request before it moves to the next target in `order`."""
    burst_share: float | None = Field(default=None, ge=0, lt=1)
    """For the cost estimate: the share of requests the targets after the first serve. Unset: what the first
    cannot serve at its maximum replicas at the usage's service level."""
    image: str | None = Field(default=None, pattern=IMAGE_REF)
    """The LiteLLM proxy image, e.g. pinned by digest (required in a `production` tier stack: DIGEST_HELP says how
    to find it). Default: LiteLLM's non-root image of the version the tests run (components/k8s/router.py IMAGE),
    by tag."""
    resources: Resources = Resources(cpu="1", memory="2Gi")
    """CPU and memory of each replica (request and limit)."""

    @field_validator("allowed_cidrs")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        for cidr in v:
            try:
                network = ipaddress.ip_network(cidr, strict=True)
            except ValueError:
                raise ValueError(f"{cidr!r} is not a network in CIDR notation (e.g. 10.8.0.0/16)") from None
            if network.prefixlen == 0:
                raise ValueError(f"{cidr!r} is the whole internet: the router is for the team's network")
        return v

    def namespace_in(self, environment: str) -> str:
        return self.namespace or f"{environment}-router"

    @property
    def most_replicas(self) -> int:
        return max(self.max_replicas or self.replicas, self.replicas)


def router_platform(env: EnvironmentSpec, router: RouterSpec) -> str:
    """Where the router runs: as configured, else the stack's cluster if it has one, else the platform of the
    first target it routes to (or the cluster, when that target is not in the config)."""
    if router.platform:
        return router.platform
    from .targets.registry import kind_of

    if env.settings(CLUSTER).cluster is not None:
        return CLUSTER
    first = next((t for t in env.targets if router.order and t.name == router.order[0]), None)
    return kind_of(first).platform if first is not None else CLUSTER


def router_problems(env: EnvironmentSpec, router: RouterSpec) -> list[Problem]:
    """The router section against the rest of the config: it runs on a platform that hosts routers, routes only to
    targets it can reach and authenticate to from there (`Platform.router_reaches`), all serving the same model."""
    from .targets.registry import PLATFORMS, kind_of

    problems: list[Problem] = []
    p = lambda key, *rest: problems.append(Problem(f"{PROJECT}:router.{key}", *rest))  # noqa: E731
    hosts = [name for name, platform in PLATFORMS.items() if platform.router_needs is not None]
    where = router_platform(env, router)
    platform = PLATFORMS.get(where)
    if platform is None or platform.router_needs is None:
        p("platform", where, "no router runs there", ", ".join(hosts))
        return problems
    on_cluster = where == CLUSTER
    for key in CLUSTER_ONLY if not on_cluster else CLOUD_ONLY:
        value = getattr(router, key)
        if value:
            camel = re.sub(r"_(\w)", lambda m: m.group(1).upper(), key)
            p(camel, value, f"a router on {where} does not read it", f"leave it out, or platform: "
              f"{CLUSTER if not on_cluster else ' or '.join(h for h in hosts if h != CLUSTER)}")
    targets = {t.name: t for t in env.targets}
    if len(set(router.order)) != len(router.order):
        p("order", router.order, "names a target twice", "each target once")
    models = set()
    for i, name in enumerate(router.order):
        target = targets.get(name)
        if target is None:
            p(f"order[{i}]", name, "no target with this name", ", ".join(targets))
            continue
        why = platform.router_reaches(kind_of(target), target)
        if why:
            p(f"order[{i}]", name, f"a router on {where} cannot call this {target.kind} target: {why}",
              "targets the router's platform reaches (README: The router)")
        if any(m.name == target.model for m in env.models):  # else that target's own problem
            models.add(env.model(target.model).id)
    if len(models) > 1:
        p("order", router.order, f"the targets serve different models ({', '.join(sorted(models))}): a fallback "
          "must answer the same way", "targets serving one model")
    ids = [c.id for c in router.callers]
    if len(set(ids)) != len(ids):
        p("callers", ids, "names a caller twice", "distinct caller ids")
    if env.tier == "production" and "@sha256:" not in (router.image or ""):
        p("image", router.image or MISSING, "a production stack runs every image by digest, so each node pulls the "
          "very image that was tested (a tag can move)", DIGEST_HELP)
    if router.max_replicas is not None and router.max_replicas < router.replicas:
        p("maxReplicas", router.max_replicas, f"below replicas ({router.replicas})", f"{router.replicas} or more")
    if on_cluster:
        bad = [n for n in router.allow_from_namespaces if not re.fullmatch(DNS_LABEL, n)]
        if bad:
            p("allowFromNamespaces", bad[0], "not a namespace name", "a DNS label")
        if router.ingress and not (router.ingress.cluster_issuer or router.ingress.tls_secret):
            p("ingress.clusterIssuer", MISSING, "an Ingress without TLS would carry API keys in clear text",
              "a cert-manager ClusterIssuer, or ingress.tlsSecret")
        if not router.ingress and not router.allow_from_namespaces:
            p("allowFromNamespaces", [], "nothing could reach the router: its NetworkPolicy admits only an Ingress "
              "controller and these namespaces", "namespaces of the callers, or set ingress")
    return problems
