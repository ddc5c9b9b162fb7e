"""The Azure provider (azure-native v3) under the offline preview (components/mocking.py): what Azure Resource Manager
computes for each resource type (`RESOURCES`) and what the provider's functions return (`call`), in ARM's own
formats: resource ids (/subscriptions/{subscription}/resourceGroups/{group}/providers/{namespace}/{type}/{name}),
ARM types (Microsoft.KeyVault/vaults), service URLs (vault URIs, login servers, scoring URIs) and GUIDs.

The subscription is the mock Ctx's `project`, the location its `region` (`mock_location`: the stack's
`azure-native:subscriptionId` and `azure-native:location`). Names follow azure-native's auto-naming where the name
input is absent: the logical name plus 8 random hex characters, no separator (azure-native
provider/pkg/provider/autonaming_test.go: "test" -> "test614742c2"), or a GUID for role assignments.

Read through `Platform.mocks()` / `Platform.mock_call()` / `Platform.mock_location()` of the `azure` platform
(components/targets/azure.py).
"""

from __future__ import annotations

import hashlib
import ipaddress
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from ..mocking import Ctx, MockCallCtx, MockFn

PREVIEW_SUBSCRIPTION = str(uuid.UUID(hashlib.sha256(b"selfhost-preview-subscription").hexdigest()[:32]))
"""The subscription of a preview whose stack names none (azure-native reads it from the environment or the Azure
CLI otherwise)."""
DEFAULT_LOCATION = "eastus"

SUBNETS = "azure:subnets"
"""The preview's memo (Ctx.memo) key: subnet id -> its address prefix, for the addresses private endpoints take."""
WORKSPACES = "azure:workspaces"
"""The preview's memo key: Machine Learning workspace id -> its workspaceId (a GUID its private DNS names use)."""
IDENTITIES = "azure:identities"
"""The preview's memo key: user-assigned identity id -> {principalId, clientId}, as ARM repeats them where a resource
names the identity (identity.userAssignedIdentities)."""


def mock_location(config: Mapping[str, str], default_location: str = DEFAULT_LOCATION) -> tuple[str, str]:
    """(location, subscription id) the stack's azure-native resources live in: the provider's `location` and
    `subscriptionId` configuration, as ARM spells a location (`West Europe` -> `westeurope`)."""
    location = config.get("azure-native:location") or default_location
    return normalize_location(location), config.get("azure-native:subscriptionId") or PREVIEW_SUBSCRIPTION


def normalize_location(location: str) -> str:
    """ARM's form of a location: lower case, no spaces (the provider compares them so, provider/pkg/provider/diff.go
    normalizedLocation)."""
    return location.replace(" ", "").lower()


# Pulumi's wire form of a secret value ({SPECIAL: SECRET, "value": ...}), as a mock receives a secret input.
_SPECIAL_SIG, _SECRET_SIG = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"


def _plain(value: Any) -> Any:
    """A value with its secret wrappers taken off (a mock's answer is marked secret again by the program's
    additional_secret_outputs, as the provider's is)."""
    if isinstance(value, dict):
        if value.get(_SPECIAL_SIG) == _SECRET_SIG:
            return _plain(value.get("value"))
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _guid(*parts: str) -> str:
    return str(uuid.UUID(hashlib.sha256("/".join(parts).encode()).hexdigest()[:32]))


def tenant_id(subscription: str) -> str:
    """The Entra ID tenant the subscription trusts: one GUID per subscription, the same in every mock."""
    return _guid("tenant", subscription)


def _sub(c: Ctx) -> str:
    return c.project or PREVIEW_SUBSCRIPTION


def _location(c: Ctx) -> str:
    return normalize_location(str(c.inputs.get("location") or c.region or DEFAULT_LOCATION))


def _name(c: Ctx, key: str) -> str:
    """azure-native's random auto-name: the logical name and 8 hex characters, unless the name input is given."""
    return str(c.inputs.get(key) or f"{c.name}{c.hex(8, 'name')}")


