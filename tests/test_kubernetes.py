"""The Kubernetes target: the `onprem` and `edge` stacks' objects against the real Kubernetes schemas and the
published CRD schemas, the invariants every serving object must hold, the config it rejects (with key paths),
`selfhost render`, and the owner-rate cost."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from components.catalog.kubernetes import SUPPORTED_VERSIONS
from components.config import ConfigError, load_environment
from components.cost import estimate_from_outputs, resources_from_preview
from components.schema import SECRET_PLACEHOLDER
from selfhost.cli import app
from selfhost.render import APPLY_ORDER, manifests

from .k8s_schemas import problems, supported_versions

STACKS = ("onprem", "edge")


def objects(previews, stack: str) -> list[dict]:
    return manifests(previews[stack])


def as_applied(m: dict) -> dict:
    """The object as the API server receives it: the preview hides a Secret's whole `stringData` (the SDK marks
    it secret), so stand in values for the keys the pods mount."""
    if m["kind"] == "Secret" and m.get("stringData") == SECRET_PLACEHOLDER:
        return {**m, "stringData": {"api_keys": "id:value\n", "hf_token": "value"}}
    return m


def version_of(previews, stack: str) -> str:
    return previews[stack].outputs["kubernetesVersion"]


def of_kind(previews, stack: str, kind: str) -> list[dict]:
    return [m for m in objects(previews, stack) if m["kind"] == kind]


def deployment(previews, stack: str) -> dict:
    (found,) = of_kind(previews, stack, "Deployment")
    return found


# ---------------------------------------------------------------------------------------------------------
# Schemas


def test_every_supported_cluster_version_has_schemas():
    assert set(SUPPORTED_VERSIONS) <= set(supported_versions())


@pytest.mark.parametrize("stack", STACKS)
def test_every_manifest_validates_against_the_clusters_schemas(previews, stack):
    found = {f"{m['kind']} {m['metadata']['name']}": problems(as_applied(m), version_of(previews, stack))
             for m in objects(previews, stack)}
    assert {name: p for name, p in found.items() if p} == {}
    kinds = {m["kind"] for m in objects(previews, stack)}
    # Custom resources are checked against their published CRDs (tests/data/crds), not skipped.
    expected = ({"ScaledObject", "ServiceMonitor", "PrometheusRule", "ConfigMap"} if stack == "onprem"
                else {"HorizontalPodAutoscaler"})
    assert expected <= kinds


@pytest.mark.parametrize("version", [SUPPORTED_VERSIONS[0], SUPPORTED_VERSIONS[-1]])
def test_the_manifests_hold_on_the_oldest_and_newest_supported_version(previews, version):
    for stack in STACKS:
        for m in objects(previews, stack):
            assert problems(as_applied(m), version) == [], (stack, m["kind"], m["metadata"]["name"])


def test_a_broken_manifest_is_caught(previews):
    # The check is not a rubber stamp: the same Deployment with a misspelt field fails.
    broken = copy.deepcopy(deployment(previews, "edge"))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    assert problems(broken, "1.31")


# ---------------------------------------------------------------------------------------------------------
# Invariants


@pytest.mark.parametrize("stack", STACKS)
def test_the_serving_pod_is_locked_down(previews, stack):
    pod = deployment(previews, stack)["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] != "default"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in [*pod.get("initContainers", []), *pod["containers"]]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert set(c["resources"]["requests"]) >= {"cpu", "memory"}
        assert set(c["resources"]["limits"]) >= {"cpu", "memory"}
    # Only volume types Pod Security `restricted` admits: no hostPath.
    assert {next(k for k in v if k != "name") for v in pod["volumes"]} <= {"emptyDir", "persistentVolumeClaim",
                                                                          "secret"}
    shm = next(v for v in pod["volumes"] if v["name"] == "shm")
    assert shm["emptyDir"]["medium"] == "Memory"
    (ns,) = [m for m in of_kind(previews, stack, "Namespace") if m["metadata"]["name"].startswith(stack)]
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_only_the_gpu_operator_namespace_is_privileged(previews):
    levels = {m["metadata"]["name"]: m["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
              for m in of_kind(previews, "onprem", "Namespace")}
    assert levels == {"gpu-operator": "privileged", "onprem-chat": "restricted"}
    (release,) = previews["onprem"].by_type("kubernetes:helm.sh/v3:Release")
    assert release.inputs["version"].startswith("v") and release.inputs["repositoryOpts"]["repo"].startswith("https")


@pytest.mark.parametrize("stack", STACKS)
def test_probes_are_sized_from_the_model(previews, stack):
    (c,) = deployment(previews, stack)["spec"]["template"]["spec"]["containers"]
    startup = c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"]
    assert startup >= previews[stack].outputs["endpoints"][next(iter(previews[stack].outputs["endpoints"]))][
        "startupTimeoutSeconds"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/health"
    assert c["livenessProbe"]["httpGet"]["path"] == "/livez"  # never restarts a pod whose engine is reloading


@pytest.mark.parametrize("stack", STACKS)
def test_no_secret_reaches_an_environment_or_an_argument(previews, stack):
    pod = deployment(previews, stack)["spec"]["template"]["spec"]
    for c in [*pod.get("initContainers", []), *pod["containers"]]:
        for var in c.get("env", []):
            assert "valueFrom" not in var and var["name"] not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
            assert not var["value"].startswith(("hf_", "sk-")), var
        assert not any("token" in a.lower() and "path" not in a.lower() for a in c.get("args", [])), c["args"]
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["secrets"]["readOnly"] is True
    (secret,) = previews[stack].by_type("kubernetes:core/v1:Secret")
    assert secret.secret_paths == ["stringData"] and secret.inputs["stringData"] == SECRET_PLACEHOLDER


def test_gpu_targets_ask_for_gpus_and_cpu_targets_do_not(previews):
    (gpu,) = deployment(previews, "onprem")["spec"]["template"]["spec"]["containers"]
    (cpu,) = deployment(previews, "edge")["spec"]["template"]["spec"]["containers"]
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "nvidia.com/gpu" not in cpu["resources"]["limits"]
    pod = deployment(previews, "onprem")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] and pod["tolerations"][0]["key"] == "nvidia.com/gpu"


@pytest.mark.parametrize("stack", STACKS)
def test_network_policy_denies_by_default_and_admits_only_callers(previews, stack):
    policies = {m["metadata"]["name"]: m["spec"] for m in of_kind(previews, stack, "NetworkPolicy")}
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    allowed = [peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
               for rule in policies["allow-serving"]["ingress"] for peer in rule["from"]]
    assert allowed == (["apps", "ingress-nginx", "monitoring"] if stack == "onprem" else ["store-apps"])
    public = policies["allow-serving"]["egress"][1]["to"][0]["ipBlock"]
    assert "10.0.0.0/8" in public["except"]  # the Hub, but not the cluster's own networks


@pytest.mark.parametrize("stack", STACKS)
def test_rollouts_keep_serving_capacity_and_disruptions_are_bounded(previews, stack):
    spec = deployment(previews, stack)["spec"]
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0 and "replicas" not in spec
    (pdb,) = of_kind(previews, stack, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    (claim,) = of_kind(previews, stack, "PersistentVolumeClaim")
    assert claim["spec"]["resources"]["requests"]["storage"].endswith("Gi")


def test_the_engine_gets_a_queue_for_keda_to_see_and_past_it_a_429(previews):
    # vLLM on an L40S runs 256 sequences at once by default (catalog: sizing.engine_limits); the adapter passes it
    # four KEDA thresholds (5 waiting requests) more, so vllm:num_requests_waiting can rise above the threshold
    # and scale the Deployment; past that, a key's next request is a 429 (a router's cue to go elsewhere).
    (gpu,) = deployment(previews, "onprem")["spec"]["template"]["spec"]["containers"]
    args = gpu["args"]
    limit = lambda flag: int(args[args.index(flag) + 1])  # noqa: E731
    assert limit("--max-engine-connections") == limit("--max-concurrency-per-key") == 256 + 4 * 5
    (cpu,) = deployment(previews, "edge")["spec"]["template"]["spec"]["containers"]
    assert "--max-engine-connections" not in cpu["args"]  # llama.cpp scales on CPU: the adapter's defaults


def test_gpu_scales_on_queue_depth_and_edge_on_cpu(previews):
    (scaled,) = of_kind(previews, "onprem", "ScaledObject")
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["type"] == "prometheus" and "vllm:num_requests_waiting" in trigger["metadata"]["query"]
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (2, 4)
    (hpa,) = of_kind(previews, "edge", "HorizontalPodAutoscaler")
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


def test_every_kubernetes_object_goes_through_the_explicit_provider(previews):
    for stack in STACKS:
        p = previews[stack]
        (provider,) = p.by_type("pulumi:providers:kubernetes")
        for r in p.resources:
            if r.custom and r.type.startswith("kubernetes:"):
                assert r.provider == provider.urn, r.urn
    (onprem,) = previews["onprem"].by_type("pulumi:providers:kubernetes")
    assert onprem.secret_paths == ["kubeconfig"]
    (edge,) = previews["edge"].by_type("pulumi:providers:kubernetes")
    assert edge.inputs["context"] == "store-0042" and "kubeconfig" not in edge.inputs


def test_the_ingress_terminates_tls(previews):
    (ingress,) = of_kind(previews, "onprem", "Ingress")
    assert ingress["spec"]["tls"][0]["hosts"] == ["llm.dc1.example.internal"]
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "internal-ca"
    assert previews["onprem"].outputs["endpoints"]["chat"]["openaiBaseUrl"] == "https://llm.dc1.example.internal/v1"


# ---------------------------------------------------------------------------------------------------------
# Config


def edge_config(stack: str = "edge", **changes) -> tuple[dict[str, str], set[str]]:
    doc = yaml.safe_load((Path(__file__).parents[1] / f"stacks/Pulumi.{stack}.yaml").read_text())["config"]
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in doc.items() if k.startswith("selfhost-llm:")}
    target = json.loads(raw["selfhost-llm:targets"])[0]
    cluster = json.loads(raw["selfhost-llm:kubernetes"])
    for path, value in changes.items():
        where, _, key = path.partition(".")
        node = target if where == "target" else cluster
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    raw["selfhost-llm:targets"] = json.dumps([target])
    raw["selfhost-llm:kubernetes"] = json.dumps(cluster)
    secrets = {k for k, v in doc.items() if isinstance(v, dict) and set(v) == {"secure"}}
    return {**raw, **{k: "secret" for k in secrets}}, secrets


def problems_of(raw: dict[str, str], secret_keys: set[str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_environment("edge", raw, secret_keys)
    return [str(p) for p in info.value.problems]


def test_the_shipped_edge_config_is_valid():
    load_environment("edge", *edge_config())


@pytest.mark.parametrize(("changes", "path", "words"), [
    ({"target.gpuCount": 1}, "selfhost-llm:targets[0].gpuCount", "CPU-only target"),
    ({"target.modelCache.storageClass": "Fast_SSD"}, "selfhost-llm:targets[0].modelCache.storageClass",
     "wrong form"),
    ({"target.modelCache.accessMode": "ReadWriteOnce", "target.nodeSelector": {}},
     "selfhost-llm:targets[0].modelCache.accessMode", "attaches to one node"),
    ({"target.gpu": "L4", "target.gpuCount": 1}, "selfhost-llm:targets[0].gpu", "CPU build"),
    ({"target.resources.memory": "1Gi"}, "selfhost-llm:targets[0].resources.memory", "needs"),
    ({"target.scaling.metric": "queue-depth"}, "selfhost-llm:targets[0].scaling.metric", "no queue metric"),
    ({"target.allowFromNamespaces": []}, "selfhost-llm:targets[0].allowFromNamespaces", "nothing could reach"),
    ({"target.ingress": {"host": "llm.example.com"}}, "selfhost-llm:targets[0].ingress.clusterIssuer",
     "clear text"),
    ({"cluster.version": "1.20"}, "selfhost-llm:kubernetes.version", "no API schemas"),
    ({"cluster.context": None}, "selfhost-llm:kubernetes.context", "no way to reach the cluster"),
    ({"target.cpuType": "pentium"}, "selfhost-llm:targets[0].cpuType", "unknown CPU"),
])
def test_invalid_kubernetes_config_names_the_key(changes, path, words):
    found = problems_of(*edge_config(**changes))
    matching = [text for text in found if text.startswith(path + ":")]
    assert matching, found
    if words:
        assert any(words in text for text in matching), matching


def test_a_probe_budget_shorter_than_the_model_load_is_rejected_with_the_estimate():
    # Llama 3.1 8B: download (16 GB), load and warm-up take about 9 minutes on the estimate; 5 would have the
    # startup probe restart it before it ever serves.
    raw, secret = edge_config("onprem", **{"target.startupTimeoutSeconds": 300})
    (text,) = [p for p in problems_of(raw, secret) if "startupTimeoutSeconds" in p]
    assert text.startswith("selfhost-llm:targets[0].startupTimeoutSeconds: 300: shorter than the model's estimated")
    assert "(540 s)" in text
    load_environment("onprem", *edge_config("onprem", **{"target.startupTimeoutSeconds": 540}))


def test_a_plain_text_kubeconfig_is_rejected_and_never_shown():
    raw, _ = edge_config(**{"cluster.context": None})
    raw["selfhost-llm:kubeconfig"] = "apiVersion: v1\nclusters: [{cluster: {server: https://10.0.0.1}}]\n"
    found = problems_of(raw, set())
    (text,) = [p for p in found if p.startswith("selfhost-llm:kubeconfig:")]
    assert "must be a secret" in text and "10.0.0.1" not in " ".join(found)
    load_environment("edge", raw, {"selfhost-llm:kubeconfig"})  # as a secret it is accepted


def test_a_kubeconfig_and_a_context_together_are_ambiguous():
    raw, _ = edge_config()
    raw["selfhost-llm:kubeconfig"] = "x"
    assert any("set exactly one way" in p for p in problems_of(raw, {"selfhost-llm:kubeconfig"}))


def test_the_stacks_own_bucket_is_refused_on_a_cluster():
    # `s3` is the stack's AWS artifacts bucket, which a cluster has not; a bucket of the team's own (s3://...) is
    # read with a Secret (tests/test_k8s_own_models.py).
    raw, _ = edge_config()
    models = json.loads(raw["selfhost-llm:models"])
    models[0]["source"] = "s3"
    raw["selfhost-llm:models"] = json.dumps(models)
    assert any(p.startswith("selfhost-llm:models[0].source: 's3': kubernetes targets (targets[0]) cannot read "
                            "weights there; allowed: hub, s3://bucket/prefix") for p in problems_of(raw, set()))


def test_other_kinds_refuse_a_gguf_model():
    raw, _ = edge_config()
    raw["selfhost-llm:targets"] = json.dumps([{"kind": "aws-pool", "name": "chat", "model": "qwen-1-5b",
                                               "instanceTypes": ["g6.xlarge"]}])
    raw["aws:region"] = "us-east-1"
    found = problems_of(raw, set())
    assert any(p.startswith("selfhost-llm:models[0].engine: 'llamacpp': aws-pool targets") for p in found), found


# ---------------------------------------------------------------------------------------------------------
# Render


@pytest.mark.parametrize("stack", STACKS)
def test_render_writes_every_object_in_apply_order_and_no_secret(stack, tmp_path, previews):
    result = CliRunner().invoke(app, ["render", stack, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    files = sorted(tmp_path.glob("[0-9][0-9]-*.yaml"))
    written = [yaml.safe_load(f.read_text()) for f in files]
    expected = [m for m in objects(previews, stack) if m["kind"] != "Secret"]
    assert written == expected
    assert [f.name for f in files] == yaml.safe_load((tmp_path / "kustomization.yaml").read_text())["resources"]
    ranks = [APPLY_ORDER.index(m["kind"]) for m in written]
    assert ranks == sorted(ranks)
    everything = "".join(f.read_text() for f in tmp_path.iterdir())
    assert SECRET_PLACEHOLDER not in everything and "pulumi.com/" not in everything
    assert "kind: Secret" not in everything
    readme = (tmp_path / "README.md").read_text()
    secret = f"-secrets --namespace {stack}-"
    assert "kubectl create secret generic" in readme and secret in readme and "--from-file=api_keys=" in readme
    assert ("helm upgrade --install gpu-operator" in readme) == (stack == "onprem")


def test_render_refuses_a_stack_without_kubernetes_objects(tmp_path):
    result = CliRunner().invoke(app, ["render", "aws-dev", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "no Kubernetes objects" in result.output


# ---------------------------------------------------------------------------------------------------------
# Cost


def test_onprem_is_priced_at_the_owners_rates(previews):
    p = previews["onprem"]
    est = estimate_from_outputs(resources_from_preview(p.to_json()), p.outputs, lambda *a: None)
    items = {i.unit: i for i in est.items}
    assert items["gpu-hour"].unit_usd == 0.95 and items["replica-hour"].unit_usd == 0.30
    assert "4 x L40S servers" in items["gpu-hour"].source and "2026-12-01" in items["gpu-hour"].source
    low, expected, high = est.total()
    assert (round(low, 2), round(high, 2)) == (round(2 * 730 * 1.25, 2), round(4 * 730 * 1.25, 2))
    assert low <= expected <= high and est.unknown == []
    assert est.usd_per_1m_tokens is not None and est.usd_per_1m_tokens > 0
    assert any(row["breakEvenRequestsPerDay"] for row in est.api_comparison())


def test_edge_is_priced_per_node_hour_with_one_stream_per_replica(previews):
    p = previews["edge"]
    est = estimate_from_outputs(resources_from_preview(p.to_json()), p.outputs, lambda *a: None)
    assert [i.unit for i in est.items] == ["replica-hour"]
    (serving,) = est.serving
    assert serving.replica_requests_per_s > 0 and serving.replica_usd_per_hour == 0.02
    assert p.outputs["costEstimate"]["usdPer1mTokens"] == round(est.usd_per_1m_tokens, 4)
