from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal, NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from ..catalog.engines import ENGINES, Flag, lora_flags, vllm_flags
from ..catalog.images import ami_for_cuda, ecr_repository_arn, inference_ami
from ..catalog.models import ModelFacts
from ..catalog.sagemaker_instances import SageMakerInstance
from ..catalog.serving import SAGEMAKER_TIMEOUT_BOUNDS_S
from ..schema import ModelSpec
from ..serving_image import adapter_environment
from ..sizing import GPU_MEMORY_UTILIZATION, startup_timeout_seconds
from ..weights import Location
from .foundation import AwsFoundation
from .iam import PrefixRead, SageMakerExecutionRole, SageMakerExecutionRoleArgs, owned_reads
from .registry import OwnImage
from .staging import staged_prefix
from .storage import DATA_CAPTURE_PREFIX

VARIANT = "AllTraffic"
# Where SageMaker mounts ModelDataSource content in the container.
MODEL_DIR = "/opt/ml/model"
# Where it mounts each AdditionalModelDataSource: <ADAPTERS_DIR>/<ChannelName>/ (pulumi-aws 7.x,
# ModelPrimaryContainerAdditionalModelDataSource.channel_name, after the CreateModel API; read 2026-12-07). Each LoRA
# adapter is one channel named after it (ChannelName takes [A-Za-z0-9.-_]{1,64}, which every adapter name is).
ADAPTERS_DIR = "/opt/ml/additional-model-data-sources"
TRAFFIC_ROUTING = {"all-at-once": "ALL_AT_ONCE", "canary": "CANARY", "linear": "LINEAR"}


@dataclass(frozen=True)
class VariantScaling:
    """The variant's instance count: fixed, or target tracking between the bounds (Application Auto Scaling)."""

    min_replicas: int
    """Instances at creation and the scaling floor."""
    max_replicas: int
    """Above `min_replicas`: target tracking scales between them; equal: a fixed count, no scaling resources."""
    invocations_per_instance: int
    """The goal: SageMakerVariantInvocationsPerInstance, invocations per instance per minute."""
    scale_in_cooldown_seconds: int
    scale_out_cooldown_seconds: int


@dataclass(frozen=True)
class BlueGreenUpdate:
    """How an update moves traffic to the new fleet, which comes up beside the old one."""

    traffic_routing: Literal["all-at-once", "canary", "linear"]
    step_percent: int
    """Canary size, or linear step, as a percentage of capacity."""
    wait_seconds: int
    """Bake time after each traffic shift, watching the rollback alarms."""
    termination_wait_seconds: int


@dataclass(frozen=True)
class AlarmThresholds:
    """What the alarms (which also roll deployments back) fire above."""

    p99_latency_ms: int
    error_rate_5xx_per_minute: int
    gpu_memory_percent: int
    """Per GPU: the alarm multiplies it by the instance's GPUs (the metric is summed over them)."""


@dataclass(frozen=True)
class SageMakerEndpointArgs:
    endpoint_name: str
    """Fixed, not auto-named: alarms, log group and IAM name it before the endpoint exists."""
    foundation: AwsFoundation
    model: ModelSpec
    facts: ModelFacts
    instance: SageMakerInstance
    image_uri: str
    """The engine's managed image; with `own_image`, ours serves instead."""
    hf_token: pulumi.Output[str] | None
    tags: dict[str, str]
    network_isolation: bool
    """No network for the container at all (weights from S3 only)."""
    scaling: VariantScaling
    deployment: BlueGreenUpdate
    alarms: AlarmThresholds
    capture_percent: int | None
    """Share of requests whose input and output are stored in the bucket under data-capture/; None: no capture."""
    own_image: OwnImage | None = None
    """Our image (the foundation's, containers/vllm) in place of `image_uri`."""
    startup_timeout_seconds: int | None = None
    """ContainerStartupHealthCheckTimeoutInSeconds; None: sized from the model, within SageMaker's bounds."""
    log_retention_days: int = 30
    weights_ready: list[pulumi.Resource] = field(default_factory=list)
    """What puts weights in the stack's bucket (the staging jobs of a `source: s3` model and of Hub adapters): the
    model waits for them."""


def weights_prefix(model: ModelSpec) -> str:
    """Bucket prefix holding a `source: s3` model's weights at a revision: models/<owner>/<name>/<revision>."""
    assert model.revision is not None  # required with source s3 (the config says so)
    return staged_prefix(model.id, model.revision)


