"""Azure's policy rules (components/azure/policies.py): every rule against a compliant plan (the foundation and an
online endpoint as components/azure declares them, in the provider's wire names and ARM's ids) and the same plan with
the one setting the rule is about changed, so no rule passes everything; plus the exemptions the rules report, the
tier, ids that are unknown before apply, and the shipped stack azure-prod."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from components.azure import policies as azure
from components.azure.policies import (
    ACR_PULL,
    CONTAINER_ENVIRONMENTS,
    CONTRIBUTOR,
    KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER,
    KEY_VAULT_SECRETS_USER,
    OWNER,
    RULES,
    arm_scope,
)
from components.cost_rules import Resource
from components.policy import Finding, Plan
from components.schema import UNKNOWN

from .conftest import mutate_plan as mutate

ROOT = Path(__file__).resolve().parents[1]
BY_ID = {r.id: r for r in RULES}
PRODUCTION, DEVELOPMENT = {"tier": "production"}, {"tier": "development"}

SUB = "6f3c1a52-0d1e-4c4b-9a1e-2f0c8d9b7e11"
RG = f"/subscriptions/{SUB}/resourceGroups/azure-prod-rg"


def arm(path: str) -> str:
    return f"{RG}/providers/{path}"


def role(guid: str) -> str:
    return f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


VAULT_ID = arm("Microsoft.KeyVault/vaults/azure-prod-1a2b3c")
KEY_ID, SECRET_ID = f"{VAULT_ID}/keys/cmk", f"{VAULT_ID}/secrets/hf-token"
STORAGE_ID = arm("Microsoft.Storage/storageAccounts/azureprod1a2b3c")
REGISTRY_ID = arm("Microsoft.ContainerRegistry/registries/azureprod1a2b3c")
WORKSPACE_ID = arm("Microsoft.MachineLearningServices/workspaces/azure-prod-ml")
LOGS_ID = arm("Microsoft.OperationalInsights/workspaces/azure-prod-telemetry-logs1a2b3c4d")
NSG_ID = arm("Microsoft.Network/networkSecurityGroups/azure-prod-network-nsg1a2b3c4d")
SUBNET_ID = arm("Microsoft.Network/virtualNetworks/vnet/subnets/azure-prod-network-private-endpoints")
HUB_HOSTS = ("huggingface.co", "cdn-lfs.huggingface.co", "cdn-lfs-us-1.huggingface.co", "cas-bridge.xethub.hf.co",
             "*.hf.co")
TAGS = {"environment": "azure-prod", "owner": "ml-platform", "managed-by": "pulumi", "project": "selfhost-llm"}

VAULT, KEY, STORAGE, REGISTRY = azure.VAULT, azure.KEY, azure.STORAGE, azure.REGISTRY
WORKSPACE, ENDPOINT, DEPLOYMENT = azure.WORKSPACE, azure.ENDPOINT, azure.DEPLOYMENT
ROLE, NSG, SUBNET, PE = azure.ROLE_ASSIGNMENT, azure.NSG, azure.SUBNET, azure.PRIVATE_ENDPOINT
DIAGNOSTIC, LOGS, SECURITY_RULE = azure.DIAGNOSTIC_SETTING, azure.LOG_ANALYTICS, azure.SECURITY_RULE


def private_endpoint(name: str, component: str, target: str, group: str) -> Resource:
    return Resource(PE, f"{name}-pe", component, {
        "resourceGroupName": "azure-prod-rg", "subnet": {"id": SUBNET_ID}, "tags": TAGS,
        "privateLinkServiceConnections": [{"name": f"{name}-{group}", "privateLinkServiceId": target,
                                           "groupIds": [group]}]})


def grant(name: str, component: str, guid: str, scope: str) -> Resource:
    return Resource(ROLE, name, component, {"principalId": "9c0d5d5e-0000-4000-8000-000000000001",
                                            "principalType": "ServicePrincipal", "scope": scope,
                                            "roleDefinitionId": role(guid)})


def compliant() -> list[Resource]:
    """A production plan every Azure rule passes: what components/azure declares, with the workspace's CMK and the
    endpoint's Microsoft Entra auth the production tier asks for."""
    keys, storage, images, ml, endpoint = ("azure-prod-keys", "azure-prod-storage", "azure-prod-images",
                                           "azure-prod-ml", "azure-prod-chat")
    return [
        Resource(NSG, "azure-prod-network-nsg", "azure-prod-network", {"tags": TAGS, "securityRules": [
            {"name": "allow-vnet-https", "priority": 100, "direction": "Inbound", "access": "Allow",
             "protocol": "Tcp", "sourceAddressPrefix": "VirtualNetwork", "sourcePortRange": "*",
             "destinationAddressPrefix": "VirtualNetwork", "destinationPortRange": "443"},
            {"name": "deny-internet", "priority": 4000, "direction": "Inbound", "access": "Deny", "protocol": "*",
             "sourceAddressPrefix": "Internet", "sourcePortRange": "*", "destinationAddressPrefix": "*",
             "destinationPortRange": "*"}]}),
        Resource(SUBNET, "azure-prod-network-private-endpoints", "azure-prod-network", {
            "addressPrefix": "10.50.0.0/24", "networkSecurityGroup": {"id": NSG_ID},
            "privateEndpointNetworkPolicies": "Enabled", "defaultOutboundAccess": False}),
        Resource(LOGS, "azure-prod-telemetry-logs", "azure-prod-telemetry", {
            "sku": {"name": "PerGB2018"}, "retentionInDays": 365, "tags": TAGS}),
        Resource(VAULT, "azure-prod-keys-vault", keys, {"vaultName": "azure-prod-1a2b3c", "tags": TAGS, "properties": {
            "tenantId": "t", "sku": {"family": "A", "name": "premium"}, "enableRbacAuthorization": True,
            "enablePurgeProtection": True, "enableSoftDelete": True, "softDeleteRetentionInDays": 90,
            "publicNetworkAccess": "Disabled", "networkAcls": {"defaultAction": "Deny", "bypass": "AzureServices"}}}),
        private_endpoint("azure-prod-keys-vault", keys, VAULT_ID, "vault"),
        Resource(DIAGNOSTIC, "azure-prod-keys-audit", keys, {
            "resourceUri": VAULT_ID, "workspaceId": LOGS_ID, "logs": [{"categoryGroup": "audit", "enabled": True}]}),
        Resource(KEY, "azure-prod-keys-cmk", keys, {"vaultName": "azure-prod-1a2b3c", "keyName": "cmk", "properties": {
            "kty": "RSA-HSM", "keySize": 2048, "keyOps": ["wrapKey", "unwrapKey"], "rotationPolicy": {
                "attributes": {"expiryTime": "P2Y"}, "lifetimeActions": [
                    {"action": {"type": "rotate"}, "trigger": {"timeAfterCreate": "P1Y"}},
                    {"action": {"type": "notify"}, "trigger": {"timeBeforeExpiry": "P30D"}}]}}}),
        grant("azure-prod-keys-cmk-user", keys, KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER, KEY_ID),
        Resource(STORAGE, "azure-prod-storage-account", storage, {
            "accountName": "azureprod1a2b3c", "kind": "StorageV2", "sku": {"name": "Standard_ZRS"}, "tags": TAGS,
            "publicNetworkAccess": "Disabled", "allowBlobPublicAccess": False, "allowSharedKeyAccess": False,
            "enableHttpsTrafficOnly": True, "minimumTlsVersion": "TLS1_2",
            "networkRuleSet": {"defaultAction": "Deny", "bypass": "AzureServices"},
            "encryption": {"keySource": "Microsoft.Keyvault", "requireInfrastructureEncryption": True,
                           "keyVaultProperties": {"keyName": "cmk",
                                                  "keyVaultUri": "https://azure-prod-1a2b3c.vault.azure.net/"}}}),
        private_endpoint("azure-prod-storage-blob", storage, STORAGE_ID, "blob"),
        private_endpoint("azure-prod-storage-file", storage, STORAGE_ID, "file"),
        Resource(REGISTRY, "azure-prod-images-registry", images, {
            "registryName": "azureprod1a2b3c", "sku": {"name": "Premium"}, "tags": TAGS, "adminUserEnabled": False,
            "anonymousPullEnabled": False, "publicNetworkAccess": "Disabled",
            "networkRuleSet": {"defaultAction": "Deny", "ipRules": []},
            "encryption": {"status": "enabled", "keyVaultProperties": {
                "keyIdentifier": "https://azure-prod-1a2b3c.vault.azure.net/keys/cmk", "identity": "client"}}}),
        private_endpoint("azure-prod-images-registry", images, REGISTRY_ID, "registry"),
        Resource(WORKSPACE, "azure-prod-ml-workspace", ml, {
            "workspaceName": "azure-prod-ml", "tags": TAGS, "identity": {"type": "SystemAssigned"},
            "publicNetworkAccess": "Disabled", "systemDatastoresAuthMode": "identity",
            "managedNetwork": {"isolationMode": "AllowOnlyApprovedOutbound", "firewallSku": "Standard",
                               "outboundRules": {f"hub-{i}": {"type": "FQDN", "category": "UserDefined",
                                                              "destination": host}
                                                 for i, host in enumerate(HUB_HOSTS)}},
            "encryption": {"status": "Enabled", "keyVaultProperties": {
                "keyVaultArmId": VAULT_ID, "keyIdentifier": "https://azure-prod-1a2b3c.vault.azure.net/keys/cmk"}}}),
        private_endpoint("azure-prod-ml-workspace", ml, WORKSPACE_ID, "amlworkspace"),
        Resource(DIAGNOSTIC, "azure-prod-ml-audit", ml, {
            "resourceUri": WORKSPACE_ID, "workspaceId": LOGS_ID,
            "logs": [{"categoryGroup": "allLogs", "enabled": True}]}),
        Resource(ENDPOINT, "azure-prod-chat-endpoint", endpoint, {
            "endpointName": "chat", "workspaceName": "azure-prod-ml", "identity": {"type": "SystemAssigned"},
            "tags": TAGS, "properties": {"authMode": "AADToken", "publicNetworkAccess": "Disabled"}}),
        grant("azure-prod-chat-image-pull", endpoint, ACR_PULL, REGISTRY_ID),
        grant("azure-prod-chat-token-reader", endpoint, KEY_VAULT_SECRETS_USER, SECRET_ID),
        Resource(DEPLOYMENT, "azure-prod-chat-blue-deployment", "azure-prod-chat-blue", {
            "deploymentName": "blue", "tags": TAGS, "properties": {
                "endpointComputeType": "Managed", "instanceType": "Standard_NC24ads_A100_v4",
                "environmentVariables": {"SELFHOST_MODEL": "meta-llama/Llama-3.1-8B-Instruct",
                                         "SELFHOST_HF_TOKEN_KEYVAULT_URL":
                                             "https://azure-prod-1a2b3c.vault.azure.net/secrets/hf-token"}}}),
    ]




