"""The pools' dashboards and alarms (issue 25): the aws-pool and gcp-pool stacks' monitoring against the structures
CloudWatch and Cloud Monitoring define, and the dimensions and filters their metrics are published under."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from components.aws.pool_monitoring import GRID_COLUMNS
from components.gcp.pool_monitoring import BACKEND_LATENCIES, GROUP_SIZE, REQUESTS
from components.targets.aws_pool import PoolAlarms
from components.targets.gcp_pool import PoolAlerts

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
CW_DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
POLICY = "gcp:monitoring/alertPolicy:AlertPolicy"
GCP_DASHBOARD = "gcp:monitoring/dashboard:Dashboard"


def only(p, token):
    (r,) = p.by_type(token)
    return r


def under(p, component: str, token: str) -> list:
    """The resources of `token` whose parent is the component named `component`."""
    (parent,) = [r.urn for r in p.resources if not r.custom and r.name == component]
    return [r for r in p.by_type(token) if r.parent == parent]


# ---------------------------------------------------------------------------------------------------------
# AWS: CloudWatch's Dashboard Body Structure and Syntax reference
# (docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html)

BODY_KEYS = {"widgets", "variables", "start", "end", "periodOverride"}
WIDGET_KEYS = {"type", "x", "y", "width", "height", "properties"}
# The reference's widget types; ours use metric, text and alarm.
WIDGET_TYPES = {"metric", "text", "log", "alarm", "explorer", "custom"}
METRIC_PROPERTIES = {"accountId", "annotations", "liveData", "legend", "metrics", "period", "region", "stat",
                     "title", "view", "stacked", "yAxis", "setPeriodToTimeRange", "sparkline", "trend", "labels",
                     "table", "singleValueFullPrecision", "timezone", "start", "end"}
# A metrics row's last element: "Rendering properties object format".
RENDERING = {"accountId", "color", "expression", "id", "label", "period", "region", "stat", "visible", "yAxis"}
STAT = re.compile(r"^(SampleCount|Average|Sum|Minimum|Maximum|p\d{1,2}(\.\d+)?|tm\d+|IQM)$")
ARN_SUFFIX = {"LoadBalancer": re.compile(r"^app/[\w-]+/[0-9a-f]{16}$"),
              "TargetGroup": re.compile(r"^targetgroup/[\w-]+/[0-9a-f]{16}$")}
# AWS/ApplicationELB metrics and the dimension sets CloudWatch publishes them under (ALB CloudWatch metrics,
# "Metric dimensions for Application Load Balancers"), for those we use.
ALB_DIMENSIONS = {
    "RequestCount": [{"LoadBalancer"}, {"TargetGroup", "LoadBalancer"}],
    "HTTPCode_Target_5XX_Count": [{"LoadBalancer"}, {"TargetGroup", "LoadBalancer"}],
    "HTTPCode_ELB_5XX_Count": [{"LoadBalancer"}],
    "TargetResponseTime": [{"LoadBalancer"}, {"TargetGroup", "LoadBalancer"}],
    "HealthyHostCount": [{"TargetGroup", "LoadBalancer"}, {"TargetGroup", "LoadBalancer", "AvailabilityZone"}],
    "UnHealthyHostCount": [{"TargetGroup", "LoadBalancer"}, {"TargetGroup", "LoadBalancer", "AvailabilityZone"}],
}
OTHER_DIMENSIONS = {("AWS/AutoScaling", "GroupInServiceInstances"): [{"AutoScalingGroupName"}],
                    ("AWS/EC2", "CPUUtilization"): [{"AutoScalingGroupName"}],
                    # ECS's service metrics (ECS developer guide, "Amazon ECS CloudWatch metrics": dimensions
                    # ClusterName, ServiceName) and Container Insights' task count (its ECS metrics table).
                    ("AWS/ECS", "CPUUtilization"): [{"ClusterName", "ServiceName"}],
                    ("AWS/ECS", "MemoryUtilization"): [{"ClusterName", "ServiceName"}],
                    ("ECS/ContainerInsights", "RunningTaskCount"): [{"ClusterName", "ServiceName"}]}


@pytest.fixture(scope="module")
def aws_pool(previews):
    return previews["aws-pool"]


def metric_rows(widget: dict[str, Any]) -> list[tuple[str, str, dict[str, str], dict[str, Any]]]:
    """A metric widget's rows as (namespace, metric, dimensions, rendering options), checking each row's form:
    [namespace, metric name, dim name, dim value, ..., {options}]."""
    out = []
    for row in widget["properties"]["metrics"]:
        options = row[-1] if isinstance(row[-1], dict) else {}
        plain = row[:-1] if options else row
        assert all(isinstance(v, str) for v in plain), row
        namespace, metric, *dims = plain
        assert namespace not in (".", "..") and metric not in (".", ".."), row  # no shorthand: every row whole
        assert len(dims) % 2 == 0, f"dimension names and values in pairs: {row}"
        assert set(options) <= RENDERING, row
        if "stat" in options:
            assert STAT.match(options["stat"]), row
        out.append((namespace, metric, dict(zip(dims[::2], dims[1::2], strict=True)), options))
    return out


def test_the_dashboard_body_has_the_structure_cloudwatch_defines(aws_pool):
    dashboard = only(aws_pool, CW_DASHBOARD)
    assert dashboard.inputs["dashboardName"] == "aws-pool-chat"
    check_body(dashboard)


def check_body(dashboard: Any) -> None:
    """A Dashboard resource's name and body as PutDashboard and the Dashboard Body Structure take them."""
    assert re.fullmatch(r"[\w-]{1,255}", dashboard.inputs["dashboardName"])  # PutDashboard's name rule
    body = json.loads(dashboard.inputs["dashboardBody"])
    assert set(body) <= BODY_KEYS and body["widgets"]
    cells: set[tuple[int, int]] = set()
    for w in body["widgets"]:
        assert set(w) <= WIDGET_KEYS and {"type", "properties"} <= set(w), w
        assert w["type"] in WIDGET_TYPES and w["type"] in {"metric", "text", "alarm"}, w
        x, y, width, height = w["x"], w["y"], w["width"], w["height"]
        assert all(isinstance(v, int) for v in (x, y, width, height)), w
        # The grid is 24 columns: x 0-23, width 1-24, and a widget does not run past the right edge.
        assert 0 <= x < GRID_COLUMNS and 1 <= width <= GRID_COLUMNS and x + width <= GRID_COLUMNS, w
        assert y >= 0 and 1 <= height <= 1000, w
        mine = {(i, j) for i in range(x, x + width) for j in range(y, y + height)}
        assert not mine & cells, f"overlaps another widget: {w}"
        cells |= mine
        props = w["properties"]
        if w["type"] == "metric":
            assert set(props) <= METRIC_PROPERTIES, set(props) - METRIC_PROPERTIES
            assert props["region"] == "us-east-1" and props["view"] in {"timeSeries", "singleValue", "gauge",
                                                                        "bar", "pie"}
            assert STAT.match(props["stat"]) and props["period"] % 60 == 0
            assert metric_rows(w)
        elif w["type"] == "alarm":
            assert set(props) <= {"alarms", "sortBy", "states", "title"}
            assert props["sortBy"] in {"default", "stateUpdatedTimestamp", "timestamp"}
        else:
            assert set(props) <= {"markdown", "background"} and props["markdown"]
    assert {w["type"] for w in body["widgets"]} == {"metric", "text", "alarm"}


