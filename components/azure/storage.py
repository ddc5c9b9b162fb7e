"""The Azure ML workspace's storage account: private, encrypted with the stack's key, reached by identity only."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure

from .keyvault import KeyVault
from .network import Network

# Deleted blobs and containers stay recoverable this long.
DELETE_RETENTION_DAYS = 30


@dataclass(frozen=True)
class StorageArgs:
    account_name: str
    """Globally unique, 3-24 lowercase letters and digits."""
    resource_group_name: pulumi.Input[str]
    location: str
    network: Network
    vault: KeyVault
    tags: dict[str, str]


class Storage(pulumi.ComponentResource):
    """A zone-redundant StorageV2 account with no public network access (its blob and file private endpoints
    only), no shared keys (Microsoft Entra identities only: the workspace reads it as its own identity), no public
    blobs, HTTPS with TLS 1.2 at least, infrastructure encryption, and the stack's customer-managed key (the
    versionless key, so rotation needs nothing); deleted blobs and containers kept 30 days."""

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:azure:Storage", name, None, opts)
        vault = args.vault
        self.account = azure.storage.StorageAccount(
            f"{name}-account", account_name=args.account_name, resource_group_name=args.resource_group_name,
            location=args.location, kind="StorageV2", sku={"name": "Standard_ZRS"},
            access_tier=azure.storage.AccessTier.HOT,
            public_network_access="Disabled", allow_blob_public_access=False, allow_shared_key_access=False,
            default_to_o_auth_authentication=True, enable_https_traffic_only=True, minimum_tls_version="TLS1_2",
            allow_cross_tenant_replication=False,
            network_rule_set={"default_action": azure.storage.DefaultAction.DENY, "bypass": "AzureServices"},
            identity={"type": "UserAssigned", "user_assigned_identities": [vault.encryption_identity.id]},
            encryption={"key_source": "Microsoft.Keyvault", "require_infrastructure_encryption": True,
                        "key_vault_properties": {"key_name": vault.key.name,
                                                 "key_vault_uri": vault.vault.properties.vault_uri},
                        "encryption_identity": {"encryption_user_assigned_identity": vault.encryption_identity.id},
                        "services": {"blob": {"enabled": True, "key_type": "Account"},
                                     "file": {"enabled": True, "key_type": "Account"}}},
            tags=args.tags, opts=pulumi.ResourceOptions(parent=self, depends_on=[vault.key_grant]))
        azure.storage.BlobServiceProperties(
            f"{name}-blob-service", account_name=self.account.name, resource_group_name=args.resource_group_name,
            blob_services_name="default",
            delete_retention_policy={"enabled": True, "days": DELETE_RETENTION_DAYS},
            container_delete_retention_policy={"enabled": True, "days": DELETE_RETENTION_DAYS},
            opts=pulumi.ResourceOptions(parent=self))
        for group in ("blob", "file"):
            args.network.private_endpoint(f"{name}-{group}", self.account.id, group, self)
        self.register_outputs({"accountId": self.account.id})
