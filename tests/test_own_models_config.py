"""Your own models and LoRA adapters in the stack config: every mistake fails before any resource exists, at its
key path, with what is allowed (issue 27's config errors)."""

from __future__ import annotations

import copy

import pytest
import yaml

from components.catalog.engines import ENGINES, as_arguments, lora_flags, lora_rank_setting, vllm_flags
from components.weights import Location, parse

from .conftest import ROOT
from .test_config import BASE, REV, load, problems_of

ADAPTER_REV = "0123456789abcdef0123456789abcdef01234567"


def with_model(**model) -> dict:
    cfg = copy.deepcopy(BASE)
    cfg["selfhost-llm:models"][0].update(model)
    return cfg


def adapter(name: str = "support", **extra) -> dict:
    return {"name": name, "id": "acme/qwen-support-lora", "revision": ADAPTER_REV, "rank": 16, **extra}


def messages(cfg: dict) -> dict[str, str]:
    return {p.path.removeprefix("selfhost-llm:"): f"{p.message}; allowed: {p.allowed}"
            for p in problems_of(cfg).problems}


# -- sources ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "expected"), [
    ("hub", Location("hub")),
    ("s3", Location("stack")),
    ("s3://acme-models/llama/support-v3", Location("s3", "acme-models", "llama/support-v3")),
    ("gs://acme-models/llama/", Location("gs", "acme-models", "llama")),
    ("pvc://model-store/checkpoints/v3", Location("pvc", "model-store", "checkpoints/v3")),
    ("s3://acme-models", Location("s3", "acme-models", "")),
])
def test_sources_parse_into_locations(source, expected):
    assert parse(source) == expected
    assert parse(expected.uri) == expected


@pytest.mark.parametrize("source", ["http://x/y", "s3://UPPER/x", "s3://a/../b", "gs:/bucket", "file:///m", "hub "])
def test_a_source_of_no_known_form_is_refused_with_the_forms(source):
    found = messages(with_model(source=source))
    assert "has the wrong form" in found["models[0].source"]
    assert "s3://bucket/prefix" in found["models[0].source"]


def test_a_bucket_on_the_wrong_cloud_is_refused_naming_the_target_and_what_it_reads():
    found = messages(with_model(source="gs://acme-models/qwen-support", revision=None))
    assert found["models[0].source"].startswith("sagemaker targets (targets[0]) cannot read weights there")
    assert "s3://bucket/prefix" in found["models[0].source"] and "gs://" not in found["models[0].source"][-60:]


def test_an_adapter_bucket_on_the_wrong_cloud_is_refused_at_its_own_key():
    found = messages(with_model(adapters=[adapter(source="gs://acme-loras/support", id=None, revision=None)]))
    assert "cannot read weights there" in found["models[0].adapters[0].source"]


def test_a_hub_model_needs_its_revision_and_an_owned_one_does_not():
    assert "required with source 'hub'" in messages(with_model(revision=None))["models[0].revision"]
    env = load(with_model(revision=None, source="s3://acme-models/qwen-support"))
    assert env.models[0].location == Location("s3", "acme-models", "qwen-support")


def test_a_private_checkpoint_without_facts_or_base_is_refused():
    found = messages(with_model(id="acme/qwen-support", revision=None, source="s3://acme-models/qwen-support"))
    assert "has no Hub card" in found["models[0].facts"]
    assert "models[0].base" in found["models[0].facts"]


def test_a_private_checkpoint_takes_its_base_models_facts():
    env = load(with_model(id="acme/qwen-support", revision=None, source="s3://acme-models/qwen-support",
                          base="Qwen/Qwen2.5-1.5B-Instruct"))
    facts = env.models[0].resolved_facts()
    assert facts is not None and facts.layers == 28


def test_a_base_outside_the_catalog_needs_facts():
    found = messages(with_model(id="acme/x", revision=None, source="s3://acme-models/x", base="acme/unknown-base"))
    assert "not a model of the catalog" in found["models[0].base"]


