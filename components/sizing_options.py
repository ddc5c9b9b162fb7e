"""Every host a model could be served on, with fit, throughput and $ per 1M tokens: `selfhost size`, and the
suggestions a stack gets when its choice does not fit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .catalog.models import ModelFacts
from .sizing import PLANNING_CONCURRENCY, Fit, max_concurrency, memory_fit, throughput

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
