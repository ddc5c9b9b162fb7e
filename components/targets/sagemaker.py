"""SageMaker real-time endpoints: the `sagemaker` target kind.

Its config model, its checks against the SageMaker catalogs, its hosts for `selfhost size`, its cost rules,
and its declaration (components/aws/sagemaker.py, imported only when a stack declares one).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from ..catalog.engines import ENGINES, FP8_ARCHS
from ..catalog.images import image_regions
from ..catalog.models import MODELS, facts_of
from ..catalog.sagemaker_instances import instances_in, known_regions
from ..cost_rules import (
    CAPTURE_BYTES_PER_TOKEN,
    Ctx,
    Estimate,
    LineItem,
    Plan,
    Resource,
    Serving,
    flat,
    lora_of,
    monthly,
    plan_replicas,
    replica_hours,
    serving_dtypes,
)
from ..quotas import QuotaCtx, QuotaItem
from ..schema import PROJECT, UNKNOWN, EnvironmentSpec, ModelSpec, Problem, Slug, Strict, Usage, no_fp8
from ..sizing import Hardware, weights_bytes
from .aws import AWS
from .base import Endpoint, HostShape, Limitation, TargetKind, target_problem

if TYPE_CHECKING:
    import pulumi

    from ..sizing_options import Host, Lookup


# A model's container takes at most 5 AdditionalModelDataSources (CreateModel API reference, ContainerDefinition
# "AdditionalModelDataSources: Array Members: Minimum number of 0 items. Maximum number of 5 items", read
# 2026-12-07): each LoRA adapter is one, so a SageMaker target serves at most 5.
MAX_ADAPTER_CHANNELS = 5
# The HF vLLM DLC's entrypoint turns each SM_VLLM_<FLAG> into `--<flag> <value>` with the value as one argument
# (aws/deep-learning-containers huggingface/vllm/build_artifacts/sagemaker_entrypoint.sh, read 2026-12-07), and
# vLLM's --lora-modules reads each argument as one `name=path` (vllm/entrypoints/openai/cli_args.py
# LoRAParserAction: `name, path = item.split("=")`): one adapter passes, two in one value break the parse.
DLC_MAX_ADAPTERS = 1
DLC_ADAPTERS_REFUSED = (
    "the vLLM DLC passes SM_VLLM_LORA_MODULES to vLLM's --lora-modules as one argument, which vLLM reads as one "
    "`name=path` (its sagemaker_entrypoint.sh; vLLM's LoRAParserAction): one adapter at most; serve more with our "
    "image (image: selfhost)")
# The prefix `selfhost stage` writes a pinned Hub revision to in the stack's bucket (aws.staging.staged_prefix): a
# model whose S3 weights have this layout keeps them in the stack's bucket, which the stack pays for.
_STAGED_URI = re.compile(r"^s3://[^/]+/models/[^/]+/[^/]+/[0-9a-f]{40}/$")


def _in_stack_bucket(uri: object) -> bool:
    """Whether a model data URI is the stack's bucket's: computed from the bucket, so unknown at declaration (the
    in-program estimate) and in the staged layout once previewed; a team's own source is a literal of its own."""
    return uri == UNKNOWN or bool(_STAGED_URI.match(str(uri)))


class SageMakerScaling(Strict):
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=1, ge=1, le=100)
    target_invocations_per_instance: int = Field(default=20, ge=1)
    """Target-tracking goal: invocations per instance per minute (SageMakerVariantInvocationsPerInstance)."""
    scale_in_cooldown_seconds: int = Field(default=600, ge=0)
    scale_out_cooldown_seconds: int = Field(default=120, ge=0)


class DataCapture(Strict):
    enabled: bool = True
    sampling_percent: int = Field(default=10, ge=1, le=100)
    """Share of requests whose input and output are stored in the artifacts bucket under data-capture/."""