def _identity(c: Ctx) -> dict[str, Any]:
    """A managed identity block as ARM returns it: the system-assigned identity's principal and tenant, and each
    user-assigned identity's principal and client ids."""
    given = c.inputs.get("identity")
    if not isinstance(given, dict):
        return {}
    out: dict[str, Any] = dict(given)
    kind = str(given.get("type", ""))
    if "SystemAssigned" in kind:
        out.update(principalId=_guid(c.urn, "principal"), tenantId=tenant_id(_sub(c)))
    assigned = given.get("userAssignedIdentities")
    if isinstance(assigned, (list, dict)):
        known = c.memo.get(IDENTITIES, {})
        out["userAssignedIdentities"] = {
            i: known.get(i, {"principalId": _guid(i, "principal"), "clientId": _guid(i, "client")}) for i in assigned}
    return {"identity": out}


Extra = Callable[[Ctx, str, str], dict[str, Any]]


class _Names(dict):
    def __missing__(self, key: str) -> str:
        return ""


def _arm(path: str, key: str, extra: Extra | None = None, *, location: str | None = None, tracked: bool = True,
         properties: Callable[[Ctx, str, str], dict[str, Any]] | None = None) -> MockFn:
    """A resource in a resource group: `path` is its id below /providers/ (`Microsoft.KeyVault/vaults/{name}`, its
    parents' names by their input keys: `Microsoft.Network/virtualNetworks/{virtualNetworkName}/subnets/{name}`),
    `key` its name input. A tracked resource has a location (`location`: a fixed one, `global`). `properties`:
    ARM's computed values merged into the `properties` input; `extra`: other top-level outputs. Both get
    (ctx, id, name)."""
    segments = path.split("/")
    arm_type = "/".join([segments[0], *segments[1::2]])

    def make(c: Ctx) -> tuple[str, dict]:
        name = _name(c, key)
        rg = c.inputs.get("resourceGroupName", "")
        names = _Names({k: v for k, v in c.inputs.items() if isinstance(v, str)}, name=name)
        rid = f"/subscriptions/{_sub(c)}/resourceGroups/{rg}/providers/" + path.format_map(names)
        out: dict[str, Any] = {"name": name, "type": arm_type}
        if tracked:
            out["location"] = location or _location(c)
        out.update(_identity(c))
        if properties is not None:
            out["properties"] = {**(_plain(c.inputs.get("properties")) or {}), **properties(c, rid, name)}
        if extra is not None:
            out.update(extra(c, rid, name))
        return rid, out
    return make


def _succeeded(c: Ctx, rid: str, name: str) -> dict[str, Any]:
    return {"provisioningState": "Succeeded"}


def _network(c: Ctx, rid: str, name: str) -> dict[str, Any]:
    """A network resource's etag and GUID (ARM's `resourceGuid`)."""
    return {"etag": f'W/"{_guid(c.urn, "etag")}"', "resourceGuid": _guid(c.urn, "guid"),
            "provisioningState": "Succeeded"}


def _resource_group(c: Ctx) -> tuple[str, dict]:
    name = _name(c, "resourceGroupName")
    return f"/subscriptions/{_sub(c)}/resourceGroups/{name}", {
        "name": name, "type": "Microsoft.Resources/resourceGroups", "location": _location(c),
        "properties": {"provisioningState": "Succeeded"}}


_subnet_of = _arm("Microsoft.Network/virtualNetworks/{virtualNetworkName}/subnets/{name}", "subnetName",
                  lambda c, rid, name: {"etag": f'W/"{_guid(c.urn, "etag")}"', "provisioningState": "Succeeded"},
                  tracked=False)


def _subnet(c: Ctx) -> tuple[str, dict]:
    """A subnet; its range is kept for the addresses private endpoints later take from it."""
    rid, out = _subnet_of(c)
    prefix = c.inputs.get("addressPrefix") or (c.inputs.get("addressPrefixes") or [None])[0]
    if prefix:
        c.memo.setdefault(SUBNETS, {})[rid] = prefix
    return rid, out


def _vault(c: Ctx, rid: str, name: str) -> dict[str, Any]:
    return {"vaultUri": f"https://{name}.vault.azure.net/", "provisioningState": "Succeeded"}


