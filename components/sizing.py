"""Memory fit and start-up time of a model on a GPU host. Pure functions, tested without mocks."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .catalog.engines import QUANT_BYTES_PER_PARAM
from .catalog.gpus import Gpu
from .catalog.models import ModelFacts

# Re-exported: the bounds `startup_timeout_seconds` is called with (kinds and components read them from the catalog).
from .catalog.serving import SAGEMAKER_TIMEOUT_BOUNDS_S as SAGEMAKER_TIMEOUT_BOUNDS_S
from .catalog.serving import VERTEX_TIMEOUT_BOUNDS_S as VERTEX_TIMEOUT_BOUNDS_S

GIB = 1024**3

# vLLM's default --gpu-memory-utilization; TGI and LMI reserve a similar share.
GPU_MEMORY_UTILIZATION = 0.90
# CUDA context, activation peak and communication buffers per GPU, beside weights and KV cache
# (vLLM's memory profiler reports about 1-2 GiB of non-KV, non-weight memory for 7B-class models).
RUNTIME_OVERHEAD_GIB_PER_GPU = 1.5

# Start-up budget, for ContainerStartupHealthCheckTimeoutInSeconds and ModelDataDownloadTimeoutInSeconds.
# Conservative rates so a cold start on a busy host still passes: Hugging Face Hub downloads seen at
# 100-500 MB/s, S3 in-region at 200+ MB/s; loading safetensors into GPU memory at about 1 GB/s.
# By where the weights are (components/weights.py schemes): an object store in the reader's region is about twice as
# fast as the Hub; the stack's bucket and a team's own (S3 or Cloud Storage) alike.
DOWNLOAD_BYTES_PER_S = {"hub": 100e6, "stack": 200e6, "s3": 200e6, "gs": 200e6}
LOAD_BYTES_PER_S = 1e9
# Engine warm-up after loading: memory profiling, CUDA graph capture, first compile.
WARMUP_S = 180
SAFETY_FACTOR = 1.5


# LoRA adapters on the GPU. vLLM allocates, at start, `--max-loras` slots at `--max-lora-rank` for every module of
# every layer it can adapt (vllm/lora/layers, create_lora_weights: per slot an A of max_lora_rank x in and a B of
# out x max_lora_rank), whatever the ranks of the adapters it then loads; its memory profile counts them before the
# KV cache takes the rest. Adapters beyond the slots wait in host memory and cost no GPU memory.
LORA_MODULES_PER_LAYER = 7
"""q, k, v, o, gate, up and down: what vLLM adapts on Llama-style models, all allocated whatever the adapters
target."""
LORA_BYTES_PER_ELEMENT = 2
"""bf16/fp16: vLLM keeps LoRA weights in the model's dtype (--lora-dtype auto), whatever the weights' quantization."""


@dataclass(frozen=True)
class LoraSlots:
    """The LoRA adapters an engine keeps on the GPU at once: `slots` of them, each allocated at `rank` (vLLM's
    --max-loras and --max-lora-rank, the setting that holds the largest adapter).

    Each adapted module is sized as (in + out) x rank with in and out taken as the model's width (hidden_size):
    exact for q and o, an overcount for k and v under grouped-query attention, an undercount for gate, up and down,
    whose intermediate side is several times the width (Llama-3.1-8B: 57,344 of the 81,920 in + out a layer, 70%).
    A mixture-of-experts model's experts count as one (vLLM's FusedMoEWithLoRA allocates for each); LoRA on the
    vocabulary (embeddings, lm_head) is not counted."""

    slots: int
    rank: int

    def bytes(self, facts: ModelFacts) -> float:
        """A and B (2 x width x rank) per module, per layer, per slot."""
        return (self.slots * self.rank * 2 * facts.width * LORA_MODULES_PER_LAYER * facts.layers
                * LORA_BYTES_PER_ELEMENT)

    @property
    def text(self) -> str:
        return f"{self.slots} slot{'s' * (self.slots != 1)} at rank {self.rank}"


# Throughput with adapters: not modelled. Published measurements of vLLM serving an adapter against the base model
# alone range from a few percent slower (V1 engine, Llama-2-7B on one A100: 10.96 requests/s, vllm#11613,
# 2024-12-30, against 11.45 for the base model in vllm#11267) through 34% (V0 engine, the same setup: 7.60;
# vllm#11267, 2024-12-17) to 50% at the peak (Llama-2-7B, A100-40GB; vllm#10062, 2024-11-06), and 8-24% on TPU v6e
# (Llama-3.1-8B; vllm#15655, 2025): too wide, and too dependent on the engine's version, the rank and the request
# shape, for one factor; a guess would read as a measurement.
LORA_THROUGHPUT_NOTE = ("LoRA decode overhead not modelled: throughput is the base model's (published vLLM "
                        "measurements: a few percent to 50% slower with an adapter)")
"""What sizing says of adapters' speed wherever it sizes a model served with them."""


