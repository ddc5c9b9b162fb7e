"""Vertex AI endpoints with dedicated GPUs, deployed through Model Garden: the `vertex` target kind.

Its config model, its checks against the Vertex machine catalog, its hosts for `selfhost size`, its cost rules,
and its declaration (components/gcp/vertex.py, imported only when a stack declares one).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from ..catalog import gcp_machines, tpus
from ..catalog.engines import ENGINES, FP8_ARCHS
from ..catalog.gpus import GPUS
from ..catalog.models import MODELS
from ..cost_rules import (
    CAPTURE_BYTES_PER_TOKEN,
    HOURS_PER_MONTH,
    Ctx,
    Estimate,
    LineItem,
    Resource,
    Serving,
    flat,
    known,
    lora_of,
    monthly,
    plan_replicas,
    replica_hours,
)
from ..quotas import QuotaCtx, QuotaItem
from ..schema import MISSING, EnvironmentSpec, Problem, Slug, Strict, no_fp8
from ..sizing import Hardware
from .base import Endpoint, HostShape, Limitation, TargetKind, target_problem
from .gcp import GCP, gcp_gpu_host, gcp_gpu_machine_items

if TYPE_CHECKING:
    import pulumi

    from ..sizing_options import Host, Lookup


class VertexScaling(Strict):
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=1, ge=1, le=1000)
    target_duty_cycle_percent: int = Field(default=60, ge=1, le=100)
    """Autoscaling goal: GPU duty cycle (aiplatform.googleapis.com/prediction/online/accelerator/duty_cycle)."""


class RequestLogging(Strict):
    enabled: bool = False
    """Store sampled requests and responses in a BigQuery table of the environment (they hold user prompts)."""
    sampling_rate: float = Field(default=0.1, gt=0, le=1)


class VertexAlarms(Strict):
    p99_latency_ms: int = Field(default=20_000, gt=0)
    errors_per_minute: int = Field(default=5, ge=1)


class VertexTarget(Strict):
    kind: Literal["vertex"]
    name: Slug
    model: str
    """The `name` of an entry in `models`."""
    machine_type: str
    """e.g. g2-standard-12 (L4), a2-highgpu-1g (A100 40GB), a3-highgpu-1g (H100), n1-standard-8 (T4, V100); or a
    single-host TPU machine type: ct5lp-hightpu-1t/4t/8t (TPU v5e), ct6e-standard-1t/4t/8t (TPU v6e)."""
    accelerator_type: str | None = None
    """Vertex's accelerator enum, e.g. NVIDIA_L4; must be the one the machine family takes. Unset on a TPU machine
    type, which carries its chips."""
    accelerator_count: int | None = Field(default=None, ge=1, le=16)
    """GPUs (1 unless set); on a TPU machine type, its chips (they come with it: leave it unset)."""
    tpu_topology: str | None = None
    """A TPU machine type's chip topology as the machine spec takes it (`2x2`); default: the machine's own."""
    concurrency: int = Field(default=1, ge=1, le=1024)
    scaling: VertexScaling = VertexScaling()
    endpoint: Literal["dedicated", "private"] = "dedicated"
    """`dedicated`: a dedicated public DNS name (IAM-authenticated). `private`: Private Service Connect into the
    environment's VPC, no public path."""
    request_logging: RequestLogging = RequestLogging()
    alarms: VertexAlarms = VertexAlarms()
    spot: bool = False
    startup_timeout_seconds: int | None = Field(default=None, ge=60, le=7200)
    image: Literal["managed", "selfhost"] = "managed"
    """`managed`: Google's Model Garden vLLM image. `selfhost`: our image (containers/vllm), built and pushed to
    Artifact Registry by `pulumi up`."""


