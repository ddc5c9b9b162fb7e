"""The `azure` platform: one region of an Azure subscription. Its foundation (components/azure/foundation.py) is the
stack's resource group, virtual network for private endpoints, Key Vault (the token secret and the customer-managed
key), storage account, container registry, Log Analytics and Application Insights, and the Azure Machine Learning
workspace with a managed virtual network, declared once, on demand; its config is the Azure Native provider's own
`azure-native:location` and `azure-native:subscriptionId`, and the project's `azure` section.

Pure: the provider SDK, the components, the mocks and the online readers are imported only when used.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from ..catalog.pricing import DATA_DIR as PRICE_DATA
from ..cost_rules import Ctx, Estimate, LineItem, Resource, flat, hourly, monthly
from ..schema import MISSING, PROJECT, EnvironmentSpec, Problem, StackSecrets, Strict
from .base import Platform, provider_tag_field

# Azure's tag limits (Azure Resource Manager docs, "Use tags to organize your Azure resources", Limitations, read
# 2026-12-08): names up to 512 characters (128 on storage accounts, which every stack has), values up to 256, and
# names without < > % & \ ? /.
TAG_KEY_MAX, TAG_VALUE_MAX = 128, 256
TAG_KEY_FORBIDDEN = frozenset('<>%&\\?/')
# Addresses that never reach the registry's public endpoint (RFC 1918, RFC 6598 shared space, IPv6 unique local).
PRIVATE_RANGES = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                          "100.64.0.0/10", "fc00::/7"))


class AzureOptions(Strict):
    """The project's `azure` section: what the foundation needs beside the provider's own keys."""

    deployer_cidrs: list[str] = []
    """Where `pulumi up` runs from when it pushes our serving image (`image: selfhost`): the container registry
    admits these ranges and nothing else from outside the virtual network. Empty: the registry takes no public
    traffic at all, and the image is pushed from inside the network (a self-hosted runner)."""
    log_retention_days: int = Field(default=30, ge=30, le=730)
    """Days Log Analytics keeps the workspace's, the vault's and the endpoints' logs (30 is Azure's included
    retention)."""
    firewall_sku: Literal["Standard", "Basic"] = "Standard"
    """The Azure Firewall the workspace's managed network runs to enforce its FQDN outbound rules (the Hugging Face
    hosts a deployment downloads weights from): Azure ML creates it and bills it to the subscription."""

    @field_validator("deployer_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)  # ValueError names the bad range
        return value


class AzureSettings(Strict):
    location: str | None = Field(default=None, alias="azure-native:location")
    """The Azure region (`eastus`): the Azure Native provider's own key."""
    subscription_id: str | None = Field(
        default=None, alias="azure-native:subscriptionId",
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        description="a subscription id: a GUID")
    """The subscription every resource of the stack is created in (the provider's own key)."""
    options: AzureOptions = Field(default_factory=AzureOptions, alias="azure")


