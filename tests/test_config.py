"""Every invalid config fails before any resource exists, with one message naming each key path."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
import yaml

from components.config import ConfigError, Environment, load_environment
from selfhost.preview import run_program

from .conftest import ROOT

REV = "989aa7980e4cf806f80c7fef2b1adb7bc71aa306"
BASE: dict = {
    "aws:region": "us-east-1",
    "selfhost-llm:network": {"nat": "single"},
    "selfhost-llm:models": [{"name": "qwen", "id": "Qwen/Qwen2.5-1.5B-Instruct", "revision": REV, "maxContext": 8192}],
    "selfhost-llm:targets": [{"kind": "sagemaker", "name": "chat", "model": "qwen", "instanceType": "ml.g5.xlarge"}],
}
GATED = {"name": "mistral", "id": "mistralai/Mistral-7B-Instruct-v0.3", "revision": REV, "maxContext": 8192}


def as_pulumi(cfg: dict) -> dict[str, str]:
    """Config the way the Pulumi engine passes it: structures as JSON text."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in cfg.items()}


def load(cfg: dict, secret_keys=()) -> Environment:
    return load_environment("test", as_pulumi(cfg), set(secret_keys))


def problems_of(cfg: dict, secret_keys=()) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(cfg, secret_keys)
    return info.value


def mutate(**changes):
    """BASE with dotted-path changes applied: key=value, value None deletes."""
    def apply(cfg):
        for path, value in changes.items():
            *parents, leaf = path.split("/")
            node = cfg
            for p in parents:
                node = node[int(p)] if p.isdigit() else node.setdefault(p, {})
            if value is None:
                del node[leaf]
            elif leaf.isdigit():
                node[int(leaf)] = value
            else:
                node[leaf] = value
        return cfg
    return apply


def test_base_config_is_valid():
    env = load(BASE)
    assert env.targets[0].instance_type == "ml.g5.xlarge" and env.name == "test"
    assert env.all_tags["environment"] == "test" and env.all_tags["managed-by"] == "pulumi"