def _owned_uri(location: Location) -> str:
    return f"s3://{location.bucket}/{location.object_prefix}"


def model_data_uri(args: SageMakerEndpointArgs) -> pulumi.Input[str] | None:
    """Where SageMaker copies the model's weights from into /opt/ml/model before the container starts: the stack's
    bucket (staged from the Hub), or the team's own prefix (a fine-tuned checkpoint); None: the container
    downloads from the Hub itself."""
    location = args.model.location
    if location.scheme == "stack":
        return pulumi.Output.format("s3://{0}/{1}/", args.foundation.bucket_name, weights_prefix(args.model))
    return _owned_uri(location) if location.scheme == "s3" else None


def adapter_data_uris(args: SageMakerEndpointArgs) -> dict[str, pulumi.Input[str]]:
    """Each LoRA adapter's S3 folder, by name: the team's own prefix, or, for an adapter from the Hub, the stack's
    bucket where `selfhost stage` put its pinned revision (SageMaker mounts S3 only: the container needs no
    network and no token for them)."""
    uris: dict[str, pulumi.Input[str]] = {}
    for a in args.model.adapters:
        if a.location.scheme == "s3":
            uris[a.name] = _owned_uri(a.location)
        else:  # hub (the kind refuses the stack's bucket for adapters: it names no prefix)
            assert a.id is not None and a.revision is not None  # required for Hub adapters
            uris[a.name] = pulumi.Output.format("s3://{0}/{1}/", args.foundation.bucket_name,
                                                staged_prefix(a.id, a.revision))
    return uris


def adapter_paths(model: ModelSpec) -> list[tuple[str, str]]:
    """Each adapter's folder in the container: its channel's mount."""
    return [(a.name, f"{ADAPTERS_DIR}/{a.name}") for a in model.adapters]


def weight_reads(args: SageMakerEndpointArgs) -> tuple[PrefixRead, ...]:
    """What the execution role reads: the prefixes staged in the stack's bucket (the model's, Hub adapters'), and
    exactly the model's and adapters' prefixes in the team's own buckets."""
    model = args.model
    staged = [weights_prefix(model)] if model.location.scheme == "stack" else []
    staged += [staged_prefix(a.id, a.revision) for a in model.adapters
               if a.location.scheme == "hub" and a.id is not None and a.revision is not None]
    # "ModelWeights": the Sids the stack's bucket has always had, whatever it holds for this endpoint.
    reads = [PrefixRead("ModelWeights", args.foundation.bucket_arn, tuple(dict.fromkeys(staged)))] if staged else []
    return (*reads, *owned_reads([model.location, *(a.location for a in model.adapters)]))


def sm_vllm_environment(flags: list[Flag]) -> dict[str, str]:
    """vLLM flags as the HF vLLM DLC's SM_VLLM_<FLAG> variables. Its entrypoint turns each into `--<flag>` followed
    by the value, unless empty, as one argument (aws/deep-learning-containers huggingface/vllm/build_artifacts/
    sagemaker_entrypoint.sh, read 2026-12-07): a switch is an empty value, and a flag takes one value at most."""
    env: dict[str, str] = {}
    for flag, value in flags:
        if isinstance(value, tuple):
            if len(value) != 1:
                raise ValueError(f"the vLLM DLC passes {flag} one value, not {len(value)}: {value}")
            value = value[0]
        env["SM_VLLM_" + flag.removeprefix("--").replace("-", "_").upper()] = value or ""
    return env


