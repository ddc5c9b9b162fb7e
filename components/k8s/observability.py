"""Dashboards and alerts of one Kubernetes target, as the objects kube-prometheus-stack picks up.

- Grafana dashboards: a ConfigMap labelled `grafana_dashboard: "1"`, one dashboard JSON per key, which the Grafana
  sidecar of kube-prometheus-stack loads (its `sidecar.dashboards.label`/`labelValue` defaults). The JSON is
  Grafana's dashboard model (schemaVersion 39, `timeseries` and `stat` panels on a `${datasource}` Prometheus
  variable, templating for the namespace and, on vLLM, the model). The panels follow vLLM's own dashboards
  (vllm-project/vllm examples/observability/dashboards/grafana/vllm_overview.json and vllm_kv_cache.json), written
  anew on the series components/catalog/metrics.py lists with their sources, plus our adapter's own.
- Alerts: a Prometheus Operator PrometheusRule (monitoring.coreos.com/v1): error rate, time to first token
  (p95), queue depth, KV-cache use and restarts, at the thresholds of the target's `alerts` config. A llama.cpp
  target has no engine series (llama-cpp-python serves none): its alerts read the adapter's request duration and
  requests in flight instead, and it has no KV-cache alert.

Pure: builds dicts; components/k8s/serving.py declares them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..catalog.metrics import OPENAI_ROUTES

DASHBOARD_LABEL = {"grafana_dashboard": "1"}
"""The label kube-prometheus-stack's Grafana sidecar selects dashboard ConfigMaps by: its chart's values.yaml
(prometheus-community/helm-charts charts/kube-prometheus-stack) sets grafana.sidecar.dashboards `label:
grafana_dashboard`, `labelValue: "1"` and, since chart 45.12.0 (PR #2927, 2023-04), `searchNamespace: ALL`."""
SCHEMA_VERSION = 39
"""Grafana's dashboard JSON model version (Grafana 10.4 / 11 write 39; vLLM's dashboards need Grafana >= 10.4)."""
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
WINDOW = "5m"
"""The window alerts compute rates and percentiles over."""


@dataclass(frozen=True)
class AlertThresholds:
    """When the target's alerts fire (from the `alerts` config, defaults resolved)."""

    error_rate: float
    """Share (0..1) of the OpenAI routes' requests answered 5xx."""
    ttft_p95_seconds: float
    """vLLM: the 95th percentile of time to first token."""
    request_p95_seconds: float
    """llama.cpp: the 95th percentile of the adapter's request duration (it has no time-to-first-token series)."""
    queue_depth: int
    """Requests waiting, on the busiest replica."""
    kv_cache_use: float
    """vLLM: share (0..1) of the KV cache in use, on the fullest replica."""
    restarts_per_hour: int
    """Container restarts (Kubernetes) or engine restarts (by the adapter) in an hour, more than which alert."""
    for_minutes: int
    """How long a condition holds before its alert fires."""


@dataclass(frozen=True)
class Observed:
    """The target as its dashboards and alerts see it."""

    name: str
    """The target (its Service, Deployment and the `service` label of its scraped series)."""
    namespace: str
    engine: str
    """The engine: vllm or llamacpp."""
    streams: int
    """Requests the engine runs at once where it has no queue series (llama.cpp: 1): more in flight are waiting."""


def _selector(t: Observed, *more: str) -> str:
    return "{" + ",".join([f'namespace="{t.namespace}"', f'service="{t.name}"', *more]) + "}"


# ---------------------------------------------------------------------------------------------------------
# Dashboards


def _panel(title: str, description: str, targets: list[tuple[str, str]], unit: str = "short",
           kind: str = "timeseries") -> dict[str, Any]:
    """A panel (id and position set by `_dashboard`): each target an (expr, legend) pair."""
    return {
        "type": kind, "title": title, "description": description, "datasource": DATASOURCE,
        "targets": [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend,
                     "range": True} for i, (expr, legend) in enumerate(targets)],
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}} if kind == "timeseries" else {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
    }