CASES = [
    # (id, mutation, secret keys, expected key path, words in the message)
    ("unknown-top-level-key", mutate(**{"selfhost-llm:netwrok": {"nat": "none"}}), (),
     "selfhost-llm:netwrok",
     # The platforms' sections of the project's namespace are keys too; provider keys (aws:region) are not.
     "unknown key; allowed: environment, owner, tier, logRetentionDays, allowedGpus, network, models, targets, "
     "router, budget, usage, tags, hfToken, azure, kubernetes, huggingface"),
    ("unknown-nested-key", mutate(**{"selfhost-llm:models/0/quantisation": "awq"}), (),
     "selfhost-llm:models[0].quantisation", "allowed: name, id, revision, engine, quantization"),
    ("kv-cache-on-tgi", mutate(**{"selfhost-llm:models/0/engine": "tgi", "selfhost-llm:models/0/kvCacheDtype": "fp8"}),
     (), "selfhost-llm:models[0].kvCacheDtype", "engine 'tgi' is not configured for a quantized KV cache here; "
     "allowed: auto; or engine vllm"),
    ("bad-kv-cache", mutate(**{"selfhost-llm:models/0/kvCacheDtype": "int4"}), (),
     "selfhost-llm:models[0].kvCacheDtype", "'auto' or 'fp8'"),
    ("wrong-type", mutate(**{"selfhost-llm:models/0/maxContext": "lots"}), (),
     "selfhost-llm:models[0].maxContext", "valid integer"),
    ("unknown-instance-type", mutate(**{"selfhost-llm:targets/0/instanceType": "ml.g9.xlarge"}), (),
     "selfhost-llm:targets[0].instanceType",
     "not a SageMaker GPU instance type in us-east-1; allowed: ml.g4dn.16xlarge, ml.g4dn.2xlarge"),
    ("model-does-not-fit", mutate(**{"selfhost-llm:models/0/id": "Qwen/Qwen2.5-72B-Instruct"}), (),
     "selfhost-llm:targets[0].instanceType",
     "needs 139.4 GiB (weights 135.4 + KV cache 2.5 for 8192 tokens x 1 + overhead 1.5)"),
    ("min-above-max", mutate(**{"selfhost-llm:targets/0/scaling": {"minReplicas": 3, "maxReplicas": 2}}), (),
     "selfhost-llm:targets[0].scaling.minReplicas", "greater than maxReplicas (2)"),
    ("missing-required-secret", mutate(**{"selfhost-llm:models/0": GATED, "selfhost-llm:targets/0/model": "mistral",
                                          "selfhost-llm:targets/0/instanceType": "ml.g5.2xlarge"}), (),
     "selfhost-llm:hfToken", "required secret"),
    ("secret-in-plain-text", mutate(**{"selfhost-llm:hfToken": "hf_plaintext_canary"}), (),
     "selfhost-llm:hfToken", "must be a secret"),
    ("unpinned-revision", mutate(**{"selfhost-llm:models/0/revision": "main"}), (),
     "selfhost-llm:models[0].revision", "40-character lowercase hex commit SHA"),
    ("bad-enum", mutate(**{"selfhost-llm:network/nat": "all"}), (),
     "selfhost-llm:network.nat", "allowed: 'none', 'single' or 'per-az'"),
    ("public-cidr", mutate(**{"selfhost-llm:network/cidr": "8.8.0.0/16"}), (),
     "selfhost-llm:network.cidr", "private range"),
    ("unknown-model-reference", mutate(**{"selfhost-llm:targets/0/model": "llama"}), (),
     "selfhost-llm:targets[0].model", "no model with this name; allowed: qwen"),
    ("unknown-target-kind", mutate(**{"selfhost-llm:targets/0/kind": "lambda"}), (),
     "selfhost-llm:targets[0].kind", "unknown target kind"),
    ("missing-region", mutate(**{"aws:region": None}), (), "aws:region", "required for AWS targets"),
    ("unknown-region", mutate(**{"aws:region": "mars-north-1"}), (), "aws:region", "not known in this region"),
    ("context-beyond-model", mutate(**{"selfhost-llm:models/0/maxContext": 65536}), (),
     "selfhost-llm:models[0].maxContext", "allowed: 1..32768"),
    ("quantization-engine-mismatch", mutate(**{"selfhost-llm:models/0/engine": "lmi",
                                               "selfhost-llm:models/0/quantization": "int8"}), (),
     "selfhost-llm:models[0].quantization", "not supported by engine 'lmi'"),
    ("fp8-on-ampere", mutate(**{"selfhost-llm:models/0/quantization": "fp8"}), (),
     "selfhost-llm:targets[0].instanceType", "A10G GPUs have no fp8 support"),
    ("scale-to-zero", mutate(**{"selfhost-llm:targets/0/scaling": {"minReplicas": 0, "maxReplicas": 2}}), (),
     "selfhost-llm:targets[0].scaling.minReplicas", "cannot scale to zero"),
    ("hub-without-egress", mutate(**{"selfhost-llm:network/nat": "none"}), (),
     "selfhost-llm:network.nat", "needs internet egress"),
    ("isolation-blocks-hub", mutate(**{"selfhost-llm:targets/0/networkIsolation": True}), (),
     "selfhost-llm:targets[0].networkIsolation", "network isolation blocks"),
    ("duplicate-target", lambda c: (c["selfhost-llm:targets"].append(dict(c["selfhost-llm:targets"][0])), c)[1], (),
     "selfhost-llm:targets[1].name", "duplicate target name"),
    ("no-models", mutate(**{"selfhost-llm:models": None}), (), "selfhost-llm:models", "required key is missing"),
    ("timeout-out-of-bounds", mutate(**{"selfhost-llm:targets/0/startupTimeoutSeconds": 5000}), (),
     "selfhost-llm:targets[0].startupTimeoutSeconds", "less than or equal to 3600"),
    ("reserved-tag", mutate(**{"selfhost-llm:tags": {"aws:owner": "me"}}), (), "selfhost-llm:tags",
     "not starting with 'aws:'"),
    ("unknown-model-without-facts", mutate(**{"selfhost-llm:models/0/id": "acme/secret-model"}), (),
     "selfhost-llm:models[0].id", "no facts for this model"),
    ("az-count-too-low", mutate(**{"selfhost-llm:network/azCount": 1}), (),
     "selfhost-llm:network.azCount", "greater than or equal to 2"),
]


