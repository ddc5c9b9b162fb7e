"""GPU instance pools on EC2 behind an internal load balancer: the `aws-pool` target kind.

Its config model, its checks against the EC2 GPU catalog, its hosts for `selfhost size` (on-demand and spot
side by side), its cost rules, and its declaration (components/aws/pool.py, imported only when declared).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from ..catalog.ec2_instances import ec2_instances_in, vcpus
from ..catalog.engines import FP8_ARCHS
from ..catalog.models import facts_of
from ..catalog.serving import SAGEMAKER_TIMEOUT_BOUNDS_S
from ..cost_rules import (
    HOURS_PER_MONTH,
    Ctx,
    Estimate,
    LineItem,
    Plan,
    Resource,
    Serving,
    hourly,
    lora_of,
    plan_replicas,
    replica_hours,
    serving_dtypes,
)
from ..litellm import ROUTER_KEY_ID
from ..quotas import CapacityHint, Missing, QuotaCtx, QuotaItem
from ..schema import EnvironmentSpec, Problem, Slug, Strict, no_fp8
from ..sizing import Hardware, startup_timeout_seconds
from .aws import AWS
from .base import Endpoint, HostShape, TargetKind, target_problem, with_router_key

if TYPE_CHECKING:
    import pulumi

    from ..sizing_options import Host, Lookup


class PoolScaling(Strict):
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=1, ge=1, le=100)
    target_requests_per_instance_per_minute: int = Field(default=60, ge=1)
    """Target tracking goal: ALBRequestCountPerTarget, requests per instance per minute."""


class PoolTls(Strict):
    certificate_arn: str | None = Field(default=None, pattern=r"^arn:aws[\w-]*:acm:[a-z0-9-]+:\d{12}:certificate/.+$")
    """An ACM certificate (yours, for a name of yours) for the load balancer's HTTPS listener; without one, the
    stack's private CA issues a certificate for the load balancer's DNS name, imported into ACM, and the endpoint
    record gives the CA certificate (`caCertificate`) callers trust."""


class PoolAlarms(Strict):
    """What the pool's CloudWatch alarms fire at (components/aws/pool_monitoring.py says why these defaults)."""

    target_5xx_percent: float = Field(default=5.0, gt=0, le=100, alias="target5xxPercent")
    """The share of requests the instances answer with a 5xx, in percent, over a minute (3 minutes of 5)."""
    p95_response_seconds: float = Field(default=20.0, gt=0, le=4000)
    """ALB TargetResponseTime p95, seconds."""
    unhealthy_minutes: int = Field(default=10, ge=1, le=1440)
    """Minutes in a row with any target failing its health check."""
    no_healthy_minutes: int = Field(default=3, ge=1, le=1440)
    """Minutes in a row with no healthy target (declared when minReplicas >= 1)."""


class AwsPoolTarget(Strict):
    kind: Literal["aws-pool"]
    name: Slug
    model: str
    """The `name` of an entry in `models`."""
    instance_types: list[str] = Field(min_length=1, max_length=20)
    """EC2 GPU types of one GPU memory class, preferred first: spot capacity is drawn from all of them."""
    concurrency: int = Field(default=1, ge=1, le=1024)
    scaling: PoolScaling = PoolScaling()
    on_demand_base: int = Field(default=1, ge=0)
    """Instances that are always on demand; of those above it, `spotShare` are spot."""
    spot_share: float = Field(default=1.0, ge=0, le=1)
    warm_pool: bool = False
    """Keep stopped instances ready to start: on demand and one instance type only (Auto Scaling refuses warm pools
    for spot and for mixed instances policies)."""
    tls: PoolTls = PoolTls()
    """The load balancer listens with HTTPS only, on 443 (TLS 1.2+)."""
    api_keys: list[Slug] = Field(default=["default"], min_length=1, max_length=50)
    """Caller key ids: one generated key each (the endpoint record's `apiKeys`, a secret); rotate by changing the
    ids (the group's instance refresh then boots instances that read the new keys)."""
    idle_timeout_seconds: int = Field(default=300, ge=60, le=4000)
    """Load balancer idle timeout: longer than the longest gap between two streamed tokens (a long prefill)."""
    alarms: PoolAlarms = PoolAlarms()
    deregistration_delay_seconds: int = Field(default=300, ge=0, le=3600)
    """How long a leaving instance keeps its open streams."""
    startup_timeout_seconds: int | None = Field(default=None, ge=60, le=3600)
    """Override the sized health check grace period (download, load and warm-up of the model)."""
    image: Literal["selfhost"] = "selfhost"
    """Pools serve our image: the adapter in front of vLLM."""


