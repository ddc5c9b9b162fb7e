"""Regional GPU VM pools on Compute Engine behind an internal load balancer: the `gcp-pool` target kind.

Its config model, its checks against the GPU machine catalog, its hosts for `selfhost size` (standard and spot
side by side), its cost rules, and its declaration (components/gcp/pool.py, imported only when declared).
Weights from the Hub or of your own in Cloud Storage (`gs://bucket/prefix`: copied to the VM's disk at boot, the
VMs' service account granted that prefix only), LoRA adapters from either (weight_schemes).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from ..catalog import gcp_machines
from ..catalog.engines import FP8_ARCHS
from ..catalog.gcp_machines import FIXED_GPU_MACHINES, GCE_ACCELERATOR_TYPES
from ..catalog.models import model_id_of_label
from ..catalog.serving import VERTEX_TIMEOUT_BOUNDS_S
from ..catalog.zones import gce_region_zones, gce_zones
from ..cost_rules import Ctx, Estimate, LineItem, Resource, hourly, lora_of, serving_dtypes
from ..litellm import ROUTER_KEY_ID
from ..quotas import CapacityHint, QuotaCtx, QuotaItem
from ..schema import PROJECT, EnvironmentSpec, Problem, Slug, Strict, no_fp8
from ..sizing import startup_timeout_seconds
from .base import Endpoint, HostShape, TargetKind, target_problem, with_router_key
from .gcp import GCP, gcp_gpu_host, gcp_gpu_machine_items

if TYPE_CHECKING:
    import pulumi

    from ..sizing_options import Host, Lookup


class GcpPoolScaling(Strict):
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=1, ge=1, le=100)
    target_requests_per_second_per_instance: float = Field(default=2.0, gt=0)
    """The load balancer's rate per VM that the autoscaler holds at 80%."""