def drop(items: list[Resource], token: str, name: str = "") -> list[Resource]:
    return [r for r in items if not (r.type == token and name in r.name)]


def props(i: dict[str, Any]) -> dict[str, Any]:
    return i["properties"]


def findings(rule_id: str, items: list[Resource], outputs: dict[str, Any] | None = None) -> list[str]:
    plan = Plan(items, outputs=PRODUCTION if outputs is None else outputs)
    return [f.message for f in BY_ID[rule_id].run(plan) if f.exempt is None]


def exemptions(rule_id: str, items: list[Resource], outputs: dict[str, Any]) -> list[Finding]:
    return [f for f in BY_ID[rule_id].run(Plan(items, outputs=outputs)) if f.exempt]


# rule -> how to break it (in production), each break the one setting a reviewer would get wrong.
CASES: dict[str, Callable[[list[Resource]], list[Resource]]] = {
    "azure-keyvault-private": lambda p: mutate(p, VAULT, lambda i: props(i).update(publicNetworkAccess="Enabled")),
    "azure-keyvault-recoverable": lambda p: mutate(p, VAULT, lambda i: props(i).pop("enablePurgeProtection")),
    "azure-keyvault-rbac": lambda p: mutate(p, VAULT, lambda i: props(i).update(enableRbacAuthorization=False)),
    "azure-keyvault-key-rotation": lambda p: mutate(
        p, KEY, lambda i: props(i)["rotationPolicy"]["lifetimeActions"].pop(0)),
    "azure-storage-private": lambda p: mutate(p, STORAGE, lambda i: i.update(publicNetworkAccess="Enabled")),
    "azure-storage-no-public-blobs": lambda p: mutate(p, STORAGE, lambda i: i.pop("allowBlobPublicAccess")),
    "azure-storage-tls": lambda p: mutate(p, STORAGE, lambda i: i.update(minimumTlsVersion="TLS1_0")),
    "azure-storage-no-shared-key": lambda p: mutate(p, STORAGE, lambda i: i.update(allowSharedKeyAccess=True)),
    "azure-storage-cmk": lambda p: mutate(p, STORAGE, lambda i: i["encryption"].update(keySource="Microsoft.Storage")),
    "azure-registry-private": lambda p: mutate(
        p, REGISTRY, lambda i: (i.update(publicNetworkAccess="Enabled"), i["networkRuleSet"].update(
            defaultAction="Allow"))),
    "azure-registry-auth": lambda p: mutate(p, REGISTRY, lambda i: i.update(adminUserEnabled=True)),
    "azure-registry-cmk": lambda p: mutate(p, REGISTRY, lambda i: i.pop("encryption")),
    "azure-ml-workspace-private": lambda p: mutate(p, WORKSPACE, lambda i: i.update(publicNetworkAccess="Enabled")),
    "azure-ml-managed-network": lambda p: mutate(
        p, WORKSPACE, lambda i: i["managedNetwork"].update(isolationMode="AllowInternetOutbound")),
    "azure-ml-workspace-cmk": lambda p: mutate(p, WORKSPACE, lambda i: i.pop("encryption")),
    "azure-ml-datastores-identity": lambda p: mutate(
        p, WORKSPACE, lambda i: i.update(systemDatastoresAuthMode="AccessKey")),
    "azure-ml-endpoint-private": lambda p: mutate(
        p, ENDPOINT, lambda i: props(i).update(publicNetworkAccess="Enabled")),
    "azure-ml-endpoint-identity": lambda p: mutate(p, ENDPOINT, lambda i: i.update(identity={"type": "None"})),
    "azure-ml-endpoint-auth": lambda p: mutate(p, ENDPOINT, lambda i: props(i).update(authMode="Key")),
    "azure-no-privileged-roles": lambda p: mutate(
        p, ROLE, lambda i: i.update(roleDefinitionId=role(OWNER)), name="image-pull"),
    "azure-role-scope": lambda p: mutate(p, ROLE, lambda i: i.update(scope=VAULT_ID), name="token-reader"),
    "azure-no-open-ingress": lambda p: mutate(
        p, NSG, lambda i: i["securityRules"][0].update(sourceAddressPrefix="Internet")),
    "azure-subnet-nsg": lambda p: mutate(p, SUBNET, lambda i: i.pop("networkSecurityGroup")),
    "azure-private-endpoints": lambda p: drop(p, PE, "keys-vault"),
    "azure-diagnostic-logs": lambda p: drop(p, DIAGNOSTIC, "ml-audit"),
    "azure-log-retention": lambda p: mutate(p, LOGS, lambda i: i.pop("retentionInDays")),
    "azure-log-retention-production": lambda p: mutate(p, LOGS, lambda i: i.update(retentionInDays=90)),
}


