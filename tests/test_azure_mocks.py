"""The Azure mocks (components/azure/mocks.py): each resource type's mock answers in ARM's formats (resource ids, ARM
types, service URLs, GUIDs), deterministically, from a mock Ctx, without the azure-native SDK."""

from __future__ import annotations

import ipaddress
import re
import uuid
from typing import Any

import pytest

from components.azure import mocks
from components.azure.mocks import RESOURCES, call, mock_location
from components.mocking import Ctx, MockCallCtx

from .conftest import platform_types

SUB = "11111111-2222-3333-4444-555555555555"
RG = "rg-llm"
PREFIX = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _mock(token: str, name: str, inputs: dict[str, Any], memo: dict[str, Any] | None = None,
          region: str = "eastus", project: str = SUB) -> tuple[str, dict[str, Any]]:
    ctx = Ctx(f"urn:pulumi:prod::selfhost-llm::{token}::{name}", name, inputs, region, project,
              {} if memo is None else memo)
    return RESOURCES[f"azure-native:{token}"](ctx)


def test_every_type_the_platform_declares_has_a_mock() -> None:
    declared = platform_types("azure")
    assert len(declared) >= 26 and "azure-native:machinelearningservices:OnlineDeployment" in declared
    assert declared <= set(RESOURCES)


def test_the_module_is_pure() -> None:
    source = open(mocks.__file__).read()
    assert "pulumi_azure_native" not in source and "import pulumi\n" not in source


def test_location_and_subscription_come_from_the_provider_config() -> None:
    assert mock_location({"azure-native:location": "West Europe", "azure-native:subscriptionId": SUB}) == (
        "westeurope", SUB)
    location, subscription = mock_location({})
    assert location == "eastus" and GUID.match(subscription)
    assert mock_location({}, "swedencentral")[0] == "swedencentral"


def test_a_resource_group_is_named_by_azure_natives_auto_naming_unless_named() -> None:
    rid, out = _mock("resources:ResourceGroup", "rg", {"location": "East US"})
    assert re.fullmatch(r"rg[0-9a-f]{8}", out["name"]), "the logical name and 8 hex characters, no separator"
    assert rid == f"/subscriptions/{SUB}/resourceGroups/{out['name']}"
    assert out["location"] == "eastus" and out["type"] == "Microsoft.Resources/resourceGroups"
    named, _ = _mock("resources:ResourceGroup", "rg", {"resourceGroupName": RG})
    assert named == f"/subscriptions/{SUB}/resourceGroups/{RG}"
    assert _mock("resources:ResourceGroup", "rg", {}) == _mock("resources:ResourceGroup", "rg", {}), "deterministic"


def test_the_subscription_defaults_when_the_stack_names_none() -> None:
    rid, _ = _mock("resources:ResourceGroup", "rg", {"resourceGroupName": RG}, project="")
    assert rid == f"/subscriptions/{mocks.PREVIEW_SUBSCRIPTION}/resourceGroups/{RG}"


def test_network_ids_and_the_subnet_range_kept_for_private_endpoints() -> None:
    memo: dict[str, Any] = {}
    vnet, out = _mock("network:VirtualNetwork", "vnet", {"resourceGroupName": RG, "virtualNetworkName": "vnet-llm",
                                                         "addressSpace": {"addressPrefixes": ["10.50.0.0/20"]}}, memo)
    assert vnet == f"{PREFIX}/Microsoft.Network/virtualNetworks/vnet-llm"
    assert GUID.match(out["resourceGuid"]) and out["etag"].startswith('W/"')
    subnet, out = _mock("network:Subnet", "pe", {"resourceGroupName": RG, "virtualNetworkName": "vnet-llm",
                                                 "addressPrefix": "10.50.0.0/24"}, memo)
    assert re.fullmatch(rf"{PREFIX}/Microsoft.Network/virtualNetworks/vnet-llm/subnets/pe[0-9a-f]{{8}}", subnet)
    assert out["type"] == "Microsoft.Network/virtualNetworks/subnets" and "location" not in out
    assert memo[mocks.SUBNETS] == {subnet: "10.50.0.0/24"}
    assert all(k.startswith("azure:") for k in memo)
    nsg, _ = _mock("network:NetworkSecurityGroup", "nsg", {"resourceGroupName": RG,
                                                          "networkSecurityGroupName": "nsg-llm"})
    assert nsg == f"{PREFIX}/Microsoft.Network/networkSecurityGroups/nsg-llm"


