"""The Google Cloud path: invariants of every GCP stack's plan, its components on their own, and its outputs."""

from __future__ import annotations

import pytest

from components.catalog.gcp_machines import allowed_accelerators
from components.catalog.iam import FORBIDDEN_ROLES, PROJECT_ROLES
from components.gcp.apis import ProjectApis, ProjectApisArgs
from components.gcp.foundation import GcpFoundation
from components.gcp.network import HEALTH_CHECK_RANGES, Network, NetworkArgs
from components.gcp.vertex import AlertThresholds, DedicatedResources, VertexEndpoint, VertexEndpointArgs
from components.schema import SECRET_PLACEHOLDER, ModelSpec
from components.targets.vertex import VertexTarget
from selfhost.preview import run_program

from .conftest import split_by_component

GARDEN = "gcp:vertex/aiEndpointWithModelGardenDeployment:AiEndpointWithModelGardenDeployment"
LABELS = {"environment": "t", "owner": "o", "managed-by": "pulumi", "project": "selfhost-llm"}
ROUTER = "selfhost:gcp:Router"


def split(p, token: str) -> tuple[list, list]:
    """The resources of type `token`: those of the serving target (and the stack's foundation), and the
    router's (its own account, secrets, alerts, ...)."""
    return split_by_component(p, token, ROUTER)


@pytest.fixture
def gcp_prod(previews):
    return previews["gcp-prod"]


def test_network_is_custom_mode_private_and_closed(gcp_prod):
    (vpc,) = gcp_prod.by_type("gcp:compute/network:Network")
    assert vpc.inputs["autoCreateSubnetworks"] is False
    (subnet,) = gcp_prod.by_type("gcp:compute/subnetwork:Subnetwork")
    assert subnet.inputs["privateIpGoogleAccess"] is True and subnet.inputs["logConfig"]["flowSampling"] > 0
    assert subnet.inputs["ipCidrRange"] == "10.40.0.0/20"
    firewalls = gcp_prod.by_type("gcp:compute/firewall:Firewall")
    (deny,) = [f for f in firewalls if f.inputs.get("denies")]
    assert deny.inputs["direction"] == "INGRESS" and deny.inputs["denies"] == [{"protocol": "all"}]
    # Nothing opens ingress: no allow rule at all without a load balancer.
    assert [f for f in firewalls if f.inputs.get("allows")] == []
    # nat: none in this stack: no router, no NAT.
    assert gcp_prod.by_type("gcp:compute/routerNat:RouterNat") == []


def test_endpoint_is_private_through_psc(gcp_prod):
    (deployment,) = gcp_prod.by_type(GARDEN)
    endpoint = deployment.inputs["endpointConfig"]
    assert endpoint["dedicatedEndpointEnabled"] is False
    psc = endpoint["privateServiceConnectConfig"]
    (vpc,) = gcp_prod.by_type("gcp:compute/network:Network")
    assert psc["enablePrivateServiceConnect"] is True and psc["projectAllowlists"] == ["acme-llm-prod"]
    assert psc["pscAutomationConfigs"]["network"] == vpc.id
    (policy,) = gcp_prod.by_type("gcp:networkconnectivity/serviceConnectionPolicy:ServiceConnectionPolicy")
    assert policy.inputs["serviceClass"] == "gcp-vertexai"
    (zone,) = gcp_prod.by_type("gcp:dns/managedZone:ManagedZone")
    assert zone.inputs["visibility"] == "private"
    (record,) = gcp_prod.by_type("gcp:dns/recordSet:RecordSet")
    chat = gcp_prod.outputs["endpoints"]["chat"]
    assert record.inputs["rrdatas"] == [chat["privateIp"]]
    assert chat["invokeUrl"].startswith(f"https://{record.inputs['name'].rstrip('.')}/v1/")


def test_no_basic_roles_and_project_grants_only_where_nothing_narrower_exists(previews):
    for p in previews.values():
        for member in p.by_type("gcp:projects/iAMMember:IAMMember"):
            assert member.inputs["role"] not in FORBIDDEN_ROLES
            assert member.inputs["role"] in PROJECT_ROLES
        for token in ("gcp:projects/iAMBinding:IAMBinding", "gcp:projects/iAMPolicy:IAMPolicy"):
            assert p.by_type(token) == []


