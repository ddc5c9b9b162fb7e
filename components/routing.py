"""The hybrid router's configuration: one OpenAI-compatible entry point (the LiteLLM proxy) in front of several
serving targets, on-prem first and the cloud on overflow or failure.

`RouterSpec` is the stack config's `router` section; `router_problems` checks it against the targets. The proxy's
own configuration, written from the targets' endpoint records, is components/litellm.py's (re-exported here);
components/k8s/router.py deploys it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pydantic import Field

from .catalog.kubernetes import DNS_LABEL
from .litellm import ROUTABLE_AUTH
from .schema import MISSING, PROJECT, Problem, Slug, Strict
from .targets.kubernetes import Ingress, Resources

if TYPE_CHECKING:
    from .schema import EnvironmentSpec

IMAGE_REF = r"^[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)+(:[\w.-]+)?(@sha256:[0-9a-f]{64})?$"

DIGEST_HELP = ("the image pinned by digest, <name>:<tag>@sha256:<64 hex>: `docker buildx imagetools inspect "
               "ghcr.io/berriai/litellm-non_root:<tag>` (or `crane digest ...`) prints the digest of the tag")

ROUTER_PLATFORM = "kubernetes"
"""The router runs on the stack's cluster (the platform whose foundation its component takes)."""


class RouterSpec(Strict):
    """The `router` section: one OpenAI-compatible entry point, the LiteLLM proxy on the stack's Kubernetes
    cluster, in front of targets of the stack that serve the same model, tried in `order`."""

    order: list[Slug] = Field(min_length=2, max_length=8)
    """Target names, first used first: the next takes a request only while every earlier one fails (refused,
    5xx, 429, timeout) or is cooling down after failing."""
    namespace: str | None = Field(default=None, pattern=DNS_LABEL)
    """Default: <environment>-router."""
    replicas: int = Field(default=2, ge=1, le=20)
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

    def namespace_in(self, environment: str) -> str:
        return self.namespace or f"{environment}-router"


def router_problems(env: EnvironmentSpec, router: RouterSpec) -> list[Problem]:
    """The router section against the rest of the config: it runs on the stack's cluster, routes only to
    targets it can reach and authenticate to, and all of them serve the same model."""
    from .targets.registry import kind_of

    problems: list[Problem] = []
    p = lambda key, *rest: problems.append(Problem(f"{PROJECT}:router.{key}", *rest))  # noqa: E731
    targets = {t.name: t for t in env.targets}
    if len(set(router.order)) != len(router.order):
        p("order", router.order, "names a target twice", "each target once")
    models = set()
    for i, name in enumerate(router.order):
        target = targets.get(name)
        if target is None:
            p(f"order[{i}]", name, "no target with this name", ", ".join(targets))
            continue
        kind = kind_of(target)
        auth = kind.auth(target)
        if auth not in ROUTABLE_AUTH or not kind.reachable_by_router:
            why = ("answers only inside its cloud network" if not kind.reachable_by_router
                   else f"authenticates with {auth}")
            p(f"order[{i}]", name, f"a {target.kind} target {why}, which the router on the cluster cannot reach "
              "or speak", "kubernetes targets, and hf-endpoint targets of endpointType authenticated")
        if any(m.name == target.model for m in env.models):  # else that target's own problem
            models.add(env.model(target.model).id)
    if len(models) > 1:
        p("order", router.order, f"the targets serve different models ({', '.join(sorted(models))}): a fallback "
          "must answer the same way", "targets serving one model")
    bad = [n for n in router.allow_from_namespaces if not re.fullmatch(DNS_LABEL, n)]
    if bad:
        p("allowFromNamespaces", bad[0], "not a namespace name", "a DNS label")
    if router.ingress and not (router.ingress.cluster_issuer or router.ingress.tls_secret):
        p("ingress.clusterIssuer", MISSING, "an Ingress without TLS would carry API keys in clear text",
          "a cert-manager ClusterIssuer, or ingress.tlsSecret")
    if env.tier == "production" and "@sha256:" not in (router.image or ""):
        p("image", router.image or MISSING, "a production stack runs every image by digest, so each node pulls the "
          "very image that was tested (a tag can move)", DIGEST_HELP)
    if not router.ingress and not router.allow_from_namespaces:
        p("allowFromNamespaces", [], "nothing could reach the router: its NetworkPolicy admits only an Ingress "
          "controller and these namespaces", "namespaces of the callers, or set ingress")
    return problems


