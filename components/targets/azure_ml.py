"""Azure Machine Learning managed online endpoints: the `azure-ml` target kind.

Its config model, its checks against the Azure instance catalog, its hosts for `selfhost size`, its cost and quota
rules, and its declaration (components/azure/online_endpoint.py, imported only when a stack declares one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from ..azure.names import global_name
from ..catalog import azure_instances
from ..catalog.engines import FP8_ARCHS
from ..catalog.gpus import GPUS
from ..catalog.models import facts_of
from ..cost_rules import (
    Ctx,
    Estimate,
    LineItem,
    Plan,
    Resource,
    Serving,
    lora_of,
    plan_replicas,
    replica_hours,
    serving_dtypes,
)
from ..quotas import QuotaCtx, QuotaItem
from ..schema import EnvironmentSpec, Problem, Slug, Strict, no_fp8
from ..sizing import Hardware
from .azure import AZURE
from .base import Endpoint, HostShape, Limitation, TargetKind, target_problem

if TYPE_CHECKING:
    import pulumi

    from ..sizing_options import Host, Lookup

# Azure ML's names: an endpoint's is unique in its region across all subscriptions (its scoring host carries it),
# 3-32 characters, letters, digits and '-', starting with a letter (Azure ML docs, "Endpoints for inference",
# naming rules): the stack's and target's names, shortened, and a suffix of the subscription's.
ENDPOINT_NAME_MAX = 32


def endpoint_name(env: EnvironmentSpec, target: AzureMlTarget) -> str:
    return global_name(env.name, AZURE.of(env).subscription_id or "", ENDPOINT_NAME_MAX, True, target.name)
# Mirrored traffic goes to a deployment taking no live traffic, at most 50% of requests (Azure ML docs, "Safe
# rollout for online endpoints": mirror traffic).
MIRROR_MAX = 50
DEPLOYMENT_TYPE = "azure-native:machinelearningservices:OnlineDeployment"
AUTOSCALE_TYPE = "azure-native:monitor:AutoscaleSetting"


class AzureMlScaling(Strict):
    min_replicas: int = Field(default=1, ge=0, le=100)
    """Instances at least (a managed online deployment keeps one at least)."""
    max_replicas: int = Field(default=1, ge=1, le=100)
    scale_out_gpu_percent: int = Field(default=70, ge=1, le=100)
    """Add an instance when the deployment's average GPU use over 5 minutes is above this."""
    scale_in_gpu_percent: int = Field(default=25, ge=0, le=99)
    """Remove one when it is below this."""
    cooldown_minutes: int = Field(default=10, ge=1, le=60)


class AzureMlDeployment(Strict):
    """One deployment behind the endpoint (blue/green: two, moving `traffic` from one to the other)."""

    name: Slug
    traffic: int = Field(ge=0, le=100)
    """Percent of live requests it answers; the deployments' shares sum to 100."""
    mirror: int = Field(default=0, ge=0, le=MIRROR_MAX)
    """Percent of live requests copied to it as well (answers discarded), to try it on real traffic first."""
    model: str | None = None
    """Another entry of `models` to serve here (the new version under test); default: the target's."""
    instance_type: str | None = None
    """Default: the target's."""


class AzureMlAlarms(Strict):
    p99_latency_ms: int = Field(default=20_000, gt=0)
    errors_per_minute: int = Field(default=5, ge=1)


