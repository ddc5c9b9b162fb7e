"""The LiteLLM router on Cloud Run (issue 26, Google Cloud): the component declared on a gcp-prod-like foundation
under the preview's mocks, checked for what a reviewer checks (least privilege, no secret in the spec, internal
ingress, VPC egress, an image Cloud Run can pull, probes, timeout, scaling), its policy rules, its cost rule and the
platform's router contract. When components/stack.py wires `router: {platform: gcp}`, a stack-level test belongs here
too (see the report of issue 26)."""

from __future__ import annotations

import json

import pulumi
import pytest
from google.cloud import monitoring_dashboard_v1
from google.protobuf import json_format

from components.catalog.pricing import lookup
from components.cost import estimate, resources_from_preview
from components.gcp.router import MAX_TIMEOUT_S, remote_upstream, request_timeout_seconds
from components.policies import BY_ID, SCANNER_NOTES
from components.policy import Plan
from components.schema import NetworkConfig, Usage
from components.targets.base import Endpoint, HostShape, RouterRuntime
from components.targets.registry import KINDS, PLATFORMS
from selfhost.preview import run_program

PROJECT, REGION = "acme-llm-prod", "us-central1"
MASTER = "sk-router-master-" + "x7" * 12
POOL_KEY = "pool-key-" + "q9" * 12
IMAGE = "ghcr.io/berriai/litellm-non_root:v1.99.4"


def record(name: str, kind: str, auth: str, **details) -> Endpoint:
    return Endpoint(name=name, kind=kind, platform="gcp", region=REGION, model="meta-llama/Llama-3.1-8B-Instruct",
                    invoke_url="https://example.invalid", openai_base_url="https://example.invalid/v1", auth=auth,
                    host=HostShape("g2-standard-12", "L4", 1), min_replicas=1, max_replicas=3, image="x",
                    startup_timeout_seconds=600, details=details)


def runtime(**over) -> RouterRuntime:
    base = dict(
        name="gcp-prod-router", image=IMAGE, port=4000,
        command=("/bin/sh", "-c", 'printf %s "$SELFHOST_CONFIG" > /var/run/router/config.yaml && exec litellm'),
        files={"SELFHOST_CONFIG": "model_list: []\n"}, files_dir="/var/run/router",
        secrets={"LITELLM_MASTER_KEY": MASTER, "POOL_KEY": POOL_KEY}, generated=("CALLER_WEB_KEY",),
        environment={"LITELLM_LOG": "INFO"},
        liveness_path="/health/liveliness", readiness_path="/health/readiness", min_replicas=1, max_replicas=4,
        cpu=1.0, memory_mib=2048, timeout_seconds=900.0,
        routes=(record("chat", "vertex", "gcp-oauth", endpointId="1234567890123456789"),
                record("backup", "vertex", "gcp-oauth", endpointId="9876543210987654321"),
                record("pool", "gcp-pool", "api-key")),
        allowed_cidrs=(), certificate=None, tags={"environment": "gcp-prod"})
    return RouterRuntime(**{**base, **over})


def preview(project, rt: RouterRuntime, production: bool = True):
    def program():
        from components.gcp.foundation import declare_foundation

        foundation, _ = declare_foundation("gcp-prod", PROJECT, REGION, NetworkConfig(cidr="10.40.0.0/20"),
                                           {"environment": "gcp-prod", "owner": "ml-platform"}, None, own_image=False,
                                           extra_apis=["run.googleapis.com"])
        endpoint = PLATFORMS["gcp"].declare_router(_Env(production), foundation, rt)
        pulumi.export("router", {"baseUrl": endpoint.base_url, **endpoint.details})
        pulumi.export("servingServiceAccount", foundation.service_account_email)

    config = {"gcp:project": PROJECT, "gcp:region": REGION}
    return run_program(project.name, "gcp-prod", config, [], program)


class _Env:
    """What `Gcp.declare_router` reads of the environment."""

    def __init__(self, production: bool):
        self.tier = "production" if production else "development"


@pytest.fixture(scope="module")
def p(project):
    return preview(project, runtime())


def only(p, token):
    (r,) = p.by_type(token)
    return r


SERVICE = "gcp:cloudrunv2/service:Service"


