"""Memory fit and start-up time of a model on a GPU host. Pure functions, tested without mocks."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .catalog.engines import QUANT_BYTES_PER_PARAM
from .catalog.models import ModelFacts

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
SAGEMAKER_TIMEOUT_BOUNDS_S = (60, 3600)


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


def startup_timeout_seconds(facts: ModelFacts, quantization: str, source: str) -> int:
    """Seconds to download, load and warm a model, with margin, rounded up to a minute, in SageMaker's bounds."""
    size = weights_bytes(facts, quantization)
    # Quantized checkpoints are published quantized, so the download is the quantized size too.
    seconds = (size / DOWNLOAD_BYTES_PER_S[source] + size / LOAD_BYTES_PER_S + WARMUP_S) * SAFETY_FACTOR
    low, high = SAGEMAKER_TIMEOUT_BOUNDS_S
    return int(min(max(math.ceil(seconds / 60) * 60, low), high))
