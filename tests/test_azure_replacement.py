"""Which changes replace the Azure platform's resources (components/azure/replacement.py): every type it declares
has a rule, each rule names real inputs of the azure-native resource and cites its source, and the plan diff reads
them as pulumi-azure-native's Diff would decide (path parameters and force-new properties replace)."""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

import pytest

from components.azure import replacement
from components.azure.replacement import NOTE, PREFIXES, RULES
from selfhost.plan_diff import plan_diff

from .conftest import platform_types

# The types the platform and its kind declare, without the package (the registry's list: tests/conftest.py).
DECLARED = tuple(sorted(t.removeprefix("azure-native:") for t in platform_types("azure")))


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _sdk_inputs(token: str) -> set[str]:
    """The resource's input names as the SDK sends them (camelCase), from its constructor."""
    module, name = token.removeprefix("azure-native:").split(":")
    sdk = importlib.import_module(f"pulumi_azure_native.{module}")
    params = inspect.signature(getattr(sdk, name)._internal_init).parameters
    return {_camel(p) for p in params if p not in ("__self__", "resource_name", "opts", "__props__")}


def test_every_type_the_platform_declares_has_a_rule() -> None:
    assert {f"azure-native:{t}" for t in DECLARED} <= set(RULES)
    assert PREFIXES == ()
    assert "diff.go" in NOTE


def test_the_module_is_pure() -> None:
    assert "pulumi_azure_native" not in open(replacement.__file__).read()


@pytest.mark.parametrize("token", sorted(RULES))
def test_each_rule_names_real_inputs_and_cites_its_source(token: str) -> None:
    pytest.importorskip("pulumi_azure_native")
    rule = RULES[token]
    inputs = _sdk_inputs(token)
    for path in (*rule.replace, *rule.maybe, *(p for p, _ in rule.updates)):
        top = re.split(r"[.\[]", path, maxsplit=1)[0]
        assert top in inputs, f"{token}: {path} is not an input ({sorted(inputs)})"
    assert rule.replace, f"{token}: a resource's own name and its group replace it"
    assert "diff.go" in rule.source or "path parameters" in rule.source


# Each type's ARM PUT path parameters but the subscription (the REST API reference's "Create Or Update" URL).
PATHS = {
    "resources:ResourceGroup": ("resourceGroupName",),
    "network:VirtualNetwork": ("resourceGroupName", "virtualNetworkName"),
    "network:Subnet": ("resourceGroupName", "virtualNetworkName", "subnetName"),
    "network:NetworkSecurityGroup": ("resourceGroupName", "networkSecurityGroupName"),
    "network:PrivateEndpoint": ("resourceGroupName", "privateEndpointName"),
    "network:PrivateDnsZoneGroup": ("resourceGroupName", "privateEndpointName", "privateDnsZoneGroupName"),
    "privatedns:PrivateZone": ("resourceGroupName", "privateZoneName"),
    "privatedns:VirtualNetworkLink": ("resourceGroupName", "privateZoneName", "virtualNetworkLinkName"),
    "keyvault:Vault": ("resourceGroupName", "vaultName"),
    "keyvault:Secret": ("resourceGroupName", "vaultName", "secretName"),
    "keyvault:Key": ("resourceGroupName", "vaultName", "keyName"),
    "managedidentity:UserAssignedIdentity": ("resourceGroupName", "resourceName"),
    "authorization:RoleAssignment": ("scope", "roleAssignmentName"),
    "storage:StorageAccount": ("resourceGroupName", "accountName"),
    "containerregistry:Registry": ("resourceGroupName", "registryName"),
    "operationalinsights:Workspace": ("resourceGroupName", "workspaceName"),
    "applicationinsights:Component": ("resourceGroupName", "resourceName"),
    "machinelearningservices:Workspace": ("resourceGroupName", "workspaceName"),
    "machinelearningservices:OnlineEndpoint": ("resourceGroupName", "workspaceName", "endpointName"),
    "machinelearningservices:OnlineDeployment": ("resourceGroupName", "workspaceName", "endpointName",
                                                 "deploymentName"),
    "machinelearningservices:EnvironmentContainer": ("resourceGroupName", "workspaceName", "name"),
    "machinelearningservices:EnvironmentVersion": ("resourceGroupName", "workspaceName", "name", "version"),
    "monitor:AutoscaleSetting": ("resourceGroupName", "autoscaleSettingName"),
    "monitor:DiagnosticSetting": ("resourceUri", "name"),
    "monitor:MetricAlert": ("resourceGroupName", "ruleName"),
    "storage:BlobServiceProperties": ("resourceGroupName", "accountName", "blobServicesName"),
}


def test_every_path_parameter_replaces() -> None:
    assert set(PATHS) == set(DECLARED)
    for t, params in PATHS.items():
        assert set(params) <= set(RULES[f"azure-native:{t}"].replace), t


def test_data_and_address_bearing_resources_warn() -> None:
    for t in ("keyvault:Vault", "keyvault:Key", "storage:StorageAccount", "machinelearningservices:Workspace",
              "machinelearningservices:OnlineEndpoint", "containerregistry:Registry", "resources:ResourceGroup"):
        rule = RULES[f"azure-native:{t}"]
        assert rule.risk and rule.removal, t
    assert "scoring URI" in (RULES["azure-native:machinelearningservices:OnlineEndpoint"].risk or "")
    assert "data loss" in (RULES["azure-native:storage:StorageAccount"].risk or "")