class Deployment(Strict):
    """Blue/green update policy: new instances come up beside the old before traffic moves."""

    traffic_routing: Literal["all-at-once", "canary", "linear"] = "all-at-once"
    step_percent: int = Field(default=25, ge=1, le=50)
    """Canary size, or linear step, as a percentage of capacity."""
    wait_seconds: int = Field(default=300, ge=0, le=3600)
    """Bake time after each traffic shift, watching the rollback alarms."""
    termination_wait_seconds: int = Field(default=300, ge=0, le=3600)


class SageMakerAlarms(Strict):
    p99_latency_ms: int = Field(default=20_000, gt=0)
    """Model latency p99 threshold: LLM responses take seconds, so this is whole-response time."""
    error_rate_5xx_per_minute: int = Field(default=5, ge=1)
    gpu_memory_percent: int = Field(default=95, ge=1, le=100)


class SageMakerTarget(Strict):
    kind: Literal["sagemaker"]
    name: Slug
    model: str
    """The `name` of an entry in `models`."""
    instance_type: str
    concurrency: int = Field(default=1, ge=1, le=1024)
    """Sequences at full context that must fit in GPU memory at once (KV cache sizing)."""
    scaling: SageMakerScaling = SageMakerScaling()
    data_capture: DataCapture = DataCapture()
    deployment: Deployment = Deployment()
    alarms: SageMakerAlarms = SageMakerAlarms()
    network_isolation: bool | None = None
    """Default: on when the model comes from S3 (the stack's bucket or the team's own: the container then needs no
    network; LoRA adapters come from S3 too), off for `hub`."""
    image: Literal["managed", "selfhost"] = "managed"
    """`managed`: the AWS Deep Learning Container for the engine. `selfhost`: our image (containers/vllm: the
    engine behind our adapter, with its usage log and metrics), built and pushed to ECR by `pulumi up`."""
    startup_timeout_seconds: int | None = Field(default=None, ge=60, le=3600)
    """Override the sized ContainerStartupHealthCheckTimeoutInSeconds."""

    def isolation(self, model: ModelSpec) -> bool:
        return self.network_isolation if self.network_isolation is not None else model.location.scheme != "hub"