def _on_demand_share(inputs: dict[str, Any], replicas: float) -> float:
    """The share of `replicas` instances that the group's instances distribution runs on demand."""
    if not replicas:
        return 1.0
    dist = (inputs.get("mixedInstancesPolicy") or {}).get("instancesDistribution") or {}
    base = min(replicas, float(dist.get("onDemandBaseCapacity", 0)))
    above = (replicas - base) * float(dist.get("onDemandPercentageAboveBaseCapacity", 100)) / 100
    return (base + above) / replicas


def _replicas(group: Resource, ctx: Ctx) -> tuple[str, str, tuple[int, int, int], Plan]:
    """The group's first instance type, its model, replicas at min / expected / max and the plan."""
    overrides = ((group.inputs.get("mixedInstancesPolicy") or {}).get("launchTemplate") or {}).get("overrides") or []
    # Without a mixed instances policy (a warm-pool group) the launch template beside it names the type.
    template = ctx.sibling(group, "aws:ec2/launchTemplate:LaunchTemplate")
    itype = overrides[0]["instanceType"] if overrides else (template.inputs.get("instanceType", "") if template else "")
    low, high = int(group.inputs.get("minSize", 0)), int(group.inputs.get("maxSize", 0))
    tags = {t.get("key"): t.get("value") for t in group.inputs.get("tags") or []}
    model_id = tags.get("selfhost-model") or ""
    quantization, kv_bytes = serving_dtypes(tags)
    host = ec2_instances_in(ctx.regions.get("aws", "")).get(itype)
    plan = Plan(low, low, None) if host is None else plan_replicas(
        facts_of(tags), Hardware.of_gpu(host.gpu, host.gpu_count, host.total_gpu_memory_gib), low, high,
        ctx.usage, quantization, kv_bytes=kv_bytes, lora=lora_of(tags))
    return itype, model_id, (low, plan.expected, high), plan


