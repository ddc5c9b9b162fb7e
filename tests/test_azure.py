"""The Azure path (issue 28): the `azure` platform and the `azure-ml` kind's config errors, the azure-prod stack's plan
against the invariants a reviewer checks (private, encrypted with the stack's key, least privilege, the token only in
Key Vault), blue/green through the whole program with its cost and quota, and the CLI's `size` and `quota`."""

from __future__ import annotations

import copy
import json
import math
import re
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from components.catalog import azure_instances
from components.catalog.pricing import lookup
from components.config import ConfigError
from components.cost import estimate_from_outputs, resources_from_preview
from components.schema import SECRET_PLACEHOLDER
from selfhost.preview import Preview, run_program
from selfhost.project import stack_config
from selfhost.quota_report import plan_of

from .conftest import ROOT
from .test_config import as_pulumi, mutate, problems_of

SELFHOST = str(Path(sys.executable).with_name("selfhost"))
SUBSCRIPTION = "12345678-1234-1234-1234-123456789abc"
QWEN_REV = "a09a35458c702b33eeacc393d103063234e8bc28"
AZURE_BASE: dict = {
    "azure-native:location": "eastus",
    "azure-native:subscriptionId": SUBSCRIPTION,
    "selfhost-llm:network": {"nat": "none"},
    "selfhost-llm:models": [{"name": "qwen", "id": "Qwen/Qwen2.5-7B-Instruct", "revision": QWEN_REV,
                             "maxContext": 8192}],
    "selfhost-llm:targets": [{"kind": "azure-ml", "name": "chat", "model": "qwen",
                              "instanceType": "Standard_NC24ads_A100_v4"}],
}
EASTUS_SIZES = ("Standard_NC12s_v3, Standard_NC16as_T4_v3, Standard_NC24ads_A100_v4, Standard_NC24s_v3, "
                "Standard_NC40ads_H100_v5, Standard_NC48ads_A100_v4, Standard_NC4as_T4_v3, Standard_NC64as_T4_v3, "
                "Standard_NC6s_v3, Standard_NC80adis_H100_v5, Standard_NC8as_T4_v3, Standard_NC96ads_A100_v4, "
                "Standard_ND96amsr_A100_v4, Standard_ND96asr_v4, Standard_ND96isr_H100_v5, "
                "Standard_NV36adms_A10_v5, Standard_NV36ads_A10_v5, Standard_NV72ads_A10_v5")
# Built-in role ids (Azure RBAC docs, "Azure built-in roles"), written out here rather than read from the code.
SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
CRYPTO_SERVICE_ENCRYPTION_USER = "e147488a-f6f5-4113-8e2d-b22465e65bf6"

DEPLOYMENT = "azure-native:machinelearningservices:OnlineDeployment"
AUTOSCALE = "azure-native:monitor:AutoscaleSetting"
ROLE = "azure-native:authorization:RoleAssignment"
COMMAND = "command:local:Command"


# ---------------------------------------------------------------------------------------------------------
# Config errors: one message per problem, at its key path, with what is allowed; before any resource exists.


def deployments(*items: dict) -> dict:
    return {"selfhost-llm:targets/0/deployments": list(items)}