@dataclass(frozen=True)
class Fit:
    weights_gib: float
    kv_cache_gib: float
    overhead_gib: float
    available_gib: float
    adapters_gib: float = 0.0
    """The LoRA slots' preallocated memory (`lora`); 0 without adapters."""
    lora: LoraSlots | None = None

    @property
    def required_gib(self) -> float:
        return self.weights_gib + self.kv_cache_gib + self.adapters_gib + self.overhead_gib

    def terms_text(self, context: int, concurrency: int) -> str:
        """What `required_gib` adds up, for a does-not-fit message: weights, KV cache for `concurrency` sequences of
        `context` tokens, the adapters' slots (with any) and the overhead."""
        adapters = f" + adapters {self.adapters_gib:.1f} ({self.lora.text})" if self.lora else ""
        return (f"weights {self.weights_gib:.1f} + KV cache {self.kv_cache_gib:.1f} for {context} tokens x "
                f"{concurrency}{adapters} + overhead {self.overhead_gib:.1f}")

    @property
    def fits(self) -> bool:
        return self.required_gib <= self.available_gib

    @property
    def margin_gib(self) -> float:
        return self.available_gib - self.required_gib


def weights_bytes(facts: ModelFacts, quantization: str) -> float:
    return facts.params_billion * 1e9 * QUANT_BYTES_PER_PARAM[quantization]


def memory_fit(
    facts: ModelFacts, quantization: str, context: int, concurrency: int, gpu_count: int, total_gpu_memory_gib: float,
    kv_bytes: float = 2.0, lora: LoraSlots | None = None,
) -> Fit:
    """Weights + KV cache for `concurrency` sequences of `context` tokens + the LoRA slots (`lora`, with adapters) +
    overhead, against usable GPU memory.

    The KV cache stays in bf16 whatever the weight quantization unless asked for in fp8 (`kv_bytes` 1).
    """
    return Fit(
        weights_gib=weights_bytes(facts, quantization) / GIB,
        kv_cache_gib=facts.kv_bytes_per_token(kv_bytes) * context * concurrency / GIB,
        overhead_gib=RUNTIME_OVERHEAD_GIB_PER_GPU * gpu_count,
        available_gib=total_gpu_memory_gib * GPU_MEMORY_UTILIZATION,
        adapters_gib=lora.bytes(facts) / GIB if lora else 0.0,
        lora=lora,
    )


def startup_timeout_seconds(facts: ModelFacts, quantization: str, source: str, bounds: tuple[int, int], *,
                            download: bool = True, warmup_s: float = WARMUP_S) -> int:
    """Seconds to download (unless the weights are already there), load and warm a model, with margin, rounded up
    to a minute, within the target's `bounds`."""
    size = weights_bytes(facts, quantization)
    # Quantized checkpoints are published quantized, so the download is the quantized size too.
    fetch = size / DOWNLOAD_BYTES_PER_S[source] if download else 0.0
    seconds = (fetch + size / LOAD_BYTES_PER_S + warmup_s) * SAFETY_FACTOR
    low, high = bounds
    return int(min(max(math.ceil(seconds / 60) * 60, low), high))