def test_a_gated_base_asks_for_no_token_when_the_weights_are_your_own():
    # Llama's licence gates the Hub's copy; a fine-tune in your bucket downloads nothing from the Hub.
    load(with_model(id="acme/llama-support", revision=None, source="s3://acme-models/llama-support",
                    base="meta-llama/Llama-3.1-8B-Instruct", maxContext=4096))


# -- adapters --------------------------------------------------------------------------------------------------


def test_adapters_load_and_size_their_slots():
    cfg = with_model(adapters=[adapter("a", rank=8), adapter("b", rank=64)])
    cfg["selfhost-llm:targets"][0]["image"] = "selfhost"  # SageMaker's managed vLLM image takes one adapter
    env = load(cfg)
    model = env.models[0]
    assert (model.lora_slots, model.max_adapter_rank) == (2, 64)


@pytest.mark.parametrize("engine", ["tgi", "lmi"])
def test_an_adapter_on_an_engine_that_cannot_serve_one_is_refused_with_the_reason(engine):
    found = messages(with_model(engine=engine, adapters=[adapter()]))
    assert f"engine '{engine}' cannot serve LoRA adapters here" in found["models[0].adapters"]
    assert ENGINES[engine].lora_refused in found["models[0].adapters"]
    assert found["models[0].adapters"].endswith("allowed: vllm, llamacpp")


def test_a_rank_above_the_engines_largest_is_refused():
    found = messages(with_model(adapters=[adapter(rank=1024)]))
    assert "above the largest LoRA rank engine 'vllm' serves (512" in found["models[0].adapters[0].rank"]
    assert found["models[0].adapters[0].rank"].endswith("allowed: 1..512")


def test_an_adapter_named_like_a_model_is_refused():
    found = messages(with_model(adapters=[adapter("qwen")]))
    assert "the name of a model" in found["models[0].adapters[0].name"]


def test_an_adapter_name_must_be_one_path_segment():
    found = messages(with_model(adapters=[adapter("Qwen/Qwen2.5-1.5B-Instruct")]))
    assert "has the wrong form" in found["models[0].adapters[0].name"]
    assert "what callers send as the OpenAI model" in found["models[0].adapters[0].name"]


def test_duplicate_adapter_names_are_refused():
    found = messages(with_model(adapters=[adapter("a"), adapter("a")]))
    assert "duplicate adapter name" in found["models[0].adapters[1].name"]


def test_a_hub_adapter_needs_its_repository_and_commit():
    found = messages(with_model(adapters=[adapter(id=None, revision=None)]))
    assert "required for an adapter from the Hub" in found["models[0].adapters[0].id"]
    assert "required for an adapter from the Hub" in found["models[0].adapters[0].revision"]


def edge_config() -> dict:
    """The edge stack's config (llama.cpp on CPUs), as the Pulumi engine passes it."""
    raw = yaml.safe_load((ROOT / "stacks" / "Pulumi.edge.yaml").read_text())["config"]
    return {k: v for k, v in raw.items() if k.startswith("selfhost-llm:")}


def test_a_gguf_engine_needs_each_adapters_file_and_vllm_takes_none():
    cfg = edge_config()
    cfg["selfhost-llm:models"][0]["adapters"] = [adapter()]
    assert "loads an adapter from one GGUF file" in messages(cfg)["models[0].adapters[0].file"]
    found = messages(with_model(adapters=[adapter(file="a.gguf")]))
    assert "only for GGUF adapters" in found["models[0].adapters[0].file"]


def test_max_loras_without_adapters_is_refused():
    assert "the model has no adapters" in messages(with_model(maxLoras=4))["models[0].maxLoras"]


# -- the engine's flags ----------------------------------------------------------------------------------------

# vLLM's engine arguments as its documentation lists them (docs.vllm.ai/en/latest/configuration/engine_args.html,
# "LoRAConfig" and "ModelConfig"/"ParallelConfig"/"CacheConfig" sections, read 2026-12-07). vLLM itself cannot be
# installed here (it needs CUDA wheels of several GB), so the flags are checked against this list.
VLLM_DOCUMENTED_FLAGS = {
    "--model", "--revision", "--tensor-parallel-size", "--max-model-len", "--gpu-memory-utilization",
    "--quantization", "--kv-cache-dtype", "--enable-lora", "--lora-modules", "--max-loras", "--max-lora-rank",
}


