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
                            "20250312_0916_RC01", kv_cache_dtype=True),
        Engine("tgi", "huggingface-llm", "3.3.6",
               {"none": "", "fp8": "fp8", "int8": "eetq", "awq": "awq", "gptq": "gptq", "nf4": "bitsandbytes-nf4"},
               EngineEnv("HF_MODEL_ID", "HF_MODEL_REVISION", "MAX_TOTAL_TOKENS", "SM_NUM_GPUS", "HF_MODEL_QUANTIZE",
                         "HF_TOKEN", max_input="MAX_INPUT_TOKENS")),
        Engine("lmi", "djl-lmi", "0.38.0", {"none": "", "fp8": "fp8", "awq": "awq", "gptq": "gptq"},
               EngineEnv("HF_MODEL_ID", "HF_REVISION", "OPTION_MAX_MODEL_LEN", "TENSOR_PARALLEL_DEGREE",
                         "OPTION_QUANTIZE", "HF_TOKEN")),
        # llama-cpp-python's OpenAI server behind our adapter, on CPUs (our llama.cpp image): the quantization is
        # the GGUF file's, and its server answers one request at a time (a lock around the model).
        Engine("llamacpp", None, "", {q: q for q in ("q4_k_m", "q5_k_m", "q6_k", "q8_0")}, None, max_streams=1,
               gguf=True),
    )
}


def vllm_flags(model_id: str, revision: str | None, max_context: int, gpus: int, quantization: str,
               memory_utilization: float, kv_cache_dtype: str = "auto") -> list[tuple[str, str]]:
    """vLLM's command-line flags for serving a model, built once for every target: Google's Vertex image takes
    them as its arguments, our adapter passes them on to the engine. `revision` None: weights from a local
    directory, which has no revision."""
    flags = [("--model", model_id)]
    if revision is not None:
        flags.append(("--revision", revision))
    flags += [("--tensor-parallel-size", str(gpus)), ("--max-model-len", str(max_context)),
              ("--gpu-memory-utilization", str(memory_utilization))]
    if quant := ENGINES["vllm"].quantization[quantization]:
        flags.append(("--quantization", quant))
    if kv_cache_dtype != "auto":
        flags.append(("--kv-cache-dtype", kv_cache_dtype))
    return flags


def as_arguments(flags: list[tuple[str, str]], joined: str = "=") -> list[str]:
    """`--flag=value` items (an argv), or with joined=" " `--flag value` items (for SELFHOST_ENGINE_ARGS)."""
    return [f"{flag}{joined}{value}" for flag, value in flags]