def test_every_dashboard_metric_names_the_dimensions_cloudwatch_publishes_it_under(aws_pool):
    body = json.loads(only(aws_pool, CW_DASHBOARD).inputs["dashboardBody"])
    alb = only(aws_pool, "aws:lb/loadBalancer:LoadBalancer").computed["arnSuffix"]
    tg = only(aws_pool, "aws:lb/targetGroup:TargetGroup").computed["arnSuffix"]
    group = only(aws_pool, "aws:autoscaling/group:Group").inputs["name"]
    seen = set()
    for w in body["widgets"]:
        if w["type"] != "metric":
            continue
        for namespace, metric, dims, _ in metric_rows(w):
            seen.add(metric)
            if namespace == "AWS/ApplicationELB":
                assert set(dims) in ALB_DIMENSIONS[metric], (metric, dims)
                assert dims["LoadBalancer"] == alb and ARN_SUFFIX["LoadBalancer"].match(alb)
                if "TargetGroup" in dims:
                    assert dims["TargetGroup"] == tg and ARN_SUFFIX["TargetGroup"].match(tg)
            else:
                assert set(dims) in OTHER_DIMENSIONS[(namespace, metric)], (namespace, metric, dims)
                assert dims["AutoScalingGroupName"] == group
    assert seen >= {"RequestCount", "HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count", "TargetResponseTime",
                    "HealthyHostCount", "UnHealthyHostCount", "GroupInServiceInstances"}
    stats = {o.get("stat") for w in body["widgets"] if w["type"] == "metric" for _, m, _, o in metric_rows(w)
             if m == "TargetResponseTime"}
    assert stats == {"p50", "p95"}