def test_a_private_endpoint_takes_an_address_from_its_subnet_and_names_its_target() -> None:
    memo: dict[str, Any] = {}
    subnet, _ = _mock("network:Subnet", "pe", {"resourceGroupName": RG, "virtualNetworkName": "v",
                                              "subnetName": "pe", "addressPrefix": "10.50.0.0/24"}, memo)
    vault = f"{PREFIX}/Microsoft.KeyVault/vaults/kv-llm"
    rid, out = _mock("network:PrivateEndpoint", "kv-pe", {
        "resourceGroupName": RG, "location": "eastus", "subnet": {"id": subnet},
        "privateLinkServiceConnections": [{"name": "kv", "privateLinkServiceId": vault, "groupIds": ["vault"]}]}, memo)
    assert re.fullmatch(rf"{PREFIX}/Microsoft.Network/privateEndpoints/kv-pe[0-9a-f]{{8}}", rid)
    [dns] = out["customDnsConfigs"]
    assert dns["fqdn"] == "kv-llm.vault.azure.net"
    address = ipaddress.ip_address(dns["ipAddresses"][0])
    assert address in ipaddress.ip_network("10.50.0.0/24") and int(address) & 0xFF >= 4, "past Azure's 4 reserved"
    [nic] = out["networkInterfaces"]
    assert nic["id"].startswith(f"{PREFIX}/Microsoft.Network/networkInterfaces/{out['name']}.nic.")
    assert out["privateLinkServiceConnections"][0]["privateLinkServiceConnectionState"]["status"] == "Approved"


def test_a_workspace_private_endpoint_answers_at_the_workspace_guid_names() -> None:
    memo: dict[str, Any] = {}
    ws, out = _mock("machinelearningservices:Workspace", "ws", {"resourceGroupName": RG, "workspaceName": "mlw"}, memo)
    _, pe = _mock("network:PrivateEndpoint", "ws-pe", {"resourceGroupName": RG, "privateLinkServiceConnections": [
        {"name": "ws", "privateLinkServiceId": ws, "groupIds": ["amlworkspace"]}]}, memo)
    names = [d["fqdn"] for d in pe["customDnsConfigs"]]
    assert f"{out['workspaceId']}.workspace.eastus.api.azureml.ms" in names
    assert any(n.endswith(".notebooks.azure.net") for n in names)


def test_key_vault_uris() -> None:
    rid, out = _mock("keyvault:Vault", "kv", {
        "resourceGroupName": RG, "vaultName": "kv-llm", "location": "eastus",
        "properties": {"tenantId": "t", "sku": {"family": "A", "name": "premium"}}})
    assert rid == f"{PREFIX}/Microsoft.KeyVault/vaults/kv-llm"
    assert out["properties"]["vaultUri"] == "https://kv-llm.vault.azure.net/"
    assert out["properties"]["sku"] == {"family": "A", "name": "premium"}, "the inputs stay under properties"
    rid, out = _mock("keyvault:Secret", "tok", {
        "resourceGroupName": RG, "vaultName": "kv-llm", "secretName": "hf-token",
        "properties": {"value": "hf_x", "contentType": "text/plain"}})
    assert rid == f"{PREFIX}/Microsoft.KeyVault/vaults/kv-llm/secrets/hf-token"
    props = out["properties"]
    assert props["secretUri"] == "https://kv-llm.vault.azure.net/secrets/hf-token"
    assert re.fullmatch(r"https://kv-llm\.vault\.azure\.net/secrets/hf-token/[0-9a-f]{32}",
                        props["secretUriWithVersion"])
    assert "value" not in props, "ARM never returns a secret's value"
    assert props["contentType"] == "text/plain"
    rid, out = _mock("keyvault:Key", "cmk", {"resourceGroupName": RG, "vaultName": "kv-llm", "keyName": "cmk",
                                            "properties": {"kty": "RSA-HSM", "keySize": 2048}})
    assert rid == f"{PREFIX}/Microsoft.KeyVault/vaults/kv-llm/keys/cmk"
    assert out["keyUri"] == "https://kv-llm.vault.azure.net/keys/cmk"
    assert out["keyUriWithVersion"].startswith(out["keyUri"] + "/")
    assert (out["kty"], out["keySize"]) == ("RSA-HSM", 2048)