class AzureMlTarget(Strict):
    kind: Literal["azure-ml"]
    name: Slug
    model: str
    """The `name` of an entry in `models`."""
    instance_type: str
    """A GPU instance type managed online endpoints deploy on, e.g. Standard_NC24ads_A100_v4 (1 x A100 80GB)."""
    concurrency: int = Field(default=1, ge=1, le=1024)
    """Sequences at full context that must fit in GPU memory at once (KV cache sizing)."""
    max_concurrent_requests: int = Field(default=64, ge=1, le=1024)
    """Requests one instance takes at once (Azure ML answers more with 429); the engine batches them."""
    scaling: AzureMlScaling = AzureMlScaling()
    deployments: list[AzureMlDeployment] = Field(
        default_factory=lambda: [AzureMlDeployment(name="blue", traffic=100)], min_length=1, max_length=2)
    auth: Literal["key", "aad-token"] = "key"
    """`key`: the endpoint's keys (`az ml online-endpoint get-credentials`). `aad-token`: a Microsoft Entra token
    of an identity with the endpoint's score action."""
    public_access: bool = False
    """False: reached only through the workspace's private endpoint, from the stack's virtual network."""
    image: Literal["selfhost"] = "selfhost"
    """Our image (containers/vllm: the engine behind our adapter), built and pushed to the stack's registry."""
    alarms: AzureMlAlarms = AzureMlAlarms()
    startup_timeout_seconds: int | None = Field(default=None, ge=60, le=3600)


def _deployment_bounds(r: Resource, ctx: Ctx | QuotaCtx) -> tuple[int, int]:
    """The deployment's instances at least and at most: its autoscale setting's capacity (its sibling in its
    component), else its fixed count."""
    count = int((r.inputs.get("sku") or {}).get("capacity", 1))
    scale = ctx.sibling(r, AUTOSCALE_TYPE)
    if scale is None or not scale.inputs.get("enabled", True):
        return count, count
    capacity = ((scale.inputs.get("profiles") or [{}])[0]).get("capacity") or {}
    return int(capacity.get("minimum", count)), int(capacity.get("maximum", count))


