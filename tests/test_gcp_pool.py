"""GPU VM pools on Compute Engine (the `gcp-pool` target kind, issue 10): the gcp-pool stack's plan against
the invariants a reviewer checks, the config errors and the cost."""

from __future__ import annotations

import pytest

from components.catalog.pricing import lookup
from components.config import ConfigError
from components.cost import estimate as price
from components.cost import resources_from_preview
from components.gcp.network import HEALTH_CHECK_RANGES
from components.schema import Usage
from components.targets.registry import hosts

from .test_config import REV, as_pulumi, load_environment


@pytest.fixture(scope="module")
def pool(previews):
    return previews["gcp-pool"]


def only(p, token):
    (r,) = p.by_type(token)
    return r


def test_the_template_terminates_on_maintenance_has_no_external_ip_and_pins_its_image(pool):
    t = only(pool, "gcp:compute/instanceTemplate:InstanceTemplate").inputs
    assert t["scheduling"]["onHostMaintenance"] == "TERMINATE"  # GPUs cannot live-migrate
    assert t["scheduling"]["provisioningModel"] == "SPOT" and t["scheduling"]["preemptible"] is True
    assert all("accessConfigs" not in n for n in t["networkInterfaces"])  # no external IP
    [disk] = t["disks"]
    assert disk["sourceImage"].startswith(
        "https://www.googleapis.com/compute/v1/projects/deeplearning-platform-release/global/images/"
        "common-cu128-ubuntu-2204-nvidia-570-v")  # resolved from the family, pinned by link
    assert t["shieldedInstanceConfig"] == {"enableSecureBoot": False, "enableVtpm": True,
                                           "enableIntegrityMonitoring": True}
    assert t["metadata"]["enable-oslogin"] == "TRUE" and t["metadata"]["block-project-ssh-keys"] == "TRUE"
    assert t["serviceAccount"]["email"] == pool.outputs["servingServiceAccount"]


def test_the_token_is_read_at_boot_never_written_into_the_startup_script(pool):
    template = only(pool, "gcp:compute/instanceTemplate:InstanceTemplate")
    script = template.inputs["metadata"]["startup-script"]
    assert "gcloud secrets versions access latest --secret=projects/acme-llm-pool/secrets/gcp-pool-hf-token" in script
    assert "HF_TOKEN=" not in script and "-e HF_TOKEN_PATH=/run/secrets/hf_token" in script
    assert template.secret_paths == []
    assert "--max-model-len 8192" in script and script.rstrip().endswith(" openai")


def test_the_group_heals_on_readiness_and_rolls_without_taking_vms_down(pool):
    mig = only(pool, "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager").inputs
    health = only(pool, "gcp:compute/regionHealthCheck:RegionHealthCheck")
    assert health.inputs["httpsHealthCheck"] == {"port": 8080, "requestPath": "/health"}  # the adapter's TLS
    assert mig["autoHealingPolicies"]["initialDelaySec"] >= 300
    assert mig["updatePolicy"]["maxUnavailableFixed"] == 0 and mig["updatePolicy"]["type"] == "PROACTIVE"
    scaler = only(pool, "gcp:compute/regionAutoscaler:RegionAutoscaler").inputs["autoscalingPolicy"]
    assert (scaler["minReplicas"], scaler["maxReplicas"]) == (1, 4)


