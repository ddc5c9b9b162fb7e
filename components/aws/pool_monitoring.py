"""A GPU instance pool's CloudWatch dashboard and alarms (issue 25): what its load balancer and group publish.

The metrics, their dimensions and statistics are CloudWatch's own for Application Load Balancers
(docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html: namespace
AWS/ApplicationELB; `LoadBalancer` is the ALB ARN's suffix `app/<name>/<id>`, `TargetGroup` the target group's
`targetgroup/<name>/<id>`; per target group metrics take both) and for Auto Scaling groups
(docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-metrics.html: namespace AWS/AutoScaling, dimension
AutoScalingGroupName). The dashboard body follows CloudWatch's Dashboard Body Structure and Syntax reference
(docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html).

GPU metrics: none. The instances run no CloudWatch agent (components/aws/pool.py's boot script starts only our
container, logging to the pool's log group), so nothing publishes GPU utilization or memory; EC2 itself publishes
only host metrics (AWS/EC2 CPUUtilization per AutoScalingGroupName, which the dashboard shows). Likewise the
group's in-service instances (AWS/AutoScaling GroupInServiceInstances) are published only once the group enables
metrics collection (the group's `enabled_metrics`); until then that line is empty and HealthyHostCount is the
count to read.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

ALB = "AWS/ApplicationELB"
ASG = "AWS/AutoScaling"
EC2 = "AWS/EC2"
ECS = "AWS/ECS"
ECS_INSIGHTS = "ECS/ContainerInsights"
GRID_COLUMNS = 24
"""A dashboard's grid is 24 columns wide (Dashboard Body Structure: `x` 0-23, `width` 1-24)."""


@dataclass(frozen=True)
class PoolAlarmThresholds:
    """What the pool's alarms fire at (the defaults are the kind's config's, `alarms`:
    components/targets/aws_pool.py PoolAlarms), and why those defaults:

    - 5xx: the share of requests a target answered with a 5xx, in percent, over a minute, 3 minutes of 5 (the
      SageMaker alarms' evaluation). 5% is the usual page-worthy error budget burn for an online API.
    - p95 response time: ALB TargetResponseTime is the time until the target starts its response headers; our
      adapter sends them at the first token when streaming and at the end otherwise, so 20 s matches SageMaker's
      whole-response p99 default (components/targets/sagemaker.py SageMakerAlarms.p99_latency_ms).
    - unhealthy hosts: any target failing the readiness check for this many minutes in a row; longer than a
      target's registration (2 checks of 15 s) so a routine replacement does not page.
    - no healthy host: HealthyHostCount below 1 for this many minutes, missing data breaching (an ALB whose group
      has no targets publishes nothing). Declared only when the group keeps at least one instance: a pool that
      scales to zero has no healthy host by design.
    """

    target_5xx_percent: float
    p95_response_seconds: float
    unhealthy_minutes: int
    no_healthy_minutes: int


@dataclass(frozen=True)
class PoolMonitoringArgs:
    pool_name: str
    """Names the dashboard and prefixes the alarms (the pool's name: ALB, target group, group, log group)."""
    region: str
    load_balancer_arn_suffix: pulumi.Input[str]
    """`app/<name>/<id>`: CloudWatch's LoadBalancer dimension."""
    target_group_arn_suffix: pulumi.Input[str]
    """`targetgroup/<name>/<id>`: CloudWatch's TargetGroup dimension."""
    group_name: pulumi.Input[str]
    log_group_name: pulumi.Input[str]
    tags: dict[str, str]
    min_instances: int
    """The group's minimum: 0 leaves out the no-healthy-host alarm."""
    thresholds: PoolAlarmThresholds