def test_every_azure_rule_is_tested_here():
    assert set(BY_ID) == set(CASES)
    assert len(RULES) == len(BY_ID)  # no id twice


def test_every_scanner_note_is_a_checkov_azure_id_no_rule_claims():
    claimed = {c for r in RULES for c in r.checkov}
    for check, why in azure.SCANNER_NOTES.items():
        assert check.startswith(("CKV_AZURE_", "CKV2_AZURE_")) and why
        assert check not in claimed


def test_every_rule_is_described_with_an_id_a_severity_and_a_fix():
    for r in RULES:
        assert r.id.startswith("azure-") and r.description and r.fix
        assert r.severity in ("critical", "high", "medium", "low")
        assert all(c.startswith(("CKV_AZURE_", "CKV2_AZURE_")) for c in r.checkov)
    assert [r.id for r in RULES if not r.mandatory] == ["azure-ml-workspace-cmk", "azure-ml-endpoint-auth"]


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_a_compliant_resource_passes_and_the_violating_one_fails(rule_id):
    plan = compliant()
    assert findings(rule_id, plan) == []
    assert exemptions(rule_id, plan, PRODUCTION) == []
    broken = findings(rule_id, CASES[rule_id](plan))
    assert broken, f"{rule_id} did not catch the change"


def test_the_compliant_plan_passes_every_rule_in_every_tier():
    for outputs in (PRODUCTION, DEVELOPMENT, {}):
        for r in RULES:
            assert [f for f in r.run(Plan(compliant(), outputs=outputs)) if not f.exempt] == [], (r.id, outputs)


