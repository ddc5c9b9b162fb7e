"""Memory fit and start-up time of a model on a GPU host. Pure functions, tested without mocks."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .catalog.engines import QUANT_BYTES_PER_PARAM
from .catalog.models import MODELS, ModelFacts

GIB = 1024**3

# vLLM's default --gpu-memory-utilization; TGI and LMI reserve a similar share.
GPU_MEMORY_UTILIZATION = 0.90
# CUDA context, activation peak and communication buffers per GPU, beside weights and KV cache
# (vLLM's memory profiler reports about 1-2 GiB of non-KV, non-weight memory for 7B-class models).
RUNTIME_OVERHEAD_GIB_PER_GPU = 1.5

# Start-up budget, for ContainerStartupHealthCheckTimeoutInSeconds and ModelDataDownloadTimeoutInSeconds.
# Conservative rates so a cold start on a busy host still passes: Hugging Face Hub downloads seen at
# 100-500 MB/s, S3 in-region at 200+ MB/s; loading safetensors into GPU memory at about 1 GB/s.
DOWNLOAD_BYTES_PER_S = {"hub": 100e6, "s3": 200e6}
LOAD_BYTES_PER_S = 1e9
# Engine warm-up after loading: memory profiling, CUDA graph capture, first compile.
WARMUP_S = 180
SAFETY_FACTOR = 1.5
# ContainerStartupHealthCheckTimeoutInSeconds (SageMaker ProductionVariant API reference).
SAGEMAKER_TIMEOUT_BOUNDS_S = (60, 3600)
# What a Vertex target's startupTimeoutSeconds admits (components/targets/vertex.py).
VERTEX_TIMEOUT_BOUNDS_S = (60, 7200)


@dataclass(frozen=True)
class Fit:
    weights_gib: float
    kv_cache_gib: float
    overhead_gib: float
    available_gib: float

    @property
    def required_gib(self) -> float:
        return self.weights_gib + self.kv_cache_gib + self.overhead_gib

    @property
    def fits(self) -> bool:
        return self.required_gib <= self.available_gib

    @property
    def margin_gib(self) -> float:
        return self.available_gib - self.required_gib


def weights_bytes(facts: ModelFacts, quantization: str) -> float:
    return facts.params_billion * 1e9 * QUANT_BYTES_PER_PARAM[quantization]


def memory_fit(
    facts: ModelFacts, quantization: str, context: int, concurrency: int, gpu_count: int, total_gpu_memory_gib: float
) -> Fit:
    """Weights + KV cache for `concurrency` sequences of `context` tokens + overhead, against usable GPU memory.

    The KV cache stays in bf16 whatever the weight quantization: engines quantize it only on request.
    """
    return Fit(
        weights_gib=weights_bytes(facts, quantization) / GIB,
        kv_cache_gib=facts.kv_bytes_per_token() * context * concurrency / GIB,
        overhead_gib=RUNTIME_OVERHEAD_GIB_PER_GPU * gpu_count,
        available_gib=total_gpu_memory_gib * GPU_MEMORY_UTILIZATION,
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
# Throughput: a roofline model. Decode is bound by memory bandwidth (every step reads all weights and the
# live KV cache); prefill by compute (2 FLOPs per parameter per prompt token). Prefill is counted as time
# taken from decoding (no overlap): conservative for capacity planning, and the better fit to the
# measurements in MEASUREMENTS below.

# Share of peak memory bandwidth a decode step achieves. Fit to one published measurement (Llama-3.1-8B
# bf16 on an A100 40GB at one stream decodes at about 75 tokens/s, "about 77% of the memory-bandwidth
# ceiling": johnmusgrave.com/p/vllm-throughput-latency-sweep-on, vLLM 0.23.0); checked against the others.
DECODE_BANDWIDTH_EFFICIENCY = 0.77
# Share of peak dense tensor throughput prefill achieves (model FLOPs utilisation; 40-60% is typical).
PREFILL_COMPUTE_EFFICIENCY = 0.5
# Beyond this many concurrent streams per replica latency climbs steeply (the knee seen at 8-16 streams in
# MEASUREMENTS): capacity is planned at most this many streams per replica.
PLANNING_CONCURRENCY = 16


@dataclass(frozen=True)
class Throughput:
    concurrency: int
    decode_tokens_per_s_per_stream: float
    output_tokens_per_s: float
    requests_per_s: float


def throughput(facts: ModelFacts, quantization: str, bandwidth_gb_s: float, tflops: float, gpu_count: int,
               concurrency: int, input_tokens: int, output_tokens: int) -> Throughput:
    """Steady-state throughput of one replica serving `concurrency` requests of the given shape.

    Tensor parallelism is taken as adding bandwidth and compute linearly (all-reduce cost ignored)."""
    bandwidth = bandwidth_gb_s * 1e9 * gpu_count * DECODE_BANDWIDTH_EFFICIENCY
    flops = tflops * 1e12 * gpu_count * PREFILL_COMPUTE_EFFICIENCY
    mean_context = input_tokens + output_tokens / 2
    step_s = (weights_bytes(facts, quantization) + concurrency * mean_context * facts.kv_bytes_per_token()) / bandwidth
    prefill_s = 2 * facts.params_billion * 1e9 * input_tokens / flops
    # One "round": every stream prefills its prompt once and decodes its output.
    round_s = concurrency * prefill_s + output_tokens * step_s
    return Throughput(
        concurrency=concurrency,
        decode_tokens_per_s_per_stream=1 / step_s,
        output_tokens_per_s=concurrency * output_tokens / round_s,
        requests_per_s=concurrency / round_s,
    )


def max_concurrency(facts: ModelFacts, quantization: str, gpu_count: int, total_gpu_memory_gib: float,
                    tokens_per_request: int) -> int:
    """Requests of `tokens_per_request` whose KV cache fits beside the weights (0: the model does not fit)."""
    free = (total_gpu_memory_gib * GPU_MEMORY_UTILIZATION - RUNTIME_OVERHEAD_GIB_PER_GPU * gpu_count) * GIB \
        - weights_bytes(facts, quantization)
    return max(0, int(free // (facts.kv_bytes_per_token() * tokens_per_request)))


@dataclass(frozen=True)
class Measurement:
    """A published throughput figure the roofline model is checked against."""

    source: str
    model: str
    gpu: str
    bandwidth_gb_s: float
    tflops: float
    concurrency: int
    input_tokens: int
    output_tokens: int
    measured: float
    metric: str  # "decode" (tokens/s of one stream) or "output" (output tokens/s of the replica)
    calibration: bool = False  # the point the efficiency factor was fit to


_LLAMA_A100 = "johnmusgrave.com/p/vllm-throughput-latency-sweep-on (vLLM 0.23.0, A100 40GB, 1024 in / 128 out)"
_MISTRAL_4090 = ("mushfiqrahman.dev/benchmarking-mistral-7b-on-rtx-4090-vllm-concurrency-latency-and-capacity-planning"
                 " (vLLM, RTX 4090 24GB, 256 in / 128 out)")
# RTX 4090: 1008 GB/s, 165 dense fp16 tensor TFLOP/s (NVIDIA Ada GPU architecture whitepaper).
MEASUREMENTS: tuple[Measurement, ...] = (
    Measurement(_LLAMA_A100, "meta-llama/Llama-3.1-8B-Instruct", "A100-40GB", 1555, 312, 1, 1024, 128, 75, "decode",
                calibration=True),
    # "a 6.6x gain" over one stream at concurrency 8: 6.6 x 75.
    Measurement(_LLAMA_A100, "meta-llama/Llama-3.1-8B-Instruct", "A100-40GB", 1555, 312, 8, 1024, 128, 6.6 * 75,
                "output"),
    Measurement(_MISTRAL_4090, "mistralai/Mistral-7B-Instruct-v0.3", "RTX 4090", 1008, 165, 4, 256, 128, 210, "output"),
    Measurement(_MISTRAL_4090, "mistralai/Mistral-7B-Instruct-v0.3", "RTX 4090", 1008, 165, 8, 256, 128, 377, "output"),
    Measurement(_MISTRAL_4090, "mistralai/Mistral-7B-Instruct-v0.3", "RTX 4090", 1008, 165, 16, 256, 128, 644,
                "output"),
)


def predicted(m: Measurement) -> float:
    t = throughput(MODELS[m.model], "none", m.bandwidth_gb_s, m.tflops, 1, m.concurrency, m.input_tokens,
                   m.output_tokens)
    return t.decode_tokens_per_s_per_stream if m.metric == "decode" else t.output_tokens_per_s