def test_the_internal_load_balancer_keeps_streams_and_the_port_is_open_to_it_only(pool):
    backend = only(pool, "gcp:compute/regionBackendService:RegionBackendService").inputs
    assert backend["loadBalancingScheme"] == "INTERNAL_MANAGED" and backend["timeoutSec"] == 3600
    rule = only(pool, "gcp:compute/forwardingRule:ForwardingRule").inputs
    assert rule["loadBalancingScheme"] == "INTERNAL_MANAGED" and rule["portRange"] == "443"
    proxy = next(s for s in pool.by_type("gcp:compute/subnetwork:Subnetwork") if "proxy-only" in s.name)
    assert proxy.inputs["purpose"] == "REGIONAL_MANAGED_PROXY" and proxy.inputs["ipCidrRange"] == "10.254.0.0/23"
    allow = next(f for f in pool.by_type("gcp:compute/firewall:Firewall") if f.name == "gcp-pool-chat-allow-lb")
    assert sorted(allow.inputs["sourceRanges"]) == sorted(["10.254.0.0/23", *HEALTH_CHECK_RANGES])
    assert allow.inputs["allows"] == [{"protocol": "tcp", "ports": ["8080"]}]
    for f in pool.by_type("gcp:compute/firewall:Firewall"):
        for a in f.inputs.get("allows", []):
            assert "22" not in a.get("ports", []) and "0.0.0.0/0" not in f.inputs.get("sourceRanges", [])
    chat = pool.outputs["endpoints"]["chat"]
    assert chat["kind"] == "gcp-pool" and chat["openaiBaseUrl"].startswith("https://10.")


def test_the_pool_is_priced_at_spot_rates_with_its_gpus(pool):
    est = price(resources_from_preview(pool.to_json()), {"gcp": "us-central1"}, Usage.from_wire({}), lookup)
    machine = next(i for i in est.items if i.description.startswith("g2-standard-8 spot"))
    gpu = next(i for i in est.items if i.description == "1 x NVIDIA_L4 per VM")
    assert machine.unit_usd == 0.15003 and machine.quantity == (730, 730, 4 * 730)
    assert gpu.unit_usd is not None and gpu.quantity == machine.quantity
    assert "meta-llama/Llama-3.1-8B-Instruct" in machine.description  # read back from the model label


def test_selfhost_size_lists_gcp_pool_hosts_beside_vertex():
    names = {(h.target, h.name) for h in hosts(("gcp",), {"gcp": "us-central1"}, lookup)}
    assert ("gcp-pool", "g2-standard-8 (spot)") in names and ("vertex", "g2-standard-8 (1 x NVIDIA_L4)") in names


def test_pool_config_errors():
    cfg = {"gcp:project": "acme-test-123", "gcp:region": "us-central1",
           "selfhost-llm:network": {"cidr": "10.254.0.0/16", "nat": "single"},
           "selfhost-llm:models": [{"name": "qwen", "id": "Qwen/Qwen2.5-1.5B-Instruct", "revision": REV}],
           "selfhost-llm:targets": [{"kind": "gcp-pool", "name": "chat", "model": "qwen",
                                     "machineType": "n2-standard-8"}]}
    with pytest.raises(ConfigError) as info:
        load_environment("test", as_pulumi(cfg), set())
    found = [str(p) for p in info.value.problems]
    assert any(p.startswith("selfhost-llm:network.cidr: '10.254.0.0/16': overlaps the proxy-only subnet")
               for p in found)
    assert any(p.startswith("selfhost-llm:targets[0].machineType: 'n2-standard-8': not a GPU machine type")
               for p in found)


def test_the_group_spans_only_zones_that_offer_its_gpu(pool):
    mig = only(pool, "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager").inputs
    # g2-standard-8 (L4) is in us-central1-a, -b and -c, not in -f (components/catalog/zones.py, from SkyPilot's
    # catalog): a group spread over -f too would try to start VMs where there is no L4.
    assert mig["distributionPolicyZones"] == ["us-central1-a", "us-central1-b", "us-central1-c"]
    # A regional group's fixed surge must cover every zone.
    assert mig["updatePolicy"]["maxSurgeFixed"] >= len(mig["distributionPolicyZones"])


