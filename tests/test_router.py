"""The hybrid stack's router (components/k8s/router.py, components/routing.py): the LiteLLM proxy on the cluster,
its config generated from the targets' endpoint records, its objects against the real Kubernetes schemas, the
config it rejects (with key paths), and the cost of the mix. The proxy itself runs the generated config in
tests/adapter/test_hybrid_router.py."""

from __future__ import annotations

import hashlib
import json
import subprocess
from typing import Any

import pytest
import yaml

from components import litellm
from components.catalog.pricing import lookup
from components.config import ConfigError, load_environment
from components.cost import estimate_from_outputs, resources_from_preview
from selfhost.project import load_project, stack_config
from selfhost.render import manifests

from .conftest import ROOT
from .k8s_schemas import problems
from .test_kubernetes import as_applied

STACK = "hybrid"


def objects(previews, namespace: str | None = None, kind: str | None = None) -> list[dict]:
    return [m for m in manifests(previews[STACK]) if (namespace is None or m["metadata"].get("namespace") == namespace
                                                       or m["metadata"]["name"] == namespace)
            and (kind is None or m["kind"] == kind)]


def router_objects(previews, kind: str | None = None) -> list[dict]:
    return objects(previews, "hybrid-router", kind)


def generated_config(previews) -> dict:
    (config_map,) = router_objects(previews, "ConfigMap")
    return yaml.safe_load(config_map["data"]["config.yaml"])


def config_with(**changes: object) -> tuple[dict[str, str], set[str]]:
    """The shipped hybrid config as the program sees it, with `router.<key>` / `targets[i].<key>` / `<config key>`
    changes (None deletes)."""
    raw, secret_keys = stack_config(load_project(ROOT), STACK)
    router, targets = json.loads(raw["selfhost-llm:router"]), json.loads(raw["selfhost-llm:targets"])
    for key, value in changes.items():
        if key.startswith("router."):
            node, leaf = router, key.removeprefix("router.")
        elif key.startswith("targets["):
            index, _, leaf = key.removeprefix("targets[").partition("].")
            node = targets[int(index)]
        else:
            if value is None:
                raw.pop(key, None)
            else:
                raw[key] = value if isinstance(value, str) else json.dumps(value)
            continue
        *parents, last = leaf.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    raw["selfhost-llm:router"], raw["selfhost-llm:targets"] = json.dumps(router), json.dumps(targets)
    return raw, secret_keys


