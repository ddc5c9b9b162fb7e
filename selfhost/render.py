"""`selfhost render`: a stack's Kubernetes objects as plain manifests, for kubectl or a GitOps tool, without Pulumi.

The manifests come from the previewed graph, the very objects `pulumi up` would apply, one file per object in
apply order, with a kustomization.yaml listing them. What a file must never hold stays out: Secrets are not
written (their values are secrets; the README says how to create them, with which keys), and neither are
Pulumi's own annotations. A Helm release (the GPU Operator) becomes its values file and the `helm` command.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.schema import SECRET_PLACEHOLDER

from .preview import Preview

# The order kubectl and Helm install kinds in (namespaces and identities first, what selects pods last).
APPLY_ORDER = ("Namespace", "ServiceAccount", "Secret", "ConfigMap", "PersistentVolumeClaim", "NetworkPolicy",
               "Service", "Deployment", "PodDisruptionBudget", "HorizontalPodAutoscaler", "ScaledObject", "Ingress",
               "ServiceMonitor", "PrometheusRule")
HELM = "kubernetes:helm.sh/v3:Release"
OURS = ("[0-9][0-9]-*.yaml", "helm-*.values.yaml", "kustomization.yaml", "README.md")


class RenderError(Exception):
    pass


@dataclass
class Rendered:
    files: list[Path] = field(default_factory=list)
    secrets: list[dict[str, Any]] = field(default_factory=list)
    """Secrets to create by hand: namespace, name, keys."""
    helm: list[str] = field(default_factory=list)
    """`helm` commands, in order, before the manifests."""
    images: list[str] = field(default_factory=list)


def manifests(preview: Preview) -> list[dict[str, Any]]:
    """The stack's Kubernetes objects as the API takes them, in apply order (Helm releases and Secrets aside)."""
    objects = [r.inputs for r in preview.resources if r.custom and r.type.startswith("kubernetes:") and r.type != HELM]
    rank = {kind: i for i, kind in enumerate(APPLY_ORDER)}

    def key(m: dict[str, Any]) -> tuple[int, str, str]:
        meta = m.get("metadata") or {}
        return rank.get(m.get("kind", ""), len(rank)), meta.get("namespace", ""), meta.get("name", "")
    return sorted((_clean(m) for m in objects), key=key)


def _clean(manifest: dict[str, Any]) -> dict[str, Any]:
    """The object without Pulumi's annotations (they steer `pulumi up` only)."""
    m = json.loads(json.dumps(manifest))
    meta = m["metadata"]
    notes = {k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith("pulumi.com/")}
    if notes:
        meta["annotations"] = notes
    else:
        meta.pop("annotations", None)
    return {"apiVersion": m.pop("apiVersion"), "kind": m.pop("kind"), "metadata": m.pop("metadata"), **m}


def _has_secret(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_secret(v) for v in value)
    return value == SECRET_PLACEHOLDER


def render(preview: Preview, out: Path) -> Rendered:
    """Write the stack's manifests into `out` (replacing what an earlier render wrote there)."""
    objects = manifests(preview)
    releases = [r for r in preview.resources if r.type == HELM]
    if not objects:
        raise RenderError(f"stack '{preview.stack}' declares no Kubernetes objects")
    out.mkdir(parents=True, exist_ok=True)
    for pattern in OURS:
        for old in out.glob(pattern):
            old.unlink()
    result = Rendered()
    listed: list[str] = []
    for m in objects:
        meta = m["metadata"]
        if m["kind"] == "Secret":
            keys = sorted((m.get("stringData") or {}) if isinstance(m.get("stringData"), dict) else [])
            mounted = _mounted_keys(objects, meta)
            result.secrets.append({"namespace": meta.get("namespace"), "name": meta["name"],
                                   "keys": keys or mounted})
            continue
        if _has_secret(m):
            raise RenderError(f"{m['kind']} {meta['name']} holds a secret value: it is not written")
        for container in _containers(m):
            if "@sha256:" not in container["image"] and container["image"] not in result.images:
                result.images.append(container["image"])
        name = "-".join(p for p in (meta.get("namespace"), meta["name"]) if p)
        path = out / f"{len(listed):02d}-{m['kind'].lower()}-{name}.yaml"
        path.write_text(yaml.safe_dump(m, sort_keys=False, width=120))
        listed.append(path.name)
        result.files.append(path)
    for release in releases:
        inputs = release.inputs
        values = out / f"helm-{inputs['name']}.values.yaml"
        values.write_text(yaml.safe_dump(inputs.get("values") or {}, sort_keys=False))
        result.files.append(values)
        repo = (inputs.get("repositoryOpts") or {}).get("repo", "")
        result.helm.append(" ".join([
            "helm upgrade --install", inputs["name"], inputs["chart"], "--repo", repo, "--version", inputs["version"],
            "--namespace", inputs["namespace"], "--values", values.name, "--atomic",
            f"--timeout {int(inputs.get('timeout', 300))}s"]))
    (out / "kustomization.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": listed},
        sort_keys=False))
    result.files.append(out / "kustomization.yaml")
    (out / "README.md").write_text(_readme(preview.stack, result, listed))
    result.files.append(out / "README.md")
    return result