def _group(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
    """Instance-hours at the replicas the usage needs, on demand and spot as the group splits them, priced at
    the first listed type (spot capacity may land on any listed type of the same class)."""
    itype, model_id, replicas, plan = _replicas(r, ctx)
    hours = replica_hours(replicas, ctx.usage)
    shares = [_on_demand_share(r.inputs, n) for n in replicas]
    on_demand = (hours[0] * shares[0], hours[1] * shares[1], hours[2] * shares[2])
    spot = (hours[0] - on_demand[0], hours[1] - on_demand[1], hours[2] - on_demand[2])
    low, _, high = replicas
    items = [ctx.item(r, "aws", "ec2", itype, "instance-hour", on_demand,
                      f"{itype} on demand ({model_id or 'model'})"),
             ctx.item(r, "aws", "ec2-spot", itype, "instance-hour", spot,
                      f"{itype} spot, {low}..{high} instances in all")]
    od_usd, spot_usd = items[0].unit_usd, items[1].unit_usd
    replica_usd = None if od_usd is None or spot_usd is None else od_usd * shares[1] + spot_usd * (1 - shares[1])
    est.serving.append(Serving(r.name, model_id or "?", replicas, plan, replica_usd))
    return items


def _launch_template(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
    """EBS volumes of each instance, for the instances the group beside it runs."""
    group = ctx.sibling(r, "aws:autoscaling/group:Group")
    gib = sum(int((m.get("ebs") or {}).get("volumeSize", 0)) for m in r.inputs.get("blockDeviceMappings") or [])
    replicas = _replicas(group, ctx)[2] if group else (1, 1, 1)
    months = [h / HOURS_PER_MONTH for h in replica_hours(replicas, ctx.usage)]
    return [ctx.item(r, "aws", "ebs", "gp3", "GB-month", (gib * months[0], gib * months[1], gib * months[2]),
                     f"{gib} GiB gp3 per instance (encrypted)")]


def _quota(r: Resource, ctx: QuotaCtx) -> list[QuotaItem]:
    """EC2's vCPU quotas per instance class, on demand and spot, at the group's bounds, counting every instance
    as the largest type of the pool (Auto Scaling may launch any of them); an instance refresh that may exceed
    the group (maxHealthyPercentage above 100) adds its surge. And whether spot has types and zones enough to
    draw on (capacity rebalancing replaces a reclaimed instance from another pool)."""
    from ..catalog.quotas import ec2_class
    from ..catalog.zones import ec2_zones

    i = r.inputs
    low, high = int(i.get("minSize", 0)), int(i.get("maxSize", 0))
    mixed = i.get("mixedInstancesPolicy") or {}
    dist = mixed.get("instancesDistribution") or {}
    types = [o["instanceType"] for o in (mixed.get("launchTemplate") or {}).get("overrides") or []
             if o.get("instanceType")]
    if not types:
        template = ctx.sibling(r, "aws:ec2/launchTemplate:LaunchTemplate")
        types = [t] if template and (t := template.inputs.get("instanceType")) else []
    base, share = int(dist.get("onDemandBaseCapacity", 0)), int(dist.get("onDemandPercentageAboveBaseCapacity", 100))
    surge = math.ceil(high * max(0, int(((i.get("instanceRefresh") or {}).get("preferences") or {}).get(
        "maxHealthyPercentage", 100)) - 100) / 100)

    def split(n: int) -> tuple[int, int]:
        """(on demand, spot) of `n` instances."""
        above = max(0, n - base)
        on_demand = min(n, base) + math.ceil(above * share / 100)
        return on_demand, n - on_demand

    out: list[QuotaItem] = []
    (od_low, spot_low), (od_high, spot_high), (od_up, spot_up) = split(low), split(high), split(high + surge)
    for market, amounts in (("on-demand", (od_low, od_high, od_up)), ("spot", (spot_low, spot_high, spot_up))):
        if not amounts[1]:
            continue
        classes: dict[str, list[int | None]] = {}
        for t in types:
            try:
                classes.setdefault(ec2_class(t, spot=market == "spot"), []).append(vcpus(t))
            except ValueError:
                out.append(Missing(f"ec2-vcpus:{market} of {t}", r.name))
        for cls, sizes in classes.items():
            if None in sizes:
                out.append(Missing(f"ec2-vcpus:{market}:{cls} (the vCPUs of a type of {', '.join(types)})", r.name))
                continue
            per = max(v for v in sizes if v is not None)
            out.append(ctx.need(f"ec2-vcpus:{market}:{cls}", r, amounts[0] * per, amounts[1] * per, amounts[2] * per))
    spot = split(high)[1] > 0
    zones = len(i.get("vpcZoneIdentifiers") or [])
    if spot:
        # How many zones of the region offer each type (zone IDs, from the SkyPilot catalog): a type offered in
        # fewer zones than the group spans adds fewer capacity pools.
        region = ctx.regions.get("aws", "")
        offered = {t: len(ec2_zones(region, t)) for t in types}
        pools = sum(min(n, zones) for n in offered.values()) if any(offered.values()) else len(types) * zones
        enough = len(types) >= 2 and zones >= 2
        thin = [f"{t} ({n} of the region's zones)" for t, n in offered.items() if any(offered.values()) and n < zones]
        out.append(CapacityHint(r.name, "ok" if enough and not thin else "warning", (
            f"spot draws on {len(types)} instance types in {zones} zones (about {pools} capacity pools)"
            + ("" if enough else ": with fewer than 2 types or 2 zones, a reclaimed instance may find no "
               "capacity to come back on; add same-memory types (instanceTypes) or zones")
            + (f"; offered in fewer zones than the group spans: {', '.join(thin)}" if thin else ""))))
    return out


class AwsPool(TargetKind):
    kind = "aws-pool"
    config = AwsPoolTarget
    platform = "aws"
    weight_schemes = ("hub", "s3")
    summary = "EC2 GPU instance pool (mostly spot) behind an internal Application Load Balancer"
    needs_egress_for_hub = True
    quota_rules: ClassVar[dict[str, Any]] = {"aws:autoscaling/group:Group": _quota}
    cost_rules: ClassVar[dict[str, Any]] = {
        "aws:autoscaling/group:Group": _group,
        "aws:lb/loadBalancer:LoadBalancer": hourly("aws", "elb", "application-lb-hour", "internal load balancer",
                                                   "plus LCU-hours, not estimated"),
        "aws:ec2/launchTemplate:LaunchTemplate": _launch_template,
    }
    free_types = frozenset({
        "aws:lb/targetGroup:TargetGroup", "aws:lb/listener:Listener", "aws:autoscaling/policy:Policy",
        # ACM: imported certificates cost nothing (ACM pricing: only private CA certificates are charged).
        "aws:acm/certificate:Certificate",
        "aws:iam/instanceProfile:InstanceProfile", "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    })

    def platform_needs(self, target: Any) -> frozenset[str]:
        # The load balancer's access logs go to the access-log bucket, whose policy then admits ELB log delivery.
        return frozenset({"own-image", "lb-access-logs"})

    def validate(self, env: EnvironmentSpec, index: int, target: Any) -> list[Problem]:
        t: AwsPoolTarget = target
        problems: list[Problem] = []
        p = lambda key, *rest: problems.append(target_problem(index, key, *rest))  # noqa: E731
        if t.on_demand_base > t.scaling.max_replicas:
            p("onDemandBase", t.on_demand_base, f"above scaling.maxReplicas ({t.scaling.max_replicas})",
              f"0..{t.scaling.max_replicas}")
        if t.warm_pool and t.spot_share > 0:
            p("warmPool", True, f"warm pools cannot be used with spot instances (spotShare {t.spot_share:g}; "
              "Auto Scaling PutWarmPool refuses groups that request spot)", "false, or spotShare: 0")
        if t.warm_pool and len(t.instance_types) > 1:
            p("instanceTypes", t.instance_types, "a warm pool cannot be used with a mixed instances policy "
              "(Auto Scaling PutWarmPool): one instance type", t.instance_types[0])
        region = AWS.of(env).region
        if region is None:
            return problems  # the platform's problem
        offered = ec2_instances_in(region)
        if not offered:
            return [*problems, Problem("aws:region", region, "no EC2 GPU instance types known in this region",
                                       ", ".join(sorted({"us-east-1", "us-west-2", "eu-west-1"})))]
        known = [offered.get(i) for i in t.instance_types]
        for j, (itype, inst) in enumerate(zip(t.instance_types, known, strict=True)):
            if inst is None:
                p(f"instanceTypes[{j}]", itype, f"not an EC2 GPU instance type in {region}", ", ".join(offered))
        if any(i is None for i in known):
            return problems
        first = known[0]
        assert first is not None
        same = [k for k, v in offered.items() if (v.gpu_count, v.total_gpu_memory_gib)
                == (first.gpu_count, first.total_gpu_memory_gib)]
        for j, inst in enumerate(known[1:], start=1):
            assert inst is not None
            if (inst.gpu_count, inst.total_gpu_memory_gib) != (first.gpu_count, first.total_gpu_memory_gib):
                p(f"instanceTypes[{j}]", inst.instance_type,
                  f"{inst.gpu_count} x {inst.gpu.name} ({inst.total_gpu_memory_gib:g} GiB) is another memory class "
                  f"than {first.instance_type} ({first.gpu_count} x {first.gpu.name}, "
                  f"{first.total_gpu_memory_gib:g} GiB): one pool serves one shape", ", ".join(same))
        model = env.model(t.model)
        facts = model.resolved_facts()
        if facts is None:
            return problems
        if model.quantization == "fp8" and first.gpu.arch not in FP8_ARCHS:
            p("instanceTypes[0]", first.instance_type, no_fp8(first.gpu.name, model),
              ", ".join(k for k, v in offered.items() if v.gpu.arch in FP8_ARCHS))
        return problems + self.fit_problems(env, index, t, facts, "instanceTypes[0]", first.instance_type,
                                            first.gpu_count, first.total_gpu_memory_gib, first.instance_type,
                                            region)

    def declare(self, env: EnvironmentSpec, target: Any, foundation: Any,
                hf_token: pulumi.Output[str] | None) -> Endpoint:
        from ..aws.pool import GpuInstancePool, GpuInstancePoolArgs, GroupScaling

        t: AwsPoolTarget = target
        model = env.model(t.model)
        facts = model.resolved_facts()
        assert facts is not None  # validated
        offered = ec2_instances_in(foundation.region)
        instances = [offered[i] for i in t.instance_types]
        # The instances download from the Hub, or copy the team's own weights from S3 (`aws s3 sync` at boot).
        startup = t.startup_timeout_seconds or startup_timeout_seconds(
            facts, model.quantization, model.location.scheme, SAGEMAKER_TIMEOUT_BOUNDS_S)
        pool = GpuInstancePool(f"{env.name}-{t.name}", GpuInstancePoolArgs(
            pool_name=f"{env.name}-{t.name}", foundation=foundation, model=model, facts=facts,
            instances=instances, startup_timeout_seconds=startup,
            # The token only where something comes from the Hub: the role reads nothing it does not use.
            hf_token_secret_arn=foundation.hf_token_secret_arn if model.from_hub else None,
            tags=self.identity_tags(env, t),
            scaling=GroupScaling(
                min_replicas=t.scaling.min_replicas, max_replicas=t.scaling.max_replicas,
                requests_per_instance_per_minute=t.scaling.target_requests_per_instance_per_minute),
            on_demand_base=t.on_demand_base, spot_share=t.spot_share, warm_pool=t.warm_pool,
            certificate_arn=t.tls.certificate_arn, api_keys=with_router_key(t.api_keys, env.routed(t.name)),
            deletion_protection=env.tier == "production", access_log_bucket=foundation.access_log_bucket,
            idle_timeout_seconds=t.idle_timeout_seconds,
            deregistration_delay_seconds=t.deregistration_delay_seconds,
            log_retention_days=foundation.log_retention_days))
        import pulumi

        from ..aws.pool_monitoring import PoolAlarmThresholds, PoolMonitoring, PoolMonitoringArgs

        PoolMonitoring(f"{env.name}-{t.name}-monitoring", PoolMonitoringArgs(
            pool_name=f"{env.name}-{t.name}", region=foundation.region,
            load_balancer_arn_suffix=pool.load_balancer.arn_suffix,
            target_group_arn_suffix=pool.target_group.arn_suffix,
            group_name=pool.group.name, log_group_name=pool.log_group.name, tags=self.identity_tags(env, t),
            min_instances=t.scaling.min_replicas, thresholds=PoolAlarmThresholds(
                t.alarms.target_5xx_percent, t.alarms.p95_response_seconds, t.alarms.unhealthy_minutes,
                t.alarms.no_healthy_minutes)), opts=pulumi.ResourceOptions(parent=pool))
        first = instances[0]
        return Endpoint(
            name=t.name, kind=self.kind, platform=self.platform, region=foundation.region, model=model.id,
            invoke_url=pool.invoke_url, openai_base_url=pool.openai_base_url,
            auth=self.auth(t),
            host=HostShape(first.instance_type, first.gpu.name, first.gpu_count),
            min_replicas=t.scaling.min_replicas, max_replicas=t.scaling.max_replicas, image=pool.image,
            startup_timeout_seconds=startup,
            router_key=pool.api_keys.apply(lambda keys: keys[ROUTER_KEY_ID]) if env.routed(t.name) else None,
            details={"poolName": pool.group.name, "loadBalancerDns": pool.load_balancer.dns_name,
                     "instanceTypes": list(t.instance_types), "apiKeys": pool.api_keys,
                     **({"caCertificate": pool.ca_certificate_pem} if pool.ca_certificate_pem is not None else {})},
        )

    def auth(self, target: Any) -> str:
        # Our adapter's API keys, over HTTPS, on a load balancer that answers only inside the VPC.
        return "api-key"

    def gpus(self, record: Mapping[str, Any]) -> set[str]:
        known = ec2_instances_in(str(record.get("region", "")))
        return super().gpus(record) | {known[t].gpu.name for t in record.get("instanceTypes") or [] if t in known}

    def hosts(self, region: str, lookup: Lookup) -> list[Host]:
        from ..sizing_options import Host

        out = []
        for itype, inst in ec2_instances_in(region).items():
            for service, label in (("ec2", "on demand"), ("ec2-spot", "spot")):
                price = lookup("aws", service, region, itype)
                out.append(Host("aws", self.kind, f"{itype} ({label})", region, inst.gpu, inst.gpu_count,
                                inst.total_gpu_memory_gib, price))
        return out
