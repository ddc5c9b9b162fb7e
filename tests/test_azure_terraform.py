"""The Azure export mapping (components/azure/terraform.py): azure-native's ARM-shaped inputs become the arguments
of terraform-provider-azurerm's resources, the ones Checkov reads, through the export engine's conversion."""

from __future__ import annotations

from typing import Any

from components.azure import terraform
from components.azure.terraform import NOT_MAPPED, PROVIDERS, TYPES
from selfhost.export import convert

SUB = "/subscriptions/11111111-2222-3333-4444-555555555555"
RG = "rg-llm"
UAI = f"{SUB}/resourceGroups/{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-cmk"
DECLARED = {
    "resources:ResourceGroup", "network:VirtualNetwork", "network:Subnet", "network:NetworkSecurityGroup",
    "network:PrivateEndpoint", "network:PrivateDnsZoneGroup", "privatedns:PrivateZone",
    "privatedns:VirtualNetworkLink", "keyvault:Vault", "keyvault:Secret", "keyvault:Key",
    "managedidentity:UserAssignedIdentity", "authorization:RoleAssignment", "storage:StorageAccount",
    "storage:BlobServiceProperties", "containerregistry:Registry", "operationalinsights:Workspace",
    "applicationinsights:Component", "machinelearningservices:Workspace", "machinelearningservices:OnlineEndpoint",
    "machinelearningservices:OnlineDeployment", "machinelearningservices:EnvironmentContainer",
    "machinelearningservices:EnvironmentVersion", "monitor:AutoscaleSetting", "monitor:DiagnosticSetting",
    "monitor:MetricAlert"}


