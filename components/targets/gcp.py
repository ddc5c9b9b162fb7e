"""The `gcp` platform: one region of a Google Cloud project. Its foundation (components/gcp/foundation.py) is the
stack's APIs, network, serving identity, Cloud KMS key, token secret and image repository, declared once, on
demand; its config is the Google provider's own `gcp:project` and `gcp:region`. Also the GPU machine helpers its
kinds (Vertex AI, Compute Engine pools) share.

Pure: the provider SDK, the components, the mocks and the online readers are imported only when used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from ..catalog import gcp_machines
from ..catalog.models import MODELS
from ..catalog.pricing import DATA_DIR as PRICE_DATA
from ..cost_rules import (
    Ctx,
    Estimate,
    LineItem,
    Lookup,
    Plan,
    Resource,
    Serving,
    hourly,
    monthly,
    plan_replicas,
    replica_hours,
)
from ..schema import DAYS_PER_MONTH, MISSING, PROJECT, EnvironmentSpec, Problem, StackSecrets, Strict
from ..sizing import Hardware, LoraSlots
from .base import Platform, provider_tag_field

if TYPE_CHECKING:
    from ..sizing_options import Host


def gcp_gpu_machine_items(r: Resource, ctx: Ctx, est: Estimate, *, model_id: str, machine: str,
                          accelerator: str | None, count: int, low: int, high: int, services: tuple[str, str],
                          unit: str, description: str, per: str, quantization: str = "none",
                          kv_bytes: float = 2.0, lora: LoraSlots | None = None) -> list[LineItem]:
    """Hours of a Google Cloud GPU machine (`services`: the machine's and the GPUs' price rows) at the replicas
    the usage needs between `low` and `high`, its GPUs apart; records the replica as a serving one."""
    plan = Plan(low, low, None)
    if accelerator in gcp_machines.ACCELERATORS:
        host = gcp_machines.host(machine, accelerator, count)
        plan = plan_replicas(MODELS.get(model_id), Hardware.of_gpu(host.gpu, count, host.total_gpu_memory_gib), low,
                             high, ctx.usage, quantization, kv_bytes=kv_bytes, lora=lora)
    hours = replica_hours((low, plan.expected, high), ctx.usage)
    items = [ctx.item(r, "gcp", services[0], machine, unit, hours, description)]
    if accelerator:
        items.append(ctx.item(r, "gcp", services[1], accelerator, "gpu-hour",
                              (hours[0] * count, hours[1] * count, hours[2] * count),
                              f"{count} x {accelerator} per {per}"))
    node_usd = items[0].unit_usd
    gpu_usd = items[1].unit_usd if accelerator else 0.0
    replica_usd = None if node_usd is None or gpu_usd is None else node_usd + gpu_usd * count
    est.serving.append(Serving(r.name, model_id or "?", (low, plan.expected, high), plan, replica_usd))
    return items


def gcp_gpu_host(kind: str, name: str, machine: str, accelerator: str, count: int, region: str, lookup: Lookup,
                 services: tuple[str, str]) -> Host:
    """A Google Cloud GPU machine as a `selfhost size` host, priced from `services` (machine and GPU rows)."""
    from ..sizing_options import Host

    h = gcp_machines.host(machine, accelerator, count)
    from ..catalog.pricing import Price, least_confident

    node = lookup("gcp", services[0], region, machine)
    gpu = lookup("gcp", services[1], region, accelerator)
    price = Price(node.usd + gpu.usd * count, "hour", f"{node.source}; {gpu.source}", node.as_of,
                  least_confident(node.confidence, gpu.confidence)) if node and gpu else None
    return Host("gcp", kind, name, region, h.gpu, count, h.total_gpu_memory_gib, price)


ROUTER_CONCURRENCY = 80
"""Requests one Cloud Run instance of the router takes at once (components/gcp/router.py CONCURRENCY)."""


def cloud_run_items(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
    """A Cloud Run service: vCPU-seconds and GiB-seconds at the instances the usage needs between its scaling
    bounds. Instance-based billing (CPU always allocated: kept instances, `cpuIdle` false) bills every second an
    instance lives; request-based billing bills the seconds an instance has a request in flight, plus each request.
    A router holds each request for its whole answer (time to first token, then the output at the service level's
    rate): in flight at the busy hours = busy requests/s x that, over CONCURRENCY per instance."""
    template = r.inputs.get("template") or {}
    scaling = template.get("scaling") or {}
    low, high = int(scaling.get("minInstanceCount") or 0), int(scaling.get("maxInstanceCount") or 1)
    container = (template.get("containers") or [{}])[0]
    resources = container.get("resources") or {}
    limits = resources.get("limits") or {}
    cpu = float(str(limits.get("cpu", "1")))
    memory_gib = _mebibytes(str(limits.get("memory", "512Mi"))) / 1024
    usage = ctx.usage
    seconds = ((usage.max_time_to_first_token_seconds or 0.0)
               + usage.output_tokens_per_request / (usage.min_tokens_per_second_per_stream or 50.0))
    concurrency = int(template.get("maxInstanceRequestConcurrency") or ROUTER_CONCURRENCY)
    need = math.ceil(usage.busy_requests_per_s * seconds / concurrency) if usage.requests_per_day else 0
    expected = min(max(need, low, 1 if usage.requests_per_day else 0), high)
    hours = replica_hours((low, expected, high), usage)
    instance_based = not resources.get("cpuIdle", True)
    billing, note = ("instance", "instance-based billing: every second an instance lives") if instance_based else (
        "request", "request-based billing: seconds with a request in flight, at most every second; the free tier "
                   "(per billing account) not deducted")
    items = [ctx.item(r, "gcp", "cloud-run", f"cpu-{billing}", "vCPU-hour", (hours[0] * cpu, hours[1] * cpu,
                                                                             hours[2] * cpu),
                      f"{cpu:g} vCPU x {low}..{high} instances ({expected} busy)", note),
             ctx.item(r, "gcp", "cloud-run", f"memory-{billing}", "GiB-hour",
                      (hours[0] * memory_gib, hours[1] * memory_gib, hours[2] * memory_gib),
                      f"{memory_gib:g} GiB x {low}..{high} instances", note)]
    if not instance_based:
        millions = usage.requests_per_day * DAYS_PER_MONTH / 1e6
        items.append(ctx.item(r, "gcp", "cloud-run", "requests", "1M-requests", (millions, millions, millions),
                              "requests (request-based billing)"))
    return items


def _mebibytes(quantity: str) -> float:
    """A Kubernetes-style memory quantity (512Mi, 1Gi, 2G) in MiB."""
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "k": 1000 / 2**20, "M": 1e6 / 2**20, "G": 1e9 / 2**20}
    for suffix in sorted(units, key=len, reverse=True):
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * units[suffix]
    return float(quantity) / 2**20


def cloud_run_quota(r: Resource, ctx: Any) -> list[Any]:
    """Cloud Run's CPU allocation in the region (milli-vCPUs): the service's vCPUs at its instance bounds; a new
    revision's minimum instances start beside the old revision's before traffic moves to them."""
    template = r.inputs.get("template") or {}
    scaling = template.get("scaling") or {}
    low, high = int(scaling.get("minInstanceCount") or 0), int(scaling.get("maxInstanceCount") or 1)
    limits = ((template.get("containers") or [{}])[0].get("resources") or {}).get("limits") or {}
    milli = float(str(limits.get("cpu", "1"))) * 1000
    return [ctx.need("cloud-run-cpu", r, low * milli, high * milli, (high + low) * milli,
                     region=r.inputs.get("location"), project=r.inputs.get("project"))]


class GcpSettings(Strict):
    project: str | None = Field(default=None, alias="gcp:project", pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$",
                                description="a Google Cloud project id: 6-30 lowercase letters, digits and '-', "
                                            "starting with a letter")
    """The project every Google Cloud resource of the stack lives in (the Google provider's own key)."""
    region: str | None = Field(default=None, alias="gcp:region")


class Gcp(Platform):
    name = "gcp"
    title = "Google Cloud"
    settings = GcpSettings
    packages = ("gcp",)
    default_region = "us-central1"
    regions = ("us-central1", "europe-west4")
    online = "components.gcp.online"
    price_file = PRICE_DATA / "gcp.csv"
    login = ("a service account through Workload Identity Federation (repository variables "
             "GCP_WORKLOAD_IDENTITY_PROVIDER, GCP_SERVICE_ACCOUNT)")
    quota_services = ("compute.googleapis.com", "aiplatform.googleapis.com", "run.googleapis.com")
    price_sources = ("gcp_api_key", "gcp_skus")
    nat_modes = ("none", "single")
    nat_problem = "Cloud NAT is regional: one serves every zone"
    cost_rules: ClassVar[dict[str, Any]] = {
        "gcp:compute/routerNat:RouterNat": hourly("gcp", "cloud-nat", "gateway-hour", "Cloud NAT gateway",
                                                  "plus per-GB data processing, not estimated"),
        "gcp:secretmanager/secretVersion:SecretVersion": monthly("gcp", "secret-manager", "version",
                                                                 "secret version"),
        "gcp:kms/cryptoKey:CryptoKey": monthly("gcp", "kms", "key-version", "Cloud KMS key (one active version)",
                                               "plus $0.06 a month per rotated version kept, and per-operation "
                                               "charges"),
        "gcp:cloudrunv2/service:Service": cloud_run_items,
    }
    quota_rules: ClassVar[dict[str, Any]] = {"gcp:cloudrunv2/service:Service": cloud_run_quota}
    free_types = frozenset({
        "gcp:projects/service:Service", "gcp:compute/network:Network", "gcp:compute/subnetwork:Subnetwork",
        "gcp:compute/router:Router", "gcp:compute/firewall:Firewall", "gcp:serviceaccount/account:Account",
        "gcp:projects/iAMMember:IAMMember", "gcp:secretmanager/secret:Secret",
        "gcp:secretmanager/secretIamBinding:SecretIamBinding", "gcp:artifactregistry/repository:Repository",
        "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember",
        "gcp:kms/keyRing:KeyRing", "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember",
        "gcp:projects/serviceIdentity:ServiceIdentity",
        # The router on Cloud Run: a role and its grants cost nothing (its alert policies and dashboard are free by
        # the vertex kind's word; its remote repository, as every repository here, bills the storage of the images
        # it caches: one proxy image, cents, not estimated).
        "gcp:projects/iAMCustomRole:IAMCustomRole", "gcp:vertex/aiEndpointIamMember:AiEndpointIamMember",
        # Read access to a team's own weights (a bucket prefix), for the pools' and Vertex's identities.
        "gcp:storage/bucketIAMMember:BucketIAMMember",
    })

    def of(self, env: EnvironmentSpec) -> GcpSettings:
        return env.settings(self.name)

    def region(self, env: EnvironmentSpec) -> str | None:
        return self.of(env).region

    def validate(self, env: EnvironmentSpec) -> list[Problem]:
        settings = self.of(env)
        return [Problem(key, MISSING, "required for Google Cloud targets", allowed)
                for key, value, allowed in (("gcp:project", settings.project, "a project id"),
                                            ("gcp:region", settings.region, "a Google Cloud region, e.g. "
                                                                           "us-central1"))
                if value is None] + (self._router_problems(env) if env.router_platform == self.name else [])

    def _router_problems(self, env: EnvironmentSpec) -> list[Problem]:
        """What the router on Cloud Run cannot do (components/gcp/router.py says why it is built so)."""
        router, problems = env.router, []
        if getattr(router, "certificate", None):
            problems.append(Problem(f"{PROJECT}:router.certificate", router.certificate,
                                    "the router on Google Cloud answers on its run.app name with Google's certificate "
                                    "(internal ingress, no load balancer): it presents no certificate of yours",
                                    "leave it unset"))
        if getattr(router, "allowed_cidrs", None):
            problems.append(Problem(f"{PROJECT}:router.allowedCidrs", list(router.allowed_cidrs),
                                    "Cloud Run's internal ingress admits the project's VPC networks (and its VPC "
                                    "Service Controls perimeter); it has no address filter to widen",
                                    "leave it empty; callers come from the stack's VPC"))
        hub = [n for n in getattr(router, "order", ()) if any(
            t.name == n and t.kind == "hf-endpoint" for t in env.targets)]
        if hub and env.network.nat == "none":
            problems.append(Problem(f"{PROJECT}:network.nat", env.network.nat,
                                    f"the router on Cloud Run sends all its traffic into the VPC, and routes to "
                                    f"Hugging Face endpoints ({', '.join(hub)}) on the internet: it needs Cloud NAT",
                                    "single"))
        return problems

    def tag_field(self, token: str) -> tuple[str, ...] | None:
        return provider_tag_field(token, "pulumi_gcp", (("labels", "labels"), ("user_labels", "userLabels")))

    def mocks(self) -> Mapping[str, Any]:
        from ..gcp.mocks import RESOURCES

        return RESOURCES

    def mock_call(self, token: str, args: Mapping[str, Any], ctx: Any) -> dict[str, Any] | None:
        from ..gcp.mocks import call

        return call(token, args, ctx)

    def mock_location(self, config: Mapping[str, str]) -> tuple[str, str]:
        return config.get("gcp:region", self.default_region or ""), config.get("gcp:project", "")

    def terraform(self) -> tuple[Mapping[str, Any], Mapping[str, str], Mapping[str, str]]:
        from ..gcp.terraform import NOT_MAPPED, PROVIDERS, TYPES

        return TYPES, PROVIDERS, NOT_MAPPED

    def replacement_rules(self) -> tuple[Mapping[str, Any], tuple[tuple[str, Any], ...]]:
        from ..gcp.replacement import PREFIXES, RULES

        return RULES, PREFIXES

    def replacement_note(self, token: str) -> str | None:
        from ..gcp.replacement import NOTE

        return NOTE if token.split(":", 1)[0] in self.packages else None

    def policy_rules(self) -> Sequence[Any]:
        from ..gcp.policies import RULES

        return RULES

    def boot_scripts(self) -> Mapping[str, Any]:
        from ..gcp.policies import BOOT_SCRIPTS

        return BOOT_SCRIPTS

    def scanner_notes(self) -> Mapping[str, str]:
        from ..gcp.policies import SCANNER_NOTES

        return SCANNER_NOTES

    def container_environments(self) -> Mapping[str, Any]:
        from ..gcp.policies import CONTAINER_ENVIRONMENTS

        return CONTAINER_ENVIRONMENTS

    # The router on Cloud Run (components/gcp/router.py): the Cloud Run API (Artifact Registry, for a remote
    # repository of its image, is among the foundation's own APIs).
    router_needs: ClassVar[frozenset[str] | None] = frozenset({"api:run.googleapis.com"})

    def router_reaches(self, kind: Any, target: Any) -> str | None:
        """Vertex AI endpoints (IAM: the router's service account gets a token from the metadata server), the
        stack's GPU pools (their keys; their internal load balancers in the VPC the router's egress enters; their
        own CA's certificate joins the router's CA bundle) and Hugging Face endpoints that take a token over the
        internet. Not AWS targets (SigV4 credentials and a VPC in another cloud), not a Kubernetes cluster's (its
        Services answer inside the cluster's network)."""
        auth = kind.auth(target)
        if kind.platform == self.name:
            if auth in ("gcp-oauth", "api-key"):
                return None
            return f"a Google Cloud target with auth {auth!r}: the router speaks gcp-oauth and api-key to them"
        if kind.platform == "huggingface":
            return None if auth == "hf-token" else (
                f"a Hugging Face endpoint of type {getattr(target, 'endpoint_type', '?')!r}: the router on Cloud Run "
                "reaches authenticated endpoints (a token, over the internet through Cloud NAT); private ones answer "
                "only over AWS PrivateLink")
        return (f"a {kind.platform} target: the router on Cloud Run reaches Google Cloud targets of its stack and "
                "Hugging Face endpoints; AWS ones need SigV4 credentials and a network path it does not have, a "
                "cluster's Services answer only inside the cluster")

    def declare_router(self, env: EnvironmentSpec, foundation: Any, runtime: Any) -> Any:
        from ..gcp.router import Router, RouterArgs

        return Router(runtime.name, RouterArgs(foundation=foundation, runtime=runtime,
                                               production=env.tier == "production")).endpoint

    def declare(self, env: EnvironmentSpec, needs: frozenset[str], secrets: StackSecrets
                ) -> tuple[Any, dict[str, Any]]:
        from ..gcp.foundation import declare_foundation

        settings = self.of(env)
        assert settings.project is not None and settings.region is not None  # validated
        return declare_foundation(env.name, settings.project, settings.region, env.network, env.all_tags,
                                  secrets.hf_token, own_image="own-image" in needs,
                                  extra_apis=sorted(n.removeprefix("api:") for n in needs if n.startswith("api:")),
                                  proxy_subnet="proxy-subnet" in needs)




GCP = Gcp()
