"""LoRA adapters in sizing and cost: the GPU memory vLLM's slots take, against hand-computed values, and the adapters
each target serves as `selfhost cost` shows them."""

from __future__ import annotations

import json
import runpy

import pytest

from components.catalog.engines import lora_rank_setting
from components.catalog.models import MODELS
from components.config import ConfigError, load_environment
from components.cost import Resource, estimate_from_outputs, to_json
from components.sizing import GIB, LORA_THROUGHPUT_NOTE, LoraSlots, memory_fit
from components.stack import cost_inputs
from selfhost.cost_report import adapters_text, markdown, price_preview
from selfhost.preview import run_program

from .conftest import ROOT

LLAMA = MODELS["meta-llama/Llama-3.1-8B-Instruct"]
QWEN = MODELS["Qwen/Qwen2.5-7B-Instruct"]
REV = "989aa7980e4cf806f80c7fef2b1adb7bc71aa306"


def adapters(n: int, rank: int = 16) -> list[dict]:
    return [{"name": f"tenant-{i}", "id": f"acme/qwen-tenant-{i}", "revision": REV, "rank": rank} for i in range(n)]


def config(model: dict, target: dict) -> dict[str, str]:
    """A stack's config as the Pulumi engine passes it (structures as JSON text): one aws-pool target."""
    cfg = {"aws:region": "us-east-1", "selfhost-llm:network": {"nat": "single"},
           "selfhost-llm:models": [{"name": "qwen-7b", "id": "Qwen/Qwen2.5-7B-Instruct", "revision": REV, **model}],
           "selfhost-llm:targets": [{"kind": "aws-pool", "name": "chat", "model": "qwen-7b", "apiKeys": ["default"],
                                     **target}]}
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in cfg.items()}


def test_every_catalog_model_states_its_width():
    assert all(f.hidden_size for f in MODELS.values())
    assert (LLAMA.width, QWEN.width, MODELS["tiiuae/falcon-180B-chat"].width) == (4096, 3584, 14848)
    # A GGUF repository is its base model's.
    assert MODELS["Qwen/Qwen2.5-1.5B-Instruct-GGUF"].width == MODELS["Qwen/Qwen2.5-1.5B-Instruct"].width == 1536


def test_lora_slots_by_hand():
    # 8 slots x rank 16 x (A and B) x 4,096 wide x 7 modules x 32 layers x 2 bytes (bf16).
    slots = LoraSlots(8, 16)
    assert slots.bytes(LLAMA) == 8 * 16 * 2 * 4096 * 7 * 32 * 2 == 469_762_048
    assert slots.bytes(LLAMA) / GIB == 0.4375
    # Qwen2.5-7B, 8 slots at rank 64: 3,584 wide, 28 layers.
    assert LoraSlots(8, 64).bytes(QWEN) == 8 * 64 * 2 * 3584 * 7 * 28 * 2 == 1_438_646_272  # 1.34 GiB


def test_adapters_are_their_own_term_of_the_fit():
    plain = memory_fit(LLAMA, "none", context=8192, concurrency=4, gpu_count=1, total_gpu_memory_gib=24)
    fit = memory_fit(LLAMA, "none", context=8192, concurrency=4, gpu_count=1, total_gpu_memory_gib=24,
                     lora=LoraSlots(8, 16))
    assert fit.adapters_gib == 0.4375 and plain.adapters_gib == 0.0
    assert (fit.weights_gib, fit.kv_cache_gib, fit.overhead_gib) == (
        plain.weights_gib, plain.kv_cache_gib, plain.overhead_gib)
    assert fit.required_gib == pytest.approx(plain.required_gib + 0.4375)
    assert fit.terms_text(8192, 4) == ("weights 15.0 + KV cache 4.0 for 8192 tokens x 4 + adapters 0.4 (8 slots at "
                                       "rank 16) + overhead 1.5")
    # Without adapters, the terms as the message has always had them.
    assert plain.terms_text(8192, 4) == "weights 15.0 + KV cache 4.0 for 8192 tokens x 4 + overhead 1.5"


def test_adapters_tip_a_tight_fit_over():
    # Llama-3.1-8B on 24 GiB (21.6 usable): weights 8.03e9 x 2 B = 14.96 GiB, KV 128 KiB x 8,192 x 5 = 5.0 GiB,
    # overhead 1.5: 21.46 fits; eight rank-16 slots add 0.44: 21.89 does not.
    plain = memory_fit(LLAMA, "none", 8192, 5, 1, 24)
    assert plain.required_gib == pytest.approx(8.03e9 * 2 / GIB + 5.0 + 1.5) and plain.fits
    assert not memory_fit(LLAMA, "none", 8192, 5, 1, 24, lora=LoraSlots(8, 16)).fits


def test_the_slots_are_the_engines():
    env = load_environment("test", config({"maxContext": 8192, "adapters": adapters(10, rank=12)},
                                          {"instanceTypes": ["g6e.xlarge"]}), set())
    model = env.model("qwen-7b")
    # Ten adapters, eight resident (the default maxLoras), each at vLLM's --max-lora-rank 16 that holds rank 12.
    assert model.lora == LoraSlots(8, 16)
    few = load_environment("test", config({"maxContext": 8192, "adapters": adapters(10, rank=12), "maxLoras": 2},
                                          {"instanceTypes": ["g6e.xlarge"]}), set())
    assert few.model("qwen-7b").lora == LoraSlots(2, 16)
    plain = load_environment("test", config({"maxContext": 8192}, {"instanceTypes": ["g6e.xlarge"]}), set())
    assert plain.model("qwen-7b").lora is None
    # The rank the slots are sized at is the --max-lora-rank the deployment passes (catalog/engines.py lora_flags).
    for rank in (1, 24, 320):
        env = load_environment("test", config({"maxContext": 8192, "adapters": adapters(1, rank)},
                                              {"instanceTypes": ["g6e.xlarge"]}), set())
        assert env.model("qwen-7b").lora == LoraSlots(1, lora_rank_setting(rank))