def _dashboard(t: Observed, uid: str, title: str, description: str, panels: list[dict[str, Any]]) -> dict[str, Any]:
    """Grafana's dashboard JSON model: panels two to a row, ids from 1."""
    for i, panel in enumerate(panels):
        panel["id"] = i + 1
        panel["gridPos"] = {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)}
    variables: list[dict[str, Any]] = [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus", "hide": 0,
         "current": {}, "options": [], "refresh": 1},
        {"name": "namespace", "label": "Namespace", "type": "query", "datasource": DATASOURCE, "hide": 0,
         "query": {"query": "label_values(selfhost_engine_ready, namespace)", "refId": "namespace"},
         "current": {"text": t.namespace, "value": t.namespace}, "options": [], "refresh": 2, "includeAll": False,
         "multi": False, "sort": 1},
    ]
    if t.engine == "vllm":
        query = 'label_values(vllm:num_requests_running{namespace="$namespace"}, model_name)'
        variables.append({"name": "model", "label": "Model", "type": "query", "datasource": DATASOURCE, "hide": 0,
                          "query": {"query": query, "refId": "model"},
                          "current": {"text": "All", "value": "$__all"}, "options": [], "refresh": 2,
                          "includeAll": True, "allValue": ".*", "multi": False, "sort": 1})
    return {
        "uid": uid, "title": title, "description": description, "tags": ["selfhost-llm", t.engine],
        "schemaVersion": SCHEMA_VERSION, "version": 1, "editable": False, "graphTooltip": 1,
        "timezone": "browser", "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": variables}, "annotations": {"list": []}, "links": [], "panels": panels,
    }


def _uid(t: Observed, what: str) -> str:
    """Grafana's uid: at most 40 characters, unique per dashboard (the namespace is unique per target)."""
    return f"selfhost-{t.namespace}"[:40 - len(what) - 1] + f"-{what}"


def _adapter_panels(t: Observed) -> list[dict[str, Any]]:
    """Our adapter's series (every engine): what callers see."""
    ns = 'namespace="$namespace"'
    routes = f'{ns},route=~"{OPENAI_ROUTES}"'
    return [
        _panel("Requests by status", "Requests answered on the OpenAI routes, per second, by HTTP status (adapter: "
               "selfhost_requests_total).",
               [(f"sum by (status) (rate(selfhost_requests_total{{{routes}}}[{RATE}]))", "{{status}}")], "reqps"),
        _panel("Error rate", "Share of the OpenAI routes' requests answered 5xx (the `alerts.errorRatePercent` "
               "alert).",
               [(f'sum(rate(selfhost_requests_total{{{routes},status=~"5.."}}[{RATE}])) / '
                 f"sum(rate(selfhost_requests_total{{{routes}}}[{RATE}]))", "5xx share")], "percentunit", "stat"),
        _panel("Request duration", "Time from request to the end of the response (adapter: "
               "selfhost_request_duration_seconds), 50th and 95th percentile.",
               [(f"histogram_quantile({q}, sum by (le) (rate(selfhost_request_duration_seconds_bucket{{{routes}}}"
                 f"[{RATE}])))", f"p{int(q * 100)}") for q in (0.5, 0.95)], "s"),
        _panel("Requests in flight by key", "Requests being answered, by API key id (adapter: "
               "selfhost_requests_in_flight).",
               [(f"sum by (key_id) (selfhost_requests_in_flight{{{ns}}})", "{{key_id}}")]),
        _panel("Tokens by key", "Prompt and generated tokens per second, by API key id (adapter).",
               [(f"sum by (key_id) (rate(selfhost_prompt_tokens_total{{{ns}}}[{RATE}]))", "prompt {{key_id}}"),
                (f"sum by (key_id) (rate(selfhost_completion_tokens_total{{{ns}}}[{RATE}]))",
                 "generated {{key_id}}")], "short"),
        _panel("Rejected requests", "Requests refused before a route, by reason (adapter: "
               "selfhost_rejected_requests_total).",
               [(f"sum by (reason) (rate(selfhost_rejected_requests_total{{{ns}}}[{RATE}]))", "{{reason}}")],
               "reqps"),
        _panel("Engines ready", "Replicas whose engine has loaded the model and answers (adapter: "
               "selfhost_engine_ready).", [(f"sum(selfhost_engine_ready{{{ns}}})", "ready")], "short", "stat"),
        _panel("Restarts", "Engine restarts by the adapter (selfhost_engine_starts) and container restarts "
               "(kube-state-metrics), per hour, per pod.",
               [(f"sum by (pod) (delta(selfhost_engine_starts{{{ns}}}[1h]))", "engine {{pod}}"),
                (f'sum by (pod) (increase(kube_pod_container_status_restarts_total{{{ns},container="serving"}}[1h]))',
                 "container {{pod}}")]),
    ]