def container_environment(args: SageMakerEndpointArgs) -> dict[str, pulumi.Input[str]]:
    """The engine's own variables for model, revision, context, GPUs, quantization and token; with our image,
    our adapter's variables, which pass the same settings to the engine as flags."""
    model = args.model
    engine = ENGINES[model.engine]
    names = engine.env
    assert names is not None  # SageMaker targets serve only engines with a SageMaker image (TargetKind.engines)
    # Weights SageMaker put in /opt/ml/model (the stack's bucket, the team's own), or the Hub's.
    from_s3 = model.location.scheme != "hub"
    adapters = adapter_paths(model)
    if args.own_image is not None:
        # Our adapter adds --enable-lora and --lora-modules itself, from SELFHOST_ADAPTERS.
        lora = lora_flags(model.lora_slots, model.max_adapter_rank) if adapters else None
        flags = vllm_flags(model.id, None if from_s3 else model.revision, model.max_context,
                           args.instance.gpu_count, model.quantization, GPU_MEMORY_UTILIZATION,
                           model.kv_cache_dtype, lora=lora)
        env: dict[str, pulumi.Input[str]] = dict(adapter_environment(MODEL_DIR if from_s3 else model.id, flags,
                                                                     adapters))
        if model.location.owned:
            # Served under its name (what the router and callers send), not its folder's ("model").
            env["SELFHOST_MODEL_NAME"] = model.id
        if args.hf_token is not None and not from_s3:
            env["HF_TOKEN"] = args.hf_token
        return env
    env = dict(names.fixed)
    env[names.model] = MODEL_DIR if from_s3 else model.id
    if not from_s3 and model.revision is not None:
        env[names.revision] = model.revision
    env[names.max_context] = str(args.model.max_context)
    if names.max_input:
        env[names.max_input] = str(args.model.max_context - 1)
    env[names.gpus] = str(args.instance.gpu_count)
    if quant := engine.quantization[args.model.quantization]:
        env[names.quantization] = quant
    if args.model.kv_cache_dtype != "auto":
        # The vLLM DLC turns SM_VLLM_<FLAG> into --<flag> (the only engine that takes kvCacheDtype).
        env["SM_VLLM_KV_CACHE_DTYPE"] = args.model.kv_cache_dtype
    if engine.name == "vllm" and model.location.owned:
        env["SM_VLLM_SERVED_MODEL_NAME"] = model.id  # not "/opt/ml/model": what the router and callers send
    if adapters:
        # One adapter at most on the DLC (TargetKind.adapters_refused says why): its --lora-modules takes one.
        env.update(sm_vllm_environment(lora_flags(model.lora_slots, model.max_adapter_rank, tuple(adapters))))
    # Only a container that downloads from the Hub needs the token; weights from S3 need none.
    if args.hf_token is not None and not from_s3:
        env[names.token] = args.hf_token
    return env


class _AlarmSpec(TypedDict):
    """The metric and threshold of one alarm (the MetricAlarm arguments that differ between alarms)."""

    namespace: str
    metric_name: str
    threshold: float
    statistic: NotRequired[str]
    extended_statistic: NotRequired[str]