@pytest.mark.parametrize("mutation, secret_keys, path, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_config_names_the_key(mutation, secret_keys, path, words):
    error = problems_of(mutation(copy.deepcopy(BASE)), secret_keys)
    matching = [str(p) for p in error.problems if p.path == path]
    assert matching, f"no problem at {path}: {error}"
    assert any(words in text for text in matching), f"{words!r} not in {matching}"
    assert "Traceback" not in str(error)


def test_distinct_cases():
    assert len({c[3] + c[4] for c in CASES}) == len(CASES) >= 15


def test_every_problem_in_one_message():
    cfg = mutate(**{"selfhost-llm:targets/0/instanceType": "ml.g9.xlarge",
                    "selfhost-llm:targets/0/scaling": {"minReplicas": 0, "maxReplicas": 2},
                    "selfhost-llm:network/nat": "none",
                    "selfhost-llm:models/0/maxContext": 65536})(copy.deepcopy(BASE))
    error = problems_of(cfg)
    paths = {p.path for p in error.problems}
    assert paths == {"selfhost-llm:targets[0].instanceType", "selfhost-llm:targets[0].scaling.minReplicas",
                     "selfhost-llm:network.nat", "selfhost-llm:models[0].maxContext"}
    assert str(error).startswith("Invalid configuration for stack 'test' (4 problems):")


def test_plaintext_token_is_never_echoed():
    error = problems_of(mutate(**{"selfhost-llm:hfToken": "hf_plaintext_canary"})(copy.deepcopy(BASE)))
    assert "hf_plaintext_canary" not in str(error)


def test_secret_token_is_accepted():
    cfg = mutate(**{"selfhost-llm:hfToken": "hf_x"})(copy.deepcopy(BASE))
    assert load(cfg, secret_keys=["selfhost-llm:hfToken"]).hf_token is True


def test_bad_config_declares_no_resource(project):
    """The program fails before declaring anything: no half-built environment."""
    import runpy

    cfg = mutate(**{"selfhost-llm:targets/0/instanceType": "ml.g9.xlarge"})(copy.deepcopy(BASE))
    recorded = {}

    def program():
        runpy.run_path(str(project.root / "__main__.py"), run_name="__main__")

    with pytest.raises(ConfigError):
        recorded = run_program(project.name, "test", as_pulumi(cfg), [], program)
    assert recorded == {}
    # And had it got further, the monitor would hold resources: check the same harness declares them when valid.
    preview = run_program(project.name, "test", as_pulumi(BASE), [], program)
    assert len([r for r in preview.resources if r.custom]) > 20


def test_cli_exits_2_with_the_message_and_no_traceback(tmp_path):
    (tmp_path / "stacks").mkdir()
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "__main__.py").write_text((ROOT / "__main__.py").read_text())
    for pkg in ("components",):
        (tmp_path / pkg).symlink_to(ROOT / pkg)
    bad = mutate(**{"selfhost-llm:network/nat": "all", "selfhost-llm:targets/0/instanceType": "ml.g9.xlarge"})(
        copy.deepcopy(BASE))
    (tmp_path / "stacks" / "Pulumi.broken.yaml").write_text(yaml.safe_dump({"config": bad}))
    run = subprocess.run([sys.executable, "-m", "selfhost.cli", "preview", "broken", "--project", str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2, run.stderr
    assert "selfhost-llm:network.nat: 'all'" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert run.stdout == ""


def test_project_schema_defaults_match_the_model():
    """Pulumi.yaml declares the scalar keys with defaults; they must be the config model's defaults."""
    doc = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    fields = {f.alias: f for f in Environment.model_fields.values()}
    for key, spec in doc["config"].items():
        assert spec["description"], key
        assert fields[key].default == spec["default"], key


def test_reads_config_the_way_the_pulumi_engine_passes_it(monkeypatch):
    """Under `pulumi up` the language host hands config over in PULUMI_CONFIG / PULUMI_CONFIG_SECRET_KEYS."""
    from pulumi.runtime import config as rc

    from components.config import from_pulumi_config

    cfg = {**as_pulumi(BASE), "selfhost-llm:hfToken": "hf_x", "aws:profile": "ops"}
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(cfg))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(["selfhost-llm:hfToken"]))
    rc.set_all_config({}, [])
    env = from_pulumi_config()
    assert env.hf_token and env.settings("aws").region == "us-east-1" and env.models[0].name == "qwen"


def test_unknown_keys_are_reported_with_the_checks_across_keys():
    cfg = mutate(**{"selfhost-llm:network/natMode": "single",
                    "selfhost-llm:targets/0/instanceType": "ml.g9.xlarge"})(copy.deepcopy(BASE))
    paths = [p.path for p in problems_of(cfg).problems]
    assert paths == ["selfhost-llm:network.natMode", "selfhost-llm:targets[0].instanceType"]


GCP_BASE: dict = {
    "gcp:project": "acme-llm-test",
    "gcp:region": "us-central1",
    "selfhost-llm:models": [{"name": "qwen", "id": "Qwen/Qwen2.5-7B-Instruct",
                             "revision": "a09a35458c702b33eeacc393d103063234e8bc28", "maxContext": 8192}],
    "selfhost-llm:targets": [{"kind": "vertex", "name": "chat", "model": "qwen", "machineType": "g2-standard-12",
                              "acceleratorType": "NVIDIA_L4"}],
}


