"""The cost engine: prices a captured resource graph for a 730-hour month.

Input is the graph a preview captured (resource type, name, parent component, inputs in the provider's wire
format), never the stack config: what is priced is what would be deployed. Each resource type that costs
money has a rule below; types that cost nothing are listed as free; anything else is reported as unpriced.
min / expected / max come from autoscaling bounds and the usage profile. A price the catalog lacks is
unknown: the item shows no amount and the totals say how many items they leave out, never counting it as 0.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .catalog import gcp_machines
from .catalog.api_prices import API_PRICES
from .catalog.models import MODELS, ModelFacts
from .catalog.sagemaker_instances import instances_in
from .sizing import PLANNING_CONCURRENCY, max_concurrency, throughput, weights_bytes

HOURS_PER_MONTH = 730  # the Infracost convention
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
# Captured request/response JSON, bytes per token (UTF-8 text plus JSON framing).
CAPTURE_BYTES_PER_TOKEN = 8
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # Pulumi's marker for a value not known until apply

Lookup = Callable[[str, str, str, str], Any]


@dataclass(frozen=True)
class Resource:
    type: str
    name: str
    component: str | None
    inputs: dict[str, Any]


@dataclass(frozen=True)
class UsageProfile:
    hours_per_day: float = 24
    requests_per_day: int = 10_000
    input_tokens_per_request: int = 500
    output_tokens_per_request: int = 200
    compare_with: tuple[str, ...] = ()

    @property
    def tokens_per_month(self) -> float:
        return self.requests_per_day * DAYS_PER_MONTH * (self.input_tokens_per_request + self.output_tokens_per_request)

    @property
    def busy_requests_per_s(self) -> float:
        return self.requests_per_day / (self.hours_per_day * 3600)


@dataclass
class LineItem:
    resource: str
    type: str
    component: str | None
    description: str
    unit: str
    quantity: tuple[float, float, float]
    """Units per month at min / expected / max."""
    unit_usd: float | None
    source: str = ""
    note: str = ""

    @property
    def monthly(self) -> tuple[float, float, float] | None:
        if self.unit_usd is None:
            return None
        return tuple(q * self.unit_usd for q in self.quantity)  # type: ignore[return-value]


@dataclass
class Serving:
    """What one serving endpoint can do at the configured load (for $/1M tokens and warnings)."""

    resource: str
    model: str
    replicas: tuple[int, int, int]
    replica_requests_per_s: float
    needed_replicas: int
    replica_usd_per_hour: float | None = None


@dataclass
class Estimate:
    items: list[LineItem]
    free: list[str]
    unpriced: list[str]
    """Resource types with no rule: neither priced nor known to be free."""
    usage: UsageProfile
    serving: list[Serving] = field(default_factory=list)
    budget_monthly_usd: float | None = None

    def total(self) -> tuple[float, float, float]:
        known = [i.monthly for i in self.items if i.monthly is not None]
        return tuple(sum(m[k] for m in known) for k in range(3))  # type: ignore[return-value]

    @property
    def unknown(self) -> list[LineItem]:
        return [i for i in self.items if i.unit_usd is None]

    @property
    def usd_per_1m_tokens(self) -> float | None:
        tokens = self.usage.tokens_per_month
        if not tokens or not self.serving or self.unknown:
            return None
        return self.total()[1] / tokens * 1e6

    @property
    def over_budget(self) -> bool:
        return self.budget_monthly_usd is not None and self.total()[1] > self.budget_monthly_usd

    def api_comparison(self) -> list[dict[str, Any]]:
        """Monthly cost of the same tokens on each API, and the break-even load: the fewest requests/day at
        which self-hosting costs no more than the API, with as many replicas as that load needs."""
        u = self.usage
        rows = []
        for key in u.compare_with:
            api = API_PRICES[key]
            per_request = api.request_usd(u.input_tokens_per_request, u.output_tokens_per_request)
            rows.append({
                "api": key, "provider": api.provider, "model": api.model,
                "usdPer1mInput": api.usd_per_1m_input, "usdPer1mOutput": api.usd_per_1m_output,
                "monthlyUsd": per_request * u.requests_per_day * DAYS_PER_MONTH,
                **dict(zip(("breakEvenRequestsPerDay", "breakEvenNote"), self.break_even(per_request))),
                "source": api.source,
            })
        return rows

    def break_even(self, api_usd_per_request: float) -> tuple[float | None, str]:
        """Requests/day where the API's bill reaches the self-hosted cost, scanning replica counts from the
        minimum up: n replicas cost the rest of the stack plus n hosts in the busy hours, and serve
        n x (requests/s) over the busy hours. No value when prices are unknown, when several endpoints share
        the load, or when the API stays cheaper at every load the maximum replicas can serve (the note says)."""
        if self.unknown:
            return None, "unknown prices"
        if len(self.serving) != 1:
            return None, "one serving endpoint needed to compare"
        s = self.serving[0]
        if s.replica_usd_per_hour is None or not s.replica_requests_per_s:
            return None, "unknown replica capacity"
        low, _, high = s.replicas
        busy = self.usage.hours_per_day / 24
        rest = self.total()[0] - low * s.replica_usd_per_hour * HOURS_PER_MONTH
        capacity = 0.0
        for n in range(low, high + 1):
            monthly = rest + (low * (1 - busy) + n * busy) * s.replica_usd_per_hour * HOURS_PER_MONTH
            requests = monthly / (api_usd_per_request * DAYS_PER_MONTH)
            capacity = n * s.replica_requests_per_s * self.usage.hours_per_day * 3600
            if requests <= capacity:
                return requests, f"with {n} replica{'s' * (n > 1)}"
        return None, f"the API is cheaper at every load up to {high} replicas ({capacity:,.0f} requests/day)"


# ---------------------------------------------------------------------------------------------------------
# Rules


@dataclass
class Ctx:
    regions: dict[str, str]
    usage: UsageProfile
    lookup: Lookup
    siblings: dict[str | None, list[Resource]]

    def price(self, provider: str, service: str, sku: str) -> tuple[float | None, str]:
        found = self.lookup(provider, service, self.regions.get(provider, ""), sku)
        return (found.usd, f"{found.source} ({found.as_of})") if found else (None, "")

    def item(self, r: Resource, provider: str, service: str, sku: str, unit: str, quantity: tuple[float, float, float],
             description: str, note: str = "") -> LineItem:
        usd, source = self.price(provider, service, sku)
        if usd is None:
            note = f"no price for {provider}/{service}/{sku} in {self.regions.get(provider, '?')}" + (
                f"; {note}" if note else "")
        return LineItem(r.name, r.type, r.component, description, unit, quantity, usd, source, note)


def _flat(n: float) -> tuple[float, float, float]:
    return (n, n, n)


def _known(value: Any) -> bool:
    return value is not None and value != UNKNOWN


def _replica_hours(replicas: tuple[int, int, int], usage: UsageProfile) -> tuple[float, float, float]:
    low, expected, high = replicas
    busy = usage.hours_per_day / 24
    return (low * HOURS_PER_MONTH, (low * (1 - busy) + expected * busy) * HOURS_PER_MONTH, high * HOURS_PER_MONTH)


def _plan_replicas(facts: ModelFacts | None, gpu_count: int, memory_gib: float, bandwidth: float, tflops: float,
                   low: int, high: int, usage: UsageProfile) -> tuple[int, float, int]:
    """Replicas the busy hours need (clamped to the bounds), one replica's requests/s, and the unclamped need."""
    if facts is None:
        return low, 0.0, low
    tokens = usage.input_tokens_per_request + usage.output_tokens_per_request
    streams = min(max_concurrency(facts, "none", gpu_count, memory_gib, tokens), PLANNING_CONCURRENCY)
    if streams == 0:
        return high, 0.0, high
    rps = throughput(facts, "none", bandwidth, tflops, gpu_count, streams, usage.input_tokens_per_request,
                     usage.output_tokens_per_request).requests_per_s
    need = math.ceil(usage.busy_requests_per_s / rps) if usage.requests_per_day else 0
    return min(max(need, low), high), rps, need


