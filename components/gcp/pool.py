"""A regional pool of GPU VMs on Compute Engine serving our image behind an internal Application Load Balancer."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp
import pulumi_random as random

from ..catalog.gcp_machines import FIXED_GPU_MACHINES, PROXY_SUBNET_CIDR
from ..catalog.kubernetes import APP_UID
from ..catalog.zones import gce_zones
from ..schema import ModelSpec
from ..serving_image import PORT, boot_script, weights_on_disk
from ..tls import PrivateCa, PrivateCaArgs
from ..weights import Location
from .foundation import GcpFoundation
from .iam import grant_model_weights
from .network import HEALTH_CHECK_RANGES

HEALTH_PATH = "/health"
# Deep Learning VM images (NVIDIA driver, Docker, the NVIDIA container toolkit, gcloud) live in this project.
IMAGE_PROJECT = "deeplearning-platform-release"
BOOT_DISK_GB = 200
# Network tag the firewall rules open the serving port to.
SERVING_TAG = "selfhost-serving"


def gpu_zones(region: str, machine_type: str) -> tuple[str, ...]:
    """The zones of `region` that offer `machine_type` with its GPUs (components/catalog/zones.py); () when the
    table does not know: the group then spreads as Compute Engine chooses."""
    fixed = FIXED_GPU_MACHINES.get(machine_type)
    return gce_zones(region, fixed[0], machine_type) if fixed else ()


@dataclass(frozen=True)
class GroupScaling:
    """The managed instance group's bounds, and the load balancer's rate per VM the autoscaler holds at 80%."""

    min_replicas: int
    max_replicas: int
    requests_per_second_per_instance: float


@dataclass(frozen=True)
class GpuInstancePoolArgs:
    pool_name: str
    foundation: GcpFoundation
    model: ModelSpec
    machine_type: str
    """A GPU machine type with its GPUs attached (a2, a3, g2, ...)."""
    gpu_count: int
    image_family: str
    """A Deep Learning VM image family (IMAGE_PROJECT): its newest image when declared, pinned."""
    spot: bool
    scaling: GroupScaling
    backend_timeout_seconds: int
    """How long the load balancer waits for a whole response: longer than the longest stream."""
    startup_timeout_seconds: int
    labels: dict[str, str]
    api_keys: tuple[str, ...] = ("default",)
    """The callers' key ids: one generated key each, kept in Secret Manager, read by the VMs at boot."""
    certificate: str | None = None
    """A regional SSL certificate (self link or id) the load balancer presents; None: one issued by the pool's
    private CA for the load balancer's address."""
    tags: dict[str, str] = field(default_factory=dict)
    """The environment's tags: the private CA's subjects name the `environment`."""


def read_secret(secret: str, project: str) -> str:
    """A shell command printing a secret's latest version with the VM's service account (the metadata server's
    token; gcloud on Deep Learning VM images)."""
    return f"gcloud secrets versions access latest --secret={shlex.quote(secret)} --project={project}"


# The VM's cache folder (boot_script mounts {CACHE_DIR}/hf at the container's /cache). Weights of your own are
# copied beside it, into WEIGHTS_DIR (serving_image.WeightsOnDisk): the container needs no Google credentials.
CACHE_DIR = "/var/lib/selfhost"
WEIGHTS_DIR = f"{CACHE_DIR}/weights"


def copy_prefix(location: Location, folder: str) -> str:
    """A boot command copying a gs:// prefix's files into `folder` of the VM (the Deep Learning VM's gcloud, with
    the VM's service account, which reads exactly that prefix: iam.grant_weights_read). --no-clobber: after a
    reboot onto the same disk only what is missing is copied (gcloud downloads each file under a temporary name and
    renames it whole). Run as root before `umask 077`: the files are readable by the container's user."""
    return (f"mkdir -p {folder} && gcloud storage cp --recursive --no-clobber "
            f"{shlex.quote(location.uri + '/*')} {folder}/")


def startup_script(image: str, project: str, model: ModelSpec, gpus: int, secret: str | None,
                   keys_secret: str | None = None) -> str:
    """The boot script (serving_image.boot_script) with the VM's service account: the token and the callers'
    API keys from Secret Manager (into files in memory only the container's user may read: never in this script,
    the metadata or the container's environment), our image from Artifact Registry, logs to Cloud Logging; the
    adapter serves TLS with a certificate made on the VM (the load balancer does not verify backends'
    certificates). Our image runs as APP_UID here (the Artifact Registry build is the non-root default): the
    cache and those files are its. Weights of your own in gs:// (and gs:// adapters) are copied to the VM
    before the container starts (weights_on_disk); the token is read only if something comes from the Hub."""
    on_disk = weights_on_disk(model, "gs", WEIGHTS_DIR, copy_prefix)
    return boot_script(
        image, model, gpus, CACHE_DIR, container_uid=APP_UID,
        prepare=[f"mkdir -p {CACHE_DIR}/hf", f"chown {APP_UID}:{APP_UID} {CACHE_DIR}/hf"], on_disk=on_disk,
        fetch_token=None if secret is None or not model.from_hub else read_secret(secret, project),
        fetch_keys=None if keys_secret is None else read_secret(keys_secret, project), tls=True,
        login=f"gcloud auth configure-docker {image.split('/')[0]} --quiet", log_options=["--log-driver gcplogs"])