def _vllm_overview(t: Observed) -> list[dict[str, Any]]:
    """vLLM's series (vllm/v1/metrics/loggers.py), as vllm_overview.json shows them."""
    sel = 'namespace="$namespace",model_name=~"$model"'
    q = lambda series, p: (  # noqa: E731
        f"histogram_quantile({p}, sum by (le) (rate({series}_bucket{{{sel}}}[{RATE}])))", f"p{int(p * 100)}")
    return [
        _panel("Requests running and waiting", "In the engine's batch, and queued for it (vllm:num_requests_running, "
               "vllm:num_requests_waiting; KEDA scales on the waiting).",
               [(f"sum(vllm:num_requests_running{{{sel}}})", "running"),
                (f"sum(vllm:num_requests_waiting{{{sel}}})", "waiting")]),
        _panel("Time to first token", "vllm:time_to_first_token_seconds, 50th, 95th and 99th percentile (the "
               "`alerts.ttftP95Seconds` alert is on the 95th).",
               [q("vllm:time_to_first_token_seconds", p) for p in (0.5, 0.95, 0.99)], "s"),
        _panel("Inter-token latency", "vllm:inter_token_latency_seconds: the time between two tokens of a stream.",
               [q("vllm:inter_token_latency_seconds", p) for p in (0.5, 0.95, 0.99)], "s"),
        _panel("End-to-end request latency", "vllm:e2e_request_latency_seconds, in the engine.",
               [q("vllm:e2e_request_latency_seconds", p) for p in (0.5, 0.95, 0.99)], "s"),
        _panel("Token throughput", "Prompt (prefill) and generated tokens per second (vllm:prompt_tokens_total, "
               "vllm:generation_tokens_total).",
               [(f"sum(rate(vllm:prompt_tokens_total{{{sel}}}[{RATE}]))", "prompt"),
                (f"sum(rate(vllm:generation_tokens_total{{{sel}}}[{RATE}]))", "generated")]),
        _panel("Finished requests", "Requests the engine finished, per second, by reason (vllm:request_success_total).",
               [(f"sum by (finished_reason) (rate(vllm:request_success_total{{{sel}}}[{RATE}]))",
                 "{{finished_reason}}")], "reqps"),
        _panel("KV-cache use", "vllm:kv_cache_usage_perc per replica (1 is full: requests wait or are preempted).",
               [(f"max by (pod) (vllm:kv_cache_usage_perc{{{sel}}})", "{{pod}}")], "percentunit"),
        _panel("Preemptions", "Requests preempted for lack of KV cache, per second (vllm:num_preemptions_total).",
               [(f"sum(rate(vllm:num_preemptions_total{{{sel}}}[{RATE}]))", "preemptions")]),
    ]