def test_ingress_is_internal_and_no_one_is_granted_the_invoker_role(p):
    s = only(p, SERVICE).inputs
    assert s["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY" and s["invokerIamDisabled"] is True
    assert not p.by_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")
    assert not p.by_type("gcp:cloudrunv2/serviceIamBinding:ServiceIamBinding")
    assert s["deletionProtection"] is True
    assert p.outputs["router"]["baseUrl"] == f"https://gcp-prod-router-{_number()}.{REGION}.run.app/v1"


def _number():
    from components.gcp.mocks import project_number

    return project_number(PROJECT)


def test_all_egress_goes_through_the_stacks_subnet_which_has_private_google_access(p):
    access = only(p, SERVICE).inputs["template"]["vpcAccess"]
    subnet = next(s for s in p.by_type("gcp:compute/subnetwork:Subnetwork") if "proxy" not in s.name)
    assert access["egress"] == "ALL_TRAFFIC"
    assert access["networkInterfaces"] == [{"network": only(p, "gcp:compute/network:Network").id,
                                            "subnetwork": subnet.id}]
    # Callers in the VPC reach the internal run.app URL through Private Google Access.
    assert subnet.inputs["privateIpGoogleAccess"] is True


def test_its_own_identity_may_predict_on_exactly_its_vertex_routes(p):
    s = only(p, SERVICE).inputs
    account = only(p, "gcp:serviceaccount/account:Account") if False else next(
        a for a in p.by_type("gcp:serviceaccount/account:Account") if "router" in a.name)
    assert s["template"]["serviceAccount"] == account.computed["email"] != p.outputs["servingServiceAccount"]
    role = only(p, "gcp:projects/iAMCustomRole:IAMCustomRole")
    assert role.inputs["permissions"] == ["aiplatform.endpoints.predict"]
    grants = p.by_type("gcp:vertex/aiEndpointIamMember:AiEndpointIamMember")
    assert sorted(g.inputs["endpoint"] for g in grants) == ["1234567890123456789", "9876543210987654321"]
    assert {(g.inputs["role"], g.inputs["member"], g.inputs["location"]) for g in grants} == {
        (role.computed["name"], account.computed["member"], REGION)}
    # On the project: log and metric writing only.
    project_roles = {m.inputs["role"] for m in p.by_type("gcp:projects/iAMMember:IAMMember")
                     if m.inputs["member"] == account.computed["member"]}
    assert project_roles == {"roles/logging.logWriter", "roles/monitoring.metricWriter"}


def test_each_secret_is_in_secret_manager_with_the_stack_key_readable_by_the_router_alone(p):
    account = next(a for a in p.by_type("gcp:serviceaccount/account:Account") if "router" in a.name)
    key = only(p, "gcp:kms/cryptoKey:CryptoKey").id
    ours = [s for s in p.by_type("gcp:secretmanager/secret:Secret") if "router" in s.name]
    # The runtime's secrets and the key the component generates (a caller's).
    assert sorted(s.inputs["secretId"] for s in ours) == ["gcp-prod-router-caller-web-key",
                                                          "gcp-prod-router-litellm-master-key",
                                                          "gcp-prod-router-pool-key"]
    for secret in ours:
        (replica,) = secret.inputs["replication"]["userManaged"]["replicas"]
        assert replica == {"location": REGION, "customerManagedEncryption": {"kmsKeyName": key}}
    readers = {b.inputs["secretId"]: b.inputs["members"] for b in
               p.by_type("gcp:secretmanager/secretIamBinding:SecretIamBinding") if "router" in b.name}
    assert readers == {s.inputs["secretId"]: [account.computed["member"]] for s in ours}
    versions = [v for v in p.by_type("gcp:secretmanager/secretVersion:SecretVersion") if "router" in v.name]
    assert len(versions) == 3 and all(v.secret_paths == ["secretData"] for v in versions)


def test_no_secret_value_is_in_the_service_spec_or_anywhere_in_the_graph_but_secret_versions(p):
    env = {e["name"]: e for e in only(p, SERVICE).inputs["template"]["containers"][0]["envs"]}
    assert env["LITELLM_MASTER_KEY"] == {"name": "LITELLM_MASTER_KEY", "valueSource": {"secretKeyRef": {
        "secret": "gcp-prod-router-litellm-master-key", "version": "1"}}}
    assert "value" not in env["POOL_KEY"] and env["POOL_KEY"]["valueSource"]["secretKeyRef"]["version"] == "1"
    assert env["SELFHOST_CONFIG"]["value"] == "model_list: []\n" and env["LITELLM_LOG"]["value"] == "INFO"
    for r in p.resources:
        text = json.dumps(r.inputs)
        if MASTER in text or POOL_KEY in text:
            assert r.type == "gcp:secretmanager/secretVersion:SecretVersion" and r.secret_paths == ["secretData"]
    assert MASTER not in json.dumps(p.outputs) and POOL_KEY not in json.dumps(p.outputs)
    assert BY_ID["secrets-not-in-container-env"].run(Plan(_resources(p))) == []


def test_a_token_written_into_a_plain_variable_is_caught(project):
    leaky = preview(project, runtime(environment={"HF_TOKEN": "hf_" + "a1B2c3D4" * 5}))
    (finding,) = BY_ID["secrets-not-in-container-env"].run(Plan(_resources(leaky)))
    assert "HF_TOKEN" in finding.message


def test_the_image_comes_through_a_remote_repository_encrypted_with_the_stack_key(p):
    repo = only(p, "gcp:artifactregistry/repository:Repository").inputs
    assert repo["mode"] == "REMOTE_REPOSITORY" and repo["format"] == "DOCKER"
    assert repo["remoteRepositoryConfig"]["dockerRepository"]["customRepository"]["uri"] == "https://ghcr.io"
    assert repo["kmsKeyName"] == only(p, "gcp:kms/cryptoKey:CryptoKey").id
    image = only(p, SERVICE).inputs["template"]["containers"][0]["image"]
    assert image == f"{REGION}-docker.pkg.dev/{PROJECT}/gcp-prod-router-ghcr/berriai/litellm-non_root:v1.99.4"
    assert remote_upstream("us-docker.pkg.dev/p/r/i:1") is None and remote_upstream("docker.io/library/x:1") is None
    assert remote_upstream("litellm/litellm:v1") is None  # Docker Hub, host implied
    assert remote_upstream("quay.io/org/img@sha256:" + "a" * 64) == ("quay.io", "org/img@sha256:" + "a" * 64)


def test_probes_timeout_resources_and_scaling(p):
    t = only(p, SERVICE).inputs["template"]
    (c,) = t["containers"]
    assert c["startupProbe"]["httpGet"] == {"path": "/health/readiness", "port": 4000}
    assert c["livenessProbe"]["httpGet"] == {"path": "/health/liveliness", "port": 4000}
    assert c["ports"] == {"containerPort": 4000, "name": "http1"}
    assert c["resources"]["limits"] == {"cpu": "1", "memory": "2048Mi"}
    assert c["resources"]["cpuIdle"] is False  # a kept instance: instance-based billing
    assert c["volumeMounts"] == [{"name": "files", "mountPath": "/var/run/router"}]
    assert t["volumes"] == [{"name": "files", "emptyDir": {"medium": "MEMORY", "sizeLimit": "64Mi"}}]
    assert c["commands"][0] == "/bin/sh"
    assert t["timeout"] == "960s" and t["scaling"] == {"minInstanceCount": 1, "maxInstanceCount": 4}
    assert request_timeout_seconds(3590) == MAX_TIMEOUT_S


def test_alerts_and_dashboard_parse_as_monitoring_takes_them(p):
    alerts = p.by_type("gcp:monitoring/alertPolicy:AlertPolicy")
    assert len(alerts) == 2
    filters = " ".join(a.inputs["conditions"][0]["conditionThreshold"]["filter"] for a in alerts)
    assert 'resource.labels.service_name = "gcp-prod-router"' in filters and 'response_code_class = "5xx"' in filters
    board = only(p, "gcp:monitoring/dashboard:Dashboard").inputs["dashboardJson"]
    json_format.Parse(board, monitoring_dashboard_v1.Dashboard()._pb)


def test_the_cost_rule_bills_instance_seconds_when_instances_are_kept_else_requests(project, p):
    usage = Usage.model_validate({"requestsPerDay": 100_000, "hoursPerDay": 12})
    est = estimate(_resources(p), {"gcp": REGION}, usage, lookup)
    items = {i.description.split(" x ")[0]: i for i in est.items if i.type == SERVICE}
    cpu = items["1 vCPU"]
    assert cpu.unit == "vCPU-hour" and cpu.unit_usd == 0.0648 and "cloud.google.com/run/pricing" in cpu.source
    assert cpu.quantity[0] == 730 and cpu.quantity[2] == 4 * 730
    memory = items["2 GiB"]
    assert memory.unit == "GiB-hour" and memory.quantity[0] == 2 * 730
    # Instance-based memory: derived from the request-based price at the CPU's instance/request ratio.
    assert memory.unit_usd == 0.00675 and memory.confidence == "low" and "x 0.75" in memory.source
    assert not [i for i in est.items if i.type == SERVICE and i.unit == "1M-requests"]

    zero = preview(project, runtime(min_replicas=0), production=False)
    est = estimate(_resources(zero), {"gcp": REGION}, usage, lookup)
    mine = [i for i in est.items if i.type == SERVICE]
    assert {i.unit: i.unit_usd for i in mine} == {"vCPU-hour": 0.0864, "GiB-hour": 0.009, "1M-requests": 0.4}
    cpu = next(i for i in mine if i.unit == "vCPU-hour")
    assert cpu.quantity[0] == 0 and 0 < cpu.quantity[1] <= cpu.quantity[2]
    requests = next(i for i in mine if i.unit == "1M-requests")
    assert requests.quantity[1] == pytest.approx(100_000 * 30.4167 / 1e6, rel=1e-3)
    assert only(zero, SERVICE).inputs["deletionProtection"] is False


def test_the_policy_rules_pass_it_and_catch_each_break(p):
    plan = _resources(p)
    outputs = {"servingServiceAccount": p.outputs["servingServiceAccount"]}
    for rule in ("gcp-run-internal-ingress", "gcp-run-dedicated-identity", "gcp-run-vpc-egress"):
        assert BY_ID[rule].run(Plan(plan, outputs=outputs)) == [], rule

    def broken(edit):
        out = []
        for r in plan:
            if r.type == SERVICE:
                inputs = json.loads(json.dumps(r.inputs))
                edit(inputs)
                r = type(r)(r.type, r.name, r.component, inputs)
            out.append(r)
        return Plan(out, outputs=outputs)

    assert BY_ID["gcp-run-internal-ingress"].run(broken(lambda i: i.update(ingress="INGRESS_TRAFFIC_ALL")))
    assert BY_ID["gcp-run-dedicated-identity"].run(broken(
        lambda i: i["template"].update(serviceAccount=outputs["servingServiceAccount"])))
    assert BY_ID["gcp-run-dedicated-identity"].run(broken(lambda i: i["template"].pop("serviceAccount")))
    assert BY_ID["gcp-run-vpc-egress"].run(broken(lambda i: i["template"]["vpcAccess"].update(
        egress="PRIVATE_RANGES_ONLY")))
    assert isinstance(SCANNER_NOTES, dict)


def test_what_a_google_cloud_router_reaches():
    gcp = PLATFORMS["gcp"]
    assert gcp.router_needs == frozenset({"api:run.googleapis.com"})

    class T:
        endpoint_type = "authenticated"

    assert gcp.router_reaches(KINDS["vertex"], T()) is None
    assert gcp.router_reaches(KINDS["gcp-pool"], T()) is None
    assert gcp.router_reaches(KINDS["hf-endpoint"], T()) is None
    T.endpoint_type = "private"
    assert "PrivateLink" in (gcp.router_reaches(KINDS["hf-endpoint"], T()) or "")
    assert "SigV4" in (gcp.router_reaches(KINDS["sagemaker"], T()) or "")
    assert "cluster" in (gcp.router_reaches(KINDS["kubernetes"], T()) or "")


def _resources(p):
    return resources_from_preview(p.to_json())


DIGEST = "ghcr.io/berriai/litellm-non_root:v1.99.4@sha256:" + "a" * 64


@pytest.fixture(scope="module")
def stack(project):
    """gcp-prod with `router: {platform: gcp, order: [chat]}` (pinned by digest: a production tier), through the
    real program."""
    import runpy

    from selfhost.project import stack_config

    config, secret_keys = stack_config(project, "gcp-prod")
    config["selfhost-llm:router"] = json.dumps({"platform": "gcp", "order": ["chat"], "image": DIGEST})
    return run_program(project.name, "gcp-prod", config, secret_keys,
                       lambda: runpy.run_path(str(project.root / "__main__.py"), run_name="__main__"))


def test_the_gcp_prod_stack_with_a_router_on_cloud_run(stack):
    router = stack.outputs["router"]
    assert router["platform"] == "gcp" and router["openaiBaseUrl"].endswith(f".{REGION}.run.app/v1")
    assert router["image"].startswith(f"{REGION}-docker.pkg.dev/{PROJECT}/gcp-prod-router-ghcr/berriai/")
    assert router["image"].endswith("@sha256:" + "a" * 64)  # the digest survives the rewrite
    assert any(s.inputs["service"] == "run.googleapis.com" for s in stack.by_type("gcp:projects/service:Service"))
    (grant,) = stack.by_type("gcp:vertex/aiEndpointIamMember:AiEndpointIamMember")
    deployment = only(stack, "gcp:vertex/aiEndpointWithModelGardenDeployment:AiEndpointWithModelGardenDeployment")
    assert grant.inputs["endpoint"] == deployment.computed["endpoint"]
    service = only(stack, SERVICE).inputs
    assert service["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY" and service["deletionProtection"] is True
    for e in service["template"]["containers"][0]["envs"]:
        if e["name"].endswith("_KEY"):
            assert set(e) == {"name", "valueSource"}
    assert not stack.unmocked_types
    from components.policies import check

    report = check(_resources(stack), None, stack.outputs)
    assert [f for f in report.violations if "run" in f.rule or f.resource and "router" in f.resource] == []


def test_the_quota_rule_counts_the_services_cpu_in_milli_vcpus(p):
    from components.catalog.quotas import QUOTAS
    from components.quotas import plan as quota_plan
    from components.targets.registry import quota_rules

    row = QUOTAS["cloud-run-cpu"]
    assert (row.platform, row.service, row.quota_name, row.metric) == (
        "gcp", "run.googleapis.com", "CpuAllocPerProjectRegion", "run.googleapis.com/cpu_allocation")
    needs = quota_plan(_resources(p), {"gcp": REGION}, quota_rules())
    (need,) = [n for n in needs.needs if n.need == "cloud-run-cpu"]
    # 1 vCPU, 1..4 instances; a rollout starts the new revision's minimum beside the old.
    assert (need.region, need.project, need.at_min, need.at_max, need.at_update) == (
        REGION, PROJECT, 1000, 4000, 5000)


@pytest.mark.slow
def test_checkov_finds_nothing_unexplained_in_the_export_of_the_stack_with_its_router(stack, tmp_path):
    """`selfhost export` of gcp-prod with the router, scanned by the real Checkov: every failed check is a rule's
    exemption or advisory, or a scanner note; the remote repository passes the CMEK check. (Checkov 3.3.30 has no
    check of google_cloud_run_v2_service: its one Cloud Run check, CKV_GCP_102, reads the v1 IAM resources.)"""
    import subprocess
    from pathlib import Path

    from components.policies import check, explain
    from selfhost.export import terraform_plan

    checkov = Path(__file__).resolve().parents[1] / ".tools" / "checkov" / "bin" / "checkov"
    assert checkov.exists(), "`make checkov` installs it"
    graph = stack.to_json()
    export = terraform_plan(graph)
    types = {a.split(".")[0] for a in export.addresses.values()}
    assert {"google_cloud_run_v2_service", "google_project_iam_custom_role",
            "google_vertex_ai_endpoint_iam_member"} <= types
    (tmp_path / "plan.json").write_text(json.dumps(export.document))
    run = subprocess.run([str(checkov), "--framework", "terraform_plan", "--skip-download", "-o", "json", "-f",
                          str(tmp_path / "plan.json")], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert run.returncode in (0, 1), run.stderr
    results = json.loads(run.stdout)["results"]
    report = check(_resources(stack), None, graph["outputs"])
    name_of = {address: next(r["name"] for r in graph["resources"] if r["urn"] == urn)
               for urn, address in export.addresses.items()}
    for failed in results["failed_checks"]:
        verdict, why = explain(failed["check_id"], name_of[failed["resource"]], report)
        assert verdict in ("exempt", "advisory", "noted"), (failed["check_id"], failed["resource"], why)
    passed = {(c["check_id"], c["resource"]) for c in results["passed_checks"]}
    assert ("CKV_GCP_84", "google_artifact_registry_repository.gcp-prod-router-images") in passed


def test_a_certificate_or_extra_address_ranges_are_refused_on_google_cloud(project):
    from components.config import load_environment
    from components.schema import ConfigError
    from selfhost.project import stack_config

    config, secret_keys = stack_config(project, "gcp-prod")
    config["selfhost-llm:router"] = json.dumps({"platform": "gcp", "order": ["chat"], "image": DIGEST,
                                                "certificate": "projects/p/regions/r/sslCertificates/x",
                                                "allowedCidrs": ["10.9.0.0/16"]})
    with pytest.raises(ConfigError) as info:
        load_environment("gcp-prod", config, set(secret_keys))
    keys = sorted(p.path for p in info.value.problems)
    assert keys == ["selfhost-llm:router.allowedCidrs", "selfhost-llm:router.certificate"]
