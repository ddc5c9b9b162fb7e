"""A GPU VM pool's Cloud Monitoring dashboard and alert policies (issue 25): what its internal Application Load
Balancer and its managed instance group publish.

Metrics (Cloud Monitoring's metrics list, "loadbalancing" and "compute"):
- `loadbalancing.googleapis.com/https/internal/request_count` (DELTA INT64) and `.../backend_latencies` (DELTA
  DISTRIBUTION, ms: from the proxy sending the request to the backend until it receives the last byte of the
  response, so a whole stream), on the monitored resource `internal_http_lb_rule` (the path prefix
  `https/internal/` covers regional internal Application Load Balancers), with the metric label
  `response_code_class` (INT64: 200, 300, 400, 500, or 0 for none). Filtered by the resource labels
  `forwarding_rule_name` and `region`.
- `compute.googleapis.com/instance_group/size` on the resource `instance_group` (label `instance_group_name`):
  the group's VMs, healthy or not.

Health: Cloud Monitoring has no metric of a backend service's health-check state for internal Application Load
Balancers (the state is read through the API's getHealth or the health checks' logs, which the pool does not
enable). A pool with no healthy backend shows as the load balancer answering 503s (response_code_class 500:
the 5xx ratio alert) and, when the group has no VMs at all, as the no-VMs alert.

GPU metrics: none. The VMs run no Ops Agent (components/gcp/pool.py's startup script starts only our
container), so nothing publishes GPU utilization or memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_gcp as gcp

REQUESTS = "loadbalancing.googleapis.com/https/internal/request_count"
BACKEND_LATENCIES = "loadbalancing.googleapis.com/https/internal/backend_latencies"
GROUP_SIZE = "compute.googleapis.com/instance_group/size"
LB_RESOURCE = "internal_http_lb_rule"
GROUP_RESOURCE = "instance_group"
SERVER_ERRORS = ' AND metric.labels.response_code_class = "500"'
"""response_code_class is INT64 (200, 300, 400, 500, 0); Monitoring's filters compare it to "500" as Google's
load balancer SLI examples do."""
COLUMNS = 12
"""The mosaic grid's columns (the API takes 1-48); tiles lie within it."""


@dataclass(frozen=True)
class PoolAlertThresholds:
    """What the pool's alert policies fire at (the defaults are the kind's config's, `alerts`:
    components/targets/gcp_pool.py PoolAlerts), and why those defaults:

    - 5xx ratio: the share of the load balancer's responses in class 500 (the backends' and its own 503s when
      no backend is healthy), over 5 minutes. 5% as on AWS (components/aws/pool_monitoring.py).
    - backend latency p95, ms: backend_latencies runs to the response's last byte, so a streamed completion
      counts whole; 20 s matches the Vertex and SageMaker whole-response defaults.
    - no VMs: the group below 1 VM for this many minutes, missing data breaching. Declared only when the group
      keeps at least one VM.
    """

    error_ratio: float
    p95_backend_latency_ms: int
    no_vms_minutes: int


@dataclass(frozen=True)
class PoolMonitoringArgs:
    pool_name: str
    """The managed instance group's name (and the dashboard's and alert policies' display names)."""
    project: str
    region: str
    forwarding_rule_name: pulumi.Input[str]
    labels: dict[str, str]
    min_instances: int
    """The group's minimum: 0 leaves out the no-VMs alert."""
    model_id: str
    thresholds: PoolAlertThresholds
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    """The Monitoring API's enablement."""


def lb_filter(forwarding_rule: str, region: str, metric: str) -> str:
    return (f'resource.type = "{LB_RESOURCE}" AND resource.labels.forwarding_rule_name = "{forwarding_rule}" '
            f'AND resource.labels.region = "{region}" AND metric.type = "{metric}"')


def group_filter(group: str) -> str:
    return (f'resource.type = "{GROUP_RESOURCE}" AND resource.labels.instance_group_name = "{group}" '
            f'AND metric.type = "{GROUP_SIZE}"')