def test_the_alarm_widget_shows_exactly_the_pools_alarms(aws_pool):
    body = json.loads(only(aws_pool, CW_DASHBOARD).inputs["dashboardBody"])
    (widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    alarms = under(aws_pool, "aws-pool-chat-monitoring", ALARM)
    assert sorted(widget["properties"]["alarms"]) == sorted(a.computed["arn"] for a in alarms)
    assert all(a.startswith("arn:aws:cloudwatch:us-east-1:") for a in widget["properties"]["alarms"])


def test_the_pool_alarms_watch_5xx_rate_latency_and_host_health(aws_pool):
    alb = only(aws_pool, "aws:lb/loadBalancer:LoadBalancer").computed["arnSuffix"]
    tg = only(aws_pool, "aws:lb/targetGroup:TargetGroup").computed["arnSuffix"]
    dims = {"LoadBalancer": alb, "TargetGroup": tg}
    t = PoolAlarms()  # the config's defaults: the shipped stack sets none
    alarms = {a.inputs["name"]: a.inputs for a in under(aws_pool, "aws-pool-chat-monitoring", ALARM)}
    assert set(alarms) == {"aws-pool-chat-target-5xx-rate", "aws-pool-chat-p95-response-time",
                           "aws-pool-chat-unhealthy-hosts", "aws-pool-chat-no-healthy-host"}

    rate = alarms["aws-pool-chat-target-5xx-rate"]
    assert "metricName" not in rate and "namespace" not in rate  # metric math: the queries carry the metrics
    queries = {q["id"]: q for q in rate["metricQueries"]}
    assert [q["id"] for q in rate["metricQueries"] if q.get("returnData")] == ["rate"]
    assert queries["rate"]["expression"] == "100 * FILL(errors, 0) / requests"
    for qid, metric in (("errors", "HTTPCode_Target_5XX_Count"), ("requests", "RequestCount")):
        m = queries[qid]["metric"]
        assert (m["namespace"], m["metricName"], m["stat"], m["period"], m["dimensions"]) == (
            "AWS/ApplicationELB", metric, "Sum", 60, dims)
    assert (rate["comparisonOperator"], rate["threshold"], rate["treatMissingData"]) == (
        "GreaterThanThreshold", t.target_5xx_percent, "notBreaching")

    p95 = alarms["aws-pool-chat-p95-response-time"]
    assert (p95["metricName"], p95["extendedStatistic"], p95["threshold"], p95["dimensions"]) == (
        "TargetResponseTime", "p95", t.p95_response_seconds, dims)
    assert "statistic" not in p95  # CloudWatch takes one of statistic and extendedStatistic

    unhealthy = alarms["aws-pool-chat-unhealthy-hosts"]
    assert (unhealthy["metricName"], unhealthy["statistic"], unhealthy["comparisonOperator"], unhealthy["threshold"],
            unhealthy["evaluationPeriods"], unhealthy["dimensions"]) == (
        "UnHealthyHostCount", "Maximum", "GreaterThanThreshold", 0, t.unhealthy_minutes, dims)

    none = alarms["aws-pool-chat-no-healthy-host"]
    assert (none["metricName"], none["statistic"], none["comparisonOperator"], none["threshold"],
            none["treatMissingData"], none["dimensions"]) == (
        "HealthyHostCount", "Minimum", "LessThanThreshold", 1, "breaching", dims)

    for a in alarms.values():
        assert a["tags"]["environment"] == "aws-pool"
        assert 1 <= a["datapointsToAlarm"] <= a["evaluationPeriods"]
        # A plain alarm names its metric and period; a metric-math one leaves both to its queries (PutMetricAlarm).
        assert ("metricName" in a and "period" in a) != ("metricQueries" in a), a
        assert a.get("period", 60) * a["evaluationPeriods"] <= 86400  # CloudWatch: at most a day evaluated


def test_a_pool_that_scales_to_zero_has_no_no_healthy_host_alarm(project):
    from .test_own_image import run_stack

    def to_zero(t: dict) -> None:
        t["scaling"]["minReplicas"] = 0
        t["onDemandBase"] = 0

    p = run_stack(project, "aws-pool", to_zero)
    names = {a.inputs["name"] for a in under(p, "aws-pool-chat-monitoring", ALARM)}
    assert names == {"aws-pool-chat-target-5xx-rate", "aws-pool-chat-p95-response-time",
                     "aws-pool-chat-unhealthy-hosts"}


# ---------------------------------------------------------------------------------------------------------
# Google Cloud: the Dashboard resource as Monitoring's API defines it (projects.dashboards, v1)

DASHBOARD_FIELDS = {"name", "displayName", "etag", "gridLayout", "mosaicLayout", "rowLayout", "columnLayout",
                    "dashboardFilters", "labels", "annotations"}
TILE_FIELDS = {"xPos", "yPos", "width", "height", "widget"}
WIDGET_KINDS = {"xyChart", "scorecard", "text", "blank", "alertChart", "timeSeriesTable", "collapsibleGroup",
                "logsPanel", "incidentList", "pieChart", "errorReportingPanel", "sectionHeader", "singleViewGroup",
                "filterControl"}
XY_FIELDS = {"dataSets", "timeshiftDuration", "thresholds", "xAxis", "yAxis", "y2Axis", "chartOptions"}
DATASET_FIELDS = {"timeSeriesQuery", "plotType", "legendTemplate", "minAlignmentPeriod", "targetAxis",
                  "breakdowns", "dimensions", "measures", "sort"}
QUERY_KINDS = {"timeSeriesFilter", "timeSeriesFilterRatio", "timeSeriesQueryLanguage", "prometheusQuery"}
FILTER_FIELDS = {"filter", "aggregation", "secondaryAggregation", "pickTimeSeriesFilter",
                 "statisticalTimeSeriesFilter"}
AGGREGATION_FIELDS = {"alignmentPeriod", "perSeriesAligner", "crossSeriesReducer", "groupByFields"}
ALIGNERS = {"ALIGN_NONE", "ALIGN_DELTA", "ALIGN_RATE", "ALIGN_INTERPOLATE", "ALIGN_NEXT_OLDER", "ALIGN_MIN",
            "ALIGN_MAX", "ALIGN_MEAN", "ALIGN_COUNT", "ALIGN_SUM", "ALIGN_STDDEV", "ALIGN_COUNT_TRUE",
            "ALIGN_COUNT_FALSE", "ALIGN_FRACTION_TRUE", "ALIGN_PERCENTILE_99", "ALIGN_PERCENTILE_95",
            "ALIGN_PERCENTILE_50", "ALIGN_PERCENTILE_05", "ALIGN_PERCENT_CHANGE"}
REDUCERS = {"REDUCE_NONE", "REDUCE_MEAN", "REDUCE_MIN", "REDUCE_MAX", "REDUCE_SUM", "REDUCE_STDDEV",
            "REDUCE_COUNT", "REDUCE_COUNT_TRUE", "REDUCE_COUNT_FALSE", "REDUCE_FRACTION_TRUE",
            "REDUCE_PERCENTILE_99", "REDUCE_PERCENTILE_95", "REDUCE_PERCENTILE_50", "REDUCE_PERCENTILE_05"}
PLOT_TYPES = {"LINE", "STACKED_AREA", "STACKED_BAR", "HEATMAP"}
DURATION = re.compile(r"^\d+(\.\d+)?s$")


@pytest.fixture(scope="module")
def gcp_pool(previews):
    return previews["gcp-pool"]


def check_aggregation(agg: dict[str, Any], metric_kind: str) -> None:
    assert set(agg) <= AGGREGATION_FIELDS and DURATION.match(agg["alignmentPeriod"]), agg
    assert agg["perSeriesAligner"] in ALIGNERS and agg.get("crossSeriesReducer", "REDUCE_NONE") in REDUCERS, agg
    # Cross-series reduction needs an aligner (Aggregation's rules); a DELTA distribution's percentiles come from
    # ALIGN_DELTA then a percentile reducer, an INT64 DELTA count's rate from ALIGN_RATE.
    assert agg["perSeriesAligner"] != "ALIGN_NONE"
    if metric_kind == "distribution":
        assert agg["perSeriesAligner"] == "ALIGN_DELTA" and agg["crossSeriesReducer"].startswith("REDUCE_PERCENTILE")


def test_the_dashboard_json_has_the_fields_monitoring_defines(gcp_pool):
    dashboard = only(gcp_pool, GCP_DASHBOARD)
    assert dashboard.inputs["project"] == "acme-llm-pool"
    body = json.loads(dashboard.inputs["dashboardJson"])
    assert set(body) <= DASHBOARD_FIELDS and body["displayName"]
    layout = body["mosaicLayout"]
    assert set(layout) == {"columns", "tiles"} and 1 <= layout["columns"] <= 48
    cells: set[tuple[int, int]] = set()
    kinds = set()
    for tile in layout["tiles"]:
        assert set(tile) <= TILE_FIELDS, tile
        x, y, w, h = tile.get("xPos", 0), tile.get("yPos", 0), tile["width"], tile["height"]
        assert x >= 0 and y >= 0 and w >= 1 and h >= 1 and x + w <= layout["columns"], tile
        mine = {(i, j) for i in range(x, x + w) for j in range(y, y + h)}
        assert not mine & cells, f"overlaps another tile: {tile}"
        cells |= mine
        widget = tile["widget"]
        (kind,) = set(widget) & WIDGET_KINDS  # a widget is exactly one kind
        assert set(widget) <= {"title", "id", kind}, widget
        kinds.add(kind)
        if kind == "xyChart":
            chart = widget["xyChart"]
            assert set(chart) <= XY_FIELDS and chart["dataSets"]
            for ds in chart["dataSets"]:
                assert set(ds) <= DATASET_FIELDS and ds["plotType"] in PLOT_TYPES, ds
                (query_kind,) = set(ds["timeSeriesQuery"]) & QUERY_KINDS
                assert query_kind == "timeSeriesFilter"
                flt = ds["timeSeriesQuery"]["timeSeriesFilter"]
                assert set(flt) <= FILTER_FIELDS, flt
                metric = re.search(r'metric\.type = "([^"]+)"', flt["filter"]).group(1)
                check_aggregation(flt["aggregation"], "distribution" if metric == BACKEND_LATENCIES else "count")
        elif kind == "alertChart":
            assert set(widget["alertChart"]) == {"name"}
            assert re.fullmatch(r"projects/[\w-]+/alertPolicies/\d+", widget["alertChart"]["name"])
        elif kind == "text":
            assert set(widget["text"]) <= {"content", "format", "style"} and widget["text"]["format"] in {
                "MARKDOWN", "RAW"}
    assert kinds == {"xyChart", "alertChart", "text"}


def _without_defaults(value: Any) -> Any:
    """JSON as protobuf writes it back: fields at their proto3 default (0, "", false, empty) left out."""
    if isinstance(value, dict):
        kept = {k: _without_defaults(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (0, "", False, [], {}) or v is True}
    if isinstance(value, list):
        return [_without_defaults(v) for v in value]
    return value


@pytest.mark.parametrize("stack", ["gcp-pool", "gcp-prod"])
def test_every_google_cloud_dashboard_parses_as_the_apis_dashboard_message(previews, stack):
    """The body as Cloud Monitoring's own schema has it: google.monitoring.dashboard.v1.Dashboard (the published
    protos, google-cloud-monitoring-dashboards), parsed strictly (an unknown field, a wrong type or enum value is
    an error), and written back to the same JSON: nothing we wrote was dropped."""
    from google.cloud.monitoring_dashboard_v1 import Dashboard
    from google.protobuf import json_format

    bodies = [json.loads(d.inputs["dashboardJson"]) for d in previews[stack].by_type(GCP_DASHBOARD)]
    assert bodies
    for body in bodies:
        message = Dashboard.pb(Dashboard())
        json_format.ParseDict(body, message)  # raises on anything the schema does not define
        assert json_format.MessageToDict(message) == _without_defaults(body)
    wrong = json.loads(json.dumps(bodies[0]))
    wrong["mosaicLayout"]["tiles"][0]["widget"]["xyChart"] = {"dataSet": []}
    with pytest.raises(json_format.ParseError, match="dataSet"):
        json_format.ParseDict(wrong, Dashboard.pb(Dashboard()))


def test_the_dashboard_charts_the_internal_load_balancers_metrics_and_the_groups_size(gcp_pool):
    body = json.loads(only(gcp_pool, GCP_DASHBOARD).inputs["dashboardJson"])
    rule = only(gcp_pool, "gcp:compute/forwardingRule:ForwardingRule").computed["name"]
    group = only(gcp_pool, "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager").inputs["name"]
    filters = [ds["timeSeriesQuery"]["timeSeriesFilter"]["filter"] for t in body["mosaicLayout"]["tiles"]
               for ds in t["widget"].get("xyChart", {}).get("dataSets", [])]
    lb = (f'resource.type = "internal_http_lb_rule" AND resource.labels.forwarding_rule_name = "{rule}" '
          'AND resource.labels.region = "us-central1"')
    assert f'{lb} AND metric.type = "{REQUESTS}"' in filters
    assert f'{lb} AND metric.type = "{REQUESTS}" AND metric.labels.response_code_class = "500"' in filters
    assert filters.count(f'{lb} AND metric.type = "{BACKEND_LATENCIES}"') == 2  # p50 and p95
    assert (f'resource.type = "instance_group" AND resource.labels.instance_group_name = "{group}" '
            f'AND metric.type = "{GROUP_SIZE}"') in filters
    policies = {p.computed["name"] for p in under(gcp_pool, "gcp-pool-chat-monitoring", POLICY)}
    charted = {t["widget"]["alertChart"]["name"] for t in body["mosaicLayout"]["tiles"] if "alertChart" in t["widget"]}
    assert charted == policies and len(policies) == 3


def test_the_alert_policies_watch_5xx_ratio_latency_and_the_groups_vms(gcp_pool):
    rule = only(gcp_pool, "gcp:compute/forwardingRule:ForwardingRule").computed["name"]
    t = PoolAlerts()  # the config's defaults: the shipped stack sets none
    policies = {p.inputs["displayName"]: p.inputs for p in under(gcp_pool, "gcp-pool-chat-monitoring", POLICY)}
    assert set(policies) == {"gcp-pool-chat: 5xx ratio", "gcp-pool-chat: backend latency p95",
                             "gcp-pool-chat: no VMs"}
    for p in policies.values():
        assert p["project"] == "acme-llm-pool" and p["combiner"] == "OR" and p["severity"] == "ERROR"
        assert p["userLabels"]["environment"] == "gcp-pool"
        (condition,) = p["conditions"]
        spec = condition["conditionThreshold"]
        assert DURATION.match(spec["duration"]) and spec["comparison"] in {"COMPARISON_GT", "COMPARISON_LT"}
        assert 'resource.type = "' in spec["filter"] and 'metric.type = "' in spec["filter"]
        assert p["documentation"]["mimeType"] == "text/markdown"

    ratio = policies["gcp-pool-chat: 5xx ratio"]["conditions"][0]["conditionThreshold"]
    assert f'forwarding_rule_name = "{rule}"' in ratio["filter"]
    assert ratio["filter"].endswith(f'metric.type = "{REQUESTS}" AND metric.labels.response_code_class = "500"')
    assert ratio["denominatorFilter"].endswith(f'metric.type = "{REQUESTS}"')
    for agg in (*ratio["aggregations"], *ratio["denominatorAggregations"]):
        assert agg == {"alignmentPeriod": "60s", "perSeriesAligner": "ALIGN_RATE", "crossSeriesReducer": "REDUCE_SUM"}
    assert (ratio["comparison"], ratio["thresholdValue"]) == ("COMPARISON_GT", t.error_ratio)

    latency = policies["gcp-pool-chat: backend latency p95"]["conditions"][0]["conditionThreshold"]
    assert latency["filter"].endswith(f'metric.type = "{BACKEND_LATENCIES}"')
    (agg,) = latency["aggregations"]
    check_aggregation(agg, "distribution")
    assert agg["crossSeriesReducer"] == "REDUCE_PERCENTILE_95"
    assert latency["thresholdValue"] == t.p95_backend_latency_ms

    vms = policies["gcp-pool-chat: no VMs"]["conditions"][0]["conditionThreshold"]
    assert vms["filter"] == ('resource.type = "instance_group" AND resource.labels.instance_group_name = '
                             f'"gcp-pool-chat" AND metric.type = "{GROUP_SIZE}"')
    assert (vms["comparison"], vms["thresholdValue"], vms["evaluationMissingData"]) == (
        "COMPARISON_LT", 1, "EVALUATION_MISSING_DATA_ACTIVE")


def test_monitoring_waits_for_the_monitoring_api(gcp_pool):
    (api,) = [r for r in gcp_pool.by_type("gcp:projects/service:Service")
              if r.inputs["service"] == "monitoring.googleapis.com"]
    for r in [*under(gcp_pool, "gcp-pool-chat-monitoring", POLICY), only(gcp_pool, GCP_DASHBOARD)]:
        assert api.urn in r.dependencies, r.name


def test_the_aws_routers_dashboard_shows_its_load_balancer_tasks_and_alarms(previews):
    """aws-prod's router (ECS on Fargate behind an internal ALB): its dashboard as CloudWatch takes it, each metric
    under dimensions CloudWatch publishes it with, naming its own load balancer, cluster and service, and its
    alarms."""
    p = previews["aws-prod"]
    (dashboard,) = under(p, "aws-prod-router", CW_DASHBOARD)
    assert dashboard.inputs["dashboardName"] == "aws-prod-router"
    check_body(dashboard)
    body = json.loads(dashboard.inputs["dashboardBody"])
    (lb,) = under(p, "aws-prod-router", "aws:lb/loadBalancer:LoadBalancer")
    (cluster,) = under(p, "aws-prod-router", "aws:ecs/cluster:Cluster")
    (service,) = under(p, "aws-prod-router", "aws:ecs/service:Service")
    seen = set()
    for w in body["widgets"]:
        if w["type"] != "metric":
            continue
        for namespace, metric, dims, _ in metric_rows(w):
            seen.add((namespace, metric))
            if namespace == "AWS/ApplicationELB":
                assert set(dims) in ALB_DIMENSIONS[metric] and dims["LoadBalancer"] == lb.computed["arnSuffix"]
            else:
                assert set(dims) in OTHER_DIMENSIONS[(namespace, metric)], (namespace, metric, dims)
                assert (dims["ClusterName"], dims["ServiceName"]) == (cluster.inputs["name"], service.inputs["name"])
    assert {("AWS/ECS", "CPUUtilization"), ("AWS/ECS", "MemoryUtilization"),
            ("ECS/ContainerInsights", "RunningTaskCount"), ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count")} <= seen
    (widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    alarms = under(p, "aws-prod-router", ALARM)
    assert len(alarms) == 4 and sorted(widget["properties"]["alarms"]) == sorted(a.computed["arn"] for a in alarms)