# --------------------------------------------------------------------------------------------------------
# Throughput: a roofline model of continuous batching with chunked prefill, as vLLM's V1 engine schedules.
#
# A replica serving `c` requests at once runs one forward step after another. Each step decodes one token of
# every request past its prompt and, in the same step, a chunk of the prompts waiting (chunked prefill: the step's
# token budget, max_num_batched_tokens, is shared by decodes first and prompt chunks next). A step's time
# combines (a soft maximum: they overlap only in part)
#   - reading the weights and the live KV cache from memory (decode is memory-bound), and
#   - the matrix work of every token in it, 2 FLOPs per parameter (prefill is compute-bound),
# plus a fixed per-step cost (scheduling, sampling, kernel launches) and, across tensor-parallel GPUs, two
# all-reduces of the step's activations per layer over NVLink or PCIe. Over a request's life (its prompt in
# `p` steps, then one step per output token) a step carries on average c x (I + O) / (O + p) tokens, so at
# low concurrency steps are memory-bound and per-stream speed stays near the single-stream figure; as c grows
# the compute of prompts and decodes takes over and the replica's throughput flattens at the compute roof.
# fp8 weights halve the bytes read and, on GPUs with fp8 tensor cores (Ada, Hopper), run at their fp8 rate;
# an fp8 KV cache halves the KV bytes (so twice the sequences fit, and each step reads half of it).
# The efficiency factors below are fit to the published measurements in catalog/throughput_points.csv
# (benchmarks/sizing_accuracy.py prints predicted against measured; tests/test_sizing.py holds each point).
# The KV cache is bf16 unless an fp8 one is asked for (kv_bytes 1); the engine's own sequence limit and step
# budget come from `engine_limits`.


@dataclass(frozen=True)
class Hardware:
    """What one replica runs on: `count` identical devices (tensor parallel) of `bandwidth_gb_s` and `tflops`
    (dense bf16/fp16; fp32 for CPUs) each, `memory_gib` in all, linked at `link_gb_s` one way."""

    memory_gib: float
    bandwidth_gb_s: float
    tflops: float
    count: int = 1
    fp8_tflops: float | None = None
    link_gb_s: float = 32.0
    cpu: bool = False
    gpu: str = ""
    """The GPU's catalog name (empty for CPUs): engines tune their defaults by it."""

    @classmethod
    def of_gpu(cls, gpu: Gpu, count: int, memory_gib: float | None = None) -> Hardware:
        return cls(gpu.memory_gib * count if memory_gib is None else memory_gib, gpu.bandwidth_gb_s,
                   gpu.bf16_tflops or 0.0, count, gpu.fp8_tflops, gpu.link_gb_s, gpu=gpu.name)

    @property
    def device_memory_gib(self) -> float:
        return self.memory_gib / self.count


@dataclass(frozen=True)
class EngineLimits:
    """The scheduler limits of the engine serving the replica."""

    max_seqs: int | None
    """Requests it runs at once (None: as many as the KV cache holds)."""
    max_batched_tokens: int
    """Tokens one step may carry (the chunked-prefill budget)."""


# vLLM's defaults for its OpenAI server, by GPU (vllm/engine/arg_utils.py, EngineArgs.get_batch_defaults, read
# 2026-12-02): devices of 70 GiB or more other than the A100 (H100, H200) get max_num_seqs 1024 and
# max_num_batched_tokens 8192; every other GPU 256 and 2048. TGI's and LMI's rolling batches are capped alike.
VLLM_LARGE_DEVICE_GIB = 70


def engine_limits(engine_max_streams: int | None, hw: Hardware) -> EngineLimits:
    if engine_max_streams is not None:
        return EngineLimits(engine_max_streams, 2048)
    if hw.cpu:
        return EngineLimits(None, 2048)
    if hw.device_memory_gib >= VLLM_LARGE_DEVICE_GIB and not hw.gpu.startswith("A100"):
        return EngineLimits(1024, 8192)
    return EngineLimits(256, 2048)