class PoolMonitoring(pulumi.ComponentResource):
    """A pool's alert policies (5xx ratio, backend latency p95, no VMs) and its dashboard (requests by response
    class, backend latency p50/p95, the group's VMs, the policies' incidents)."""

    def __init__(self, name: str, args: PoolMonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:gcp:PoolMonitoring", name, None, opts)
        self.alert_policies = self._alerts(name, args)
        body = pulumi.Output.all(args.forwarding_rule_name, [p.name for p in self.alert_policies]).apply(
            lambda v: json.dumps(dashboard(args.pool_name, args.region, v[0], v[1])))
        self.dashboard = gcp.monitoring.Dashboard(
            f"{name}-dashboard", project=args.project, dashboard_json=body,
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on))
        self.register_outputs({"dashboard": self.dashboard.id,
                               "alertPolicies": [p.name for p in self.alert_policies]})

    def _alerts(self, name: str, args: PoolMonitoringArgs) -> list[gcp.monitoring.AlertPolicy]:
        t, pool = args.thresholds, args.pool_name
        lb = lambda metric: pulumi.Output.from_input(args.forwarding_rule_name).apply(  # noqa: E731
            lambda rule: lb_filter(rule, args.region, metric))
        summed = lambda aligner: [gcp.monitoring.AlertPolicyConditionConditionThresholdAggregationArgs(  # noqa: E731
            alignment_period="60s", per_series_aligner=aligner, cross_series_reducer="REDUCE_SUM")]
        conditions: dict[str, tuple[str, str, gcp.monitoring.AlertPolicyConditionConditionThresholdArgs]] = {
            "5xx-ratio": ("5xx ratio", f"more than {t.error_ratio:.0%} of responses in class 5xx",
                          gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
                              filter=pulumi.Output.concat(lb(REQUESTS), SERVER_ERRORS),
                              aggregations=summed("ALIGN_RATE"), denominator_filter=lb(REQUESTS),
                              denominator_aggregations=[
                                  gcp.monitoring.AlertPolicyConditionConditionThresholdDenominatorAggregationArgs(
                                      alignment_period="60s", per_series_aligner="ALIGN_RATE",
                                      cross_series_reducer="REDUCE_SUM")],
                              comparison="COMPARISON_GT", threshold_value=t.error_ratio, duration="300s")),
            "latency": ("backend latency p95", f"p95 backend latency above {t.p95_backend_latency_ms:g} ms",
                        gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
                            filter=lb(BACKEND_LATENCIES),
                            aggregations=[gcp.monitoring.AlertPolicyConditionConditionThresholdAggregationArgs(
                                alignment_period="60s", per_series_aligner="ALIGN_DELTA",
                                cross_series_reducer="REDUCE_PERCENTILE_95")],
                            comparison="COMPARISON_GT", threshold_value=t.p95_backend_latency_ms, duration="300s")),
        }
        if args.min_instances >= 1:
            conditions["no-vms"] = ("no VMs", "the group has no VMs: every request fails",
                                    gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
                                        filter=group_filter(pool), aggregations=summed("ALIGN_MEAN"),
                                        comparison="COMPARISON_LT", threshold_value=1,
                                        duration=f"{t.no_vms_minutes * 60}s",
                                        evaluation_missing_data="EVALUATION_MISSING_DATA_ACTIVE"))
        return [
            gcp.monitoring.AlertPolicy(
                f"{name}-alert-{key}", project=args.project, display_name=f"{pool}: {title}", combiner="OR",
                severity="ERROR", user_labels=args.labels,
                conditions=[gcp.monitoring.AlertPolicyConditionArgs(display_name=what, condition_threshold=spec)],
                documentation=gcp.monitoring.AlertPolicyDocumentationArgs(
                    content=f"GPU VM pool {pool} ({args.model_id}) in {args.region}: {what}.",
                    mime_type="text/markdown"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on))
            for key, (title, what, spec) in conditions.items()
        ]


