"""The `gcp` platform: one region of a Google Cloud project. Its foundation (components/gcp/foundation.py) is the
stack's APIs, network, serving identity, Cloud KMS key, token secret and image repository, declared once, on
demand; its config is the Google provider's own `gcp:project` and `gcp:region`. Also the GPU machine helpers its
kinds (Vertex AI, Compute Engine pools) share.

Pure: the provider SDK, the components, the mocks and the online readers are imported only when used.
"""

from __future__ import annotations

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
from ..schema import MISSING, EnvironmentSpec, Problem, StackSecrets, Strict
from ..sizing import Hardware
from .base import Platform, provider_tag_field

if TYPE_CHECKING:
    from ..sizing_options import Host


def gcp_gpu_machine_items(r: Resource, ctx: Ctx, est: Estimate, *, model_id: str, machine: str,
                          accelerator: str | None, count: int, low: int, high: int, services: tuple[str, str],
                          unit: str, description: str, per: str, quantization: str = "none",
                          kv_bytes: float = 2.0) -> list[LineItem]:
    """Hours of a Google Cloud GPU machine (`services`: the machine's and the GPUs' price rows) at the replicas
    the usage needs between `low` and `high`, its GPUs apart; records the replica as a serving one."""
    plan = Plan(low, low, None)
    if accelerator in gcp_machines.ACCELERATORS:
        host = gcp_machines.host(machine, accelerator, count)
        plan = plan_replicas(MODELS.get(model_id), Hardware.of_gpu(host.gpu, count, host.total_gpu_memory_gib), low,
                             high, ctx.usage, quantization, kv_bytes=kv_bytes)
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
    quota_services = ("compute.googleapis.com", "aiplatform.googleapis.com")
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
    }
    free_types = frozenset({
        "gcp:projects/service:Service", "gcp:compute/network:Network", "gcp:compute/subnetwork:Subnetwork",
        "gcp:compute/router:Router", "gcp:compute/firewall:Firewall", "gcp:serviceaccount/account:Account",
        "gcp:projects/iAMMember:IAMMember", "gcp:secretmanager/secret:Secret",
        "gcp:secretmanager/secretIamBinding:SecretIamBinding", "gcp:artifactregistry/repository:Repository",
        "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember",
        "gcp:kms/keyRing:KeyRing", "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember",
        "gcp:projects/serviceIdentity:ServiceIdentity",
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
                if value is None]

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