SSL_CERTIFICATE = (r"^(https://www\.googleapis\.com/compute/(v1|beta)/)?projects/[a-z][-a-z0-9.:]{4,61}[a-z0-9]"
                   r"/regions/[a-z]+-[a-z]+[0-9]+/sslCertificates/[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
"""A regional SSL certificate by self link or id."""


class GcpPoolTls(Strict):
    certificate: str | None = Field(default=None, pattern=SSL_CERTIFICATE)
    """A regional SSL certificate (Compute Engine, in the stack's region) the load balancer presents, by self link
    or id (projects/P/regions/R/sslCertificates/N); None: the stack's private CA issues one for the load balancer's
    address, and the endpoint record carries the CA certificate callers trust (`caCertificate`)."""


class PoolAlerts(Strict):
    """What the pool's Cloud Monitoring alert policies fire at (components/gcp/pool_monitoring.py says why these
    defaults)."""

    error_ratio: float = Field(default=0.05, gt=0, le=1)
    """The share of the load balancer's responses in class 500, over 5 minutes."""
    p95_backend_latency_ms: int = Field(default=20_000, ge=100, le=3_600_000)
    """Backend latency p95 (to the response's last byte), milliseconds."""
    no_vms_minutes: int = Field(default=5, ge=1, le=1440)
    """Minutes with the group below 1 VM (declared when minReplicas >= 1)."""


class GcpPoolTarget(Strict):
    kind: Literal["gcp-pool"]
    name: Slug
    model: str
    """The `name` of an entry in `models`."""
    machine_type: str
    """A GPU machine type with its GPUs built in: g2-* (L4), a2-* (A100), a3-* (H100, H200)."""
    concurrency: int = Field(default=1, ge=1, le=1024)
    scaling: GcpPoolScaling = GcpPoolScaling()
    spot: bool = False
    image_family: str = Field(default="common-cu128-ubuntu-2204-nvidia-570", pattern=r"^[a-z][a-z0-9-]{0,62}$")
    """A Deep Learning VM image family (project deeplearning-platform-release) with the NVIDIA driver."""
    backend_timeout_seconds: int = Field(default=3600, ge=30, le=86400)
    """The load balancer's backend timeout: the longest a whole (streamed) answer may take."""
    startup_timeout_seconds: int | None = Field(default=None, ge=60, le=7200)
    """Override the sized autohealing initial delay (download, load and warm-up of the model)."""
    image: Literal["selfhost"] = "selfhost"
    """Pools serve our image: the adapter in front of vLLM."""
    tls: GcpPoolTls = GcpPoolTls()
    """The load balancer listens with TLS on 443 (HTTPS to the VMs too): the certificate it presents."""
    api_keys: list[Slug] = Field(default=["default"], min_length=1, max_length=50)
    """Caller ids: one generated API key each (the endpoint record's `apiKeys`, secrets), in Secret Manager."""
    alerts: PoolAlerts = PoolAlerts()


def _autoscaler(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
    """VM-hours at the replicas the usage needs: the machine and its GPUs, standard or spot as the template
    says (its sibling in the component)."""
    policy = r.inputs.get("autoscalingPolicy") or {}
    low, high = int(policy.get("minReplicas", 0)), int(policy.get("maxReplicas", 0))
    template = ctx.sibling(r, "gcp:compute/instanceTemplate:InstanceTemplate")
    inputs = template.inputs if template else {}
    machine = inputs.get("machineType", "")
    spot = (inputs.get("scheduling") or {}).get("provisioningModel") == "SPOT"
    # Labels hold the Hugging Face id in label characters: the catalog knows which model that is.
    # A checkpoint of your own is not in the catalog: it is sized as the model it was fine-tuned from.
    labels = inputs.get("labels") or {}
    model_id = model_id_of_label(labels.get("selfhost-model", "")) or model_id_of_label(labels.get("selfhost-base", ""))
    quantization, kv_bytes = serving_dtypes(inputs.get("labels"))
    accelerator, count = gcp_machines.FIXED_GPU_MACHINES.get(machine, ("", 0))
    suffix, label = ("-spot", "spot") if spot else ("", "standard")
    return gcp_gpu_machine_items(r, ctx, est, model_id=model_id, machine=machine, accelerator=accelerator,
                                 count=count, low=low, high=high,
                                 services=(f"gce-machine{suffix}", f"gce-gpu{suffix}"), unit="vm-hour",
                                 description=f"{machine} {label} x {low}..{high} ({model_id or 'model'})", per="VM",
                                 quantization=quantization, kv_bytes=kv_bytes, lora=lora_of(labels))


def _boot_disks(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
    gb = sum(int(d.get("diskSizeGb", 0)) for d in r.inputs.get("disks") or [])
    scaler = ctx.sibling(r, "gcp:compute/regionAutoscaler:RegionAutoscaler")
    policy = (scaler.inputs.get("autoscalingPolicy") or {}) if scaler else {}
    low, high = int(policy.get("minReplicas", 1)), int(policy.get("maxReplicas", 1))
    return [ctx.item(r, "gcp", "pd-balanced", "gb-month", "GB-month", (gb * low, gb * low, gb * high),
                     f"{gb} GB balanced persistent disk per VM")]


def _quota(r: Resource, ctx: QuotaCtx) -> list[QuotaItem]:
    """Compute Engine's GPU quota of the template's accelerator in the region (the preemptible one for spot VMs),
    and the project's GPUs in all regions, at the autoscaler's bounds; a rollout adds the update policy's surge
    VMs. And whether Vertex's table offers the accelerator in the region at all."""
    template = ctx.sibling(r, "gcp:compute/instanceTemplate:InstanceTemplate")
    scaler = ctx.sibling(r, "gcp:compute/regionAutoscaler:RegionAutoscaler")
    if template is None:
        return []
    t = template.inputs
    machine = str(t.get("machineType", ""))
    attached = [(a.get("type"), int(a.get("count", 0))) for a in t.get("guestAccelerators") or []]
    fixed = FIXED_GPU_MACHINES.get(machine)
    if fixed:
        accelerator, per_vm = GCE_ACCELERATOR_TYPES[fixed[0]], fixed[1]
    elif attached:
        accelerator, per_vm = str(attached[0][0]), attached[0][1]
    else:
        return []
    policy = (scaler.inputs.get("autoscalingPolicy") or {}) if scaler else {}
    low, high = int(policy.get("minReplicas", 1)), int(policy.get("maxReplicas", 1))
    surge = int((r.inputs.get("updatePolicy") or {}).get("maxSurgeFixed", 0))
    scheduling = t.get("scheduling") or {}
    spot = scheduling.get("provisioningModel") == "SPOT" or bool(scheduling.get("preemptible"))
    region, project = str(r.inputs.get("region") or ctx.regions.get("gcp", "")), r.inputs.get("project")
    gpus = (low * per_vm, high * per_vm, (high + surge) * per_vm)
    out: list[QuotaItem] = [
        ctx.need(f"gce-gpus:{'spot' if spot else 'on-demand'}:{accelerator}", r, *gpus, region=region,
                 project=project),
        ctx.need("gce-gpus-all-regions", r, *gpus, project=project)]
    offered, everywhere = gce_zones(region, accelerator, machine), gce_region_zones(region)
    pinned = tuple(r.inputs.get("distributionPolicyZones") or ())
    spread = pinned or everywhere
    missing = [z for z in spread if z not in offered]
    if not everywhere:
        out.append(CapacityHint(r.name, "warning", f"no zone table for {region}: whether {machine} ({accelerator}) "
                                "is offered in every zone the group spans is not known"))
    elif missing or not offered:
        out.append(CapacityHint(r.name, "warning", f"{machine} ({accelerator}) is not offered in "
                                f"{', '.join(missing) or region}, which the group spans: VMs there never start"))
    else:
        out.append(CapacityHint(r.name, "ok", f"{machine} ({accelerator}) is offered in every zone the group spans "
                                f"({', '.join(spread)}{'' if pinned else ': all of the region'})"))
    return out


class GcpPool(TargetKind):
    kind = "gcp-pool"
    config = GcpPoolTarget
    platform = "gcp"
    weight_schemes = ("hub", "gs")
    summary = "Compute Engine GPU VM pool (regional MIG, spot by config) behind an internal Application LB"
    needs_egress_for_hub = True
    quota_rules: ClassVar[dict[str, Any]] = {
        "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager": _quota}
    cost_rules: ClassVar[dict[str, Any]] = {
        "gcp:compute/regionAutoscaler:RegionAutoscaler": _autoscaler,
        "gcp:compute/instanceTemplate:InstanceTemplate": _boot_disks,
        "gcp:compute/forwardingRule:ForwardingRule": hourly("gcp", "load-balancer", "forwarding-rule-hour",
                                                           "internal load balancer forwarding rule",
                                                           "plus per-GB data processing, not estimated"),
    }
    free_types = frozenset({
        "gcp:compute/regionHealthCheck:RegionHealthCheck",
        "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager",
        "gcp:compute/regionBackendService:RegionBackendService", "gcp:compute/regionUrlMap:RegionUrlMap",
        "gcp:compute/regionTargetHttpsProxy:RegionTargetHttpsProxy",
        "gcp:compute/regionSslCertificate:RegionSslCertificate", "gcp:compute/regionSslPolicy:RegionSslPolicy",
        "gcp:compute/address:Address",  # an internal address: no charge
    })

    def platform_needs(self, target: Any) -> frozenset[str]:
        return frozenset({"own-image", "proxy-subnet"})

    def validate(self, env: EnvironmentSpec, index: int, target: Any) -> list[Problem]:
        t: GcpPoolTarget = target
        problems: list[Problem] = []
        p = lambda key, *rest: problems.append(target_problem(index, key, *rest))  # noqa: E731
        region = GCP.of(env).region  # its absence is the platform's problem
        if ipaddress.ip_network(env.network.cidr).overlaps(ipaddress.ip_network(gcp_machines.PROXY_SUBNET_CIDR)):
            problems.append(Problem(f"{PROJECT}:network.cidr", env.network.cidr,
                                    f"overlaps the proxy-only subnet {gcp_machines.PROXY_SUBNET_CIDR} an internal "
                                    "load balancer needs", f"a private range outside {gcp_machines.PROXY_SUBNET_CIDR}"))
        if t.machine_type not in gcp_machines.FIXED_GPU_MACHINES:
            p("machineType", t.machine_type, "not a GPU machine type with built-in GPUs",
              ", ".join(gcp_machines.FIXED_GPU_MACHINES))
            return problems
        accelerator, count = gcp_machines.FIXED_GPU_MACHINES[t.machine_type]
        region = region or ""
        cert_region = t.tls.certificate.split("/regions/")[1].split("/")[0] if t.tls.certificate else region
        if cert_region != region:
            p("tls.certificate", t.tls.certificate, f"a certificate in {cert_region}: the load balancer is in {region}",
              f"a regional SSL certificate in {region}")
        if len(set(t.api_keys)) != len(t.api_keys):
            p("apiKeys", t.api_keys, "names a caller twice", "distinct caller ids")
        if gce_region_zones(region) and not gce_zones(region, accelerator, t.machine_type):
            offered = sorted({m for m, (a, _) in gcp_machines.FIXED_GPU_MACHINES.items() if gce_zones(region, a, m)})
            p("machineType", t.machine_type, f"not offered in any zone of {region} (components/catalog/zones.py)",
              ", ".join(offered) or "another region")
        model = env.model(t.model)
        facts = model.resolved_facts()
        if facts is None:
            return problems
        host = gcp_machines.host(t.machine_type, accelerator, count)
        if model.quantization == "fp8" and host.gpu.arch not in FP8_ARCHS:
            p("machineType", t.machine_type, no_fp8(host.gpu.name, model),
              ", ".join(m for m, (a, _) in gcp_machines.FIXED_GPU_MACHINES.items()
                        if gcp_machines.host(m, a, 1).gpu.arch in FP8_ARCHS))
        return problems + self.fit_problems(env, index, t, facts, "machineType", t.machine_type, count,
                                            host.total_gpu_memory_gib, t.machine_type, region)

    def declare(self, env: EnvironmentSpec, target: Any, foundation: Any,
                hf_token: pulumi.Output[str] | None) -> Endpoint:
        from ..gcp.foundation import labels_of
        from ..gcp.pool import GpuInstancePool, GpuInstancePoolArgs, GroupScaling

        t: GcpPoolTarget = target
        model = env.model(t.model)
        facts = model.resolved_facts()
        assert facts is not None  # validated
        accelerator, count = gcp_machines.FIXED_GPU_MACHINES[t.machine_type]
        startup = t.startup_timeout_seconds or startup_timeout_seconds(facts, model.quantization, model.location.scheme,
                                                                       VERTEX_TIMEOUT_BOUNDS_S)
        labels = labels_of(self.identity_tags(env, t))
        pool = GpuInstancePool(f"{env.name}-{t.name}", GpuInstancePoolArgs(
            pool_name=f"{env.name}-{t.name}", foundation=foundation, model=model, machine_type=t.machine_type,
            gpu_count=count, image_family=t.image_family, spot=t.spot,
            scaling=GroupScaling(min_replicas=t.scaling.min_replicas, max_replicas=t.scaling.max_replicas,
                                 requests_per_second_per_instance=t.scaling.target_requests_per_second_per_instance),
            backend_timeout_seconds=t.backend_timeout_seconds, startup_timeout_seconds=startup, labels=labels,
            api_keys=with_router_key(t.api_keys, env.routed(t.name)), certificate=t.tls.certificate,
            tags=env.all_tags))
        import pulumi

        from ..gcp.pool_monitoring import PoolAlertThresholds, PoolMonitoring, PoolMonitoringArgs

        PoolMonitoring(f"{env.name}-{t.name}-monitoring", PoolMonitoringArgs(
            pool_name=f"{env.name}-{t.name}", project=foundation.project, region=foundation.region,
            forwarding_rule_name=pool.forwarding_rule.name, labels=labels, min_instances=t.scaling.min_replicas,
            model_id=model.id, depends_on=foundation.apis.needs("monitoring.googleapis.com"),
            thresholds=PoolAlertThresholds(t.alerts.error_ratio, t.alerts.p95_backend_latency_ms,
                                           t.alerts.no_vms_minutes)),
            opts=pulumi.ResourceOptions(parent=pool))
        return Endpoint(
            name=t.name, kind=self.kind, platform=self.platform, region=foundation.region, model=model.id,
            invoke_url=pool.invoke_url, openai_base_url=pool.openai_base_url, auth=self.auth(t),
            host=HostShape(t.machine_type, accelerator, count), min_replicas=t.scaling.min_replicas,
            max_replicas=t.scaling.max_replicas, image=pool.image, startup_timeout_seconds=startup,
            router_key=pool.api_keys.apply(lambda keys: keys[ROUTER_KEY_ID]) if env.routed(t.name) else None,
            details={"poolName": pool.group.name, "spot": t.spot, "apiKeys": pool.api_keys,
                     **({"caCertificate": pool.ca_certificate} if pool.ca_certificate is not None else {})},
        )

    def auth(self, target: Any) -> str:
        return "api-key"  # our adapter's API keys, over TLS; the internal load balancer answers only in the VPC

    def gpus(self, record: Mapping[str, Any]) -> set[str]:
        accelerator = str((record.get("host") or {}).get("accelerator") or "")
        return {gcp_machines.ACCELERATORS.get(accelerator, accelerator)} if accelerator else set()

    def hosts(self, region: str, lookup: Lookup) -> list[Host]:
        return [gcp_gpu_host(self.kind, f"{machine} ({label})", machine, accelerator, count, region, lookup,
                             (f"gce-machine{suffix}", f"gce-gpu{suffix}"))
                for machine, (accelerator, count) in gcp_machines.FIXED_GPU_MACHINES.items()
                for suffix, label in (("", "standard"), ("-spot", "spot"))]