def test_messages_name_the_input():
    plan = compliant()
    (message,) = findings("azure-keyvault-private", CASES["azure-keyvault-private"](plan))
    assert "properties.publicNetworkAccess is Enabled" in message
    (message,) = findings("azure-storage-tls", CASES["azure-storage-tls"](plan))
    assert "minimumTlsVersion is TLS1_0" in message
    (message,) = findings("azure-role-scope", CASES["azure-role-scope"](plan))
    assert "Key Vault Secrets User on a Microsoft.KeyVault/vaults" in message and "the secret" in message


# ---------------------------------------------------------------------------------------------------------
# Key Vault


def test_vault_firewall_and_soft_delete():
    plan = compliant()
    allow = mutate(plan, VAULT, lambda i: props(i)["networkAcls"].update(defaultAction="Allow"))
    assert "networkAcls.defaultAction is Allow" in findings("azure-keyvault-private", allow)[0]
    # Below 90 days of soft delete: fine in development (Azure's minimum is 7), not in production.
    short = mutate(plan, VAULT, lambda i: props(i).update(softDeleteRetentionInDays=30))
    assert findings("azure-keyvault-recoverable", short, DEVELOPMENT) == []
    assert "below 90 in a production environment" in findings("azure-keyvault-recoverable", short)[0]
    too_short = mutate(plan, VAULT, lambda i: props(i).update(softDeleteRetentionInDays=5))
    assert findings("azure-keyvault-recoverable", too_short, DEVELOPMENT)
    no_soft_delete = mutate(plan, VAULT, lambda i: props(i).update(enableSoftDelete=False))
    assert findings("azure-keyvault-recoverable", no_soft_delete, DEVELOPMENT)
    # Unset: Azure's default, 90 days.
    assert findings("azure-keyvault-recoverable", mutate(
        plan, VAULT, lambda i: props(i).pop("softDeleteRetentionInDays"))) == []


