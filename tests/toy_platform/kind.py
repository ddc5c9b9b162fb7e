"""The toy kind, `toy-gpu`: a group of GPU servers on Toy Cloud, as components/targets/aws_pool.py is on AWS."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import pulumi
from pydantic import Field

from components.catalog.gpus import GPUS
from components.catalog.models import MODELS
from components.cost_rules import Ctx, Estimate, LineItem, Plan, Resource, Serving, plan_replicas, replica_hours
from components.quotas import QuotaCtx, QuotaItem
from components.schema import EnvironmentSpec, Problem, Slug, Strict
from components.sizing import Hardware
from components.sizing_options import Host, Lookup
from components.targets.base import Endpoint, HostShape, TargetKind, target_problem

# Machine -> (GPU, count): the toy cloud's catalog.
MACHINES = {"toy-l4-1": ("L4", 1), "toy-l40s-1": ("L40S", 1)}


class ToyScaling(Strict):
    min_replicas: int = Field(default=1, ge=1)
    max_replicas: int = Field(default=1, ge=1, le=10)


class ToyTarget(Strict):
    kind: Literal["toy-gpu"]
    name: Slug
    model: str
    machine: str = "toy-l4-1"
    concurrency: int = Field(default=1, ge=1)
    scaling: ToyScaling = ToyScaling()
    image: str = "vllm/vllm-openai:v0.11.0"


def _server(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
    machine = str(r.inputs.get("machine"))
    low, high = int(r.inputs.get("minCount", 1)), int(r.inputs.get("maxCount", 1))
    model_id = str((r.inputs.get("labels") or {}).get("selfhost-model", ""))
    gpu, count = MACHINES.get(machine, ("L4", 1))
    plan = plan_replicas(MODELS.get(model_id), Hardware.of_gpu(GPUS[gpu], count, GPUS[gpu].memory_gib * count), low,
                         high, ctx.usage) if machine in MACHINES else Plan(low, low, None)
    item = ctx.item(r, "toycloud", "gpu-server", machine, "replica-hour",
                    replica_hours((low, plan.expected, high), ctx.usage), f"{machine} x {low}..{high}")
    est.serving.append(Serving(r.name, model_id or "?", (low, plan.expected, high), plan, item.unit_usd))
    return [item]


def _quota(r: Resource, ctx: QuotaCtx) -> list[QuotaItem]:
    gpu, count = MACHINES.get(str(r.inputs.get("machine")), ("L4", 1))
    return [ctx.need(f"toy-gpus:{gpu}", r, count * int(r.inputs.get("minCount", 1)),
                     count * int(r.inputs.get("maxCount", 1)))]


class ToyGpu(TargetKind):
    kind = "toy-gpu"
    config = ToyTarget
    platform = "toycloud"
    summary = "GPU servers on Toy Cloud"
    cost_rules: ClassVar[dict[str, Any]] = {"toycloud:compute/gpuServer:GpuServer": _server}
    quota_rules: ClassVar[dict[str, Any]] = {"toycloud:compute/gpuServer:GpuServer": _quota}

    def validate(self, env: EnvironmentSpec, index: int, target: Any) -> list[Problem]:
        t: ToyTarget = target
        if t.machine not in MACHINES:
            return [target_problem(index, "machine", t.machine, "not a Toy Cloud machine", ", ".join(MACHINES))]
        facts = env.model(t.model).resolved_facts()
        gpu, count = MACHINES[t.machine]
        return [] if facts is None else self.fit_problems(env, index, t, facts, "machine", t.machine, count,
                                                          GPUS[gpu].memory_gib * count, t.machine, None)

    def declare(self, env: EnvironmentSpec, target: Any, foundation: Any,
                hf_token: pulumi.Output[str] | None) -> Endpoint:
        from .components import ToyServing, ToyServingArgs

        t: ToyTarget = target
        model = env.model(t.model)
        serving = ToyServing(f"{env.name}-{t.name}", ToyServingArgs(
            network=foundation, machine=t.machine, min_count=t.scaling.min_replicas,
            max_count=t.scaling.max_replicas, image=t.image, args=("--model", model.id),
            labels=self.identity_tags(env, t)))
        gpu, count = MACHINES[t.machine]
        return Endpoint(name=t.name, kind=self.kind, platform=self.platform, region=foundation.region,
                        model=model.id, invoke_url=serving.url, openai_base_url=serving.url, auth=self.auth(t),
                        host=HostShape(t.machine, gpu, count), min_replicas=t.scaling.min_replicas,
                        max_replicas=t.scaling.max_replicas, image=t.image, startup_timeout_seconds=600)

    def auth(self, target: Any) -> str:
        return "vpc-only"

    def gpus(self, record: Mapping[str, Any]) -> set[str]:
        return {MACHINES[str(record["host"]["instance"])][0]}

    def hosts(self, region: str, lookup: Lookup) -> list[Host]:
        return [Host("toycloud", self.kind, machine, region, GPUS[gpu], count, GPUS[gpu].memory_gib * count,
                     lookup("toycloud", "gpu-server", region, machine))
                for machine, (gpu, count) in MACHINES.items()]