def _vllm_kv_cache(t: Observed) -> list[dict[str, Any]]:
    """The KV cache in detail, as vllm_kv_cache.json shows it."""
    sel = 'namespace="$namespace",model_name=~"$model"'
    return [
        _panel("KV-cache use per replica", "vllm:kv_cache_usage_perc (a fraction; the `alerts.kvCachePercent` alert "
               "is on the fullest replica).",
               [(f"max by (pod) (vllm:kv_cache_usage_perc{{{sel}}})", "{{pod}}")], "percentunit"),
        _panel("Fullest replica", "The highest KV-cache use now.",
               [(f"max(vllm:kv_cache_usage_perc{{{sel}}})", "max")], "percentunit", "stat"),
        _panel("Prefix-cache hit rate", "Cached tokens over queried tokens (vllm:prefix_cache_hits_total / "
               "vllm:prefix_cache_queries_total).",
               [(f"sum(rate(vllm:prefix_cache_hits_total{{{sel}}}[{RATE}])) / "
                 f"sum(rate(vllm:prefix_cache_queries_total{{{sel}}}[{RATE}]))", "hit rate")], "percentunit"),
        _panel("Preemptions per replica", "vllm:num_preemptions_total: a full cache evicts running requests.",
               [(f"sum by (pod) (rate(vllm:num_preemptions_total{{{sel}}}[{RATE}]))", "{{pod}}")]),
        _panel("Queue time", "Time requests wait for the batch (vllm:request_queue_time_seconds), 95th percentile.",
               [(f"histogram_quantile(0.95, sum by (le) (rate(vllm:request_queue_time_seconds_bucket{{{sel}}}"
                 f"[{RATE}])))", "p95")], "s"),
        _panel("Waiting per replica", "vllm:num_requests_waiting per replica.",
               [(f"max by (pod) (vllm:num_requests_waiting{{{sel}}})", "{{pod}}")]),
    ]


def dashboards(t: Observed) -> dict[str, str]:
    """The target's dashboards, file name -> JSON: an overview (adapter and engine) and, on vLLM, the KV cache. The
    Grafana sidecar writes every ConfigMap's keys into one folder: the names carry the namespace, unique on the
    cluster, as the dashboards' uids do."""
    source = ("Panels after vLLM's own dashboards (vllm-project/vllm examples/observability/dashboards/grafana/"
              "vllm_overview.json, vllm_kv_cache.json) on the series of vllm/v1/metrics/loggers.py, and our "
              "adapter's (containers/adapter/src/selfhost_adapter/usage.py).")
    if t.engine == "vllm":
        boards = {
            f"{t.namespace}-overview.json": _dashboard(
                t, _uid(t, "overview"), f"selfhost-llm {t.namespace}: overview",
                f"Target {t.name} (vLLM): requests, latency, tokens, the engine's queue and cache. {source}",
                [*_adapter_panels(t)[:3], *_vllm_overview(t), *_adapter_panels(t)[3:]]),
            f"{t.namespace}-kv-cache.json": _dashboard(
                t, _uid(t, "kv-cache"), f"selfhost-llm {t.namespace}: KV cache",
                f"Target {t.name} (vLLM): KV-cache use, prefix caching, preemptions and queueing. {source}",
                _vllm_kv_cache(t)),
        }
    else:
        boards = {f"{t.namespace}-overview.json": _dashboard(
            t, _uid(t, "overview"), f"selfhost-llm {t.namespace}: overview",
            f"Target {t.name} (llama.cpp, which exports no metrics of its own: the adapter's series only). {source}",
            _adapter_panels(t))}
    return {name: json.dumps(board, indent=1, sort_keys=True) for name, board in boards.items()}


def dashboard_config_map(t: Observed, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    """The ConfigMap the Grafana sidecar loads, in `namespace` (the target's, or the monitoring namespace, where
    its name carries the target's namespace: other stacks' targets of the same name may be there too)."""
    name = f"{t.name}-dashboards" if namespace == t.namespace else f"{t.namespace}-dashboards"
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {**labels, **DASHBOARD_LABEL}},
            "data": dashboards(t)}


# ---------------------------------------------------------------------------------------------------------
# Alerts


def _percent(share: float) -> str:
    return f"{share * 100:g}%"