class SageMakerEndpoint(pulumi.ComponentResource):
    """One model on a SageMaker real-time endpoint in private subnets.

    Model, endpoint configuration (sized start-up timeout, data capture, KMS where the instance allows),
    endpoint with blue/green updates that roll back on alarms, target-tracking autoscaling, alarms, dashboard,
    and an execution role scoped to exactly what this endpoint touches.
    """

    def __init__(self, name: str, args: SageMakerEndpointArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:aws:SageMakerEndpoint", name, None, opts)
        ep = args.endpoint_name
        own = args.own_image
        image: pulumi.Input[str] = own.ref if own else args.image_uri
        capture_prefix = f"{DATA_CAPTURE_PREFIX}/{ep}"

        self.security_group = self._security_group(name, args)
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs", name=f"/aws/sagemaker/Endpoints/{ep}", retention_in_days=args.log_retention_days,
            kms_key_id=args.foundation.kms_key_arn, tags=args.tags, opts=pulumi.ResourceOptions(parent=self),
        )
        self.role = self._execution_role(name, args, capture_prefix)
        self.model = self._model(name, args, image)
        self.startup_timeout_seconds = args.startup_timeout_seconds or startup_timeout_seconds(
            args.facts, args.model.quantization, args.model.location.scheme,
            SAGEMAKER_TIMEOUT_BOUNDS_S)
        self.config = self._endpoint_config(name, args, capture_prefix)
        self.alarms = self._alarms(name, args)
        self.endpoint = self._endpoint(name, args)
        self._autoscaling(name, args.scaling, args.tags)
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard", dashboard_name=ep, dashboard_body=json.dumps(_dashboard(ep, args.foundation.region)),
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.endpoint_name = self.endpoint.name
        self.endpoint_arn = self.endpoint.arn
        self.invoke_url = pulumi.Output.format(
            "https://runtime.sagemaker.{0}.amazonaws.com/endpoints/{1}/invocations", args.foundation.region,
            self.endpoint.name)
        self.image_uri = image
        self.register_outputs({
            "endpointName": self.endpoint_name,
            "endpointArn": self.endpoint_arn,
            "invokeUrl": self.invoke_url,
            "roleArn": self.role.arn,
            "image": self.image_uri,
        })

    def _security_group(self, name: str, args: SageMakerEndpointArgs) -> aws.ec2.SecurityGroup:
        """HTTPS out only: to the VPC's interface endpoints and the S3 gateway, and through NAT to the Hub when
        the container downloads from it."""
        egress = [aws.ec2.SecurityGroupEgressArgs(protocol="tcp", from_port=443, to_port=443,
                                                  cidr_blocks=[args.foundation.vpc_cidr],
                                                  description="AWS service endpoints"),
                  aws.ec2.SecurityGroupEgressArgs(protocol="tcp", from_port=443, to_port=443,
                                                  prefix_list_ids=[args.foundation.s3_prefix_list_id],
                                                  description="S3 gateway")]
        if args.model.location.scheme == "hub":
            egress.append(aws.ec2.SecurityGroupEgressArgs(protocol="tcp", from_port=443, to_port=443,
                                                          cidr_blocks=["0.0.0.0/0"],
                                                          description="Hugging Face Hub through NAT"))
        return aws.ec2.SecurityGroup(
            f"{name}-sg", vpc_id=args.foundation.vpc_id,
            description=f"SageMaker endpoint {args.endpoint_name}: HTTPS egress only",
            egress=egress, tags={**args.tags, "Name": f"{name}-sg"}, opts=pulumi.ResourceOptions(parent=self),
        )

    def _execution_role(self, name: str, args: SageMakerEndpointArgs, capture_prefix: str) -> SageMakerExecutionRole:
        """The role SageMaker runs the endpoint as, scoped to exactly what this endpoint reads and writes."""
        from_hub = args.model.location.scheme == "hub"
        own = args.own_image
        return SageMakerExecutionRole(
            f"{name}-execution",
            SageMakerExecutionRoleArgs(
                region=args.foundation.region, account_id=args.foundation.account_id,
                bucket_arn=args.foundation.bucket_arn, reads=weight_reads(args),
                write_prefix=capture_prefix if args.capture_percent is not None else None,
                ecr_repository_arn=own.repository_arn if own else ecr_repository_arn(args.image_uri),
                log_group_arn=self.log_group.arn,
                kms_key_arn=args.foundation.kms_key_arn,
                secret_arn=args.foundation.hf_token_secret_arn if from_hub else None,
                subnet_ids=args.foundation.subnet_ids, security_group_id=self.security_group.id, tags=args.tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _model(self, name: str, args: SageMakerEndpointArgs, image: pulumi.Input[str]) -> aws.sagemaker.Model:
        """The container (image, engine environment, weights from S3: the model's in /opt/ml/model, each LoRA
        adapter's as a channel of its own) in the private subnets. Uncompressed prefixes: SageMaker copies the files
        as they are, no archive to build or unpack."""
        model_data = None
        if (uri := model_data_uri(args)) is not None:
            model_data = aws.sagemaker.ModelPrimaryContainerModelDataSourceArgs(s3_data_sources=[
                aws.sagemaker.ModelPrimaryContainerModelDataSourceS3DataSourceArgs(
                    s3_uri=uri, s3_data_type="S3Prefix", compression_type="None")])
        channels = [aws.sagemaker.ModelPrimaryContainerAdditionalModelDataSourceArgs(
            channel_name=adapter, s3_data_sources=[
                aws.sagemaker.ModelPrimaryContainerAdditionalModelDataSourceS3DataSourceArgs(
                    s3_uri=uri, s3_data_type="S3Prefix", compression_type="None")])
            for adapter, uri in adapter_data_uris(args).items()]
        return aws.sagemaker.Model(
            f"{name}-model",
            execution_role_arn=self.role.arn,
            primary_container=aws.sagemaker.ModelPrimaryContainerArgs(
                image=image, environment=container_environment(args), model_data_source=model_data,
                additional_model_data_sources=channels or None,
            ),
            vpc_config=aws.sagemaker.ModelVpcConfigArgs(subnets=args.foundation.subnet_ids,
                                                        security_group_ids=[self.security_group.id]),
            enable_network_isolation=args.network_isolation,
            tags=args.tags,
            # The role's policy must exist before SageMaker validates the image and VPC access with it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.role, *args.weights_ready]),
        )

    def _endpoint_config(self, name: str, args: SageMakerEndpointArgs,
                         capture_prefix: str) -> aws.sagemaker.EndpointConfiguration:
        """One production variant with the sized start-up timeout, data capture, KMS where the instance allows."""
        own = args.own_image
        # SageMaker downloads the model's or the adapters' weights before the container starts.
        from_s3 = args.model.location.scheme != "hub" or bool(args.model.adapters)
        return aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            production_variants=[aws.sagemaker.EndpointConfigurationProductionVariantArgs(
                variant_name=VARIANT,
                model_name=self.model.name,
                instance_type=args.instance.instance_type,
                initial_instance_count=args.scaling.min_replicas,
                container_startup_health_check_timeout_in_seconds=self.startup_timeout_seconds,
                model_data_download_timeout_in_seconds=self.startup_timeout_seconds if from_s3 else None,
                # Pin a host driver new enough for the image's CUDA instead of the family's default.
                inference_ami_version=ami_for_cuda(own.spec.cuda) if own else inference_ami(args.image_uri),
            )],
            # Instance types with local NVMe storage encrypt it in hardware; SageMaker rejects a KmsKeyId there.
            kms_key_arn=None if args.instance.has_instance_storage else args.foundation.kms_key_arn,
            data_capture_config=aws.sagemaker.EndpointConfigurationDataCaptureConfigArgs(
                enable_capture=True,
                initial_sampling_percentage=args.capture_percent,
                destination_s3_uri=pulumi.Output.format("s3://{0}/{1}", args.foundation.bucket_name, capture_prefix),
                kms_key_id=args.foundation.kms_key_arn,
                capture_options=[aws.sagemaker.EndpointConfigurationDataCaptureConfigCaptureOptionArgs(capture_mode=m)
                                 for m in ("Input", "Output")],
                capture_content_type_header=aws.sagemaker.EndpointConfigurationDataCaptureConfigCaptureContentTypeHeaderArgs(
                    json_content_types=["application/json"]),
            ) if args.capture_percent is not None else None,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _alarms(self, name: str, args: SageMakerEndpointArgs) -> list[aws.cloudwatch.MetricAlarm]:
        """Latency, 5xx errors and GPU memory of the variant; deployments roll back on any of them."""
        ep, thresholds = args.endpoint_name, args.alarms
        dims = {"EndpointName": ep, "VariantName": VARIANT}
        alarm_specs = {
            # ModelLatency is in microseconds.
            "p99-latency": _AlarmSpec(namespace="AWS/SageMaker", metric_name="ModelLatency", extended_statistic="p99",
                                      threshold=thresholds.p99_latency_ms * 1000),
            "5xx-errors": _AlarmSpec(namespace="AWS/SageMaker", metric_name="Invocation5XXErrors", statistic="Sum",
                                     threshold=thresholds.error_rate_5xx_per_minute),
            # GPUMemoryUtilization runs 0-100 per GPU, summed over the instance's GPUs.
            "gpu-memory": _AlarmSpec(namespace="/aws/sagemaker/Endpoints", metric_name="GPUMemoryUtilization",
                                     statistic="Average",
                                     threshold=thresholds.gpu_memory_percent * args.instance.gpu_count),
        }
        return [
            aws.cloudwatch.MetricAlarm(
                f"{name}-alarm-{role}", name=f"{ep}-{role}",
                alarm_description=f"{ep}: {spec['metric_name']} above {spec['threshold']}; rolls back deployments",
                comparison_operator="GreaterThanThreshold", period=60, evaluation_periods=5, datapoints_to_alarm=3,
                treat_missing_data="notBreaching", dimensions=dims, tags=args.tags,
                opts=pulumi.ResourceOptions(parent=self), **spec,
            )
            for role, spec in alarm_specs.items()
        ]

    def _endpoint(self, name: str, args: SageMakerEndpointArgs) -> aws.sagemaker.Endpoint:
        """The endpoint, updated blue/green: the new fleet comes up beside the old, traffic moves as configured,
        and an alarm during the bake time rolls it back."""
        deploy = args.deployment
        routing = TRAFFIC_ROUTING[deploy.traffic_routing]
        # Canary size and linear step are the same percentage of capacity, each in its own argument type.
        canary = aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationCanarySizeArgs(
            type="CAPACITY_PERCENT", value=deploy.step_percent) if routing == "CANARY" else None
        linear = (
            aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationLinearStepSizeArgs(
                type="CAPACITY_PERCENT", value=deploy.step_percent) if routing == "LINEAR" else None)
        return aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            name=args.endpoint_name,
            endpoint_config_name=self.config.name,
            deployment_config=aws.sagemaker.EndpointDeploymentConfigArgs(
                blue_green_update_policy=aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyArgs(
                    traffic_routing_configuration=aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationArgs(
                        type=routing, wait_interval_in_seconds=deploy.wait_seconds,
                        canary_size=canary, linear_step_size=linear,
                    ),
                    termination_wait_in_seconds=deploy.termination_wait_seconds,
                    # Room for a full cold start of the new fleet plus the bake time.
                    maximum_execution_timeout_in_seconds=min(
                        max(600, 2 * self.startup_timeout_seconds + deploy.wait_seconds), 14400),
                ),
                auto_rollback_configuration=aws.sagemaker.EndpointDeploymentConfigAutoRollbackConfigurationArgs(
                    alarms=[aws.sagemaker.EndpointDeploymentConfigAutoRollbackConfigurationAlarmArgs(alarm_name=a.name)
                            for a in self.alarms]),
            ),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.log_group]),
        )

    def _autoscaling(self, name: str, scaling: VariantScaling, tags: dict[str, str]) -> None:
        """Target tracking on invocations per instance, when the bounds leave room to scale."""
        if scaling.max_replicas <= scaling.min_replicas:
            return
        child = pulumi.ResourceOptions(parent=self)
        scaling_target = aws.appautoscaling.Target(
            f"{name}-scaling-target",
            service_namespace="sagemaker",
            resource_id=pulumi.Output.format("endpoint/{0}/variant/{1}", self.endpoint.name, VARIANT),
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=scaling.min_replicas, max_capacity=scaling.max_replicas,
            tags=tags, opts=child,
        )
        aws.appautoscaling.Policy(
            f"{name}-scaling-policy",
            policy_type="TargetTrackingScaling",
            service_namespace=scaling_target.service_namespace,
            resource_id=scaling_target.resource_id,
            scalable_dimension=scaling_target.scalable_dimension,
            target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                target_value=scaling.invocations_per_instance,
                predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                    predefined_metric_type="SageMakerVariantInvocationsPerInstance"),
                scale_in_cooldown=scaling.scale_in_cooldown_seconds,
                scale_out_cooldown=scaling.scale_out_cooldown_seconds,
            ),
            opts=child,
        )


