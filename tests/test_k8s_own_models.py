"""Your own models on a Kubernetes cluster (issue 27): LoRA adapters on vLLM (the `onprem` stack) and on llama.cpp
(`edge`), a checkpoint from the team's own bucket (s3://, gs://: fetched by an init container with a key from a
Secret mounted as files) or volume (pvc://: mounted read-only, nothing fetched); and the config errors.

Every variation is previewed through the real program (the stack file with its models or target edited) and its
objects go through the same Kubernetes schema check and policy rules as the shipped stacks'.
"""

from __future__ import annotations

import json
import runpy
from typing import Any

import pytest

from components.catalog.pricing import lookup
from components.config import ConfigError, load_environment
from components.cost import resources_from_preview
from components.k8s.serving import OBJECTS_DIR, VOLUMES_DIR, WEIGHTS_SECRET_DIR, claim_volume
from components.policies import check
from components.schema import SECRET_PLACEHOLDER
from selfhost.cost_report import price_preview
from selfhost.preview import run_program
from selfhost.project import stack_config
from selfhost.render import manifests

from .k8s_schemas import problems as schema_problems
from .test_kubernetes import edge_config

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
QWEN_GGUF = "Qwen/Qwen2.5-1.5B-Instruct-GGUF"
REV = "0123456789abcdef0123456789abcdef01234567"
SHA = "ab" * 32
SECRET = {"name": "team-weights", "endpoint": "https://minio.dc1.example.internal:9000", "egressCidr": "10.20.0.0/24"}
# A checkpoint of the team's own, fine-tuned from the catalog's Llama 3.1 8B: no revision, sized as its base.
OWN_LLAMA = {"name": "support", "id": "acme/llama-3.1-8b-support", "source": "s3://acme-ml/checkpoints/support/v3",
             "base": LLAMA, "engine": "vllm", "maxContext": 8192}


def run_stack(project, stack: str, models: list[dict] | None = None, **target: Any):
    """`stack` previewed through the real program, its models replaced and its first target edited (None drops a
    key)."""
    cfg, secret_keys = stack_config(project, stack)
    targets = json.loads(cfg["selfhost-llm:targets"])
    if models is not None:
        cfg["selfhost-llm:models"] = json.dumps(models)
        target.setdefault("model", models[0]["name"])
    for key, value in target.items():
        if value is None:
            targets[0].pop(key, None)
        else:
            targets[0][key] = value
    cfg["selfhost-llm:targets"] = json.dumps(targets)
    return run_program(project.name, stack, cfg, secret_keys,
                       lambda: runpy.run_path(str(project.root / "__main__.py"), run_name="__main__"))


def deployment(p) -> dict:
    (found,) = [m for m in manifests(p) if m["kind"] == "Deployment" and "selfhost.dev/model" in
                m["metadata"].get("annotations", {})]
    return found


def pod(p) -> dict:
    return deployment(p)["spec"]["template"]["spec"]


def env_of(container: dict) -> dict[str, str]:
    return {v["name"]: v["value"] for v in container.get("env", [])}


def engine_args(serving: dict) -> str:
    return next(a for a in serving["args"] if a.startswith("--engine-args=")).removeprefix("--engine-args=")


def assert_valid_and_compliant(p) -> None:
    """The objects pass the cluster's schemas and the preview every mandatory policy rule."""
    version = p.outputs["kubernetesVersion"]
    for m in manifests(p):
        if m["kind"] == "Secret" and m.get("stringData") == SECRET_PLACEHOLDER:
            m = {**m, "stringData": {"api_keys": "id:value\n"}}
        assert schema_problems(m, version) == [], (m["kind"], m["metadata"]["name"])
    graph = p.to_json()
    assert check(resources_from_preview(graph), price_preview(graph, lookup)).violations == []


def assert_no_secret_in_env(spec: dict) -> None:
    for c in [*spec.get("initContainers", []), *spec["containers"]]:
        for var in c.get("env", []):
            assert "valueFrom" not in var and not var["name"].startswith("AWS_"), (c["name"], var)


# ---------------------------------------------------------------------------------------------------------
# Adapters