def _vault_item(kind: str) -> Callable[[Ctx, str, str], dict[str, Any]]:
    def uris(c: Ctx, rid: str, name: str) -> dict[str, Any]:
        base = f"https://{c.inputs.get('vaultName', '')}.vault.azure.net/{kind}/{name}"
        return {"uri": base, "uriWithVersion": f"{base}/{c.hex(32, 'version')}"}
    return uris


def _secret(c: Ctx, rid: str, name: str) -> dict[str, Any]:
    """The secret's URIs: ARM never returns its value."""
    uris = _vault_item("secrets")(c, rid, name)
    return {"secretUri": uris["uri"], "secretUriWithVersion": uris["uriWithVersion"],
            "attributes": {**((_plain(c.inputs.get("properties")) or {}).get("attributes") or {}), "enabled": True,
                           "created": 1796083200, "updated": 1796083200}}


def _secret_mock(c: Ctx) -> tuple[str, dict]:
    rid, out = _arm("Microsoft.KeyVault/vaults/{vaultName}/secrets/{name}", "secretName", properties=_secret,
                    tracked=False)(c)
    out["properties"].pop("value", None)
    return rid, out


def _key(c: Ctx, rid: str, name: str) -> dict[str, Any]:
    """A key's outputs: ARM returns the key's properties at the top level of the resource (the SDK's outputs)."""
    props = _plain(c.inputs.get("properties")) or {}
    uris = _vault_item("keys")(c, rid, name)
    out: dict[str, Any] = {"keyUri": uris["uri"], "keyUriWithVersion": uris["uriWithVersion"],
                           "kty": props.get("kty", "RSA"),
                           "attributes": {**(props.get("attributes") or {}), "enabled": True,
                                          "created": 1796083200, "updated": 1796083200, "recoveryLevel": "Recoverable"},
                           "keyOps": props.get("keyOps", [])}
    for k in ("keySize", "curveName", "rotationPolicy", "releasePolicy"):
        if k in props:
            out[k] = props[k]
    return out


def _user_identity(c: Ctx) -> tuple[str, dict]:
    rid, out = _arm("Microsoft.ManagedIdentity/userAssignedIdentities/{name}", "resourceName")(c)
    ids = {"principalId": _guid(c.urn, "principal"), "clientId": _guid(c.urn, "client")}
    c.memo.setdefault(IDENTITIES, {})[rid] = ids
    return rid, {**out, **ids, "tenantId": tenant_id(_sub(c))}


def _role_assignment(c: Ctx) -> tuple[str, dict]:
    """A role assignment, named by a GUID (azure-native's `uuid` auto-naming), under its scope."""
    name = str(c.inputs.get("roleAssignmentName") or c.uuid())
    scope = str(c.inputs.get("scope", f"/subscriptions/{_sub(c)}"))
    return f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}", {
        "name": name, "type": "Microsoft.Authorization/roleAssignments",
        "principalType": c.inputs.get("principalType", "ServicePrincipal"), "createdOn": "2026-12-01T00:00:00Z",
        "updatedOn": "2026-12-01T00:00:00Z", "createdBy": _guid("creator", _sub(c)),
        "updatedBy": _guid("creator", _sub(c))}


def _storage(c: Ctx, rid: str, name: str) -> dict[str, Any]:
    location = _location(c)
    endpoints = {s: f"https://{name}.{s}.core.windows.net/" for s in ("blob", "dfs", "file", "queue", "table")}
    return {"primaryEndpoints": {**endpoints, "web": f"https://{name}.z13.web.core.windows.net/"},
            "primaryLocation": location, "statusOfPrimary": "available", "provisioningState": "Succeeded",
            "creationTime": "2026-12-01T00:00:00.0000000Z", "keyCreationTime": {
                "key1": "2026-12-01T00:00:00.0000000Z", "key2": "2026-12-01T00:00:00.0000000Z"}}


_blob_service_of = _arm("Microsoft.Storage/storageAccounts/{accountName}/blobServices/{name}", "blobServicesName",
                       tracked=False)