def test_a_machine_no_zone_of_the_region_offers_is_refused():
    cfg = {"gcp:project": "acme-test-123", "gcp:region": "us-east4",
           "selfhost-llm:network": {"nat": "single"},
           "selfhost-llm:models": [{"name": "qwen", "id": "Qwen/Qwen2.5-1.5B-Instruct", "revision": REV}],
           "selfhost-llm:targets": [{"kind": "gcp-pool", "name": "chat", "model": "qwen",
                                     "machineType": "a2-highgpu-1g"}]}
    with pytest.raises(ConfigError) as info:
        load_environment("test", as_pulumi(cfg), set())
    (problem,) = [str(p) for p in info.value.problems if "machineType" in p.path]
    assert problem.startswith("selfhost-llm:targets[0].machineType: 'a2-highgpu-1g': not offered in any zone of "
                              "us-east4")
    assert "g2-standard-8" in problem


# ---------------------------------------------------------------------------------------------------------
# Issue 25: HTTPS on the load balancer and to the VMs, callers' API keys


PROXY = "gcp:compute/regionTargetHttpsProxy:RegionTargetHttpsProxy"
CERT = "gcp:compute/regionSslCertificate:RegionSslCertificate"
GIVEN = "projects/acme-llm-pool/regions/us-central1/sslCertificates/llm-internal"


def with_target(project, **changes):
    """The gcp-pool stack previewed with `changes` made to its target."""
    import json
    import runpy

    from selfhost.preview import run_program
    from selfhost.project import stack_config

    cfg, secret_keys = stack_config(project, "gcp-pool")
    targets = json.loads(cfg["selfhost-llm:targets"])
    for t in targets:
        t.update(changes)
    cfg["selfhost-llm:targets"] = json.dumps(targets)
    return run_program(project.name, "gcp-pool", cfg, secret_keys,
                       lambda: runpy.run_path(str(project.root / "__main__.py"), run_name="__main__"))


def test_the_load_balancer_listens_with_https_only_tls_1_2_and_up_at_its_reserved_address(pool):
    assert pool.by_type("gcp:compute/regionTargetHttpProxy:RegionTargetHttpProxy") == []  # no plain HTTP
    proxy = only(pool, PROXY)
    cert = only(pool, CERT)
    assert proxy.inputs["sslCertificates"] == [cert.computed["selfLink"]]
    policy = only(pool, "gcp:compute/regionSslPolicy:RegionSslPolicy")
    assert proxy.inputs["sslPolicy"] == policy.computed["selfLink"]
    assert (policy.inputs["minTlsVersion"], policy.inputs["profile"]) == ("TLS_1_2", "RESTRICTED")
    rule = only(pool, "gcp:compute/forwardingRule:ForwardingRule")
    address = only(pool, "gcp:compute/address:Address")
    assert rule.inputs["target"] == proxy.id and rule.inputs["portRange"] == "443"
    assert address.inputs["addressType"] == "INTERNAL" and address.inputs["subnetwork"] == rule.inputs["subnetwork"]
    assert rule.inputs["ipAddress"] == address.computed["address"]
    assert address.computed["address"].startswith("10.40.")  # from the stack's subnet, 10.40.0.0/20
    chat = pool.outputs["endpoints"]["chat"]
    assert chat["openaiBaseUrl"] == f"https://{address.computed['address']}/v1" and chat["auth"] == "api-key"


def test_the_backend_speaks_https_to_the_vms_and_logs_every_request(pool):
    backend = only(pool, "gcp:compute/regionBackendService:RegionBackendService").inputs
    health = only(pool, "gcp:compute/regionHealthCheck:RegionHealthCheck")
    assert (backend["protocol"], backend["portName"]) == ("HTTPS", "https")
    assert backend["healthChecks"] == health.id and "httpHealthCheck" not in health.inputs
    assert backend["logConfig"] == {"enable": True, "sampleRate": 1.0}
    mig = only(pool, "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager").inputs
    assert mig["namedPorts"] == [{"name": "https", "port": 8080}]
    script = only(pool, "gcp:compute/instanceTemplate:InstanceTemplate").inputs["metadata"]["startup-script"]
    assert "-e SELFHOST_TLS_CERT_FILE=" in script and "-e SELFHOST_TLS_KEY_FILE=" in script  # made at boot
    from components.cost import resources_from_preview
    from components.policies import BY_ID, Plan

    plan = resources_from_preview(pool.to_json())
    for rule in ("gcp-lb-https", "gcp-lb-logging"):  # the policy pack holds the pool to it
        assert BY_ID[rule].run(Plan(plan)) == [], rule


