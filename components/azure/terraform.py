"""The `azure` platform's Pulumi types as Terraform resources, for `selfhost export` (components/terraform.py).

pulumi-azure-native is not bridged from Terraform: it is generated from Azure Resource Manager's API specifications,
and its inputs are ARM's request bodies (settings often under `properties`, booleans as "Enabled"/"Disabled"
strings, the resource's name as `<kind>Name`). So each mapped type has an `adapt` that rewrites the inputs into the
arguments of the matching terraform-provider-azurerm (4.x) resource, the ones scanners such as Checkov read; an ARM
setting azurerm has no argument for is left out. The engine (selfhost/export.py) then nests the blocks.

Read through `Platform.terraform()` of the `azure` platform (components/targets/azure.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from ..terraform import TfType

PROVIDERS = {"azurerm": "registry.terraform.io/hashicorp/azurerm"}

Inputs = dict[str, Any]


def _some(**values: Any) -> Inputs:
    """The arguments that have a value (None: not set, left to azurerm's default)."""
    return {k: v for k, v in values.items() if v is not None}


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _enabled(value: Any) -> bool | None:
    """ARM's "Enabled"/"Disabled" (any case) as a boolean; None when unset."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    return str(value).lower() == "enabled"


def _not(value: Any) -> bool | None:
    return None if value is None else not value


def _date(value: Any) -> str | None:
    """ARM's Key Vault attribute times (`exp`, `nbf`: seconds since the epoch) as azurerm's RFC 3339 dates."""
    if value is None or isinstance(value, str):
        return value
    return datetime.fromtimestamp(int(value), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _common(i: Inputs, name_key: str, location: bool = True) -> Inputs:
    """name (the ARM name input; absent when azure-native auto-names it), resource_group_name, location, tags."""
    return _some(name=i.get(name_key), resource_group_name=i.get("resourceGroupName"),
                 location=i.get("location") if location else None, tags=i.get("tags"))


def _identity(value: Any) -> Inputs | None:
    """An ARM managed identity ({type, userAssignedIdentities: {id: {}}}) as azurerm's identity block
    ({type: "SystemAssigned, UserAssigned", identity_ids})."""
    identity = _obj(value)
    if not identity:
        return None
    kind = str(identity.get("type", "")).replace(",", ", ").replace("  ", " ")
    assigned = identity.get("userAssignedIdentities")
    ids = list(assigned) if isinstance(assigned, (Mapping, list, tuple)) else []
    return _some(type=kind, identity_ids=ids or None)


# ---------------------------------------------------------------------------------------------------------
# Resource group, network, private DNS


def _resource_group(i: Inputs) -> Inputs:
    return _some(name=i.get("resourceGroupName"), location=i.get("location"), managed_by=i.get("managedBy"),
                 tags=i.get("tags"))


def _virtual_network(i: Inputs) -> Inputs:
    ddos = _obj(i.get("ddosProtectionPlan"))
    return {**_common(i, "virtualNetworkName"), **_some(
        address_space=_list(_obj(i.get("addressSpace")).get("addressPrefixes")) or None,
        dns_servers=_list(_obj(i.get("dhcpOptions")).get("dnsServers")) or None,
        flow_timeout_in_minutes=i.get("flowTimeoutInMinutes"),
        ddos_protection_plan={"id": ddos.get("id"), "enable": bool(i.get("enableDdosProtection"))} if ddos else None,
        encryption={"enforcement": _obj(i.get("encryption")).get("enforcement")} if i.get("encryption") else None,
        subnet=[_some(name=s.get("name"), address_prefixes=_prefixes(s),
                      security_group=_obj(s.get("networkSecurityGroup")).get("id"))
                for s in _list(i.get("subnets"))] or None)}


def _prefixes(subnet: Mapping[str, Any]) -> list[str] | None:
    prefixes = _list(subnet.get("addressPrefixes")) or ([subnet["addressPrefix"]] if subnet.get("addressPrefix")
                                                         else [])
    return prefixes or None


def _subnet(i: Inputs) -> Inputs:
    """A subnet. Its network security group (ARM: the subnet's `networkSecurityGroup.id`) is azurerm's separate
    azurerm_subnet_network_security_group_association; kept here as `network_security_group_id`, a reference to the
    group, so a scanner's graph links the two (Checkov CKV2_AZURE_31 asks for that link)."""
    policies = i.get("privateLinkServiceNetworkPolicies")
    return _some(
        name=i.get("subnetName") or i.get("name"), resource_group_name=i.get("resourceGroupName"),
        virtual_network_name=i.get("virtualNetworkName"), address_prefixes=_prefixes(i),
        service_endpoints=[s.get("service") for s in _list(i.get("serviceEndpoints"))] or None,
        delegation=[{"name": d.get("name"), "service_delegation": _some(
            name=d.get("serviceName"), actions=d.get("actions"))} for d in _list(i.get("delegations"))] or None,
        private_endpoint_network_policies=i.get("privateEndpointNetworkPolicies"),
        private_link_service_network_policies_enabled=_enabled(policies),
        default_outbound_access_enabled=i.get("defaultOutboundAccess"),
        network_security_group_id=_obj(i.get("networkSecurityGroup")).get("id"),
        route_table_id=_obj(i.get("routeTable")).get("id"),
        nat_gateway_id=_obj(i.get("natGateway")).get("id"))


_RULE_KEYS = ("name", "description", "protocol", "sourcePortRange", "sourcePortRanges", "destinationPortRange",
              "destinationPortRanges", "sourceAddressPrefix", "sourceAddressPrefixes", "destinationAddressPrefix",
              "destinationAddressPrefixes", "access", "priority", "direction")


def _security_rule(rule: Mapping[str, Any]) -> Inputs:
    return {k: rule[k] for k in _RULE_KEYS if rule.get(k) is not None}


def _network_security_group(i: Inputs) -> Inputs:
    return {**_common(i, "networkSecurityGroupName"),
            **_some(security_rule=[_security_rule(r) for r in _list(i.get("securityRules"))] or None)}


def _private_endpoint(i: Inputs) -> Inputs:
    connections = [(c, False) for c in _list(i.get("privateLinkServiceConnections"))] + [
        (c, True) for c in _list(i.get("manualPrivateLinkServiceConnections"))]
    return {**_common(i, "privateEndpointName"), **_some(
        subnet_id=_obj(i.get("subnet")).get("id"),
        custom_network_interface_name=i.get("customNetworkInterfaceName"),
        private_service_connection=[_some(
            name=c.get("name"), private_connection_resource_id=c.get("privateLinkServiceId"),
            subresource_names=c.get("groupIds"), is_manual_connection=manual, request_message=c.get("requestMessage"))
            for c, manual in connections] or None,
        ip_configuration=[_some(name=c.get("name"), private_ip_address=c.get("privateIPAddress"),
                                subresource_name=c.get("groupId"), member_name=c.get("memberName"))
                          for c in _list(i.get("ipConfigurations"))] or None)}


def _private_dns_zone(i: Inputs) -> Inputs:
    return _common(i, "privateZoneName", location=False)


def _dns_zone_link(i: Inputs) -> Inputs:
    return {**_common(i, "virtualNetworkLinkName", location=False), **_some(
        private_dns_zone_name=i.get("privateZoneName"), virtual_network_id=_obj(i.get("virtualNetwork")).get("id"),
        registration_enabled=i.get("registrationEnabled"), resolution_policy=i.get("resolutionPolicy"))}


# ---------------------------------------------------------------------------------------------------------
# Key Vault


_PERMISSIONS = {"keys": "key_permissions", "secrets": "secret_permissions", "certificates": "certificate_permissions",
                "storage": "storage_permissions"}


def _network_acls(acls: Mapping[str, Any]) -> Inputs | None:
    if not acls:
        return None
    return _some(default_action=acls.get("defaultAction"), bypass=acls.get("bypass"),
                 ip_rules=[r.get("value") for r in _list(acls.get("ipRules"))] or None,
                 virtual_network_subnet_ids=[r.get("id") for r in _list(acls.get("virtualNetworkRules"))] or None)


def _key_vault(i: Inputs) -> Inputs:
    """A vault: ARM's `properties` (enablePurgeProtection, softDeleteRetentionInDays, enableRbacAuthorization,
    publicNetworkAccess, networkAcls, sku) as azurerm_key_vault's arguments. ARM's soft delete cannot be turned off
    any more (azurerm 3.0 removed `soft_delete_enabled`); an explicit `enableSoftDelete: false` is kept so a scanner
    sees it. ARM's defaults where unset: public network access on, 90 days of soft delete."""
    p = _obj(i.get("properties"))
    return {**_common(i, "vaultName"), **_some(
        tenant_id=p.get("tenantId"), sku_name=_obj(p.get("sku")).get("name"),
        rbac_authorization_enabled=p.get("enableRbacAuthorization"),
        purge_protection_enabled=p.get("enablePurgeProtection"),
        soft_delete_enabled=False if p.get("enableSoftDelete") is False else None,
        soft_delete_retention_days=p.get("softDeleteRetentionInDays", 90),
        public_network_access_enabled=_enabled(p.get("publicNetworkAccess", "Enabled")),
        enabled_for_deployment=p.get("enabledForDeployment"),
        enabled_for_disk_encryption=p.get("enabledForDiskEncryption"),
        enabled_for_template_deployment=p.get("enabledForTemplateDeployment"),
        network_acls=_network_acls(_obj(p.get("networkAcls"))),
        access_policy=[{"tenant_id": a.get("tenantId"), "object_id": a.get("objectId"), **{
            _PERMISSIONS[k]: v for k, v in _obj(a.get("permissions")).items() if k in _PERMISSIONS}}
            for a in _list(p.get("accessPolicies"))] or None)}


def _key_vault_secret(i: Inputs) -> Inputs:
    """A secret: its value stays the preview's secret placeholder; its vault is named (`vaultName`), where azurerm
    takes the vault's id."""
    p = _obj(i.get("properties"))
    attributes = _obj(p.get("attributes"))
    return _some(name=i.get("secretName"), value=p.get("value"), content_type=p.get("contentType"),
                 expiration_date=_date(attributes.get("exp")), not_before_date=_date(attributes.get("nbf")),
                 tags=i.get("tags"))


def _rotation_policy(policy: Mapping[str, Any]) -> Inputs | None:
    """ARM's rotation policy ({attributes: {expiryTime}, lifetimeActions: [{action: {type}, trigger}]}) as azurerm's
    rotation_policy block (expire_after, notify_before_expiry, automatic {time_after_creation, time_before_expiry})."""
    if not policy:
        return None
    actions = {str(_obj(a.get("action")).get("type", "")).lower(): _obj(a.get("trigger"))
               for a in _list(policy.get("lifetimeActions"))}
    rotate, notify = actions.get("rotate"), actions.get("notify")
    return _some(expire_after=_obj(policy.get("attributes")).get("expiryTime"),
                 notify_before_expiry=notify.get("timeBeforeExpiry") if notify else None,
                 automatic=_some(time_after_creation=rotate.get("timeAfterCreate"),
                                 time_before_expiry=rotate.get("timeBeforeExpiry")) if rotate else None)


def _key_vault_key(i: Inputs) -> Inputs:
    p = _obj(i.get("properties"))
    attributes = _obj(p.get("attributes"))
    return _some(name=i.get("keyName"), key_type=p.get("kty"), key_size=p.get("keySize"), curve=p.get("curveName"),
                 key_opts=p.get("keyOps"), expiration_date=_date(attributes.get("exp")),
                 not_before_date=_date(attributes.get("nbf")),
                 rotation_policy=_rotation_policy(_obj(p.get("rotationPolicy"))), tags=i.get("tags"))


# ---------------------------------------------------------------------------------------------------------
# Identity


def _user_assigned_identity(i: Inputs) -> Inputs:
    return _common(i, "resourceName")


def _role_assignment(i: Inputs) -> Inputs:
    return _some(name=i.get("roleAssignmentName"), scope=i.get("scope"), role_definition_id=i.get("roleDefinitionId"),
                 principal_id=i.get("principalId"), principal_type=i.get("principalType"),
                 condition=i.get("condition"), condition_version=i.get("conditionVersion"),
                 description=i.get("description"),
                 delegated_managed_identity_resource_id=i.get("delegatedManagedIdentityResourceId"))


# ---------------------------------------------------------------------------------------------------------
# Storage and registry


def _bypass(value: Any) -> list[str] | None:
    """ARM's bypass ("AzureServices, Logging") as azurerm's set of strings."""
    if value is None:
        return None
    return [b.strip() for b in str(value).split(",") if b.strip() and b.strip() != "None"]


def _key_id(vault_uri: Any, name: Any, version: Any = None) -> str | None:
    """A Key Vault key's id (https://{vault}.vault.azure.net/keys/{name}[/{version}]): azurerm's key_vault_key_id."""
    if not vault_uri or not name:
        return None
    return f"{str(vault_uri).rstrip('/')}/keys/{name}" + (f"/{version}" if version else "")


def _storage_account(i: Inputs) -> Inputs:
    """A storage account: ARM's `sku.name` (Standard_ZRS) is azurerm's tier and replication type; its `encryption`
    with a Key Vault key is azurerm's customer_managed_key. ARM's default where unset: public network access on
    (azurerm's too); HTTPS only since API 2019-04-01."""
    tier, _, replication = str(_obj(i.get("sku")).get("name", "")).partition("_")
    encryption = _obj(i.get("encryption"))
    vault = _obj(encryption.get("keyVaultProperties"))
    rules = _obj(i.get("networkRuleSet"))
    cmk = None
    if str(encryption.get("keySource", "")).lower() == "microsoft.keyvault":
        cmk = _some(key_vault_key_id=_key_id(vault.get("keyVaultUri"), vault.get("keyName"), vault.get("keyVersion")),
                    user_assigned_identity_id=_obj(encryption.get("encryptionIdentity")).get(
                        "encryptionUserAssignedIdentity"))
    sas = _obj(i.get("sasPolicy"))
    return {**_common(i, "accountName"), **_some(
        account_kind=i.get("kind"), account_tier=tier or None, account_replication_type=replication or None,
        access_tier=i.get("accessTier"),
        public_network_access_enabled=_enabled(i.get("publicNetworkAccess", "Enabled")),
        allow_nested_items_to_be_public=i.get("allowBlobPublicAccess"),
        min_tls_version=i.get("minimumTlsVersion"),
        https_traffic_only_enabled=i.get("enableHttpsTrafficOnly", True),
        shared_access_key_enabled=i.get("allowSharedKeyAccess"),
        default_to_oauth_authentication=i.get("defaultToOAuthAuthentication"),
        cross_tenant_replication_enabled=i.get("allowCrossTenantReplication"),
        allowed_copy_scope=i.get("allowedCopyScope"), is_hns_enabled=i.get("isHnsEnabled"),
        nfsv3_enabled=i.get("enableNfsV3"), sftp_enabled=i.get("isSftpEnabled"),
        local_user_enabled=i.get("isLocalUserEnabled"),
        large_file_share_enabled=_enabled(i.get("largeFileSharesState")),
        infrastructure_encryption_enabled=encryption.get("requireInfrastructureEncryption"),
        network_rules=_some(default_action=rules.get("defaultAction"), bypass=_bypass(rules.get("bypass")),
                            ip_rules=[r.get("iPAddressOrRange") or r.get("value")
                                      for r in _list(rules.get("ipRules"))] or None,
                            virtual_network_subnet_ids=[r.get("virtualNetworkResourceId") or r.get("id")
                                                        for r in _list(rules.get("virtualNetworkRules"))] or None)
        if rules else None,
        customer_managed_key=cmk or None,
        sas_policy=_some(expiration_period=sas.get("sasExpirationPeriod"),
                         expiration_action=sas.get("expirationAction")) if sas else None,
        identity=_identity(i.get("identity")))}


def _status(value: Any) -> bool | None:
    """An ACR policy's status ("enabled"/"disabled")."""
    status = _obj(value).get("status")
    return None if status is None else str(status).lower() == "enabled"


def _container_registry(i: Inputs) -> Inputs:
    """A registry: ARM's `policies` are azurerm's flat *_policy_enabled / retention_policy_in_days arguments, its
    `zoneRedundancy` ("Enabled") zone_redundancy_enabled, its Key Vault encryption the encryption block."""
    policies = _obj(i.get("policies"))
    retention = _obj(policies.get("retentionPolicy"))
    rules = _obj(i.get("networkRuleSet"))
    encryption = _obj(i.get("encryption"))
    vault = _obj(encryption.get("keyVaultProperties"))
    return {**_common(i, "registryName"), **_some(
        sku=_obj(i.get("sku")).get("name"), admin_enabled=i.get("adminUserEnabled"),
        public_network_access_enabled=_enabled(i.get("publicNetworkAccess", "Enabled")),
        anonymous_pull_enabled=i.get("anonymousPullEnabled"), data_endpoint_enabled=i.get("dataEndpointEnabled"),
        zone_redundancy_enabled=_enabled(i.get("zoneRedundancy")),
        network_rule_bypass_option=i.get("networkRuleBypassOptions"),
        network_rule_set=_some(default_action=rules.get("defaultAction"), ip_rule=[
            _some(action=r.get("action", "Allow"), ip_range=r.get("iPAddressOrRange") or r.get("value"))
            for r in _list(rules.get("ipRules"))] or None) if rules else None,
        export_policy_enabled=_status(policies.get("exportPolicy")),
        quarantine_policy_enabled=_status(policies.get("quarantinePolicy")),
        trust_policy_enabled=_status(policies.get("trustPolicy")),
        retention_policy_in_days=retention.get("days") if _status(retention) else None,
        encryption=_some(key_vault_key_id=vault.get("keyIdentifier"), identity_client_id=vault.get("identity"))
        if str(encryption.get("status", "")).lower() == "enabled" else None,
        identity=_identity(i.get("identity")))}


# ---------------------------------------------------------------------------------------------------------
# Azure Machine Learning, monitoring


def _machine_learning_workspace(i: Inputs) -> Inputs:
    """A workspace: its associated resources (ARM ids) are azurerm's *_id arguments, `hbiWorkspace`
    high_business_impact, `managedNetwork.isolationMode` managed_network's isolation_mode; ARM's default where unset:
    public network access on. Outbound rules are azurerm's separate azurerm_machine_learning_workspace_network_
    outbound_rule_* resources: left out."""
    encryption = _obj(i.get("encryption"))
    vault = _obj(encryption.get("keyVaultProperties"))
    network = _obj(i.get("managedNetwork"))
    serverless = _obj(i.get("serverlessComputeSettings"))
    return {**_common(i, "workspaceName"), **_some(
        application_insights_id=i.get("applicationInsights"), key_vault_id=i.get("keyVault"),
        storage_account_id=i.get("storageAccount"), container_registry_id=i.get("containerRegistry"),
        public_network_access_enabled=_enabled(i.get("publicNetworkAccess", "Enabled")),
        image_build_compute_name=i.get("imageBuildCompute"), description=i.get("description"),
        friendly_name=i.get("friendlyName"), high_business_impact=i.get("hbiWorkspace"),
        primary_user_assigned_identity=i.get("primaryUserAssignedIdentity"),
        v1_legacy_mode_enabled=i.get("v1LegacyMode"), sku_name=_obj(i.get("sku")).get("name"), kind=i.get("kind"),
        identity=_identity(i.get("identity")),
        encryption=_some(key_vault_id=vault.get("keyVaultArmId"), key_id=vault.get("keyIdentifier"),
                         user_assigned_identity_id=_obj(encryption.get("identity")).get("userAssignedIdentity"))
        if str(encryption.get("status", "")).lower() == "enabled" else None,
        managed_network=_some(isolation_mode=network.get("isolationMode"),
                              provision_on_creation_enabled=i.get("provisionNetworkNow")) if network else None,
        serverless_compute=_some(subnet_id=serverless.get("serverlessComputeCustomSubnet"),
                                 public_ip_enabled=None if serverless.get("serverlessComputeNoPublicIP") is None
                                 else not serverless["serverlessComputeNoPublicIP"]) if serverless else None)}


def _log_analytics_workspace(i: Inputs) -> Inputs:
    features = _obj(i.get("features"))
    return {**_common(i, "workspaceName"), **_some(
        sku=_obj(i.get("sku")).get("name"), retention_in_days=i.get("retentionInDays"),
        daily_quota_gb=_obj(i.get("workspaceCapping")).get("dailyQuotaGb"),
        internet_ingestion_enabled=_enabled(i.get("publicNetworkAccessForIngestion")),
        internet_query_enabled=_enabled(i.get("publicNetworkAccessForQuery")),
        local_authentication_enabled=_not(features.get("disableLocalAuth")),
        cmk_for_query_forced=i.get("forceCmkForQuery"), identity=_identity(i.get("identity")))}


def _application_insights(i: Inputs) -> Inputs:
    return {**_common(i, "resourceName"), **_some(
        application_type=i.get("applicationType"), workspace_id=i.get("workspaceResourceId"),
        retention_in_days=i.get("retentionInDays"), sampling_percentage=i.get("samplingPercentage"),
        disable_ip_masking=i.get("disableIpMasking"), local_authentication_disabled=i.get("disableLocalAuth"),
        internet_ingestion_enabled=_enabled(i.get("publicNetworkAccessForIngestion")),
        internet_query_enabled=_enabled(i.get("publicNetworkAccessForQuery")),
        force_customer_storage_for_profiler=i.get("forceCustomerStorageForProfiler"))}


def _metric_trigger(t: Mapping[str, Any]) -> Inputs:
    return _some(metric_name=t.get("metricName"), metric_resource_id=t.get("metricResourceUri"),
                 metric_namespace=t.get("metricNamespace"), time_grain=t.get("timeGrain"),
                 statistic=t.get("statistic"), time_window=t.get("timeWindow"),
                 time_aggregation=t.get("timeAggregation"), operator=t.get("operator"), threshold=t.get("threshold"),
                 divide_by_instance_count=t.get("dividePerInstance"),
                 dimensions=[_some(name=d.get("DimensionName") or d.get("dimensionName"), operator=d.get("Operator")
                                   or d.get("operator"), values=d.get("Values") or d.get("values"))
                             for d in _list(t.get("dimensions"))] or None)


def _autoscale_setting(i: Inputs) -> Inputs:
    """An autoscale setting: ARM's profiles [{capacity, rules [{metricTrigger, scaleAction}]}] as azurerm's profile
    blocks [{capacity, rule [{metric_trigger, scale_action}]}]."""
    profiles = [_some(
        name=p.get("name"), capacity=_some(**{k: _obj(p.get("capacity")).get(k)
                                              for k in ("default", "minimum", "maximum")}),
        rule=[{"metric_trigger": _metric_trigger(_obj(r.get("metricTrigger"))),
               "scale_action": _some(**{k: _obj(r.get("scaleAction")).get(k)
                                        for k in ("direction", "type", "value", "cooldown")})}
              for r in _list(p.get("rules"))] or None,
        fixed_date=_some(timezone=_obj(p.get("fixedDate")).get("timeZone"), start=_obj(p.get("fixedDate")).get(
            "start"), end=_obj(p.get("fixedDate")).get("end")) if p.get("fixedDate") else None)
        for p in _list(i.get("profiles"))]
    notification = None
    for n in _list(i.get("notifications"))[:1]:
        email = _obj(n.get("email"))
        notification = _some(
            email=_some(send_to_subscription_administrator=email.get("sendToSubscriptionAdministrator"),
                        send_to_subscription_co_administrator=email.get("sendToSubscriptionCoAdministrators"),
                        custom_emails=email.get("customEmails")) if email else None,
            webhook=[_some(service_uri=w.get("serviceUri"), properties=w.get("properties"))
                     for w in _list(n.get("webhooks"))] or None)
    return {**_common(i, "autoscaleSettingName"), **_some(
        target_resource_id=i.get("targetResourceUri"), enabled=i.get("enabled"), profile=profiles or None,
        notification=notification)}


def _diagnostic_setting(i: Inputs) -> Inputs:
    """Diagnostic settings: ARM's enabled `logs` ({category | categoryGroup}) are azurerm's enabled_log blocks."""
    return _some(
        name=i.get("name"), target_resource_id=i.get("resourceUri"), log_analytics_workspace_id=i.get("workspaceId"),
        log_analytics_destination_type=i.get("logAnalyticsDestinationType"),
        storage_account_id=i.get("storageAccountId"), eventhub_name=i.get("eventHubName"),
        eventhub_authorization_rule_id=i.get("eventHubAuthorizationRuleId"),
        partner_solution_id=i.get("marketplacePartnerId"),
        enabled_log=[_some(category=log.get("category"), category_group=log.get("categoryGroup"))
                     for log in _list(i.get("logs")) if log.get("enabled", True)] or None,
        enabled_metric=[{"category": m.get("category")} for m in _list(i.get("metrics"))
                        if m.get("enabled", True) and m.get("category")] or None)


def _criterion(c: Mapping[str, Any]) -> Inputs:
    return _some(metric_namespace=c.get("metricNamespace"), metric_name=c.get("metricName"),
                 aggregation=c.get("timeAggregation"), operator=c.get("operator"), threshold=c.get("threshold"),
                 alert_sensitivity=c.get("alertSensitivity"),
                 skip_metric_validation=c.get("skipMetricValidation"),
                 dimension=[_some(name=d.get("name"), operator=d.get("operator"), values=d.get("values"))
                            for d in _list(c.get("dimensions"))] or None)


def _metric_alert(i: Inputs) -> Inputs:
    """A metric alert: ARM's criteria.allOf (StaticThresholdCriterion / DynamicThresholdCriterion) are azurerm's
    criteria / dynamic_criteria blocks, its actions the action blocks."""
    criteria = _list(_obj(i.get("criteria")).get("allOf"))
    static = [_criterion(c) for c in criteria if c.get("criterionType") != "DynamicThresholdCriterion"]
    dynamic = [_criterion(c) for c in criteria if c.get("criterionType") == "DynamicThresholdCriterion"]
    return {**_common(i, "ruleName", location=False), **_some(
        scopes=i.get("scopes"), description=i.get("description"), severity=i.get("severity"),
        enabled=i.get("enabled"), auto_mitigate=i.get("autoMitigate"), frequency=i.get("evaluationFrequency"),
        window_size=i.get("windowSize"), target_resource_type=i.get("targetResourceType"),
        target_resource_location=i.get("targetResourceRegion"), criteria=static or None,
        dynamic_criteria=dynamic[:1] or None,
        action=[_some(action_group_id=a.get("actionGroupId"), webhook_properties=a.get("webHookProperties"))
                for a in _list(i.get("actions"))] or None)}


def _t(tf_type: str, adapt: Callable[[Inputs], Inputs], maps: Iterable[str] = ()) -> TfType:
    return TfType(tf_type, adapt=adapt, maps=frozenset(maps))


TYPES: dict[str, TfType] = {
    "azure-native:resources:ResourceGroup": _t("azurerm_resource_group", _resource_group),
    "azure-native:network:VirtualNetwork": _t("azurerm_virtual_network", _virtual_network),
    "azure-native:network:Subnet": _t("azurerm_subnet", _subnet),
    "azure-native:network:NetworkSecurityGroup": _t("azurerm_network_security_group", _network_security_group),
    "azure-native:network:PrivateEndpoint": _t("azurerm_private_endpoint", _private_endpoint),
    "azure-native:privatedns:PrivateZone": _t("azurerm_private_dns_zone", _private_dns_zone),
    "azure-native:privatedns:VirtualNetworkLink": _t("azurerm_private_dns_zone_virtual_network_link", _dns_zone_link),
    "azure-native:keyvault:Vault": _t("azurerm_key_vault", _key_vault),
    "azure-native:keyvault:Secret": _t("azurerm_key_vault_secret", _key_vault_secret),
    "azure-native:keyvault:Key": _t("azurerm_key_vault_key", _key_vault_key),
    "azure-native:managedidentity:UserAssignedIdentity": _t("azurerm_user_assigned_identity",
                                                            _user_assigned_identity),
    "azure-native:authorization:RoleAssignment": _t("azurerm_role_assignment", _role_assignment),
    "azure-native:storage:StorageAccount": _t("azurerm_storage_account", _storage_account),
    "azure-native:containerregistry:Registry": _t("azurerm_container_registry", _container_registry),
    "azure-native:operationalinsights:Workspace": _t("azurerm_log_analytics_workspace", _log_analytics_workspace),
    "azure-native:applicationinsights:Component": _t("azurerm_application_insights", _application_insights),
    "azure-native:machinelearningservices:Workspace": _t("azurerm_machine_learning_workspace",
                                                         _machine_learning_workspace),
    "azure-native:monitor:AutoscaleSetting": _t("azurerm_monitor_autoscale_setting", _autoscale_setting),
    "azure-native:monitor:DiagnosticSetting": _t("azurerm_monitor_diagnostic_setting", _diagnostic_setting),
    "azure-native:monitor:MetricAlert": _t("azurerm_monitor_metric_alert", _metric_alert,
                                           maps=("webhook_properties",)),
}

_NO_ML_ONLINE = ("terraform-provider-azurerm has no Azure ML online endpoint, deployment or environment resource "
                 "(its machine_learning resources are the workspace, computes, datastores and outbound rules; the "
                 "draft azurerm_machine_learning_online_endpoint, hashicorp/terraform-provider-azurerm#32011, was "
                 "closed unmerged)")

NOT_MAPPED: dict[str, str] = {
    "pulumi:providers:azure-native": "a provider configuration, not a resource",
    "azure-native:machinelearningservices:OnlineEndpoint": _NO_ML_ONLINE,
    "azure-native:machinelearningservices:OnlineDeployment": _NO_ML_ONLINE,
    "azure-native:machinelearningservices:EnvironmentContainer": _NO_ML_ONLINE,
    "azure-native:machinelearningservices:EnvironmentVersion": _NO_ML_ONLINE,
    "azure-native:network:PrivateDnsZoneGroup": (
        "azurerm declares it inside the endpoint, as azurerm_private_endpoint's private_dns_zone_group block, not "
        "as a resource of its own"),
    "azure-native:storage:BlobServiceProperties": (
        "azurerm declares the blob service's settings inside the account, as azurerm_storage_account's "
        "blob_properties block (delete retention, versioning), not as a resource of its own"),
}