def _registry(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
    """A container registry bills a daily rate by tier (private endpoints and customer-managed keys need Premium)."""
    tier = str((r.inputs.get("sku") or {}).get("name", "Premium")).lower()
    return [ctx.item(r, "azure", "container-registry", tier, "month", flat(1),
                     f"container registry ({tier})", "plus storage past the tier's included GB, not estimated")]


def _workspace(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
    """The workspace itself is free; its managed network runs an Azure Firewall when it has FQDN outbound rules
    (Azure ML docs, "Managed virtual network isolation": FQDN rules are enforced by an Azure Firewall billed to the
    subscription), every hour the network is provisioned."""
    network = r.inputs.get("managedNetwork") or {}
    rules = network.get("outboundRules") or {}
    if not any(isinstance(rule, dict) and rule.get("type") == "FQDN" for rule in rules.values()):
        return []
    sku = str(network.get("firewallSku") or "Standard").lower()
    return [ctx.item(r, "azure", "azure-firewall", sku, "hour", flat(730),
                     f"Azure Firewall {sku} of the managed network (FQDN outbound rules)",
                     "plus per-GB data processing, not estimated")]


def _storage(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
    """What the targets keep in the workspace's storage account (TargetKind.stored_bytes)."""
    replication = str((r.inputs.get("sku") or {}).get("name", "Standard_ZRS")).rsplit("_", 1)[-1].lower()
    gb = ctx.stored_bytes("azure") / 1e9
    return [ctx.item(r, "azure", "storage", f"blob-hot-{replication}", "GB-month", flat(gb),
                     f"{gb:.2f} GB in the workspace's storage",
                     "the workspace's own logs and snapshots (a few MB), not estimated")]


class Azure(Platform):
    name = "azure"
    title = "Azure"
    settings = AzureSettings
    packages = ("azure-native",)
    default_region = "eastus"
    # Where the instance catalog knows managed online endpoint sizes (components/catalog/azure_instances.py), and
    # westeurope, priced (derived) for the day a source for its sizes is found.
    regions = ("eastus", "eastus2", "westus3", "westeurope")
    online = "components.azure.online"
    price_file = PRICE_DATA / "azure.csv"
    quota_file = PRICE_DATA.parents[1] / "data" / "azure_quotas.csv"
    login = ("`az login` (a user, or a service principal through workload identity federation: repository variables "
             "AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_SUBSCRIPTION_ID) with Owner on the subscription: the stack "
             "grants roles")
    quota_services = ("Microsoft.MachineLearningServices",)
    price_sources = ("azure_retail",)
    nat_modes = ("none",)
    nat_problem = ("the deployments' outbound traffic leaves through the workspace's managed network (its approved "
                   "outbound rules); the stack's own network holds only private endpoints")
    cost_rules: ClassVar[dict[str, Any]] = {
        "azure-native:containerregistry:Registry": _registry,
        "azure-native:network:PrivateEndpoint": hourly("azure", "private-link", "endpoint", "private endpoint",
                                                       "plus per-GB data processing, not estimated"),
        "azure-native:privatedns:PrivateZone": monthly("azure", "private-dns", "zone", "private DNS zone",
                                                       "plus DNS queries, not estimated"),
        "azure-native:keyvault:Key": monthly("azure", "key-vault", "hsm-rsa-2048",
                                             "HSM-protected key (customer-managed key)",
                                             "plus its operations, not estimated"),
        "azure-native:machinelearningservices:Workspace": _workspace,
        "azure-native:storage:StorageAccount": _storage,
    }
    free_types = frozenset({
        "azure-native:resources:ResourceGroup", "azure-native:network:VirtualNetwork",
        "azure-native:network:Subnet", "azure-native:network:NetworkSecurityGroup",
        "azure-native:network:PrivateDnsZoneGroup", "azure-native:privatedns:VirtualNetworkLink",
        "azure-native:keyvault:Vault", "azure-native:keyvault:Secret",
        "azure-native:managedidentity:UserAssignedIdentity", "azure-native:authorization:RoleAssignment",
        # Log ingestion is usage-billed and not estimated (cost.NOT_ESTIMATED).
        "azure-native:operationalinsights:Workspace", "azure-native:applicationinsights:Component",
        "azure-native:monitor:DiagnosticSetting",
        # The account's blob service settings (soft delete): retained deleted data is billed as storage.
        "azure-native:storage:BlobServiceProperties",
    })

    def of(self, env: EnvironmentSpec) -> AzureSettings:
        return env.settings(self.name)

    def region(self, env: EnvironmentSpec) -> str | None:
        return self.of(env).location

    def validate(self, env: EnvironmentSpec) -> list[Problem]:
        settings = self.of(env)
        problems = [Problem(key, MISSING, "required for Azure targets", allowed)
                    for key, value, allowed in (
                        ("azure-native:location", settings.location, "an Azure region, e.g. eastus"),
                        ("azure-native:subscriptionId", settings.subscription_id,
                         "the subscription id (`az account show --query id -o tsv`)"))
                    if value is None]
        for i, cidr in enumerate(settings.options.deployer_cidrs):
            net = ipaddress.ip_network(cidr, strict=False)
            if net.is_loopback or net.is_link_local or any(net.subnet_of(p) for p in PRIVATE_RANGES  # type: ignore[arg-type]
                                                           if p.version == net.version):
                problems.append(Problem(f"{PROJECT}:azure.deployerCidrs[{i}]", cidr,
                                        "the registry's firewall filters public addresses only: a private range "
                                        "reaches it through its private endpoint already",
                                        "public ranges of the machines that run `pulumi up`"))
        return problems

    def tag_problems(self, tags: Mapping[str, str]) -> list[tuple[str, str]]:
        return [(key, f"tag {key!r}: names are 1-{TAG_KEY_MAX} characters without any of "
                      f"{' '.join(sorted(TAG_KEY_FORBIDDEN))}; values at most {TAG_VALUE_MAX}")
                for key, value in tags.items()
                if not 1 <= len(key) <= TAG_KEY_MAX or TAG_KEY_FORBIDDEN & set(key) or len(value) > TAG_VALUE_MAX]

    def tag_field(self, token: str) -> tuple[str, ...] | None:
        return provider_tag_field(token, "pulumi_azure_native", (("tags", "tags"),))

    def mocks(self) -> Mapping[str, Any]:
        from ..azure.mocks import RESOURCES

        return RESOURCES

    def mock_call(self, token: str, args: Mapping[str, Any], ctx: Any) -> dict[str, Any] | None:
        from ..azure.mocks import call

        return call(token, args, ctx)

    def mock_location(self, config: Mapping[str, str]) -> tuple[str, str]:
        from ..azure.mocks import mock_location

        return mock_location(config, self.default_region or "eastus")

    def terraform(self) -> tuple[Mapping[str, Any], Mapping[str, str], Mapping[str, str]]:
        from ..azure.terraform import NOT_MAPPED, PROVIDERS, TYPES

        return TYPES, PROVIDERS, NOT_MAPPED

    def replacement_rules(self) -> tuple[Mapping[str, Any], tuple[tuple[str, Any], ...]]:
        from ..azure.replacement import PREFIXES, RULES

        return RULES, PREFIXES

    def replacement_note(self, token: str) -> str | None:
        from ..azure.replacement import NOTE

        return NOTE if token.split(":", 1)[0] in self.packages else None

    def policy_rules(self) -> Sequence[Any]:
        from ..azure.policies import RULES

        return RULES

    def scanner_notes(self) -> Mapping[str, str]:
        from ..azure.policies import SCANNER_NOTES

        return SCANNER_NOTES

    def container_environments(self) -> Mapping[str, Any]:
        from ..azure.policies import CONTAINER_ENVIRONMENTS

        return CONTAINER_ENVIRONMENTS

    def declare(self, env: EnvironmentSpec, needs: frozenset[str], secrets: StackSecrets
                ) -> tuple[Any, dict[str, Any]]:
        from ..azure.foundation import FoundationArgs, declare_foundation

        settings = self.of(env)
        assert settings.location is not None and settings.subscription_id is not None  # validated
        return declare_foundation(env.name, FoundationArgs(
            location=settings.location, subscription_id=settings.subscription_id, cidr=env.network.cidr,
            tags=env.all_tags, hf_token=secrets.hf_token, own_image="own-image" in needs,
            hub_egress="hub-egress" in needs, deployer_cidrs=tuple(settings.options.deployer_cidrs),
            log_retention_days=settings.options.log_retention_days, firewall_sku=settings.options.firewall_sku,
            production=env.tier == "production"))


AZURE = Azure()
"""The Azure foundation every target on Azure stands on, declared once per stack (`AzureFoundation`)."""