def _res(type_: str, name: str, inputs: dict[str, Any], protect: bool = False) -> dict[str, Any]:
    return {"urn": f"urn:pulumi:prod::selfhost-llm::{type_}::{name}", "type": type_, "name": name, "parent": None,
            "custom": True, "id": f"/subscriptions/s/resourceGroups/rg/providers/x/{name}", "protect": protect,
            "dependencies": [], "inputs": inputs, "secretInputs": [], "computed": {}}


def _doc(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"schemaVersion": 1, "project": "selfhost-llm", "stack": "prod", "resources": list(resources),
            "outputs": {}, "secretOutputs": [], "unmockedTypes": []}


def _diff(type_: str, old: dict[str, Any], new: dict[str, Any], protect: bool = False):
    d = plan_diff(_doc(_res(f"azure-native:{type_}", "r", old, protect)),
                  _doc(_res(f"azure-native:{type_}", "r", new, protect)))
    return d, d.changes[0]


def test_a_new_endpoint_name_replaces_the_endpoint_with_a_warning() -> None:
    base = {"resourceGroupName": "rg", "workspaceName": "mlw", "endpointName": "chat", "location": "eastus",
            "properties": {"authMode": "Key", "traffic": {"blue": 100}}}
    d, c = _diff("machinelearningservices:OnlineEndpoint", base, {**base, "endpointName": "chat-2"})
    assert c.action == "replace" and c.risky
    assert any("scoring URI" in w for w in d.warnings)
    # Traffic moves in place.
    _, c = _diff("machinelearningservices:OnlineEndpoint", base, {**base, "properties": {
        "authMode": "Key", "traffic": {"blue": 90, "green": 10}}})
    assert c.action == "update" and any("traffic" in n for n in c.notes)


def test_an_online_deployment_changes_in_place_but_its_instance_type_is_refused() -> None:
    base: dict[str, Any] = {
        "resourceGroupName": "rg", "workspaceName": "mlw", "endpointName": "chat", "deploymentName": "blue",
        "properties": {"endpointComputeType": "Managed", "instanceType": "Standard_NC24ads_A100_v4"},
        "sku": {"name": "Default", "capacity": 1}}
    _, c = _diff("machinelearningservices:OnlineDeployment", base, {
        **base, "properties": {**base["properties"], "instanceType": "Standard_NC40ads_H100_v5"}})
    assert c.action == "update" and not c.known, "azure-native does not look inside the union: ARM decides"
    assert any("instance type" in n for n in c.notes)
    _, c = _diff("machinelearningservices:OnlineDeployment", base, {**base, "deploymentName": "green"})
    assert c.action == "replace"


def test_a_protected_vault_replaced_by_its_name_warns_of_data_loss() -> None:
    base = {"resourceGroupName": "rg", "vaultName": "kv-a", "location": "eastus", "properties": {"tenantId": "t"}}
    d, c = _diff("keyvault:Vault", base, {**base, "vaultName": "kv-b"}, protect=True)
    assert c.action == "replace" and c.risky and any("data loss" in w for w in d.warnings)
    _, c = _diff("keyvault:Vault", base, {**base, "location": "westeurope"}, protect=True)
    assert c.action == "may-replace"


def test_force_new_properties_from_the_providers_own_list() -> None:
    base = {"resourceGroupName": "rg", "accountName": "st", "location": "eastus", "sku": {"name": "Standard_ZRS"}}
    _, c = _diff("storage:StorageAccount", base, {**base, "location": "westeurope"})
    assert c.action == "replace"
    _, c = _diff("storage:StorageAccount", base, {**base, "isHnsEnabled": True})
    assert c.action == "replace"
    _, c = _diff("storage:StorageAccount", base, {**base, "minimumTlsVersion": "TLS1_2"})
    assert c.action == "update"
    grant = {"scope": "/s", "principalId": "p", "roleDefinitionId": "r", "principalType": "ServicePrincipal"}
    _, c = _diff("authorization:RoleAssignment", grant, {**grant, "principalId": "q"})
    assert c.action == "replace"
    group = {"resourceGroupName": "rg", "location": "eastus", "tags": {"a": "1"}}
    _, c = _diff("resources:ResourceGroup", group, {**group, "location": "westeurope"})
    assert c.action == "replace"
    _, c = _diff("resources:ResourceGroup", group, {**group, "tags": {"a": "2"}})
    assert (c.action, c.known) == ("update", True)


def test_an_environment_version_is_a_new_version() -> None:
    base = {"resourceGroupName": "rg", "workspaceName": "mlw", "name": "vllm", "version": "1",
            "properties": {"image": "acr.azurecr.io/vllm@sha256:a"}}
    _, c = _diff("machinelearningservices:EnvironmentVersion", base, {**base, "version": "2", "properties": {
        "image": "acr.azurecr.io/vllm@sha256:b"}})
    assert c.action == "replace"
    _, c = _diff("machinelearningservices:EnvironmentVersion", base, {**base, "properties": {
        "image": "acr.azurecr.io/vllm@sha256:b"}})
    assert c.action == "update" and not c.known and any("immutable" in n for n in c.notes)