class PoolMonitoring(pulumi.ComponentResource):
    """A pool's alarms (target 5xx rate, p95 response time, unhealthy hosts, no healthy host) and its dashboard
    (requests, 5xx of the targets and of the load balancer, response time p50/p95, healthy and unhealthy hosts,
    the group's instances, host CPU, the alarms' states)."""

    def __init__(self, name: str, args: PoolMonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:aws:PoolMonitoring", name, None, opts)
        self.alarms = self._alarms(name, args)
        body = pulumi.Output.all(args.load_balancer_arn_suffix, args.target_group_arn_suffix, args.group_name,
                                 args.log_group_name, [a.arn for a in self.alarms]).apply(
            lambda v: json.dumps(dashboard_body(args.pool_name, args.region, v[0], v[1], v[2], v[3], v[4])))
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard", dashboard_name=args.pool_name, dashboard_body=body,
            opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({"dashboardName": self.dashboard.dashboard_name,
                               "alarmNames": [a.name for a in self.alarms]})

    def _alarms(self, name: str, args: PoolMonitoringArgs) -> list[aws.cloudwatch.MetricAlarm]:
        return alb_alarms(self, name, args.pool_name, args.load_balancer_arn_suffix, args.target_group_arn_suffix,
                          args.tags, args.thresholds, args.min_instances)



def alb_alarms(parent: pulumi.Resource, name: str, pool: str, load_balancer_arn_suffix: pulumi.Input[str],
               target_group_arn_suffix: pulumi.Input[str], tags: dict[str, str], t: PoolAlarmThresholds,
               min_instances: int) -> list[aws.cloudwatch.MetricAlarm]:
    """The alarms of the targets behind one load balancer's target group (a pool's instances, the router's tasks),
    children of `parent` named `<name>-alarm-<role>`, their CloudWatch names `<pool>-<role>`: target 5xx rate, p95
    response time, unhealthy hosts and, when at least one target is always kept (`min_instances`), no healthy
    host."""
    child = pulumi.ResourceOptions(parent=parent)
    lb = {"LoadBalancer": load_balancer_arn_suffix}
    tg = {"TargetGroup": target_group_arn_suffix, **lb}

    def alarm(role: str, description: str, **kwargs: Any) -> aws.cloudwatch.MetricAlarm:
        return aws.cloudwatch.MetricAlarm(
            f"{name}-alarm-{role}", name=f"{pool}-{role}", alarm_description=f"{pool}: {description}",
            tags=tags, opts=child, **kwargs)

    def query(qid: str, metric: str) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
        return aws.cloudwatch.MetricAlarmMetricQueryArgs(
            id=qid, return_data=False, metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                namespace=ALB, metric_name=metric, dimensions=tg, period=60, stat="Sum"))

    alarms = [
        # Metric math: a 5xx rate, not a count, so the threshold holds at any traffic. No requests, no data:
        # not breaching (the no-healthy-host alarm covers a pool that answers nothing).
        alarm("target-5xx-rate", f"targets answer more than {t.target_5xx_percent:g}% of requests with a 5xx",
              comparison_operator="GreaterThanThreshold", threshold=t.target_5xx_percent,
              evaluation_periods=5, datapoints_to_alarm=3, treat_missing_data="notBreaching",
              metric_queries=[
                  query("errors", "HTTPCode_Target_5XX_Count"), query("requests", "RequestCount"),
                  aws.cloudwatch.MetricAlarmMetricQueryArgs(
                      id="rate", expression="100 * FILL(errors, 0) / requests",
                      label="Target 5xx (% of requests)", return_data=True)]),
        alarm("p95-response-time", f"target response time p95 above {t.p95_response_seconds:g} s",
              namespace=ALB, metric_name="TargetResponseTime", dimensions=tg, extended_statistic="p95",
              period=60, comparison_operator="GreaterThanThreshold", threshold=t.p95_response_seconds,
              evaluation_periods=5, datapoints_to_alarm=3, treat_missing_data="notBreaching"),
        alarm("unhealthy-hosts", f"a target has failed its readiness check for {t.unhealthy_minutes} minutes",
              namespace=ALB, metric_name="UnHealthyHostCount", dimensions=tg, statistic="Maximum", period=60,
              comparison_operator="GreaterThanThreshold", threshold=0, evaluation_periods=t.unhealthy_minutes,
              datapoints_to_alarm=t.unhealthy_minutes, treat_missing_data="notBreaching"),
    ]
    if min_instances >= 1:
        alarms.append(alarm(
            "no-healthy-host", "no healthy target: the load balancer answers every request with a 503",
            namespace=ALB, metric_name="HealthyHostCount", dimensions=tg, statistic="Minimum", period=60,
            comparison_operator="LessThanThreshold", threshold=1, evaluation_periods=t.no_healthy_minutes,
            datapoints_to_alarm=t.no_healthy_minutes, treat_missing_data="breaching"))
    return alarms


def metric_widget(region: str, title: str, rows: list[list[Any]], x: int, y: int, stat: str = "Sum",
                  width: int = 12, height: int = 6) -> dict[str, Any]:
    """A metric widget: a time series of `rows` ([namespace, metric, dimension name, value, ..., {options}])."""
    return {"type": "metric", "x": x, "y": y, "width": width, "height": height,
            "properties": {"title": title, "region": region, "view": "timeSeries", "stacked": False,
                           "stat": stat, "period": 60, "metrics": rows}}