def test_onprem_serves_its_hub_adapters_with_the_lora_flags(previews):
    (serving,) = pod(previews["onprem"])["containers"]
    # Our adapter downloads Hub adapters itself (hf://repo@commit) and adds --enable-lora and --lora-modules; the
    # infrastructure sets the resident slots and the rank setting that holds the largest (64).
    assert env_of(serving)["SELFHOST_ADAPTERS"] == (
        "yara=hf://vtriple/Llama-3.1-8B-yara@3eed0b2e83e96ecdf1e088a6e9e472771ba1f834,"
        "hp-adk=hf://Tomlord/Llama-3.1-8B-Instruct-LoRA-Hp-adk@fbaa4b77270b240dffa93683856405e7120711a4")
    args = engine_args(serving).split()
    assert args[args.index("--max-loras") + 1] == "2" and args[args.index("--max-lora-rank") + 1] == "64"
    assert "--enable-lora" not in args and "--lora-modules" not in args
    assert args[args.index("--revision") + 1] == "0e9e39f249a16976918f6564b8830bc894c89659"  # the base, from the Hub
    assert "initContainers" not in pod(previews["onprem"])  # nothing to fetch first
    assert deployment(previews["onprem"])["metadata"]["annotations"]["selfhost.dev/adapters"] == "yara,hp-adk"


def test_edge_fetches_gguf_adapters_first_and_names_their_paths(project):
    models = json.loads(stack_config(project, "edge")[0]["selfhost-llm:models"])
    models[0]["adapters"] = [
        {"name": "returns", "id": "acme/qwen-returns-gguf", "revision": REV, "file": "returns-f16.gguf",
         "sha256": SHA, "rank": 8},
        {"name": "stock", "source": "pvc://store-adapters/qwen/stock", "file": "stock.gguf", "rank": 16},
    ]
    p = run_stack(project, "edge", models)
    spec = pod(p)
    fetch_model, fetch_adapters = spec["initContainers"]
    assert fetch_model["name"] == "fetch-model" and "--repo" in fetch_model["args"]  # the base, as before
    assert fetch_adapters["name"] == "fetch-adapters"
    assert fetch_adapters["args"][-1:] == [f"hf://acme/qwen-returns-gguf@{REV}/returns-f16.gguf#sha256={SHA}"]
    (serving,) = spec["containers"]
    assert env_of(serving)["SELFHOST_ADAPTERS"] == (
        f"returns=/cache/gguf/acme--qwen-returns-gguf/{REV}/returns-f16.gguf,"
        f"stock={VOLUMES_DIR}/store-adapters/qwen/stock/stock.gguf")
    assert "--max-loras" not in engine_args(serving)  # llama.cpp: no slots to set
    mount = next(m for m in serving["volumeMounts"] if m["mountPath"] == f"{VOLUMES_DIR}/store-adapters")
    assert mount["readOnly"] is True
    assert_no_secret_in_env(spec)
    assert_valid_and_compliant(p)


# ---------------------------------------------------------------------------------------------------------
# A checkpoint from the team's bucket


@pytest.fixture(scope="module")
def from_bucket(project):
    """onprem serving a checkpoint of the team's own from MinIO, with an adapter beside it in the same bucket."""
    own = {**OWN_LLAMA, "adapters": [{"name": "tickets", "source": "s3://acme-ml/adapters/tickets/v1", "rank": 16}]}
    return run_stack(project, "onprem", [own], weightsSecret=SECRET)


def test_the_init_container_fetches_the_bucket_with_the_secrets_files(from_bucket):
    spec = pod(from_bucket)
    fetch_model, fetch_adapters = spec["initContainers"]
    assert fetch_model["args"] == ["--objects-dir", OBJECTS_DIR, "--endpoint", SECRET["endpoint"],
                                   "s3://acme-ml/checkpoints/support/v3"]
    assert fetch_adapters["args"][-1] == "s3://acme-ml/adapters/tickets/v1"
    for init in (fetch_model, fetch_adapters):
        assert env_of(init)["SELFHOST_FETCH_CREDENTIALS_DIR"] == WEIGHTS_SECRET_DIR
        mount = next(m for m in init["volumeMounts"] if m["name"] == "weights-secret")
        assert mount == {"name": "weights-secret", "mountPath": WEIGHTS_SECRET_DIR, "readOnly": True}
    volume = next(v for v in spec["volumes"] if v["name"] == "weights-secret")
    # The team's Secret by name, as files only the fetching containers mount: no key in the manifest or the env.
    assert volume["secret"]["secretName"] == "team-weights"
    (serving,) = spec["containers"]
    assert "weights-secret" not in {m["name"] for m in serving["volumeMounts"]}
    assert_no_secret_in_env(spec)