def test_vault_access_policies_are_refused_even_beside_rbac():
    policies = mutate(compliant(), VAULT, lambda i: props(i).update(accessPolicies=[{"objectId": "x"}]))
    assert "accessPolicies" in findings("azure-keyvault-rbac", policies)[0]


def test_key_rotation_interval_and_expiry():
    plan = compliant()
    slow = mutate(plan, KEY, lambda i: props(i)["rotationPolicy"]["lifetimeActions"][0]["trigger"].update(
        timeAfterCreate="P2Y"))
    assert "more than a year" in findings("azure-keyvault-key-rotation", slow)[0]
    monthly = mutate(plan, KEY, lambda i: props(i)["rotationPolicy"]["lifetimeActions"][0]["trigger"].update(
        timeAfterCreate="P90D"))
    assert findings("azure-keyvault-key-rotation", monthly) == []
    no_expiry = mutate(plan, KEY, lambda i: props(i)["rotationPolicy"].pop("attributes"))
    assert "never expire" in findings("azure-keyvault-key-rotation", no_expiry)[0]
    # An expiry on the key itself (attributes.expires, epoch seconds) does as well.
    expires = mutate(no_expiry, KEY, lambda i: props(i).update(attributes={"expires": 1893456000}))
    assert findings("azure-keyvault-key-rotation", expires) == []


# ---------------------------------------------------------------------------------------------------------
# Storage and registry


def test_storage_rules_read_each_setting():
    plan = compliant()
    assert findings("azure-storage-tls", mutate(plan, STORAGE, lambda i: i.update(enableHttpsTrafficOnly=False)))
    assert findings("azure-storage-tls", mutate(plan, STORAGE, lambda i: i.update(minimumTlsVersion="TLS1_3"))) == []
    assert findings("azure-storage-private", mutate(
        plan, STORAGE, lambda i: i["networkRuleSet"].update(defaultAction="Allow")))
    assert findings("azure-storage-no-shared-key", mutate(plan, STORAGE, lambda i: i.pop("allowSharedKeyAccess")))
    no_key = mutate(plan, STORAGE, lambda i: i["encryption"].pop("keyVaultProperties"))
    assert "names no key" in findings("azure-storage-cmk", no_key)[0]


def test_the_registry_admits_the_deployers_ranges_as_a_stated_exemption():
    plan = compliant()
    deployers = mutate(plan, REGISTRY, lambda i: (i.update(publicNetworkAccess="Enabled"), i["networkRuleSet"].update(
        ipRules=[{"iPAddressOrRange": "203.0.113.0/28", "action": "Allow"}])))
    assert findings("azure-registry-private", deployers) == []
    (exempt,) = exemptions("azure-registry-private", deployers, PRODUCTION)
    assert exempt.exempt and "203.0.113.0/28" in exempt.exempt and "pushes the serving image" in exempt.exempt
    everyone = mutate(deployers, REGISTRY, lambda i: i["networkRuleSet"]["ipRules"].append(
        {"iPAddressOrRange": "0.0.0.0/0", "action": "Allow"}))
    assert "admit the internet" in findings("azure-registry-private", everyone)[0]
    nobody = mutate(deployers, REGISTRY, lambda i: i["networkRuleSet"].update(ipRules=[]))
    assert "set it Disabled" in findings("azure-registry-private", nobody)[0]


def test_registry_anonymous_pull_and_cmk_key():
    plan = compliant()
    assert findings("azure-registry-auth", mutate(plan, REGISTRY, lambda i: i.update(anonymousPullEnabled=True)))
    no_key = mutate(plan, REGISTRY, lambda i: i["encryption"].update(keyVaultProperties={}))
    assert "keyIdentifier" in findings("azure-registry-cmk", no_key)[0]


# ---------------------------------------------------------------------------------------------------------
# The workspace and its endpoints


