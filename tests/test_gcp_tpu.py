"""Cloud TPU on Vertex AI (issue 29): the config refuses what cannot run, the plan serves on the TPU machine spec with
Google's vLLM TPU image, and sizing, cost and quotas count chips."""

from __future__ import annotations

import copy
import json

import pytest

from components.catalog.pricing import lookup
from components.catalog.tpus import CHIPS, VERTEX_MACHINES, VLLM_TPU
from components.cost import estimate, resources_from_preview
from components.quotas import plan
from components.schema import Usage
from components.targets.registry import quota_rules

from .test_config import mutate, problems_of
from .test_cost_cli import selfhost

GARDEN = "gcp:vertex/aiEndpointWithModelGardenDeployment:AiEndpointWithModelGardenDeployment"
TPU_BASE: dict = {
    "gcp:project": "acme-llm-test",
    "gcp:region": "us-central1",
    "selfhost-llm:models": [{"name": "llama", "id": "meta-llama/Llama-3.1-8B-Instruct",
                             "revision": "0e9e39f249a16976918f6564b8830bc894c89659", "maxContext": 8192}],
    "selfhost-llm:targets": [{"kind": "vertex", "name": "chat", "model": "llama", "machineType": "ct6e-standard-1t"}],
}

TPU_CASES = [
    ("topology-the-machine-lacks", {"selfhost-llm:targets/0/tpuTopology": "2x2"},
     "selfhost-llm:targets[0].tpuTopology", "ct6e-standard-1t is a 1x1 host; allowed: 1x1; or machineType "
                                            "ct6e-standard-4t"),
    ("accelerator-on-a-tpu-machine", {"selfhost-llm:targets/0/acceleratorType": "NVIDIA_L4"},
     "selfhost-llm:targets[0].acceleratorType", "its 1 TPU-v6e chips come with it; allowed: leave it unset"),
    ("chip-count", {"selfhost-llm:targets/0/acceleratorCount": 4},
     "selfhost-llm:targets[0].acceleratorCount", "ct6e-standard-1t has 1 chips"),
    ("fp8-on-v6e", {"selfhost-llm:models/0/quantization": "fp8"},
     "selfhost-llm:targets[0].machineType", "TPU-v6e GPUs have no fp8 support"),
    ("gptq-on-tpu", {"selfhost-llm:models/0/quantization": "gptq"},
     "selfhost-llm:targets[0].machineType", "vLLM TPU runs bf16, int8 and AWQ int4 weights on v6e"),
    ("tgi-on-tpu", {"selfhost-llm:models/0/engine": "tgi"}, "selfhost-llm:models[0].engine",
     "vertex targets (targets[0]) do not serve it; allowed: vllm"),
    ("our-image-on-tpu", {"selfhost-llm:targets/0/image": "selfhost"}, "selfhost-llm:targets[0].image",
     "our image runs vLLM on CUDA"),
    ("does-not-fit-one-v5e", {"selfhost-llm:targets/0/machineType": "ct5lp-hightpu-1t"},
     "selfhost-llm:targets[0].machineType", "but 1 x TPU-v5e offers"),
    ("generation-not-in-region", {"gcp:region": "us-east5", "selfhost-llm:targets/0/machineType": "ct5lp-hightpu-4t"},
     "selfhost-llm:targets[0].machineType", "no TPU v5e for Vertex AI prediction known in us-east5"),
    ("gpu-machine-without-accelerator", {"selfhost-llm:targets/0/machineType": "g2-standard-12"},
     "selfhost-llm:targets[0].acceleratorType", "g2-standard-12 is a GPU machine type: name its accelerator"),
    ("topology-on-a-gpu-machine", {"selfhost-llm:targets/0/machineType": "g2-standard-12",
                                   "selfhost-llm:targets/0/acceleratorType": "NVIDIA_L4",
                                   "selfhost-llm:targets/0/tpuTopology": "1x1"},
     "selfhost-llm:targets[0].tpuTopology", "g2-standard-12 is not a TPU machine type"),
]