def _quota(r: Resource, ctx: QuotaCtx) -> list[QuotaItem]:
    """Vertex AI's custom-model-serving GPU quota of the accelerator in the region (its spot one for spot
    nodes), at the deployment's replica bounds. (A changed deployment is replaced, not rolled: no surge.)"""
    resources = r.inputs["deployConfig"]["dedicatedResources"]
    spec = resources["machineSpec"]
    low, high = int(resources.get("minReplicaCount", 1)), int(resources.get("maxReplicaCount", 1))
    spot = "-spot" if resources.get("spot") else ""
    if (tpu := tpus.machine(spec.get("machineType", ""))) is not None:
        # Vertex's TPU serving quota is per generation, in chips.
        chips, generation = tpu.chips, tpus.CHIPS[tpu.chip].generation
        return [ctx.need(f"vertex-tpus{spot}:{generation}", r, low * chips, high * chips,
                         region=r.inputs.get("location"), project=r.inputs.get("project"))]
    if not spec.get("acceleratorType"):
        return []
    per_node = int(spec.get("acceleratorCount", 1))
    return [ctx.need(f"vertex-gpus{spot}:{spec['acceleratorType']}", r, low * per_node, high * per_node,
                     region=r.inputs.get("location"), project=r.inputs.get("project"))]