def keys_file(keys: dict[str, pulumi.Output[str]]) -> pulumi.Output[str]:
    """The adapter's API-key file (`--api-keys-file`): one `id:key` line per caller; a secret."""
    lines = pulumi.Output.all(*keys.values()).apply(
        lambda values: "".join(f"{key}:{value}\n" for key, value in zip(keys, values, strict=True)))
    secret: pulumi.Output[str] = pulumi.Output.secret(lines)
    return secret


class GpuInstancePool(pulumi.ComponentResource):
    """GPU VMs of one machine type, spot by config, serving our image behind an internal Application Load Balancer.

    Instance template (a Deep Learning VM image resolved by family and pinned, Shielded VM, no external IP, the
    serving service account, OS Login and no project SSH keys, TERMINATE on host maintenance), a regional
    managed instance group with autohealing on the adapter's readiness route and proactive rolling updates, an
    autoscaler, and an internal Application Load Balancer (proxy-only subnet, long backend timeout for streams)
    with firewall rules that open the serving port to the load balancer's proxies and health checks only.

    HTTPS end to end: the load balancer listens on 443 at a reserved internal address with the given regional
    certificate or one its private CA issues for that address (TLS 1.2 at least), and speaks HTTPS to the VMs
    (the adapter's certificate is made at boot). Callers present API keys: one generated per id, in a Secret
    Manager secret encrypted with the environment's key that only the serving account may read.
    """

    def __init__(self, name: str, args: GpuInstancePoolArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:gcp:GpuInstancePool", name, None, opts)
        base, labels = args.foundation, args.labels
        assert base.own_image is not None and base.proxy_subnet is not None  # the kind's platform needs
        needs = base.apis.needs("compute.googleapis.com")
        child = pulumi.ResourceOptions(parent=self, depends_on=needs)

        image = gcp.compute.get_image_output(family=args.image_family, project=IMAGE_PROJECT,
                                             opts=pulumi.InvokeOutputOptions(parent=self))
        self._declare_keys(name, args)
        # The VMs' service account reads the model's gs:// prefixes (and its adapters'), nothing else of the buckets.
        self.weights_grants = grant_model_weights(
            name, args.pool_name, args.model, pulumi.Output.concat("serviceAccount:", base.service_account_email),
            pulumi.ResourceOptions(parent=self))
        script = pulumi.Output.all(base.own_image, base.hf_token_secret_id, self.keys_secret.id).apply(
            lambda v: startup_script(v[0], base.project, args.model, args.gpu_count, v[1], v[2]))
        self.template = gcp.compute.InstanceTemplate(
            f"{name}-template", project=base.project, name_prefix=f"{args.pool_name}-"[:37],
            machine_type=args.machine_type, region=base.region, tags=[SERVING_TAG], labels=labels,
            disks=[gcp.compute.InstanceTemplateDiskArgs(
                # The family's newest image now, pinned by self link: a new image is a deliberate update.
                source_image=image.self_link, boot=True, auto_delete=True, disk_size_gb=BOOT_DISK_GB,
                disk_type="pd-balanced", labels=labels)],
            network_interfaces=[gcp.compute.InstanceTemplateNetworkInterfaceArgs(
                network=base.network_id, subnetwork=base.subnet_id)],  # no access config: no external IP
            service_account=gcp.compute.InstanceTemplateServiceAccountArgs(
                email=base.service_account_email, scopes=["https://www.googleapis.com/auth/cloud-platform"]),
            scheduling=gcp.compute.InstanceTemplateSchedulingArgs(
                # GPU VMs cannot live-migrate; spot allows nothing else either.
                on_host_maintenance="TERMINATE", automatic_restart=not args.spot, preemptible=args.spot,
                provisioning_model="SPOT" if args.spot else "STANDARD",
                instance_termination_action="DELETE" if args.spot else None),
            # Secure Boot stays off: the image's NVIDIA kernel modules are not signed for it.
            shielded_instance_config=gcp.compute.InstanceTemplateShieldedInstanceConfigArgs(
                enable_secure_boot=False, enable_vtpm=True, enable_integrity_monitoring=True),
            metadata={"startup-script": script, "enable-oslogin": "TRUE", "block-project-ssh-keys": "TRUE"},
            # The VMs read the keys and the weights at boot: the grants first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*needs, *self.keys_ready, *self.weights_grants],
                                        delete_before_replace=False))

        self.health_check = gcp.compute.RegionHealthCheck(
            f"{name}-health", project=base.project, region=base.region, check_interval_sec=15, timeout_sec=5,
            healthy_threshold=2, unhealthy_threshold=3,
            https_health_check=gcp.compute.RegionHealthCheckHttpsHealthCheckArgs(port=PORT,
                                                                                 request_path=HEALTH_PATH),
            opts=child)
        scaling = args.scaling
        # Only the zones that offer the machine: a regional group spread over a zone without its GPU fails to
        # create VMs there. Surge VMs come per zone, so a rollout may add one in each.
        self.zones = gpu_zones(base.region, args.machine_type)
        surge = max(3, len(self.zones))
        self.group = gcp.compute.RegionInstanceGroupManager(
            f"{name}-mig", project=base.project, region=base.region, name=args.pool_name,
            base_instance_name=args.pool_name,
            versions=[gcp.compute.RegionInstanceGroupManagerVersionArgs(
                instance_template=self.template.self_link_unique, name="serving")],
            named_ports=[gcp.compute.RegionInstanceGroupManagerNamedPortArgs(name="https", port=PORT)],
            auto_healing_policies=gcp.compute.RegionInstanceGroupManagerAutoHealingPoliciesArgs(
                health_check=self.health_check.id, initial_delay_sec=args.startup_timeout_seconds),
            distribution_policy_zones=list(self.zones) or None,
            # A new template rolls out surge VMs (at least one per zone, as a regional group requires), never taking
            # serving VMs down first.
            update_policy=gcp.compute.RegionInstanceGroupManagerUpdatePolicyArgs(
                type="PROACTIVE", minimal_action="REPLACE", max_surge_fixed=surge, max_unavailable_fixed=0),
            opts=child)
        gcp.compute.RegionAutoscaler(
            f"{name}-autoscaler", project=base.project, region=base.region, target=self.group.id,
            autoscaling_policy=gcp.compute.RegionAutoscalerAutoscalingPolicyArgs(
                min_replicas=scaling.min_replicas, max_replicas=scaling.max_replicas,
                cooldown_period=args.startup_timeout_seconds,
                load_balancing_utilization=gcp.compute.RegionAutoscalerAutoscalingPolicyLoadBalancingUtilizationArgs(
                    target=0.8)),
            opts=child)

        # HTTPS to the VMs too: the adapter's certificate is made at boot, and Google's proxies accept a backend's
        # certificate without verifying it; the traffic from the proxy-only subnet is encrypted all the same.
        self.backend = gcp.compute.RegionBackendService(
            f"{name}-backend", project=base.project, region=base.region, protocol="HTTPS", port_name="https",
            load_balancing_scheme="INTERNAL_MANAGED", health_checks=self.health_check.id,
            # The default 30 s would cut every stream longer than that.
            timeout_sec=args.backend_timeout_seconds, connection_draining_timeout_sec=300,
            backends=[gcp.compute.RegionBackendServiceBackendArgs(
                group=self.group.instance_group, balancing_mode="RATE", capacity_scaler=1.0,
                max_rate_per_instance=scaling.requests_per_second_per_instance)],
            # Every request logged (who called, status, latency): a pool answers a few requests a second at most,
            # so all of them cost little in Cloud Logging, and an audit of keyed access needs each one.
            log_config=gcp.compute.RegionBackendServiceLogConfigArgs(enable=True, sample_rate=1.0),
            opts=child)
        url_map = gcp.compute.RegionUrlMap(f"{name}-urls", project=base.project, region=base.region,
                                           default_service=self.backend.id, opts=child)
        # The load balancer's address, reserved first: the certificate names it before the rule takes it.
        self.address = gcp.compute.Address(
            f"{name}-address", project=base.project, region=base.region, address_type="INTERNAL",
            purpose="GCE_ENDPOINT", subnetwork=base.subnet_id, labels=labels,
            description="The pool's internal load balancer", opts=child)
        self.ca: PrivateCa | None = None
        certificate: pulumi.Input[str]
        if args.certificate is not None:
            certificate = args.certificate
        else:
            self.ca = PrivateCa(f"{name}-ca", PrivateCaArgs(
                common_name=f"selfhost-llm {args.pool_name} internal CA"[:64], tags=args.tags),
                opts=pulumi.ResourceOptions(parent=self))
            issued = self.ca.issue("lb", [], ip_addresses=[self.address.address])
            certificate = gcp.compute.RegionSslCertificate(
                f"{name}-cert", project=base.project, region=base.region, name_prefix=f"{args.pool_name}-"[:37],
                certificate=issued.cert_pem, private_key=issued.private_key_pem,
                description="Issued by the stack's private CA for the load balancer's address",
                # A renewed certificate is a new one, attached before the old one goes.
                opts=pulumi.ResourceOptions(parent=self, depends_on=needs, delete_before_replace=False)).self_link
        policy = gcp.compute.RegionSslPolicy(
            f"{name}-tls", project=base.project, region=base.region, min_tls_version="TLS_1_2",
            profile="RESTRICTED", description="TLS 1.2 or 1.3 with forward secrecy and AEAD ciphers only",
            opts=child)
        proxy = gcp.compute.RegionTargetHttpsProxy(
            f"{name}-proxy", project=base.project, region=base.region, url_map=url_map.id,
            ssl_certificates=[certificate], ssl_policy=policy.self_link, opts=child)
        self.forwarding_rule = gcp.compute.ForwardingRule(
            f"{name}-rule", project=base.project, region=base.region, load_balancing_scheme="INTERNAL_MANAGED",
            ip_protocol="TCP", port_range="443", target=proxy.id, ip_address=self.address.address,
            network=base.network_id, subnetwork=base.subnet_id, network_tier="PREMIUM", labels=labels,
            # Two internal rules cannot hold the same address and port: a replacement deletes the old rule first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*needs, base.proxy_subnet],
                                        delete_before_replace=True))
        gcp.compute.Firewall(
            f"{name}-allow-lb", project=base.project, network=base.network_id, direction="INGRESS", priority=1000,
            source_ranges=[PROXY_SUBNET_CIDR, *HEALTH_CHECK_RANGES], target_tags=[SERVING_TAG],
            allows=[gcp.compute.FirewallAllowArgs(protocol="tcp", ports=[str(PORT)])],
            log_config=gcp.compute.FirewallLogConfigArgs(metadata="INCLUDE_ALL_METADATA"),
            description="The serving port, to the load balancer's proxies and health checks only", opts=child)

        self.openai_base_url = pulumi.Output.concat("https://", self.forwarding_rule.ip_address, "/v1")
        self.invoke_url = pulumi.Output.concat(self.openai_base_url, "/chat/completions")
        self.image = base.own_image
        self.ca_certificate = self.ca.certificate_pem if self.ca else None
        self.register_outputs({"openaiBaseUrl": self.openai_base_url, "poolName": self.group.name})

    def _declare_keys(self, name: str, args: GpuInstancePoolArgs) -> None:
        """One generated key per caller id, the adapter's key file in a Secret Manager secret (replicated in the
        region only, encrypted with the environment's key) that only the serving account may read: the binding is
        authoritative for the accessor role on this secret."""
        base = args.foundation
        keys = {key: random.RandomPassword(f"{name}-key-{key}", length=48, special=False,
                                           opts=pulumi.ResourceOptions(parent=self)).result for key in args.api_keys}
        self.api_keys = pulumi.Output.secret(keys)
        self.keys_secret = gcp.secretmanager.Secret(
            f"{name}-api-keys", project=base.project, secret_id=f"{args.pool_name}-api-keys", labels=args.labels,
            replication=gcp.secretmanager.SecretReplicationArgs(
                user_managed=gcp.secretmanager.SecretReplicationUserManagedArgs(
                    replicas=[gcp.secretmanager.SecretReplicationUserManagedReplicaArgs(
                        location=base.region,
                        customer_managed_encryption=gcp.secretmanager
                        .SecretReplicationUserManagedReplicaCustomerManagedEncryptionArgs(kms_key_name=base.kms_key_id),
                    )])),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*base.apis.needs("secretmanager.googleapis.com"),
                                                                 *base.kms_grants]))
        version = gcp.secretmanager.SecretVersion(f"{name}-api-keys-version", secret=self.keys_secret.id,
                                                  secret_data=keys_file(keys), opts=pulumi.ResourceOptions(parent=self))
        binding = gcp.secretmanager.SecretIamBinding(
            f"{name}-api-keys-accessor", project=base.project, secret_id=self.keys_secret.secret_id,
            role="roles/secretmanager.secretAccessor",
            members=[pulumi.Output.concat("serviceAccount:", base.service_account_email)],
            opts=pulumi.ResourceOptions(parent=self))
        self.keys_ready: list[pulumi.Resource] = [version, binding]