def test_a_target_that_fits_only_without_its_adapters_is_refused():
    # Qwen2.5-7B on one L4 (21.6 GiB usable): weights 7.62e9 x 2 B = 14.19 GiB, KV 56 KiB x 32,768 x 3 = 5.25 GiB,
    # overhead 1.5: 20.94 fits; eight slots at rank 64 add 1.34 GiB: 22.28 does not.
    target = {"instanceTypes": ["g6.xlarge"], "concurrency": 3}
    load_environment("test", config({"maxContext": 32768}, target), set())
    with pytest.raises(ConfigError, match=r"targets\[0\]\.instanceTypes\[0\].*needs 22\.3 GiB") as refused:
        load_environment("test", config({"maxContext": 32768, "adapters": adapters(8, rank=64)}, target), set())
    # The hosts it suggests are ranked at the base model's speed, and say so.
    assert LORA_THROUGHPUT_NOTE in str(refused.value)
    assert "adapters 1.3 (8 slots at rank 64)" in str(refused.value)


def test_cost_inputs_name_the_adapters_of_each_target():
    env = load_environment("test", config({"maxContext": 8192, "adapters": adapters(3)},
                                          {"instanceTypes": ["g6e.xlarge"]}), set())
    assert cost_inputs(env)["adapters"] == {"test-chat": ["tenant-0", "tenant-1", "tenant-2"]}
    plain = load_environment("test", config({"maxContext": 8192}, {"instanceTypes": ["g6e.xlarge"]}), set())
    assert "adapters" not in cost_inputs(plain)


def test_the_engine_puts_the_adapters_on_their_targets_serving_endpoint():
    resources = [
        Resource("aws:sagemaker/endpointConfiguration:EndpointConfiguration", "x-config", "x",
                 {"productionVariants": [{"instanceType": "ml.g5.2xlarge", "initialInstanceCount": 1}]}),
        Resource("aws:appautoscaling/target:Target", "x-scaling", "x", {"minCapacity": 1, "maxCapacity": 2}),
    ]
    usage = {"usage": {"requestsPerDay": 0}}
    outputs = {"awsRegion": "us-east-1", "costInputs": {**usage, "adapters": {"x": ["a", "b"]}}}
    est = estimate_from_outputs(resources, outputs, lambda *_: None)
    assert [s.adapters for s in est.serving] == [("a", "b")]
    serving = to_json("x", est)["serving"][0]
    assert (serving["adapters"], serving["adaptersNote"]) == (["a", "b"], LORA_THROUGHPUT_NOTE)
    assert adapters_text(serving) == " + 2 LoRA adapters (a, b)"
    plain = to_json("x", estimate_from_outputs(resources, {"awsRegion": "us-east-1", "costInputs": usage},
                                               lambda *_: None))["serving"][0]
    assert (plain["adapters"], plain["adaptersNote"], adapters_text(plain)) == ([], None, "")


def test_ten_adapters_on_one_l40s_show_as_one_endpoint():
    """Through the real program: the preview's costInputs, `selfhost cost --json` and its markdown."""
    pulumi_config = config({"maxContext": 8192, "adapters": adapters(10)}, {"instanceTypes": ["g6e.xlarge"]})
    preview = run_program("selfhost-llm", "test", pulumi_config, [],
                          lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")).to_json()
    names = [f"tenant-{i}" for i in range(10)]
    assert preview["outputs"]["costInputs"]["adapters"] == {"test-chat": names}
    report = to_json("test", price_preview(preview, lambda *_: None))
    [serving] = report["serving"]
    assert serving["adapters"] == names and serving["adaptersNote"] == LORA_THROUGHPUT_NOTE
    text = markdown(report)
    assert (f"`{serving['resource']}` serves Qwen/Qwen2.5-7B-Instruct + 10 LoRA adapters ({', '.join(names)}) on "
            "the same replicas.") in text
    assert LORA_THROUGHPUT_NOTE in text


def test_the_cost_plan_leaves_the_adapters_memory_out_of_the_kv_cache():
    from components.catalog.gpus import GPUS
    from components.cost_rules import lora_of, plan_replicas
    from components.schema import Usage
    from components.sizing import Hardware

    # Qwen2.5-7B on one L4 with no service level: saturation is the KV cache's, which 8 slots at rank 64 shrink.
    facts = MODELS["Qwen/Qwen2.5-7B-Instruct"]
    usage = Usage.model_validate({"minTokensPerSecondPerStream": None, "maxTimeToFirstTokenSeconds": None})
    plain = plan_replicas(facts, Hardware.of_gpu(GPUS["L4"], 1), 1, 4, usage)
    slots = lora_of({"selfhost-lora": "8x64"})
    assert slots == LoraSlots(8, 64) and lora_of({}) is None and lora_of({"selfhost-lora": "8"}) is None
    with_adapters = plan_replicas(facts, Hardware.of_gpu(GPUS["L4"], 1), 1, 4, usage, lora=slots)
    assert plain.capacity is not None and with_adapters.capacity is not None
    assert with_adapters.capacity.saturation.concurrency < plain.capacity.saturation.concurrency
