"""Inference engines we deploy but do not write, and what each accepts.

SageMaker images come from the `sagemaker` package's image URI tables (framework + version below), resolved by
`sagemaker.core.image_uris.retrieve`. Versions are the newest each table held on 2026-11-29 (sagemaker-core
2.27.0). Environment variable names, read 2026-11-29: the HF vLLM DLC `sagemaker_entrypoint.sh`
(aws/deep-learning-containers, huggingface/vllm), the TGI `sagemaker-entrypoint.sh` and launcher reference
(huggingface/text-generation-inference), and djl-serving `ModelStore.java` and the LMI configuration guide.
"""

from __future__ import annotations

from dataclasses import dataclass

# Bytes one weight takes on the GPU at each quantization. 4-bit schemes carry group scales: about 4.5 bits.
QUANT_BYTES_PER_PARAM: dict[str, float] = {
    "none": 2.0,  # bf16 / fp16 as published
    "fp8": 1.0,
    "int8": 1.0,  # bitsandbytes 8-bit / EETQ
    "awq": 0.5625,
    "gptq": 0.5625,
    "nf4": 0.5625,  # bitsandbytes 4-bit
    # GGUF files for llama.cpp: bits per weight measured on Llama 2 7B in llama.cpp's tools/quantize/README.md
    # (Q4_K_M 4.84, Q5_K_M 5.68, Q6_K 6.56; Q8_0 is 34 bytes per block of 32 weights). Small models keep their
    # embeddings at higher precision and come out larger (Qwen2.5-1.5B Q4_K_M: 5.8 bits per weight).
    "q4_k_m": 4.84 / 8,
    "q5_k_m": 5.68 / 8,
    "q6_k": 6.56 / 8,
    "q8_0": 8.5 / 8,
}

# Quantizations that need hardware fp8 support (Ada Lovelace or Hopper).
FP8_ARCHS = frozenset({"ada", "hopper"})


@dataclass(frozen=True)
class EngineEnv:
    """Names of the environment variables an engine's SageMaker image reads, by what they set."""

    model: str
    revision: str
    max_context: str
    gpus: str
    quantization: str
    token: str
    max_input: str | None = None  # engines that bound the prompt separately (TGI: must be below max_context)
    fixed: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Lora:
    """How an engine serves LoRA adapters on its base model."""

    ranks: tuple[int, ...]
    """The values its largest-rank setting takes (an adapter's rank must be at most the largest); () : any rank."""
    source: str

    def setting(self, rank: int) -> int:
        """The smallest of its rank settings that holds an adapter of `rank`; the rank itself where it has no
        settings, or none that holds it (a rank the config refuses)."""
        return next((r for r in self.ranks if r >= rank), rank)


# vLLM: `--enable-lora`, `--lora-modules name=path ...`, `--max-loras`, `--max-lora-rank` (vllm/config/lora.py,
# `MaxLoRARanks = Literal[1, 8, 16, 32, 64, 128, 256, 320, 512]`, v0.11-v0.26; docs "LoRA Adapters",
# docs.vllm.ai/en/latest/features/lora.html, read 2026-12-07).
VLLM_LORA = Lora((1, 8, 16, 32, 64, 128, 256, 320, 512),
                 "vllm/config/lora.py MaxLoRARanks; docs.vllm.ai features/lora (2026-12-07)")
# llama.cpp: GGUF adapters (convert_lora_to_gguf.py) set on the context per request (llama_set_adapters_lora, in
# llama-cpp-python 0.3.36); llama.cpp states no largest rank.
LLAMACPP_LORA = Lora((), "llama.cpp include/llama.h llama_adapter_lora_init / llama_set_adapters_lora (2026-12-07)")


@dataclass(frozen=True)
class Engine:
    name: str
    sagemaker_framework: str | None
    """The `sagemaker` package's image table for it (None: no managed SageMaker image)."""
    sagemaker_version: str
    # Our quantization name -> the engine's own spelling, for the ones it supports.
    quantization: dict[str, str]
    env: EngineEnv | None
    vertex_image: str | None = None
    """Image Vertex AI serves the engine with, for Model Garden deployments of Hugging Face models."""
    max_streams: int | None = None
    """Requests one replica generates at once, where the engine caps it (None: as many as memory holds)."""
    gguf: bool = False
    """It loads one GGUF file (`models[].file`) rather than a repository of safetensors."""
    kv_cache_dtype: bool = False
    """It takes `models[].kvCacheDtype: fp8` (vLLM's --kv-cache-dtype)."""
    lora: Lora | None = None
    """How it serves `models[].adapters`; None: it does not here, for `lora_refused`."""
    lora_refused: str = ""