def test_the_engine_reads_the_fetched_checkpoint_under_its_served_name(from_bucket):
    (serving,) = pod(from_bucket)["containers"]
    args = serving["args"]
    local = f"{OBJECTS_DIR}/s3/acme-ml/checkpoints/support/v3"
    assert args[args.index("--model") + 1] == local
    assert args[args.index("--model-name") + 1] == "acme/llama-3.1-8b-support"
    assert "--revision" not in engine_args(serving)  # a local folder has no revision
    assert env_of(serving)["SELFHOST_ADAPTERS"] == f"tickets={OBJECTS_DIR}/s3/acme-ml/adapters/tickets/v1"
    assert "--max-lora-rank 16" in engine_args(serving)


def test_a_private_store_is_opened_in_the_network_policy_on_its_port_only(from_bucket):
    (allow,) = [m for m in manifests(from_bucket) if m["kind"] == "NetworkPolicy"
                and m["metadata"]["name"] == "allow-serving"]
    assert {"to": [{"ipBlock": {"cidr": "10.20.0.0/24"}}], "ports": [{"protocol": "TCP", "port": 9000}]} in \
        allow["spec"]["egress"]


def test_the_bucket_variant_passes_the_schemas_and_the_policies(from_bucket):
    assert_valid_and_compliant(from_bucket)


def test_a_gguf_from_a_cloud_storage_bucket_is_one_object_with_its_hash(project):
    models = json.loads(stack_config(project, "edge")[0]["selfhost-llm:models"])
    models[0].update(source="gs://store-models/qwen/1.5b", revision=None, base="Qwen/Qwen2.5-1.5B-Instruct")
    models[0] = {k: v for k, v in models[0].items() if v is not None}
    p = run_stack(project, "edge", models, weightsSecret={"name": "gcs-hmac"})
    (init,) = pod(p)["initContainers"]
    assert init["args"] == ["--objects-dir", OBJECTS_DIR,
                            f"gs://store-models/qwen/1.5b/{models[0]['file']}#sha256={models[0]['sha256']}"]
    (serving,) = pod(p)["containers"]
    assert serving["args"][serving["args"].index("--model") + 1] == \
        f"{OBJECTS_DIR}/gs/store-models/qwen/1.5b/{models[0]['file']}"
    assert_valid_and_compliant(p)


# ---------------------------------------------------------------------------------------------------------
# A checkpoint on the team's volume


def test_a_checkpoint_on_a_claim_is_mounted_read_only_and_read_in_place(project):
    own = {**OWN_LLAMA, "source": "pvc://llm-checkpoints/support/v3"}
    p = run_stack(project, "onprem", [own])
    spec = pod(p)
    assert "initContainers" not in spec
    volume = next(v for v in spec["volumes"] if "persistentVolumeClaim" in v and v["name"] != "cache")
    assert volume == {"name": claim_volume("llm-checkpoints"),
                      "persistentVolumeClaim": {"claimName": "llm-checkpoints", "readOnly": True}}
    (serving,) = spec["containers"]
    mount = next(m for m in serving["volumeMounts"] if m["name"] == volume["name"])
    assert mount == {"name": volume["name"], "mountPath": f"{VOLUMES_DIR}/llm-checkpoints", "readOnly": True}
    assert serving["args"][serving["args"].index("--model") + 1] == f"{VOLUMES_DIR}/llm-checkpoints/support/v3"
    assert_valid_and_compliant(p)


# ---------------------------------------------------------------------------------------------------------
# Config errors


def onprem_problems(models: list[dict], **target: Any) -> list[str]:
    raw, secret = edge_config("onprem", **{f"target.{k}": v for k, v in target.items()})
    raw["selfhost-llm:models"] = json.dumps(models)
    raw["selfhost-llm:targets"] = json.dumps([{**json.loads(raw["selfhost-llm:targets"])[0],
                                               "model": models[0]["name"]}])
    with pytest.raises(ConfigError) as info:
        load_environment("onprem", raw, secret)
    return [str(p) for p in info.value.problems]


