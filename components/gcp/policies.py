"""Google Cloud's policy rules: IAM roles, customer-managed encryption (BigQuery, Secret Manager, Artifact
Registry), Cloud KMS rotation, Compute Engine VMs (external IPs, Shielded VM, OS Login), subnets and firewall rules,
Application Load Balancers (HTTPS end to end, TLS 1.2 and up, every request logged), Cloud Run services (internal
ingress, their own identity, egress through the VPC).
`Gcp.policy_rules` (components/targets/gcp.py) hands them to the registry; components/policies.py runs them after
the generic rules.

Also what the generic rules `secrets-not-in-user-data` and `secrets-not-in-container-env` ask of the platform: where
its resources carry a boot script (`BOOT_SCRIPTS`) and a container's environment (`CONTAINER_ENVIRONMENTS`); and the
Checkov checks it notes (`SCANNER_NOTES`).

Pure: no provider SDK.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..catalog.iam import FORBIDDEN_ROLES
from ..cost_rules import Resource
from ..policy import OPEN, BootScript, ContainerEnvironment, Finding, Plan, Rule, dig, rule_decorator, truthy

RULES: list[Rule] = []
rule = rule_decorator(RULES)


@rule("gcp-no-basic-roles", "No basic roles (owner, editor, viewer) and no identity administration are granted.",
      "critical", "Grant the predefined role that covers the need, on the one resource it concerns.")
def _basic_roles(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r in plan.resources:
        if r.type.startswith("gcp:") and "iAM" in r.type and r.inputs.get("role") in FORBIDDEN_ROLES:
            yield r, f"grants {r.inputs['role']}"


@rule("gcp-bigquery-cmek", "BigQuery datasets (logged prompts and responses) are encrypted with the environment's "
      "Cloud KMS key.", "high", "Set defaultEncryptionConfiguration.kmsKeyName to the environment key.",
      checkov=("CKV_GCP_81",))
def _bigquery_cmek(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for dataset in plan.of("gcp:bigquery/dataset:Dataset"):
        if not dig(dataset.inputs, "defaultEncryptionConfiguration", "kmsKeyName"):
            yield dataset, "encrypted with a Google-managed key only"


@rule("gcp-secret-cmek", "Secret Manager secrets are encrypted with the environment's Cloud KMS key in every "
      "replica.", "high", "Use user-managed replication with customerManagedEncryption.kmsKeyName on each replica.")
def _secret_cmek(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for secret in plan.of("gcp:secretmanager/secret:Secret"):
        replicas = dig(secret.inputs, "replication", "userManaged", "replicas") or [{}]
        if not all(dig(r, "customerManagedEncryption", "kmsKeyName") for r in replicas):
            yield secret, "a replica is encrypted with a Google-managed key only"


@rule("gcp-artifact-registry-cmek", "Image repositories are encrypted with the environment's Cloud KMS key.",
      "medium", "Set the repository's kmsKeyName.", checkov=("CKV_GCP_84",))
def _registry_cmek(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for repo in plan.of("gcp:artifactregistry/repository:Repository"):
        if not repo.inputs.get("kmsKeyName"):
            yield repo, "encrypted with a Google-managed key only"


@rule("gcp-kms-rotation", "Cloud KMS keys rotate at least every 90 days.", "medium",
      "Set rotationPeriod to 7776000s or less.", checkov=("CKV_GCP_43",))
def _gcp_rotation(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for key in plan.of("gcp:kms/cryptoKey:CryptoKey"):
        period = str(key.inputs.get("rotationPeriod") or "")
        if not period.endswith("s") or float(period[:-1]) > 90 * 86_400:
            yield key, f"rotation period {period or 'unset'}"


@rule("gcp-no-external-ip", "Serving VMs get no external IP address.", "high",
      "Leave accessConfigs out of the template's network interfaces; reach the Hub through Cloud NAT.",
      checkov=("CKV_GCP_40",))
def _gcp_external_ip(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for template in plan.of("gcp:compute/instanceTemplate:InstanceTemplate"):
        if any(nic.get("accessConfigs") for nic in template.inputs.get("networkInterfaces") or []):
            yield template, "its VMs get an external IP address"


@rule("gcp-shielded-vm", "VMs boot as Shielded VMs with vTPM and integrity monitoring.", "medium",
      "Set shieldedInstanceConfig.enableVtpm and enableIntegrityMonitoring.", checkov=("CKV_GCP_39",))
def _shielded(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for template in plan.of("gcp:compute/instanceTemplate:InstanceTemplate"):
        config = template.inputs.get("shieldedInstanceConfig") or {}
        if not (truthy(config.get("enableVtpm")) and truthy(config.get("enableIntegrityMonitoring"))):
            yield template, "not a Shielded VM with vTPM and integrity monitoring"


@rule("gcp-os-login", "VMs use OS Login and refuse project-wide SSH keys.", "high",
      "Set metadata enable-oslogin and block-project-ssh-keys to TRUE.", checkov=("CKV_GCP_32", "CKV_GCP_34"))
def _os_login(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for template in plan.of("gcp:compute/instanceTemplate:InstanceTemplate"):
        meta = template.inputs.get("metadata") or {}
        for key in ("enable-oslogin", "block-project-ssh-keys"):
            if not truthy(meta.get(key)):
                yield template, f"metadata {key} is not TRUE"


@rule("gcp-subnet-private-and-logged", "Subnets reach Google APIs privately and log their flows.", "medium",
      "Set privateIpGoogleAccess: true and a logConfig.", checkov=("CKV_GCP_26", "CKV_GCP_74"))
def _gcp_subnet(plan: Plan) -> Iterator[tuple[Resource, str] | Finding]:
    for subnet in plan.of("gcp:compute/subnetwork:Subnetwork"):
        if subnet.inputs.get("purpose") in ("REGIONAL_MANAGED_PROXY", "GLOBAL_MANAGED_PROXY"):
            yield Finding("gcp-subnet-private-and-logged", subnet.name, "no flow logs, no Private Google Access",
                          exempt="a proxy-only subnet carries no VMs: Google Cloud accepts neither setting on it")
            continue
        if not truthy(subnet.inputs.get("privateIpGoogleAccess")):
            yield subnet, "no Private Google Access"
        if not subnet.inputs.get("logConfig"):
            yield subnet, "no flow logs"


@rule("gcp-no-open-ingress", "No firewall rule admits the internet (0.0.0.0/0), and none opens port 22.",
      "critical", "Admit only Google's health-check and proxy ranges or the VPC; use IAP or OS Login for access.",
      checkov=("CKV_GCP_2", "CKV_GCP_106"))
def _gcp_ingress(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for fw in plan.of("gcp:compute/firewall:Firewall"):
        if fw.inputs.get("direction", "INGRESS") != "INGRESS" or not fw.inputs.get("allows"):
            continue
        if set(OPEN) & set(fw.inputs.get("sourceRanges") or []):
            yield fw, "admits the internet"
        for allow in fw.inputs.get("allows") or []:
            all_ports = allow.get("protocol") in ("tcp", "all") and not allow.get("ports")
            if "22" in (allow.get("ports") or []) or all_ports:
                yield fw, "opens port 22"


# Load balancers Google's managed proxies run (Application Load Balancers): their backend services' schemes.
MANAGED_SCHEMES = ("INTERNAL_MANAGED", "EXTERNAL_MANAGED")


@rule("gcp-lb-https", "Application Load Balancers take HTTPS only, TLS 1.2 and up, and speak HTTPS to their "
      "backends.", "high", "Use a RegionTargetHttpsProxy with an sslPolicy whose minTlsVersion is TLS_1_2 (or "
      "TLS_1_3); give backend services protocol HTTPS and HTTPS health checks.")
def _gcp_lb_https(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for proxy in plan.of("gcp:compute/regionTargetHttpProxy:RegionTargetHttpProxy"):
        yield proxy, "listens with plain HTTP"
    for proxy in plan.of("gcp:compute/regionTargetHttpsProxy:RegionTargetHttpsProxy"):
        if not proxy.inputs.get("sslPolicy"):
            yield proxy, "no SSL policy: TLS 1.0 and 1.1 are admitted"
    for policy in plan.of("gcp:compute/regionSslPolicy:RegionSslPolicy"):
        if policy.inputs.get("minTlsVersion") not in ("TLS_1_2", "TLS_1_3"):
            yield policy, f"admits {policy.inputs.get('minTlsVersion') or 'TLS_1_0'}"
    for backend in plan.of("gcp:compute/regionBackendService:RegionBackendService"):
        if backend.inputs.get("loadBalancingScheme") in MANAGED_SCHEMES and backend.inputs.get("protocol") not in (
                "HTTPS", "HTTP2"):
            yield backend, f"speaks {backend.inputs.get('protocol') or 'HTTP'} to its backends"
    for check in plan.of("gcp:compute/regionHealthCheck:RegionHealthCheck"):
        if check.inputs.get("httpHealthCheck"):
            yield check, "checks over plain HTTP"


@rule("gcp-lb-logging", "Application Load Balancers log every request.", "medium",
      "Set the backend service's logConfig: enable true, sampleRate 1.0.")
def _gcp_lb_logging(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for backend in plan.of("gcp:compute/regionBackendService:RegionBackendService"):
        if backend.inputs.get("loadBalancingScheme") not in MANAGED_SCHEMES:
            continue
        config = backend.inputs.get("logConfig") or {}
        if not truthy(config.get("enable")):
            yield backend, "request logging off"
        elif float(config.get("sampleRate", 1.0)) < 1.0:
            yield backend, f"logs a sample of requests only ({config.get('sampleRate')})"


CLOUD_RUN = "gcp:cloudrunv2/service:Service"
INTERNAL_INGRESS = ("INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER")
COMPUTE_DEFAULT_ACCOUNT = "-compute@developer.gserviceaccount.com"
"""How Compute Engine's default service account (Editor on the project, unless an organization policy stops the
grant) ends: what a Cloud Run revision runs as when it names none."""


@rule("gcp-run-internal-ingress", "Cloud Run services take internal traffic only; one whose invoker IAM check is "
      "off (callers present the router's keys) is reached from the VPC or not at all.", "critical",
      "Set ingress INGRESS_TRAFFIC_INTERNAL_ONLY (or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER behind an internal load "
      "balancer); never grant roles/run.invoker to allUsers.", checkov=("CKV_GCP_102",))
def _run_ingress(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for service in plan.of(CLOUD_RUN):
        ingress = service.inputs.get("ingress") or "INGRESS_TRAFFIC_ALL"
        if ingress not in INTERNAL_INGRESS:
            open_to = "anyone on the internet, unauthenticated" if truthy(service.inputs.get("invokerIamDisabled")) \
                else "the internet"
            yield service, f"ingress {ingress}: reachable from {open_to}"
    for grant in plan.of("gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
                         "gcp:cloudrunv2/serviceIamBinding:ServiceIamBinding"):
        members = [grant.inputs.get("member"), *(grant.inputs.get("members") or [])]
        if {"allUsers", "allAuthenticatedUsers"} & set(members):
            yield grant, "grants the service to allUsers"


@rule("gcp-run-dedicated-identity", "Cloud Run services run as a service account of their own: not Compute "
      "Engine's default one, not the model servers'.", "high",
      "Create a service account for the service and set template.serviceAccount; grant it only what it calls.")
def _run_identity(plan: Plan) -> Iterator[tuple[Resource, str]]:
    serving = plan.outputs.get("servingServiceAccount")
    for service in plan.of(CLOUD_RUN):
        account = str(dig(service.inputs, "template", "serviceAccount") or "")
        if not account or account.endswith(COMPUTE_DEFAULT_ACCOUNT):
            yield service, "runs as Compute Engine's default service account"
        elif serving and account == serving:
            yield service, "runs as the model servers' service account"


@rule("gcp-run-vpc-egress", "Cloud Run services send all their traffic into the stack's VPC (Direct VPC egress), "
      "under its firewall rules and flow logs.", "medium",
      "Set template.vpcAccess.networkInterfaces to the stack's subnet and egress ALL_TRAFFIC.")
def _run_egress(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for service in plan.of(CLOUD_RUN):
        access = dig(service.inputs, "template", "vpcAccess") or {}
        if not access.get("networkInterfaces"):
            yield service, "no Direct VPC egress: its traffic leaves outside the stack's network"
        elif access.get("egress") != "ALL_TRAFFIC":
            yield service, f"egress {access.get('egress') or 'PRIVATE_RANGES_ONLY'}: public addresses bypass the VPC"


# ---------------------------------------------------------------------------------------------------------
# What the generic rules read


def _startup_script(inputs: dict[str, Any]) -> Any:
    """An instance template's startup script (its `startup-script` metadata)."""
    return dig(inputs, "metadata", "startup-script") or ""


def _run_environment(inputs: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """The plain environment variables of a Cloud Run service's containers (which run.services.get shows); those
    filled from Secret Manager (`valueSource.secretKeyRef`) hold a reference only."""
    for container in dig(inputs, "template", "containers") or []:
        for variable in container.get("envs") or []:
            if "value" in variable:
                yield variable.get("name", ""), variable["value"]


BOOT_SCRIPTS: dict[str, BootScript] = {"gcp:compute/instanceTemplate:InstanceTemplate": _startup_script}
CONTAINER_ENVIRONMENTS: dict[str, ContainerEnvironment] = {CLOUD_RUN: _run_environment}

SCANNER_NOTES: dict[str, str] = {}
"""Checkov's checks no rule of ours adopts or the scanner misreads on Google Cloud (`Platform.scanner_notes`): none
fails on the shipped Google Cloud stacks or on gcp-prod with the router on Cloud Run (Checkov 3.3.30, 2026-12-07;
tests/test_gcp_router.py scans it). Checkov has no check of google_cloud_run_v2_service: its one Cloud Run check,
CKV_GCP_102 (no allUsers invoker), reads the v1 IAM resources; `gcp-run-internal-ingress` checks the same on v2."""
