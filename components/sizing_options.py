"""Every host a model could be served on, with fit, throughput and $ per 1M tokens: `selfhost size`, and the
suggestions a stack gets when its choice does not fit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .catalog.gpus import Gpu
from .catalog.models import ModelFacts
from .sizing import (
    Capacity,
    Fit,
    Hardware,
    LoraSlots,
    ServiceLevel,
    Throughput,
    capacity,
    engine_limits,
    memory_fit,
)

if TYPE_CHECKING:
    from .catalog.pricing import Price

Lookup = Callable[[str, str, str, str], Any]


@dataclass(frozen=True)
class Host:
    cloud: str
    target: str
    name: str
    region: str
    gpu: Gpu
    gpu_count: int
    memory_gib: float
    price: Price | None
    """Of one host-hour (None: no price known)."""

    @property
    def hardware(self) -> Hardware:
        return Hardware.of_gpu(self.gpu, self.gpu_count, self.memory_gib)

    @property
    def usd_per_hour(self) -> float | None:
        return self.price.usd if self.price else None

    @property
    def price_source(self) -> str:
        return self.price.source if self.price else ""


@dataclass(frozen=True)
class Option:
    host: Host
    fit: Fit
    capacity: Capacity | None
    """None: no request of the given shape fits beside the weights."""
    tokens_per_request: int

    def usd_per_1m_tokens(self, t: Throughput | None) -> float | None:
        """Host-hours per million tokens (input + output) at throughput `t`, fully used."""
        if t is None or self.host.usd_per_hour is None or not t.requests_per_s:
            return None
        return self.host.usd_per_hour / (t.requests_per_s * 3600 * self.tokens_per_request) * 1e6

    @property
    def at_service_level(self) -> Throughput | None:
        return self.capacity.at_service_level if self.capacity else None

    @property
    def saturation(self) -> Throughput | None:
        return self.capacity.saturation if self.capacity else None


def options(facts: ModelFacts, quantization: str, context: int, concurrency: int, candidates: list[Host],
            input_tokens: int = 500, output_tokens: int = 200, level: ServiceLevel | None = None,
            feasible_only: bool = True, lora: LoraSlots | None = None) -> list[Option]:
    """Each host with its memory fit for `concurrency` sequences of `context` tokens (beside the LoRA slots of
    `lora`, with adapters) and its capacity on requests of the given shape, at the service level and at
    saturation; cheapest $ per 1M tokens at the service level first, unknown prices last."""
    level = level or ServiceLevel()
    rows = []
    for host in candidates:
        fit = memory_fit(facts, quantization, context, concurrency, host.gpu_count, host.memory_gib, lora=lora)
        if feasible_only and not fit.fits:
            continue
        hw = host.hardware
        found = capacity(facts, quantization, hw, input_tokens, output_tokens, level,
                         engine_limits(None, hw), lora=lora)
        rows.append(Option(host, fit, found, input_tokens + output_tokens))
    def key(o: Option) -> tuple[bool, float, str]:
        usd = o.usd_per_1m_tokens(o.at_service_level)
        return usd is None, usd or 0.0, o.host.name
    return sorted(rows, key=key)