def test_the_managed_network_approves_the_hub_and_nothing_else():
    plan = compliant()

    def rules(**extra: dict[str, Any]) -> list[Resource]:
        return mutate(plan, WORKSPACE, lambda i: i["managedNetwork"]["outboundRules"].update(extra))

    assert findings("azure-ml-managed-network", rules(pypi={"type": "FQDN", "destination": "pypi.org"}))
    for host in ("*", "*.co", "evil-huggingface.co", "huggingface.co.evil.com", "*.*.hf.co", "hf.co/x"):
        assert findings("azure-ml-managed-network", rules(x={"type": "FQDN", "destination": host})), host
    assert findings("azure-ml-managed-network", rules(internet={"type": "ServiceTag", "destination": {
        "serviceTag": "Internet", "protocol": "TCP", "portRanges": "443", "action": "Allow"}}))
    assert findings("azure-ml-managed-network", rules(ranges={"type": "ServiceTag", "destination": {
        "addressPrefixes": ["0.0.0.0/0"], "protocol": "TCP", "portRanges": "443", "action": "Allow"}}))
    # Private endpoints to Azure resources, and Azure's own service tags, are not the internet.
    assert findings("azure-ml-managed-network", rules(
        store={"type": "PrivateEndpoint", "destination": {"serviceResourceId": STORAGE_ID,
                                                          "subresourceTarget": "blob"}},
        monitor={"type": "ServiceTag", "destination": {"serviceTag": "AzureMonitor", "protocol": "TCP",
                                                       "portRanges": "443", "action": "Allow"}})) == []
    for mode in ("Disabled", None):
        off = mutate(plan, WORKSPACE, lambda i, m=mode: i["managedNetwork"].update(isolationMode=m))
        assert findings("azure-ml-managed-network", off)
    assert findings("azure-ml-managed-network", mutate(plan, WORKSPACE, lambda i: i.pop("managedNetwork")))


@pytest.mark.parametrize(("host", "approved"), [
    ("huggingface.co", True), ("HuggingFace.co.", True), ("cdn-lfs-us-1.huggingface.co", True),
    ("*.huggingface.co", True), ("cas-bridge.xethub.hf.co", True), ("*.hf.co", True), ("hf.co", True),
    ("*", False), ("*.co", False), ("pypi.org", False), ("evil-huggingface.co", False), ("hf.co.evil.com", False),
    ("*.*.hf.co", False), ("a*.hf.co", False), ("", False),
])
def test_hub_hosts(host, approved):
    assert azure.hub_host(host) is approved


def test_the_programs_hub_hosts_are_ones_the_policy_approves():
    workspace = pytest.importorskip("components.azure.workspace")
    assert workspace.HUB_HOSTS and all(azure.hub_host(h) for h in workspace.HUB_HOSTS)


def test_workspace_cmk_is_a_production_advisory_and_says_why_not_below():
    assert not BY_ID["azure-ml-workspace-cmk"].mandatory
    plan = CASES["azure-ml-workspace-cmk"](compliant())
    assert findings("azure-ml-workspace-cmk", plan, DEVELOPMENT) == []
    (exempt,) = exemptions("azure-ml-workspace-cmk", plan, DEVELOPMENT)
    assert exempt.exempt and "not a production environment" in exempt.exempt
    assert "in a production environment" in findings("azure-ml-workspace-cmk", plan)[0]


def test_the_workspace_answers_no_public_caller_behind_its_network():
    behind = mutate(compliant(), WORKSPACE, lambda i: i.update(allowPublicAccessWhenBehindVnet=True))
    assert findings("azure-ml-workspace-private", behind)


def test_endpoint_auth_is_an_advisory_preferring_entra_tokens_in_production():
    rule = BY_ID["azure-ml-endpoint-auth"]
    assert not rule.mandatory
    keys = CASES["azure-ml-endpoint-auth"](compliant())
    assert findings("azure-ml-endpoint-auth", keys, DEVELOPMENT) == []  # keys authenticate too
    assert "in a production environment" in findings("azure-ml-endpoint-auth", keys)[0]
    aml = mutate(compliant(), ENDPOINT, lambda i: props(i).update(authMode="AMLToken"))
    assert findings("azure-ml-endpoint-auth", aml, DEVELOPMENT) == []
    unknown_mode = mutate(compliant(), ENDPOINT, lambda i: props(i).update(authMode="Anonymous"))
    assert findings("azure-ml-endpoint-auth", unknown_mode, DEVELOPMENT)


def test_endpoint_identity_is_its_own():
    shared = mutate(compliant(), ENDPOINT, lambda i: i.update(identity={
        "type": "UserAssigned", "userAssignedIdentities": [arm("Microsoft.ManagedIdentity/userAssignedIdentities/x")]}))
    assert findings("azure-ml-endpoint-identity", shared)
    assert findings("azure-ml-endpoint-identity", mutate(compliant(), ENDPOINT, lambda i: i.pop("identity")))


