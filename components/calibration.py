"""The published throughput measurements the sizing model is fit to and checked against
(catalog/throughput_points.csv, each row with its source, date and the sentence or table cell it comes from).

`points()` reads them; `predict(point)` is what components/sizing.py says for the same model, GPU, weights, KV
cache dtype, request shape and concurrency. tests/test_sizing.py holds every point within TOLERANCE;
benchmarks/sizing_accuracy.py prints the table.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from .catalog.gpus import GPUS
from .catalog.models import MODELS, ModelFacts
from .sizing import EngineLimits, Hardware, ServiceLevel, capacity, engine_limits, throughput

POINTS_FILE = Path(__file__).parent / "catalog" / "throughput_points.csv"
TOLERANCE = 0.25

# The catalog's facts for each measured model: fine-tunes and point releases share their base's architecture.
MODEL_FACTS = {
    "meta-llama/Llama-3.1-8B": "meta-llama/Llama-3.1-8B-Instruct",
    "meta-llama/Llama-3.1-8B-Instruct": "meta-llama/Llama-3.1-8B-Instruct",
    "meta-llama/Meta-Llama-3-8B (fine-tune, same architecture)": "meta-llama/Llama-3.1-8B-Instruct",
    "meta-llama/Llama-3.1-70B": "meta-llama/Llama-3.1-70B-Instruct",
    "meta-llama/Llama-3.3-70B-Instruct": "meta-llama/Llama-3.1-70B-Instruct",
    "mistralai/Mistral-7B-Instruct-v0.3": "mistralai/Mistral-7B-Instruct-v0.3",
    "TheBloke/Mistral-7B-OpenOrca-AWQ": "mistralai/Mistral-7B-Instruct-v0.2",
}
WEIGHTS = {"fp8": "fp8", "awq-int4": "awq"}  # anything else: the published bf16/fp16 weights
# Offline runs at an unbounded request rate: as many sequences as the engine takes.
OFFLINE_LIMITS = EngineLimits(max_seqs=None, max_batched_tokens=8192)


@dataclass(frozen=True)
class Point:
    model: str
    gpu: str
    gpu_count: int
    engine: str
    weights: str
    kv_cache: str
    input_tokens: int | None
    output_tokens: int | None
    concurrency: int | None
    """None: saturation (an offline or unbounded-rate run)."""
    metric: str
    value: float
    unit: str
    source: str
    as_of: str
    excluded: str = ""
    """Why the point is kept for the record but not fit to or held to ('' when it is)."""

    @property
    def facts(self) -> ModelFacts:
        return MODELS[MODEL_FACTS[self.model]]

    @property
    def quantization(self) -> str:
        return WEIGHTS.get(self.weights, "none")

    @property
    def kv_bytes(self) -> float:
        return 1.0 if self.kv_cache.startswith("fp8") else 2.0

    @property
    def usable(self) -> str:
        """Why the point is not predicted ('' when it is)."""
        if not self.excluded and (self.input_tokens is None or self.output_tokens is None):
            return "request lengths not stated"
        return self.excluded

    @property
    def regime(self) -> str:
        if self.concurrency is None or self.concurrency > 64:
            return "saturation"
        return "one stream" if self.concurrency == 1 else "concurrent"


def _int(text: str) -> int | None:
    return int(text) if text.strip() else None


def points(path: Path = POINTS_FILE) -> list[Point]:
    with path.open(newline="") as f:
        return [Point(r["model"], r["gpu"], int(r["gpu_count"]), r["engine"], r["weights"], r["kv_cache"],
                      _int(r["input_tokens"]), _int(r["output_tokens"]),
                      None if r["concurrency"] == "saturation" else int(r["concurrency"]), r["metric"],
                      float(r["value"]), r["unit"], r["source"], r["as_of"], r["excluded"])
                for r in csv.DictReader(f)]


def predict(p: Point) -> float:
    assert p.input_tokens is not None and p.output_tokens is not None, p.usable
    gpu = GPUS[p.gpu]
    hw = Hardware.of_gpu(gpu, p.gpu_count)
    if p.concurrency is None:
        found = capacity(p.facts, p.quantization, hw, p.input_tokens, p.output_tokens, ServiceLevel(),
                         OFFLINE_LIMITS, p.kv_bytes)
        assert found is not None, f"{p.model} does not fit {p.gpu_count} x {p.gpu}"
        t = found.saturation
    else:
        limits = engine_limits(None, hw)
        t = throughput(p.facts, p.quantization, hw, p.concurrency, p.input_tokens, p.output_tokens, p.kv_bytes,
                       limits.max_batched_tokens)
    return {"output_throughput": t.output_tokens_per_s, "per_stream_decode": t.decode_tokens_per_s_per_stream,
            "tpot": 1000 / t.decode_tokens_per_s_per_stream, "ttft": t.ttft_s}[p.metric]


def error(p: Point) -> float:
    """Relative error of the prediction: (predicted - measured) / measured."""
    return (predict(p) - p.value) / p.value