def test_identities_principals_and_tenant() -> None:
    memo: dict[str, Any] = {}
    uai, out = _mock("managedidentity:UserAssignedIdentity", "enc", {"resourceGroupName": RG, "resourceName": "id-enc"},
                     memo)
    assert uai == f"{PREFIX}/Microsoft.ManagedIdentity/userAssignedIdentities/id-enc"
    assert GUID.match(out["principalId"]) and GUID.match(out["clientId"]) and out["principalId"] != out["clientId"]
    tenant = call("azure-native:authorization:getClientConfig", {}, MockCallCtx("eastus", SUB))
    assert tenant is not None and out["tenantId"] == tenant["tenantId"], "one tenant per subscription"
    # A resource acting as it: ARM repeats its principal and client ids.
    _, reg = _mock("containerregistry:Registry", "acr", {"resourceGroupName": RG, "registryName": "acrllm",
                                                        "identity": {"type": "UserAssigned",
                                                                     "userAssignedIdentities": {uai: {}}}}, memo)
    assert reg["identity"]["userAssignedIdentities"][uai] == {"principalId": out["principalId"],
                                                              "clientId": out["clientId"]}
    # A system-assigned identity: its own principal.
    _, ws = _mock("machinelearningservices:Workspace", "ws", {"resourceGroupName": RG, "identity": {
        "type": "SystemAssigned"}})
    assert GUID.match(ws["identity"]["principalId"]) and ws["identity"]["tenantId"] == tenant["tenantId"]


