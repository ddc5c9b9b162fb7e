"""Hugging Face Inference Endpoints: the `hf-endpoint` target kind, on the `huggingface` platform.

A managed endpoint on AWS or Google Cloud hardware that Hugging Face runs: the easiest deployment, with the least
control (no network of ours, no IAM of ours; Hugging Face's own serving image for the model's engine). There is no
Pulumi provider for it: components/hf/ declares it with a dynamic provider over the `huggingface_hub` client.
Its config model, its checks against the published instance table, its hosts for `selfhost size` and its cost
rule (Hugging Face's published hourly rates, scale-to-zero hours from the usage profile) are here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from ..catalog.hf_instances import INSTANCE_GPU, REGIONS, SERVICE, instances
from ..catalog.models import MODELS
from ..cost_rules import HOURS_PER_MONTH, Ctx, Estimate, LineItem, Plan, Resource, Serving, plan_replicas
from ..schema import MISSING, PROJECT, EnvironmentSpec, Problem, Slug, Strict
from ..sizing import Hardware, startup_timeout_seconds
from .base import Endpoint, HostShape, TargetKind, target_problem

if TYPE_CHECKING:
    import pulumi

    from ..sizing_options import Host, Lookup

# Hugging Face's scale-to-zero timeouts: the endpoint sleeps this many minutes after its last request. (The
# console offers 15 minutes to 1 hour, then hours; the API takes minutes.)
SCALE_TO_ZERO_MINUTES = (15, 30, 60, 120, 240, 480, 720, 1440)
# The `huggingface_hub` client's framework value for the models we serve (safetensors for PyTorch).
FRAMEWORK = "pytorch"
STARTUP_BOUNDS_S = (60, 7200)


class HfScaling(Strict):
    min_replicas: int = Field(default=0, ge=0, le=20)
    """0: the endpoint scales to zero after `scaleToZeroAfterMinutes` without requests (then a request waits for a
    replica to start: Hugging Face answers 503 until it is up)."""
    max_replicas: int = Field(default=1, ge=1, le=20)
    scale_to_zero_after_minutes: int | None = 15
    """With minReplicas 0: minutes without requests before the endpoint sleeps (one of 15, 30, 60, 120, 240, 480,
    720, 1440)."""


class HfEndpointTarget(Strict):
    kind: Literal["hf-endpoint"]
    name: Slug
    model: str
    vendor: Literal["aws", "gcp"] = "aws"
    region: str = "us-east-1"
    instance_type: str = "nvidia-l4"
    """Hugging Face's instance type (nvidia-t4, nvidia-l4, nvidia-a10g, nvidia-l40s, nvidia-a100, nvidia-h100,
    nvidia-h200)."""
    instance_size: str = Field(default="x1", pattern=r"^x\d+$")
    """x1, x2, x4, x8: the GPU count."""
    concurrency: int = Field(default=1, ge=1, le=1024)
    scaling: HfScaling = HfScaling()
    endpoint_type: Literal["private", "authenticated", "public"] = "authenticated"
    """`authenticated`: callers send a Hugging Face token with access to the namespace; `private`: reachable only
    through AWS PrivateLink; `public`: anyone on the internet, refused unless `allowPublic` says so."""
    allow_public: bool = False
    task: Literal["text-generation"] = "text-generation"
    image: Literal["managed"] = "managed"
    """Hugging Face's own serving image for the model's engine (vllm, tgi or llamacpp)."""
    startup_timeout_seconds: int | None = Field(default=None, ge=60, le=7200)
    """How long `pulumi up` waits for the endpoint to run (default: sized from the model)."""


def _instance_problems(t: HfEndpointTarget) -> tuple[str, Any, str, str] | None:
    """(key, value, message, allowed) when the vendor, region or instance is not offered."""
    if t.region not in REGIONS[t.vendor]:
        return "region", t.region, f"Hugging Face runs no endpoints on {t.vendor} in this region", \
            ", ".join(REGIONS[t.vendor])
    if t.instance_type not in INSTANCE_GPU:
        return "instanceType", t.instance_type, "not a GPU instance type of Hugging Face's price table", \
            ", ".join(INSTANCE_GPU)
    offered = instances(t.vendor)
    if f"{t.instance_type}-{t.instance_size}" not in offered:
        sizes = [i.instance_size for i in offered.values() if i.instance_type == t.instance_type]
        return "instanceSize", t.instance_size, f"{t.vendor} offers no {t.instance_type} of this size", \
            ", ".join(sizes) or f"none: {t.instance_type} is not offered on {t.vendor}"
    return None


def _endpoint(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
    """Replica-hours at Hugging Face's hourly rate: the minimum all month, the replicas the usage needs in its busy
    hours, and, for an endpoint that scales to zero, the minutes it stays up after the busy hours end."""
    inputs = r.inputs
    if "instanceType" not in inputs or "vendor" not in inputs:
        return []
    vendor, sku = inputs["vendor"], f"{inputs['instanceType']}-{inputs['instanceSize']}"
    low, high = int(inputs.get("minReplica", 0)), int(inputs.get("maxReplica", 1))
    model_id = inputs.get("repository", "")
    host = instances(vendor).get(sku)
    plan = Plan(low, low, None) if host is None else plan_replicas(
        MODELS.get(model_id), Hardware.of_gpu(host.gpu, host.gpu_count, host.total_gpu_memory_gib), low, high,
        ctx.usage)
    u = ctx.usage
    busy = u.hours_per_day / 24
    awake = plan.expected if u.requests_per_day else low
    # Scaled to zero outside the busy hours, the endpoint is billed until its timeout after the last request.
    tail_h = (min(float(inputs.get("scaleToZeroTimeout") or 0) / 60, 24 - u.hours_per_day)
              if low == 0 and u.requests_per_day else 0.0)
    expected = (low * (1 - busy) + awake * busy) * HOURS_PER_MONTH + (awake - low) * tail_h * HOURS_PER_MONTH / 24
    item = ctx.item(r, "huggingface", SERVICE, sku, "replica-hour", (low * HOURS_PER_MONTH, expected,
                    high * HOURS_PER_MONTH), f"{sku} on {vendor} x {low}..{high} ({model_id or 'model'})",
                    region=vendor)
    est.serving.append(Serving(r.name, model_id or "?", (low, plan.expected, high), plan, item.unit_usd))
    return [item]


def _quota(r: Resource, ctx: Any) -> list[Any]:
    """No cloud quota of ours: Hugging Face runs the hardware. Its own per-namespace limits exist, but no API
    reports them, so they are named, not checked."""
    from ..quotas import CapacityHint

    i = r.inputs
    return [CapacityHint(r.name, "ok", f"{i.get('maxReplica')} x {i.get('instanceType')}-{i.get('instanceSize')} on "
                         f"{i.get('vendor')} {i.get('region')} draws on the Hugging Face namespace's own GPU limits "
                         "(no API we use reports them: not checked)")]


class HfEndpoint(TargetKind):
    kind = "hf-endpoint"
    config = HfEndpointTarget
    platform = "huggingface"
    summary = "Hugging Face Inference Endpoint (managed, on AWS or Google Cloud hardware run by Hugging Face)"
    engines = ("vllm", "tgi", "llamacpp")
    cost_rules: ClassVar[dict[str, Any]] = {"pulumi-python:dynamic/hf:InferenceEndpoint": _endpoint}
    quota_rules: ClassVar[dict[str, Any]] = {"pulumi-python:dynamic/hf:InferenceEndpoint": _quota}

    def adapters_refused(self, env: EnvironmentSpec, target: Any) -> str | None:
        # The endpoint's `model` names one repository its managed image serves; this kind passes that image no LoRA
        # settings, so an adapter would be declared and never served.
        return ("an Inference Endpoint serves the one repository its `model` names: this kind gives its managed "
                "image no adapters (serve them on a vllm target of another kind)")

    def validate(self, env: EnvironmentSpec, index: int, target: Any) -> list[Problem]:
        t: HfEndpointTarget = target
        problems: list[Problem] = []
        p = lambda key, *rest: problems.append(target_problem(index, key, *rest))  # noqa: E731
        if not env.hf_token:
            problems.append(Problem(f"{PROJECT}:hfToken", MISSING,
                                    f"required secret: targets[{index}] creates a Hugging Face Inference Endpoint",
                                    "`pulumi config set --secret hfToken <token>` (a token that may manage "
                                    "endpoints of the namespace)"))
        if t.endpoint_type == "public" and not t.allow_public:
            p("endpointType", t.endpoint_type, "a public endpoint answers anyone on the internet, unauthenticated",
              "authenticated or private; or set allowPublic: true to mean it")
        if t.scaling.min_replicas > t.scaling.max_replicas:
            return problems  # reported by the generic checks
        stz = t.scaling.scale_to_zero_after_minutes
        if t.scaling.min_replicas == 0 and stz not in SCALE_TO_ZERO_MINUTES:
            p("scaling.scaleToZeroAfterMinutes", MISSING if stz is None else stz,
              "scaling to zero (minReplicas 0) needs a timeout", ", ".join(map(str, SCALE_TO_ZERO_MINUTES)))
        set_by_user = "scale_to_zero_after_minutes" in t.scaling.model_fields_set
        if t.scaling.min_replicas > 0 and stz is not None and set_by_user:
            p("scaling.scaleToZeroAfterMinutes", stz, "applies only with minReplicas 0", "unset")
        bad = _instance_problems(t)
        if bad:
            p(*bad)
            return problems
        model = env.model(t.model)
        facts = model.resolved_facts()
        if facts is None:
            return problems
        host = instances(t.vendor)[f"{t.instance_type}-{t.instance_size}"]
        return problems + self.fit_problems(env, index, t, facts, "instanceType", t.instance_type, host.gpu_count,
                                            host.total_gpu_memory_gib, f"{host.gpu_count} x {host.gpu.name}",
                                            t.vendor)

    def declare(self, env: EnvironmentSpec, target: Any, foundation: Any,
                hf_token: pulumi.Output[str] | None) -> Endpoint:
        import pulumi

        from ..hf.serving import HfServing, HfServingArgs

        t: HfEndpointTarget = target
        model = env.model(t.model)
        facts = model.resolved_facts()
        assert facts is not None and hf_token is not None  # validated
        startup = t.startup_timeout_seconds or startup_timeout_seconds(facts, model.quantization, "hub",
                                                                       STARTUP_BOUNDS_S)
        serving = HfServing(f"{env.name}-{t.name}", HfServingArgs(
            account=foundation, model=model, token=hf_token, framework=FRAMEWORK, wait_timeout_seconds=startup,
            vendor=t.vendor, region=t.region, instance_type=t.instance_type, instance_size=t.instance_size,
            task=t.task, endpoint_type=t.endpoint_type, min_replicas=t.scaling.min_replicas,
            max_replicas=t.scaling.max_replicas, scale_to_zero_after_minutes=t.scaling.scale_to_zero_after_minutes))
        host = instances(t.vendor)[f"{t.instance_type}-{t.instance_size}"]
        return Endpoint(
            name=t.name, kind=self.kind, platform=self.platform, region=f"{t.vendor}/{t.region}", model=model.id,
            invoke_url=serving.url, openai_base_url=serving.openai_base_url,
            auth=self.auth(t),
            host=HostShape(host.sku, host.gpu.name, host.gpu_count),
            min_replicas=t.scaling.min_replicas, max_replicas=t.scaling.max_replicas,
            image=f"huggingface:{model.engine}",
            startup_timeout_seconds=startup,
            details={"endpointName": serving.endpoint_name, "namespace": foundation.namespace,
                     "endpointType": t.endpoint_type,
                     "scaleToZeroAfterMinutes": t.scaling.scale_to_zero_after_minutes
                     if t.scaling.min_replicas == 0 else None},
            # The endpoint takes the namespace's token as its bearer key (stripped: a file's newline would break
            # the header).
            router_key=pulumi.Output.secret(hf_token.apply(str.strip)) if env.routed(t.name) else None,
        )

    def auth(self, target: Any) -> str:
        # Authenticated: a Hugging Face token of the namespace; private: only over AWS PrivateLink; public: none.
        return {"authenticated": "hf-token", "private": "aws-privatelink"}.get(target.endpoint_type, "none")

    def hosts(self, region: str, lookup: Lookup) -> list[Host]:
        from ..sizing_options import Host

        return [Host("huggingface", self.kind, f"{i.sku} ({vendor})", "/".join(REGIONS[vendor]), i.gpu, i.gpu_count,
                     i.total_gpu_memory_gib, lookup("huggingface", SERVICE, vendor, i.sku))
                for vendor in REGIONS for i in instances(vendor).values()]