def test_the_stacks_ca_issues_the_certificate_for_the_address_and_the_record_carries_it(pool):
    address = only(pool, "gcp:compute/address:Address").computed["address"]
    (ca,) = [r for r in pool.resources if r.type == "selfhost:tls:PrivateCa"]
    ca_cert = only(pool, "tls:index/selfSignedCert:SelfSignedCert")
    issued = only(pool, "tls:index/locallySignedCert:LocallySignedCert")
    request = only(pool, "tls:index/certRequest:CertRequest")
    assert request.inputs["ipAddresses"] == [address] and request.inputs["subject"]["commonName"] == address
    assert "server_auth" in issued.inputs["allowedUses"]
    cert = only(pool, CERT)
    assert cert.parent.endswith("selfhost:gcp:GpuInstancePool::gcp-pool-chat") and ca.parent == cert.parent
    assert sorted(cert.secret_paths) == ["certificate", "privateKey"]  # the key is a secret in the state
    assert issued.urn in cert.dependencies and cert.inputs["namePrefix"] == "gcp-pool-chat-"
    chat = pool.outputs["endpoints"]["chat"]
    assert chat["caCertificate"] == ca_cert.computed["certPem"]
    assert chat["caCertificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert "endpoints.chat.caCertificate" not in pool.secret_outputs  # what callers trust is public


def test_api_keys_live_in_secret_manager_encrypted_with_the_environment_key(pool):
    secret = next(r for r in pool.by_type("gcp:secretmanager/secret:Secret") if r.name == "gcp-pool-chat-api-keys")
    assert secret.inputs["secretId"] == "gcp-pool-chat-api-keys"
    [replica] = secret.inputs["replication"]["userManaged"]["replicas"]
    assert replica["location"] == "us-central1"
    assert replica["customerManagedEncryption"]["kmsKeyName"] == pool.outputs["kmsKeyId"]
    version = next(r for r in pool.by_type("gcp:secretmanager/secretVersion:SecretVersion")
                   if r.name == "gcp-pool-chat-api-keys-version")
    assert version.inputs["secret"] == secret.id and version.secret_paths == ["secretData"]
    [key] = pool.by_type("random:index/randomPassword:RandomPassword")
    assert key.name == "gcp-pool-chat-key-default" and key.inputs["length"] >= 32
    chat = pool.outputs["endpoints"]["chat"]
    assert "endpoints.chat.apiKeys" in pool.secret_outputs and chat["apiKeys"] == "[secret]"


def test_the_keys_are_fetched_at_boot_never_in_the_startup_script_metadata_or_container_env(pool, previews):
    import hashlib

    from components.cost import resources_from_preview
    from components.policies import BY_ID, Plan

    template = only(pool, "gcp:compute/instanceTemplate:InstanceTemplate")
    script = template.inputs["metadata"]["startup-script"]
    assert ("gcloud secrets versions access latest --secret=projects/acme-llm-pool/secrets/gcp-pool-chat-api-keys "
            "--project=acme-llm-pool > /run/selfhost/api_keys") in script
    assert "-v /run/selfhost/api_keys:/run/secrets/api_keys:ro" in script  # a file in memory, mounted read-only
    # Written under umask 077, then handed to the image's non-root user (APP_UID): nobody else may read them.
    assert script.index("umask 077") < script.index("> /run/selfhost/api_keys")
    assert ("chown 10001:10001 /run/selfhost/hf_token /run/selfhost/api_keys /run/selfhost/tls.crt "
            "/run/selfhost/tls.key\n") in script
    assert "chown 10001:10001 /var/lib/selfhost/hf\n" in script  # the model cache is the container user's
    assert template.secret_paths == []
    # The mocked key (the random provider's mock: its URN's hash) appears nowhere in the template.
    [key] = pool.by_type("random:index/randomPassword:RandomPassword")
    value = hashlib.sha256(f"{key.urn}password".encode()).hexdigest()[:48]
    assert value not in str(template.inputs)
    assert "API_KEY=" not in script.upper().replace("SELFHOST_API_KEYS_FILE=", "")
    # The template waits for the key's version and the accessor binding: the VMs read them at boot.
    assert {r.urn for r in pool.resources if r.name in ("gcp-pool-chat-api-keys-version",
                                                        "gcp-pool-chat-api-keys-accessor")} <= set(
        template.dependencies)
    plan = resources_from_preview(pool.to_json())
    for rule in ("secrets-not-in-user-data", "secrets-not-in-container-env", "secrets-not-in-outputs",
                 "gcp-secret-cmek"):
        assert [f for f in BY_ID[rule].run(Plan(plan, outputs=pool.outputs)) if f.exempt is None] == [], rule


def test_only_the_serving_account_may_read_the_keys_and_only_that_secret(pool):
    account = pool.outputs["servingServiceAccount"]
    binding = next(r for r in pool.by_type("gcp:secretmanager/secretIamBinding:SecretIamBinding")
                   if r.name == "gcp-pool-chat-api-keys-accessor")
    assert binding.inputs == {"project": "acme-llm-pool", "secretId": "gcp-pool-chat-api-keys",
                              "role": "roles/secretmanager.secretAccessor",
                              "members": [f"serviceAccount:{account}"]}
    # No project-wide grant that would reach every secret.
    roles = {r.inputs["role"] for r in pool.by_type("gcp:projects/iAMMember:IAMMember")}
    assert not {r for r in roles if r.startswith("roles/secretmanager.")}


def test_a_given_certificate_is_used_instead_of_the_ca(project):
    p = with_target(project, tls={"certificate": f"https://www.googleapis.com/compute/v1/{GIVEN}"},
                    apiKeys=["app", "batch"])
    assert p.by_type(CERT) == [] and p.by_type("tls:index/selfSignedCert:SelfSignedCert") == []
    assert only(p, PROXY).inputs["sslCertificates"] == [f"https://www.googleapis.com/compute/v1/{GIVEN}"]
    chat = p.outputs["endpoints"]["chat"]
    assert "caCertificate" not in chat and chat["openaiBaseUrl"].startswith("https://10.40.")
    assert sorted(k.name for k in p.by_type("random:index/randomPassword:RandomPassword")) == [
        "gcp-pool-chat-key-app", "gcp-pool-chat-key-batch"]


def test_tls_and_key_config_errors():
    cfg = {"gcp:project": "acme-test-123", "gcp:region": "us-central1",
           "selfhost-llm:network": {"nat": "single"},
           "selfhost-llm:models": [{"name": "qwen", "id": "Qwen/Qwen2.5-1.5B-Instruct", "revision": REV}],
           "selfhost-llm:targets": [{"kind": "gcp-pool", "name": "chat", "model": "qwen",
                                     "machineType": "g2-standard-8", "apiKeys": ["app", "app"],
                                     "tls": {"certificate": "projects/acme-test-123/regions/europe-west4/"
                                                            "sslCertificates/llm"}}]}
    with pytest.raises(ConfigError) as info:
        load_environment("test", as_pulumi(cfg), set())
    found = [str(p) for p in info.value.problems]
    assert any(p.startswith("selfhost-llm:targets[0].tls.certificate: ") and "europe-west4" in p for p in found)
    assert any(p.startswith("selfhost-llm:targets[0].apiKeys: ") for p in found)
    cfg["selfhost-llm:targets"][0].update(apiKeys=["app"], tls={"certificate": "arn:aws:acm:us-east-1:1:cert/x"})
    with pytest.raises(ConfigError) as info:
        load_environment("test", as_pulumi(cfg), set())
    assert [p.path for p in info.value.problems] == ["selfhost-llm:targets[0].tls.certificate"]