def test_a_role_assignment_is_a_guid_under_its_scope() -> None:
    scope = f"{PREFIX}/Microsoft.KeyVault/vaults/kv-llm/secrets/hf-token"
    rid, out = _mock("authorization:RoleAssignment", "reader", {
        "scope": scope, "principalId": "p", "principalType": "ServicePrincipal",
        "roleDefinitionId": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/r"})
    assert GUID.match(out["name"])
    assert rid == f"{scope}/providers/Microsoft.Authorization/roleAssignments/{out['name']}"


def test_storage_registry_and_telemetry_endpoints() -> None:
    rid, out = _mock("storage:StorageAccount", "st", {"resourceGroupName": RG, "accountName": "stllm",
                                                     "location": "eastus"})
    assert rid == f"{PREFIX}/Microsoft.Storage/storageAccounts/stllm"
    assert out["primaryEndpoints"]["blob"] == "https://stllm.blob.core.windows.net/"
    assert out["primaryEndpoints"]["file"] == "https://stllm.file.core.windows.net/"
    assert out["primaryLocation"] == "eastus"
    rid, out = _mock("storage:BlobServiceProperties", "blob", {"resourceGroupName": RG, "accountName": "stllm"})
    assert rid == f"{PREFIX}/Microsoft.Storage/storageAccounts/stllm/blobServices/default"
    assert out["name"] == "default" and out["type"] == "Microsoft.Storage/storageAccounts/blobServices"
    rid, out = _mock("containerregistry:Registry", "acr", {"resourceGroupName": RG, "registryName": "AcrLlm"})
    assert rid == f"{PREFIX}/Microsoft.ContainerRegistry/registries/AcrLlm"
    assert out["loginServer"] == "acrllm.azurecr.io", "login servers are lower case"
    rid, out = _mock("operationalinsights:Workspace", "logs", {"resourceGroupName": RG, "workspaceName": "log-llm"})
    assert rid == f"{PREFIX}/Microsoft.OperationalInsights/workspaces/log-llm" and GUID.match(out["customerId"])
    rid, out = _mock("applicationinsights:Component", "ai", {"resourceGroupName": RG, "resourceName": "appi"})
    assert rid == f"{PREFIX}/Microsoft.Insights/components/appi"
    assert GUID.match(out["instrumentationKey"])
    assert out["connectionString"].startswith(f"InstrumentationKey={out['instrumentationKey']};IngestionEndpoint=https://")


def test_machine_learning_workspace_endpoint_and_deployment() -> None:
    ws, out = _mock("machinelearningservices:Workspace", "ws", {"resourceGroupName": RG, "workspaceName": "mlw",
                                                               "location": "swedencentral"})
    assert ws == f"{PREFIX}/Microsoft.MachineLearningServices/workspaces/mlw"
    assert GUID.match(out["workspaceId"])
    assert out["discoveryUrl"] == "https://swedencentral.api.azureml.ms/discovery"
    assert out["mlFlowTrackingUri"] == f"azureml://swedencentral.api.azureml.ms/mlflow/v1.0{ws}"
    rid, out = _mock("machinelearningservices:OnlineEndpoint", "chat", {
        "resourceGroupName": RG, "workspaceName": "mlw", "endpointName": "chat-prod", "location": "swedencentral",
        "identity": {"type": "SystemAssigned"}, "properties": {"authMode": "Key"}})
    assert rid == f"{ws}/onlineEndpoints/chat-prod"
    assert out["type"] == "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
    assert out["properties"]["scoringUri"] == "https://chat-prod.swedencentral.inference.ml.azure.com/score"
    assert out["properties"]["swaggerUri"] == "https://chat-prod.swedencentral.inference.ml.azure.com/swagger.json"
    assert out["properties"]["authMode"] == "Key" and GUID.match(out["identity"]["principalId"])
    rid, out = _mock("machinelearningservices:OnlineDeployment", "blue", {
        "resourceGroupName": RG, "workspaceName": "mlw", "endpointName": "chat-prod", "deploymentName": "blue",
        "properties": {"endpointComputeType": "Managed", "instanceType": "Standard_NC24ads_A100_v4"},
        "sku": {"name": "Default", "capacity": 1}})
    assert rid == f"{ws}/onlineEndpoints/chat-prod/deployments/blue"
    assert out["properties"]["provisioningState"] == "Succeeded"
    assert out["properties"]["instanceType"] == "Standard_NC24ads_A100_v4"
    rid, _ = _mock("machinelearningservices:EnvironmentContainer", "env", {"resourceGroupName": RG,
                                                                          "workspaceName": "mlw", "name": "vllm"})
    assert rid == f"{ws}/environments/vllm"
    rid, out = _mock("machinelearningservices:EnvironmentVersion", "env-v", {
        "resourceGroupName": RG, "workspaceName": "mlw", "name": "vllm", "version": "3",
        "properties": {"image": "acrllm.azurecr.io/vllm@sha256:abc"}})
    assert rid == f"{ws}/environments/vllm/versions/3"
    assert out["properties"]["image"] == "acrllm.azurecr.io/vllm@sha256:abc"


def test_monitoring_resources() -> None:
    ws = f"{PREFIX}/Microsoft.MachineLearningServices/workspaces/mlw"
    rid, _ = _mock("monitor:DiagnosticSetting", "audit", {"resourceUri": ws, "name": "audit"})
    assert rid == f"{ws}/providers/Microsoft.Insights/diagnosticSettings/audit"
    rid, _ = _mock("monitor:AutoscaleSetting", "scale", {"resourceGroupName": RG, "autoscaleSettingName": "chat"})
    assert rid == f"{PREFIX}/Microsoft.Insights/autoscalesettings/chat"
    rid, out = _mock("monitor:MetricAlert", "alert", {"resourceGroupName": RG, "ruleName": "errors"})
    assert rid == f"{PREFIX}/Microsoft.Insights/metricAlerts/errors" and out["location"] == "global"
    rid, out = _mock("privatedns:PrivateZone", "zone", {"resourceGroupName": RG,
                                                       "privateZoneName": "privatelink.vaultcore.azure.net"})
    assert rid == f"{PREFIX}/Microsoft.Network/privateDnsZones/privatelink.vaultcore.azure.net"
    assert out["location"] == "global"
    rid, out = _mock("privatedns:VirtualNetworkLink", "link", {
        "resourceGroupName": RG, "privateZoneName": "privatelink.vaultcore.azure.net",
        "virtualNetworkLinkName": "vnet"})
    assert rid.endswith("/privateDnsZones/privatelink.vaultcore.azure.net/virtualNetworkLinks/vnet")
    assert out["virtualNetworkLinkState"] == "Completed"


@pytest.mark.parametrize("project", [SUB, ""])
def test_client_config_and_endpoint_keys(project: str) -> None:
    config = call("azure-native:authorization:getClientConfig", {}, MockCallCtx("eastus", project))
    assert config is not None and set(config) == {"clientId", "objectId", "subscriptionId", "tenantId"}
    assert config["subscriptionId"] == (project or mocks.PREVIEW_SUBSCRIPTION)
    assert all(uuid.UUID(v) for v in config.values())
    keys = call("azure-native:machinelearningservices:listOnlineEndpointKeys",
                {"resourceGroupName": RG, "workspaceName": "mlw", "endpointName": "chat"}, MockCallCtx("eastus", SUB))
    assert keys is not None and keys["primaryKey"] != keys["secondaryKey"]
    assert call("azure-native:compute:getVirtualMachine", {}, MockCallCtx("eastus", SUB)) is None


def test_a_secret_input_is_unwrapped_not_broken() -> None:
    """A `properties` input holding a secret arrives in Pulumi's wire form ({sig: secret, value}); the mock's
    answer keeps the other properties and drops the value, which ARM never returns (the program marks the
    outputs secret)."""
    wire = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
            "value": {"value": "hf_x", "contentType": "text/plain"}}
    _, out = _mock("keyvault:Secret", "tok", {"resourceGroupName": RG, "vaultName": "kv", "secretName": "hf-token",
                                             "properties": wire})
    assert out["properties"]["contentType"] == "text/plain" and "value" not in out["properties"]
    assert out["properties"]["secretUri"] == "https://kv.vault.azure.net/secrets/hf-token"