def alert_rules(t: Observed, a: AlertThresholds) -> list[dict[str, Any]]:
    """The alerting rules, each on series the target's engine has."""
    routes = _selector(t, f'route=~"{OPENAI_ROUTES}"')
    errors = _selector(t, f'route=~"{OPENAI_ROUTES}"', 'status=~"5.."')
    every = f"{a.for_minutes}m"
    who = f"{t.namespace}/{t.name}"
    rule = lambda alert, expr, severity, summary, description: {  # noqa: E731
        "alert": alert, "expr": expr, "for": every, "labels": {"severity": severity, "namespace": t.namespace},
        "annotations": {"summary": summary, "description": description}}
    rules = [rule(
        "SelfhostHighErrorRate",
        f"sum(rate(selfhost_requests_total{errors}[{WINDOW}])) / sum(rate(selfhost_requests_total{routes}[{WINDOW}])) "
        f"> {a.error_rate:g}", "critical", f"{who}: more than {_percent(a.error_rate)} of requests fail",
        "{{ $value | humanizePercentage }} of the OpenAI routes' requests were answered 5xx over " + WINDOW + ".")]
    if t.engine == "vllm":
        engine = _selector(t)
        rules += [
            rule("SelfhostSlowTimeToFirstToken",
                 f"histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket{engine}"
                 f"[{WINDOW}]))) > {a.ttft_p95_seconds:g}", "warning",
                 f"{who}: time to first token p95 above {a.ttft_p95_seconds:g} s",
                 "The 95th percentile of vllm:time_to_first_token_seconds is {{ $value | humanizeDuration }}."),
            rule("SelfhostQueueBacklog", f"max(vllm:num_requests_waiting{engine}) > {a.queue_depth}", "warning",
                 f"{who}: more than {a.queue_depth} requests waiting on a replica",
                 "vllm:num_requests_waiting is {{ $value }} on the busiest replica: the autoscaler is not keeping "
                 "up (at maxReplicas, or replicas failing to start)."),
            rule("SelfhostKvCacheFull", f"max(vllm:kv_cache_usage_perc{engine}) > {a.kv_cache_use:g}", "warning",
                 f"{who}: KV cache above {_percent(a.kv_cache_use)}",
                 "vllm:kv_cache_usage_perc is {{ $value | humanizePercentage }} on the fullest replica: requests "
                 "wait or are preempted."),
        ]
    else:
        adapter = _selector(t)
        rules += [
            rule("SelfhostSlowResponses",
                 f"histogram_quantile(0.95, sum by (le) (rate(selfhost_request_duration_seconds_bucket{routes}"
                 f"[{WINDOW}]))) > {a.request_p95_seconds:g}", "warning",
                 f"{who}: request duration p95 above {a.request_p95_seconds:g} s",
                 "The 95th percentile of the adapter's request duration is {{ $value | humanizeDuration }} "
                 "(llama.cpp exports no time-to-first-token series)."),
            rule("SelfhostQueueBacklog",
                 f"max(sum by (pod) (selfhost_requests_in_flight{adapter})) - {t.streams} > {a.queue_depth}",
                 "warning", f"{who}: more than {a.queue_depth} requests waiting on a replica",
                 f"{{{{ $value }}}} requests beyond the {t.streams} the engine runs at once are waiting on the "
                 "busiest replica (adapter: selfhost_requests_in_flight)."),
        ]
    rules += [
        rule("SelfhostContainerRestarts",
             f'sum by (pod) (increase(kube_pod_container_status_restarts_total{{namespace="{t.namespace}",'
             f'container="serving"}}[1h])) > {a.restarts_per_hour}', "warning",
             f"{who}: serving container restarting",
             "{{ $labels.pod }} restarted {{ $value }} times in the last hour (kube-state-metrics)."),
        rule("SelfhostEngineRestarts",
             f"sum by (pod) (delta(selfhost_engine_starts{_selector(t)}[1h])) > {a.restarts_per_hour}", "warning",
             f"{who}: engine restarting", "The adapter restarted the engine of {{ $labels.pod }} {{ $value }} times in "
             "the last hour (selfhost_engine_starts)."),
    ]
    return rules


def prometheus_rule(t: Observed, a: AlertThresholds, meta: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": meta,
            "spec": {"groups": [{"name": f"selfhost-{t.namespace}", "rules": alert_rules(t, a)}]}}