def _containers(m: dict[str, Any]) -> list[dict[str, Any]]:
    pod = ((m.get("spec") or {}).get("template") or {}).get("spec") or {}
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def _mounted_keys(objects: list[dict[str, Any]], secret_meta: dict[str, Any]) -> list[str]:
    """The keys pods mount from a Secret (when the graph hides which keys it has)."""
    keys: list[str] = []
    for m in objects:
        if (m.get("metadata") or {}).get("namespace") != secret_meta.get("namespace"):
            continue
        pod = ((m.get("spec") or {}).get("template") or {}).get("spec") or {}
        for volume in pod.get("volumes", []):
            if (volume.get("secret") or {}).get("secretName") == secret_meta["name"]:
                keys += [item["key"] for item in volume["secret"].get("items", []) if item["key"] not in keys]
    return keys


KEY_HELP = {
    "hf_token": "the Hugging Face token, alone in the file",
    "api_keys": "one `key-id:secret` line per API key (e.g. `apps:$(openssl rand -hex 24)`)",
    "master_key": "the router's admin key (its metrics and admin routes, never a model; e.g. "
                  "`sk-$(openssl rand -hex 24)`), alone in the file with no newline",
}
CALLER_KEY_HELP = ("that caller's own key, which it sends to the router (e.g. `sk-$(openssl rand -hex 24)`), alone in "
                   "the file with no newline")
ROUTED_KEY_HELP = ("the key the router presents to that target: the secret of its `router` line in the target's "
                   "api_keys, or the Hugging Face token for an Inference Endpoint; alone in the file, no newline")


def _key_help(key: str) -> str:
    if key.startswith("caller-") and key.endswith(".key"):  # litellm.caller_key_file
        return CALLER_KEY_HELP
    return KEY_HELP.get(key, ROUTED_KEY_HELP if key.endswith(".key") else "see the stack config")


def _readme(stack: str, r: Rendered, listed: list[str]) -> str:
    lines = [f"# Kubernetes manifests of stack `{stack}`", "",
             "Rendered by `selfhost render` from the previewed graph: the objects `pulumi up` applies. Apply them in "
             "this order.", ""]
    step = 1
    if r.images:
        lines += [f"{step}. Build and push our serving images (from the repository root; the tag is the content "
                  "hash of containers/):", "", "```sh"]
        for image in r.images:
            dockerfile = "llamacpp" if "llamacpp" in image.rsplit("/", 1)[-1] else "vllm"
            lines.append(f"docker buildx build -f containers/{dockerfile}/Dockerfile -t {image} --push containers/")
        lines += ["```", ""]
        step += 1
    namespaces = [f for f in listed if "-namespace-" in f]
    lines += [f"{step}. Namespaces: `{'`, `'.join(namespaces)}`", ""]
    step += 1
    if r.helm:
        lines += [f"{step}. Cluster add-ons (Helm, pinned chart versions):", "", "```sh", *r.helm, "```", ""]
        step += 1
    if r.secrets:
        lines += [f"{step}. Secrets: never written here. Create each from files holding the values (or with your "
                  "secrets operator), before the Deployments:", ""]
        for s in r.secrets:
            lines += ["```sh", " ".join(["kubectl create secret generic", s["name"], "--namespace", s["namespace"],
                                         *(f"--from-file={k}=./{k}" for k in s["keys"])]), "```"]
            lines += [f"- `{k}`: {_key_help(k)}" for k in s["keys"]]
        lines.append("")
        step += 1
    crds = sorted({f.split("-")[1] for f in listed
                   if f.split("-")[1] in ("scaledobject", "servicemonitor", "prometheusrule")})
    if crds:
        lines += [f"Custom resources here ({', '.join(crds)}) need their operators in the cluster: KEDA for "
                  "ScaledObject, the Prometheus Operator for ServiceMonitor and PrometheusRule.", ""]
    lines += [f"{step}. Everything: `kubectl apply -k .` (or the files in order: "
              f"`for f in $(ls [0-9][0-9]-*.yaml); do kubectl apply -f $f; done`).", ""]
    return "\n".join(lines)

