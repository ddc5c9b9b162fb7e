"""The Prometheus series the dashboards and alerts of Kubernetes targets query, each with where it comes from.

A series name is written as Prometheus stores it: a counter with its `_total` suffix; a histogram by its family name
(queries add `_bucket`, `_sum`, `_count`). tests/test_k8s_observability.py checks that every metric name in a
dashboard's or an alert's PromQL is one of these, and that the adapter's list matches what its registry exports.

- vLLM (our GPU image runs vllm/vllm-openai v0.11.0, containers/vllm/Dockerfile): the V1 engine's
  `PrometheusStatLogger` in vllm/v1/metrics/loggers.py (read in a snapshot of vllm-project/vllm at
  005a810bc40f; labels `model_name`, `engine`), and the names ../shared/DESIGN.md section 7 lists from vLLM's own
  Grafana dashboards (examples/observability/dashboards/grafana/vllm_overview.json, vllm_kv_cache.json).
  `vllm:inter_token_latency_seconds` is the newer name of `vllm:time_per_output_token_seconds` (vLLM exports both
  during the deprecation); `vllm:kv_cache_usage_perc` replaced `vllm:gpu_cache_usage_perc` (0.9) and is a
  fraction, 1 meaning full. The adapter passes the engine's /metrics on after its own (engines.py `metrics`).
- llama.cpp: our CPU image runs llama-cpp-python's server, which serves no metrics (the adapter's
  containers/adapter/src/selfhost_adapter/engines.py says so): a llama.cpp target has the adapter's series only.
- Our adapter: containers/adapter/src/selfhost_adapter/usage.py `Usage` (labels `route`, `key_id`, `status`;
  `route` is the adapter's route name, `openai_chat`, `openai_completions`, `openai_models`, `health`,
  `liveness`, `metrics`, ...: app.py `Route`).
- kube-state-metrics (deployed by kube-prometheus-stack): `kube_pod_container_status_restarts_total`
  (docs/metrics/workload/pod-metrics.md; labels `namespace`, `pod`, `container`).
"""

from __future__ import annotations

from typing import Literal

MetricType = Literal["counter", "gauge", "histogram"]

VLLM_SOURCE = "vllm/v1/metrics/loggers.py PrometheusStatLogger (vllm-project/vllm)"
ADAPTER_SOURCE = "containers/adapter/src/selfhost_adapter/usage.py Usage"
KSM_SOURCE = "kube-state-metrics docs/metrics/workload/pod-metrics.md"

VLLM: dict[str, MetricType] = {
    "vllm:num_requests_running": "gauge",
    "vllm:num_requests_waiting": "gauge",
    "vllm:kv_cache_usage_perc": "gauge",
    "vllm:time_to_first_token_seconds": "histogram",
    "vllm:inter_token_latency_seconds": "histogram",
    "vllm:e2e_request_latency_seconds": "histogram",
    "vllm:request_queue_time_seconds": "histogram",
    "vllm:prompt_tokens_total": "counter",
    "vllm:generation_tokens_total": "counter",
    "vllm:num_preemptions_total": "counter",
    "vllm:prefix_cache_queries_total": "counter",
    "vllm:prefix_cache_hits_total": "counter",
    "vllm:request_success_total": "counter",
}
"""vLLM's series (VLLM_SOURCE), as stored."""

ADAPTER: dict[str, MetricType] = {
    "selfhost_requests_total": "counter",
    "selfhost_request_duration_seconds": "histogram",
    "selfhost_prompt_tokens_total": "counter",
    "selfhost_completion_tokens_total": "counter",
    "selfhost_requests_in_flight": "gauge",
    "selfhost_rejected_requests_total": "counter",
    "selfhost_engine_ready": "gauge",
    "selfhost_engine_starts": "gauge",
}
"""Our adapter's series (ADAPTER_SOURCE), as stored."""

KUBE_STATE: dict[str, MetricType] = {
    "kube_pod_container_status_restarts_total": "counter",
}
"""kube-state-metrics' series (KSM_SOURCE) the alerts read."""

OPENAI_ROUTES = "openai_.*"
"""The adapter's `route` label on the OpenAI routes callers use (app.py: openai_chat, openai_completions, ...)."""


def series(engine: str) -> dict[str, MetricType]:
    """Every series a target on `engine` ("vllm" or "llamacpp") has: the engine's own (none for llama-cpp-python),
    the adapter's and kube-state-metrics'."""
    return {**(VLLM if engine == "vllm" else {}), **ADAPTER, **KUBE_STATE}
