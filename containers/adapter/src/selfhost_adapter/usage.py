"""Usage: Prometheus metrics and one JSON access-log line per request, both per API key id and model.

The access log goes to stdout and nothing else does (engine and adapter diagnostics go to stderr), so
`stdout` of the container is the usage log a self-hoster bills or audits from. Prompt text is logged only
when asked for; API keys never are: a request is known by its key id.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Latency buckets from a health check to a long generation, in seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


@dataclass
class Call:
    """What one request did, filled in as it goes, recorded once when its response has ended."""

    route: str
    request_id: str
    started: float = field(default_factory=time.perf_counter)
    key_id: str = "-"
    status: int = 0
    model: str | None = None
    """The model asked for: the served model's name or a LoRA adapter's."""
    stream: bool = False
    instances: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    tokens_counted: str | None = None
    """`engine` when the engine reported usage, `chunks` when counted from streamed pieces."""
    error: str | None = None
    prompt: Any = None

    def add_usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        for name in ("prompt_tokens", "completion_tokens"):
            value = usage.get(name)
            if isinstance(value, int):
                setattr(self, name, (getattr(self, name) or 0) + value)
        self.tokens_counted = "engine"


class Usage:
    def __init__(self, log_prompts: bool, out: TextIO | None = None) -> None:
        self.log_prompts = log_prompts
        self.out = out or sys.stdout
        self.registry = CollectorRegistry()
        r = self.registry
        # `model`: the served model's name or a LoRA adapter's, as asked for; "-" on routes that name none.
        self.requests = Counter("selfhost_requests", "Requests answered, by route, API key id, status and model.",
                                ("route", "key_id", "status", "model"), registry=r)
        self.latency = Histogram("selfhost_request_duration_seconds",
                                 "Time from request to the end of the response.", ("route", "key_id"),
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.tokens_in = Counter("selfhost_prompt_tokens", "Prompt tokens, by API key id and model.",
                                 ("key_id", "model"), registry=r)
        self.tokens_out = Counter("selfhost_completion_tokens", "Generated tokens, by API key id and model.",
                                  ("key_id", "model"), registry=r)
        self.in_flight = Gauge("selfhost_requests_in_flight", "Requests being answered, by API key id.",
                               ("key_id",), registry=r)
        self.rejected = Counter("selfhost_rejected_requests", "Requests refused before they reached a route, by "
                                "reason (header_too_large, too_many_headers, header_timeout).", ("reason",),
                                registry=r)
        self.engine_up = Gauge("selfhost_engine_ready", "1 when the engine has loaded the model and answers.",
                               registry=r)
        self.engine_starts = Gauge("selfhost_engine_starts", "Times the engine process was started (restarts + 1).",
                                   registry=r)

    def record(self, call: Call, log_line: bool = True) -> None:
        seconds = time.perf_counter() - call.started
        now = time.time()
        model = call.model or "-"
        self.requests.labels(call.route, call.key_id, str(call.status), model).inc()
        self.latency.labels(call.route, call.key_id).observe(seconds)
        if call.prompt_tokens:
            self.tokens_in.labels(call.key_id, model).inc(call.prompt_tokens)
        if call.completion_tokens:
            self.tokens_out.labels(call.key_id, model).inc(call.completion_tokens)
        if not log_line:
            return
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z",
            "request_id": call.request_id, "route": call.route, "key_id": call.key_id, "status": call.status,
            "duration_ms": round(seconds * 1000, 3), "model": call.model, "stream": call.stream,
            "prompt_tokens": call.prompt_tokens, "completion_tokens": call.completion_tokens,
            "tokens_counted": call.tokens_counted,
        }
        if call.instances is not None:
            line["instances"] = call.instances
        if call.error:
            line["error"] = call.error
        if self.log_prompts and call.prompt is not None:
            line["prompt"] = call.prompt
        self.out.write(json.dumps(line, separators=(",", ":")) + "\n")
        self.out.flush()