GCP_CASES = [
    ("l4-needs-g2", {"selfhost-llm:targets/0/machineType": "a2-highgpu-1g"},
     "selfhost-llm:targets[0].acceleratorType",
     "a2-highgpu-1g does not take this accelerator; allowed: NVIDIA_TESLA_A100 (or for NVIDIA_L4: g2-standard-4, "
     "g2-standard-8"),
    ("a100-needs-a2", {"selfhost-llm:targets/0/acceleratorType": "NVIDIA_TESLA_A100"},
     "selfhost-llm:targets[0].acceleratorType", "g2-standard-12 does not take this accelerator; allowed: NVIDIA_L4"),
    ("h100-needs-a3", {"selfhost-llm:targets/0/machineType": "n1-standard-8",
                       "selfhost-llm:targets/0/acceleratorType": "NVIDIA_H100_80GB"},
     "selfhost-llm:targets[0].acceleratorType",
     "allowed: NVIDIA_TESLA_T4, NVIDIA_TESLA_V100 (or for NVIDIA_H100_80GB: a3-highgpu-1g"),
    ("wrong-count", {"selfhost-llm:targets/0/acceleratorCount": 2},
     "selfhost-llm:targets[0].acceleratorCount", "g2-standard-12 takes NVIDIA_L4 only in these counts; allowed: 1"),
    ("t4-count", {"selfhost-llm:targets/0/machineType": "n1-standard-8", "selfhost-llm:targets/0/acceleratorType":
                  "NVIDIA_TESLA_T4", "selfhost-llm:targets/0/acceleratorCount": 3},
     "selfhost-llm:targets[0].acceleratorCount", "allowed: 1, 2, 4"),
    ("unknown-machine", {"selfhost-llm:targets/0/machineType": "e2-standard-4"},
     "selfhost-llm:targets[0].machineType", "not a GPU or TPU machine type Vertex AI serves on"),
    ("accelerator-not-in-region", {"gcp:region": "us-east4", "selfhost-llm:targets/0/machineType": "a2-highgpu-1g",
                                   "selfhost-llm:targets/0/acceleratorType": "NVIDIA_TESLA_A100"},
     "selfhost-llm:targets[0].acceleratorType", "Vertex AI offers no NVIDIA_TESLA_A100 in us-east4"),
    ("unknown-region", {"gcp:region": "mars-central1"}, "gcp:region",
     "no Vertex AI GPU prediction known in this region"),
    ("missing-project", {"gcp:project": None}, "gcp:project", "required for Google Cloud targets"),
    ("bad-project-id", {"gcp:project": "Acme_Prod"}, "gcp:project",
     "has the wrong form; allowed: a Google Cloud project id"),
    ("does-not-fit-l4", {"selfhost-llm:models/0/id": "Qwen/Qwen2.5-14B-Instruct"},
     "selfhost-llm:targets[0].machineType",
     # TPU and GPU hosts of the kind, cheapest per token first.
     "but 1 x NVIDIA_L4 offers 21.6 GiB usable; allowed: ct6e-standard-4t (4 x TPU-v6e) ($0.12/1M tokens, 80.1 GiB "
     "spare), ct5lp-hightpu-4t (4 x TPU-v5e)"),
    ("engine-not-on-vertex", {"selfhost-llm:models/0/engine": "tgi"}, "selfhost-llm:models[0].engine",
     "vertex targets (targets[0]) do not serve it; allowed: vllm"),
    ("vertex-scale-to-zero", {"selfhost-llm:targets/0/scaling": {"minReplicas": 0, "maxReplicas": 2}},
     "selfhost-llm:targets[0].scaling.minReplicas", "keep at least one replica"),
    ("per-az-nat", {"selfhost-llm:network": {"nat": "per-az"}}, "selfhost-llm:network.nat", "Cloud NAT is regional"),
    ("fp8-on-t4", {"selfhost-llm:models/0/quantization": "fp8", "selfhost-llm:targets/0/machineType": "n1-standard-8",
                   "selfhost-llm:targets/0/acceleratorType": "NVIDIA_TESLA_T4",
                   "selfhost-llm:targets/0/acceleratorCount": 4},
     "selfhost-llm:targets[0].acceleratorType", "T4 GPUs have no fp8 support"),
    ("bad-endpoint-mode", {"selfhost-llm:targets/0/endpoint": "public"}, "selfhost-llm:targets[0].endpoint",
     "allowed: 'dedicated' or 'private'"),
]


@pytest.mark.parametrize("changes, path, words", [c[1:] for c in GCP_CASES], ids=[c[0] for c in GCP_CASES])
def test_invalid_gcp_config_names_the_key(changes, path, words):
    error = problems_of(mutate(**changes)(copy.deepcopy(GCP_BASE)))
    matching = [str(p) for p in error.problems if p.path == path]
    assert matching, f"no problem at {path}: {error}"
    assert any(words in text for text in matching), f"{words!r} not in {matching}"


def test_gcp_base_is_valid():
    env = load(GCP_BASE)
    assert env.targets[0].kind == "vertex" and env.settings("gcp").region == "us-central1"
