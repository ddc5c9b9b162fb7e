"""Every host a model could be served on, with fit, throughput and $ per 1M tokens: `selfhost size`, and the
suggestions a stack gets when its choice does not fit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .catalog import gcp_machines
from .catalog.gpus import GPUS
from .catalog.models import ModelFacts
from .catalog.sagemaker_instances import instances_in
from .sizing import PLANNING_CONCURRENCY, Fit, max_concurrency, memory_fit, throughput

ONPREM_GPU_COUNTS = (1, 2, 4, 8)

Lookup = Callable[[str, str, str, str], Any]


@dataclass(frozen=True)
class Host:
    cloud: str
    target: str
    name: str
    region: str
    gpu: str
    gpu_count: int
    memory_gib: float
    bandwidth_gb_s: float
    tflops: float
    usd_per_hour: float | None
    price_source: str


@dataclass(frozen=True)
class Option:
    host: Host
    fit: Fit
    streams: int
    output_tokens_per_s: float
    requests_per_s: float
    usd_per_1m_tokens: float | None


def hosts(clouds: tuple[str, ...], regions: dict[str, str], lookup: Lookup, onprem_gpu_hour_usd: float | None = None,
          onprem_node_hour_usd: float = 0.0) -> list[Host]:
    out: list[Host] = []
    if "aws" in clouds:
        region = regions.get("aws", "us-east-1")
        for itype, inst in instances_in(region).items():
            price = lookup("aws", "sagemaker-hosting", region, itype)
            out.append(Host("aws", "sagemaker", itype, region, inst.gpu.name, inst.gpu_count, inst.total_gpu_memory_gib,
                            inst.gpu.bandwidth_gb_s, inst.gpu.bf16_tflops or 0, price.usd if price else None,
                            price.source if price else ""))
    if "gcp" in clouds:
        region = regions.get("gcp", "us-central1")
        offered = gcp_machines.VERTEX_REGION_ACCELERATORS.get(region, frozenset())
        for machine, (accelerator, count) in gcp_machines.FIXED_GPU_MACHINES.items():
            if accelerator in offered:
                out.append(_vertex_host(machine, accelerator, count, region, lookup))
        for accelerator, counts in gcp_machines.N1_ACCELERATOR_COUNTS.items():
            if accelerator in offered:
                for count in counts:
                    # The smallest N1 shape that takes the GPUs: memory for the weights' host copy.
                    out.append(_vertex_host(f"n1-standard-{max(8, 8 * count)}", accelerator, count, region, lookup))
    if "onprem" in clouds:
        for gpu in GPUS.values():
            for count in ONPREM_GPU_COUNTS:
                usd = None if onprem_gpu_hour_usd is None else onprem_gpu_hour_usd * count + onprem_node_hour_usd
                out.append(Host("onprem", "kubernetes", f"{count} x {gpu.name}", "on-prem", gpu.name, count,
                                gpu.memory_gib * count, gpu.bandwidth_gb_s, gpu.bf16_tflops or 0, usd,
                                "configured $/GPU-hour and $/node-hour" if usd is not None else ""))
    return out


def _vertex_host(machine: str, accelerator: str, count: int, region: str, lookup: Lookup) -> Host:
    h = gcp_machines.host(machine, accelerator, count)
    node = lookup("gcp", "vertex-prediction", region, machine)
    gpu = lookup("gcp", "vertex-prediction-gpu", region, accelerator)
    usd = node.usd + gpu.usd * count if node and gpu else None
    return Host("gcp", "vertex", f"{machine} ({count} x {accelerator})", region, h.gpu.name, count,
                h.total_gpu_memory_gib, h.gpu.bandwidth_gb_s, h.gpu.bf16_tflops or 0, usd,
                f"{node.source}; {gpu.source}" if node and gpu else "")


def options(facts: ModelFacts, quantization: str, context: int, concurrency: int, candidates: list[Host],
            input_tokens: int = 500, output_tokens: int = 200, feasible_only: bool = True) -> list[Option]:
    """Each host with its memory fit for `concurrency` sequences of `context` tokens and its throughput on
    requests of the given shape; cheapest $ per 1M tokens (input + output) first, unknown prices last."""
    rows = []
    for host in candidates:
        fit = memory_fit(facts, quantization, context, concurrency, host.gpu_count, host.memory_gib)
        if feasible_only and not fit.fits:
            continue
        streams = min(max_concurrency(facts, quantization, host.gpu_count, host.memory_gib,
                                      input_tokens + output_tokens), PLANNING_CONCURRENCY)
        if streams == 0:
            rows.append(Option(host, fit, 0, 0.0, 0.0, None))
            continue
        t = throughput(facts, quantization, host.bandwidth_gb_s, host.tflops, host.gpu_count, streams, input_tokens,
                       output_tokens)
        per_1m = (host.usd_per_hour / (t.requests_per_s * 3600 * (input_tokens + output_tokens)) * 1e6
                  if host.usd_per_hour is not None else None)
        rows.append(Option(host, fit, streams, t.output_tokens_per_s, t.requests_per_s, per_1m))
    return sorted(rows, key=lambda o: (o.usd_per_1m_tokens is None, o.usd_per_1m_tokens or 0, o.host.name))
