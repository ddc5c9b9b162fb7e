"""The foundation every Azure target stands on (`AzureFoundation`): declared once per stack, on demand."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure

from ..serving_image import IMAGES
from .keyvault import KeyVault, KeyVaultArgs
from .names import global_name
from .network import Network, NetworkArgs
from .registry import ContainerRegistry, RegistryArgs
from .storage import Storage, StorageArgs
from .workspace import MlWorkspace, Telemetry, TelemetryArgs, WorkspaceArgs


@dataclass(frozen=True)
class FoundationArgs:
    location: str
    subscription_id: str
    cidr: str
    tags: dict[str, str]
    hf_token: pulumi.Output[str] | None
    own_image: bool
    """Push our serving image to the registry (a target has `image: selfhost`)."""
    hub_egress: bool
    """Let deployments download from the Hugging Face Hub (a target's model or adapter comes from there)."""
    deployer_cidrs: tuple[str, ...]
    log_retention_days: int
    firewall_sku: str
    production: bool


@dataclass(frozen=True)
class AzureFoundation:
    location: str
    subscription_id: str
    resource_group_name: pulumi.Output[str]
    tags: dict[str, str]
    network: Network
    vault: KeyVault
    registry: ContainerRegistry
    workspace: MlWorkspace
    telemetry: Telemetry

    @property
    def own_image(self) -> pulumi.Output[str] | None:
        """Our serving image by digest, when a target asked for it."""
        return self.registry.image_ref


class ResourceGroup(pulumi.ComponentResource):
    """The stack's resource group: every Azure resource of the stack lives in it (the workspace's managed network
    and Azure Firewall in a group Azure ML manages beside it)."""

    def __init__(self, name: str, location: str, tags: dict[str, str], opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:azure:ResourceGroup", name, None, opts)
        self.group = azure.resources.ResourceGroup(f"{name}-group", resource_group_name=name, location=location,
                                                   tags=tags, opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({"name": self.group.name})


def declare_foundation(name: str, args: FoundationArgs) -> tuple[AzureFoundation, dict[str, object]]:
    """Declare the foundation; return it and its stack outputs."""
    tags = args.tags
    rg = ResourceGroup(f"{name}-rg", args.location, tags).group.name
    tenant = azure.authorization.get_client_config_output().tenant_id
    network = Network(f"{name}-network", NetworkArgs(resource_group_name=rg, location=args.location, cidr=args.cidr,
                                                     tags=tags))
    telemetry = Telemetry(f"{name}-telemetry", TelemetryArgs(resource_group_name=rg, location=args.location,
                                                             tags=tags, retention_days=args.log_retention_days))
    vault = KeyVault(f"{name}-keys", KeyVaultArgs(
        vault_name=global_name(name, args.subscription_id, 24, True), resource_group_name=rg,
        location=args.location, subscription_id=args.subscription_id, tenant_id=tenant, network=network, tags=tags,
        hf_token=args.hf_token, log_analytics_id=telemetry.logs.id))
    storage = Storage(f"{name}-storage", StorageArgs(
        account_name=global_name(name, args.subscription_id, 24, False), resource_group_name=rg,
        location=args.location, network=network, vault=vault, tags=tags))
    registry = ContainerRegistry(f"{name}-images", RegistryArgs(
        registry_name=global_name(name, args.subscription_id, 50, False), resource_group_name=rg,
        location=args.location, network=network, vault=vault, tags=tags, deployer_cidrs=args.deployer_cidrs,
        image=IMAGES["vllm"] if args.own_image else None))
    workspace = MlWorkspace(f"{name}-ml", WorkspaceArgs(
        workspace_name=f"{name}-ml", resource_group_name=rg, location=args.location, network=network,
        key_vault_id=vault.vault.id, storage_account_id=storage.account.id,
        container_registry_id=registry.registry.id, telemetry=telemetry, tags=tags, hub_egress=args.hub_egress,
        firewall_sku=args.firewall_sku, production=args.production))
    foundation = AzureFoundation(location=args.location, subscription_id=args.subscription_id,
                                 resource_group_name=rg, tags=tags, network=network, vault=vault, registry=registry,
                                 workspace=workspace, telemetry=telemetry)
    outputs: dict[str, object] = {
        "azureRegion": args.location, "azureSubscription": args.subscription_id, "azureResourceGroup": rg,
        "azureWorkspace": workspace.workspace.name, "azureKeyVault": vault.vault.name,
        "azureRegistry": registry.registry.login_server,
    }
    if vault.token is not None:
        outputs["azureHfTokenSecret"] = vault.token.id
    return foundation, outputs
