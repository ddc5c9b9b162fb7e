"""The stack's Key Vault on Azure: the Hugging Face token secret and the customer-managed key the storage account
and the container registry encrypt with, reachable only through its private endpoint."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure

from .network import Network

# Built-in role definitions (Azure RBAC docs, "Azure built-in roles", Security and Containers, read 2026-12-08).
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
"""Read secret contents: the online endpoint's identity, on the token secret only."""
KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER = "e147488a-f6f5-4113-8e2d-b22465e65bf6"
"""Wrap and unwrap with a key: the services' encryption identity, on the key only."""
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
"""Pull images: the online endpoint's identity, on the registry only."""

# Soft-deleted vaults and keys stay recoverable this long; purge protection stops anyone purging them sooner.
SOFT_DELETE_DAYS = 90
# A new key version every year, a month's notice before the old one expires; services that hold the versionless
# key URI (storage, registry) move to the new version on their own.
KEY_EXPIRY, KEY_ROTATE_AFTER, KEY_NOTIFY_BEFORE = "P2Y", "P1Y", "P30D"


def role_definition(subscription_id: pulumi.Input[str], role: str) -> pulumi.Output[str]:
    """The ARM id of a built-in role in the subscription."""
    return pulumi.Output.format("/subscriptions/{0}/providers/Microsoft.Authorization/roleDefinitions/{1}",
                                subscription_id, role)


def grant(name: str, principal_id: pulumi.Input[str], role: str, scope: pulumi.Input[str],
          subscription_id: pulumi.Input[str], parent: pulumi.Resource) -> azure.authorization.RoleAssignment:
    """One built-in role for a managed identity (a service principal), on exactly `scope`."""
    return azure.authorization.RoleAssignment(
        name, principal_id=principal_id, principal_type="ServicePrincipal", scope=scope,
        role_definition_id=role_definition(subscription_id, role), opts=pulumi.ResourceOptions(parent=parent))


@dataclass(frozen=True)
class KeyVaultArgs:
    vault_name: str
    """Globally unique, 3-24 characters of letters, digits and '-'."""
    resource_group_name: pulumi.Input[str]
    location: str
    subscription_id: str
    tenant_id: pulumi.Input[str]
    network: Network
    tags: dict[str, str]
    hf_token: pulumi.Output[str] | None
    log_analytics_id: pulumi.Input[str]


class KeyVault(pulumi.ComponentResource):
    """A Premium vault in RBAC mode (no access policies) with purge protection and 90 days of soft delete, no
    public network access (its private endpoint only; trusted Azure services may pass, for the platform's own
    key operations), its audit logs in Log Analytics; an HSM-protected RSA key rotated yearly, usable by exactly
    one user-assigned identity the storage account and the registry encrypt as; and the Hugging Face token as a
    secret, which `grant_reader` opens to one identity."""

    def __init__(self, name: str, args: KeyVaultArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:azure:KeyVault", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.subscription_id = args.subscription_id
        self.vault = azure.keyvault.Vault(
            f"{name}-vault", vault_name=args.vault_name, resource_group_name=args.resource_group_name,
            location=args.location, tags=args.tags,
            properties=azure.keyvault.VaultPropertiesArgs(
                tenant_id=args.tenant_id, sku=azure.keyvault.SkuArgs(family="A", name=azure.keyvault.SkuName.PREMIUM),
                enable_rbac_authorization=True, enable_purge_protection=True, enable_soft_delete=True,
                soft_delete_retention_in_days=SOFT_DELETE_DAYS, public_network_access="Disabled",
                network_acls=azure.keyvault.NetworkRuleSetArgs(default_action="Deny", bypass="AzureServices")),
            # A deleted vault takes its keys with it, and with them the data they encrypt.
            opts=pulumi.ResourceOptions(parent=self, protect=True))
        args.network.private_endpoint(f"{name}-vault", self.vault.id, "vault", self)
        azure.monitor.DiagnosticSetting(
            f"{name}-audit", resource_uri=self.vault.id, workspace_id=args.log_analytics_id,
            logs=[{"category_group": "audit", "enabled": True}], opts=child)
        self.key = azure.keyvault.Key(
            f"{name}-cmk", resource_group_name=args.resource_group_name, vault_name=self.vault.name, key_name="cmk",
            properties=azure.keyvault.KeyPropertiesArgs(
                kty="RSA-HSM", key_size=2048, key_ops=["wrapKey", "unwrapKey"],
                rotation_policy=azure.keyvault.RotationPolicyArgs(
                    attributes=azure.keyvault.KeyRotationPolicyAttributesArgs(expiry_time=KEY_EXPIRY),
                    lifetime_actions=[
                        azure.keyvault.LifetimeActionArgs(
                            action=azure.keyvault.ActionArgs(type=azure.keyvault.KeyRotationPolicyActionType.ROTATE),
                            trigger=azure.keyvault.TriggerArgs(time_after_create=KEY_ROTATE_AFTER)),
                        azure.keyvault.LifetimeActionArgs(
                            action=azure.keyvault.ActionArgs(type=azure.keyvault.KeyRotationPolicyActionType.NOTIFY),
                            trigger=azure.keyvault.TriggerArgs(time_before_expiry=KEY_NOTIFY_BEFORE))])),
            tags=args.tags, opts=pulumi.ResourceOptions(parent=self, protect=True))
        self.encryption_identity = azure.managedidentity.UserAssignedIdentity(
            f"{name}-cmk-identity", resource_group_name=args.resource_group_name, location=args.location,
            tags=args.tags, opts=child)
        self.key_grant = grant(f"{name}-cmk-user", self.encryption_identity.principal_id,
                               KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER, self.key.id, args.subscription_id, self)
        self.token = None
        if args.hf_token is not None:
            self.token = azure.keyvault.Secret(
                f"{name}-hf-token", resource_group_name=args.resource_group_name, vault_name=self.vault.name,
                secret_name="hf-token",
                properties={"value": args.hf_token, "content_type": "text/plain"},
                tags=args.tags, opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({"vaultId": self.vault.id, "keyId": self.key.id})

    @property
    def token_url(self) -> pulumi.Output[str] | None:
        """The token secret's versionless URL (its newest version is read), or None without a token."""
        if self.token is None:
            return None
        return pulumi.Output.format("{0}secrets/hf-token", self.vault.properties.vault_uri)

    def grant_reader(self, name: str, principal_id: pulumi.Input[str],
                     parent: pulumi.Resource) -> azure.authorization.RoleAssignment | None:
        """Let one identity read the token secret, and nothing else in the vault."""
        if self.token is None:
            return None
        return grant(name, principal_id, KEY_VAULT_SECRETS_USER, self.token.id, self.subscription_id, parent)