def _alb_widgets(metric: Any, lb_dims: list[str], tg_dims: list[str]) -> list[dict[str, Any]]:
    """The load balancer's row: requests, 5xx of the targets and of the load balancer, response time."""
    return [
        metric("Requests", [[ALB, "RequestCount", *tg_dims, {"label": "to the targets"}]], 0, 0),
        metric("5xx: targets and load balancer",
               [[ALB, "HTTPCode_Target_5XX_Count", *tg_dims, {"label": "targets"}],
                [ALB, "HTTPCode_ELB_5XX_Count", *lb_dims, {"label": "load balancer (503: no healthy target)"}]],
               12, 0),
        metric("Target response time (s, to the first response byte)",
               [[ALB, "TargetResponseTime", *tg_dims, {"stat": "p50", "label": "p50"}],
                [ALB, "TargetResponseTime", *tg_dims, {"stat": "p95", "label": "p95"}]], 0, 6, stat="p50"),
    ]


def router_dashboard_body(router: str, region: str, lb: str, tg: str, cluster: str, service: str, log_group: str,
                          alarm_arns: list[str]) -> dict[str, Any]:
    """The router's dashboard: its load balancer's row as a pool's, then its tasks (healthy behind the load
    balancer, running: Container Insights), their CPU and memory (AWS/ECS per service), its alarms."""
    lb_dims = ["LoadBalancer", lb]
    tg_dims = ["TargetGroup", tg, "LoadBalancer", lb]
    service_dims = ["ClusterName", cluster, "ServiceName", service]
    metric = functools.partial(metric_widget, region)
    return {"widgets": [
        *_alb_widgets(metric, lb_dims, tg_dims),
        metric("Tasks", [[ALB, "HealthyHostCount", *tg_dims, {"stat": "Minimum", "label": "healthy"}],
                         [ALB, "UnHealthyHostCount", *tg_dims, {"stat": "Maximum", "label": "unhealthy"}],
                         [ECS_INSIGHTS, "RunningTaskCount", *service_dims,
                          {"stat": "Average", "label": "running (Container Insights)"}]], 12, 6, stat="Average"),
        metric("Task CPU and memory (% of what they reserve)",
               [[ECS, "CPUUtilization", *service_dims, {"label": "CPU"}],
                [ECS, "MemoryUtilization", *service_dims, {"label": "memory"}]], 0, 12, stat="Average"),
        {"type": "alarm", "x": 12, "y": 12, "width": 12, "height": 6,
         "properties": {"title": f"{router} alarms", "alarms": alarm_arns, "sortBy": "stateUpdatedTimestamp"}},
        {"type": "text", "x": 0, "y": 18, "width": GRID_COLUMNS, "height": 2, "properties": {"markdown": (
            f"**{router}**: the proxy's logs and one JSON usage line per request (caller, model, target, tokens) in "
            f"CloudWatch Logs group `{log_group}`.")}},
    ]}


def dashboard_body(pool: str, region: str, lb: str, tg: str, group: str, log_group: str,
                   alarm_arns: list[str]) -> dict[str, Any]:
    """The dashboard body (Dashboard Body Structure): metric widgets whose `metrics` rows are
    [namespace, metric name, dimension name, value, ..., {rendering options}], or ["."/"..", ...] shorthand never
    used here; an alarm widget of the pool's alarms; a text widget saying what is not shown."""
    lb_dims = ["LoadBalancer", lb]
    tg_dims = ["TargetGroup", tg, "LoadBalancer", lb]
    metric = functools.partial(metric_widget, region)
    return {"widgets": [
        *_alb_widgets(metric, lb_dims, tg_dims),
        metric("Hosts", [[ALB, "HealthyHostCount", *tg_dims, {"stat": "Minimum", "label": "healthy"}],
                         [ALB, "UnHealthyHostCount", *tg_dims, {"stat": "Maximum", "label": "unhealthy"}],
                         [ASG, "GroupInServiceInstances", "AutoScalingGroupName", group,
                          {"stat": "Average", "label": "in service (group metrics)"}]], 12, 6, stat="Average"),
        metric("Host CPU (%)", [[EC2, "CPUUtilization", "AutoScalingGroupName", group, {"label": "average"}]],
               0, 12, stat="Average"),
        {"type": "alarm", "x": 12, "y": 12, "width": 12, "height": 6,
         "properties": {"title": f"{pool} alarms", "alarms": alarm_arns, "sortBy": "stateUpdatedTimestamp"}},
        {"type": "text", "x": 0, "y": 18, "width": GRID_COLUMNS, "height": 2, "properties": {"markdown": (
            f"**{pool}**: container logs in CloudWatch Logs group `{log_group}`, one stream per instance. "
            "No GPU metrics: the instances run no CloudWatch agent. *In service* needs the group's metrics "
            "collection.")}},
    ]}