def _tf(token: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return convert(inputs, TYPES[f"azure-native:{token}"])


def test_every_declared_type_is_mapped_or_said_why_not() -> None:
    tokens = {f"azure-native:{t}" for t in DECLARED}
    assert tokens <= set(TYPES) | set(NOT_MAPPED)
    assert not set(TYPES) & set(NOT_MAPPED)
    assert NOT_MAPPED["pulumi:providers:azure-native"] == "a provider configuration, not a resource"
    assert {t.provider for t in TYPES.values()} == set(PROVIDERS) == {"azurerm"}
    assert all(t.type.startswith("azurerm_") and t.adapt is not None for t in TYPES.values())
    assert "no Azure ML online endpoint" in NOT_MAPPED["azure-native:machinelearningservices:OnlineEndpoint"]


def test_the_module_is_pure() -> None:
    assert "pulumi_azure_native" not in open(terraform.__file__).read()


def test_key_vault() -> None:
    values = _tf("keyvault:Vault", {
        "vaultName": "kv-llm", "resourceGroupName": RG, "location": "eastus", "tags": {"env": "prod"},
        "properties": {"tenantId": "t-1", "sku": {"family": "A", "name": "premium"}, "enableRbacAuthorization": True,
                       "enablePurgeProtection": True, "enableSoftDelete": True, "softDeleteRetentionInDays": 90,
                       "publicNetworkAccess": "Disabled",
                       "networkAcls": {"defaultAction": "Deny", "bypass": "AzureServices",
                                       "ipRules": [{"value": "203.0.113.0/28"}]}}})
    assert values == {
        "name": "kv-llm", "resource_group_name": RG, "location": "eastus", "tags": {"env": "prod"},
        "tenant_id": "t-1", "sku_name": "premium", "rbac_authorization_enabled": True,
        "purge_protection_enabled": True, "soft_delete_retention_days": 90, "public_network_access_enabled": False,
        "network_acls": [{"default_action": "Deny", "bypass": "AzureServices", "ip_rules": ["203.0.113.0/28"]}]}
    # ARM's defaults where unset: public access on, 90 days of soft delete; soft delete off is kept to be seen.
    bare = _tf("keyvault:Vault", {"properties": {"tenantId": "t", "enableSoftDelete": False}})
    assert bare["public_network_access_enabled"] is True and bare["soft_delete_retention_days"] == 90
    assert bare["soft_delete_enabled"] is False and "purge_protection_enabled" not in bare


def test_key_vault_secret_and_key() -> None:
    secret = _tf("keyvault:Secret", {"vaultName": "kv", "secretName": "hf-token", "resourceGroupName": RG,
                                     "properties": {
        "value": "[secret]", "contentType": "text/plain", "attributes": {"exp": 1830297600, "nbf": 1796083200}}})
    assert secret == {"name": "hf-token", "value": "[secret]", "content_type": "text/plain",
                      "expiration_date": "2028-01-01T00:00:00Z", "not_before_date": "2026-12-01T00:00:00Z"}
    key = _tf("keyvault:Key", {"vaultName": "kv", "keyName": "cmk", "resourceGroupName": RG, "properties": {
        "kty": "RSA-HSM", "keySize": 2048, "keyOps": ["wrapKey", "unwrapKey"],
        "rotationPolicy": {"attributes": {"expiryTime": "P2Y"}, "lifetimeActions": [
            {"action": {"type": "rotate"}, "trigger": {"timeAfterCreate": "P1Y"}},
            {"action": {"type": "notify"}, "trigger": {"timeBeforeExpiry": "P30D"}}]}}})
    assert key == {"name": "cmk", "key_type": "RSA-HSM", "key_size": 2048, "key_opts": ["wrapKey", "unwrapKey"],
                   "rotation_policy": [{"expire_after": "P2Y", "notify_before_expiry": "P30D",
                                        "automatic": [{"time_after_creation": "P1Y"}]}]}


def test_storage_account() -> None:
    values = _tf("storage:StorageAccount", {
        "accountName": "stllm", "resourceGroupName": RG, "location": "eastus", "kind": "StorageV2",
        "sku": {"name": "Standard_ZRS"}, "accessTier": "Hot", "publicNetworkAccess": "Disabled",
        "allowBlobPublicAccess": False, "allowSharedKeyAccess": False, "defaultToOAuthAuthentication": True,
        "enableHttpsTrafficOnly": True, "minimumTlsVersion": "TLS1_2", "allowCrossTenantReplication": False,
        "networkRuleSet": {"defaultAction": "Deny", "bypass": "AzureServices, Logging",
                           "ipRules": [{"iPAddressOrRange": "203.0.113.7", "action": "Allow"}]},
        "identity": {"type": "UserAssigned", "userAssignedIdentities": [UAI]},
        "encryption": {"keySource": "Microsoft.Keyvault", "requireInfrastructureEncryption": True,
                       "keyVaultProperties": {"keyName": "cmk", "keyVaultUri": "https://kv-llm.vault.azure.net/"},
                       "encryptionIdentity": {"encryptionUserAssignedIdentity": UAI},
                       "services": {"blob": {"enabled": True, "keyType": "Account"}}}})
    assert values == {
        "name": "stllm", "resource_group_name": RG, "location": "eastus", "account_kind": "StorageV2",
        "account_tier": "Standard", "account_replication_type": "ZRS", "access_tier": "Hot",
        "public_network_access_enabled": False, "allow_nested_items_to_be_public": False, "min_tls_version": "TLS1_2",
        "https_traffic_only_enabled": True, "shared_access_key_enabled": False,
        "default_to_oauth_authentication": True, "cross_tenant_replication_enabled": False,
        "infrastructure_encryption_enabled": True,
        "network_rules": [{"default_action": "Deny", "bypass": ["AzureServices", "Logging"],
                           "ip_rules": ["203.0.113.7"]}],
        "customer_managed_key": [{"key_vault_key_id": "https://kv-llm.vault.azure.net/keys/cmk",
                                  "user_assigned_identity_id": UAI}],
        "identity": [{"type": "UserAssigned", "identity_ids": [UAI]}]}
    # Microsoft-managed keys: no customer_managed_key block.
    platform_keys = _tf("storage:StorageAccount", {"encryption": {"keySource": "Microsoft.Storage"}})
    assert "customer_managed_key" not in platform_keys


def test_container_registry() -> None:
    values = _tf("containerregistry:Registry", {
        "registryName": "acrllm", "resourceGroupName": RG, "location": "eastus", "sku": {"name": "Premium"},
        "adminUserEnabled": False, "anonymousPullEnabled": False, "zoneRedundancy": "Enabled",
        "dataEndpointEnabled": False, "publicNetworkAccess": "Enabled", "networkRuleBypassOptions": "AzureServices",
        "networkRuleSet": {"defaultAction": "Deny", "ipRules": [{"iPAddressOrRange": "203.0.113.0/28",
                                                                 "action": "Allow"}]},
        "identity": {"type": "UserAssigned", "userAssignedIdentities": {UAI: {}}},
        "encryption": {"status": "enabled", "keyVaultProperties": {
            "keyIdentifier": "https://kv-llm.vault.azure.net/keys/cmk", "identity": "client-guid"}},
        "policies": {"exportPolicy": {"status": "disabled"}, "retentionPolicy": {"status": "enabled", "days": 30},
                     "quarantinePolicy": {"status": "enabled"}, "trustPolicy": {"status": "disabled"}}})
    assert values == {
        "name": "acrllm", "resource_group_name": RG, "location": "eastus", "sku": "Premium", "admin_enabled": False,
        "public_network_access_enabled": True, "anonymous_pull_enabled": False, "data_endpoint_enabled": False,
        "zone_redundancy_enabled": True, "network_rule_bypass_option": "AzureServices",
        "network_rule_set": [{"default_action": "Deny",
                              "ip_rule": [{"action": "Allow", "ip_range": "203.0.113.0/28"}]}],
        "export_policy_enabled": False, "quarantine_policy_enabled": True, "trust_policy_enabled": False,
        "retention_policy_in_days": 30,
        "encryption": [{"key_vault_key_id": "https://kv-llm.vault.azure.net/keys/cmk",
                        "identity_client_id": "client-guid"}],
        "identity": [{"type": "UserAssigned", "identity_ids": [UAI]}]}
    assert "retention_policy_in_days" not in _tf("containerregistry:Registry", {
        "policies": {"retentionPolicy": {"status": "disabled", "days": 7}}})


def test_machine_learning_workspace() -> None:
    ids = {k: f"{SUB}/resourceGroups/{RG}/providers/{v}" for k, v in {
        "keyVault": "Microsoft.KeyVault/vaults/kv", "storageAccount": "Microsoft.Storage/storageAccounts/st",
        "containerRegistry": "Microsoft.ContainerRegistry/registries/acr",
        "applicationInsights": "Microsoft.Insights/components/appi"}.items()}
    values = _tf("machinelearningservices:Workspace", {
        "workspaceName": "mlw", "resourceGroupName": RG, "location": "eastus", "sku": {"name": "Basic",
                                                                                     "tier": "Basic"},
        "kind": "Default", "identity": {"type": "SystemAssigned"}, **ids, "publicNetworkAccess": "Disabled",
        "systemDatastoresAuthMode": "identity", "v1LegacyMode": False, "hbiWorkspace": True,
        "imageBuildCompute": "cpu-build",
        "managedNetwork": {"isolationMode": "AllowOnlyApprovedOutbound", "firewallSku": "Standard",
                           "outboundRules": {"hub-0": {"type": "FQDN", "destination": "huggingface.co"}}},
        "encryption": {"status": "Enabled", "keyVaultProperties": {
            "keyVaultArmId": ids["keyVault"], "keyIdentifier": "https://kv.vault.azure.net/keys/cmk/v1"},
            "identity": {"userAssignedIdentity": UAI}}})
    assert values == {
        "name": "mlw", "resource_group_name": RG, "location": "eastus",
        "application_insights_id": ids["applicationInsights"], "key_vault_id": ids["keyVault"],
        "storage_account_id": ids["storageAccount"], "container_registry_id": ids["containerRegistry"],
        "public_network_access_enabled": False, "image_build_compute_name": "cpu-build",
        "high_business_impact": True, "v1_legacy_mode_enabled": False, "sku_name": "Basic", "kind": "Default",
        "identity": [{"type": "SystemAssigned"}],
        "encryption": [{"key_vault_id": ids["keyVault"], "key_id": "https://kv.vault.azure.net/keys/cmk/v1",
                        "user_assigned_identity_id": UAI}],
        "managed_network": [{"isolation_mode": "AllowOnlyApprovedOutbound"}]}
    assert _tf("machinelearningservices:Workspace", {})["public_network_access_enabled"] is True, "ARM's default"


def test_network() -> None:
    nsg_id = f"{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/networkSecurityGroups/nsg"
    subnet = _tf("network:Subnet", {
        "resourceGroupName": RG, "virtualNetworkName": "vnet", "subnetName": "pe", "addressPrefix": "10.50.0.0/24",
        "networkSecurityGroup": {"id": nsg_id}, "privateEndpointNetworkPolicies": "Enabled",
        "defaultOutboundAccess": False, "serviceEndpoints": [{"service": "Microsoft.Storage"}],
        "delegations": [{"name": "d", "serviceName": "Microsoft.App/environments"}]})
    assert subnet == {
        "name": "pe", "resource_group_name": RG, "virtual_network_name": "vnet", "address_prefixes": ["10.50.0.0/24"],
        "service_endpoints": ["Microsoft.Storage"],
        "delegation": [{"name": "d", "service_delegation": [{"name": "Microsoft.App/environments"}]}],
        "private_endpoint_network_policies": "Enabled", "default_outbound_access_enabled": False,
        "network_security_group_id": nsg_id}
    nsg = _tf("network:NetworkSecurityGroup", {"resourceGroupName": RG, "location": "eastus", "securityRules": [
        {"name": "deny-internet", "priority": 4000, "direction": "Inbound", "access": "Deny", "protocol": "*",
         "sourceAddressPrefix": "Internet", "sourcePortRange": "*", "destinationAddressPrefix": "*",
         "destinationPortRange": "*"}]})
    assert nsg["security_rule"] == [{
        "name": "deny-internet", "protocol": "*", "source_port_range": "*", "destination_port_range": "*",
        "source_address_prefix": "Internet", "destination_address_prefix": "*", "access": "Deny", "priority": 4000,
        "direction": "Inbound"}]
    vnet = _tf("network:VirtualNetwork", {"resourceGroupName": RG, "location": "eastus",
                                          "addressSpace": {"addressPrefixes": ["10.50.0.0/20"]}})
    assert vnet == {"resource_group_name": RG, "location": "eastus", "address_space": ["10.50.0.0/20"]}
    vault = f"{SUB}/resourceGroups/{RG}/providers/Microsoft.KeyVault/vaults/kv"
    pe = _tf("network:PrivateEndpoint", {"resourceGroupName": RG, "location": "eastus", "subnet": {"id": "s"},
                                         "privateLinkServiceConnections": [
                                             {"name": "kv", "privateLinkServiceId": vault, "groupIds": ["vault"]}]})
    assert pe == {"resource_group_name": RG, "location": "eastus", "subnet_id": "s", "private_service_connection": [
        {"name": "kv", "private_connection_resource_id": vault, "subresource_names": ["vault"],
         "is_manual_connection": False}]}
    assert _tf("privatedns:PrivateZone", {"resourceGroupName": RG, "location": "global",
                                          "privateZoneName": "privatelink.vaultcore.azure.net"}) == {
        "name": "privatelink.vaultcore.azure.net", "resource_group_name": RG}
    assert _tf("privatedns:VirtualNetworkLink", {
        "resourceGroupName": RG, "location": "global", "privateZoneName": "z", "virtualNetwork": {"id": "v"},
        "registrationEnabled": False}) == {"resource_group_name": RG, "private_dns_zone_name": "z",
                                           "virtual_network_id": "v", "registration_enabled": False}


def test_identity_and_role_assignment() -> None:
    assert _tf("managedidentity:UserAssignedIdentity", {"resourceGroupName": RG, "location": "eastus",
                                                        "resourceName": "id"}) == {
        "name": "id", "resource_group_name": RG, "location": "eastus"}
    assert _tf("authorization:RoleAssignment", {"scope": "s", "principalId": "p", "principalType": "ServicePrincipal",
                                                "roleDefinitionId": "r"}) == {
        "scope": "s", "role_definition_id": "r", "principal_id": "p", "principal_type": "ServicePrincipal"}
    assert _tf("resources:ResourceGroup", {"resourceGroupName": RG, "location": "eastus", "tags": {"a": "b"}}) == {
        "name": RG, "location": "eastus", "tags": {"a": "b"}}


def test_monitoring() -> None:
    logs = _tf("operationalinsights:Workspace", {"resourceGroupName": RG, "location": "eastus",
                                                 "sku": {"name": "PerGB2018"}, "retentionInDays": 90,
                                                 "features": {"disableLocalAuth": True}})
    assert logs == {"resource_group_name": RG, "location": "eastus", "sku": "PerGB2018", "retention_in_days": 90,
                    "local_authentication_enabled": False}
    insights = _tf("applicationinsights:Component", {"resourceGroupName": RG, "location": "eastus", "kind": "web",
                                                     "applicationType": "web", "workspaceResourceId": "w",
                                                     "disableLocalAuth": True, "ingestionMode": "LogAnalytics"})
    assert insights == {"resource_group_name": RG, "location": "eastus", "application_type": "web",
                        "workspace_id": "w", "local_authentication_disabled": True}
    diag = _tf("monitor:DiagnosticSetting", {"resourceUri": "r", "workspaceId": "w", "name": "audit", "logs": [
        {"categoryGroup": "audit", "enabled": True}, {"category": "off", "enabled": False}],
        "metrics": [{"category": "AllMetrics", "enabled": True}]})
    assert diag == {"name": "audit", "target_resource_id": "r", "log_analytics_workspace_id": "w",
                    "enabled_log": [{"category_group": "audit"}], "enabled_metric": [{"category": "AllMetrics"}]}
    scale = _tf("monitor:AutoscaleSetting", {
        "resourceGroupName": RG, "location": "eastus", "enabled": True, "targetResourceUri": "d", "profiles": [{
            "name": "gpu", "capacity": {"default": "1", "minimum": "1", "maximum": "3"}, "rules": [{
                "metricTrigger": {"metricName": "GpuUtilizationPercentage", "metricResourceUri": "d",
                                  "timeGrain": "PT1M", "statistic": "Average", "timeWindow": "PT5M",
                                  "timeAggregation": "Average", "operator": "GreaterThan", "threshold": 70},
                "scaleAction": {"direction": "Increase", "type": "ChangeCount", "value": "1",
                                "cooldown": "PT10M"}}]}]})
    assert scale["target_resource_id"] == "d"
    assert scale["profile"] == [{"name": "gpu", "capacity": [{"default": "1", "minimum": "1", "maximum": "3"}],
                                 "rule": [{"metric_trigger": [{
                                     "metric_name": "GpuUtilizationPercentage", "metric_resource_id": "d",
                                     "time_grain": "PT1M", "statistic": "Average", "time_window": "PT5M",
                                     "time_aggregation": "Average", "operator": "GreaterThan", "threshold": 70}],
                                     "scale_action": [{"direction": "Increase", "type": "ChangeCount", "value": "1",
                                                       "cooldown": "PT10M"}]}]}]
    alert = _tf("monitor:MetricAlert", {
        "resourceGroupName": RG, "location": "global", "ruleName": "errors", "scopes": ["e"], "severity": 2,
        "enabled": True, "evaluationFrequency": "PT1M", "windowSize": "PT5M", "actions": [{"actionGroupId": "ag"}],
        "criteria": {"odataType": "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria", "allOf": [{
            "criterionType": "StaticThresholdCriterion", "name": "c", "metricName": "RequestsPerMinute",
            "metricNamespace": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
            "operator": "GreaterThan", "threshold": 5, "timeAggregation": "Total",
            "dimensions": [{"name": "statusCodeClass", "operator": "Include", "values": ["5xx"]}]}]}})
    assert alert == {
        "name": "errors", "resource_group_name": RG, "scopes": ["e"], "severity": 2, "enabled": True,
        "frequency": "PT1M", "window_size": "PT5M", "criteria": [{
            "metric_namespace": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
            "metric_name": "RequestsPerMinute", "aggregation": "Total", "operator": "GreaterThan", "threshold": 5,
            "dimension": [{"name": "statusCodeClass", "operator": "Include", "values": ["5xx"]}]}],
        "action": [{"action_group_id": "ag"}]}