def xy_series(flt: str, aligner: str, reducer: str, legend: str, group_by: list[str] | None = None
              ) -> dict[str, Any]:
    """One data set of an xyChart: the series `flt` selects, aligned per minute and reduced across series."""
    aggregation: dict[str, Any] = {"alignmentPeriod": "60s", "perSeriesAligner": aligner,
                                   "crossSeriesReducer": reducer}
    if group_by:
        aggregation["groupByFields"] = group_by
    return {"timeSeriesQuery": {"timeSeriesFilter": {"filter": flt, "aggregation": aggregation}},
            "plotType": "LINE", "legendTemplate": legend, "minAlignmentPeriod": "60s"}


def xy_chart(title: str, *data_sets: dict[str, Any], label: str) -> dict[str, Any]:
    """A dashboard widget: a line chart of `data_sets`, its y axis labelled."""
    return {"title": title, "xyChart": {"dataSets": list(data_sets), "chartOptions": {"mode": "COLOR"},
                                        "yAxis": {"label": label, "scale": "LINEAR"}}}


def dashboard(pool: str, region: str, forwarding_rule: str, policies: list[str]) -> dict[str, Any]:
    """The Dashboard resource as Monitoring's API takes it (projects.dashboards: displayName, mosaicLayout of
    tiles, each a widget: xyChart of dataSets with a timeSeriesQuery.timeSeriesFilter, alertChart, text)."""

    def series(metric: str, aligner: str, reducer: str, legend: str, group_by: list[str] | None = None,
               extra: str = "") -> dict[str, Any]:
        flt = group_filter(pool) if metric == GROUP_SIZE else lb_filter(forwarding_rule, region, metric)
        return xy_series(flt + extra, aligner, reducer, legend, group_by)

    tiles: list[dict[str, Any]] = [
        {"xPos": 0, "yPos": 0, "width": 6, "height": 4, "widget": xy_chart(
            "Requests per second, by response class",
            series(REQUESTS, "ALIGN_RATE", "REDUCE_SUM", "${metric.labels.response_code_class}",
                   ["metric.label.response_code_class"]), label="requests/s")},
        {"xPos": 6, "yPos": 0, "width": 6, "height": 4, "widget": xy_chart(
            "5xx per second (backends, and 503s when none is healthy)",
            series(REQUESTS, "ALIGN_RATE", "REDUCE_SUM", "5xx",
                   extra=SERVER_ERRORS), label="responses/s")},
        {"xPos": 0, "yPos": 4, "width": 6, "height": 4, "widget": xy_chart(
            "Backend latency to the last byte (ms, p50 / p95)",
            series(BACKEND_LATENCIES, "ALIGN_DELTA", "REDUCE_PERCENTILE_50", "p50"),
            series(BACKEND_LATENCIES, "ALIGN_DELTA", "REDUCE_PERCENTILE_95", "p95"), label="ms")},
        {"xPos": 6, "yPos": 4, "width": 6, "height": 4, "widget": xy_chart(
            "VMs in the group", series(GROUP_SIZE, "ALIGN_MEAN", "REDUCE_SUM", "VMs"), label="VMs")},
    ]
    width = COLUMNS // max(1, len(policies))
    tiles += [{"xPos": i * width, "yPos": 8, "width": width, "height": 3,
               "widget": {"title": "Incidents", "alertChart": {"name": policy}}}
              for i, policy in enumerate(policies)]
    tiles.append({"xPos": 0, "yPos": 11, "width": COLUMNS, "height": 2, "widget": {"title": "Not shown", "text": {
        "content": f"**{pool}**: no GPU metrics (the VMs run no Ops Agent); the containers' logs are in Cloud "
                   "Logging (gcplogs driver). Health-check state is not a Monitoring metric for internal "
                   "Application Load Balancers: 5xx above shows a pool with no healthy backend.",
        "format": "MARKDOWN"}}})
    return {"displayName": f"{pool} (GPU VM pool)", "mosaicLayout": {"columns": COLUMNS, "tiles": tiles}}