# ---------------------------------------------------------------------------------------------------------
# Role assignments


@pytest.mark.parametrize(("scope", "kind"), [
    ("/", "root"),
    ("/providers/Microsoft.Management/managementGroups/mg", "management group"),
    (f"/subscriptions/{SUB}", "subscription"),
    (RG, "resource group"),
    (VAULT_ID, "Microsoft.KeyVault/vaults"),
    (SECRET_ID, "Microsoft.KeyVault/vaults/secrets"),
    (KEY_ID, "Microsoft.KeyVault/vaults/keys"),
    (REGISTRY_ID, "Microsoft.ContainerRegistry/registries"),
    ("hf-token", "unknown"),
])
def test_arm_scopes(scope, kind):
    assert arm_scope(scope) == kind


def test_each_data_role_only_on_its_resource():
    plan = compliant()
    for name, scope in (("image-pull", RG), ("image-pull", f"/subscriptions/{SUB}"), ("image-pull", VAULT_ID),
                        ("cmk-user", VAULT_ID), ("token-reader", KEY_ID), ("token-reader", RG)):
        wrong = mutate(plan, ROLE, lambda i, s=scope: i.update(scope=s), name=name)
        assert findings("azure-role-scope", wrong), (name, scope)
    # Any other role is held to one resource too.
    other = mutate(plan, ROLE, lambda i: i.update(roleDefinitionId=role("2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"),
                                                  scope=RG), name="image-pull")
    assert "resource group" in findings("azure-role-scope", other)[0]


def test_an_unknown_scope_is_left_to_the_offline_preview():
    unknown = mutate(compliant(), ROLE, lambda i: i.update(scope=UNKNOWN), name="token-reader")
    assert findings("azure-role-scope", unknown) == []


def test_contributor_is_privileged():
    contributor = mutate(compliant(), ROLE, lambda i: i.update(roleDefinitionId=role(CONTRIBUTOR)), name="cmk-user")
    assert "Contributor" in findings("azure-no-privileged-roles", contributor)[0]


# ---------------------------------------------------------------------------------------------------------
# Network and logs


def test_security_rules():
    plan = compliant()
    ssh = mutate(plan, NSG, lambda i: i["securityRules"][0].update(destinationPortRange="22"))
    assert "administration port" in findings("azure-no-open-ingress", ssh)[0]
    rdp_range = mutate(plan, NSG, lambda i: i["securityRules"][0].update(
        destinationPortRange=None, destinationPortRanges=["443", "3000-4000"]))
    assert findings("azure-no-open-ingress", rdp_range)
    anywhere = mutate(plan, NSG, lambda i: i["securityRules"][0].update(
        sourceAddressPrefix=None, sourceAddressPrefixes=["10.0.0.0/8", "0.0.0.0/0"]))
    assert findings("azure-no-open-ingress", anywhere)
    outbound = mutate(plan, NSG, lambda i: i["securityRules"][0].update(direction="Outbound", sourceAddressPrefix="*"))
    assert findings("azure-no-open-ingress", outbound) == []
    separate = [*plan, Resource(SECURITY_RULE, "ssh-from-anywhere", "azure-prod-network", {
        "networkSecurityGroupName": "nsg", "direction": "Inbound", "access": "Allow", "protocol": "*",
        "sourceAddressPrefix": "*", "destinationPortRange": "22", "priority": 200})]
    assert findings("azure-no-open-ingress", separate)


def test_private_endpoints_need_the_right_group():
    wrong_group = mutate(compliant(), PE, lambda i: i["privateLinkServiceConnections"][0].update(groupIds=["file"]),
                         name="storage-blob")
    assert "blob" in findings("azure-private-endpoints", wrong_group)[0]
    other_vault = mutate(compliant(), PE, lambda i: i["privateLinkServiceConnections"][0].update(
        privateLinkServiceId=arm("Microsoft.KeyVault/vaults/someone-elses")), name="keys-vault")
    assert findings("azure-private-endpoints", other_vault)


def test_diagnostic_settings_send_enabled_logs_to_log_analytics():
    plan = compliant()
    assert "no diagnostic setting" in findings("azure-diagnostic-logs", drop(plan, DIAGNOSTIC, "keys-audit"))[0]
    off = mutate(plan, DIAGNOSTIC, lambda i: i["logs"][0].update(enabled=False), name="keys-audit")
    assert "no enabled log category" in findings("azure-diagnostic-logs", off)[0]
    elsewhere = mutate(plan, DIAGNOSTIC, lambda i: i.pop("workspaceId"), name="ml-audit")
    assert findings("azure-diagnostic-logs", elsewhere)
    metrics_only = mutate(plan, DIAGNOSTIC, lambda i: i.update(logs=[], metrics=[{"category": "AllMetrics",
                                                                                  "enabled": True}]), name="ml-audit")
    assert findings("azure-diagnostic-logs", metrics_only)
    one_category = mutate(plan, DIAGNOSTIC, lambda i: i.update(logs=[{"category": "AuditEvent", "enabled": True}]),
                          name="keys-audit")
    assert findings("azure-diagnostic-logs", one_category) == []