AZURE_CASES = [
    ("missing-location", {"azure-native:location": None}, "azure-native:location",
     "azure-native:location: (missing): required for Azure targets; allowed: an Azure region, e.g. eastus"),
    ("missing-subscription", {"azure-native:subscriptionId": None}, "azure-native:subscriptionId",
     "required for Azure targets; allowed: the subscription id (`az account show --query id -o tsv`)"),
    ("bad-subscription-id", {"azure-native:subscriptionId": "acme-prod"}, "azure-native:subscriptionId",
     "'acme-prod': has the wrong form; allowed: a subscription id: a GUID"),
    ("unknown-region", {"azure-native:location": "marsnorth"}, "azure-native:location",
     "'marsnorth': no Azure ML managed online endpoint GPU instances known in this region; allowed: eastus, "
     "eastus2, westus3"),
    ("not-offered-in-region", {"azure-native:location": "westus3",
                               "selfhost-llm:targets/0/instanceType": "Standard_ND96asr_v4"},
     "selfhost-llm:targets[0].instanceType",
     "'Standard_ND96asr_v4': not offered for managed online endpoints in westus3; allowed: Standard_NC12s_v3, "
     "Standard_NC16as_T4_v3, Standard_NC24ads_A100_v4, Standard_NC24s_v3, Standard_NC40ads_H100_v5, "
     "Standard_NC48ads_A100_v4, Standard_NC4as_T4_v3, Standard_NC64as_T4_v3, Standard_NC6s_v3, "
     "Standard_NC80adis_H100_v5, Standard_NC8as_T4_v3, Standard_NC96ads_A100_v4, Standard_NV36adms_A10_v5, "
     "Standard_NV36ads_A10_v5, Standard_NV72ads_A10_v5"),
    ("unknown-instance-type", {"selfhost-llm:targets/0/instanceType": "Standard_D4s_v5"},
     "selfhost-llm:targets[0].instanceType",
     "'Standard_D4s_v5': not offered for managed online endpoints in eastus (not a GPU instance type managed online "
     f"endpoints deploy on); allowed: {EASTUS_SIZES}"),
    ("unknown-instance-type-of-a-deployment",
     deployments({"name": "blue", "traffic": 100}, {"name": "green", "traffic": 0, "instanceType": "Standard_D4s_v5"}),
     "selfhost-llm:targets[0].deployments[1].instanceType",
     "'Standard_D4s_v5': not offered for managed online endpoints in eastus (not a GPU instance type"),
    ("model-does-not-fit", {"selfhost-llm:models/0/id": "Qwen/Qwen2.5-72B-Instruct",
                            "selfhost-llm:targets/0/instanceType": "Standard_NV36ads_A10_v5"},
     "selfhost-llm:targets[0].instanceType",
     "'Standard_NV36ads_A10_v5': model 'qwen' needs 139.4 GiB (weights 135.4 + KV cache 2.5 for 8192 tokens x 1 + "
     "overhead 1.5) but Standard_NV36ads_A10_v5 offers 21.6 GiB usable; allowed: Standard_NC80adis_H100_v5 ("),
    ("fp8-on-a10", {"selfhost-llm:models/0/quantization": "fp8",
                    "selfhost-llm:targets/0/instanceType": "Standard_NV36ads_A10_v5"},
     "selfhost-llm:targets[0].instanceType",
     "A10 GPUs have no fp8 support (model 'qwen' uses quantization fp8); allowed: Standard_NC40ads_H100_v5, "
     "Standard_NC80adis_H100_v5, Standard_ND96isr_H100_v5"),
    ("traffic-not-100", deployments({"name": "blue", "traffic": 90}), "selfhost-llm:targets[0].deployments",
     '{"blue": 90}: the deployments\' traffic shares must sum to 100; allowed: shares that add up to 100'),
    ("duplicate-deployment", deployments({"name": "blue", "traffic": 50}, {"name": "blue", "traffic": 50}),
     "selfhost-llm:targets[0].deployments",
     '["blue", "blue"]: deployment names must differ; allowed: two names, e.g. blue and green'),
    ("mirror-to-live-deployment",
     deployments({"name": "blue", "traffic": 90}, {"name": "green", "traffic": 10, "mirror": 10}),
     "selfhost-llm:targets[0].deployments[1].mirror",
     "10: Azure ML mirrors traffic only to a deployment that takes no live traffic; allowed: 0, or traffic: 0 for "
     "green"),
    ("mirror-above-50", deployments({"name": "blue", "traffic": 100}, {"name": "green", "traffic": 0, "mirror": 60}),
     "selfhost-llm:targets[0].deployments[1].mirror", "60: input should be less than or equal to 50"),
    ("deployment-of-unknown-model",
     deployments({"name": "blue", "traffic": 100}, {"name": "green", "traffic": 0, "model": "llama"}),
     "selfhost-llm:targets[0].deployments[1].model", "'llama': no such model; allowed: qwen"),
    ("deployment-of-a-gguf-model",
     {**deployments({"name": "blue", "traffic": 100}, {"name": "green", "traffic": 0, "model": "tiny"}),
      "selfhost-llm:models": [*AZURE_BASE["selfhost-llm:models"], {
          "name": "tiny", "id": "Qwen/Qwen2.5-1.5B-Instruct-GGUF", "engine": "llamacpp", "revision": QWEN_REV,
          "quantization": "q4_k_m", "file": "qwen2.5-1.5b-instruct-q4_k_m.gguf", "sha256": "0" * 64,
          "maxContext": 4096}]},
     "selfhost-llm:targets[0].deployments[1].model", "'tiny': its engine 'llamacpp' does not run on azure-ml"),
    ("deployment-of-a-bucket-model",
     {**deployments({"name": "blue", "traffic": 100}, {"name": "green", "traffic": 0, "model": "own"}),
      "selfhost-llm:models": [*AZURE_BASE["selfhost-llm:models"], {
          "name": "own", "id": "Qwen/Qwen2.5-7B-Instruct", "source": "s3://team/ckpt/", "maxContext": 8192}]},
     "selfhost-llm:targets[0].deployments[1].model", "are not where Azure ML deployments read from"),
    ("three-deployments", deployments({"name": "blue", "traffic": 50}, {"name": "green", "traffic": 50},
                                      {"name": "red", "traffic": 0}),
     "selfhost-llm:targets[0].deployments", "at most 2 items"),
    ("scale-to-zero", {"selfhost-llm:targets/0/scaling": {"minReplicas": 0, "maxReplicas": 2}},
     "selfhost-llm:targets[0].scaling.minReplicas",
     "0: managed online deployments keep at least one instance; allowed: 1 or more"),
    ("max-below-min", {"selfhost-llm:targets/0/scaling": {"minReplicas": 3, "maxReplicas": 2}},
     "selfhost-llm:targets[0].scaling.minReplicas", "3: greater than maxReplicas (2)"),
    ("nat", {"selfhost-llm:network/nat": "single"}, "selfhost-llm:network.nat",
     "'single': the deployments' outbound traffic leaves through the workspace's managed network (its approved "
     "outbound rules); the stack's own network holds only private endpoints; allowed: none"),
    ("private-deployer-range", {"selfhost-llm:azure": {"deployerCidrs": ["203.0.113.0/28", "10.1.0.0/24"]}},
     "selfhost-llm:azure.deployerCidrs[1]",
     "'10.1.0.0/24': the registry's firewall filters public addresses only: a private range reaches it through its "
     "private endpoint already; allowed: public ranges of the machines that run `pulumi up`"),
    ("shared-address-deployer-range", {"selfhost-llm:azure": {"deployerCidrs": ["100.64.1.0/24"]}},
     "selfhost-llm:azure.deployerCidrs[0]", "the registry's firewall filters public addresses only"),
    ("log-retention-below-included", {"selfhost-llm:azure": {"logRetentionDays": 7}},
     "selfhost-llm:azure.logRetentionDays", "greater than or equal to 30"),
]


def program_problems(cfg: dict, monkeypatch, stack: str = "test") -> tuple[ConfigError, dict]:
    """Run the whole program (`__main__.py`) on `cfg`: the ConfigError it raises and what the engine was sent."""
    import selfhost.preview as preview

    monitors: list[Any] = []

    class Capturing(preview.RecordingMonitor):
        def __init__(self, mocks):
            super().__init__(mocks)
            monitors.append(self)

    monkeypatch.setattr(preview, "RecordingMonitor", Capturing)
    with pytest.raises(ConfigError) as info:
        run_program("selfhost-llm", stack, as_pulumi(cfg), [], whole_program)
    (monitor,) = monitors
    return info.value, monitor.recorded