def _sagemaker_config(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
    items = []
    siblings = ctx.siblings.get(r.component, [])
    scaling = next((s for s in siblings if s.type == "aws:appautoscaling/target:Target"), None)
    model = next((s for s in siblings if s.type == "aws:sagemaker/model:Model"), None)
    model_id = _sagemaker_model_id(model)
    for variant in r.inputs.get("productionVariants", []):
        itype = variant["instanceType"]
        count = int(variant.get("initialInstanceCount", 1))
        low, high = (int(scaling.inputs["minCapacity"]), int(scaling.inputs["maxCapacity"])) if scaling else (count, count)
        host = instances_in(ctx.regions.get("aws", "")).get(itype)
        facts = MODELS.get(model_id or "")
        expected, rps, need = (low, 0.0, low) if host is None else _plan_replicas(
            facts, host.gpu_count, host.total_gpu_memory_gib, host.gpu.bandwidth_gb_s, host.gpu.bf16_tflops or 0,
            low, high, ctx.usage)
        item = ctx.item(r, "aws", "sagemaker-hosting", itype, "instance-hour",
                        _replica_hours((low, expected, high), ctx.usage), f"{itype} x {low}..{high} ({model_id or 'model'})")
        est.serving.append(Serving(r.name, model_id or "?", (low, expected, high), rps, need, item.unit_usd))
        items.append(item)
    return items


def _sagemaker_model_id(model: Resource | None) -> str | None:
    if model is None:
        return None
    tags = model.inputs.get("tags") or {}
    env = (model.inputs.get("primaryContainer") or {}).get("environment") or {}
    return tags.get("model-id") or env.get("SM_VLLM_MODEL") or env.get("HF_MODEL_ID")


def _vertex_deployment(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
    resources = r.inputs["deployConfig"]["dedicatedResources"]
    spec = resources["machineSpec"]
    machine, accelerator, count = spec["machineType"], spec.get("acceleratorType"), int(spec.get("acceleratorCount", 0))
    low, high = int(resources.get("minReplicaCount", 1)), int(resources.get("maxReplicaCount", 1))
    model_id = r.inputs.get("huggingFaceModelId", "")
    facts = MODELS.get(model_id)
    expected, rps, need = low, 0.0, low
    if accelerator in gcp_machines.ACCELERATORS:
        host = gcp_machines.host(machine, accelerator, count)
        expected, rps, need = _plan_replicas(facts, count, host.total_gpu_memory_gib, host.gpu.bandwidth_gb_s,
                                             host.gpu.bf16_tflops or 0, low, high, ctx.usage)
    hours = _replica_hours((low, expected, high), ctx.usage)
    items = [ctx.item(r, "gcp", "vertex-prediction", machine, "node-hour", hours,
                      f"{machine} x {low}..{high} ({model_id})")]
    if accelerator:
        items.append(ctx.item(r, "gcp", "vertex-prediction-gpu", accelerator, "gpu-hour",
                              tuple(h * count for h in hours), f"{count} x {accelerator} per node"))  # type: ignore[arg-type]
    prices = [items[0].unit_usd] + ([items[1].unit_usd * count] if accelerator and items[1].unit_usd is not None
                                    else [None] if accelerator else [])
    replica_usd = None if None in prices else sum(prices)  # type: ignore[arg-type]
    est.serving.append(Serving(r.name, model_id or "?", (low, expected, high), rps, need, replica_usd))
    psc = (r.inputs.get("endpointConfig") or {}).get("privateServiceConnectConfig")
    if psc and psc.get("enablePrivateServiceConnect"):
        items.append(ctx.item(r, "gcp", "psc-endpoint", "hour", "hour", _flat(HOURS_PER_MONTH),
                              "Private Service Connect endpoint (forwarding rule)"))
    return items


def _interface_endpoint(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
    if r.inputs.get("vpcEndpointType") != "Interface":
        return []
    zones = len(r.inputs.get("subnetIds", []))
    service = r.inputs.get("serviceName", "").split(f".{ctx.regions.get('aws', '')}.", 1)[-1]
    return [ctx.item(r, "aws", "vpc-endpoint", "interface-az-hour", "endpoint-zone-hour",
                     _flat(zones * HOURS_PER_MONTH), f"interface endpoint {service} in {zones} zones",
                     "plus per-GB data processing, not estimated")]


def _monthly(provider: str, service: str, sku: str, description: str, note: str = ""):
    def rule(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
        return [ctx.item(r, provider, service, sku, "month", _flat(1), description, note)]
    return rule


def _hourly(provider: str, service: str, sku: str, description: str, note: str = ""):
    def rule(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
        return [ctx.item(r, provider, service, sku, "hour", _flat(HOURS_PER_MONTH), description, note)]
    return rule


def _artifact_bucket(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
    """Weights staged for S3-sourced models, plus captured requests (kept 30 days by the lifecycle rule)."""
    weights = 0.0
    captured = 0.0
    u = ctx.usage
    for siblings in ctx.siblings.values():
        for s in siblings:
            if s.type == "aws:sagemaker/model:Model" and (s.inputs.get("primaryContainer") or {}).get("modelDataSource"):
                facts = MODELS.get(_sagemaker_model_id(s) or "")
                weights += weights_bytes(facts, "none") if facts else 0
            if s.type == "aws:sagemaker/endpointConfiguration:EndpointConfiguration":
                capture = s.inputs.get("dataCaptureConfig") or {}
                if capture.get("enableCapture"):
                    tokens = u.input_tokens_per_request + u.output_tokens_per_request
                    captured += (u.requests_per_day * 30 * capture.get("initialSamplingPercentage", 0) / 100
                                 * tokens * CAPTURE_BYTES_PER_TOKEN)
    gb = (weights + captured) / 1e9
    return [ctx.item(r, "aws", "s3", "standard", "GB-month", _flat(gb),
                     f"{gb:.2f} GB: staged weights and 30 days of captured requests")]


def _request_log_dataset(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
    u = ctx.usage
    rate = 0.0
    for s in ctx.siblings.get(r.component, []):
        body = (s.inputs.get("environment") or {}).get("BODY") if s.type == "command:local:Command" else None
        if _known(body):
            rate = json.loads(body)["predictRequestResponseLoggingConfig"]["samplingRate"]
    tokens = u.input_tokens_per_request + u.output_tokens_per_request
    gb = u.requests_per_day * 30 * rate * tokens * CAPTURE_BYTES_PER_TOKEN / 1e9
    return [ctx.item(r, "gcp", "bigquery", "active-storage", "GB-month", _flat(gb),
                     f"{gb:.3f} GB: 30 days of logged requests at sampling {rate:g}")]


RULES: dict[str, Callable[[Resource, Ctx, Estimate], list[LineItem]]] = {
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": _sagemaker_config,
    "aws:ec2/natGateway:NatGateway": _hourly("aws", "nat-gateway", "hour", "NAT gateway",
                                             "plus per-GB data processing (Hub downloads), not estimated"),
    "aws:ec2/eip:Eip": _hourly("aws", "public-ipv4", "hour", "public IPv4 address"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": _interface_endpoint,
    "aws:kms/key:Key": _monthly("aws", "kms", "key", "customer-managed KMS key", "plus per-request charges"),
    "aws:secretsmanager/secret:Secret": _monthly("aws", "secretsmanager", "secret", "secret"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": _monthly("aws", "cloudwatch", "alarm", "metric alarm"),
    "aws:cloudwatch/dashboard:Dashboard": _monthly("aws", "cloudwatch", "dashboard", "dashboard"),
    "aws:s3/bucket:Bucket": _artifact_bucket,
    "gcp:vertex/aiEndpointWithModelGardenDeployment:AiEndpointWithModelGardenDeployment": _vertex_deployment,
    "gcp:compute/routerNat:RouterNat": _hourly("gcp", "cloud-nat", "gateway-hour", "Cloud NAT gateway",
                                               "plus per-GB data processing, not estimated"),
    "gcp:dns/managedZone:ManagedZone": _monthly("gcp", "cloud-dns", "zone", "private DNS zone"),
    "gcp:secretmanager/secretVersion:SecretVersion": _monthly("gcp", "secret-manager", "version", "secret version"),
    "gcp:bigquery/dataset:Dataset": _request_log_dataset,
}

# Resource types that cost nothing by themselves (their usage, where any, is billed on a priced resource).
FREE = frozenset({
    "aws:kms/alias:Alias", "aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:ec2/routeTable:RouteTable",
    "aws:ec2/routeTableAssociation:RouteTableAssociation", "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
    "aws:ec2/securityGroup:SecurityGroup", "aws:ec2/internetGateway:InternetGateway", "aws:ec2/flowLog:FlowLog",
    "aws:cloudwatch/logGroup:LogGroup", "aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls", "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketPolicy:BucketPolicy",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:secretsmanager/secretVersion:SecretVersion", "aws:sagemaker/model:Model", "aws:sagemaker/endpoint:Endpoint",
    "aws:appautoscaling/target:Target", "aws:appautoscaling/policy:Policy",
    "gcp:projects/service:Service", "gcp:compute/network:Network", "gcp:compute/subnetwork:Subnetwork",
    "gcp:compute/router:Router", "gcp:compute/firewall:Firewall", "gcp:serviceaccount/account:Account",
    "gcp:projects/iAMMember:IAMMember", "gcp:secretmanager/secret:Secret",
    "gcp:secretmanager/secretIamBinding:SecretIamBinding",
    "gcp:networkconnectivity/serviceConnectionPolicy:ServiceConnectionPolicy", "gcp:dns/recordSet:RecordSet",
    "gcp:monitoring/alertPolicy:AlertPolicy", "gcp:monitoring/dashboard:Dashboard", "command:local:Command",
    "aws:ecr/repository:Repository", "aws:ecr/lifecyclePolicy:LifecyclePolicy", "docker-build:index:Image",
    "gcp:artifactregistry/repository:Repository", "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember",
})
# Log ingestion (flow logs, endpoint logs), DNS queries and image storage in registries are usage-billed and not
# estimated: their resources are listed as free above and the report's footnote says so.
NOT_ESTIMATED = ("log ingestion and storage", "per-GB data processing", "DNS queries", "KMS requests",
                 "registry storage of our serving images")


def estimate(resources: Iterable[Resource], regions: dict[str, str], usage: UsageProfile, lookup: Lookup,
             budget_monthly_usd: float | None = None) -> Estimate:
    resources = list(resources)
    siblings: dict[str | None, list[Resource]] = {}
    for r in resources:
        siblings.setdefault(r.component, []).append(r)
    ctx = Ctx(regions, usage, lookup, siblings)
    est = Estimate(items=[], free=[], unpriced=[], usage=usage, budget_monthly_usd=budget_monthly_usd)
    for r in resources:
        if r.type.startswith("selfhost:") or r.type.startswith("pulumi:"):
            continue
        rule = RULES.get(r.type)
        if rule is not None:
            est.items += rule(r, ctx, est)
        elif r.type in FREE:
            est.free.append(r.name)
        else:
            est.unpriced.append(r.type)
    return est


def estimate_from_outputs(resources: Iterable[Resource], outputs: dict[str, Any], lookup: Lookup,
                          usage: dict[str, Any] | None = None) -> Estimate:
    """Price `resources` with the regions, usage profile and budget the stack exported (`awsRegion`,
    `gcpRegion`, `costInputs`); `usage` overrides the profile (to compare two commits at the same load)."""
    inputs = outputs.get("costInputs") or {}
    regions = {k: v for k, v in (("aws", outputs.get("awsRegion")), ("gcp", outputs.get("gcpRegion"))) if v}
    return estimate(resources, regions, usage_from(usage or inputs.get("usage")), lookup,
                    inputs.get("budgetMonthlyUsd"))


def resources_from_preview(graph: dict[str, Any]) -> list[Resource]:
    """The engine's view of a `selfhost preview --json` stack document."""
    names = {r["urn"]: r["name"] for r in graph["resources"]}
    return [Resource(r["type"], r["name"], names.get(r["parent"]) if r.get("parent") else None, r["inputs"])
            for r in graph["resources"] if r.get("custom", True)]


def usage_from(data: dict[str, Any] | None) -> UsageProfile:
    data = data or {}
    return UsageProfile(
        hours_per_day=data.get("hoursPerDay", 24), requests_per_day=data.get("requestsPerDay", 10_000),
        input_tokens_per_request=data.get("inputTokensPerRequest", 500),
        output_tokens_per_request=data.get("outputTokensPerRequest", 200),
        compare_with=tuple(data.get("compareWith", ())),
    )


def usage_profile(usage: Any) -> UsageProfile:
    """The engine's usage profile from the config model's `usage` section."""
    return UsageProfile(usage.hours_per_day, usage.requests_per_day, usage.input_tokens_per_request,
                        usage.output_tokens_per_request, tuple(usage.compare_with))


def summary(est: Estimate) -> dict[str, Any]:
    """The short form the program exports as its `costEstimate` output."""
    low, expected, high = est.total()
    out: dict[str, Any] = {
        "monthlyUsd": {"min": round(low, 2), "expected": round(expected, 2), "max": round(high, 2)},
        "unknownPrices": len(est.unknown),
        "usdPer1mTokens": None if est.usd_per_1m_tokens is None else round(est.usd_per_1m_tokens, 4),
    }
    if est.budget_monthly_usd is not None:
        out["budgetMonthlyUsd"] = est.budget_monthly_usd
        out["withinBudget"] = not est.over_budget
    return out
