"""Azure's policy rules: the Key Vault (private, recoverable, RBAC only, its key rotated), the storage account and the
container registry (private, no anonymous or key access, encrypted with the stack's key), the Azure Machine Learning
workspace (private, a managed network that allows approved outbound only, storage by identity, the stack's key in
production) and its online endpoints (private, their own identity, Microsoft Entra tokens in production), role
assignments (no privileged role, each data role on the one resource it concerns), network security groups and
subnets, and where the logs go (diagnostic settings into Log Analytics, and how long it keeps them).
`Azure.policy_rules` (components/targets/azure.py) hands them to the registry; components/policies.py runs them after
the generic rules (which check the stack's tags on every taggable azure-native resource through `Azure.tag_field`).

Also what the generic rule `secrets-not-in-container-env` asks of the platform: where its resources carry a
container's environment (`CONTAINER_ENVIRONMENTS`); and the Checkov checks it notes (`SCANNER_NOTES`).

Inputs are read in the provider's wire names (camelCase, as components/capture.py and the engine have them; the
names are the SDK's `pulumi.getter(name=...)` ones, pulumi_azure_native 3.29). Enum values are compared without
regard to case: Azure Resource Manager takes `identity` for `Identity`, `enabled` for `Enabled`.

Pure: no provider SDK.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Any

from ..cost_rules import Resource, known
from ..policy import OPEN, ContainerEnvironment, Finding, Plan, Rule, dig, rule_decorator
from ..schema import SECRET_PLACEHOLDER

RULES: list[Rule] = []
rule = rule_decorator(RULES)

VAULT = "azure-native:keyvault:Vault"
KEY = "azure-native:keyvault:Key"
STORAGE = "azure-native:storage:StorageAccount"
REGISTRY = "azure-native:containerregistry:Registry"
WORKSPACE = "azure-native:machinelearningservices:Workspace"
ENDPOINT = "azure-native:machinelearningservices:OnlineEndpoint"
DEPLOYMENT = "azure-native:machinelearningservices:OnlineDeployment"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
NSG = "azure-native:network:NetworkSecurityGroup"
SECURITY_RULE = "azure-native:network:SecurityRule"
SUBNET = "azure-native:network:Subnet"
PRIVATE_ENDPOINT = "azure-native:network:PrivateEndpoint"
DIAGNOSTIC_SETTING = "azure-native:monitor:DiagnosticSetting"
LOG_ANALYTICS = "azure-native:operationalinsights:Workspace"

# Built-in role definitions by id (Azure RBAC docs, "Azure built-in roles": Privileged, Security and Containers;
# read 2026-12-08). The ids are the same in every subscription; a role assignment names one as
# /subscriptions/{s}/providers/Microsoft.Authorization/roleDefinitions/{id}.
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
RBAC_ADMINISTRATOR = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
KEY_VAULT_ADMINISTRATOR = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER = "e147488a-f6f5-4113-8e2d-b22465e65bf6"
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"

PRIVILEGED_ROLES = {OWNER: "Owner", CONTRIBUTOR: "Contributor", USER_ACCESS_ADMINISTRATOR: "User Access Administrator",
                    RBAC_ADMINISTRATOR: "Role Based Access Control Administrator",
                    KEY_VAULT_ADMINISTRATOR: "Key Vault Administrator"}
"""Roles that manage everything in their scope or hand out access: no identity of the stack needs one."""

SCOPED_ROLES = {
    KEY_VAULT_SECRETS_USER: ("Key Vault Secrets User", "Microsoft.KeyVault/vaults/secrets", "the secret"),
    KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER: ("Key Vault Crypto Service Encryption User",
                                               "Microsoft.KeyVault/vaults/keys", "the key"),
    ACR_PULL: ("AcrPull", "Microsoft.ContainerRegistry/registries", "the registry"),
}
"""Data roles and the one kind of resource each may be granted on: role id -> (name, ARM type of the scope, what)."""

HUB_DOMAINS = ("huggingface.co", "hf.co")
"""The domains a deployment may reach through the workspace's managed network (FQDN outbound rules): the Hugging Face
Hub's, its API (huggingface.co) and its file stores (the LFS CDN, cdn-lfs*.huggingface.co, and Xet storage,
*.xethub.hf.co), what a model from the Hub downloads from. A rule names one of them, a host under one, or a wildcard
of one (`*.hf.co`: the Hub moves its stores between hosts of its own domains); nothing else on the internet. Kept
here, not read from the program (components/azure/workspace.py HUB_HOSTS): the policy is what a reviewer approves,
and a host added to the program alone fails it (tests/test_azure_policies.py checks the program's list)."""


def hub_host(fqdn: str) -> bool:
    """Whether an FQDN outbound rule's destination is the Hub's: one of HUB_DOMAINS, a host under one, or `*.` one."""
    host = fqdn.strip().lower().rstrip(".")
    host = host.removeprefix("*.")
    if "*" in host or not re.fullmatch(r"[a-z0-9.-]+", host):
        return False
    return any(host == d or host.endswith(f".{d}") for d in HUB_DOMAINS)


OPEN_SOURCES = {"*", "internet", "any", *OPEN, "0.0.0.0"}
"""Address prefixes of a security rule or a service-tag destination that mean "the internet"."""
ADMIN_PORTS = (22, 3389)

PRODUCTION_SOFT_DELETE_DAYS = 90
MIN_LOG_DAYS, PRODUCTION_LOG_DAYS = 30, 365


def _is(value: Any, *expected: str) -> bool:
    """An enum value as Azure Resource Manager compares it: without regard to case."""
    return isinstance(value, str) and value.lower() in {e.lower() for e in expected}


def _text(value: Any) -> str | None:
    """A string input known before apply (not the preview's unknown marker), or None."""
    return value if isinstance(value, str) and known(value) else None


def _number(value: Any) -> int | None:
    """A number input known before apply, or None."""
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _role_id(r: Resource) -> str:
    """The GUID of the role a role assignment grants (the last segment of its roleDefinitionId)."""
    return str(r.inputs.get("roleDefinitionId") or "").rstrip("/").rsplit("/", 1)[-1].lower()


def arm_scope(scope: str) -> str:
    """What an ARM id names, for a role assignment's scope: `root`, `management group`, `subscription`,
    `resource group`, or the resource's ARM type (`Microsoft.KeyVault/vaults/secrets`); `unknown` if it is no ARM
    id."""
    scope = scope.strip().rstrip("/")
    low = scope.lower()
    if scope == "" or low == "/" or low.startswith("/providers/microsoft.management/"):
        return "root" if low in ("", "/") else "management group"
    if "/providers/" not in low:
        parts = [p for p in low.split("/") if p]
        if len(parts) == 2 and parts[0] == "subscriptions":
            return "subscription"
        if len(parts) == 4 and parts[0] == "subscriptions" and parts[2] == "resourcegroups":
            return "resource group"
        return "unknown"
    below = scope[low.rindex("/providers/") + len("/providers/"):].split("/")
    if len(below) < 3 or len(below) % 2 == 0:
        return "unknown"
    return "/".join([below[0], *below[1::2]])


def _targets(source: Resource, uri: Any, target: Resource, arm_type: str, name_key: str) -> bool:
    """Whether `uri` (a diagnostic setting's resourceUri, a private endpoint's privateLinkServiceId) is `target`'s
    id: its ARM type, and its name where the target's name input is known. An id not known before apply (a real
    preview) counts when the two resources are of the same component."""
    uri = _text(uri)
    if uri is None:
        return source.component is not None and source.component == target.component
    if arm_scope(uri).lower() != arm_type.lower():
        return False
    name = _text(target.inputs.get(name_key))
    return name is None or uri.rstrip("/").rsplit("/", 1)[-1].lower() == name.lower()


# ---------------------------------------------------------------------------------------------------------
# Key Vault


@rule("azure-keyvault-private", "The Key Vault takes no public network traffic: its private endpoint only, its "
      "firewall denying the rest.", "critical",
      "Set properties.publicNetworkAccess: Disabled and properties.networkAcls.defaultAction: Deny (keep bypass: "
      "AzureServices, so the storage account and the registry reach their key), and reach it through a private "
      "endpoint.", checkov=("CKV_AZURE_189", "CKV_AZURE_109"))
def _vault_private(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for vault in plan.of(VAULT):
        props = vault.inputs.get("properties") or {}
        if not _is(props.get("publicNetworkAccess"), "Disabled"):
            yield vault, (f"properties.publicNetworkAccess is {props.get('publicNetworkAccess') or 'unset (Enabled)'}"
                          ": the vault answers the internet")
        if not _is(dig(props, "networkAcls", "defaultAction"), "Deny"):
            yield vault, (f"properties.networkAcls.defaultAction is "
                          f"{dig(props, 'networkAcls', 'defaultAction') or 'unset (Allow)'}: its firewall admits "
                          "every address")


@rule("azure-keyvault-recoverable", "The Key Vault keeps deleted keys and secrets recoverable: soft delete of at "
      f"least 7 days ({PRODUCTION_SOFT_DELETE_DAYS} in production) and purge protection, so neither a mistake nor "
      "an attacker destroys the key the data is encrypted with.", "high",
      "Set properties.enablePurgeProtection: true, leave enableSoftDelete true and softDeleteRetentionInDays at "
      f"{PRODUCTION_SOFT_DELETE_DAYS} (Azure's default).", checkov=("CKV_AZURE_42", "CKV_AZURE_110", "CKV_AZURE_111"))
def _vault_recoverable(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for vault in plan.of(VAULT):
        props = vault.inputs.get("properties") or {}
        if props.get("enablePurgeProtection") is not True:
            yield vault, "properties.enablePurgeProtection is not true: a deleted vault or key can be purged at once"
        if props.get("enableSoftDelete") is False:
            yield vault, "properties.enableSoftDelete is false: deleted keys and secrets are gone at once"
        days = _number(props.get("softDeleteRetentionInDays", PRODUCTION_SOFT_DELETE_DAYS))
        least = PRODUCTION_SOFT_DELETE_DAYS if plan.production else 7
        if days is not None and days < least:
            where = "in a production environment" if plan.production else "(Azure's minimum is 7)"
            yield vault, f"properties.softDeleteRetentionInDays is {days}, below {least} {where}"


@rule("azure-keyvault-rbac", "The Key Vault authorizes with Azure RBAC only: no access policies, which grant a "
      "whole vault's secrets or keys at once and escape role assignment reviews.", "high",
      "Set properties.enableRbacAuthorization: true and no accessPolicies; grant data roles on the one secret or "
      "key (azure-role-scope).")
def _vault_rbac(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for vault in plan.of(VAULT):
        props = vault.inputs.get("properties") or {}
        if props.get("enableRbacAuthorization") is not True:
            yield vault, "properties.enableRbacAuthorization is not true: access policies authorize the vault"
        elif props.get("accessPolicies"):
            yield vault, "properties.accessPolicies lists grants Azure RBAC ignores and a reviewer may miss"


_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?$", re.IGNORECASE)


def _days(duration: Any) -> int | None:
    """An ISO 8601 duration of years, months and days (Key Vault's rotation policy: `P1Y`, `P90D`) in days; None if
    it is not one."""
    match = _DURATION.match(str(duration or ""))
    if not match or not any(match.groups()):
        return None
    years, months, days = (int(g or 0) for g in match.groups())
    return years * 365 + months * 30 + days


@rule("azure-keyvault-key-rotation", "Customer-managed keys rotate at least yearly and their versions expire: a "
      "rotation policy with a rotate action and an expiry time.", "medium",
      "Set properties.rotationPolicy: lifetimeActions [{action: {type: rotate}, trigger: {timeAfterCreate: P1Y}}] "
      "and attributes.expiryTime (P2Y); services holding the versionless key URI follow the new version.")
def _key_rotation(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for key in plan.of(KEY):
        policy = dig(key.inputs, "properties", "rotationPolicy") or {}
        rotate = [a for a in policy.get("lifetimeActions") or []
                  if _is(dig(a, "action", "type"), "rotate")]
        if not rotate:
            yield key, "properties.rotationPolicy has no rotate action: the key is never rotated"
        else:
            after = [_days(dig(a, "trigger", "timeAfterCreate")) for a in rotate]
            before = [dig(a, "trigger", "timeBeforeExpiry") for a in rotate]
            if not any(d is not None and d <= 366 for d in after) and not any(before):
                yield key, (f"properties.rotationPolicy rotates after "
                            f"{', '.join(str(dig(a, 'trigger', 'timeAfterCreate')) for a in rotate)}: more than a "
                            "year")
        if not dig(policy, "attributes", "expiryTime") and not dig(key.inputs, "properties", "attributes", "expires"):
            yield key, ("neither properties.rotationPolicy.attributes.expiryTime nor properties.attributes.expires: "
                        "its versions never expire")


# ---------------------------------------------------------------------------------------------------------
# Storage account


@rule("azure-storage-private", "The storage account takes no public network traffic: its private endpoints only, its "
      "firewall denying the rest.", "critical",
      "Set publicNetworkAccess: Disabled and networkRuleSet.defaultAction: Deny (bypass: AzureServices), and reach "
      "it through blob and file private endpoints.", checkov=("CKV_AZURE_59", "CKV_AZURE_35", "CKV2_AZURE_50"))
def _storage_private(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for account in plan.of(STORAGE):
        if not _is(account.inputs.get("publicNetworkAccess"), "Disabled"):
            yield account, (f"publicNetworkAccess is {account.inputs.get('publicNetworkAccess') or 'unset (Enabled)'}"
                            ": the account answers the internet")
        if not _is(dig(account.inputs, "networkRuleSet", "defaultAction"), "Deny"):
            yield account, (f"networkRuleSet.defaultAction is "
                            f"{dig(account.inputs, 'networkRuleSet', 'defaultAction') or 'unset (Allow)'}: its "
                            "firewall admits every address")


@rule("azure-storage-no-public-blobs", "No blob of the storage account can be made public (anonymous read).",
      "critical", "Set allowBlobPublicAccess: false.", checkov=("CKV_AZURE_190", "CKV2_AZURE_47"))
def _storage_public_blobs(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for account in plan.of(STORAGE):
        if account.inputs.get("allowBlobPublicAccess") is not False:
            yield account, "allowBlobPublicAccess is not false: a container can be opened to anonymous readers"


TLS12 = ("TLS1_2", "TLS1_3")


@rule("azure-storage-tls", "The storage account takes HTTPS only, TLS 1.2 and up.", "high",
      "Set enableHttpsTrafficOnly: true and minimumTlsVersion: TLS1_2.", checkov=("CKV_AZURE_3", "CKV_AZURE_44"))
def _storage_tls(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for account in plan.of(STORAGE):
        if account.inputs.get("enableHttpsTrafficOnly") is False:
            yield account, "enableHttpsTrafficOnly is false: plain HTTP is accepted"
        if not _is(account.inputs.get("minimumTlsVersion"), *TLS12):
            yield account, (f"minimumTlsVersion is {account.inputs.get('minimumTlsVersion') or 'unset (TLS1_0)'}: "
                            "TLS 1.0 and 1.1 are accepted")


@rule("azure-storage-no-shared-key", "The storage account takes Microsoft Entra identities only: no account keys "
      "and no SAS signed with them, which never expire with a person's access.", "medium",
      "Set allowSharedKeyAccess: false (and the workspace's systemDatastoresAuthMode: Identity).",
      checkov=("CKV2_AZURE_40", "CKV2_AZURE_41"))
def _storage_shared_key(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for account in plan.of(STORAGE):
        if account.inputs.get("allowSharedKeyAccess") is not False:
            yield account, "allowSharedKeyAccess is not false: anyone holding an account key reads and writes it all"


@rule("azure-storage-cmk", "The storage account is encrypted with the stack's customer-managed key in Key Vault.",
      "high", "Set encryption.keySource: Microsoft.Keyvault with keyVaultProperties.keyName and keyVaultUri (no "
      "keyVersion: the versionless key follows its rotation) and encryptionIdentity.",
      checkov=("CKV2_AZURE_1",))
def _storage_cmk(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for account in plan.of(STORAGE):
        encryption = account.inputs.get("encryption") or {}
        if not _is(encryption.get("keySource"), "Microsoft.Keyvault"):
            yield account, (f"encryption.keySource is {encryption.get('keySource') or 'unset (Microsoft.Storage)'}: "
                            "a Microsoft-managed key only")
        elif not (dig(encryption, "keyVaultProperties", "keyName") and
                  dig(encryption, "keyVaultProperties", "keyVaultUri")):
            yield account, "encryption.keyVaultProperties names no key (keyName and keyVaultUri)"


# ---------------------------------------------------------------------------------------------------------
# Container registry


def _open_range(value: Any) -> bool:
    text = str(value or "").strip().lower()
    if text in OPEN_SOURCES:
        return True
    try:
        return ipaddress.ip_network(text, strict=False).prefixlen == 0
    except ValueError:
        return False


@rule("azure-registry-private", "The container registry takes no public network traffic, but the deploying "
      "machines' own addresses where `pulumi up` pushes the serving image from outside the virtual network.",
      "critical",
      "Set publicNetworkAccess: Disabled; or, only to push from outside the network (azure.deployerCidrs), Enabled "
      "with networkRuleSet.defaultAction: Deny and ipRules naming those public ranges.",
      checkov=("CKV_AZURE_139",))
def _registry_private(plan: Plan) -> Iterator[tuple[Resource, str] | Finding]:
    for registry in plan.of(REGISTRY):
        access = registry.inputs.get("publicNetworkAccess")
        if _is(access, "Disabled"):
            continue
        rules = registry.inputs.get("networkRuleSet") or {}
        ranges = [str(r.get("iPAddressOrRange") or "") for r in rules.get("ipRules") or [] if isinstance(r, dict)]
        if not _is(rules.get("defaultAction"), "Deny"):
            yield registry, (f"publicNetworkAccess is {access or 'unset (Enabled)'} and networkRuleSet.defaultAction "
                             f"is {rules.get('defaultAction') or 'unset (Allow)'}: the registry answers the internet")
        elif not ranges:
            yield registry, (f"publicNetworkAccess is {access or 'unset (Enabled)'} with no networkRuleSet.ipRules: "
                             "public access is on for no one; set it Disabled")
        elif any(_open_range(r) for r in ranges):
            yield registry, f"networkRuleSet.ipRules admit the internet ({', '.join(ranges)})"
        else:
            yield Finding("azure-registry-private", registry.name, "public network access on", exempt=(
                f"public access admits only the deploying machines ({', '.join(ranges)}; azure.deployerCidrs, "
                "networkRuleSet.defaultAction Deny): `pulumi up` pushes the serving image from outside the virtual "
                "network; everything else reaches the registry through its private endpoint"))


@rule("azure-registry-auth", "The container registry takes Microsoft Entra identities only: no admin user (a "
      "shared password) and no anonymous pull.", "high",
      "Set adminUserEnabled: false and anonymousPullEnabled: false; grant AcrPull on the registry to the identities "
      "that pull.", checkov=("CKV_AZURE_137", "CKV_AZURE_138"))
def _registry_auth(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for registry in plan.of(REGISTRY):
        if registry.inputs.get("adminUserEnabled") is True:
            yield registry, "adminUserEnabled is true: a shared password pushes and pulls every image"
        if registry.inputs.get("anonymousPullEnabled") is True:
            yield registry, "anonymousPullEnabled is true: anyone who reaches it pulls the images"


@rule("azure-registry-cmk", "The container registry is encrypted with the stack's customer-managed key in Key "
      "Vault.", "medium",
      "Set encryption.status: enabled with keyVaultProperties.keyIdentifier (the versionless key URI) and "
      "keyVaultProperties.identity (a user-assigned identity with Key Vault Crypto Service Encryption User on the "
      "key); Premium SKU.")
def _registry_cmk(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for registry in plan.of(REGISTRY):
        encryption = registry.inputs.get("encryption") or {}
        if not _is(encryption.get("status"), "enabled"):
            yield registry, (f"encryption.status is {encryption.get('status') or 'unset (disabled)'}: a "
                             "Microsoft-managed key only")
        elif not dig(encryption, "keyVaultProperties", "keyIdentifier"):
            yield registry, "encryption.keyVaultProperties.keyIdentifier names no key"


# ---------------------------------------------------------------------------------------------------------
# Azure Machine Learning: the workspace


@rule("azure-ml-workspace-private", "The Azure ML workspace takes no public network traffic: its private endpoint "
      "only.", "critical",
      "Set publicNetworkAccess: Disabled (and leave allowPublicAccessWhenBehindVnet unset or false), and reach it "
      "through an amlworkspace private endpoint.", checkov=("CKV_AZURE_144", "CKV2_AZURE_49"))
def _workspace_private(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for ws in plan.of(WORKSPACE):
        if not _is(ws.inputs.get("publicNetworkAccess"), "Disabled"):
            yield ws, (f"publicNetworkAccess is {ws.inputs.get('publicNetworkAccess') or 'unset (Enabled)'}: the "
                       "workspace (and its endpoints' control plane) answers the internet")
        if ws.inputs.get("allowPublicAccessWhenBehindVnet") is True:
            yield ws, "allowPublicAccessWhenBehindVnet is true: the workspace answers the internet"


def _outbound_problems(rules: dict[str, Any]) -> Iterator[str]:
    for name, outbound in sorted(rules.items()):
        if not isinstance(outbound, dict):
            continue
        destination = outbound.get("destination")
        if _is(outbound.get("type"), "FQDN"):
            if not hub_host(str(destination or "")):
                yield (f"managedNetwork.outboundRules.{name} allows {destination!r}, not a host of the Hugging Face "
                       f"Hub's domains ({', '.join(HUB_DOMAINS)})")
        elif _is(outbound.get("type"), "ServiceTag") and isinstance(destination, dict):
            prefixes = [destination.get("serviceTag"), *(destination.get("addressPrefixes") or [])]
            if any(_open_range(p) for p in prefixes if p):
                yield f"managedNetwork.outboundRules.{name} allows the internet ({destination})"


@rule("azure-ml-managed-network", "The Azure ML workspace's managed network allows approved outbound only, and what "
      "it approves on the internet is the Hugging Face Hub's hosts (private endpoints to Azure resources aside).",
      "critical",
      "Set managedNetwork.isolationMode: AllowOnlyApprovedOutbound, and outbound FQDN rules only for hosts of the "
      "Hub's domains, huggingface.co and hf.co (components/azure/policies.py HUB_DOMAINS).")
def _managed_network(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for ws in plan.of(WORKSPACE):
        network = ws.inputs.get("managedNetwork") or {}
        mode = network.get("isolationMode")
        if not _is(mode, "AllowOnlyApprovedOutbound"):
            what = ("deployments reach any host on the internet" if _is(mode, "AllowInternetOutbound")
                    else "no managed network: deployments reach the internet unfiltered")
            yield ws, f"managedNetwork.isolationMode is {mode or 'unset (Disabled)'}: {what}"
        for problem in _outbound_problems(network.get("outboundRules") or {}):
            yield ws, problem


@rule("azure-ml-workspace-cmk", "A production Azure ML workspace encrypts its data (run history, metadata) with the "
      "stack's customer-managed key: advisory, since the workspace holds no weights, prompts or images (those are "
      "in the storage account and the registry, both on the stack's key).", "medium",
      "In production set encryption: {status: Enabled, keyVaultProperties: {keyVaultArmId: the vault's id, "
      "keyIdentifier: the key's URI, identityClientId}} with enableServiceSideCmkEncryption: true (the data stays "
      "in Microsoft's subscription instead of a resource group of Cosmos DB, AI Search and storage in yours); a "
      "workspace takes its key only when it is created.", mandatory=False)
def _workspace_cmk(plan: Plan) -> Iterator[tuple[Resource, str] | Finding]:
    for ws in plan.of(WORKSPACE):
        encryption = ws.inputs.get("encryption") or {}
        if _is(encryption.get("status"), "Enabled") and dig(encryption, "keyVaultProperties", "keyIdentifier"):
            continue
        if plan.production:
            yield ws, ("encryption is not Enabled with keyVaultProperties.keyIdentifier: a Microsoft-managed key "
                       "only, in a production environment")
        else:
            yield Finding("azure-ml-workspace-cmk", ws.name, "a Microsoft-managed key", exempt=(
                "not a production environment: the workspace holds no model weights or prompts (those are in the "
                "storage account and the registry, both on the stack's key)"))


@rule("azure-ml-datastores-identity", "The Azure ML workspace reaches its storage as its own identity, not with the "
      "account's keys.", "medium", "Set systemDatastoresAuthMode: Identity (and the account's allowSharedKeyAccess: "
      "false).")
def _datastores_identity(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for ws in plan.of(WORKSPACE):
        mode = ws.inputs.get("systemDatastoresAuthMode")
        if not _is(mode, "Identity"):
            yield ws, (f"systemDatastoresAuthMode is {mode or 'unset (AccessKey)'}: the workspace stores the "
                       "account's key as a credential")


# ---------------------------------------------------------------------------------------------------------
# Azure Machine Learning: online endpoints


@rule("azure-ml-endpoint-private", "Online endpoints take no public network traffic: callers reach them through "
      "the workspace's private endpoint.", "critical",
      "Set properties.publicNetworkAccess: Disabled on the OnlineEndpoint.")
def _endpoint_private(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for endpoint in plan.of(ENDPOINT):
        access = dig(endpoint.inputs, "properties", "publicNetworkAccess")
        if not _is(access, "Disabled"):
            yield endpoint, f"properties.publicNetworkAccess is {access or 'unset (Enabled)'}: it answers the internet"


@rule("azure-ml-endpoint-identity", "Online endpoints run as a system-assigned identity of their own: its grants "
      "(the token secret, the registry) live and die with the endpoint and no other resource shares them.", "high",
      "Set identity.type: SystemAssigned on the OnlineEndpoint and grant that identity Key Vault Secrets User on the "
      "token secret and AcrPull on the registry.")
def _endpoint_identity(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for endpoint in plan.of(ENDPOINT):
        kind = dig(endpoint.inputs, "identity", "type")
        if not _is(kind, "SystemAssigned"):
            yield endpoint, (f"identity.type is {kind or 'unset'}: not an identity of its own (a user-assigned one "
                             "may be shared and outlives it)")


AUTH_MODES = ("Key", "AMLToken", "AADToken")


@rule("azure-ml-endpoint-auth", "Online endpoints authenticate every call, in production with Microsoft Entra "
      "tokens (AADToken): each call is tied to an identity that can be revoked, where endpoint keys are shared, "
      "never expire and are read by anyone who may list them on the workspace.", "medium",
      "Set properties.authMode: AADToken in production and grant callers the AzureML Data Scientist role (or a "
      "custom role with the endpoint's score action) on the endpoint.", mandatory=False)
def _endpoint_auth(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for endpoint in plan.of(ENDPOINT):
        mode = dig(endpoint.inputs, "properties", "authMode")
        if not _is(mode, *AUTH_MODES):
            yield endpoint, f"properties.authMode is {mode or 'unset'}: not an authenticated mode"
        elif plan.production and not _is(mode, "AADToken"):
            yield endpoint, f"properties.authMode is {mode} in a production environment: shared, non-expiring keys"


# ---------------------------------------------------------------------------------------------------------
# Role assignments


@rule("azure-no-privileged-roles", "No privileged role (Owner, Contributor, User Access Administrator, Role Based "
      "Access Control Administrator, Key Vault Administrator) is granted by the stack.", "critical",
      "Grant the data role that covers the need (Key Vault Secrets User, AcrPull, ...) on the one resource it "
      "concerns.")
def _privileged(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for grant in plan.of(ROLE_ASSIGNMENT):
        role = _role_id(grant)
        if role in PRIVILEGED_ROLES:
            yield grant, f"roleDefinitionId grants {PRIVILEGED_ROLES[role]}"


@rule("azure-role-scope", "Role assignments are scoped to one resource, never a subscription or resource group; Key "
      "Vault Secrets User to one secret, Key Vault Crypto Service Encryption User to one key, AcrPull to the "
      "registry.", "high",
      "Set the role assignment's scope to the resource's id: the token secret's, the key's, the registry's.")
def _role_scope(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for grant in plan.of(ROLE_ASSIGNMENT):
        scope = _text(grant.inputs.get("scope"))
        if scope is None:
            continue  # an id that exists only after apply: the offline preview (mocked ids) checks it
        kind = arm_scope(scope)
        if kind in ("root", "management group", "subscription", "resource group", "unknown"):
            yield grant, f"scope {scope!r} is a {kind}, not one resource"
            continue
        role = _role_id(grant)
        if role in SCOPED_ROLES:
            name, arm_type, what = SCOPED_ROLES[role]
            if kind.lower() != arm_type.lower():
                yield grant, f"grants {name} on a {kind}, not on {what} ({arm_type})"


# ---------------------------------------------------------------------------------------------------------
# Network


def _ports(rule_: dict[str, Any]) -> list[str]:
    return [str(p) for p in [rule_.get("destinationPortRange"), *(rule_.get("destinationPortRanges") or [])] if p]


def _admits(ports: list[str], port: int) -> bool:
    for p in ports:
        if p == "*":
            return True
        low, _, high = p.partition("-")
        if low.isdigit() and int(low) <= port <= int(high or low):
            return True
    return False


def _rule_problems(rule_: dict[str, Any]) -> Iterator[str]:
    if not (_is(rule_.get("direction"), "Inbound") and _is(rule_.get("access"), "Allow")):
        return
    name, ports = rule_.get("name") or "?", _ports(rule_)
    sources = [rule_.get("sourceAddressPrefix"), *(rule_.get("sourceAddressPrefixes") or [])]
    if any(_open_range(s) for s in sources if s):
        yield f"security rule {name} admits the internet on ports {', '.join(ports) or '*'}"
    elif any(_admits(ports, p) for p in ADMIN_PORTS) and not _is(rule_.get("protocol"), "Udp", "Icmp"):
        yield f"security rule {name} opens an administration port (22 or 3389)"


@rule("azure-no-open-ingress", "No network security group rule admits the internet, and none opens SSH or RDP.",
      "critical", "Admit only VirtualNetwork (or named ranges) on the ports the private endpoints serve (443).",
      checkov=("CKV_AZURE_9", "CKV_AZURE_10", "CKV_AZURE_160", "CKV_AZURE_77"))
def _open_ingress(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for group in plan.of(NSG):
        for rule_ in group.inputs.get("securityRules") or []:
            for problem in _rule_problems(rule_):
                yield group, problem
    for rule_resource in plan.of(SECURITY_RULE):
        for problem in _rule_problems({"name": rule_resource.name, **rule_resource.inputs}):
            yield rule_resource, problem


@rule("azure-subnet-nsg", "Every subnet has a network security group.", "medium",
      "Set the subnet's networkSecurityGroup.id (and privateEndpointNetworkPolicies: Enabled, so it applies to "
      "private endpoints).", checkov=("CKV2_AZURE_31",))
def _subnet_nsg(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for subnet in plan.of(SUBNET):
        if not dig(subnet.inputs, "networkSecurityGroup", "id"):
            yield subnet, "networkSecurityGroup is unset: nothing filters its traffic"


PRIVATE_LINKS = ((VAULT, "Microsoft.KeyVault/vaults", "vaultName", "vault"),
                 (STORAGE, "Microsoft.Storage/storageAccounts", "accountName", "blob"),
                 (REGISTRY, "Microsoft.ContainerRegistry/registries", "registryName", "registry"),
                 (WORKSPACE, "Microsoft.MachineLearningServices/workspaces", "workspaceName", "amlworkspace"))
"""Resources reached only through a private endpoint: type, ARM type, name input, the endpoint's group id."""


@rule("azure-private-endpoints", "The Key Vault, the storage account (blob), the registry and the workspace each "
      "have a private endpoint in the stack's network: with public access off, the only way in.", "medium",
      "Declare a PrivateEndpoint whose privateLinkServiceConnections name the resource's id and group id (vault, "
      "blob, registry, amlworkspace), with its private DNS zone group.", checkov=("CKV2_AZURE_32", "CKV2_AZURE_33"))
def _private_endpoints(plan: Plan) -> Iterator[tuple[Resource, str]]:
    endpoints = list(plan.of(PRIVATE_ENDPOINT))
    for token, arm_type, name_key, group in PRIVATE_LINKS:
        for target in plan.of(token):
            if not any(_targets(pe, c.get("privateLinkServiceId"), target, arm_type, name_key)
                       and group in [g.lower() for g in c.get("groupIds") or []]
                       for pe in endpoints for c in pe.inputs.get("privateLinkServiceConnections") or []
                       if isinstance(c, dict)):
                yield target, f"no private endpoint for its {group} group"


# ---------------------------------------------------------------------------------------------------------
# Logs


def _logs_on(setting: Resource) -> bool:
    return any(isinstance(entry, dict) and entry.get("enabled") is True and
               (entry.get("category") or _is(entry.get("categoryGroup"), "allLogs", "audit"))
               for entry in setting.inputs.get("logs") or [])


@rule("azure-diagnostic-logs", "The Key Vault's and the Azure ML workspace's logs (who read a secret, who changed "
      "a deployment) go to the stack's Log Analytics workspace.", "medium",
      "Declare a DiagnosticSetting with resourceUri the resource's id, workspaceId the Log Analytics workspace's id "
      "and logs [{categoryGroup: audit (or allLogs), enabled: true}].")
def _diagnostic_logs(plan: Plan) -> Iterator[tuple[Resource, str]]:
    settings = list(plan.of(DIAGNOSTIC_SETTING))
    for token, arm_type, name_key, _ in PRIVATE_LINKS:
        if token not in (VAULT, WORKSPACE):
            continue
        for target in plan.of(token):
            mine = [s for s in settings if _targets(s, s.inputs.get("resourceUri"), target, arm_type, name_key)]
            if not mine:
                yield target, "no diagnostic setting: its audit logs are not kept"
            elif not any(s.inputs.get("workspaceId") and _logs_on(s) for s in mine):
                yield target, ("its diagnostic settings send no enabled log category to a Log Analytics workspace "
                               "(workspaceId)")


@rule("azure-log-retention", f"Log Analytics keeps logs at least {MIN_LOG_DAYS} days, a set period.", "low",
      f"Set retentionInDays ({MIN_LOG_DAYS} or more; azure.logRetentionDays).")
def _log_retention(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for logs in plan.of(LOG_ANALYTICS):
        days = _number(logs.inputs.get("retentionInDays"))
        if days is None or days < MIN_LOG_DAYS:
            yield logs, f"retentionInDays is {logs.inputs.get('retentionInDays') or 'unset'}"


@rule("azure-log-retention-production", f"Production Log Analytics workspaces keep logs at least a year "
      f"({PRODUCTION_LOG_DAYS} days).", "medium",
      f"Set retentionInDays to {PRODUCTION_LOG_DAYS} or more in production (azure.logRetentionDays).")
def _log_retention_production(plan: Plan) -> Iterator[tuple[Resource, str] | Finding]:
    for logs in plan.of(LOG_ANALYTICS):
        days = _number(logs.inputs.get("retentionInDays"))
        if days is not None and days >= PRODUCTION_LOG_DAYS:
            continue
        if plan.production:
            yield logs, f"retentionInDays is {days or 'unset (30)'} in a production environment"
        else:
            yield Finding("azure-log-retention-production", logs.name, f"keeps logs {days} days", exempt=(
                "not a production environment: below production, logs are kept for azure.logRetentionDays, what "
                "debugging needs; a year is the production tier's"))


# ---------------------------------------------------------------------------------------------------------
# What the generic rules read


def _deployment_environment(inputs: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """The environment variables of an online deployment's container (properties.environmentVariables), which anyone
    who may read the deployment sees. Also under the SDK's Python name: `properties` is a union type
    (ManagedOnlineDeployment or KubernetesOnlineDeployment), whose plain-dict keys the SDK does not translate."""
    props = inputs.get("properties") or {}
    variables = props.get("environmentVariables", props.get("environment_variables")) if isinstance(
        props, dict) else props
    if isinstance(variables, dict):
        yield from ((str(k), v) for k, v in variables.items())
    elif variables == SECRET_PLACEHOLDER:
        yield "environmentVariables", variables


CONTAINER_ENVIRONMENTS: dict[str, ContainerEnvironment] = {DEPLOYMENT: _deployment_environment}

SCANNER_NOTES: dict[str, str] = {
    "CKV_AZURE_40": "a scanner limit: the customer-managed key's versions expire by its rotation policy "
                    "(attributes.expiryTime P2Y, a new version after P1Y; `azure-keyvault-key-rotation`), which "
                    "Checkov does not read; it asks for a fixed expiration_date, which would stop the key, and the "
                    "storage and registry it encrypts, on that date",
    "CKV_AZURE_41": "not adopted: an expiry on the Hugging Face token's secret; the token has no lifetime of its own "
                    "(its owner revokes it on the Hub), and it is replaced by `pulumi config set --secret hfToken` "
                    "and `pulumi up`",
    "CKV_AZURE_164": "not adopted: Docker Content Trust on the registry, which Azure Container Registry deprecated "
                     "(2025-03-31, removal 2028-03-31; Notary Project signing succeeds it); the endpoints run our "
                     "image by digest",
    "CKV_AZURE_165": "not adopted: geo-replication of the registry; a stack serves in one region, and a second "
                     "region is a second stack with its own registry",
    "CKV_AZURE_166": "not adopted: the registry's quarantine policy, which holds every pushed image until an "
                     "external scanner marks it verified; no such scanner is part of the stack, so it would block "
                     "the stack's own deployments",
    "CKV_AZURE_206": "not adopted: geo-redundant storage; the workspace's account holds re-creatable artifacts (the "
                     "weights come from the Hub), and zone-redundant storage (Standard_ZRS) survives a zone",
    "CKV_AZURE_33": "not adopted: classic Storage Analytics logging of the Queue service; the workspace uses no "
                    "queues, and Azure Monitor diagnostic settings are the current way to log storage access",
    "CKV2_AZURE_38": "an export limit: the storage account's blob and container soft delete (30 days) is declared "
                     "by azure-native:storage:BlobServiceProperties, which Terraform models as the account's "
                     "blob_properties block, not a resource, so the exported account shows none",
}
"""Checkov's checks no rule of ours adopts or the scanner misreads on Azure (`Platform.scanner_notes`): what fails on
azure-prod's exported plan (Checkov 3.3.30, 2026-12-08) and no rule reports. CKV_AZURE_139 (the registry's public
network access) is `azure-registry-private`'s exemption where the deployers' ranges need it."""
