"""Which changes replace the `azure` platform's resources (components/replacement.py), from pulumi-azure-native's
source, each rule citing it.

azure-native is not bridged from Terraform and its SDK carries no replace-on-change marks (the Python SDK passes
`replace_on_changes` for no type used here: only containerservice's ManagedCluster mentions it): the provider decides
in its Diff, from its metadata (`NOTE`). Three things replace a resource there:
1. every parameter of the resource's ARM PUT path: the resource group, the resource's own name and its parents'
   names (`vaultName` of a secret), the `scope` of an extension resource;
2. a body property whose API specification marks it `x-ms-mutability` [create, read] without update (top-level, or
   one level down in an object type, not inside a discriminated union such as an online deployment's
   `properties`);
3. the provider's own force-new list (provider/pkg/gen/replacement.go `forceNewMap`): ResourceGroup.location,
   VirtualNetwork.location, StorageAccount.location and isHnsEnabled, RoleAssignment.principalId and scope.

Read through `Platform.replacement_rules()` of the `azure` platform (components/targets/azure.py).
"""

from __future__ import annotations

from ..replacement import Rule

NOTE = ("pulumi-azure-native decides replacements in its Diff (provider/pkg/provider/diff.go calculateDetailedDiff): "
        "every parameter of the resource's ARM PUT path (resource group, the resource's and its parents' names, an "
        "extension's scope) and every body property marked force-new in its metadata (x-ms-mutability without "
        "`update` in the API specification, provider/pkg/gen/properties.go forceNew, plus provider/pkg/gen/"
        "replacement.go forceNewMap) replace the resource")

_DIFF = "pulumi-azure-native provider/pkg/provider/diff.go calculateDetailedDiff: path parameters "
_FORCE_NEW_MAP = "provider/pkg/gen/replacement.go forceNewMap"
_LOCATION = ("location: a tracked resource's location is create-only in the ARM specifications that use the common "
             "TrackedResource (x-ms-mutability [read, create], force-new); ARM refuses to move a resource anyway")