def problems_of(**changes: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_environment(STACK, *config_with(**changes))
    return [str(p) for p in info.value.problems]


# ---------------------------------------------------------------------------------------------------------
# What is declared


def test_the_router_is_one_component_of_the_stack(previews):
    p = previews[STACK]
    (component,) = p.by_type("selfhost:k8s:Router")
    children = [r for r in p.resources if r.parent == component.urn]
    assert {r.name for r in children} == {f"hybrid-router-{role}" for role in (
        "namespace", "identity", "secrets", "config", "default-deny", "allow-router", "service", "deployment", "pdb",
        "ingress", "master-key", "caller-default-key")}
    router = p.outputs["router"]
    assert router["openaiBaseUrl"] == "https://llm.dc1.example.internal/v1" and router["platform"] == "kubernetes"
    assert (router["model"], router["aliases"], router["order"]) == (
        "meta-llama/Llama-3.1-8B-Instruct", ["llama-8b"], ["chat", "burst"])
    # Each caller's key, and the admin key (the proxy's master key: metrics and admin routes, no model).
    assert router["callerKeys"] == {"default": "[secret]"} and router["adminKey"] == "[secret]"


def test_the_config_comes_from_the_endpoint_records_on_prem_first(previews):
    config = generated_config(previews)
    records = previews[STACK].outputs["endpoints"]
    deployments = config["model_list"]
    assert [d["model_info"]["id"] for d in deployments] == ["chat", "burst"]
    assert [d["litellm_params"]["order"] for d in deployments] == [1, 2]
    # On-prem through its Service inside the cluster, not its way in from outside; the cloud at its own URL.
    assert deployments[0]["litellm_params"]["api_base"] == records["chat"]["routerBaseUrl"] == (
        "http://chat.hybrid-chat.svc.cluster.local/v1")
    assert deployments[1]["litellm_params"]["api_base"] == records["burst"]["openaiBaseUrl"].rstrip("/")
    assert config["router_settings"]["model_group_alias"] == {"llama-8b": "meta-llama/Llama-3.1-8B-Instruct"}
    # The last resort is never cooled down; the base is, after a failure.
    assert deployments[1]["model_info"]["cooldown_time"] == 0 and deployments[0]["model_info"]["allowed_fails"] == 1
    # The same config the generator writes for the records (what the proxy test runs).
    backends = litellm.backends_from_endpoints(records, ["chat", "burst"])
    assert litellm.litellm_config("meta-llama/Llama-3.1-8B-Instruct", backends, aliases=["llama-8b"],
                                  callers=[litellm.Caller("default")]) == config


def test_keys_are_files_of_a_secret_never_in_the_config_or_the_environment(previews):
    config = generated_config(previews)
    settings = config["general_settings"]
    refs = [d["litellm_params"]["api_key"] for d in config["model_list"]] + [
        settings["master_key"], settings["selfhost_callers"]["default"]["key"]]
    assert refs == [litellm.secret_ref(f"{litellm.SECRETS_DIR}/{name}") for name in
                    ("chat.key", "burst.key", "master_key", "caller-default.key")]
    (secret,) = router_objects(previews, "Secret")
    (resource,) = [r for r in previews[STACK].by_type("kubernetes:core/v1:Secret") if r.name == "hybrid-router-secrets"]
    assert resource.secret_paths == ["stringData"]
    (deployment,) = router_objects(previews, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert not any("valueFrom" in e for e in container["env"]) and "envFrom" not in container
    (volume,) = [v for v in pod["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]
    assert [i["key"] for i in volume["secret"]["items"]] == ["chat.key", "burst.key", "caller-default.key",
                                                            "master_key"]
    assert {"mountPath": litellm.SECRETS_DIR, "name": "secrets", "readOnly": True} in container["volumeMounts"]
    # The on-prem target made a key for the router and lets its namespace in.
    keys = [r.name for r in previews[STACK].by_type("random:index/randomPassword:RandomPassword")]
    assert "hybrid-chat-key-router" in keys and "hybrid-router-master-key" in keys
    (allow,) = [m for m in objects(previews, "hybrid-chat", "NetworkPolicy")
                if m["metadata"]["name"] == "allow-serving"]
    callers = [f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
               for f in allow["spec"]["ingress"][0]["from"]]
    assert callers == ["monitoring", "hybrid-router"]


def test_the_router_runs_locked_down_and_probed(previews):
    (deployment,) = router_objects(previews, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["image"].startswith("ghcr.io/berriai/litellm-non_root:v")
    assert c["args"][:2] == ["--config", "/etc/litellm/config.yaml"]
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
    assert pod["securityContext"]["runAsUser"] == 65534 and pod["automountServiceAccountToken"] is False
    assert c["readinessProbe"]["httpGet"]["path"] == litellm.READINESS_ROUTE
    assert c["livenessProbe"]["httpGet"]["path"] == litellm.LIVENESS_ROUTE
    assert deployment["spec"]["replicas"] == 2
    # A new config rolls the pods: its hash is in the pod template.
    (config_map,) = router_objects(previews, "ConfigMap")
    data = config_map["data"]
    assert deployment["spec"]["template"]["metadata"]["annotations"]["selfhost.dev/config-sha256"] == (
        hashlib.sha256((data["config.yaml"] + data[f"{litellm.ROUTER_MODULE}.py"]).encode()).hexdigest())
    # The auth module sits next to the config, where the proxy imports it from.
    assert data[f"{litellm.ROUTER_MODULE}.py"] == litellm.router_module_text()
    (namespace,) = [m for m in objects(previews, kind="Namespace") if m["metadata"]["name"] == "hybrid-router"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    (ingress,) = router_objects(previews, "Ingress")
    assert ingress["spec"]["tls"][0]["hosts"] == ["llm.dc1.example.internal"]
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"


def test_every_router_object_validates_against_the_clusters_schemas(previews):
    version = previews[STACK].outputs["kubernetesVersion"]
    found = {f"{m['kind']} {m['metadata']['name']}": problems(as_applied(m), version) for m in router_objects(previews)}
    assert len(found) == 10 and {name: p for name, p in found.items() if p} == {}


# ---------------------------------------------------------------------------------------------------------
# Config it rejects


def test_the_shipped_config_is_valid():
    env = load_environment(STACK, *config_with())
    assert env.router is not None and env.router.order == ["chat", "burst"] and env.routed("burst")


@pytest.mark.parametrize(("changes", "path", "words"), [
    ({"router.order": ["chat", "nope"]}, "selfhost-llm:router.order[1]", "no target with this name"),
    ({"router.order": ["chat", "chat"]}, "selfhost-llm:router.order", "names a target twice"),
    ({"router.order": []}, "selfhost-llm:router.order", "at least 1"),
    ({"router.callers": [{"id": "web"}, {"id": "web"}]}, "selfhost-llm:router.callers", "names a caller twice"),
    ({"router.maxReplicas": 4}, "selfhost-llm:router.maxReplicas", "a router on kubernetes does not read it"),
    ({"router.platform": "huggingface"}, "selfhost-llm:router.platform", "no router runs there"),
    ({"router.allowedCidrs": ["0.0.0.0/0"]}, "selfhost-llm:router.allowedCidrs", "the whole internet"),
    ({"targets[1].endpointType": "private"}, "selfhost-llm:router.order[1]", "authenticates with aws-privatelink"),
    ({"router.ingress": None, "router.allowFromNamespaces": []}, "selfhost-llm:router.allowFromNamespaces",
     "nothing could reach the router"),
    ({"router.ingress.clusterIssuer": None}, "selfhost-llm:router.ingress.clusterIssuer", "clear text"),
    ({"router.burstShare": 1.5}, "selfhost-llm:router.burstShare", "less than 1"),
    ({"router.image": "litellm latest"}, "selfhost-llm:router.image", "wrong form"),
    # Without its cluster, the router would run where its first target is: Hugging Face hosts no router.
    ({"selfhost-llm:kubernetes": None, "targets[0]": None}, "selfhost-llm:router.platform", "no router runs there"),
])
def test_invalid_router_config_names_the_key(changes, path, words):
    if "targets[0]" in changes:  # the cluster gone, its target with it: only the router still needs one
        raw, secret_keys = config_with(**{k: v for k, v in changes.items() if k != "targets[0]"})
        targets = json.loads(raw["selfhost-llm:targets"])[1:]
        raw["selfhost-llm:targets"] = json.dumps(targets)
        raw["selfhost-llm:router"] = json.dumps({**json.loads(raw["selfhost-llm:router"]), "order": ["burst", "other"]})
        raw.pop("selfhost-llm:kubeconfig")
        with pytest.raises(ConfigError) as info:
            load_environment(STACK, raw, set(secret_keys) - {"selfhost-llm:kubeconfig"})
        found = [str(p) for p in info.value.problems]
    else:
        found = problems_of(**changes)
    matching = [text for text in found if text.startswith(path + ":")]
    assert matching, found
    assert any(words in text for text in matching), matching


def test_a_target_the_router_cannot_reach_is_refused_with_the_reason():
    raw, secret_keys = config_with()
    targets = json.loads(raw["selfhost-llm:targets"])
    targets[1] = {**targets[0], "name": "other"}  # a second model would be refused too: same model here
    raw["selfhost-llm:targets"] = json.dumps(targets)
    raw["selfhost-llm:router"] = json.dumps({**json.loads(raw["selfhost-llm:router"]), "order": ["chat", "other"]})
    load_environment(STACK, raw, secret_keys)  # two on-prem targets: fine
    raw["selfhost-llm:models"] = json.dumps([*json.loads(raw["selfhost-llm:models"]), {
        "name": "qwen", "id": "Qwen/Qwen2.5-1.5B-Instruct", "revision": "989aa7980e4cf806f80c7fef2b1adb7bc71aa306",
        "engine": "vllm", "maxContext": 8192}])
    targets[1]["model"] = "qwen"
    raw["selfhost-llm:targets"] = json.dumps(targets)
    with pytest.raises(ConfigError) as info:
        load_environment(STACK, raw, secret_keys)
    assert any("serve different models" in str(p) for p in info.value.problems), info.value.problems


def test_a_pool_speaks_api_keys_but_answers_only_in_its_vpc_and_is_refused():
    """The GPU pools take API keys now (issue 25), but on an internal load balancer in the stack's cloud network,
    which the router on the cluster is outside of: the order naming one is refused at the config check, before
    anything is declared, not when the stack is declared."""
    raw, secret_keys = config_with()
    targets = json.loads(raw["selfhost-llm:targets"])
    targets.append({"kind": "aws-pool", "name": "pool", "model": targets[0]["model"],
                    "instanceTypes": ["g6e.xlarge"]})
    raw["selfhost-llm:targets"] = json.dumps(targets)
    raw["aws:region"] = "us-east-1"
    raw["selfhost-llm:router"] = json.dumps({**json.loads(raw["selfhost-llm:router"]), "order": ["chat", "pool"]})
    with pytest.raises(ConfigError) as info:
        load_environment(STACK, raw, secret_keys)
    refused = [str(p) for p in info.value.problems if str(p).startswith("selfhost-llm:router.order[1]")]
    assert refused and "cannot call this aws-pool target: it answers only inside its cloud network" in refused[0], \
        info.value.problems


# ---------------------------------------------------------------------------------------------------------
# Cost of the mix


def estimate(previews, **usage: object):
    p = previews[STACK]
    outputs = json.loads(json.dumps(p.outputs))
    outputs["costInputs"]["usage"].update(usage.pop("usage", {}))
    outputs["costInputs"]["routing"].update(usage)
    return estimate_from_outputs(resources_from_preview(p.to_json()), outputs, lookup)


def planned(est) -> dict[str, float | None]:
    return {s.component: s.planned_requests_per_day for s in est.serving}


def test_the_base_takes_the_load_and_the_cloud_only_what_it_cannot_serve(previews):
    est = estimate(previews)
    base, burst = est.serving
    assert (base.component, burst.component) == ("hybrid-chat", "hybrid-burst")
    assert planned(est) == {"hybrid-chat": 400_000, "hybrid-burst": 0}
    assert burst.replicas[1] == 0 and not est.unpriced_count()
    # Past what the base serves at its 4 replicas, the rest goes to the cloud.
    capacity = base.replica_requests_per_s * 12 * 3600 * 4
    more = estimate(previews, usage={"requestsPerDay": round(capacity + 500_000)})
    assert planned(more)["hybrid-chat"] == round(capacity + 500_000)
    assert planned(more)["hybrid-burst"] == pytest.approx(500_000, abs=1)
    base, burst = more.serving
    assert base.replicas[1] == 4 and burst.replicas[1] == 1


def test_a_burst_share_sends_that_share_to_the_cloud(previews):
    est = estimate(previews, burstShare=0.25)
    assert planned(est) == {"hybrid-chat": 300_000, "hybrid-burst": 100_000}
    burst_item = next(i for i in est.items if i.component == "hybrid-burst")
    assert burst_item.quantity[1] > 0
    assert est.total()[1] > estimate(previews).total()[1]


@pytest.mark.parametrize("share", [None, 0.25])
def test_the_break_even_is_the_mixs(previews, share):
    est = estimate(previews, burstShare=share)
    fleet = est._fleet()
    assert not isinstance(fleet, str)
    rows = est.api_comparison()
    assert all(r["breakEvenRequestsPerDay"] for r in rows), rows
    for r in rows:
        x = r["breakEvenRequestsPerDay"]
        api_monthly = r["monthlyUsd"] / est.usage.requests_per_day * x
        # At the break-even the API's bill meets the mix's cost (or passes it at a replica step), never before.
        assert api_monthly >= est.self_hosted_monthly(x) * (1 - 1e-9)
        below = x * 0.999
        assert r["monthlyUsd"] / est.usage.requests_per_day * below < est.self_hosted_monthly(below)
    chart = est.chart()
    assert chart is not None and all(v is not None for v in chart["series"][0]["monthlyUsd"])


# ---------------------------------------------------------------------------------------------------------
# A cloud's router in front of the stack's GPU pool: the pool's key for the router, its CA in the router's bundle


def _with_router(project, stack: str) -> Any:
    import runpy

    from selfhost.preview import run_program

    config, secret_keys = stack_config(project, stack)
    platform = stack.split("-")[0]
    config["selfhost-llm:router"] = json.dumps({"platform": platform, "order": ["chat"],
                                                "callers": [{"id": "apps", "requestsPerMinute": 60}]})
    return run_program(project.name, stack, config, secret_keys,
                       lambda: runpy.run_path(str(project.root / "__main__.py"), run_name="__main__"))


@pytest.mark.parametrize("stack", ["aws-pool", "gcp-pool"])
def test_a_clouds_router_calls_its_pool_with_a_key_of_its_own_and_trusts_the_pools_ca(project, stack):
    p = _with_router(project, stack)
    pool = p.outputs["endpoints"]["chat"]
    # The pool made a key for the router (its caller id), beside its configured callers' keys.
    keys = {r.name for r in p.by_type("random:index/randomPassword:RandomPassword")}
    assert f"{stack}-chat-key-{litellm.ROUTER_KEY_ID}" in keys and f"{stack}-chat-key-default" in keys
    if stack == "aws-pool":
        (task,) = p.by_type("aws:ecs/taskDefinition:TaskDefinition")
        (container,) = [c for c in json.loads(task.inputs["containerDefinitions"]) if c["name"] == "litellm"]
        env = {e["name"]: e["value"] for e in container["environment"]}
        secrets = [s["name"] for s in container["secrets"]]
        argv = container["command"]
    else:
        (service,) = p.by_type("gcp:cloudrunv2/service:Service")
        (container,) = service.inputs["template"]["containers"]
        env = {e["name"]: e["value"] for e in container["envs"] if "value" in e}
        secrets = [e["name"] for e in container["envs"] if "valueSource" in e]
        argv = container["commands"]
    config = yaml.safe_load(env["SELFHOST_ROUTER_CONFIG"])
    (deployment,) = config["model_list"]
    params = deployment["litellm_params"]
    # The pool's OpenAI routes, over HTTPS, with its key by reference (a secret the platform keeps).
    assert params["model"] == f"openai/{pool['model']}" and params["api_base"] == pool["openaiBaseUrl"].rstrip("/")
    variable = params["api_key"].removeprefix("os.environ/")
    assert variable == "SELFHOST_ROUTER_CHAT_KEY" and variable in secrets
    # The pool's own CA (the stack issued its certificate) joins the public roots in the proxy's one bundle.
    assert config["litellm_settings"]["ssl_verify"] == "/tmp/selfhost-router/ca-bundle.pem"
    assert env["SELFHOST_ROUTER_CAS"].strip() == pool["caCertificate"].strip()
    assert json.loads(argv[3])["SELFHOST_ROUTER_CAS"] == "ca-bundle.pem"


def test_the_routers_command_writes_its_files_and_the_ca_bundle_beside_the_public_roots(tmp_path):
    """The command a cloud's router runs, with LiteLLM's Python (`make litellm`): each file from its variable, the
    bundle the image's public roots (certifi's) and the targets' CAs; then it becomes the program named after it."""
    from components.router import _WRITE_FILES, CA_BUNDLE, FILES_DIR

    folder = tmp_path / "files"
    script = _WRITE_FILES.replace(FILES_DIR, str(folder))
    names = {"SELFHOST_ROUTER_CONFIG": "config.yaml", "SELFHOST_ROUTER_CAS": CA_BUNDLE}
    pem = "-----BEGIN CERTIFICATE-----\nTESTCA\n-----END CERTIFICATE-----\n"
    python = ROOT / ".tools" / "litellm" / "bin" / "python"
    run = subprocess.run([str(python), "-c", script, json.dumps(names), "/usr/bin/env"], capture_output=True,
                         text=True, timeout=60, env={"SELFHOST_ROUTER_CONFIG": "model_list: []\n",
                                                     "SELFHOST_ROUTER_CAS": pem, "KEEP": "1"})
    assert run.returncode == 0, run.stderr
    assert (folder / "config.yaml").read_text() == "model_list: []\n"
    bundle = (folder / CA_BUNDLE).read_text()
    assert bundle.endswith(pem) and bundle.count("BEGIN CERTIFICATE") > 100  # Mozilla's roots, then ours
    # The program it became (env) saw neither file's variable: they were taken out on the way.
    assert "KEEP=1" in run.stdout and "SELFHOST_ROUTER_CONFIG" not in run.stdout and "TESTCA" not in run.stdout