def whole_program() -> None:
    runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")


@pytest.mark.parametrize("changes, path, words", [c[1:] for c in AZURE_CASES], ids=[c[0] for c in AZURE_CASES])
def test_invalid_azure_config_names_the_key(changes, path, words, monkeypatch):
    cfg = mutate(**changes)(copy.deepcopy(AZURE_BASE))
    error = problems_of(cfg)
    matching = [str(p) for p in error.problems if p.path == path]
    assert matching, f"no problem at {path}: {error}"
    assert any(words in text for text in matching), f"{words!r} not in {matching}"
    # The program stops on it before declaring anything: no half-built environment.
    error, recorded = program_problems(cfg, monkeypatch)
    assert path in {p.path for p in error.problems}
    assert recorded == {}


def test_distinct_azure_cases():
    assert len({c[2] + c[3] for c in AZURE_CASES}) == len(AZURE_CASES) >= 20


def test_azure_base_is_valid_and_the_harness_records_a_valid_program():
    from .test_config import load

    env = load(AZURE_BASE)
    (target,) = env.targets
    assert target.kind == "azure-ml" and [(d.name, d.traffic, d.mirror) for d in target.deployments] == [
        ("blue", 100, 0)]
    # The control for the "nothing declared" checks above: the same harness records the valid program's resources.
    p = run_program("selfhost-llm", "test", as_pulumi(AZURE_BASE), [], whole_program)
    assert len([r for r in p.resources if r.custom]) > 40
    assert [d.inputs["deploymentName"] for d in p.by_type(DEPLOYMENT)] == ["blue"]


ENDPOINT_NAME = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")


def test_a_long_stack_and_target_name_still_make_a_valid_endpoint_name_unique_to_the_subscription():
    """Azure ML's endpoint names are 3-32 letters, digits and '-', unique in the region across subscriptions (the
    scoring host carries them): a 35-character `<stack>-<target>` is shortened, not refused, and two
    subscriptions' stacks of the same name get different endpoint names."""
    cfg = mutate(**{"selfhost-llm:targets/0/name": "chat-assistant-v2"})(copy.deepcopy(AZURE_BASE))
    names = []
    for subscription in (SUBSCRIPTION, "87654321-4321-4321-4321-cba987654321"):
        cfg["azure-native:subscriptionId"] = subscription
        p = run_program("selfhost-llm", "azure-prod-eastus", as_pulumi(cfg), [], whole_program)
        endpoint = only(p, "azure-native:machinelearningservices:OnlineEndpoint")
        name = endpoint.inputs["endpointName"]
        assert ENDPOINT_NAME.match(name) and len(name) <= 32, name
        assert name.startswith("azure-prod-eastus-chat")
        # Everything that names the endpoint names that one.
        assert {d.inputs["endpointName"] for d in p.by_type(DEPLOYMENT)} == {name}
        assert p.outputs["endpoints"]["chat-assistant-v2"]["endpointName"] == name
        assert f"--name {name} " in only(p, COMMAND, "azure-prod-eastus-chat-assistant-v2-traffic").inputs["create"]
        names.append(name)
    assert names[0] != names[1]


def test_the_hosts_a_too_large_model_is_offered_all_hold_it():
    cfg = mutate(**{"selfhost-llm:models/0/id": "Qwen/Qwen2.5-72B-Instruct",
                    "selfhost-llm:targets/0/instanceType": "Standard_NV36ads_A10_v5"})(copy.deepcopy(AZURE_BASE))
    (problem,) = [p for p in problems_of(cfg).problems if p.path == "selfhost-llm:targets[0].instanceType"]
    need = float(re.search(r"needs ([\d.]+) GiB", str(problem)).group(1))
    offered = re.findall(r"(Standard_\w+) \(\$[\d.]+/1M tokens, ([\d.]+) GiB spare\)", problem.allowed or "")
    assert len(offered) >= 3
    for host, spare in offered:
        assert host in azure_instances.REGION_INSTANCES["eastus"]
        # Usable memory (90% of the GPUs') holds the need with the spare it states (more GPUs need a little more
        # each, so the spare is at most what one GPU's need would leave), and the spare is not negative.
        usable = azure_instances.total_gpu_memory_gib(host) * 0.9
        assert 0 <= float(spare) <= usable - need + 0.05, host
    assert "Standard_NV36ads_A10_v5" not in problem.allowed and "Standard_NC24ads_A100_v4" not in problem.allowed


def test_every_azure_problem_in_one_message():
    cfg = mutate(**{"selfhost-llm:azure": {"deployerCidrs": ["192.168.0.0/24"]}, "selfhost-llm:network/nat": "single",
                    **deployments({"name": "blue", "traffic": 90}, {"name": "green", "traffic": 0, "mirror": 10}),
                    "selfhost-llm:targets/0/scaling": {"minReplicas": 0, "maxReplicas": 2}})(copy.deepcopy(AZURE_BASE))
    paths = {p.path for p in problems_of(cfg).problems}
    assert paths == {"selfhost-llm:azure.deployerCidrs[0]", "selfhost-llm:network.nat",
                     "selfhost-llm:targets[0].deployments", "selfhost-llm:targets[0].scaling.minReplicas"}


# ---------------------------------------------------------------------------------------------------------
# The azure-prod stack's plan.


@pytest.fixture(scope="module")
def prod(previews) -> Preview:
    return previews["azure-prod"]


def only(p: Preview, token: str, name: str | None = None):
    found = [r for r in p.by_type(token) if name is None or r.name == name]
    assert len(found) == 1, (token, name, [r.name for r in found])
    return found[0]


def role_id(guid: str, subscription: str = "00000000-0000-0000-0000-000000000000") -> str:
    return f"/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


