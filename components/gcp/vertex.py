from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_command as command
import pulumi_gcp as gcp

from ..catalog.engines import ENGINES, Flag, as_arguments, lora_flags, vllm_flags
from ..catalog.models import ModelFacts
from ..catalog.serving import VERTEX_TIMEOUT_BOUNDS_S, XLA_COMPILE_S
from ..catalog.tpus import VLLM_TPU
from ..schema import ModelSpec
from ..serving_image import adapter_environment
from ..sizing import GPU_MEMORY_UTILIZATION, WARMUP_S, startup_timeout_seconds
from .foundation import GcpFoundation

PORT = 8080
DUTY_CYCLE_METRIC = "aiplatform.googleapis.com/prediction/online/accelerator/duty_cycle"
# Tensor-parallel workers exchange activations through /dev/shm; one GPU needs little.
SHM_MB_PER_GPU = 4096
PROBE_PERIOD_S = 10
# Logged requests hold user prompts: the tables Vertex writes expire after this long.
REQUEST_LOG_RETENTION_DAYS = 30
# The deploy resource has no logging settings, so they are set on the endpoint it creates through the Vertex
# REST API (Endpoint.predictRequestResponseLoggingConfig), with the deployer's gcloud credentials.
PATCH_ENDPOINT = ('curl --fail-with-body -sS -X PATCH -H "Authorization: Bearer $(gcloud auth print-access-token)" '
                  '-H "Content-Type: application/json" --data "$BODY" "$URL"')


# APIs a Vertex endpoint's resources call (request logging adds BigQuery).
APIS = ("aiplatform.googleapis.com", "monitoring.googleapis.com", "dns.googleapis.com",
        "networkconnectivity.googleapis.com")
LOGGING_API = "bigquery.googleapis.com"


@dataclass(frozen=True)
class DedicatedResources:
    """The machines the model is deployed on, and how many (the deployment's dedicatedResources)."""

    machine_type: str
    accelerator_type: str | None
    """Vertex's accelerator enum, e.g. NVIDIA_L4; None on a TPU machine type, which carries its chips."""
    accelerator_count: int
    """GPUs (or TPU chips) per replica: the engine's tensor-parallel size."""
    min_replicas: int
    max_replicas: int
    target_duty_cycle_percent: int
    """Autoscaling goal: GPU duty cycle (DUTY_CYCLE_METRIC)."""
    spot: bool
    tpu_topology: str | None = None
    """A TPU machine's chip topology (`2x2`), as the machine spec takes it; None on GPUs."""


@dataclass(frozen=True)
class AlertThresholds:
    p99_latency_ms: int
    errors_per_minute: int


@dataclass(frozen=True)
class VertexEndpointArgs:
    endpoint_name: str
    foundation: GcpFoundation
    model: ModelSpec
    facts: ModelFacts
    hf_token: pulumi.Output[str] | None
    labels: dict[str, str]
    resources: DedicatedResources
    endpoint: Literal["dedicated", "private"]
    """`dedicated`: a dedicated public DNS name (IAM-authenticated). `private`: Private Service Connect into the
    environment's VPC, no public path."""
    alerts: AlertThresholds
    request_log_sampling_rate: float | None = None
    """Share of requests and responses logged to a BigQuery dataset (they hold user prompts); None: no logging."""
    own_image: pulumi.Output[str] | None = None
    """Our image by digest (components/gcp/registry.py) instead of Google's Model Garden vLLM image."""
    startup_timeout_seconds: int | None = None
    """None: sized from the model, within Vertex's bounds."""

    @property
    def depends_on(self) -> list[pulumi.Resource]:
        logging = (LOGGING_API,) if self.request_log_sampling_rate is not None else ()
        return self.foundation.apis.needs(*APIS, *logging)


# Routes of the container: Google's vLLM image, or our adapter (which serves whatever AIP_PREDICT_ROUTE and
# AIP_HEALTH_ROUTE Vertex sets from these).
ROUTES = {"managed": ("/generate", "/ping"), "selfhost": ("/predict", "/health")}