# One set for every GPU, model and engine, fit by minimising the worst and the mean log error over the 34 usable
# points of catalog/throughput_points.csv (TensorRT-LLM 0.13 offline runs, NVIDIA NIM, vLLM; 6 GPU types, 7-8B
# and 70B models, one stream to saturation): median error 8%, worst 23% (benchmarks/sizing_accuracy.py). The
# points are the fit's own: there is no held-out set, so treat a GPU or shape far from them as less certain.
WEIGHT_BANDWIDTH_EFFICIENCY = 0.90
"""Share of peak memory bandwidth reading the weights achieves."""
KV_BANDWIDTH_EFFICIENCY = 0.59
"""Share of peak memory bandwidth attention's KV cache reads achieve."""
COMPUTE_EFFICIENCY = 0.59
"""Share of peak dense bf16/fp16 tensor throughput a step's matrix work achieves (model FLOPs utilisation)."""
FP8_COMPUTE_EFFICIENCY = 0.51
"""The same, of the fp8 tensor rate, for fp8 weights on GPUs that have fp8 tensor cores."""
OVERLAP = 1.66
"""How memory and compute time combine in a step: (m^k + c^k)^(1/k), from a sum (k = 1) to the larger (k large)."""
STEP_OVERHEAD_S = 1.5e-3
"""Fixed time of every step beside its memory and compute time (scheduling, sampling, launches)."""
ALL_REDUCE_LATENCY_S = 37e-6
"""Fixed cost of one all-reduce between tensor-parallel devices."""
LINK_EFFICIENCY = 0.49
"""Share of the GPU-to-GPU link's bandwidth an all-reduce achieves."""
REQUEST_OVERHEAD_S = 0.061
"""Time to first token beside the model's steps (HTTP, tokenizing, scheduling the new request)."""


@dataclass(frozen=True)
class Throughput:
    concurrency: int
    decode_tokens_per_s_per_stream: float
    """Tokens a second each stream sees once its first token is out (1 / time per output token)."""
    output_tokens_per_s: float
    """Of the whole replica."""
    requests_per_s: float
    ttft_s: float
    """Time to the first token of a request arriving at this concurrency."""


def _step_s(facts: ModelFacts, quantization: str, hw: Hardware, tokens: float, kv_tokens: float,
            kv_bytes: float) -> float:
    """One forward step carrying `tokens` tokens while attention reads `kv_tokens` tokens of KV cache."""
    n = hw.count
    fp8 = quantization == "fp8" and hw.fp8_tflops is not None
    peak = (hw.fp8_tflops or 0.0) * FP8_COMPUTE_EFFICIENCY if fp8 else hw.tflops * COMPUTE_EFFICIENCY
    read = (weights_bytes(facts, quantization) / WEIGHT_BANDWIDTH_EFFICIENCY
            + kv_tokens * facts.kv_bytes_per_token(kv_bytes) / KV_BANDWIDTH_EFFICIENCY)
    memory = read / (hw.bandwidth_gb_s * 1e9 * n)
    compute = 2 * facts.params_billion * 1e9 * tokens / (peak * 1e12 * n)
    k = OVERLAP
    step = (memory**k + compute**k) ** (1 / k) + STEP_OVERHEAD_S
    if n > 1:
        # Two all-reduces a layer of the step's activations (ring: 2 (n-1)/n of the data each way).
        hidden = math.sqrt(facts.params_billion * 1e9 / (12 * facts.layers))
        data = tokens * hidden * 2 * 2 * (n - 1) / n
        step += 2 * facts.layers * (ALL_REDUCE_LATENCY_S + data / (hw.link_gb_s * 1e9 * LINK_EFFICIENCY))
    return step