def grants_of(p: Preview, principal: str) -> set[tuple[str, str]]:
    """(role definition id, scope) of every role assignment to `principal`."""
    return {(r.inputs["roleDefinitionId"], r.inputs["scope"]) for r in p.by_type(ROLE)
            if r.inputs["principalId"] == principal}


def seconds(duration: str) -> int:
    match = re.fullmatch(r"PT(\d+)S", duration)
    assert match, duration
    return int(match.group(1))


def test_key_vault_is_rbac_only_purge_protected_and_closed_to_the_internet(prod):
    vault = only(prod, "azure-native:keyvault:Vault")
    props = vault.inputs["properties"]
    assert props["enableRbacAuthorization"] is True and "accessPolicies" not in props
    assert props["enablePurgeProtection"] is True and props["enableSoftDelete"] is True
    assert props["softDeleteRetentionInDays"] == 90
    assert props["publicNetworkAccess"] == "Disabled"
    assert props["networkAcls"]["defaultAction"] == "Deny" and not props["networkAcls"].get("ipRules")
    assert props["sku"]["name"] == "premium"  # the RSA-HSM key needs Premium
    assert vault.protect is True
    key = only(prod, "azure-native:keyvault:Key")
    assert key.protect is True and key.inputs["properties"]["kty"] == "RSA-HSM"
    assert key.inputs["vaultName"] == vault.computed["name"]