def engine_flags(model: ModelSpec, gpus: int) -> list[Flag]:
    """vLLM's flags for the model on Vertex: the Hub id at its revision; with adapters (our image only: the kind
    refuses them on Google's), LoRA slots and ranks (our adapter adds --enable-lora and --lora-modules from
    SELFHOST_ADAPTERS)."""
    lora = lora_flags(model.lora_slots, model.max_adapter_rank) if model.adapters else None
    return vllm_flags(model.id, model.revision, model.max_context, gpus, model.quantization, GPU_MEMORY_UTILIZATION,
                      model.kv_cache_dtype, lora=lora)


class VertexEndpoint(pulumi.ComponentResource):
    """One open model on a Vertex AI endpoint with dedicated GPUs, deployed through Model Garden from its Hugging
    Face id with the Vertex vLLM container (revision pinned, probes sized for the model), autoscaled on GPU duty
    cycle, reachable on a dedicated endpoint or privately through Private Service Connect, with latency and
    error alerts and a dashboard. LoRA adapters: pinned Hub ones, on our image (SELFHOST_ADAPTERS)."""

    def __init__(self, name: str, args: VertexEndpointArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:gcp:VertexEndpoint", name, None, opts)
        base = args.foundation
        tpu = args.resources.tpu_topology is not None
        # On TPU, vLLM compiles the model's graphs with XLA before it serves, into a cache on the container's disk
        # (VLLM_XLA_CACHE_PATH; Vertex keeps no disk across replicas, so every replica compiles afresh).
        self.startup_timeout_seconds = args.startup_timeout_seconds or startup_timeout_seconds(
            args.facts, args.model.quantization, "hub", VERTEX_TIMEOUT_BOUNDS_S,
            warmup_s=XLA_COMPILE_S if tpu else WARMUP_S)
        private = args.endpoint == "private"

        depends = list(args.depends_on)
        if private:
            depends.append(self._psc_policy(name, args))
        self.image, container = self._container(args)
        self.deployment = self._deployment(name, args, container, depends)

        self.endpoint_id = self.deployment.endpoint
        self.resource_name = pulumi.Output.format("projects/{0}/locations/{1}/endpoints/{2}", base.project,
                                                  base.region, self.endpoint_id)
        # Dedicated and PSC endpoints answer on the endpoint's own DNS name (Vertex AI "dedicated endpoints").
        self.host = pulumi.Output.format("{0}.{1}-{2}.prediction.vertexai.goog", self.endpoint_id, base.region,
                                         base.project_number)
        self.predict_url = pulumi.Output.format("https://{0}/v1/{1}:predict", self.host, self.resource_name)
        self.openai_base_url = pulumi.Output.format("https://{0}/v1beta1/{1}", self.host, self.resource_name)

        self.private_ip = None
        if private:
            self.private_ip = self.deployment.endpoint_config.apply(_psc_address)
            self._private_dns(name, args, self.private_ip)

        self.request_log_dataset = None
        if args.request_log_sampling_rate is not None:
            self.request_log_dataset = self._request_logging(name, args)

        self.alert_policies = self._alerts(name, args)
        self.dashboard = gcp.monitoring.Dashboard(
            f"{name}-dashboard", project=base.project,
            dashboard_json=self.endpoint_id.apply(lambda eid: json.dumps(_dashboard(args.endpoint_name, eid))),
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
        )
        self.register_outputs({
            "endpointId": self.endpoint_id,
            "resourceName": self.resource_name,
            "predictUrl": self.predict_url,
            "openaiBaseUrl": self.openai_base_url,
        })

    def _psc_policy(self, name: str, args: VertexEndpointArgs) -> gcp.networkconnectivity.ServiceConnectionPolicy:
        """PSC automation creates the endpoint's forwarding rule in our subnet under this policy."""
        base = args.foundation
        return gcp.networkconnectivity.ServiceConnectionPolicy(
            f"{name}-psc-policy", project=base.project, location=base.region, name=f"{args.endpoint_name}-vertex",
            service_class="gcp-vertexai", network=base.network_id,
            psc_config=gcp.networkconnectivity.ServiceConnectionPolicyPscConfigArgs(subnetworks=[base.subnet_id]),
            labels=args.labels, opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
        )

    def _container(self, args: VertexEndpointArgs) -> tuple[
            pulumi.Input[str], gcp.vertex.AiEndpointWithModelGardenDeploymentModelConfigContainerSpecArgs]:
        """The serving image, and its container: Google's vLLM image with the engine's flags as its arguments, or
        our adapter (which starts the engine with the same flags); probes sized for the model."""
        model, gpus = args.model, args.resources.accelerator_count
        engine = ENGINES[model.engine]
        predict_route, health_route = ROUTES["selfhost" if args.own_image is not None else "managed"]
        probe = gcp.vertex.AiEndpointWithModelGardenDeploymentModelConfigContainerSpecStartupProbeHttpGetArgs(
            path=health_route, port=PORT)
        image: pulumi.Input[str]
        if args.own_image is not None:
            # Our adapter starts the engine with the same flags Google's image takes as its arguments, and fetches
            # Hub adapters itself (pinned).
            image, commands, container_args = args.own_image, None, ["vertex"]
            envs = adapter_environment(model.id, engine_flags(model, gpus),
                                       tuple((a.name, a.origin) for a in model.adapters))
        else:
            # The config lets only engines with a Vertex image (vllm) onto Vertex targets.
            assert engine.vertex_image is not None
            tpu = args.resources.tpu_topology is not None
            image, commands, container_args = (VLLM_TPU.vertex_image if tpu else engine.vertex_image), \
                ["python", "-m", "vllm.entrypoints.api_server"], \
                ["--host=0.0.0.0", f"--port={PORT}", *as_arguments(engine_flags(model, gpus))]
            envs = {"MODEL_ID": model.id, "DEPLOY_SOURCE": "pulumi"}
        return image, gcp.vertex.AiEndpointWithModelGardenDeploymentModelConfigContainerSpecArgs(
            image_uri=image,
            commands=commands,
            args=container_args,
            envs=[gcp.vertex.AiEndpointWithModelGardenDeploymentModelConfigContainerSpecEnvArgs(name=k, value=v)
                  for k, v in envs.items()],
            ports=[gcp.vertex.AiEndpointWithModelGardenDeploymentModelConfigContainerSpecPortArgs(
                container_port=PORT)],
            predict_route=predict_route,
            health_route=health_route,
            shared_memory_size_mb=str(SHM_MB_PER_GPU * gpus),
            deployment_timeout=f"{self.startup_timeout_seconds}s",
            # Loading takes minutes: the startup probe allows the sized time, then health checks take over.
            startup_probe=gcp.vertex.AiEndpointWithModelGardenDeploymentModelConfigContainerSpecStartupProbeArgs(
                http_get=probe, period_seconds=PROBE_PERIOD_S, timeout_seconds=5,
                failure_threshold=math.ceil(self.startup_timeout_seconds / PROBE_PERIOD_S)),
            health_probe=gcp.vertex.AiEndpointWithModelGardenDeploymentModelConfigContainerSpecHealthProbeArgs(
                http_get=gcp.vertex.AiEndpointWithModelGardenDeploymentModelConfigContainerSpecHealthProbeHttpGetArgs(
                    path=health_route, port=PORT),
                period_seconds=PROBE_PERIOD_S, timeout_seconds=5, failure_threshold=3),
        )

    def _deployment(self, name: str, args: VertexEndpointArgs,
                    container: gcp.vertex.AiEndpointWithModelGardenDeploymentModelConfigContainerSpecArgs,
                    depends: list[pulumi.Resource]) -> gcp.vertex.AiEndpointWithModelGardenDeployment:
        """The model deployed from its Hugging Face id on dedicated machines, autoscaled on GPU duty cycle, behind
        a dedicated endpoint or Private Service Connect."""
        base, machines = args.foundation, args.resources
        private = args.endpoint == "private"
        return gcp.vertex.AiEndpointWithModelGardenDeployment(
            f"{name}-deployment",
            project=base.project,
            location=base.region,
            hugging_face_model_id=args.model.id,
            model_config=gcp.vertex.AiEndpointWithModelGardenDeploymentModelConfigArgs(
                model_display_name=args.endpoint_name,
                hugging_face_access_token=args.hf_token,
                hugging_face_cache_enabled=True,
                container_spec=container,
            ),
            deploy_config=gcp.vertex.AiEndpointWithModelGardenDeploymentDeployConfigArgs(
                dedicated_resources=gcp.vertex.AiEndpointWithModelGardenDeploymentDeployConfigDedicatedResourcesArgs(
                    machine_spec=gcp.vertex.AiEndpointWithModelGardenDeploymentDeployConfigDedicatedResourcesMachineSpecArgs(
                        machine_type=machines.machine_type, accelerator_type=machines.accelerator_type,
                        # A TPU machine's chips come with it: the spec names its topology instead.
                        accelerator_count=None if machines.tpu_topology else machines.accelerator_count,
                        tpu_topology=machines.tpu_topology),
                    min_replica_count=machines.min_replicas,
                    max_replica_count=machines.max_replicas,
                    autoscaling_metric_specs=[
                        gcp.vertex.AiEndpointWithModelGardenDeploymentDeployConfigDedicatedResourcesAutoscalingMetricSpecArgs(
                            metric_name=DUTY_CYCLE_METRIC, target=machines.target_duty_cycle_percent)],
                    spot=machines.spot,
                ),
            ),
            endpoint_config=gcp.vertex.AiEndpointWithModelGardenDeploymentEndpointConfigArgs(
                endpoint_display_name=args.endpoint_name,
                dedicated_endpoint_enabled=not private,
                private_service_connect_config=gcp.vertex.AiEndpointWithModelGardenDeploymentEndpointConfigPrivateServiceConnectConfigArgs(
                    enable_private_service_connect=True, project_allowlists=[base.project],
                    psc_automation_configs=gcp.vertex.AiEndpointWithModelGardenDeploymentEndpointConfigPrivateServiceConnectConfigPscAutomationConfigsArgs(
                        project_id=base.project, network=base.network_id),
                ) if private else None,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
        )

    def _private_dns(self, name: str, args: VertexEndpointArgs, address: pulumi.Output[str]) -> None:
        """Inside the VPC the endpoint's name must resolve to its forwarding rule."""
        base = args.foundation
        zone = gcp.dns.ManagedZone(
            f"{name}-dns", project=base.project, name=f"{args.endpoint_name}-vertex",
            dns_name=pulumi.Output.format("{0}-{1}.prediction.vertexai.goog.", base.region, base.project_number),
            visibility="private", description="Private Service Connect names of Vertex AI endpoints",
            private_visibility_config=gcp.dns.ManagedZonePrivateVisibilityConfigArgs(
                networks=[gcp.dns.ManagedZonePrivateVisibilityConfigNetworkArgs(network_url=base.network_id)]),
            labels=args.labels, opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
        )
        gcp.dns.RecordSet(
            f"{name}-dns-record", project=base.project, managed_zone=zone.name,
            name=pulumi.Output.format("{0}.", self.host), type="A", ttl=300, rrdatas=[address],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _alerts(self, name: str, args: VertexEndpointArgs) -> list[gcp.monitoring.AlertPolicy]:
        """p99 latency and errors of the endpoint, above the configured thresholds."""
        base = args.foundation
        filter_base = pulumi.Output.format(
            'resource.type = "aiplatform.googleapis.com/Endpoint" AND resource.labels.endpoint_id = "{0}"',
            self.endpoint_id)
        alerts = {
            "latency": ("p99 prediction latency", "aiplatform.googleapis.com/prediction/online/prediction_latencies",
                        "ALIGN_PERCENTILE_99", args.alerts.p99_latency_ms),
            "errors": ("prediction errors per second", "aiplatform.googleapis.com/prediction/online/error_count",
                       "ALIGN_RATE", args.alerts.errors_per_minute / 60),
        }
        return [
            gcp.monitoring.AlertPolicy(
                f"{name}-alert-{key}", project=base.project, display_name=f"{args.endpoint_name}: {title}",
                combiner="OR", severity="ERROR", user_labels=args.labels,
                conditions=[gcp.monitoring.AlertPolicyConditionArgs(
                    display_name=f"{title} above {threshold:g}",
                    condition_threshold=gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
                        filter=pulumi.Output.format('{0} AND metric.type = "{1}"', filter_base, metric),
                        aggregations=[gcp.monitoring.AlertPolicyConditionConditionThresholdAggregationArgs(
                            alignment_period="60s", per_series_aligner=aligner)],
                        comparison="COMPARISON_GT", threshold_value=threshold, duration="300s",
                    ),
                )],
                documentation=gcp.monitoring.AlertPolicyDocumentationArgs(
                    content=f"Vertex AI endpoint {args.endpoint_name} ({args.model.id}): {title} is above "
                            f"{threshold:g}.",
                    mime_type="text/markdown"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
            )
            for key, (title, metric, aligner, threshold) in alerts.items()
        ]


    def _request_logging(self, name: str, args: VertexEndpointArgs) -> gcp.bigquery.Dataset:
        """A BigQuery dataset in the region, and the endpoint's sampled request-response logging pointed at it."""
        base = args.foundation
        dataset = gcp.bigquery.Dataset(
            f"{name}-request-log", project=base.project, location=base.region,
            dataset_id=f"{args.endpoint_name}_requests".replace("-", "_"),
            description=f"Sampled requests and responses of Vertex AI endpoint {args.endpoint_name}",
            default_table_expiration_ms=REQUEST_LOG_RETENTION_DAYS * 86_400_000, delete_contents_on_destroy=False,
            # The logged prompts are encrypted with the environment's key.
            default_encryption_configuration=gcp.bigquery.DatasetDefaultEncryptionConfigurationArgs(
                kms_key_name=base.kms_key_id),
            labels=args.labels,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*args.depends_on, *base.kms_grants]),
        )
        url = pulumi.Output.format("https://{0}-aiplatform.googleapis.com/v1/{1}"
                                   "?updateMask=predict_request_response_logging_config", base.region,
                                   self.resource_name)
        rate = args.request_log_sampling_rate
        destination = pulumi.Output.format("bq://{0}.{1}", base.project, dataset.dataset_id)
        body = lambda enabled: pulumi.Output.json_dumps({"predictRequestResponseLoggingConfig": {  # noqa: E731
            "enabled": enabled, "samplingRate": rate, "bigqueryDestination": {"outputUri": destination}}})
        command.local.Command(
            f"{name}-request-logging",
            create=PATCH_ENDPOINT, update=PATCH_ENDPOINT,
            # On destroy, switch logging off before the dataset goes.
            delete=PATCH_ENDPOINT.replace('"$BODY"', '"$OFF"'),
            environment={"URL": url, "BODY": body(True), "OFF": body(False)},
            triggers=[self.endpoint_id, rate, dataset.id],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.deployment, dataset]),
        )
        return dataset


