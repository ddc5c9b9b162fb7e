"""Kubernetes' policy rules, on the pod templates of workloads (Deployments here) and the namespaces objects live
in. `Cluster.policy_rules` (components/targets/cluster.py) hands them to the registry; components/policies.py runs
them after the generic rules.

Pure: no provider SDK.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..cost_rules import Resource
from ..policy import Plan, Rule, dig, rule_decorator, truthy

RULES: list[Rule] = []
rule = rule_decorator(RULES)


def _pods(plan: Plan) -> Iterator[tuple[Resource, dict[str, Any]]]:
    for r in plan.of("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet",
                     "kubernetes:apps/v1:DaemonSet"):
        yield r, dig(r.inputs, "spec", "template", "spec") or {}


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]


def _context(pod: dict[str, Any], container: dict[str, Any], key: str) -> Any:
    """A security setting of the container, or of the pod where the container leaves it to the pod."""
    own = (container.get("securityContext") or {}).get(key)
    return own if own is not None else (pod.get("securityContext") or {}).get(key)


@rule("k8s-non-root", "Containers run as a non-root user.", "high",
      "Set runAsNonRoot: true and a non-zero runAsUser (our images run as 10001).", checkov=("CKV_K8S_23",))
def _k8s_root(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r, pod in _pods(plan):
        for c in _containers(pod):
            if not truthy(_context(pod, c, "runAsNonRoot")) or _context(pod, c, "runAsUser") == 0:
                yield r, f"container {c.get('name')} may run as root"


@rule("k8s-read-only-root", "Containers have a read-only root file system; caches go to volumes.", "medium",
      "Set readOnlyRootFilesystem: true and mount emptyDir or PVC volumes where the program writes.",
      checkov=("CKV_K8S_22",))
def _k8s_ro(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r, pod in _pods(plan):
        for c in _containers(pod):
            if not truthy((c.get("securityContext") or {}).get("readOnlyRootFilesystem")):
                yield r, f"container {c.get('name')} can write its root file system"


@rule("k8s-no-privilege-escalation", "Containers cannot gain privileges, and none is privileged.", "high",
      "Set allowPrivilegeEscalation: false and leave privileged unset.", checkov=("CKV_K8S_20", "CKV_K8S_16"))
def _k8s_escalation(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r, pod in _pods(plan):
        for c in _containers(pod):
            sc = c.get("securityContext") or {}
            if sc.get("allowPrivilegeEscalation") is not False or truthy(sc.get("privileged")):
                yield r, f"container {c.get('name')} may escalate privileges"


@rule("k8s-drop-capabilities", "Containers drop every Linux capability.", "medium",
      "Set capabilities.drop: [ALL] and add none back.", checkov=("CKV_K8S_37", "CKV_K8S_28"))
def _k8s_caps(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r, pod in _pods(plan):
        for c in _containers(pod):
            caps = (c.get("securityContext") or {}).get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []) or caps.get("add"):
                yield r, f"container {c.get('name')} keeps Linux capabilities"


@rule("k8s-seccomp", "Pods run under the runtime's default seccomp profile.", "medium",
      "Set securityContext.seccompProfile.type: RuntimeDefault on the pod.", checkov=("CKV_K8S_31",))
def _k8s_seccomp(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r, pod in _pods(plan):
        for c in _containers(pod):
            profile = _context(pod, c, "seccompProfile") or {}
            if profile.get("type") not in ("RuntimeDefault", "Localhost"):
                yield r, f"container {c.get('name')} runs without a seccomp profile"


@rule("k8s-requests-and-limits", "Containers set CPU and memory requests and limits.", "medium",
      "Set resources.requests and resources.limits for cpu and memory.",
      checkov=("CKV_K8S_10", "CKV_K8S_11", "CKV_K8S_12", "CKV_K8S_13"))
def _k8s_resources(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r, pod in _pods(plan):
        for c in _containers(pod):
            res = c.get("resources") or {}
            missing = [f"{kind}.{what}" for kind in ("requests", "limits") for what in ("cpu", "memory")
                       if what not in (res.get(kind) or {})]
            if missing:
                yield r, f"container {c.get('name')} lacks {', '.join(missing)}"


@rule("k8s-probes", "Serving containers have startup, readiness and liveness probes.", "medium",
      "Add the probes (the adapter: startup and readiness on /health, liveness on /livez).",
      checkov=("CKV_K8S_8", "CKV_K8S_9"))
def _k8s_probes(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r, pod in _pods(plan):
        for c in pod.get("containers") or []:
            missing = [p for p in ("startupProbe", "readinessProbe", "livenessProbe") if not c.get(p)]
            if missing:
                yield r, f"container {c.get('name')} has no {', '.join(missing)}"


@rule("k8s-no-default-namespace", "Objects live in a namespace of their own, never `default`.", "medium",
      "Set metadata.namespace (each target gets <environment>-<name>).", checkov=("CKV_K8S_21",))
def _k8s_namespace(plan: Plan) -> Iterator[tuple[Resource, str]]:
    cluster_scoped = ("kubernetes:core/v1:Namespace", "kubernetes:helm.sh/v3:Release")
    for r in plan.resources:
        if r.type.startswith("kubernetes:") and r.type not in cluster_scoped:
            if dig(r.inputs, "metadata", "namespace") in (None, "", "default"):
                yield r, "in the default namespace"


@rule("k8s-service-account", "Pods run under their own service account, with no API token mounted.", "medium",
      "Set serviceAccountName to a dedicated account and automountServiceAccountToken: false.",
      checkov=("CKV_K8S_38", "CKV_K8S_41"))
def _k8s_sa(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r, pod in _pods(plan):
        if pod.get("serviceAccountName") in (None, "", "default"):
            yield r, "runs under the default service account"
        if pod.get("automountServiceAccountToken") is not False:
            yield r, "mounts a service account token"


@rule("k8s-secrets-as-files", "Secrets reach containers as mounted files, never environment variables.", "high",
      "Mount the Secret as a volume and point the program at the file (HF_TOKEN_PATH, --api-keys-file).",
      checkov=("CKV_K8S_35",))
def _k8s_secret_env(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r, pod in _pods(plan):
        for c in _containers(pod):
            for var in c.get("env") or []:
                if dig(var, "valueFrom", "secretKeyRef") or var.get("name") in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
                    yield r, f"container {c.get('name')} takes {var.get('name')} from a secret as a variable"
            if any(dig(source, "secretRef") for source in c.get("envFrom") or []):
                yield r, f"container {c.get('name')} takes a whole Secret as variables"


@rule("k8s-network-policy", "Every namespace with workloads denies all traffic by default; allow rules open what "
      "serving needs.", "high", "Add a NetworkPolicy with an empty podSelector and both policy types, no rules.")
def _k8s_netpol(plan: Plan) -> Iterator[tuple[Resource, str]]:
    deny = {dig(p.inputs, "metadata", "namespace") for p in plan.of("kubernetes:networking.k8s.io/v1:NetworkPolicy")
            if dig(p.inputs, "spec", "podSelector") == {} and not dig(p.inputs, "spec", "ingress")
            and not dig(p.inputs, "spec", "egress")
            and set(dig(p.inputs, "spec", "policyTypes") or []) == {"Ingress", "Egress"}}
    for r, _ in _pods(plan):
        if dig(r.inputs, "metadata", "namespace") not in deny:
            yield r, "its namespace has no default-deny NetworkPolicy"


def _unpinned(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r, pod in _pods(plan):
        for c in _containers(pod):
            if "@sha256:" not in str(c.get("image", "")):
                yield r, f"container {c.get('name')} image {c.get('image')} is pinned by tag, not digest"


_DIGEST_FIX = ("Set the target's imageDigest (the digest the push printed), or the router's image as "
               "name@sha256:... (`docker buildx imagetools inspect <image>:<tag>` prints it).")


@rule("k8s-image-digest", "Images are pinned by digest, so a node pulls exactly what was built (below the "
      "production tier: advisory; our tags are content hashes, but a registry may let them move).", "low",
      _DIGEST_FIX, checkov=("CKV_K8S_43", "CKV_K8S_15"), mandatory=False)
def _k8s_digest(plan: Plan) -> Iterator[tuple[Resource, str]]:
    if not plan.production:
        yield from _unpinned(plan)


@rule("k8s-image-digest-production", "Production stacks run every image by digest.", "high", _DIGEST_FIX,
      checkov=("CKV_K8S_43", "CKV_K8S_15"))
def _k8s_digest_production(plan: Plan) -> Iterator[tuple[Resource, str]]:
    if plan.production:
        yield from _unpinned(plan)