def test_hf_secret_is_readable_only_by_the_serving_account(gcp_prod):
    (account,), (router_account,) = split(gcp_prod, "gcp:serviceaccount/account:Account")
    (binding,), router_bindings = split(gcp_prod, "gcp:secretmanager/secretIamBinding:SecretIamBinding")
    assert binding.inputs["role"] == "roles/secretmanager.secretAccessor"
    assert binding.inputs["members"] == [account.computed["member"]]
    assert [r for r in gcp_prod.resources if "secretIamMember" in r.type or "secretIamPolicy" in r.type] == []
    (version,), router_versions = split(gcp_prod, "gcp:secretmanager/secretVersion:SecretVersion")
    assert version.secret_paths == ["secretData"] and version.inputs["secretData"] == SECRET_PLACEHOLDER
    (secret,), router_secrets = split(gcp_prod, "gcp:secretmanager/secret:Secret")
    replicas = secret.inputs["replication"]["userManaged"]["replicas"]
    key = "projects/acme-llm-prod/locations/us-central1/keyRings/gcp-prod-cmek-ring/cryptoKeys/gcp-prod-cmek-key"
    assert replicas == [{"location": "us-central1", "customerManagedEncryption": {"kmsKeyName": key}}]
    # The router's keys (master and callers'): each its own secret, as encrypted, readable by the router's own
    # account only; the router's account never reads the Hugging Face token.
    assert router_account.computed["member"] != account.computed["member"]
    assert len(router_secrets) == len(router_versions) == len(router_bindings) == 3
    assert {b.inputs["secretId"] for b in router_bindings} == {s.inputs["secretId"] for s in router_secrets}
    for b in router_bindings:
        assert b.inputs["role"] == "roles/secretmanager.secretAccessor"
        assert b.inputs["members"] == [router_account.computed["member"]]
    for v in router_versions:
        assert v.secret_paths == ["secretData"] and v.inputs["secretData"] == SECRET_PLACEHOLDER
    for s in router_secrets:
        assert s.inputs["replication"]["userManaged"]["replicas"] == replicas


def test_token_reaches_vertex_only_as_a_secret(gcp_prod):
    (deployment,) = gcp_prod.by_type(GARDEN)
    assert deployment.secret_paths == ["modelConfig.huggingFaceAccessToken"]
    envs = deployment.inputs["modelConfig"]["containerSpec"]["envs"]
    assert all("TOKEN" not in e["name"] for e in envs)


def test_accelerator_matches_the_machine_family(previews):
    for p in previews.values():
        for d in p.by_type(GARDEN):
            spec = d.inputs["deployConfig"]["dedicatedResources"]["machineSpec"]
            if "tpuTopology" in spec:  # a TPU machine carries its chips (tests/test_gcp_tpu.py)
                assert "acceleratorType" not in spec and "acceleratorCount" not in spec
                continue
            allowed = allowed_accelerators(spec["machineType"])
            assert spec["acceleratorCount"] in allowed[spec["acceleratorType"]]