def _deployment(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
    """Instance-hours of a deployment at the instances its share of the usage needs between its bounds (its live
    share plus what is mirrored to it: the `selfhost-traffic` tag)."""
    props = r.inputs.get("properties") or {}
    itype = str(props.get("instanceType", ""))
    low, high = _deployment_bounds(r, ctx)
    tags = r.inputs.get("tags") or {}
    share = float(tags.get("selfhost-traffic", 100)) / 100
    usage = ctx.usage.model_copy(update={"requests_per_day": ctx.usage.requests_per_day * share})
    instance = azure_instances.INSTANCES.get(itype)
    plan = Plan(low, low, None)
    if instance is not None:
        quantization, kv_bytes = serving_dtypes(tags)
        gpu = GPUS[instance.gpu]
        plan = plan_replicas(facts_of(tags), Hardware.of_gpu(gpu, instance.gpu_count,
                                                             azure_instances.total_gpu_memory_gib(itype)),
                             low, high, usage, quantization, kv_bytes=kv_bytes, lora=lora_of(tags))
    item = ctx.item(r, "azure", "virtual-machines", itype, "hour", replica_hours((low, plan.expected, high), usage),
                    f"{itype} x {low}..{high} ({tags.get('selfhost-model', 'model')}, {share:.0%} of requests)")
    est.serving.append(Serving(r.name, tags.get("selfhost-model", "?"), (low, plan.expected, high), plan,
                               item.unit_usd))
    return [item]


def _alert(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
    return [ctx.item(r, "azure", "monitor", "metric-alert", "month", (1, 1, 1),
                     "metric alert rule (one time series)")]


def _quota(r: Resource, ctx: QuotaCtx) -> list[QuotaItem]:
    """The instance family's vCPUs, with the share Azure ML reserves for upgrades on most sizes
    (azure_instances.quota_vcpus: an update rolls within that reserve), and the subscription's total regional
    vCPUs."""
    itype = str((r.inputs.get("properties") or {}).get("instanceType", ""))
    instance = azure_instances.INSTANCES.get(itype)
    if instance is None:
        return []
    low, high = _deployment_bounds(r, ctx)
    at_min, at_max = azure_instances.quota_vcpus(itype, low), azure_instances.quota_vcpus(itype, high)
    return [ctx.need(f"azure-ml-cores:{instance.family}", r, at_min, at_max),
            ctx.need("azure-ml-total-cores", r, at_min, at_max)]


class AzureMl(TargetKind):
    kind = "azure-ml"
    config = AzureMlTarget
    platform = "azure"
    summary = "Azure ML managed online endpoint (NC/NV/ND GPU instances)"
    weight_schemes = ("hub",)
    # The deployments run in the workspace's managed network, not the stack's: their way to the Hub is its FQDN
    # outbound rules (platform need `hub-egress`), not a NAT of ours.
    needs_egress_for_hub = False
    limitations = (
        Limitation("scaling.minReplicas", lambda t: t.scaling.min_replicas == 0, lambda t: 0,
                   "managed online deployments keep at least one instance", "1 or more"),
    )
    cost_rules: ClassVar[dict[str, Any]] = {
        DEPLOYMENT_TYPE: _deployment,
        "azure-native:monitor:MetricAlert": _alert,
    }
    quota_rules: ClassVar[dict[str, Any]] = {DEPLOYMENT_TYPE: _quota}
    free_types = frozenset({
        "azure-native:machinelearningservices:OnlineEndpoint",
        "azure-native:machinelearningservices:EnvironmentContainer",
        "azure-native:machinelearningservices:EnvironmentVersion",
        AUTOSCALE_TYPE,
    })

    def platform_needs(self, target: Any) -> frozenset[str]:
        # Always our image; the Hub's hosts in the managed network's outbound rules (the only source it reads).
        return frozenset({"own-image", "hub-egress"})

    def _deployments(self, env: EnvironmentSpec, t: AzureMlTarget) -> list[tuple[AzureMlDeployment, Any, str]]:
        return [(d, env.model(d.model or t.model), d.instance_type or t.instance_type) for d in t.deployments]

    def validate(self, env: EnvironmentSpec, index: int, target: Any) -> list[Problem]:
        t: AzureMlTarget = target
        problems: list[Problem] = []
        p = lambda key, *rest: problems.append(target_problem(index, key, *rest))  # noqa: E731
        names = [d.name for d in t.deployments]
        if len(set(names)) != len(names):
            p("deployments", names, "deployment names must differ", "two names, e.g. blue and green")
        if sum(d.traffic for d in t.deployments) != 100:
            p("deployments", {d.name: d.traffic for d in t.deployments},
              "the deployments' traffic shares must sum to 100", "shares that add up to 100")
        for j, d in enumerate(t.deployments):
            if d.mirror and d.traffic:
                p(f"deployments[{j}].mirror", d.mirror, "Azure ML mirrors traffic only to a deployment that takes no "
                  "live traffic", f"0, or traffic: 0 for {d.name}")
            if d.model is not None and d.model not in {m.name for m in env.models}:
                p(f"deployments[{j}].model", d.model, "no such model", ", ".join(m.name for m in env.models))
                return problems
            # The generic checks read the target's own model; a deployment's other model gets the same two here.
            other = env.model(d.model) if d.model is not None else None
            if other is not None and other.engine not in self.engines:
                p(f"deployments[{j}].model", d.model, f"its engine {other.engine!r} does not run on azure-ml",
                  ", ".join(self.engines))
            elif other is not None and other.location.scheme not in self.weight_schemes:
                p(f"deployments[{j}].model", d.model, f"its weights ({other.source}) are not where Azure ML "
                  "deployments read from", "a model from the Hugging Face Hub (source: hub)")
        region = AZURE.of(env).location
        if region is None:
            return problems  # the platform's problem
        offered = azure_instances.REGION_INSTANCES.get(region)
        if offered is None:
            return problems + [Problem("azure-native:location", region,
                                       "no Azure ML managed online endpoint GPU instances known in this region",
                                       ", ".join(azure_instances.REGION_INSTANCES))]
        for j, (d, model, itype) in enumerate(self._deployments(env, t)):
            key = f"deployments[{j}].instanceType" if d.instance_type else "instanceType"
            if itype not in offered:
                known = "" if itype in azure_instances.INSTANCES else " (not a GPU instance type managed online " \
                                                                      "endpoints deploy on)"
                p(key, itype, f"not offered for managed online endpoints in {region}{known}",
                  ", ".join(sorted(offered)))
                continue
            instance = azure_instances.INSTANCES[itype]
            gpu = GPUS[instance.gpu]
            if model.quantization == "fp8" and gpu.arch not in FP8_ARCHS:
                p(key, itype, no_fp8(gpu.name, model),
                  ", ".join(i for i in sorted(offered) if GPUS[azure_instances.INSTANCES[i].gpu].arch in FP8_ARCHS))
            facts = model.resolved_facts()
            if facts is not None:
                problems += self.fit_problems(env, index, t.model_copy(update={"model": model.name}), facts, key,
                                              itype, instance.gpu_count, azure_instances.total_gpu_memory_gib(itype),
                                              itype, region)
        return problems

    def declare(self, env: EnvironmentSpec, target: Any, foundation: Any,
                hf_token: pulumi.Output[str] | None) -> Endpoint:
        from ..azure.online_endpoint import Alerts, DeploymentSpec, OnlineEndpoint, OnlineEndpointArgs, Scaling
        from ..sizing import startup_timeout_seconds

        t: AzureMlTarget = target
        specs = []
        for d, model, itype in self._deployments(env, t):
            facts = model.resolved_facts()
            assert facts is not None  # validation reports a model without facts
            tags = {**self.identity_tags(env, t.model_copy(update={"model": model.name})),
                    "selfhost-traffic": str(d.traffic + d.mirror)}
            specs.append(DeploymentSpec(d.name, model, facts, azure_instances.INSTANCES[itype], d.traffic, d.mirror,
                                        tags))
        main = max(specs, key=lambda s: s.traffic)
        startup = t.startup_timeout_seconds or max(
            startup_timeout_seconds(s.facts, s.model.quantization, "hub", (600, 3600)) for s in specs)
        assert foundation.own_image is not None  # the kind always asks for our image
        endpoint = OnlineEndpoint(f"{env.name}-{t.name}", OnlineEndpointArgs(
            endpoint_name=endpoint_name(env, t), foundation=foundation, image=foundation.own_image,
            deployments=tuple(specs),
            scaling=Scaling(t.scaling.min_replicas, t.scaling.max_replicas, t.scaling.scale_out_gpu_percent,
                            t.scaling.scale_in_gpu_percent, t.scaling.cooldown_minutes),
            auth_mode="Key" if t.auth == "key" else "AADToken", public_access=t.public_access,
            alerts=Alerts(t.alarms.p99_latency_ms, t.alarms.errors_per_minute), startup_timeout_seconds=startup,
            max_concurrent_requests=t.max_concurrent_requests, tags=self.identity_tags(env, t)))
        base_url = endpoint.scoring_uri.apply(lambda uri: uri.removesuffix("/score") + "/v1")
        return Endpoint(
            name=t.name, kind=self.kind, platform=self.platform, region=foundation.location, model=main.model.id,
            invoke_url=endpoint.scoring_uri, openai_base_url=base_url, auth=self.auth(t),
            host=HostShape(main.instance.name, main.instance.gpu, main.instance.gpu_count),
            min_replicas=t.scaling.min_replicas, max_replicas=t.scaling.max_replicas, image=foundation.own_image,
            startup_timeout_seconds=startup,
            details={"endpointName": endpoint.endpoint.name, "endpointId": endpoint.endpoint.id,
                     "deployments": {s.name: {"model": s.model.id, "instanceType": s.instance.name,
                                              "traffic": s.traffic, "mirror": s.mirror} for s in specs},
                     "workspace": foundation.workspace.workspace.name,
                     "publicAccess": t.public_access})

    def auth(self, target: Any) -> str:
        t: AzureMlTarget = target
        # A key is sent as `Authorization: Bearer <key>`, as OpenAI clients send theirs.
        return "api-key" if t.auth == "key" else "azure-ad"

    def hosts(self, region: str, lookup: Lookup) -> list[Host]:
        from ..sizing_options import Host

        out = []
        for itype in sorted(azure_instances.REGION_INSTANCES.get(region, ())):
            inst = azure_instances.INSTANCES[itype]
            out.append(Host("azure", self.kind, itype, region, GPUS[inst.gpu], inst.gpu_count,
                            azure_instances.total_gpu_memory_gib(itype),
                            lookup("azure", "virtual-machines", region, itype)))
        return out