def test_a_bucket_without_a_weights_secret_is_refused_naming_the_key():
    found = onprem_problems([OWN_LLAMA])
    (text,) = [p for p in found if p.startswith("selfhost-llm:targets[0].weightsSecret:")]
    assert "models[0].source 's3://acme-ml/checkpoints/support/v3' is a bucket" in text
    assert "AWS_ACCESS_KEY_ID" in text


def test_an_adapter_in_a_bucket_needs_the_secret_too():
    hub_model = json.loads(edge_config("onprem")[0]["selfhost-llm:models"])[0]
    model = {**hub_model, "adapters": [{"name": "tickets", "source": "gs://acme-ml/adapters/tickets", "rank": 8}]}
    found = onprem_problems([model])
    assert any(p.startswith("selfhost-llm:targets[0].weightsSecret:") and "adapters[0].source" in p for p in found)


def test_one_target_reads_one_object_store():
    model = {**OWN_LLAMA, "adapters": [{"name": "tickets", "source": "gs://acme-ml/adapters/tickets", "rank": 8}]}
    found = onprem_problems([model], weightsSecret=SECRET)
    assert any("both s3:// and gs://" in p for p in found), found


def test_a_weights_secret_nothing_reads_is_refused():
    hub_model = json.loads(edge_config("onprem")[0]["selfhost-llm:models"])[0]
    found = onprem_problems([hub_model], weightsSecret=SECRET)
    assert any(p.startswith("selfhost-llm:targets[0].weightsSecret:") and "nothing reads it" in p for p in found)


@pytest.mark.parametrize(("secret", "field"), [
    ({"name": "Team_Weights"}, "name"),
    ({"name": "w", "endpoint": "minio:9000"}, "endpoint"),
    ({"name": "w", "egressCidr": "10.20.0.0"}, "egressCidr"),
])
def test_a_malformed_weights_secret_names_its_field(secret, field):
    found = onprem_problems([OWN_LLAMA], weightsSecret=secret)
    assert any(p.startswith(f"selfhost-llm:targets[0].weightsSecret.{field}:") for p in found), found


def test_the_shipped_config_with_a_bucket_and_its_secret_is_valid():
    raw, secret = edge_config("onprem", **{"target.weightsSecret": SECRET})
    raw["selfhost-llm:models"] = json.dumps([OWN_LLAMA])
    raw["selfhost-llm:targets"] = json.dumps([{**json.loads(raw["selfhost-llm:targets"])[0], "model": "support"}])
    env = load_environment("onprem", raw, secret)
    assert env.models[0].location.bucket == "acme-ml"


def test_the_rendered_init_container_puts_the_checkpoint_where_the_engine_reads_it(from_bucket, tmp_path,
                                                                                   monkeypatch, capsys):
    # The fetch-model container's arguments, run for real against a local stand-in for the store (which checks
    # every signature with botocore), with the Secret's files and the cache volume as directories: what it prints
    # is the serving container's --model.
    from selfhost_adapter import fetch

    from .adapter.test_fetch import ACCESS_KEY, SECRET_KEY, Bucket, serve

    spec = pod(from_bucket)
    init, (serving,) = spec["initContainers"][0], spec["containers"]
    cache, secret = tmp_path / "cache", tmp_path / "secret"
    secret.mkdir()
    (secret / "AWS_ACCESS_KEY_ID").write_text(ACCESS_KEY)
    (secret / "AWS_SECRET_ACCESS_KEY").write_text(SECRET_KEY)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env_of(init).items():
        monkeypatch.setenv(name, value.replace(WEIGHTS_SECRET_DIR, str(secret)))
    files = {"checkpoints/support/v3/config.json": b"{}", "checkpoints/support/v3/model.safetensors": b"w" * 1000}
    for store in serve(Bucket(files, name="acme-ml")):  # type: ignore[arg-type]
        args = [a.replace("/cache", str(cache)) for a in init["args"]]
        args[args.index("--endpoint") + 1] = store.url
        assert fetch.main(args) == 0
    fetched = capsys.readouterr().out.strip()
    model = serving["args"][serving["args"].index("--model") + 1]
    assert fetched == model.replace("/cache", str(cache))
    assert (cache / "objects/s3/acme-ml/checkpoints/support/v3/model.safetensors").read_bytes() == b"w" * 1000