RULES: dict[str, Rule] = {
    # --- Resource group, network, private DNS
    "azure-native:resources:ResourceGroup": Rule(
        replace=("resourceGroupName", "location"),
        risk="everything in the group is deleted with it: the whole environment (vault, storage, workspace, "
             "endpoints) goes",
        removal="everything in the group is deleted with it",
        source=f"{_DIFF}(/subscriptions/{{subscriptionId}}/resourcegroups/{{resourceGroupName}}); location: "
               f"{_FORCE_NEW_MAP} Resources.ResourceGroup"),
    "azure-native:network:VirtualNetwork": Rule(
        replace=("resourceGroupName", "virtualNetworkName", "location"),
        risk="downtime: its subnets and the private endpoints in them are recreated; clients inside lose the "
             "services' private addresses until they are",
        removal="the private endpoints in it lose their network: the vault, storage, registry and workspace stop "
                "answering privately",
        updates=(("addressSpace", "ARM refuses to remove a range a subnet still uses"),),
        source=f"{_DIFF}(virtualNetworks/{{virtualNetworkName}}); location: {_FORCE_NEW_MAP} Network.VirtualNetwork"),
    "azure-native:network:Subnet": Rule(
        replace=("resourceGroupName", "virtualNetworkName", "subnetName"),
        risk="downtime: the private endpoints in it are deleted first (ARM refuses to delete a subnet in use), and "
             "get new addresses",
        removal="ARM refuses to delete a subnet its private endpoints still use",
        updates=(("addressPrefix", "ARM refuses to change a subnet's range while it holds endpoints"),),
        source=f"{_DIFF}(virtualNetworks/{{virtualNetworkName}}/subnets/{{subnetName}}); {_FORCE_NEW_MAP} "
               "Network.Subnet: no force-new property"),
    "azure-native:network:NetworkSecurityGroup": Rule(
        replace=("resourceGroupName", "networkSecurityGroupName"), maybe=("location",), complete=False,
        note="a new group is created and the subnet moved to it; for a moment the subnet may have none",
        updates=(("securityRules", "rules are changed in place: traffic the new rules deny stops at once"),),
        source=f"{_DIFF}(networkSecurityGroups/{{networkSecurityGroupName}}); {_LOCATION} (not re-read for this "
               "type: verify)"),
    "azure-native:network:PrivateEndpoint": Rule(
        replace=("resourceGroupName", "privateEndpointName"),
        maybe=("location", "subnet", "customNetworkInterfaceName"), complete=False,
        risk="a private address changes: the service is unreachable from the network until the new endpoint's DNS "
             "records are in place",
        removal="the service (vault, storage, registry, workspace) is no longer reachable from the network: its "
                "public access is off",
        updates=(("privateLinkServiceConnections", "ARM refuses to change an endpoint's target or group: replace it "
                                                   "by renaming"),),
        source=f"{_DIFF}(privateEndpoints/{{privateEndpointName}}); subnet, location and the network interface's "
               "name: ARM refuses to change them on an existing endpoint (not a force-new mark: the update fails; "
               "verify)"),
    "azure-native:network:PrivateDnsZoneGroup": Rule(
        replace=("resourceGroupName", "privateEndpointName", "privateDnsZoneGroupName"),
        note="the endpoint's DNS records are removed and written again",
        removal="the service's private name no longer resolves to its endpoint: clients reach its public address, "
                "which is closed",
        source=f"{_DIFF}(privateEndpoints/{{privateEndpointName}}/privateDnsZoneGroups/{{privateDnsZoneGroupName}})"),
    "azure-native:privatedns:PrivateZone": Rule(
        replace=("resourceGroupName", "privateZoneName"),
        risk="its records go with it: the services' private names stop resolving until the endpoints' zone groups "
             "write them again",
        removal="the services' private names stop resolving",
        source=f"{_DIFF}(privateDnsZones/{{privateZoneName}}); location is always `global`"),
    "azure-native:privatedns:VirtualNetworkLink": Rule(
        replace=("resourceGroupName", "privateZoneName", "virtualNetworkLinkName"), maybe=("virtualNetwork",),
        complete=False,
        note="the zone is unlinked, then linked again: its names do not resolve in the network meanwhile",
        removal="the zone's names no longer resolve in the network",
        source=f"{_DIFF}(privateDnsZones/{{privateZoneName}}/virtualNetworkLinks/{{virtualNetworkLinkName}}); "
               "virtualNetwork: ARM refuses to relink a link to another network (verify)"),
    # --- Key Vault
    "azure-native:keyvault:Vault": Rule(
        replace=("resourceGroupName", "vaultName"), maybe=("location",), complete=False,
        risk="data loss: the vault's keys and secrets go with it (soft-deleted, and with purge protection the name "
             "stays taken for the retention period, so a replacement under the same name fails); what the key "
             "encrypts becomes unreadable",
        removal="data loss: the vault's keys and secrets go with it; what the key encrypts becomes unreadable",
        updates=(("properties.enablePurgeProtection", "can be turned on, never off"),
                 ("properties.softDeleteRetentionInDays", "ARM refuses to change it once set"),
                 ("properties.tenantId", "every access breaks until identities of the new tenant are granted")),
        source=f"{_DIFF}(vaults/{{vaultName}}); {_LOCATION} (not re-read for this type: verify)"),
    "azure-native:keyvault:Secret": Rule(
        replace=("resourceGroupName", "vaultName", "secretName"),
        risk="the secret's URI changes and the old one is soft-deleted: readers holding the old URI fail; a "
             "replacement under the same name conflicts with the deleted one until it is purged",
        removal="readers of the secret (the deployment's Hugging Face token) fail at their next start",
        updates=(("properties.value", "a new version of the secret: readers of the versionless URI get it at their "
                                      "next read"),),
        source=f"{_DIFF}(vaults/{{vaultName}}/secrets/{{secretName}})"),
    "azure-native:keyvault:Key": Rule(
        replace=("resourceGroupName", "vaultName", "keyName"),
        risk="data loss: the storage account and the registry encrypt with this key; a new key cannot decrypt what "
             "the old one wrapped",
        removal="data loss: what the key encrypts becomes unreadable once it is purged",
        updates=(("properties", "ARM's Keys CreateIfNotExist writes only a new key's first version: a changed "
                                "type, size or operation list on an existing key is not applied (the rotation "
                                "policy is)"),),
        source=f"{_DIFF}(vaults/{{vaultName}}/keys/{{keyName}})"),
    # --- Identity
    "azure-native:managedidentity:UserAssignedIdentity": Rule(
        replace=("resourceGroupName", "resourceName"), maybe=("location",), complete=False,
        risk="a new principal: its role assignments and the services that encrypt as it (storage, registry) must "
             "be granted again; until then they cannot reach the key",
        removal="the services that act as it lose access to the key",
        source=f"{_DIFF}(userAssignedIdentities/{{resourceName}}); {_LOCATION} (not re-read for this type: "
               "verify)"),
    "azure-native:authorization:RoleAssignment": Rule(
        replace=("scope", "roleAssignmentName", "principalId"), maybe=("roleDefinitionId",),
        note="the grant is removed and made again: a moment without access",
        removal="the identity loses that access (a deployment cannot read its token or pull its image)",
        source=f"{_DIFF}({{scope}}/providers/Microsoft.Authorization/roleAssignments/{{roleAssignmentName}}); "
               f"principalId and scope: {_FORCE_NEW_MAP} Authorization.RoleAssignment; roleDefinitionId: not in that "
               "list, and ARM refuses to change an existing assignment (RoleAssignmentUpdateNotPermitted): either a "
               "replacement or a failed update (verify)"),
    # --- Storage and registry
    "azure-native:storage:StorageAccount": Rule(
        replace=("resourceGroupName", "accountName", "location", "isHnsEnabled"), complete=False,
        risk="data loss: the account's blobs and files (the workspace's artifacts) go with it",
        removal="data loss: the account's blobs and files (the workspace's artifacts) go with it",
        updates=(("sku", "a change of redundancy is a conversion ARM may refuse (ZRS to LRS needs a migration)"),
                 ("kind", "only Storage to StorageV2 is an in-place upgrade")),
        source=f"{_DIFF}(storageAccounts/{{accountName}}); location and isHnsEnabled: {_FORCE_NEW_MAP} "
               "Storage.StorageAccount"),
    "azure-native:storage:BlobServiceProperties": Rule(
        replace=("resourceGroupName", "accountName", "blobServicesName"),
        note="the account's blob service always exists: its settings are written again",
        updates=(("deleteRetentionPolicy", "applies to blobs deleted from then on"),
                 ("containerDeleteRetentionPolicy", "applies to containers deleted from then on")),
        source=f"{_DIFF}(storageAccounts/{{accountName}}/blobServices/{{BlobServicesName}}, always `default`)"),
    "azure-native:containerregistry:Registry": Rule(
        replace=("resourceGroupName", "registryName"), maybe=("location", "encryption"), complete=False,
        risk="the registry's images go with it and the login server name is released: deployments pulling from it "
             "fail until images are pushed again",
        removal="the registry's images go with it: deployments that pull from it fail to start",
        updates=(("sku", "Premium is needed for private endpoints and the customer-managed key"),),
        source=f"{_DIFF}(registries/{{registryName}}); encryption: a registry's customer-managed key can only be set "
               f"at creation (ACR docs \"Encrypt registry using a customer-managed key\"; verify the mark); "
               f"{_LOCATION} (not re-read for this type: verify)"),
    # --- Monitoring
    "azure-native:operationalinsights:Workspace": Rule(
        replace=("resourceGroupName", "workspaceName"), maybe=("location",), complete=False,
        risk="data loss: the logs collected so far stay with the deleted workspace (recoverable for 14 days)",
        removal="data loss: the logs collected so far go with it",
        source=f"{_DIFF}(workspaces/{{workspaceName}}); {_LOCATION} (not re-read for this type: verify)"),
    "azure-native:applicationinsights:Component": Rule(
        replace=("resourceGroupName", "resourceName"), maybe=("location", "kind", "applicationType"),
        complete=False,
        note="a new instrumentation key and connection string: deployments send telemetry to the new one after "
             "their next update",
        source=f"{_DIFF}(components/{{resourceName}}); {_FORCE_NEW_MAP} Insights.Component: \"covered by "
               "x-ms-mutability\" (the create-only properties are not re-read for this rule: verify)"),
    "azure-native:monitor:DiagnosticSetting": Rule(
        replace=("resourceUri", "name"),
        note="the setting is removed and written again: logs of the moment between are not exported",
        source=f"{_DIFF}({{resourceUri}}/providers/Microsoft.Insights/diagnosticSettings/{{name}})"),
    "azure-native:monitor:AutoscaleSetting": Rule(
        replace=("resourceGroupName", "autoscaleSettingName"), maybe=("location",), complete=False,
        note="the deployment keeps its instance count while the setting is recreated",
        source=f"{_DIFF}(autoscalesettings/{{autoscaleSettingName}}); {_LOCATION} (verify)"),
    "azure-native:monitor:MetricAlert": Rule(
        replace=("resourceGroupName", "ruleName"),
        note="the alert's history starts again",
        source=f"{_DIFF}(metricAlerts/{{ruleName}})"),
    # --- Azure Machine Learning
    "azure-native:machinelearningservices:Workspace": Rule(
        replace=("resourceGroupName", "workspaceName"),
        maybe=("location", "hbiWorkspace", "encryption", "storageAccount", "keyVault", "managedNetwork.isolationMode"),
        complete=False,
        risk="downtime and new addresses: the workspace's online endpoints and deployments go with it, and every "
             "scoring URI changes when they are recreated; its registered environments and history are lost",
        removal="downtime: every online endpoint in it stops serving",
        updates=(("managedNetwork.outboundRules", "the managed network applies new outbound rules in place"),
                 ("publicNetworkAccess", "applies at once: clients outside the network are let in or shut out")),
        source=f"{_DIFF}(workspaces/{{workspaceName}}); hbiWorkspace, encryption, storageAccount and keyVault can "
               "only be set when the workspace is created (Azure ML docs \"Customer-managed keys\" and \"Manage "
               "workspaces\"; the x-ms-mutability marks not re-read: verify); a managed network's isolation mode "
               "cannot be relaxed once it is on (Azure ML docs \"Workspace managed network isolation\")"),
    "azure-native:machinelearningservices:OnlineEndpoint": Rule(
        replace=("resourceGroupName", "workspaceName", "endpointName"), maybe=("location", "properties.authMode"),
        complete=False,
        risk="downtime and a new scoring URI: the endpoint's deployments are deleted with it; clients of the old "
             "URI fail until they move",
        removal="downtime: the endpoint stops serving and its scoring URI goes",
        updates=(("properties.traffic", "applies at once: requests move between deployments"),
                 ("properties.publicNetworkAccess", "applies at once")),
        source=f"{_DIFF}(workspaces/{{workspaceName}}/onlineEndpoints/{{endpointName}}); authMode: settable on "
               "update in recent API versions (verify); the scoring URI is https://{endpointName}.{region}."
               "inference.ml.azure.com/score"),
    "azure-native:machinelearningservices:OnlineDeployment": Rule(
        replace=("resourceGroupName", "workspaceName", "endpointName", "deploymentName"), maybe=("location",),
        complete=False,
        risk="downtime: the deployment is deleted before the new one is ready, unless another deployment takes the "
             "endpoint's traffic meanwhile (blue/green)",
        removal="downtime when it holds the endpoint's traffic",
        note="azure-native does not look inside `properties` (a discriminated union: Managed / Kubernetes), so a "
             "change there is always an update; ARM rolls the instances to it, or refuses it",
        updates=(("properties.instanceType", "ARM refuses to change a managed deployment's instance type: a new "
                                             "deployment (a new name) is the way, traffic moved to it"),
                 ("properties.environmentId", "a rolling update of the instances to the new image"),
                 ("properties.environmentVariables", "a rolling update of the instances"),
                 ("sku.capacity", "instances are added or removed in place (autoscale may own it)")),
        source=f"{_DIFF}(onlineEndpoints/{{endpointName}}/deployments/{{deploymentName}}); properties is a oneOf "
               "union, which findForceNew skips; instanceType: Azure ML docs \"Perform safe rollout of new "
               "deployments\" (not re-read for this rule: verify)"),
    "azure-native:machinelearningservices:EnvironmentContainer": Rule(
        replace=("resourceGroupName", "workspaceName", "name"),
        note="the environment's name in the workspace changes; its versions go with it",
        source=f"{_DIFF}(workspaces/{{workspaceName}}/environments/{{name}})"),
    "azure-native:machinelearningservices:EnvironmentVersion": Rule(
        replace=("resourceGroupName", "workspaceName", "name", "version"), complete=False,
        note="a new version: deployments name an environment version, so those that use it are updated to the new "
             "one and roll their instances",
        updates=(("properties", "ARM refuses changes to an existing version (asset versions are immutable): bump "
                                "`version` instead, which replaces it"),),
        source=f"{_DIFF}(environments/{{name}}/versions/{{version}}); immutable versions: Azure ML docs \"Manage "
               "environments\" (not re-read for this rule: verify)"),
}

PREFIXES: tuple[tuple[str, Rule], ...] = ()