def throughput(facts: ModelFacts, quantization: str, hw: Hardware, concurrency: int, input_tokens: int,
               output_tokens: int, kv_bytes: float = 2.0, max_batched_tokens: int = 2048) -> Throughput:
    """Steady-state throughput of one replica keeping `concurrency` requests of the given shape in flight
    (closed loop: a new request starts as one ends)."""
    c, prompt, out = max(concurrency, 1), input_tokens, output_tokens
    # Prompt steps: what the step budget leaves after the decodes, shared by the prompts in flight.
    budget = max(max_batched_tokens - c, 64)
    p = max(1.0, prompt / budget)
    decoding = c * out / (out + p)  # requests past their prompt in an average step
    tokens = c * (prompt + out) / (out + p)
    kv_tokens = decoding * (prompt + out / 2)
    step_s = _step_s(facts, quantization, hw, tokens, kv_tokens, kv_bytes)
    # The first token: the prompt's own steps, each carrying its chunk beside the decodes, and half a step of
    # waiting for the next to start.
    prefill_step_s = _step_s(facts, quantization, hw, decoding + prompt / p, kv_tokens, kv_bytes)
    ttft = REQUEST_OVERHEAD_S + p * prefill_step_s + step_s / 2
    request_s = ttft + out * step_s
    return Throughput(c, 1 / step_s, c * out / request_s, c / request_s, ttft)


def max_concurrency(facts: ModelFacts, quantization: str, gpu_count: int, total_gpu_memory_gib: float,
                    tokens_per_request: int, kv_bytes: float = 2.0, lora: LoraSlots | None = None) -> int:
    """Requests of `tokens_per_request` whose KV cache fits beside the weights and the LoRA slots (0: the model
    does not fit)."""
    free = (total_gpu_memory_gib * GPU_MEMORY_UTILIZATION - RUNTIME_OVERHEAD_GIB_PER_GPU * gpu_count) * GIB \
        - weights_bytes(facts, quantization) - (lora.bytes(facts) if lora else 0.0)
    return max(0, int(free // (facts.kv_bytes_per_token(kv_bytes) * tokens_per_request)))


@dataclass(frozen=True)
class ServiceLevel:
    """What each user must see: a per-stream decode speed floor and/or a time-to-first-token ceiling."""

    min_stream_tokens_per_s: float | None = None
    max_ttft_s: float | None = None

    def met(self, t: Throughput) -> bool:
        fast = self.min_stream_tokens_per_s is None or t.decode_tokens_per_s_per_stream >= self.min_stream_tokens_per_s
        return fast and (self.max_ttft_s is None or t.ttft_s <= self.max_ttft_s)


@dataclass(frozen=True)
class Capacity:
    """A replica at the service level (the most concurrent requests that still meet it) and at saturation
    (as many as memory and the engine admit)."""

    at_service_level: Throughput
    saturation: Throughput
    service_level_met: bool
    """False when even one stream misses the service level (then `at_service_level` is one stream)."""
    limit: str
    """What caps saturation: "memory" (KV cache) or "engine" (its sequence limit)."""


def capacity(facts: ModelFacts, quantization: str, hw: Hardware, input_tokens: int, output_tokens: int,
             level: ServiceLevel, limits: EngineLimits, kv_bytes: float = 2.0,
             lora: LoraSlots | None = None) -> Capacity | None:
    """None when the model does not fit the replica's memory. `lora`: the adapters' slots take memory from the KV
    cache; their decode overhead is not modelled (LORA_THROUGHPUT_NOTE)."""
    fits = max_concurrency(facts, quantization, hw.count, hw.memory_gib, input_tokens + output_tokens, kv_bytes,
                           lora)
    if fits == 0:
        return None
    top = fits if limits.max_seqs is None else min(fits, limits.max_seqs)
    at = lambda c: throughput(facts, quantization, hw, c, input_tokens, output_tokens, kv_bytes,  # noqa: E731
                              limits.max_batched_tokens)
    # Per-stream speed falls and time to first token grows with concurrency: bisect for the last c that meets.
    low, high = 1, top
    if not level.met(at(1)):
        low = high = 0
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if level.met(at(mid)) else (low, mid - 1)
    saturation = at(top)
    return Capacity(at(max(low, 1)), saturation, low > 0,
                    "memory" if limits.max_seqs is None or fits < limits.max_seqs else "engine")