def _psc_address(config: gcp.vertex.outputs.AiEndpointWithModelGardenDeploymentEndpointConfig | None) -> str:
    """The address of the forwarding rule that Private Service Connect automation made for a private endpoint."""
    psc = config.private_service_connect_config if config is not None else None
    automation = psc.psc_automation_configs if psc is not None else None
    if automation is None or automation.ip_address is None:
        raise ValueError("the private endpoint reports no Private Service Connect address")
    return automation.ip_address


def _dashboard(display_name: str, endpoint_id: str) -> dict:
    base = f'resource.type="aiplatform.googleapis.com/Endpoint" resource.label.endpoint_id="{endpoint_id}"'

    def chart(title: str, metric: str, aligner: str) -> dict:
        return {"title": title, "xyChart": {"dataSets": [{"timeSeriesQuery": {"timeSeriesFilter": {
            "filter": f'{base} metric.type="aiplatform.googleapis.com/prediction/online/{metric}"',
            "aggregation": {"alignmentPeriod": "60s", "perSeriesAligner": aligner}}}, "plotType": "LINE"}]}}

    return {"displayName": f"{display_name} (Vertex AI)", "mosaicLayout": {"columns": 12, "tiles": [
        {"xPos": 0, "yPos": 0, "width": 6, "height": 4,
         "widget": chart("Predictions per second", "prediction_count", "ALIGN_RATE")},
        {"xPos": 6, "yPos": 0, "width": 6, "height": 4,
         "widget": chart("Latency p99 (ms)", "prediction_latencies", "ALIGN_PERCENTILE_99")},
        {"xPos": 0, "yPos": 4, "width": 6, "height": 4,
         "widget": chart("Errors per second", "error_count", "ALIGN_RATE")},
        {"xPos": 6, "yPos": 4, "width": 6, "height": 4,
         "widget": chart("GPU duty cycle (%)", "accelerator/duty_cycle", "ALIGN_MEAN")},
        {"xPos": 0, "yPos": 8, "width": 6, "height": 4, "widget": chart("Replicas", "replicas", "ALIGN_MEAN")},
    ]}}