def test_every_flag_of_a_served_model_with_adapters_is_one_vllm_documents():
    flags = vllm_flags("Qwen/Qwen2.5-7B-Instruct", REV, 8192, 1, "awq", 0.9, "fp8",
                       lora=lora_flags(2, 24, (("support", "/opt/ml/a/support"), ("legal", "gs://b/legal"))))
    assert {flag for flag, _ in flags} <= VLLM_DOCUMENTED_FLAGS
    argv = as_arguments(flags)
    # --lora-modules is argparse nargs='+' (vLLM's LoRAParserAction replaces the list on a repeat): one flag, then
    # every module; --enable-lora is a switch.
    at = argv.index("--lora-modules")
    assert argv[at:at + 3] == ["--lora-modules", "support=/opt/ml/a/support", "legal=gs://b/legal"]
    assert "--enable-lora" in argv and "--max-loras=2" in argv and "--max-lora-rank=32" in argv


@pytest.mark.parametrize(("rank", "setting"), [(1, 1), (2, 8), (8, 8), (9, 16), (300, 320), (512, 512)])
def test_the_max_lora_rank_setting_is_the_smallest_of_vllms_values_that_holds_the_rank(rank, setting):
    assert lora_rank_setting(rank) == setting


def test_an_adapter_on_a_hugging_face_endpoint_is_refused_with_the_reason():
    raw = yaml.safe_load((ROOT / "stacks" / "Pulumi.hf-dev.yaml").read_text())["config"]
    cfg = {k: v for k, v in raw.items() if k.startswith("selfhost-llm:") and not k.endswith(":hfToken")}
    cfg["selfhost-llm:models"][0]["adapters"] = [adapter()]
    found = {p.path.removeprefix("selfhost-llm:"): p.message
             for p in problems_of(cfg, secret_keys={"selfhost-llm:hfToken"}).problems}
    assert "hf-endpoint targets (targets[0]) cannot serve LoRA adapters here" in found["models[0].adapters"]


def test_start_up_budgets_follow_where_the_weights_are():
    from components.catalog.models import MODELS
    from components.catalog.serving import SAGEMAKER_TIMEOUT_BOUNDS_S
    from components.schema import ModelSpec
    from components.sizing import startup_timeout_seconds
    from components.targets.kubernetes import startup_budget

    facts = MODELS["meta-llama/Llama-3.1-8B-Instruct"]
    hub = ModelSpec.model_validate({"name": "llama", "id": "meta-llama/Llama-3.1-8B-Instruct", "revision": REV})
    owned = ModelSpec.model_validate({"name": "llama", "id": "acme/m", "source": "s3://acme-models/m",
                                      "base": "meta-llama/Llama-3.1-8B-Instruct"})
    # On a cluster, an init container fetches a bucket's weights before the engine's start-up probe begins.
    assert startup_budget(owned, facts) < startup_budget(hub, facts)
    # A bucket in the reader's region downloads faster than the Hub, the stack's bucket and a team's own alike.
    by_scheme = {scheme: startup_timeout_seconds(facts, "none", scheme, SAGEMAKER_TIMEOUT_BOUNDS_S)
                 for scheme in ("hub", "stack", "s3", "gs")}
    assert by_scheme["hub"] > by_scheme["stack"] == by_scheme["s3"] == by_scheme["gs"]


def test_a_cpu_target_counts_every_gguf_adapter_in_its_memory():
    cfg = edge_config()
    model = cfg["selfhost-llm:models"][0]
    model["adapters"] = [adapter(f"tenant-{i}", rank=512, file=f"t{i}.gguf") for i in range(4)]
    # Qwen2.5-1.5B: 4 adapters x 512 x 2 x 1,536 wide x 7 projections x 28 layers x 2 bytes = 2.30 GiB beside the
    # Q4_K_M weights (0.87), their KV cache (0.11) and the runtime (0.5): more than the 3Gi container; one fits.
    found = messages(cfg)
    assert "adapters 2.3 (4 slots at rank 512)" in found["targets[0].resources.memory"]
    model["adapters"] = model["adapters"][:1]
    load(cfg)