ENGINES: dict[str, Engine] = {
    e.name: e
    for e in (
        Engine("vllm", "huggingface-vllm", "0.29.0",
               {"none": "", "fp8": "fp8", "awq": "awq", "gptq": "gptq", "nf4": "bitsandbytes"},
               # The HF vLLM DLC turns every SM_VLLM_<FLAG> into --<flag>; it must bind 0.0.0.0 for /ping.
               EngineEnv("SM_VLLM_MODEL", "SM_VLLM_REVISION", "SM_VLLM_MAX_MODEL_LEN", "SM_VLLM_TENSOR_PARALLEL_SIZE",
                         "SM_VLLM_QUANTIZATION", "HF_TOKEN", fixed=(("SM_VLLM_HOST", "0.0.0.0"),)),
               # Google's Model Garden vLLM image, as pinned by Vertex AI's own Gemma 3 deployment configs
               # (2025-03); it answers Vertex predict on /generate and health on /ping.
               vertex_image="us-docker.pkg.dev/vertex-ai/vertex-vision-model-garden-dockers/pytorch-vllm-serve:"
                            "20250312_0916_RC01", kv_cache_dtype=True, lora=VLLM_LORA),
        Engine("tgi", "huggingface-llm", "3.3.6",
               {"none": "", "fp8": "fp8", "int8": "eetq", "awq": "awq", "gptq": "gptq", "nf4": "bitsandbytes-nf4"},
               EngineEnv("HF_MODEL_ID", "HF_MODEL_REVISION", "MAX_TOTAL_TOKENS", "SM_NUM_GPUS", "HF_MODEL_QUANTIZE",
                         "HF_TOKEN", max_input="MAX_INPUT_TOKENS"),
               # TGI picks an adapter by `adapter_id` in its own generate parameters (LORA_ADAPTERS at start), not
               # by the OpenAI `model` our routes and the router send; and it is in maintenance mode upstream.
               lora_refused="TGI selects an adapter by its own `adapter_id` parameter, not the OpenAI `model` name "
                            "callers and the router send"),
        Engine("lmi", "djl-lmi", "0.38.0", {"none": "", "fp8": "fp8", "awq": "awq", "gptq": "gptq"},
               EngineEnv("HF_MODEL_ID", "HF_REVISION", "OPTION_MAX_MODEL_LEN", "TENSOR_PARALLEL_DEGREE",
                         "OPTION_QUANTIZE", "HF_TOKEN"),
               # LMI loads adapters from an `adapters/` folder of its model artifact and selects one by an `adapters`
               # field of its own request schema (LMI docs "LoRA adapters"), not the OpenAI `model` name.
               lora_refused="LMI selects an adapter by its own `adapters` request field, not the OpenAI `model` name "
                            "callers and the router send"),
        # llama-cpp-python's OpenAI server behind our adapter, on CPUs (our llama.cpp image): the quantization is
        # the GGUF file's, and its server answers one request at a time (a lock around the model).
        Engine("llamacpp", None, "", {q: q for q in ("q4_k_m", "q5_k_m", "q6_k", "q8_0")}, None, max_streams=1,
               gguf=True, lora=LLAMACPP_LORA),
    )
}


Flag = tuple[str, str | tuple[str, ...] | None]
"""A command-line flag and its value: one value, several (`--lora-modules a=x b=y`), or None for a switch."""


def lora_rank_setting(rank: int) -> int:
    """The smallest of vLLM's --max-lora-rank values that holds an adapter of `rank` (the config refuses more)."""
    return VLLM_LORA.setting(rank)


def lora_flags(slots: int, max_rank: int, modules: tuple[tuple[str, str], ...] = ()) -> list[Flag]:
    """vLLM's LoRA flags: `slots` adapters resident on the GPU, of rank up to `max_rank`, and the adapters to load
    (name, path), for an image that takes the flags as they are. Our adapter is told the adapters itself
    (SELFHOST_ADAPTERS) and adds --enable-lora and --lora-modules: then `modules` is empty."""
    flags: list[Flag] = []
    if modules:
        flags += [("--enable-lora", None), ("--lora-modules", tuple(f"{name}={path}" for name, path in modules))]
    return flags + [("--max-loras", str(slots)), ("--max-lora-rank", str(lora_rank_setting(max_rank)))]


def vllm_flags(model_id: str, revision: str | None, max_context: int, gpus: int, quantization: str,
               memory_utilization: float, kv_cache_dtype: str = "auto",
               lora: list[Flag] | None = None) -> list[Flag]:
    """vLLM's command-line flags for serving a model, built once for every target: Google's Vertex image takes
    them as its arguments, our adapter passes them on to the engine. `revision` None: weights from a local
    directory, which has no revision. `lora`: `lora_flags(...)` when the model has adapters."""
    flags: list[Flag] = [("--model", model_id)]
    if revision is not None:
        flags.append(("--revision", revision))
    flags += [("--tensor-parallel-size", str(gpus)), ("--max-model-len", str(max_context)),
              ("--gpu-memory-utilization", str(memory_utilization))]
    if quant := ENGINES["vllm"].quantization[quantization]:
        flags.append(("--quantization", quant))
    if kv_cache_dtype != "auto":
        flags.append(("--kv-cache-dtype", kv_cache_dtype))
    return flags + (lora or [])


def as_arguments(flags: list[Flag]) -> list[str]:
    """An argv: `--flag=value` items, a switch alone, and a flag of several values followed by them (argparse's
    `nargs='+'` takes no `=` form for more than one)."""
    out: list[str] = []
    for flag, value in flags:
        if value is None:
            out.append(flag)
        elif isinstance(value, tuple):
            out += [flag, *value]
        else:
            out.append(f"{flag}={value}")
    return out