def _blob_service(c: Ctx) -> tuple[str, dict]:
    """A storage account's blob service: a singleton child, always named `default`."""
    named = {**c.inputs, "blobServicesName": c.inputs.get("blobServicesName") or "default"}
    return _blob_service_of(Ctx(c.urn, c.name, named, c.region, c.project, c.memo))


def _registry(c: Ctx, rid: str, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {"loginServer": f"{name.lower()}.azurecr.io", "creationDate": "2026-12-01T00:00:00Z",
                           "provisioningState": "Succeeded", "dataEndpointHostNames": []}
    if c.inputs.get("dataEndpointEnabled"):
        out["dataEndpointHostNames"] = [f"{name.lower()}.{_location(c)}.data.azurecr.io"]
    return out


def _log_analytics(c: Ctx, rid: str, name: str) -> dict[str, Any]:
    return {"customerId": _guid(c.urn, "customer"), "provisioningState": "Succeeded",
            "createdDate": "2026-12-01T00:00:00Z", "modifiedDate": "2026-12-01T00:00:00Z",
            "etag": f'"{c.hex(16, "etag")}"'}


def _app_insights(c: Ctx, rid: str, name: str) -> dict[str, Any]:
    """App Insights: its instrumentation key and the connection string holding it (the region's ingestion
    endpoints), both readable by whoever reads the resource; the program decides what is secret."""
    key, app, location = _guid(c.urn, "ikey"), _guid(c.urn, "app"), _location(c)
    return {"instrumentationKey": key, "appId": app, "applicationId": name, "tenantId": _sub(c),
            "connectionString": f"InstrumentationKey={key};IngestionEndpoint=https://{location}-1.in."
                                f"applicationinsights.azure.com/;LiveEndpoint=https://{location}.livediagnostics."
                                f"monitor.azure.com/;ApplicationId={app}",
            "provisioningState": "Succeeded", "creationDate": "2026-12-01T00:00:00Z", "etag": f'"{c.hex(16, "etag")}"'}


def _workspace(c: Ctx, rid: str, name: str) -> dict[str, Any]:
    location, workspace_id = _location(c), _guid(c.urn, "workspace")
    c.memo.setdefault(WORKSPACES, {})[rid] = workspace_id
    return {"workspaceId": workspace_id, "tenantId": tenant_id(_sub(c)),
            "discoveryUrl": f"https://{location}.api.azureml.ms/discovery",
            "mlFlowTrackingUri": f"azureml://{location}.api.azureml.ms/mlflow/v1.0{rid}",
            "provisioningState": "Succeeded", "privateLinkCount": 0, "storageHnsEnabled": False,
            "serviceProvisionedResourceGroup": f"azureml-rg-{name}_{workspace_id}"}


def _online_endpoint(c: Ctx, rid: str, name: str) -> dict[str, Any]:
    """A managed online endpoint's URIs: https://{endpoint}.{region}.inference.ml.azure.com/score (Azure ML docs
    "Deploy and score a machine learning model by using an online endpoint")."""
    base = f"https://{name}.{_location(c)}.inference.ml.azure.com"
    return {"scoringUri": f"{base}/score", "swaggerUri": f"{base}/swagger.json", "provisioningState": "Succeeded"}


def _private_endpoint(c: Ctx) -> tuple[str, dict]:
    """A private endpoint: its network interface, with an address from its subnet's range (past the four Azure
    reserves at its start), and the DNS names the target answers at through it."""
    rid, out = _arm("Microsoft.Network/privateEndpoints/{name}", "privateEndpointName", _network)(c)
    subnet = (c.inputs.get("subnet") or {}).get("id", "")
    cidr = ipaddress.ip_network(c.memo.get(SUBNETS, {}).get(subnet, "10.0.0.0/24"), strict=False)
    address = str(cidr[4 + int(c.hex(4, "ip"), 16) % max(1, min(cidr.num_addresses - 5, 200))])
    nic = c.inputs.get("customNetworkInterfaceName") or f"{out['name']}.nic.{_guid(c.urn, 'nic')}"
    group = rid.split("/providers/")[0]
    out["networkInterfaces"] = [{"id": f"{group}/providers/Microsoft.Network/networkInterfaces/{nic}"}]
    connections = c.inputs.get("privateLinkServiceConnections") or c.inputs.get(
        "manualPrivateLinkServiceConnections") or []
    out["customDnsConfigs"] = [{"fqdn": fqdn, "ipAddresses": [address]}
                               for conn in connections for fqdn in _fqdns(c, conn)]
    out["privateLinkServiceConnections"] = [
        {**conn, "privateLinkServiceConnectionState": {"status": "Approved", "description": "Auto-Approved",
                                                       "actionsRequired": "None"}} for conn in connections]
    return rid, out


def _fqdns(c: Ctx, connection: Mapping[str, Any]) -> list[str]:
    """The names a private endpoint's target answers at for its group (Azure docs "Azure Private Endpoint private
    DNS zone values")."""
    target = str(connection.get("privateLinkServiceId", ""))
    name, location = target.rstrip("/").rsplit("/", 1)[-1], _location(c)
    groups = connection.get("groupIds") or []
    group = str(groups[0]) if groups else ""
    if group == "vault":
        return [f"{name}.vault.azure.net"]
    if group in ("blob", "file", "queue", "table", "dfs", "web"):
        return [f"{name}.{group}.core.windows.net"]
    if group == "registry":
        return [f"{name.lower()}.azurecr.io", f"{name.lower()}.{location}.data.azurecr.io"]
    if group == "amlworkspace":
        workspace = c.memo.get(WORKSPACES, {}).get(target, _guid(target))
        return [f"{workspace}.workspace.{location}.api.azureml.ms",
                f"{workspace}.workspace.{location}.cert.api.azureml.ms",
                f"ml-{name.lower()}-{location}-{workspace}.{location}.notebooks.azure.net",
                f"*.{workspace}.inference.{location}.api.azureml.ms"]
    return [f"{name}.privatelink.azure.com"] if name else []


def _extension(path: str, key: str, scope_key: str) -> MockFn:
    """An extension resource: its id is its scope's (`scope_key` input) followed by `path`/{name}."""
    def make(c: Ctx) -> tuple[str, dict]:
        name = _name(c, key)
        return f"{c.inputs.get(scope_key, '')}/providers/{path}/{name}", {
            "name": name, "type": path}
    return make


RESOURCES: dict[str, MockFn] = {
    "azure-native:resources:ResourceGroup": _resource_group,
    "azure-native:network:VirtualNetwork": _arm("Microsoft.Network/virtualNetworks/{name}", "virtualNetworkName",
                                                _network),
    "azure-native:network:Subnet": _subnet,
    "azure-native:network:NetworkSecurityGroup": _arm(
        "Microsoft.Network/networkSecurityGroups/{name}", "networkSecurityGroupName", _network),
    "azure-native:network:PrivateEndpoint": _private_endpoint,
    "azure-native:network:PrivateDnsZoneGroup": _arm(
        "Microsoft.Network/privateEndpoints/{privateEndpointName}/privateDnsZoneGroups/{name}",
        "privateDnsZoneGroupName", lambda c, rid, name: {"etag": f'W/"{_guid(c.urn, "etag")}"',
                                                         "provisioningState": "Succeeded"}, tracked=False),
    "azure-native:privatedns:PrivateZone": _arm(
        "Microsoft.Network/privateDnsZones/{name}", "privateZoneName",
        lambda c, rid, name: {"etag": _guid(c.urn, "etag"), "numberOfRecordSets": 1, "maxNumberOfRecordSets": 25000,
                              "numberOfVirtualNetworkLinks": 0, "maxNumberOfVirtualNetworkLinks": 1000,
                              "provisioningState": "Succeeded", "internalId": c.hex(40, "internal")},
        location="global"),
    "azure-native:privatedns:VirtualNetworkLink": _arm(
        "Microsoft.Network/privateDnsZones/{privateZoneName}/virtualNetworkLinks/{name}", "virtualNetworkLinkName",
        lambda c, rid, name: {"etag": _guid(c.urn, "etag"), "virtualNetworkLinkState": "Completed",
                              "provisioningState": "Succeeded"}, location="global"),
    "azure-native:keyvault:Vault": _arm("Microsoft.KeyVault/vaults/{name}", "vaultName", properties=_vault),
    "azure-native:keyvault:Secret": _secret_mock,
    "azure-native:keyvault:Key": _arm("Microsoft.KeyVault/vaults/{vaultName}/keys/{name}", "keyName", _key,
                                      tracked=False),
    "azure-native:managedidentity:UserAssignedIdentity": _user_identity,
    "azure-native:authorization:RoleAssignment": _role_assignment,
    "azure-native:storage:StorageAccount": _arm("Microsoft.Storage/storageAccounts/{name}", "accountName", _storage),
    "azure-native:storage:BlobServiceProperties": _blob_service,
    "azure-native:containerregistry:Registry": _arm("Microsoft.ContainerRegistry/registries/{name}", "registryName",
                                                    _registry),
    "azure-native:operationalinsights:Workspace": _arm(
        "Microsoft.OperationalInsights/workspaces/{name}", "workspaceName", _log_analytics),
    "azure-native:applicationinsights:Component": _arm("Microsoft.Insights/components/{name}", "resourceName",
                                                       _app_insights),
    "azure-native:machinelearningservices:Workspace": _arm(
        "Microsoft.MachineLearningServices/workspaces/{name}", "workspaceName", _workspace),
    "azure-native:machinelearningservices:OnlineEndpoint": _arm(
        "Microsoft.MachineLearningServices/workspaces/{workspaceName}/onlineEndpoints/{name}", "endpointName",
        properties=_online_endpoint),
    "azure-native:machinelearningservices:OnlineDeployment": _arm(
        "Microsoft.MachineLearningServices/workspaces/{workspaceName}/onlineEndpoints/{endpointName}/deployments/"
        "{name}", "deploymentName", properties=_succeeded),
    "azure-native:machinelearningservices:EnvironmentContainer": _arm(
        "Microsoft.MachineLearningServices/workspaces/{workspaceName}/environments/{name}", "name",
        properties=lambda c, rid, name: {"provisioningState": "Succeeded", "isArchived": False}, tracked=False),
    "azure-native:machinelearningservices:EnvironmentVersion": _arm(
        "Microsoft.MachineLearningServices/workspaces/{workspaceName}/environments/{name}/versions/{version}", "name",
        properties=lambda c, rid, name: {"provisioningState": "Succeeded", "environmentType": "UserCreated",
                                         "isArchived": False}, tracked=False),
    "azure-native:monitor:AutoscaleSetting": _arm("Microsoft.Insights/autoscalesettings/{name}",
                                                  "autoscaleSettingName"),
    "azure-native:monitor:MetricAlert": _arm("Microsoft.Insights/metricAlerts/{name}", "ruleName",
                                             lambda c, rid, name: {"isMigrated": False,
                                                                   "lastUpdatedTime": "2026-12-01T00:00:00Z"},
                                             location="global"),
    "azure-native:monitor:DiagnosticSetting": _extension("Microsoft.Insights/diagnosticSettings", "name",
                                                         "resourceUri"),
}


def call(token: str, args: Mapping[str, Any], ctx: MockCallCtx) -> dict[str, Any] | None:
    """The result of the azure-native function `token` in subscription `ctx.project`; None: not mocked."""
    subscription = ctx.project or PREVIEW_SUBSCRIPTION
    if token == "azure-native:authorization:getClientConfig":
        # Who deploys: the signed-in principal (a service principal in CI), in the subscription's tenant.
        return {"clientId": _guid("client", subscription), "objectId": _guid("object", subscription),
                "subscriptionId": subscription, "tenantId": tenant_id(subscription)}
    if token == "azure-native:machinelearningservices:listOnlineEndpointKeys":
        # Key auth: two keys, ARM's 32-character base64 form; placeholders the preview never shows as real.
        seed = f"{args.get('resourceGroupName')}/{args.get('workspaceName')}/{args.get('endpointName')}"
        return {"primaryKey": f"preview{hashlib.sha256((seed + 'a').encode()).hexdigest()[:25]}",
                "secondaryKey": f"preview{hashlib.sha256((seed + 'b').encode()).hexdigest()[:25]}"}
    return None