@pytest.mark.parametrize("changes, path, words", [c[1:] for c in TPU_CASES], ids=[c[0] for c in TPU_CASES])
def test_the_config_refuses_what_cannot_run_on_a_tpu(changes, path, words):
    error = problems_of(mutate(**changes)(copy.deepcopy(TPU_BASE)))
    matching = [str(p) for p in error.problems if p.path == path]
    assert matching, f"no problem at {path}: {error}"
    assert any(words in text for text in matching), f"{words!r} not in {matching}"


def test_a_kubernetes_target_refuses_a_tpu_chip_as_its_gpu(project):
    """A TPU chip is in the hardware table, but a cluster's `nvidia.com/gpu` and our CUDA images are NVIDIA's."""
    from selfhost.project import stack_config

    config, secret_keys = stack_config(project, "onprem")
    cfg = dict(config)
    targets = json.loads(cfg["selfhost-llm:targets"])
    targets[0]["gpu"] = "TPU-v6e"
    cfg["selfhost-llm:targets"] = targets
    error = problems_of(cfg, secret_keys)
    assert any(p.path == "selfhost-llm:targets[0].gpu" and "a Cloud TPU chip" in str(p) for p in error.problems)


@pytest.fixture
def tpu(previews):
    return previews["gcp-tpu"]


def test_the_deployment_runs_googles_vllm_tpu_image_on_the_machine_spec(tpu):
    (deployment,) = tpu.by_type(GARDEN)
    spec = deployment.inputs["deployConfig"]["dedicatedResources"]["machineSpec"]
    assert spec == {"machineType": "ct6e-standard-1t", "tpuTopology": "1x1"}  # no GPU accelerator in it
    container = deployment.inputs["modelConfig"]["containerSpec"]
    assert container["imageUri"] == VLLM_TPU.vertex_image
    assert "--tensor-parallel-size=1" in container["args"] and "--max-model-len=8192" in container["args"]
    record = tpu.outputs["endpoints"]["chat"]
    assert record["host"] == {"instance": "ct6e-standard-1t", "accelerator": "TPU-v6e", "acceleratorCount": 1}
    # The start-up budget holds vLLM's XLA compilation (up to an hour) besides download and load.
    assert record["startupTimeoutSeconds"] >= 3600 * 1.5


def test_cost_counts_chip_hours_and_quotas_count_chips(tpu):
    graph = tpu.to_json()
    est = estimate(resources_from_preview(graph), {"gcp": "us-central1"}, Usage(), lookup)
    (item,) = [i for i in est.items if i.resource == "gcp-tpu-chat-deployment" and i.unit == "hour"
               and "TPU-v6e" in i.description]
    assert item.unit_usd == lookup("gcp", "vertex-prediction-tpu", "us-central1", "v6e").usd
    assert item.quantity == (730.0, 730.0, 1460.0)  # 1 chip x 1..2 replicas
    (need,) = [n for n in plan(resources_from_preview(graph), {"gcp": "us-central1"}, quota_rules()).needs
               if n.need.startswith("vertex-tpus")]
    assert (need.need, need.at_min, need.at_max) == ("vertex-tpus:v6e", 1, 2)


def test_size_ranks_tpu_and_gpu_hosts_together():
    run = selfhost("size", "meta-llama/Llama-3.1-8B-Instruct", "--cloud", "gcp", "--json")
    assert run.returncode == 0, run.stderr
    options = json.loads(run.stdout)["options"]
    hosts = [o["host"] for o in options]
    assert any("TPU-v6e" in h for h in hosts) and any("g2-standard" in h for h in hosts)
    assert all(o["usdPerHour"] is not None and o["atServiceLevel"] for o in options if "TPU" in o["host"])


def test_every_vertex_tpu_machine_is_a_host_of_its_chips():
    for m in VERTEX_MACHINES.values():
        assert m.chip in CHIPS and m.chips == eval(m.topology.replace("x", "*"))  # noqa: S307
