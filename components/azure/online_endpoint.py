"""An Azure Machine Learning managed online endpoint serving an open model from our image: the endpoint (its own
system-assigned identity, key or Microsoft Entra auth, private by default), one or more deployments (blue/green
by traffic and mirror shares), each autoscaled by Azure Monitor, and latency and error alerts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_azure_native as azure
import pulumi_command as command

from ..catalog.azure_instances import AzureInstance
from ..catalog.engines import lora_flags, vllm_flags
from ..catalog.models import ModelFacts
from ..schema import ModelSpec
from ..serving_image import PORT, adapter_environment, content_tag
from ..sizing import GPU_MEMORY_UTILIZATION
from .foundation import AzureFoundation
from .keyvault import ACR_PULL, grant

# The routes Azure ML probes and scores on (the environment's inference_config): our adapter answers liveness
# while the engine loads, readiness once it serves, and `/score` reaches the OpenAI chat route. Every other path of
# the endpoint's host is passed to the container as it is (Azure/azureml-examples@d826128, the Triton sample's
# client calls /v2/models/... on the endpoint's host; read 2026-12-08), so OpenAI clients use `<host>/v1`.
LIVENESS_ROUTE, READINESS_ROUTE, SCORING_ROUTE = "/livez", "/health", "/v1/chat/completions"
PROBE_PERIOD_S = 10
# Azure ML's longest scoring timeout for managed online deployments (request_settings.request_timeout_ms, at most
# 180,000 ms: Azure ML docs, "Online endpoint YAML schema", RequestSettings): a long generation must stream.
MAX_REQUEST_TIMEOUT_S = 180
# Where Azure Monitor reads a deployment's metrics (Azure Monitor supported metrics,
# Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments and .../onlineEndpoints).
DEPLOYMENT_METRICS = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments"
ENDPOINT_METRICS = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"


@dataclass(frozen=True)
class Scaling:
    min_instances: int
    max_instances: int
    scale_out_gpu_percent: int
    scale_in_gpu_percent: int
    cooldown_minutes: int


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment of the endpoint: the model it serves on which instances, and its shares of live and mirrored
    traffic."""

    name: str
    model: ModelSpec
    facts: ModelFacts
    instance: AzureInstance
    traffic: int
    mirror: int
    tags: dict[str, str]


@dataclass(frozen=True)
class Alerts:
    p99_latency_ms: int
    errors_per_minute: int


@dataclass(frozen=True)
class OnlineEndpointArgs:
    endpoint_name: str
    """Unique in the region: 3-32 letters, digits and '-', starting with a letter."""
    foundation: AzureFoundation
    image: pulumi.Input[str]
    """Our serving image by digest, in the foundation's registry."""
    deployments: tuple[DeploymentSpec, ...]
    scaling: Scaling
    auth_mode: str
    """`Key` or `AADToken`."""
    public_access: bool
    alerts: Alerts
    startup_timeout_seconds: int
    max_concurrent_requests: int
    tags: dict[str, str]


def duration(seconds: int) -> str:
    """ISO 8601, as Azure ML's probe and request settings take it."""
    return f"PT{seconds}S"


def serving_environment(model: ModelSpec, gpus: int, token_url: pulumi.Input[str] | None
                        ) -> dict[str, pulumi.Input[str]]:
    """What our adapter reads: the engine's flags for the model (and its adapters' LoRA slots), and where to fetch
    the Hugging Face token with the endpoint's identity (the token itself is never in the deployment)."""
    lora = lora_flags(model.lora_slots, model.max_adapter_rank) if model.adapters else None
    flags = vllm_flags(model.id, model.revision, model.max_context, gpus, model.quantization, GPU_MEMORY_UTILIZATION,
                       model.kv_cache_dtype, lora=lora)
    env: dict[str, pulumi.Input[str]] = {
        **adapter_environment(model.id, flags, tuple((a.name, a.origin) for a in model.adapters)),
        "SELFHOST_PORT": str(PORT)}
    if token_url is not None:
        env["SELFHOST_HF_TOKEN_KEYVAULT_URL"] = token_url
    return env