def test_ids_unknown_before_apply_match_within_the_component():
    """Under `pulumi preview` an id is unknown until apply: a private endpoint or a diagnostic setting counts for
    the resource of its own component (components/azure parents them so)."""
    plan = compliant()
    for token in (PE, DIAGNOSTIC):
        key = "resourceUri" if token == DIAGNOSTIC else "privateLinkServiceConnections"

        def blind(i: dict[str, Any], key: str = key) -> None:
            if key == "resourceUri":
                i[key] = UNKNOWN
            else:
                i[key][0]["privateLinkServiceId"] = UNKNOWN

        plan = mutate(plan, token, blind, name="keys")
    assert findings("azure-private-endpoints", plan) == findings("azure-diagnostic-logs", plan) == []
    moved = [Resource(r.type, r.name, "elsewhere", r.inputs) if r.type == VAULT else r for r in plan]
    assert findings("azure-private-endpoints", moved) and findings("azure-diagnostic-logs", moved)


def test_production_keeps_logs_a_year_and_other_tiers_say_why_not():
    plan = CASES["azure-log-retention-production"](compliant())
    assert "in a production environment" in findings("azure-log-retention-production", plan)[0]
    assert findings("azure-log-retention-production", plan, DEVELOPMENT) == []
    (exempt,) = exemptions("azure-log-retention-production", plan, DEVELOPMENT)
    assert exempt.exempt and "not a production environment" in exempt.exempt
    assert findings("azure-log-retention", plan, DEVELOPMENT) == []
    assert findings("azure-log-retention", mutate(plan, LOGS, lambda i: i.update(retentionInDays=7)), DEVELOPMENT)


# ---------------------------------------------------------------------------------------------------------
# What the generic rules read, and purity


def test_the_deployments_environment_is_read_for_tokens():
    read = CONTAINER_ENVIRONMENTS[DEPLOYMENT]
    (deployment,) = [r for r in compliant() if r.type == DEPLOYMENT]
    assert dict(read(deployment.inputs))["SELFHOST_MODEL"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert list(read({"properties": {"environmentVariables": "[secret]"}})) == [("environmentVariables", "[secret]")]
    assert list(read({})) == []
    # A union-typed `properties` passed as a plain dict reaches the engine under the SDK's Python names.
    assert list(read({"properties": {"environment_variables": {"A": "1"}}})) == [("A", "1")]


def test_a_token_in_a_deployments_environment_fails_the_generic_rule():
    from components.policies import BY_ID as ALL

    rule = ALL["secrets-not-in-container-env"]
    assert rule.run(Plan(compliant())) == []
    leaked = mutate(compliant(), DEPLOYMENT, lambda i: props(i)["environmentVariables"].update(
        HF_TOKEN="hf_" + "a1B2c3D4" * 5))
    (finding,) = rule.run(Plan(leaked))
    assert "HF_TOKEN" in finding.message


def test_the_rules_need_no_provider_sdk():
    import subprocess
    import sys

    code = ("import sys, components.azure.policies; "
            "assert not [m for m in sys.modules if m.startswith('pulumi_azure_native')]")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# ---------------------------------------------------------------------------------------------------------
# The shipped stack


@pytest.fixture(scope="module")
def azure_prod():
    if not (ROOT / "stacks" / "Pulumi.azure-prod.yaml").exists():
        pytest.skip("no azure-prod stack")
    from components.cost import resources_from_preview
    from selfhost.preview import run_preview
    from selfhost.project import load_project

    p = run_preview(load_project(ROOT), "azure-prod")
    return resources_from_preview(p.to_json()), p.outputs


def test_azure_prod_passes_every_mandatory_azure_rule(azure_prod):
    resources, outputs = azure_prod
    assert outputs.get("tier") == "production"
    plan = Plan(resources, outputs=outputs)
    violations = [(r.id, f.resource, f.message) for r in RULES if r.mandatory for f in r.run(plan) if not f.exempt]
    assert violations == []
    for token in (VAULT, KEY, STORAGE, REGISTRY, WORKSPACE, ENDPOINT, ROLE, DIAGNOSTIC, LOGS, PE):
        assert any(r.type == token for r in resources), token  # the rules above saw something to check