def test_container_pins_the_revision_and_probes_cover_startup(gcp_prod):
    (deployment,) = gcp_prod.by_type(GARDEN)
    container = deployment.inputs["modelConfig"]["containerSpec"]
    assert "--revision=0e9e39f249a16976918f6564b8830bc894c89659" in container["args"]
    assert "--model=meta-llama/Llama-3.1-8B-Instruct" in container["args"]
    assert deployment.inputs["huggingFaceModelId"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert container["ports"] == [{"containerPort": 8080}]
    assert (container["predictRoute"], container["healthRoute"]) == ("/generate", "/ping")
    startup = container["startupProbe"]
    timeout = gcp_prod.outputs["endpoints"]["chat"]["startupTimeoutSeconds"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= timeout >= 480
    assert container["deploymentTimeout"] == f"{timeout}s"
    resources = deployment.inputs["deployConfig"]["dedicatedResources"]
    assert (resources["minReplicaCount"], resources["maxReplicaCount"]) == (1, 3)
    assert resources["autoscalingMetricSpecs"] == [
        {"metricName": "aiplatform.googleapis.com/prediction/online/accelerator/duty_cycle", "target": 60}]


def test_resources_wait_for_their_apis(gcp_prod):
    services = {r.inputs["service"]: r.urn for r in gcp_prod.by_type("gcp:projects/service:Service")}
    (deployment,) = gcp_prod.by_type(GARDEN)
    assert services["aiplatform.googleapis.com"] in deployment.dependencies
    (vpc,) = gcp_prod.by_type("gcp:compute/network:Network")
    assert services["compute.googleapis.com"] in vpc.dependencies
    (secret,), router_secrets = split(gcp_prod, "gcp:secretmanager/secret:Secret")
    for s in (secret, *router_secrets):
        assert services["secretmanager.googleapis.com"] in s.dependencies, s.name
    (account,), (router_account,) = split(gcp_prod, "gcp:serviceaccount/account:Account")
    for a in (account, router_account):
        assert services["iam.googleapis.com"] in a.dependencies, a.name
    # The router: its Cloud Run service and its Artifact Registry (remote) repository.
    (), (service,) = split(gcp_prod, "gcp:cloudrunv2/service:Service")
    assert services["run.googleapis.com"] in service.dependencies
    (), (repository,) = split(gcp_prod, "gcp:artifactregistry/repository:Repository")
    assert services["artifactregistry.googleapis.com"] in repository.dependencies
    assert all(not s.inputs["disableOnDestroy"] for s in gcp_prod.by_type("gcp:projects/service:Service"))


def test_alerts_on_latency_and_errors_and_a_dashboard(gcp_prod):
    endpoint_id = gcp_prod.outputs["endpoints"]["chat"]["endpointId"]
    policies, router_policies = split(gcp_prod, "gcp:monitoring/alertPolicy:AlertPolicy")
    metrics = set()
    for policy in policies:
        condition = policy.inputs["conditions"][0]["conditionThreshold"]
        assert f'resource.labels.endpoint_id = "{endpoint_id}"' in condition["filter"]
        metrics.add(condition["filter"].split('metric.type = "')[1].rstrip('"'))
    assert metrics == {"aiplatform.googleapis.com/prediction/online/prediction_latencies",
                       "aiplatform.googleapis.com/prediction/online/error_count"}
    (dashboard,), (router_dashboard,) = split(gcp_prod, "gcp:monitoring/dashboard:Dashboard")
    assert endpoint_id in dashboard.inputs["dashboardJson"]
    # The router's own: latency and the share of 5xx of its Cloud Run service, and its dashboard.
    (), (service,) = split(gcp_prod, "gcp:cloudrunv2/service:Service")
    router_metrics = set()
    for policy in router_policies:
        condition = policy.inputs["conditions"][0]["conditionThreshold"]
        assert f'resource.labels.service_name = "{service.computed["name"]}"' in condition["filter"]
        router_metrics.add(condition["filter"].split('metric.type = "')[1].split('"')[0])
    assert router_metrics == {"run.googleapis.com/request_latencies", "run.googleapis.com/request_count"}
    assert service.computed["name"] in router_dashboard.inputs["dashboardJson"]


def test_gcp_outputs(gcp_prod):
    out = gcp_prod.outputs
    chat = out["endpoints"]["chat"]
    assert chat["resourceName"] == f"projects/acme-llm-prod/locations/us-central1/endpoints/{chat['endpointId']}"
    assert chat["invokeUrl"].endswith(f"/v1/{chat['resourceName']}:predict")
    assert chat["openaiBaseUrl"].endswith(f"/v1beta1/{chat['resourceName']}")
    assert out["servingServiceAccount"] == "gcp-prod-serving@acme-llm-prod.iam.gserviceaccount.com"
    assert out["gcpHfTokenSecret"] == "projects/acme-llm-prod/secrets/gcp-prod-hf-token"


def run(program):
    return run_program("selfhost-llm", "t", {"gcp:project": "acme-test", "gcp:region": "europe-west4"}, [], program)


def test_network_with_nat_and_a_load_balancer():
    p = run(lambda: Network("n", NetworkArgs(project="acme-test", region="europe-west4", cidr="10.1.0.0/20",
                                                   nat="single", labels=LABELS, health_check_ports=(8080,))))
    (nat,) = p.by_type("gcp:compute/routerNat:RouterNat")
    assert nat.inputs["sourceSubnetworkIpRangesToNat"] == "LIST_OF_SUBNETWORKS"
    (allow,) = [f for f in p.by_type("gcp:compute/firewall:Firewall") if f.inputs.get("allows")]
    assert allow.inputs["sourceRanges"] == list(HEALTH_CHECK_RANGES)
    assert allow.inputs["allows"] == [{"protocol": "tcp", "ports": ["8080"]}]


def test_dedicated_endpoint_needs_no_psc_or_dns():
    model = ModelSpec.model_validate({"name": "qwen", "id": "Qwen/Qwen2.5-7B-Instruct", "maxContext": 8192,
                                      "revision": "a09a35458c702b33eeacc393d103063234e8bc28", "quantization": "fp8"})
    target = VertexTarget.model_validate({"kind": "vertex", "name": "chat", "model": "qwen",
                                          "machineType": "g2-standard-24", "acceleratorType": "NVIDIA_L4",
                                          "acceleratorCount": 2, "spot": True})
    def program() -> None:
        apis = ProjectApis("apis", ProjectApisArgs(project="acme-test", services=(
            "aiplatform.googleapis.com", "monitoring.googleapis.com", "dns.googleapis.com",
            "networkconnectivity.googleapis.com")))
        foundation = GcpFoundation(
            project="acme-test", project_number="123456789012", region="europe-west4", labels=LABELS, apis=apis,
            network_id="projects/acme-test/global/networks/n",
            subnet_id="projects/acme-test/regions/europe-west4/subnetworks/s", service_account_email="sa@x",
            kms_key_id="projects/acme-test/locations/europe-west4/keyRings/r/cryptoKeys/k")
        VertexEndpoint("e", VertexEndpointArgs(
            endpoint_name="t-chat", foundation=foundation, model=model, facts=model.resolved_facts(), hf_token=None,
            labels=LABELS, endpoint=target.endpoint,
            resources=DedicatedResources(
                machine_type=target.machine_type, accelerator_type=target.accelerator_type,
                accelerator_count=target.accelerator_count, min_replicas=target.scaling.min_replicas,
                max_replicas=target.scaling.max_replicas,
                target_duty_cycle_percent=target.scaling.target_duty_cycle_percent, spot=target.spot),
            alerts=AlertThresholds(p99_latency_ms=target.alarms.p99_latency_ms,
                                   errors_per_minute=target.alarms.errors_per_minute)))

    p = run(program)
    (deployment,) = p.by_type(GARDEN)
    assert deployment.inputs["endpointConfig"]["dedicatedEndpointEnabled"] is True
    assert "privateServiceConnectConfig" not in deployment.inputs["endpointConfig"]
    assert p.by_type("gcp:dns/managedZone:ManagedZone") == []
    assert p.by_type("gcp:networkconnectivity/serviceConnectionPolicy:ServiceConnectionPolicy") == []
    container = deployment.inputs["modelConfig"]["containerSpec"]
    assert "--tensor-parallel-size=2" in container["args"] and "--quantization=fp8" in container["args"]
    assert container["sharedMemorySizeMb"] == "8192"
    assert deployment.inputs["deployConfig"]["dedicatedResources"]["spot"] is True
    assert deployment.secret_paths == [] and "huggingFaceAccessToken" not in deployment.inputs["modelConfig"]


def test_request_response_logging_to_bigquery(gcp_prod):
    import json

    (dataset,) = gcp_prod.by_type("gcp:bigquery/dataset:Dataset")
    assert dataset.inputs["location"] == "us-central1"
    assert dataset.inputs["defaultTableExpirationMs"] == 30 * 86_400_000
    assert dataset.inputs["deleteContentsOnDestroy"] is False
    (switch,) = gcp_prod.by_type("command:local:Command")
    env = switch.inputs["environment"]
    chat = gcp_prod.outputs["endpoints"]["chat"]
    assert env["URL"] == (f"https://us-central1-aiplatform.googleapis.com/v1/{chat['resourceName']}"
                          "?updateMask=predict_request_response_logging_config")
    config = json.loads(env["BODY"])["predictRequestResponseLoggingConfig"]
    assert config == {"enabled": True, "samplingRate": 0.05,
                      "bigqueryDestination": {"outputUri": "bq://acme-llm-prod.gcp_prod_chat_requests"}}
    assert json.loads(env["OFF"])["predictRequestResponseLoggingConfig"]["enabled"] is False
    assert "PATCH" in switch.inputs["create"] and '"$OFF"' in switch.inputs["delete"]
    (deployment,) = gcp_prod.by_type(GARDEN)
    assert deployment.urn in switch.dependencies and dataset.urn in switch.dependencies
    assert chat["requestLogDataset"] == "projects/acme-llm-prod/datasets/gcp_prod_chat_requests"
