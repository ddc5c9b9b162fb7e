"""The Azure Machine Learning workspace: its logs and telemetry, its managed virtual network, its private endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_azure_native as azure

from .network import Network

# Where a deployment downloads Hugging Face weights from, each an FQDN outbound rule of the managed network: the
# Hub's API and the domains its files are served from (the Hub's own list, huggingface.co/.well-known/meta.json:
# *.huggingface.co, *.hf.co for the Xet storage and CDN; read 2026-12-08). FQDN rules allow ports 80 and 443 only.
HUB_HOSTS = ("huggingface.co", "*.huggingface.co", "*.hf.co")


@dataclass(frozen=True)
class TelemetryArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    tags: dict[str, str]
    retention_days: int


class Telemetry(pulumi.ComponentResource):
    """Log Analytics (where the vault's, the workspace's and the endpoints' logs go) and workspace-based Application
    Insights (the deployments' request telemetry), with local (key) authentication off."""

    def __init__(self, name: str, args: TelemetryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:azure:Telemetry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.logs = azure.operationalinsights.Workspace(
            f"{name}-logs", resource_group_name=args.resource_group_name, location=args.location,
            sku={"name": "PerGB2018"}, retention_in_days=args.retention_days, tags=args.tags, opts=child)
        self.insights = azure.applicationinsights.Component(
            f"{name}-insights", resource_group_name=args.resource_group_name, location=args.location,
            kind="web", application_type="web", ingestion_mode="LogAnalytics", workspace_resource_id=self.logs.id,
            disable_local_auth=True, tags=args.tags, opts=child)
        self.register_outputs({"logAnalyticsId": self.logs.id, "applicationInsightsId": self.insights.id})


@dataclass(frozen=True)
class WorkspaceArgs:
    workspace_name: str
    resource_group_name: pulumi.Input[str]
    location: str
    network: Network
    key_vault_id: pulumi.Input[str]
    storage_account_id: pulumi.Input[str]
    container_registry_id: pulumi.Input[str]
    telemetry: Telemetry
    tags: dict[str, str]
    hub_egress: bool
    """Let deployments reach the Hugging Face Hub (FQDN outbound rules, enforced by an Azure Firewall)."""
    firewall_sku: str
    production: bool


class MlWorkspace(pulumi.ComponentResource):
    """The Azure ML workspace on the stack's vault, storage
    and registry, with no public network access (its private endpoint only), a managed virtual network that allows
    approved outbound only (its own resources' private endpoints, and the Hub's hosts when a model comes from
    there), storage reached by identity, and its logs in Log Analytics."""

    def __init__(self, name: str, args: WorkspaceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:azure:MlWorkspace", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        rules: dict[str, Any] = {f"hub-{i}": azure.machinelearningservices.FqdnOutboundRuleArgs(
            type="FQDN", category="UserDefined", destination=host) for i, host in enumerate(HUB_HOSTS)
        } if args.hub_egress else {}
        self.workspace = azure.machinelearningservices.Workspace(
            f"{name}-workspace", workspace_name=args.workspace_name, resource_group_name=args.resource_group_name,
            location=args.location, kind="Default",
            sku=azure.machinelearningservices.SkuArgs(name="Basic", tier=azure.machinelearningservices.SkuTier.BASIC),
            identity={"type": "SystemAssigned"},
            key_vault=args.key_vault_id, storage_account=args.storage_account_id,
            container_registry=args.container_registry_id, application_insights=args.telemetry.insights.id,
            public_network_access="Disabled", system_datastores_auth_mode="identity", v1_legacy_mode=False,
            # Online deployments need the managed network in place first (Azure ML docs, "Managed virtual network
            # isolation": provision it before deploying).
            provision_network_now=True,
            # Less diagnostic data kept by Microsoft, and local disks encrypted, for production workloads.
            hbi_workspace=args.production,
            managed_network=azure.machinelearningservices.ManagedNetworkSettingsArgs(
                isolation_mode="AllowOnlyApprovedOutbound", firewall_sku=args.firewall_sku, outbound_rules=rules),
            tags=args.tags, opts=child)
        args.network.private_endpoint(f"{name}-workspace", self.workspace.id, "amlworkspace", self)
        azure.monitor.DiagnosticSetting(
            f"{name}-audit", resource_uri=self.workspace.id, workspace_id=args.telemetry.logs.id,
            logs=[{"category_group": "allLogs", "enabled": True}], opts=child)
        self.register_outputs({"workspaceId": self.workspace.id})