def test_storage_and_registry_are_encrypted_with_the_vault_key_through_one_identity(prod):
    vault = only(prod, "azure-native:keyvault:Vault")
    key = only(prod, "azure-native:keyvault:Key")
    identity = only(prod, "azure-native:managedidentity:UserAssignedIdentity")
    # The identity may wrap and unwrap with that key, and do nothing else anywhere.
    assert grants_of(prod, identity.computed["principalId"]) == {(role_id(CRYPTO_SERVICE_ENCRYPTION_USER), key.id)}
    grant = next(r for r in prod.by_type(ROLE) if r.inputs["principalId"] == identity.computed["principalId"])
    assert grant.inputs["principalType"] == "ServicePrincipal"

    account = only(prod, "azure-native:storage:StorageAccount")
    enc = account.inputs["encryption"]
    assert enc["keySource"] == "Microsoft.Keyvault" and enc["requireInfrastructureEncryption"] is True
    assert enc["keyVaultProperties"] == {"keyName": key.inputs["keyName"], "keyVaultUri": vault.computed[
        "properties"]["vaultUri"]}  # no keyVersion: rotation needs nothing
    assert enc["encryptionIdentity"] == {"encryptionUserAssignedIdentity": identity.id}
    assert account.inputs["identity"] == {"type": "UserAssigned", "userAssignedIdentities": [identity.id]}
    assert {s: v["enabled"] for s, v in enc["services"].items()} == {"blob": True, "file": True}

    registry = only(prod, "azure-native:containerregistry:Registry")
    assert registry.inputs["encryption"] == {"status": "enabled", "keyVaultProperties": {
        "keyIdentifier": key.computed["keyUri"], "identity": identity.computed["clientId"]}}
    assert registry.inputs["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {identity.id: {}}}
    # Both wait for the grant: created before it, their encryption setup fails.
    for r in (account, registry):
        assert grant.urn in r.dependencies, r.name


def test_storage_takes_no_shared_keys_and_no_public_traffic(prod):
    account = only(prod, "azure-native:storage:StorageAccount").inputs
    assert account["allowSharedKeyAccess"] is False and account["defaultToOAuthAuthentication"] is True
    assert account["publicNetworkAccess"] == "Disabled" and account["allowBlobPublicAccess"] is False
    assert account["networkRuleSet"]["defaultAction"] == "Deny" and not account["networkRuleSet"].get("ipRules")
    assert account["minimumTlsVersion"] == "TLS1_2" and account["enableHttpsTrafficOnly"] is True


def test_the_registry_admits_only_the_deployers_ranges_from_outside(prod):
    registry = only(prod, "azure-native:containerregistry:Registry").inputs
    assert registry["adminUserEnabled"] is False and registry["anonymousPullEnabled"] is False
    assert registry["sku"] == {"name": "Premium"}
    assert registry["networkRuleSet"] == {"defaultAction": "Deny",
                                          "ipRules": [{"iPAddressOrRange": "203.0.113.0/28", "action": "Allow"}]}


def test_the_workspace_is_private_and_its_managed_network_reaches_only_the_hub(prod):
    ws = only(prod, "azure-native:machinelearningservices:Workspace")
    assert ws.inputs["publicNetworkAccess"] == "Disabled"
    network = ws.inputs["managedNetwork"]
    assert network["isolationMode"] == "AllowOnlyApprovedOutbound"
    rules = list(network["outboundRules"].values())
    assert rules and all(r["type"] == "FQDN" for r in rules)
    hosts = {r["destination"] for r in rules}
    assert "huggingface.co" in hosts and len(hosts) == len(rules)
    assert all(h == "huggingface.co" or h.endswith((".huggingface.co", ".hf.co")) for h in hosts), hosts
    # On the stack's own vault, storage and registry, reading storage as its identity.
    assert ws.inputs["keyVault"] == only(prod, "azure-native:keyvault:Vault").id
    assert ws.inputs["storageAccount"] == only(prod, "azure-native:storage:StorageAccount").id
    assert ws.inputs["containerRegistry"] == only(prod, "azure-native:containerregistry:Registry").id
    assert ws.inputs["systemDatastoresAuthMode"] == "identity"


def test_every_private_endpoint_registers_in_the_zones_of_its_group(prod):
    from components.azure.network import ZONES

    zones = {z.id: z.inputs["privateZoneName"] for z in prod.by_type("azure-native:privatedns:PrivateZone")}
    subnet = only(prod, "azure-native:network:Subnet")
    groups = prod.by_type("azure-native:network:PrivateDnsZoneGroup")
    targets = {"vault": only(prod, "azure-native:keyvault:Vault").id,
               "blob": only(prod, "azure-native:storage:StorageAccount").id,
               "file": only(prod, "azure-native:storage:StorageAccount").id,
               "registry": only(prod, "azure-native:containerregistry:Registry").id,
               "amlworkspace": only(prod, "azure-native:machinelearningservices:Workspace").id}
    seen = set()
    endpoints = prod.by_type("azure-native:network:PrivateEndpoint")
    for pe in endpoints:
        (connection,) = pe.inputs["privateLinkServiceConnections"]
        (group,) = connection["groupIds"]
        seen.add(group)
        assert connection["privateLinkServiceId"] == targets[group], pe.name
        assert pe.inputs["subnet"] == {"id": subnet.id}
        (zone_group,) = [g for g in groups if g.inputs["privateEndpointName"] == pe.computed["name"]]
        assert {zones[c["privateDnsZoneId"]] for c in zone_group.inputs["privateDnsZoneConfigs"]} == set(
            ZONES[group]), pe.name
    assert seen == set(targets) and len(groups) == len(endpoints) == 5
    # Each zone is linked to the stack's network, without auto-registration.
    vnet = only(prod, "azure-native:network:VirtualNetwork")
    links = prod.by_type("azure-native:privatedns:VirtualNetworkLink")
    assert {link.inputs["privateZoneName"] for link in links} == set(zones.values())
    assert all(link.inputs["virtualNetwork"] == {"id": vnet.id} and link.inputs["registrationEnabled"] is False
               for link in links)


def test_the_endpoint_is_private_with_its_own_identity_and_keys(prod):
    endpoint = only(prod, "azure-native:machinelearningservices:OnlineEndpoint")
    assert endpoint.inputs["identity"] == {"type": "SystemAssigned"}
    assert endpoint.inputs["properties"]["publicNetworkAccess"] == "Disabled"
    assert endpoint.inputs["properties"]["authMode"] == "Key"


def test_the_endpoint_identity_reads_exactly_the_token_secret_and_pulls_exactly_from_the_registry(prod):
    endpoint = only(prod, "azure-native:machinelearningservices:OnlineEndpoint")
    principal = endpoint.computed["identity"]["principalId"]
    secret = only(prod, "azure-native:keyvault:Secret")
    registry = only(prod, "azure-native:containerregistry:Registry")
    assert grants_of(prod, principal) == {(role_id(SECRETS_USER), secret.id), (role_id(ACR_PULL), registry.id)}
    # The deployment starts once both are granted: it pulls the image and reads the token at start.
    deployment = only(prod, DEPLOYMENT)
    granted = {r.urn for r in prod.by_type(ROLE) if r.inputs["principalId"] == principal}
    assert granted <= set(deployment.dependencies)
    assert prod.outputs["azureHfTokenSecret"] == secret.id


def test_the_deployment_is_sent_in_the_providers_property_names(prod):
    """The deployment's `properties` is a union (managed or Kubernetes) in the Azure Native SDK, so the SDK cannot
    translate a plain dict's snake_case keys: what reaches the provider must be its own (camelCase) names, or Azure
    ML gets no instance type, no environment and no probes."""
    props = only(prod, DEPLOYMENT).inputs["properties"]
    assert props["endpointComputeType"] == "Managed"
    assert props["instanceType"] == "Standard_NC24ads_A100_v4"
    assert {"environmentId", "environmentVariables", "readinessProbe", "livenessProbe", "requestSettings"} <= set(props)
    assert not [k for k in props if "_" in k], sorted(props)


def test_the_deployment_reads_the_token_from_key_vault_and_never_holds_it(prod):
    deployment = only(prod, DEPLOYMENT)
    env = deployment.inputs["properties"]["environmentVariables"]
    secret = only(prod, "azure-native:keyvault:Secret")
    # The versionless URL: a new token version is read at the next start.
    assert env["SELFHOST_HF_TOKEN_KEYVAULT_URL"] == secret.computed["properties"]["secretUri"]
    assert env["HF_MODEL_ID"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert "--revision 0e9e39f249a16976918f6564b8830bc894c89659" in env["SELFHOST_ENGINE_ARGS"]
    assert not [k for k in env if k in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")]
    assert deployment.secret_paths == []


def walk(value: Any, path: str = ""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, f"{path}[{i}]")
    else:
        yield path, value


def test_the_token_is_an_input_of_the_key_vault_secret_only(prod):
    found = {(r.name, path) for r in prod.resources for path, value in walk(r.inputs)
             if isinstance(value, str) and SECRET_PLACEHOLDER in value}
    # The token in its secret; the registry's login token (not the Hugging Face one) for the image push.
    assert found == {("azure-prod-keys-hf-token", "properties.value"), ("azure-prod-images-image",
                                                                         "registries[0].password")}
    assert {(r.name, tuple(r.secret_paths)) for r in prod.resources if r.secret_paths} == {
        ("azure-prod-keys-hf-token", ("properties.value",)), ("azure-prod-images-image", ("registries[0].password",))}
    assert SECRET_PLACEHOLDER not in json.dumps(prod.outputs) and prod.secret_outputs == []


def test_the_readiness_probe_waits_out_the_sized_start_up(prod):
    props = only(prod, DEPLOYMENT).inputs["properties"]
    timeout = prod.outputs["endpoints"]["chat"]["startupTimeoutSeconds"]
    assert timeout >= 600
    probe = props["readinessProbe"]
    assert seconds(probe["initialDelay"]) + seconds(probe["period"]) * probe["failureThreshold"] >= timeout
    # Liveness is answered by the adapter while the engine loads: it must not wait the start-up out.
    live = props["livenessProbe"]
    assert seconds(live["initialDelay"]) + seconds(live["period"]) * live["failureThreshold"] < timeout


def test_the_environment_routes_are_the_adapters(prod):
    version = only(prod, "azure-native:machinelearningservices:EnvironmentVersion")
    config = version.inputs["properties"]["inferenceConfig"]
    assert config == {"livenessRoute": {"path": "/livez", "port": 8080},
                      "readinessRoute": {"path": "/health", "port": 8080},
                      "scoringRoute": {"path": "/v1/chat/completions", "port": 8080}}
    # Our image, by digest, from the stack's registry; the deployment runs that version.
    registry = only(prod, "azure-native:containerregistry:Registry")
    image = version.inputs["properties"]["image"]
    assert image.startswith(f"{registry.computed['loginServer']}/") and "@sha256:" in image
    assert image == prod.outputs["endpoints"]["chat"]["image"]
    assert only(prod, DEPLOYMENT).inputs["properties"]["environmentId"] == version.id


def test_the_deployment_scales_1_to_3_on_gpu_use(prod):
    deployment = only(prod, DEPLOYMENT)
    scale = only(prod, AUTOSCALE)
    assert deployment.inputs["sku"]["capacity"] == 1
    assert scale.inputs["enabled"] is True and scale.inputs["targetResourceUri"] == deployment.id
    (profile,) = scale.inputs["profiles"]
    assert profile["capacity"] == {"minimum": "1", "maximum": "3", "default": "1"}
    rules = {r["scaleAction"]["direction"]: r for r in profile["rules"]}
    assert set(rules) == {"Increase", "Decrease"}
    for rule in rules.values():
        trigger = rule["metricTrigger"]
        assert trigger["metricName"] == "GpuUtilizationPercentage"
        assert trigger["metricResourceUri"] == deployment.id
    up, down = rules["Increase"]["metricTrigger"], rules["Decrease"]["metricTrigger"]
    assert (up["operator"], down["operator"]) == ("GreaterThan", "LessThan") and down["threshold"] < up["threshold"]


def test_the_traffic_is_set_once_the_deployment_exists(prod):
    deployment = only(prod, DEPLOYMENT)
    endpoint = only(prod, "azure-native:machinelearningservices:OnlineEndpoint")
    command = only(prod, COMMAND, "azure-prod-chat-traffic")
    assert command.inputs["create"] == (
        f"az ml online-endpoint update --name {endpoint.inputs['endpointName']} --resource-group "
        f"{endpoint.inputs['resourceGroupName']} --workspace-name {endpoint.inputs['workspaceName']} "
        "--traffic 'blue=100'")
    assert endpoint.urn in command.dependencies
    assert deployment.urn in command.dependencies


def test_the_endpoint_record(prod):
    chat = prod.outputs["endpoints"]["chat"]
    endpoint = only(prod, "azure-native:machinelearningservices:OnlineEndpoint")
    scoring = endpoint.computed["properties"]["scoringUri"]
    assert chat["kind"] == "azure-ml" and chat["platform"] == "azure" and chat["region"] == "eastus"
    assert chat["invokeUrl"] == scoring and scoring.endswith("/score")
    assert chat["openaiBaseUrl"] == scoring.removesuffix("/score") + "/v1"
    assert chat["auth"] == "api-key"
    assert chat["host"] == {"instance": "Standard_NC24ads_A100_v4", "accelerator": "A100-80GB",
                            "acceleratorCount": 1}
    assert chat["replicas"] == {"min": 1, "max": 3}
    assert chat["endpointId"] == endpoint.id and chat["endpointName"] == endpoint.inputs["endpointName"]
    assert ENDPOINT_NAME.match(chat["endpointName"]) and chat["endpointName"].startswith("azure-prod-chat")
    assert chat["deployments"] == {"blue": {"model": "meta-llama/Llama-3.1-8B-Instruct",
                                            "instanceType": "Standard_NC24ads_A100_v4", "traffic": 100, "mirror": 0}}
    assert chat["publicAccess"] is False


def test_the_prod_plan_needs_the_a100_family_cores(prod):
    needs = {n.need: n for n in plan_of(prod.to_json()).needs}
    family = needs.pop("azure-ml-cores:standardNCADSA100v4Family")
    total = needs.pop("azure-ml-total-cores")
    assert not needs
    # 1..3 x 24 vCPUs; NC A100 v4 sizes are exempt from the 20% upgrade reserve.
    for n in (family, total):
        assert (n.at_min, n.at_max, n.at_update) == (24, 72, 72)
        assert n.region == "eastus" and n.unit == "vCPUs" and n.resources == ("azure-prod-chat-blue-deployment",)
    assert family.quota_name == "Standard NCADSA100v4 Family Cluster Dedicated vCPUs"


def test_the_prod_plan_prices_the_instances(prod):
    est = estimate_from_outputs(resources_from_preview(prod.to_json()), prod.outputs, lookup)
    (item,) = [i for i in est.items if i.resource == "azure-prod-chat-blue-deployment"]
    assert item.unit_usd == lookup("azure", "virtual-machines", "eastus", "Standard_NC24ads_A100_v4").usd
    assert item.quantity[0] == 730 and item.quantity[2] == 3 * 730
    assert "Standard_NC24ads_A100_v4 x 1..3" in item.description


# ---------------------------------------------------------------------------------------------------------
# Blue/green through the whole program.

CANARY = "hf_canary_0123456789abcdefghijklmnopqrstuvwxyz"
GREEN_MODEL = {"name": "qwen-7b", "id": "Qwen/Qwen2.5-7B-Instruct", "revision": QWEN_REV, "maxContext": 8192}


@pytest.fixture(scope="module")
def blue_green(project) -> Preview:
    """azure-prod with a green deployment: another model on another size, no live traffic, 10% mirrored; run with
    a real-looking token, to find it wherever it would leak."""
    cfg, secret_keys = stack_config(project, "azure-prod")
    models = json.loads(cfg["selfhost-llm:models"])
    targets = json.loads(cfg["selfhost-llm:targets"])
    targets[0]["deployments"] = [{"name": "blue", "traffic": 100},
                                 {"name": "green", "traffic": 0, "mirror": 10, "model": "qwen-7b",
                                  "instanceType": "Standard_NV72ads_A10_v5"}]
    cfg.update({"selfhost-llm:models": json.dumps([*models, GREEN_MODEL]),
                "selfhost-llm:targets": json.dumps(targets), "selfhost-llm:hfToken": CANARY})
    assert "selfhost-llm:hfToken" in secret_keys
    return run_program(project.name, "azure-prod", cfg, secret_keys, whole_program)


def by_deployment(p: Preview, token: str) -> dict[str, Any]:
    """The resources of type `token` in each ModelDeployment component, by the deployment's name."""
    components = {r.urn: r.name for r in p.resources if r.type == "selfhost:azure:ModelDeployment"}
    out: dict[str, Any] = {}
    for r in p.by_type(token):
        name = components[r.parent].removeprefix("azure-prod-chat-")
        assert name not in out, (token, name)
        out[name] = r
    return out


def test_blue_and_green_each_have_a_deployment_and_an_autoscale_setting_of_their_own(blue_green):
    deployments = by_deployment(blue_green, DEPLOYMENT)
    scales = by_deployment(blue_green, AUTOSCALE)
    assert set(deployments) == set(scales) == {"blue", "green"}
    assert len(blue_green.by_type(DEPLOYMENT)) == len(blue_green.by_type(AUTOSCALE)) == 2
    for name, d in deployments.items():
        assert d.inputs["deploymentName"] == name
        assert scales[name].inputs["targetResourceUri"] == d.id
        assert d.parent != deployments["green" if name == "blue" else "blue"].parent
    blue, green = deployments["blue"].inputs, deployments["green"].inputs
    assert blue["properties"]["instanceType"] == "Standard_NC24ads_A100_v4"
    assert green["properties"]["instanceType"] == "Standard_NV72ads_A10_v5"
    assert green["properties"]["environmentVariables"]["HF_MODEL_ID"] == "Qwen/Qwen2.5-7B-Instruct"
    assert "--tensor-parallel-size 2" in green["properties"]["environmentVariables"]["SELFHOST_ENGINE_ARGS"]
    assert (blue["tags"]["selfhost-traffic"], green["tags"]["selfhost-traffic"]) == ("100", "10")
    chat = blue_green.outputs["endpoints"]["chat"]
    assert chat["deployments"]["green"] == {"model": "Qwen/Qwen2.5-7B-Instruct",
                                            "instanceType": "Standard_NV72ads_A10_v5", "traffic": 0, "mirror": 10}
    # The record's host is the one taking the live traffic.
    assert chat["host"]["instance"] == "Standard_NC24ads_A100_v4"


def test_the_traffic_command_sets_live_and_mirrored_shares_after_both_deployments(blue_green):
    command = only(blue_green, COMMAND, "azure-prod-chat-traffic")
    assert command.inputs["create"].endswith(" --traffic 'blue=100 green=0' --mirror-traffic 'green=10'")
    assert {d.urn for d in blue_green.by_type(DEPLOYMENT)} <= set(command.dependencies)


def test_the_token_never_leaves_key_vault(blue_green):
    assert CANARY not in json.dumps(blue_green.to_json())
    secret = only(blue_green, "azure-native:keyvault:Secret")
    assert secret.secret_paths == ["properties.value"]
    for d in blue_green.by_type(DEPLOYMENT):
        assert d.inputs["properties"]["environmentVariables"]["SELFHOST_HF_TOKEN_KEYVAULT_URL"] == secret.computed[
            "properties"]["secretUri"]


def test_green_is_priced_for_its_mirrored_share_only(blue_green):
    """At a load that keeps blue at its maximum, green (10% mirrored, no live traffic) is planned for a tenth of
    it, on its own hardware, at its own price."""
    usage = {"requestsPerDay": 5_000_000}
    est = estimate_from_outputs(resources_from_preview(blue_green.to_json()), blue_green.outputs, lookup, usage)
    serving = {s.resource.removeprefix("azure-prod-chat-").removesuffix("-deployment"): s for s in est.serving}
    assert set(serving) == {"blue", "green"}
    blue, green = serving["blue"], serving["green"]
    assert blue.plan.capacity is not None and green.plan.capacity is not None  # sized on their instances
    from components.schema import Usage

    busy = Usage.from_wire(usage).busy_requests_per_s
    assert blue.plan.need == math.ceil(busy / blue.plan.requests_per_s) > 3
    assert green.plan.need == math.ceil(0.10 * busy / green.plan.requests_per_s)
    assert blue.replicas == (1, 3, 3)
    assert green.replicas[1] < blue.replicas[1] and green.replicas[0] == 1
    items = {i.resource.removeprefix("azure-prod-chat-").removesuffix("-deployment"): i for i in est.items
             if i.resource.endswith("-deployment")}
    assert items["green"].unit_usd == lookup("azure", "virtual-machines", "eastus", "Standard_NV72ads_A10_v5").usd
    assert items["blue"].unit_usd == lookup("azure", "virtual-machines", "eastus", "Standard_NC24ads_A100_v4").usd
    assert "10% of requests" in items["green"].description and "100% of requests" in items["blue"].description


def test_both_deployments_count_against_their_family_cores_with_the_upgrade_reserve(blue_green):
    needs = {n.need: n for n in plan_of(blue_green.to_json()).needs}
    a100 = needs.pop("azure-ml-cores:standardNCADSA100v4Family")
    a10 = needs.pop("azure-ml-cores:standardNVADSA10v5Family")
    total = needs.pop("azure-ml-total-cores")
    assert not needs
    assert "Standard_NC24ads_A100_v4" in azure_instances.RESERVE_EXEMPT
    assert "Standard_NV72ads_A10_v5" not in azure_instances.RESERVE_EXEMPT
    # Blue: 1..3 x 24 vCPUs, exempt. Green: 1..3 instances of 72 vCPUs need ceil(1.2 x n) instances' worth: 2..4.
    assert (a100.at_min, a100.at_max) == (24, 72)
    assert (a10.at_min, a10.at_max) == (2 * 72, 4 * 72)
    assert (total.at_min, total.at_max) == (24 + 144, 72 + 288)
    assert a10.resources == ("azure-prod-chat-green-deployment",)
    assert set(total.resources) == {"azure-prod-chat-blue-deployment", "azure-prod-chat-green-deployment"}


@pytest.fixture(scope="module")
def base_plan() -> Preview:
    """AZURE_BASE through the whole program: an ungated model, no token, no deployer ranges, one instance."""
    return run_program("selfhost-llm", "test", as_pulumi(AZURE_BASE), [], whole_program)


def test_without_a_token_there_is_no_secret_and_no_reader(base_plan):
    p = base_plan
    assert p.by_type("azure-native:keyvault:Secret") == []
    endpoint = only(p, "azure-native:machinelearningservices:OnlineEndpoint")
    registry = only(p, "azure-native:containerregistry:Registry")
    assert grants_of(p, endpoint.computed["identity"]["principalId"]) == {
        (role_id(ACR_PULL, SUBSCRIPTION), registry.id)}
    env = only(p, DEPLOYMENT).inputs["properties"]["environmentVariables"]
    assert "SELFHOST_HF_TOKEN_KEYVAULT_URL" not in env and env["HF_MODEL_ID"] == "Qwen/Qwen2.5-7B-Instruct"
    assert "azureHfTokenSecret" not in p.outputs


def test_without_deployer_ranges_the_registry_takes_no_public_traffic(base_plan):
    registry = only(base_plan, "azure-native:containerregistry:Registry").inputs
    assert registry["publicNetworkAccess"] == "Disabled"
    assert registry["networkRuleSet"]["defaultAction"] == "Deny" and not registry["networkRuleSet"].get("ipRules")
    assert registry["policies"]["exportPolicy"] == {"status": "disabled"}


def test_a_fixed_size_deployment_has_its_autoscale_off_and_needs_its_cores_once(base_plan):
    deployment = only(base_plan, DEPLOYMENT)
    assert deployment.inputs["sku"]["capacity"] == 1
    assert only(base_plan, AUTOSCALE).inputs["enabled"] is False
    needs = {n.need: n for n in plan_of(base_plan.to_json()).needs}
    assert set(needs) == {"azure-ml-cores:standardNCADSA100v4Family", "azure-ml-total-cores"}
    assert all((n.at_min, n.at_max) == (24, 24) for n in needs.values())


def test_alerts_watch_the_endpoint(prod):
    endpoint = only(prod, "azure-native:machinelearningservices:OnlineEndpoint")
    alerts = prod.by_type("azure-native:monitor:MetricAlert")
    metrics = set()
    for alert in alerts:
        assert alert.inputs["scopes"] == [endpoint.id] and alert.inputs["enabled"] is True
        (criterion,) = alert.inputs["criteria"]["allOf"]
        metrics.add(criterion["metricName"])
    assert metrics == {"RequestLatency_P99", "RequestsPerMinute"}


# ---------------------------------------------------------------------------------------------------------
# The CLI.


def selfhost(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SELFHOST, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_size_lists_azure_hosts_with_their_prices():
    run = selfhost("size", "Llama-3.1-8B", "--cloud", "azure", "--json")
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)["options"]
    assert rows and {(r["cloud"], r["target"], r["region"]) for r in rows} == {("azure", "azure-ml", "eastus")}
    hosts = {r["host"]: r for r in rows}
    assert set(hosts) <= azure_instances.REGION_INSTANCES["eastus"]
    assert {"Standard_NC24ads_A100_v4", "Standard_NV36ads_A10_v5", "Standard_ND96asr_v4"} <= set(hosts)
    for host, row in hosts.items():
        assert row["usdPerHour"] == lookup("azure", "virtual-machines", "eastus", host).usd, host
        assert row["atServiceLevel"]["usdPer1mTokens"] is not None and row["marginGib"] >= 0
    assert hosts["Standard_NC24ads_A100_v4"]["gpus"] == "1 x A100-80GB"
    priced = [r["atServiceLevel"]["usdPer1mTokens"] for r in rows]
    assert priced == sorted(priced)
    # Another region lists what that region offers: no ND sizes in westus3.
    west = selfhost("size", "Llama-3.1-8B", "--cloud", "azure", "--region", "azure=westus3", "--json")
    assert west.returncode == 0, west.stderr
    west_hosts = {r["host"] for r in json.loads(west.stdout)["options"]}
    assert west_hosts and west_hosts <= azure_instances.REGION_INSTANCES["westus3"]
    assert not [h for h in west_hosts if h.startswith("Standard_ND")]
    table = selfhost("size", "Llama-3.1-8B", "--cloud", "azure")
    assert table.returncode == 0 and "Standard_NC24ads_A100_v4" in table.stdout and "$3.673" in table.stdout


def test_quota_lists_the_azure_ml_family_cores():
    run = selfhost("quota", "azure-prod", "--format", "json")
    assert run.returncode == 0, run.stderr
    found = {n["need"]: n for n in json.loads(run.stdout)["needs"]}
    family = found["azure-ml-cores:standardNCADSA100v4Family"]
    assert (family["atMin"], family["atMax"], family["atUpdate"]) == (24, 72, 72)
    assert set(found) == {"azure-ml-cores:standardNCADSA100v4Family", "azure-ml-total-cores"}
    table = selfhost("quota", "azure-prod")
    assert table.returncode == 0, table.stderr
    assert "Standard NCADSA100v4 Family Cluster Dedicated vCPUs" in table.stdout
    assert "no cloud quota" not in table.stdout