def _endpoint_config(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
    """Instance-hours of each production variant, at the replicas the usage needs between the scaling bounds."""
    items = []
    scaling = ctx.sibling(r, "aws:appautoscaling/target:Target")
    model_id = (r.inputs.get("tags") or {}).get("selfhost-model")
    for variant in r.inputs.get("productionVariants", []):
        itype = variant["instanceType"]
        count = int(variant.get("initialInstanceCount", 1))
        low, high = (int(scaling.inputs["minCapacity"]), int(scaling.inputs["maxCapacity"])) if scaling \
            else (count, count)
        host = instances_in(ctx.regions.get("aws", "")).get(itype)
        facts = facts_of(r.inputs.get("tags"))
        quantization, kv_bytes = serving_dtypes(r.inputs.get("tags"))
        plan = Plan(low, low, None) if host is None else plan_replicas(
            facts, Hardware.of_gpu(host.gpu, host.gpu_count, host.total_gpu_memory_gib), low, high, ctx.usage,
            quantization, kv_bytes=kv_bytes, lora=lora_of(r.inputs.get("tags")))
        item = ctx.item(r, "aws", "sagemaker-hosting", itype, "instance-hour",
                        replica_hours((low, plan.expected, high), ctx.usage),
                        f"{itype} x {low}..{high} ({model_id or 'model'})")
        est.serving.append(Serving(r.name, model_id or "?", (low, plan.expected, high), plan, item.unit_usd))
        items.append(item)
    return items


def _alarm(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
    """CloudWatch bills an alarm per metric it watches: a metric-math alarm (metricQueries) pays for each metric in
    its expression (CloudWatch pricing, "Alarms": metric math alarms are charged per metric)."""
    queries = r.inputs.get("metricQueries") or []
    metrics = sum(1 for q in queries if isinstance(q, dict) and q.get("metric")) or 1
    return [ctx.item(r, "aws", "cloudwatch", "alarm", "alarm metric", flat(metrics),
                     "metric alarm" if metrics == 1 else f"metric-math alarm over {metrics} metrics")]


def _quota(r: Resource, ctx: QuotaCtx) -> list[QuotaItem]:
    """Instances of each variant's type, between the autoscaling bounds. A blue/green update (every deployment
    policy here) brings up a whole new fleet beside the old before it shifts traffic: twice the maximum."""
    target = ctx.sibling(r, "aws:appautoscaling/target:Target")
    endpoint = ctx.sibling(r, "aws:sagemaker/endpoint:Endpoint")
    policy = ((endpoint.inputs if endpoint else {}).get("deploymentConfig") or {})
    out: list[QuotaItem] = []
    for variant in r.inputs.get("productionVariants") or []:
        if not variant.get("instanceType"):
            continue  # serverless: no instances
        count = int(variant.get("initialInstanceCount", 1))
        low, high = ((int(target.inputs.get("minCapacity", count)), int(target.inputs.get("maxCapacity", count)))
                     if target else (count, count))
        rolling = (policy.get("rollingUpdatePolicy") or {}).get("maximumBatchSize") or {}
        update = (2 * high if "blueGreenUpdatePolicy" in policy else
                  high + (math.ceil(high * rolling["value"] / 100) if rolling.get("type") == "CAPACITY_PERCENT"
                          else int(rolling.get("value", 0))) if rolling else high)
        out.append(ctx.need(f"sagemaker-endpoint:{variant['instanceType']}", r, low, high, update))
    return out


class SageMaker(TargetKind):
    kind = "sagemaker"
    config = SageMakerTarget
    platform = "aws"
    weight_schemes = ("hub", "stack", "s3")
    stages_hub_adapters = True
    summary = "SageMaker real-time endpoint (ml.* GPU instances)"
    engines = ("vllm", "tgi", "lmi")
    needs_egress_for_hub = True
    limitations = (
        Limitation("scaling.minReplicas", lambda t: t.scaling.min_replicas == 0, lambda t: 0,
                   "variant-based SageMaker endpoints cannot scale to zero (only inference-component endpoints "
                   "can, which the AWS provider does not offer)", "1 or more"),
    )
    cost_rules: ClassVar[dict[str, Any]] = {
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration": _endpoint_config,
        "aws:cloudwatch/metricAlarm:MetricAlarm": _alarm,
        "aws:cloudwatch/dashboard:Dashboard": monthly("aws", "cloudwatch", "dashboard", "dashboard"),
    }
    quota_rules: ClassVar[dict[str, Any]] = {"aws:sagemaker/endpointConfiguration:EndpointConfiguration": _quota}
    free_types = frozenset({
        "aws:sagemaker/model:Model", "aws:sagemaker/endpoint:Endpoint", "aws:appautoscaling/target:Target",
        "aws:appautoscaling/policy:Policy",
    })

    def platform_needs(self, target: Any) -> frozenset[str]:
        # Callers in the VPC reach the endpoint through the runtime's interface endpoint, without a NAT.
        return super().platform_needs(target) | {"endpoint:sagemaker.runtime"}

    def adapters_refused(self, env: EnvironmentSpec, target: Any) -> str | None:
        """Each adapter is a model data channel, of which a container has 5; the vLLM DLC loads one adapter."""
        t: SageMakerTarget = target
        model = env.model(t.model)
        if ENGINES[model.engine].lora is None:
            return None  # the engine's own refusal says it
        if len(model.adapters) > MAX_ADAPTER_CHANNELS:
            return (f"{len(model.adapters)} adapters: SageMaker mounts each as an additional model data source, "
                    f"of which a model has at most {MAX_ADAPTER_CHANNELS} (CreateModel API, ContainerDefinition)")
        if t.image == "managed" and len(model.adapters) > DLC_MAX_ADAPTERS:
            return DLC_ADAPTERS_REFUSED
        return None

    def validate(self, env: EnvironmentSpec, index: int, target: Any) -> list[Problem]:
        t: SageMakerTarget = target
        problems: list[Problem] = []
        p = lambda key, *rest: problems.append(target_problem(index, key, *rest))  # noqa: E731
        region = AWS.of(env).region
        if region is None:
            return []  # the platform's problem
        offered = instances_in(region)
        if not offered:
            return [Problem("aws:region", region, "SageMaker GPU hosting is not known in this region",
                            ", ".join(known_regions()))]
        model = env.model(t.model)
        if region not in image_regions(model.engine):
            problems.append(Problem("aws:region", region, f"no SageMaker image for engine '{model.engine}' "
                                    f"(used by targets[{index}]) in this region",
                                    ", ".join(image_regions(model.engine))))
        if model.source == "hub" and t.isolation(model):
            p("networkIsolation", True, f"model '{model.name}' downloads from the Hugging Face Hub, which network "
              "isolation blocks", "false, or set the model's source: s3")
        at = env.models.index(model)
        for j, a in enumerate(model.adapters):
            if a.location.scheme == "stack":
                problems.append(Problem(
                    f"{PROJECT}:models[{at}].adapters[{j}].source", a.source, f"an adapter in the stack's bucket "
                    f"names no prefix to mount (targets[{index}] is sagemaker)",
                    "hub (staged into the stack's bucket at `pulumi up`), or s3://bucket/prefix"))
        instance = offered.get(t.instance_type)
        if instance is None:
            p("instanceType", t.instance_type, f"not a SageMaker GPU instance type in {region}",
              ", ".join(offered))
            return problems
        facts = model.resolved_facts()
        if facts is None:
            return problems
        if model.quantization == "fp8" and instance.gpu.arch not in FP8_ARCHS:
            p("instanceType", t.instance_type, no_fp8(instance.gpu.name, model),
              ", ".join(k for k, v in offered.items() if v.gpu.arch in FP8_ARCHS))
        return problems + self.fit_problems(env, index, t, facts, "instanceType", t.instance_type,
                                            instance.gpu_count, instance.total_gpu_memory_gib, t.instance_type,
                                            region)

    def declare(self, env: EnvironmentSpec, target: Any, foundation: Any,
                hf_token: pulumi.Output[str] | None) -> Endpoint:
        from ..aws.sagemaker import (
            AlarmThresholds,
            BlueGreenUpdate,
            SageMakerEndpoint,
            SageMakerEndpointArgs,
            VariantScaling,
        )
        from ..catalog.images import sagemaker_image

        t: SageMakerTarget = target
        model = env.model(t.model)
        facts = model.resolved_facts()
        assert facts is not None  # validation reports a model without facts
        instance = instances_in(foundation.region)[t.instance_type]
        # What `pulumi up` copies from the Hub into the stack's bucket first: a `source: s3` model's revision, and
        # every Hub adapter's (SageMaker mounts S3 only), keyed by what they are (resource names are a contract).
        to_stage: list[tuple[str, str | None, str | None]] = [
            (f"{env.name}-{t.name}-weights", model.id, model.revision)] \
            if model.location.scheme == "stack" and model.stage else []
        to_stage += [(f"{env.name}-{t.name}-adapter-{a.name}", a.id, a.revision) for a in model.adapters
                     if a.location.scheme == "hub"]
        staged: list[pulumi.Resource] = []
        if to_stage:
            from ..aws.staging import ModelStaging, ModelStagingArgs

            for name, repo, revision in to_stage:
                assert repo is not None and revision is not None  # required for what comes from the Hub
                staged.append(ModelStaging(name, ModelStagingArgs(
                    foundation=foundation, repo=repo, revision=revision, hf_token=hf_token)).job)
        scaling, deploy, alarms = t.scaling, t.deployment, t.alarms
        endpoint = SageMakerEndpoint(f"{env.name}-{t.name}", SageMakerEndpointArgs(
            endpoint_name=f"{env.name}-{t.name}", foundation=foundation, model=model, facts=facts,
            instance=instance, image_uri=sagemaker_image(model.engine, foundation.region),
            hf_token=hf_token, tags=self.identity_tags(env, t), network_isolation=t.isolation(model),
            scaling=VariantScaling(
                min_replicas=scaling.min_replicas, max_replicas=scaling.max_replicas,
                invocations_per_instance=scaling.target_invocations_per_instance,
                scale_in_cooldown_seconds=scaling.scale_in_cooldown_seconds,
                scale_out_cooldown_seconds=scaling.scale_out_cooldown_seconds),
            deployment=BlueGreenUpdate(
                traffic_routing=deploy.traffic_routing, step_percent=deploy.step_percent,
                wait_seconds=deploy.wait_seconds, termination_wait_seconds=deploy.termination_wait_seconds),
            alarms=AlarmThresholds(
                p99_latency_ms=alarms.p99_latency_ms, error_rate_5xx_per_minute=alarms.error_rate_5xx_per_minute,
                gpu_memory_percent=alarms.gpu_memory_percent),
            capture_percent=t.data_capture.sampling_percent if t.data_capture.enabled else None,
            own_image=foundation.own_image if t.image == "selfhost" else None,
            startup_timeout_seconds=t.startup_timeout_seconds,
            log_retention_days=foundation.log_retention_days, weights_ready=staged,
        ))
        return Endpoint(
            name=t.name, kind=self.kind, platform=self.platform, region=foundation.region, model=model.id,
            invoke_url=endpoint.invoke_url, openai_base_url=None, auth=self.auth(t),
            host=HostShape(t.instance_type, instance.gpu.name, instance.gpu_count),
            min_replicas=t.scaling.min_replicas, max_replicas=t.scaling.max_replicas, image=endpoint.image_uri,
            startup_timeout_seconds=endpoint.startup_timeout_seconds,
            details={"endpointName": endpoint.endpoint_name, "endpointArn": endpoint.endpoint_arn,
                     "roleArn": endpoint.role.arn},
        )

    def auth(self, target: Any) -> str:
        return "aws-sigv4"  # IAM-signed InvokeEndpoint calls

    def hosts(self, region: str, lookup: Lookup) -> list[Host]:
        from ..sizing_options import Host

        out = []
        for itype, inst in instances_in(region).items():
            price = lookup("aws", "sagemaker-hosting", region, itype)
            out.append(Host("aws", self.kind, itype, region, inst.gpu, inst.gpu_count, inst.total_gpu_memory_gib,
                            price))
        return out

    def stored_bytes(self, resources: Sequence[Resource], usage: Usage) -> float:
        """Weights staged in the artifacts bucket for `source: s3` models (not a team's own bucket's: not this
        stack's bill), and 30 days of captured requests (the bucket's lifecycle rule keeps them that long)."""
        stored = 0.0
        for r in resources:
            sources = (((r.inputs.get("primaryContainer") or {}).get("modelDataSource") or {}).get("s3DataSources")
                       or []) if r.type == "aws:sagemaker/model:Model" else []
            if any(_in_stack_bucket(s.get("s3Uri")) for s in sources):
                facts = MODELS.get((r.inputs.get("tags") or {}).get("selfhost-model", ""))
                stored += weights_bytes(facts, "none") if facts else 0
            if r.type == "aws:sagemaker/endpointConfiguration:EndpointConfiguration":
                capture = r.inputs.get("dataCaptureConfig") or {}
                if capture.get("enableCapture"):
                    tokens = usage.input_tokens_per_request + usage.output_tokens_per_request
                    stored += (usage.requests_per_day * 30 * capture.get("initialSamplingPercentage", 0) / 100
                               * tokens * CAPTURE_BYTES_PER_TOKEN)
        return stored