class ModelDeployment(pulumi.ComponentResource):
    """One managed online deployment on GPU instances, its probes sized for the model, and its Azure Monitor
    autoscale setting: out by one instance when GPU use stays high, in by one when it stays low."""

    def __init__(self, name: str, args: OnlineEndpointArgs, spec: DeploymentSpec, endpoint_name: pulumi.Input[str],
                 environment_id: pulumi.Input[str], depends_on: Sequence[pulumi.Resource],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:azure:ModelDeployment", name, None, opts)
        base, scaling = args.foundation, args.scaling
        ml = azure.machinelearningservices
        readiness_failures = math.ceil(args.startup_timeout_seconds / PROBE_PERIOD_S)
        self.deployment = azure.machinelearningservices.OnlineDeployment(
            f"{name}-deployment", deployment_name=spec.name, endpoint_name=endpoint_name,
            resource_group_name=base.resource_group_name, workspace_name=base.workspace.workspace.name,
            location=base.location, sku={"name": "Default", "capacity": scaling.min_instances},
            # A typed Args: the properties are a union of two shapes, which the SDK converts to ARM's names only
            # when told which.
            properties=ml.ManagedOnlineDeploymentArgs(
                endpoint_compute_type="Managed", instance_type=spec.instance.name, environment_id=environment_id,
                environment_variables=serving_environment(spec.model, spec.instance.gpu_count, base.vault.token_url),
                app_insights_enabled=True, scale_settings=ml.DefaultScaleSettingsArgs(scale_type="Default"),
                request_settings=ml.OnlineRequestSettingsArgs(
                    request_timeout=duration(MAX_REQUEST_TIMEOUT_S),
                    max_concurrent_requests_per_instance=args.max_concurrent_requests),
                # The adapter answers liveness while the engine loads; readiness waits out the sized start-up.
                liveness_probe=ml.ProbeSettingsArgs(initial_delay=duration(30), period=duration(PROBE_PERIOD_S),
                                                    timeout=duration(5), failure_threshold=6, success_threshold=1),
                readiness_probe=ml.ProbeSettingsArgs(
                    initial_delay=duration(PROBE_PERIOD_S), period=duration(PROBE_PERIOD_S), timeout=duration(5),
                    failure_threshold=readiness_failures, success_threshold=1)),
            tags=spec.tags, opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)))
        monitor = azure.monitor

        def rule(direction: Any, operator: Any, threshold: int) -> Any:
            return monitor.ScaleRuleArgs(
                metric_trigger=monitor.MetricTriggerArgs(
                    metric_name="GpuUtilizationPercentage", metric_namespace=DEPLOYMENT_METRICS,
                    metric_resource_uri=self.deployment.id, time_grain="PT1M",
                    statistic=monitor.MetricStatisticType.AVERAGE, time_window="PT5M",
                    time_aggregation=monitor.TimeAggregationType.AVERAGE, operator=operator, threshold=threshold),
                scale_action=monitor.ScaleActionArgs(direction=direction, type=monitor.ScaleType.CHANGE_COUNT,
                                                     value="1", cooldown=f"PT{scaling.cooldown_minutes}M"))

        self.autoscale = monitor.AutoscaleSetting(
            f"{name}-autoscale", resource_group_name=base.resource_group_name, location=base.location,
            target_resource_uri=self.deployment.id, enabled=scaling.max_instances > scaling.min_instances,
            profiles=[monitor.AutoscaleProfileArgs(
                name="gpu-utilization", capacity=monitor.ScaleCapacityArgs(
                    minimum=str(scaling.min_instances), maximum=str(scaling.max_instances),
                    default=str(scaling.min_instances)),
                rules=[rule(monitor.ScaleDirection.INCREASE, monitor.ComparisonOperationType.GREATER_THAN,
                            scaling.scale_out_gpu_percent),
                       rule(monitor.ScaleDirection.DECREASE, monitor.ComparisonOperationType.LESS_THAN,
                            scaling.scale_in_gpu_percent)])],
            tags=spec.tags, opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({"deploymentId": self.deployment.id})


class OnlineEndpoint(pulumi.ComponentResource):
    """A managed online endpoint with its own system-assigned identity, allowed to read exactly the token secret
    and pull exactly from the stack's registry; our image as a versioned environment whose probes and scoring
    route are the adapter's; its deployments; the traffic and mirror shares set once they exist; and alerts on p99
    latency and 5xx answers."""

    def __init__(self, name: str, args: OnlineEndpointArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:azure:OnlineEndpoint", name, None, opts)
        base = args.foundation
        child = pulumi.ResourceOptions(parent=self)
        workspace = base.workspace.workspace.name
        self.endpoint = azure.machinelearningservices.OnlineEndpoint(
            f"{name}-endpoint", endpoint_name=args.endpoint_name, resource_group_name=base.resource_group_name,
            workspace_name=workspace, location=base.location, identity={"type": "SystemAssigned"},
            properties={
                "auth_mode": args.auth_mode,
                "public_network_access": "Enabled" if args.public_access else "Disabled",
                "description": f"selfhost-llm: {', '.join(sorted({d.model.id for d in args.deployments}))}"},
            tags=args.tags, opts=child)
        principal = self.endpoint.identity.apply(lambda i: i.principal_id if i else "")
        grants = [grant(f"{name}-image-pull", principal, ACR_PULL, base.registry.registry.id, base.subscription_id,
                        self)]
        reader = base.vault.grant_reader(f"{name}-token-reader", principal, self)
        grants += [reader] if reader is not None else []
        self.environment = azure.machinelearningservices.EnvironmentContainer(
            f"{name}-environment", name=f"{args.endpoint_name}-serving", resource_group_name=base.resource_group_name,
            workspace_name=workspace, properties={"description": "selfhost-llm serving image (vLLM behind our "
                                                                 "adapter)"}, opts=child)
        # A version per image content: an environment version cannot change once created.
        self.environment_version = azure.machinelearningservices.EnvironmentVersion(
            f"{name}-environment-version", name=self.environment.name, version=content_tag().replace(":", "-"),
            resource_group_name=base.resource_group_name, workspace_name=workspace, properties={
                "image": args.image, "os_type": "Linux",
                "inference_config": {"liveness_route": {"path": LIVENESS_ROUTE, "port": PORT},
                                     "readiness_route": {"path": READINESS_ROUTE, "port": PORT},
                                     "scoring_route": {"path": SCORING_ROUTE, "port": PORT}}},
            opts=child)
        self.deployments = [ModelDeployment(f"{name}-{d.name}", args, d, self.endpoint.name,
                                            self.environment_version.id, grants, opts=child)
                            for d in args.deployments]
        self.traffic = command.local.Command(
            f"{name}-traffic", create=self._traffic_command(args, workspace), triggers=[
                self.endpoint.id, *[d.deployment.id for d in self.deployments],
                {d.name: [d.traffic, d.mirror] for d in args.deployments}],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[d.deployment for d in self.deployments]))
        self.alerts = self._alerts(name, args)
        self.scoring_uri = self.endpoint.properties.scoring_uri
        self.register_outputs({"scoringUri": self.scoring_uri, "principalId": principal})

    def _traffic_command(self, args: OnlineEndpointArgs, workspace: pulumi.Input[str]) -> pulumi.Output[str]:
        """Azure ML refuses traffic to deployments that do not exist yet, so the shares are set once they do, with
        the Azure CLI's ml extension (what `az ml online-endpoint update --traffic` sends)."""
        live = " ".join(f"{d.name}={d.traffic}" for d in args.deployments)
        mirror = " ".join(f"{d.name}={d.mirror}" for d in args.deployments if d.mirror)
        return pulumi.Output.format(
            "az ml online-endpoint update --name {0} --resource-group {1} --workspace-name {2} --traffic '{3}'{4}",
            self.endpoint.name, args.foundation.resource_group_name, workspace, live,
            f" --mirror-traffic '{mirror}'" if mirror else "")

    def _alerts(self, name: str, args: OnlineEndpointArgs) -> list[azure.monitor.MetricAlert]:
        """p99 request latency and 5xx answers a minute, over 5 minutes (each alert appears in Azure Monitor;
        action groups, to page someone, are the team's)."""
        base = args.foundation
        monitor = azure.monitor
        five_xx = [monitor.MetricDimensionArgs(name="statusCodeClass", operator="Include", values=["5xx"])]
        criteria = [("latency", "RequestLatency_P99", args.alerts.p99_latency_ms, "Average", []),
                    ("errors", "RequestsPerMinute", args.alerts.errors_per_minute, "Total", five_xx)]
        return [monitor.MetricAlert(
            f"{name}-{role}", resource_group_name=base.resource_group_name, location="global",
            description=f"{args.endpoint_name}: {metric} above {threshold}", severity=2, enabled=True,
            scopes=[self.endpoint.id], evaluation_frequency="PT1M", window_size="PT5M", auto_mitigate=True,
            criteria=monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
                odata_type="Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
                all_of=[monitor.MetricCriteriaArgs(
                    criterion_type="StaticThresholdCriterion", name=role, metric_name=metric,
                    metric_namespace=ENDPOINT_METRICS, operator="GreaterThan", threshold=threshold,
                    time_aggregation=aggregation, dimensions=dimensions)]),
            tags=args.tags, opts=pulumi.ResourceOptions(parent=self))
            for role, metric, threshold, aggregation, dimensions in criteria]