def _dashboard(endpoint: str, region: str) -> dict:
    sm = ["AWS/SageMaker", "EndpointName", endpoint, "VariantName", VARIANT]
    host = ["/aws/sagemaker/Endpoints", "EndpointName", endpoint, "VariantName", VARIANT]
    widget = lambda title, metrics, stat="Sum", x=0, y=0: {  # noqa: E731
        "type": "metric", "x": x, "y": y, "width": 12, "height": 6,
        "properties": {"title": title, "region": region, "stat": stat, "period": 60, "view": "timeSeries",
                       "metrics": metrics},
    }
    return {"widgets": [
        widget("Invocations and errors", [[*sm[:1], "Invocations", *sm[1:]], [*sm[:1], "Invocation4XXErrors", *sm[1:]],
                                          [*sm[:1], "Invocation5XXErrors", *sm[1:]]]),
        widget("Model latency (microseconds, p50 / p99)",
               [[*sm[:1], "ModelLatency", *sm[1:], {"stat": "p50"}],
                [*sm[:1], "ModelLatency", *sm[1:], {"stat": "p99"}]],
               stat="p50", x=12),
        widget("GPU utilization and memory (% x GPUs)",
               [[*host[:1], "GPUUtilization", *host[1:]], [*host[:1], "GPUMemoryUtilization", *host[1:]]],
               stat="Average", y=6),
        widget("Host CPU and memory (%)",
               [[*host[:1], "CPUUtilization", *host[1:]], [*host[:1], "MemoryUtilization", *host[1:]]],
               stat="Average", x=12, y=6),
    ]}