def _deployment(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
    """Node-hours and GPU-hours of the deployment at the replicas the usage needs, and its PSC endpoint."""
    resources = r.inputs["deployConfig"]["dedicatedResources"]
    spec = resources["machineSpec"]
    machine, accelerator, count = spec["machineType"], spec.get("acceleratorType"), int(spec.get("acceleratorCount", 0))
    low, high = int(resources.get("minReplicaCount", 1)), int(resources.get("maxReplicaCount", 1))
    model_id = r.inputs.get("huggingFaceModelId", "")
    # The engine's own flags say how the weights and the KV cache are stored (Model Garden takes no labels).
    args = dict(a.removeprefix("--").split("=", 1) for a in
                ((r.inputs.get("modelConfig") or {}).get("containerSpec") or {}).get("args") or [] if "=" in a)
    spelled = {v: k for k, v in ENGINES["vllm"].quantization.items() if v}
    # Google's image takes the LoRA slots as flags too (--max-loras, --max-lora-rank); our image's are not read here.
    quantization, kv_bytes = spelled.get(args.get("quantization", ""), "none"), (
        1.0 if args.get("kv-cache-dtype") == "fp8" else 2.0)
    lora = lora_of({"s": f"{args.get('max-loras')}x{args.get('max-lora-rank')}"}, "s")
    tpu = tpus.machine(machine)
    items = _tpu_items(r, ctx, est, tpu, model_id, low, high, bool(resources.get("spot")), quantization, kv_bytes) \
        if tpu is not None else \
        gcp_gpu_machine_items(r, ctx, est, model_id=model_id, machine=machine, accelerator=accelerator,
                                  count=count, low=low, high=high,
                                  services=("vertex-prediction", "vertex-prediction-gpu"), unit="node-hour",
                                  description=f"{machine} x {low}..{high} ({model_id})", per="node",
                                  quantization=quantization, kv_bytes=kv_bytes, lora=lora)
    psc = (r.inputs.get("endpointConfig") or {}).get("privateServiceConnectConfig")
    if psc and psc.get("enablePrivateServiceConnect"):
        items.append(ctx.item(r, "gcp", "psc-endpoint", "hour", "hour", flat(HOURS_PER_MONTH),
                              "Private Service Connect endpoint (forwarding rule)"))
    return items


def _tpu_items(r: Resource, ctx: Ctx, est: Estimate, tpu: tpus.TpuMachine, model_id: str, low: int, high: int,
               spot: bool, quantization: str, kv_bytes: float) -> list[LineItem]:
    """Chip-hours of a TPU deployment (Vertex prices TPU prediction per chip-hour) at the replicas the usage needs:
    each replica is one host of the machine's chips, tensor parallel over them."""
    chip = tpus.CHIPS[tpu.chip]
    plan = plan_replicas(MODELS.get(model_id), Hardware.of_gpu(GPUS[chip.name], tpu.chips), low, high, ctx.usage,
                         quantization, kv_bytes=kv_bytes)
    hours = replica_hours((low, plan.expected, high), ctx.usage)
    item = ctx.item(r, "gcp", "vertex-prediction-tpu", chip.generation + ("-spot" if spot else ""), "hour",
                    (hours[0] * tpu.chips, hours[1] * tpu.chips, hours[2] * tpu.chips),
                    f"{tpu.name} x {low}..{high} ({tpu.chips} x {chip.name}, {model_id})", "per chip-hour")
    est.serving.append(Serving(r.name, model_id or "?", (low, plan.expected, high), plan,
                               None if item.unit_usd is None else item.unit_usd * tpu.chips))
    return [item]


def _request_log_dataset(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
    """30 days of logged requests at the sampling rate the logging switch sets."""
    u = ctx.usage
    rate = 0.0
    switch = ctx.sibling(r, "command:local:Command")
    body = (switch.inputs.get("environment") or {}).get("BODY") if switch else None
    triggers = (switch.inputs.get("triggers") or []) if switch else []
    if known(body):
        rate = json.loads(body)["predictRequestResponseLoggingConfig"]["samplingRate"]
    elif len(triggers) > 1 and isinstance(triggers[1], int | float):
        # Inside the program the body waits for the dataset's id; the switch's triggers carry the rate as given.
        rate = float(triggers[1])
    tokens = u.input_tokens_per_request + u.output_tokens_per_request
    gb = u.requests_per_day * 30 * rate * tokens * CAPTURE_BYTES_PER_TOKEN / 1e9
    return [ctx.item(r, "gcp", "bigquery", "active-storage", "GB-month", flat(gb),
                     f"{gb:.3f} GB: 30 days of logged requests at sampling {rate:g}")]


# The weight formats vLLM TPU runs on v5e and v6e (components/catalog/tpus.py VLLM_TPU: bf16, int8 W8A8/W8A16, AWQ
# int4), in our quantization names.
TPU_QUANTIZATIONS = ("none", "int8", "awq")

# Why the kind refuses what it refuses (error texts as named constants).
# Vertex runs a deployed model's prediction container as "a service account managed by Vertex AI", which reads only
# the model artifacts it staged at AIP_STORAGE_URI and whose permissions "you can't customize" (Vertex AI docs, "Use
# a custom service account", Prediction containers, read 2026-12-07); only a DeployedModel naming a service account
# of your own reads more, and the Model Garden deploy resource this kind declares takes neither artifacts nor a
# service account.
GS_UNREADABLE = ("Vertex runs the serving container as a Vertex-managed service account that reads only the "
                 "artifacts Vertex staged itself and cannot be granted a bucket (Vertex AI docs, \"Use a custom "
                 "service account\"); the Model Garden deployment declared here takes no artifacts and no service "
                 "account: serve gs:// weights on gcp-pool or Kubernetes, or the Hub revision here")
HUB_ADAPTER_ON_MANAGED = ("Google's vLLM image fetches a Hub adapter by repository id alone, at its newest commit, "
                          "not the pinned revision (and cannot read gs://): serve adapters with `image: selfhost`, "
                          "whose adapter downloads them pinned")


class Vertex(TargetKind):
    kind = "vertex"
    config = VertexTarget
    platform = "gcp"
    weight_schemes = ("hub",)
    weight_refusals: ClassVar[Mapping[str, str]] = {"gs": GS_UNREADABLE}
    summary = "Vertex AI endpoint with dedicated GPUs (Model Garden deployment)"
    limitations = (
        Limitation("scaling.minReplicas", lambda t: t.scaling.min_replicas == 0, lambda t: 0,
                   "Vertex AI dedicated resources keep at least one replica", "1 or more"),
    )
    quota_rules: ClassVar[dict[str, Any]] = {
        "gcp:vertex/aiEndpointWithModelGardenDeployment:AiEndpointWithModelGardenDeployment": _quota}
    cost_rules: ClassVar[dict[str, Any]] = {
        "gcp:vertex/aiEndpointWithModelGardenDeployment:AiEndpointWithModelGardenDeployment": _deployment,
        "gcp:dns/managedZone:ManagedZone": monthly("gcp", "cloud-dns", "zone", "private DNS zone"),
        "gcp:bigquery/dataset:Dataset": _request_log_dataset,
    }
    free_types = frozenset({
        "gcp:networkconnectivity/serviceConnectionPolicy:ServiceConnectionPolicy", "gcp:dns/recordSet:RecordSet",
        "gcp:monitoring/alertPolicy:AlertPolicy", "gcp:monitoring/dashboard:Dashboard", "command:local:Command",
    })

    def platform_needs(self, target: Any) -> frozenset[str]:
        from ..gcp.vertex import LOGGING_API

        return super().platform_needs(target) | ({f"api:{LOGGING_API}"} if target.request_logging.enabled else set())

    def adapters_refused(self, env: EnvironmentSpec, target: Any) -> str | None:
        t: VertexTarget = target
        return HUB_ADAPTER_ON_MANAGED if t.image == "managed" else None

    def validate(self, env: EnvironmentSpec, index: int, target: Any) -> list[Problem]:
        t: VertexTarget = target
        problems: list[Problem] = []
        p = lambda key, *rest: problems.append(target_problem(index, key, *rest))  # noqa: E731
        region = GCP.of(env).region  # its absence is the platform's problem
        model = env.model(t.model)
        if (tpu := tpus.machine(t.machine_type)) is not None:
            return problems + self._tpu_problems(env, index, t, tpu, region)
        if t.accelerator_type is None:
            p("acceleratorType", MISSING, f"{t.machine_type} is a GPU machine type: name its accelerator",
              ", ".join(gcp_machines.allowed_accelerators(t.machine_type)) or "a Vertex accelerator enum")
            return problems
        if t.tpu_topology is not None:
            p("tpuTopology", t.tpu_topology, f"{t.machine_type} is not a TPU machine type", "leave it unset")
        allowed = gcp_machines.allowed_accelerators(t.machine_type)
        if not allowed:
            p("machineType", t.machine_type, "not a GPU or TPU machine type Vertex AI serves on",
              ", ".join([*gcp_machines.gpu_machine_types(), *tpus.VERTEX_MACHINES]))
            return problems
        if t.accelerator_type not in allowed:
            other = (f" (or for {t.accelerator_type}: {', '.join(gcp_machines.machines_for(t.accelerator_type))})"
                     if t.accelerator_type in gcp_machines.ACCELERATORS else "")
            p("acceleratorType", t.accelerator_type, f"{t.machine_type} does not take this accelerator",
              ", ".join(allowed) + other)
            return problems
        count = t.accelerator_count or 1
        if count not in allowed[t.accelerator_type]:
            p("acceleratorCount", count,
              f"{t.machine_type} takes {t.accelerator_type} only in these counts",
              ", ".join(map(str, allowed[t.accelerator_type])))
            return problems
        if region is not None:
            offered = gcp_machines.VERTEX_REGION_ACCELERATORS.get(region)
            if offered is None:
                problems.append(Problem("gcp:region", region,
                                        "no Vertex AI GPU prediction known in this region",
                                        ", ".join(gcp_machines.VERTEX_REGION_ACCELERATORS)))
            elif t.accelerator_type not in offered:
                regions = [r for r, accs in gcp_machines.VERTEX_REGION_ACCELERATORS.items()
                           if t.accelerator_type in accs]
                p("acceleratorType", t.accelerator_type,
                  f"Vertex AI offers no {t.accelerator_type} in {region}",
                  f"{', '.join(sorted(offered))}; or regions {', '.join(regions)}")
        facts = model.resolved_facts()
        if facts is None:
            return problems
        gpu_host = gcp_machines.host(t.machine_type, t.accelerator_type, count)
        if model.quantization == "fp8" and gpu_host.gpu.arch not in FP8_ARCHS:
            p("acceleratorType", t.accelerator_type, no_fp8(gpu_host.gpu.name, model),
              ", ".join(a for a, g in gcp_machines.ACCELERATORS.items() if GPUS[g].arch in FP8_ARCHS))
        return problems + self.fit_problems(env, index, t, facts, "machineType", t.machine_type, count,
                                            gpu_host.total_gpu_memory_gib, f"{count} x {t.accelerator_type}", region)

    def _tpu_problems(self, env: EnvironmentSpec, index: int, t: VertexTarget, tpu: tpus.TpuMachine,
                      region: str | None) -> list[Problem]:
        """A TPU machine type: its chips come with it, in its one topology, in the regions that serve its
        generation, with Google's vLLM TPU image, bf16 or the weight formats vLLM TPU runs there."""
        problems: list[Problem] = []
        p = lambda key, *rest: problems.append(target_problem(index, key, *rest))  # noqa: E731
        chip = tpus.CHIPS[tpu.chip]
        model = env.model(t.model)
        if t.accelerator_type is not None:
            p("acceleratorType", t.accelerator_type, f"{t.machine_type} is a TPU machine type: its {tpu.chips} "
              f"{chip.name} chips come with it", "leave it unset")
        if t.accelerator_count not in (None, tpu.chips):
            p("acceleratorCount", t.accelerator_count, f"{t.machine_type} has {tpu.chips} chips",
              f"{tpu.chips}, or leave it unset")
        if t.tpu_topology not in (None, tpu.topology):
            same = [m.name for m in tpus.VERTEX_MACHINES.values()
                    if m.chip == tpu.chip and m.topology == t.tpu_topology]
            p("tpuTopology", t.tpu_topology, f"{t.machine_type} is a {tpu.topology} host",
              f"{tpu.topology}" + (f"; or machineType {', '.join(same)}" if same else ""))
        if t.image == "selfhost":
            p("image", t.image, "our image runs vLLM on CUDA: a TPU host runs Google's vLLM TPU image", "managed")
        if model.quantization not in TPU_QUANTIZATIONS:
            why = no_fp8(chip.name, model) if model.quantization == "fp8" else (
                f"vLLM TPU runs bf16, int8 and AWQ int4 weights on {chip.generation} ({model.quantization} is not "
                "among them)")
            p("machineType", t.machine_type, why, "a GPU machine type, or quantization " + ", ".join(TPU_QUANTIZATIONS))
        if model.adapters:
            p("machineType", t.machine_type, "LoRA adapters are not checked on vLLM TPU here: serve them on a GPU "
              "machine type", ", ".join(gcp_machines.gpu_machine_types()))
        if region is not None:
            offered = [m for m, gens in tpus.VERTEX_TPU_REGIONS.items() if chip.generation in gens]
            if chip.generation not in tpus.VERTEX_TPU_REGIONS.get(region, frozenset()):
                p("machineType", t.machine_type, f"no TPU {chip.generation} for Vertex AI prediction known in {region}",
                  f"regions {', '.join(offered)}")
        facts = model.resolved_facts()
        if facts is None:
            return problems
        return problems + self.fit_problems(env, index, t, facts, "machineType", t.machine_type, tpu.chips,
                                            GPUS[chip.name].memory_gib * tpu.chips, f"{tpu.chips} x {chip.name}",
                                            region)

    def declare(self, env: EnvironmentSpec, target: Any, foundation: Any,
                hf_token: pulumi.Output[str] | None) -> Endpoint:
        from ..gcp.foundation import labels_of
        from ..gcp.vertex import AlertThresholds, DedicatedResources, VertexEndpoint, VertexEndpointArgs

        t: VertexTarget = target
        model = env.model(t.model)
        facts = model.resolved_facts()
        assert facts is not None  # validation reports a model without facts
        tpu = tpus.machine(t.machine_type)
        endpoint = VertexEndpoint(f"{env.name}-{t.name}", VertexEndpointArgs(
            endpoint_name=f"{env.name}-{t.name}", foundation=foundation, model=model, facts=facts,
            hf_token=hf_token, labels=labels_of(self.identity_tags(env, t)),
            resources=DedicatedResources(
                machine_type=t.machine_type, accelerator_type=t.accelerator_type,
                accelerator_count=tpu.chips if tpu else (t.accelerator_count or 1), min_replicas=t.scaling.min_replicas,
                max_replicas=t.scaling.max_replicas, target_duty_cycle_percent=t.scaling.target_duty_cycle_percent,
                spot=t.spot, tpu_topology=tpu.topology if tpu else None),
            endpoint=t.endpoint,
            alerts=AlertThresholds(p99_latency_ms=t.alarms.p99_latency_ms,
                                   errors_per_minute=t.alarms.errors_per_minute),
            request_log_sampling_rate=t.request_logging.sampling_rate if t.request_logging.enabled else None,
            own_image=foundation.own_image if t.image == "selfhost" else None,
            startup_timeout_seconds=t.startup_timeout_seconds,
        ))
        details: dict[str, Any] = {"endpointId": endpoint.endpoint_id, "resourceName": endpoint.resource_name,
                                   "serviceAccount": foundation.service_account_email}
        if endpoint.private_ip is not None:
            details["privateIp"] = endpoint.private_ip
        if endpoint.request_log_dataset is not None:
            details["requestLogDataset"] = endpoint.request_log_dataset.id
        return Endpoint(
            name=t.name, kind=self.kind, platform=self.platform, region=foundation.region, model=model.id,
            invoke_url=endpoint.predict_url, openai_base_url=endpoint.openai_base_url, auth=self.auth(t),
            host=HostShape(t.machine_type, tpu.chip if tpu else t.accelerator_type,
                           tpu.chips if tpu else (t.accelerator_count or 1)),
            min_replicas=t.scaling.min_replicas, max_replicas=t.scaling.max_replicas, image=endpoint.image,
            startup_timeout_seconds=endpoint.startup_timeout_seconds, details=details,
        )

    def auth(self, target: Any) -> str:
        return "gcp-oauth"  # an IAM access token for the endpoint

    def gpus(self, record: Mapping[str, Any]) -> set[str]:
        accelerator = str((record.get("host") or {}).get("accelerator") or "")
        return {gcp_machines.ACCELERATORS.get(accelerator, accelerator)} if accelerator else set()

    def hosts(self, region: str, lookup: Lookup) -> list[Host]:
        offered = gcp_machines.VERTEX_REGION_ACCELERATORS.get(region, frozenset())
        out = [self._host(machine, accelerator, count, region, lookup)
               for machine, (accelerator, count) in gcp_machines.FIXED_GPU_MACHINES.items() if accelerator in offered]
        for accelerator, counts in gcp_machines.N1_ACCELERATOR_COUNTS.items():
            if accelerator in offered:
                # The smallest N1 shape that takes the GPUs: memory for the weights' host copy.
                out += [self._host(f"n1-standard-{max(8, 8 * count)}", accelerator, count, region, lookup)
                        for count in counts]
        return out + [self._tpu_host(m, region, lookup) for m in tpus.VERTEX_MACHINES.values()
                      if tpus.CHIPS[m.chip].generation in tpus.VERTEX_TPU_REGIONS.get(region, frozenset())]

    def _tpu_host(self, machine: tpus.TpuMachine, region: str, lookup: Lookup) -> Host:
        """A TPU machine as a `selfhost size` host: its chips, priced per chip-hour."""
        from ..catalog.pricing import Price
        from ..sizing_options import Host

        chip = tpus.CHIPS[machine.chip]
        per_chip = lookup("gcp", "vertex-prediction-tpu", region, chip.generation)
        price = Price(per_chip.usd * machine.chips, "hour", per_chip.source, per_chip.as_of,
                      getattr(per_chip, "confidence", "list")) if per_chip else None
        return Host("gcp", self.kind, f"{machine.name} ({machine.chips} x {chip.name})", region, GPUS[chip.name],
                    machine.chips, GPUS[chip.name].memory_gib * machine.chips, price)

    def _host(self, machine: str, accelerator: str, count: int, region: str, lookup: Lookup) -> Host:
        return gcp_gpu_host(self.kind, f"{machine} ({count} x {accelerator})", machine, accelerator, count, region,
                            lookup, ("vertex-prediction", "vertex-prediction-gpu"))
