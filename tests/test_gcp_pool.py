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
    assert health.inputs["httpHealthCheck"] == {"port": 8080, "requestPath": "/health"}
    assert mig["autoHealingPolicies"]["initialDelaySec"] >= 300
    assert mig["updatePolicy"]["maxUnavailableFixed"] == 0 and mig["updatePolicy"]["type"] == "PROACTIVE"
    scaler = only(pool, "gcp:compute/regionAutoscaler:RegionAutoscaler").inputs["autoscalingPolicy"]
    assert (scaler["minReplicas"], scaler["maxReplicas"]) == (1, 4)


def test_the_internal_load_balancer_keeps_streams_and_the_port_is_open_to_it_only(pool):
    backend = only(pool, "gcp:compute/regionBackendService:RegionBackendService").inputs
    assert backend["loadBalancingScheme"] == "INTERNAL_MANAGED" and backend["timeoutSec"] == 3600
    rule = only(pool, "gcp:compute/forwardingRule:ForwardingRule").inputs
    assert rule["loadBalancingScheme"] == "INTERNAL_MANAGED" and rule["portRange"] == "80"
    proxy = next(s for s in pool.by_type("gcp:compute/subnetwork:Subnetwork") if "proxy-only" in s.name)
    assert proxy.inputs["purpose"] == "REGIONAL_MANAGED_PROXY" and proxy.inputs["ipCidrRange"] == "10.254.0.0/23"
    allow = next(f for f in pool.by_type("gcp:compute/firewall:Firewall") if f.name == "gcp-pool-chat-allow-lb")
    assert sorted(allow.inputs["sourceRanges"]) == sorted(["10.254.0.0/23", *HEALTH_CHECK_RANGES])
    assert allow.inputs["allows"] == [{"protocol": "tcp", "ports": ["8080"]}]
    for f in pool.by_type("gcp:compute/firewall:Firewall"):
        for a in f.inputs.get("allows", []):
            assert "22" not in a.get("ports", []) and "0.0.0.0/0" not in f.inputs.get("sourceRanges", [])
    chat = pool.outputs["endpoints"]["chat"]
    assert chat["kind"] == "gcp-pool" and chat["openaiBaseUrl"].startswith("http://10.")


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
