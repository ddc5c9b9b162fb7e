"""`selfhost export`: a previewed plan in the shape of Terraform's plan JSON (`terraform show -json <plan>`), so that
the scanners a team already runs on Terraform plans read a Pulumi stack's plan: Checkov's `terraform_plan` framework
(tests/test_export.py runs it on the exports), and any other reader of the format.

What comes out is Terraform's format 1.2 (developer.hashicorp.com/terraform/internals/json-format): `planned_values`
with each resource's address, type, name, provider and values; `resource_changes` with a create for each;
`configuration` with the providers and, per resource, the references between resources. Each Pulumi type maps to
the Terraform resource type of the same cloud object (TYPES below, a data table): Pulumi's AWS and Google Cloud
providers are bridged from Terraform's, so an input is the Terraform argument in camelCase, with two differences
this undoes: a nested block that holds at most one item is an object (Terraform: a list of one), and a repeatable
block has a plural name (`rules`; Terraform: `rule`). Kubernetes objects come in the Kubernetes API's shape and map
to the Terraform kubernetes provider's `*_v1` resources the same way (`containers` -> `container` blocks, every
object a block). Map arguments (tags, labels, annotations, ...) keep their keys.

References: where an input is a value the provider computes for a resource this one depends on (an id, an ARN, an
auto-generated name), Terraform would not know it at plan time: the value is left out of `values`, marked in
`after_unknown`, and the configuration records the reference (`aws_s3_bucket.<name>.id`). Scanners build their
resource graph from those references (Checkov: an S3 bucket's encryption, versioning and logging are the resources
that reference it). A value the dependency's own inputs determine is known at plan time and stays.

Secrets: the preview already replaces every secret with "[secret]"; those stay as they are and are marked in
`sensitive_values`. Values only the provider computes (the mocks' ids, ARNs, generated passwords) are never written.

Types with no Terraform resource (the Pulumi program's own provider objects, Docker builds, local commands) are
not written: NOT_MAPPED says why, and the document lists them under `selfhost_export.not_mapped`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from components.schema import SECRET_PLACEHOLDER, UNKNOWN

FORMAT_VERSION = "1.2"
# The Terraform release whose `terraform show -json` output this follows (plan format 1.2); scanners require the key.
TERRAFORM_VERSION = "1.9.8"
PROVIDERS = {
    "aws": "registry.terraform.io/hashicorp/aws",
    "google": "registry.terraform.io/hashicorp/google",
    "kubernetes": "registry.terraform.io/hashicorp/kubernetes",
    "helm": "registry.terraform.io/hashicorp/helm",
    "random": "registry.terraform.io/hashicorp/random",
}
# Map arguments in every provider: their keys are data (tag names, label keys), kept as they are.
MAPS = frozenset({"tags", "tags_all", "labels", "annotations", "match_labels", "node_selector", "limits", "requests"})
# The outputs a resource is referred to by, besides its id (Pulumi's names; Terraform's are their snake_case).
IDENTITY_OUTPUTS = ("arn", "bucket", "keyId", "name", "selfLink", "selfLinkUnique", "email", "member",
                    "instanceGroup")


@dataclass(frozen=True)
class TfType:
    """How one Pulumi type becomes a Terraform resource."""

    type: str
    renames: Mapping[str, str] = field(default_factory=dict)
    """Pulumi input (snake_case) -> Terraform argument, at any depth: the plural names of repeatable blocks."""
    maps: frozenset[str] = frozenset()
    """Map arguments of this type besides MAPS."""
    drop: frozenset[str] = frozenset()
    """Top-level inputs Terraform has no argument for (snake_case)."""
    adapt: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    """Reshapes the Pulumi inputs first, where a rename is not enough."""
    manifest: bool = False
    """kubernetes_manifest: the whole object, as the Kubernetes API has it, is the `manifest` argument."""

    @property
    def provider(self) -> str:
        return self.type.split("_", 1)[0]


def _helm(inputs: dict[str, Any]) -> dict[str, Any]:
    """helm_release: the chart repository is an argument of its own, the values a list of YAML documents."""
    out = {k: v for k, v in inputs.items() if k not in ("repositoryOpts", "values", "compat")}
    if repo := (inputs.get("repositoryOpts") or {}).get("repo"):
        out["repository"] = repo
    if "values" in inputs:
        out["values"] = [json.dumps(inputs["values"], sort_keys=True)]  # JSON is YAML
    return out


# The Kubernetes API's lists of objects that the Terraform provider has as repeated blocks of a singular name.
_POD = {"containers": "container", "init_containers": "init_container", "volumes": "volume",
        "volume_mounts": "volume_mount", "ports": "port", "tolerations": "toleration",
        "topology_spread_constraints": "topology_spread_constraint", "http_headers": "http_header",
        "readiness_gates": "readiness_gate", "sysctls": "sysctl", "node_selector_terms": "node_selector_term"}
_K8S_DROP = frozenset({"api_version", "kind"})
_S3_RULES = {"rules": "rule"}

TYPES: dict[str, TfType] = {
    # AWS: S3
    "aws:s3/bucket:Bucket": TfType("aws_s3_bucket", {
        "rules": "rule", "lifecycle_rules": "lifecycle_rule", "cors_rules": "cors_rule", "grants": "grant"}),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": TfType(
        "aws_s3_bucket_server_side_encryption_configuration", _S3_RULES),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": TfType("aws_s3_bucket_public_access_block"),
    "aws:s3/bucketVersioning:BucketVersioning": TfType("aws_s3_bucket_versioning"),
    "aws:s3/bucketLogging:BucketLogging": TfType("aws_s3_bucket_logging", {"target_grants": "target_grant"}),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": TfType(
        "aws_s3_bucket_lifecycle_configuration", {"rules": "rule", "transitions": "transition",
                                                  "noncurrent_version_transitions": "noncurrent_version_transition"}),
    "aws:s3/bucketPolicy:BucketPolicy": TfType("aws_s3_bucket_policy"),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": TfType("aws_s3_bucket_ownership_controls"),
    # AWS: keys, logs, secrets, images
    "aws:kms/key:Key": TfType("aws_kms_key"),
    "aws:kms/alias:Alias": TfType("aws_kms_alias"),
    "aws:cloudwatch/logGroup:LogGroup": TfType("aws_cloudwatch_log_group"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": TfType(
        "aws_cloudwatch_metric_alarm", {"metric_queries": "metric_query"}, maps=frozenset({"dimensions"})),
    "aws:cloudwatch/dashboard:Dashboard": TfType("aws_cloudwatch_dashboard"),
    "aws:secretsmanager/secret:Secret": TfType("aws_secretsmanager_secret", {"replicas": "replica"}),
    "aws:secretsmanager/secretVersion:SecretVersion": TfType("aws_secretsmanager_secret_version"),
    "aws:ecr/repository:Repository": TfType(
        "aws_ecr_repository", {"encryption_configurations": "encryption_configuration"}),
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": TfType("aws_ecr_lifecycle_policy"),
    # AWS: network
    "aws:ec2/vpc:Vpc": TfType("aws_vpc"),
    "aws:ec2/subnet:Subnet": TfType("aws_subnet"),
    "aws:ec2/flowLog:FlowLog": TfType("aws_flow_log"),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": TfType("aws_default_security_group"),
    "aws:ec2/securityGroup:SecurityGroup": TfType("aws_security_group"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": TfType("aws_vpc_endpoint", {"dns_entries": "dns_entry"}),
    "aws:ec2/internetGateway:InternetGateway": TfType("aws_internet_gateway"),
    "aws:ec2/natGateway:NatGateway": TfType("aws_nat_gateway"),
    "aws:ec2/eip:Eip": TfType("aws_eip"),
    "aws:ec2/routeTable:RouteTable": TfType("aws_route_table", {"routes": "route"}),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": TfType("aws_route_table_association"),
    "aws:lb/loadBalancer:LoadBalancer": TfType("aws_lb", {"subnet_mappings": "subnet_mapping"}),
    "aws:lb/listener:Listener": TfType("aws_lb_listener", {"default_actions": "default_action"}),
    "aws:lb/targetGroup:TargetGroup": TfType("aws_lb_target_group"),
    # AWS: compute, scaling, identity
    "aws:ec2/launchTemplate:LaunchTemplate": TfType("aws_launch_template"),
    "aws:autoscaling/group:Group": TfType("aws_autoscaling_group", {
        "tags": "tag", "vpc_zone_identifiers": "vpc_zone_identifier", "overrides": "override"}),
    "aws:autoscaling/policy:Policy": TfType("aws_autoscaling_policy"),
    "aws:appautoscaling/target:Target": TfType("aws_appautoscaling_target"),
    "aws:appautoscaling/policy:Policy": TfType("aws_appautoscaling_policy"),
    "aws:iam/role:Role": TfType("aws_iam_role", {"inline_policies": "inline_policy"}),
    "aws:iam/rolePolicy:RolePolicy": TfType("aws_iam_role_policy"),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": TfType("aws_iam_role_policy_attachment"),
    "aws:iam/instanceProfile:InstanceProfile": TfType("aws_iam_instance_profile"),
    # AWS: SageMaker
    "aws:sagemaker/model:Model": TfType(
        "aws_sagemaker_model", {"containers": "container"}, maps=frozenset({"environment"})),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": TfType("aws_sagemaker_endpoint_configuration"),
    "aws:sagemaker/endpoint:Endpoint": TfType("aws_sagemaker_endpoint"),
    # Google Cloud
    "gcp:storage/bucket:Bucket": TfType("google_storage_bucket", {"lifecycle_rules": "lifecycle_rule"}),
    "gcp:bigquery/dataset:Dataset": TfType("google_bigquery_dataset", {"accesses": "access"}),
    "gcp:compute/instanceTemplate:InstanceTemplate": TfType("google_compute_instance_template", {
        "disks": "disk", "network_interfaces": "network_interface", "access_configs": "access_config",
        "alias_ip_ranges": "alias_ip_range", "guest_accelerators": "guest_accelerator"},
        maps=frozenset({"metadata", "resource_manager_tags"})),
    "gcp:compute/firewall:Firewall": TfType("google_compute_firewall", {"allows": "allow", "denies": "deny"}),
    "gcp:compute/network:Network": TfType("google_compute_network"),
    "gcp:compute/subnetwork:Subnetwork": TfType(
        "google_compute_subnetwork", {"secondary_ip_ranges": "secondary_ip_range"}),
    "gcp:compute/router:Router": TfType("google_compute_router"),
    "gcp:compute/routerNat:RouterNat": TfType("google_compute_router_nat", {
        "subnetworks": "subnetwork", "source_ip_ranges_to_nats": "source_ip_ranges_to_nat"}),
    "gcp:compute/forwardingRule:ForwardingRule": TfType("google_compute_forwarding_rule"),
    "gcp:compute/regionAutoscaler:RegionAutoscaler": TfType("google_compute_region_autoscaler", {"metrics": "metric"}),
    "gcp:compute/regionBackendService:RegionBackendService": TfType(
        "google_compute_region_backend_service", {"backends": "backend"}),
    "gcp:compute/regionHealthCheck:RegionHealthCheck": TfType("google_compute_region_health_check"),
    "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager": TfType(
        "google_compute_region_instance_group_manager", {"versions": "version", "named_ports": "named_port"}),
    "gcp:compute/regionTargetHttpProxy:RegionTargetHttpProxy": TfType("google_compute_region_target_http_proxy"),
    "gcp:compute/regionUrlMap:RegionUrlMap": TfType("google_compute_region_url_map", {
        "host_rules": "host_rule", "path_matchers": "path_matcher", "path_rules": "path_rule"}),
    "gcp:dns/managedZone:ManagedZone": TfType("google_dns_managed_zone"),
    "gcp:dns/recordSet:RecordSet": TfType("google_dns_record_set"),
    "gcp:kms/keyRing:KeyRing": TfType("google_kms_key_ring"),
    "gcp:kms/cryptoKey:CryptoKey": TfType("google_kms_crypto_key"),
    "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember": TfType("google_kms_crypto_key_iam_member"),
    "gcp:secretmanager/secret:Secret": TfType("google_secret_manager_secret"),
    "gcp:secretmanager/secretVersion:SecretVersion": TfType("google_secret_manager_secret_version"),
    "gcp:secretmanager/secretIamBinding:SecretIamBinding": TfType("google_secret_manager_secret_iam_binding"),
    "gcp:artifactregistry/repository:Repository": TfType("google_artifact_registry_repository"),
    "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember": TfType(
        "google_artifact_registry_repository_iam_member"),
    "gcp:projects/iAMMember:IAMMember": TfType("google_project_iam_member"),
    "gcp:projects/service:Service": TfType("google_project_service"),
    "gcp:projects/serviceIdentity:ServiceIdentity": TfType("google_project_service_identity"),
    "gcp:serviceaccount/account:Account": TfType("google_service_account"),
    "gcp:monitoring/alertPolicy:AlertPolicy": TfType("google_monitoring_alert_policy", maps=frozenset({"user_labels"})),
    "gcp:monitoring/dashboard:Dashboard": TfType("google_monitoring_dashboard"),
    "gcp:networkconnectivity/serviceConnectionPolicy:ServiceConnectionPolicy": TfType(
        "google_network_connectivity_service_connection_policy"),
    "gcp:vertex/aiEndpointWithModelGardenDeployment:AiEndpointWithModelGardenDeployment": TfType(
        "google_vertex_ai_endpoint_with_model_garden_deployment", {"envs": "env", "commands": "command"}),
    # Kubernetes
    "kubernetes:apps/v1:Deployment": TfType("kubernetes_deployment_v1", _POD, drop=_K8S_DROP),
    "kubernetes:apps/v1:StatefulSet": TfType("kubernetes_stateful_set_v1", _POD, drop=_K8S_DROP),
    "kubernetes:apps/v1:DaemonSet": TfType("kubernetes_daemon_set_v1", _POD, drop=_K8S_DROP),
    "kubernetes:core/v1:Pod": TfType("kubernetes_pod_v1", _POD, drop=_K8S_DROP),
    "kubernetes:core/v1:Namespace": TfType("kubernetes_namespace_v1", drop=_K8S_DROP),
    "kubernetes:core/v1:Service": TfType("kubernetes_service_v1", {"ports": "port"}, maps=frozenset({"selector"}),
                                         drop=_K8S_DROP),
    "kubernetes:core/v1:ServiceAccount": TfType(
        "kubernetes_service_account_v1", {"secrets": "secret", "image_pull_secrets": "image_pull_secret"},
        drop=_K8S_DROP),
    "kubernetes:core/v1:Secret": TfType("kubernetes_secret_v1", {"string_data": "data"},
                                        maps=frozenset({"data", "binary_data"}), drop=_K8S_DROP),
    "kubernetes:core/v1:ConfigMap": TfType("kubernetes_config_map_v1", maps=frozenset({"data", "binary_data"}),
                                           drop=_K8S_DROP),
    "kubernetes:core/v1:PersistentVolumeClaim": TfType("kubernetes_persistent_volume_claim_v1", drop=_K8S_DROP),
    "kubernetes:networking.k8s.io/v1:Ingress": TfType(
        "kubernetes_ingress_v1", {"rules": "rule", "paths": "path"}, drop=_K8S_DROP),
    "kubernetes:networking.k8s.io/v1:NetworkPolicy": TfType("kubernetes_network_policy_v1", drop=_K8S_DROP),
    "kubernetes:policy/v1:PodDisruptionBudget": TfType("kubernetes_pod_disruption_budget_v1", drop=_K8S_DROP),
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": TfType(
        "kubernetes_horizontal_pod_autoscaler_v2", {"metrics": "metric", "policies": "policy"}, drop=_K8S_DROP),
    # Custom resources: Terraform's kubernetes_manifest holds any object as it is.
    "kubernetes:keda.sh/v1alpha1:ScaledObject": TfType("kubernetes_manifest", manifest=True),
    "kubernetes:monitoring.coreos.com/v1:ServiceMonitor": TfType("kubernetes_manifest", manifest=True),
    "kubernetes:helm.sh/v3:Release": TfType("helm_release", adapt=_helm),
    "random:index/randomPassword:RandomPassword": TfType("random_password"),
}

NOT_MAPPED: dict[str, str] = {
    "pulumi:providers:kubernetes": "a provider configuration (its kubeconfig is a secret), not a resource",
    "pulumi:providers:aws": "a provider configuration, not a resource",
    "pulumi:providers:gcp": "a provider configuration, not a resource",
    "docker-build:index:Image": "an image build and push at deploy time; Terraform has no resource of that model",
    "command:local:Command": "a local command run at deploy time (Terraform: a provisioner, which scanners skip)",
    "pulumi-python:dynamic/hf:InferenceEndpoint": "a Hugging Face Inference Endpoint, managed by our dynamic "
                                                  "provider: there is no Terraform provider for it",
}


@dataclass
class Export:
    document: dict[str, Any]
    addresses: dict[str, str]
    """Pulumi URN -> Terraform address, for every resource written."""
    not_mapped: list[dict[str, str]]


def snake(name: str) -> str:
    """camelCase -> snake_case, as the Terraform bridge names arguments (`kmsKeyId` -> `kms_key_id`)."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def convert(inputs: dict[str, Any], t: TfType) -> dict[str, Any]:
    """A resource's Pulumi inputs as Terraform's plan values: snake_case arguments, nested blocks as lists."""
    if t.manifest:
        return {"manifest": inputs}
    raw = t.adapt(inputs) if t.adapt else inputs
    return {k: v for k, v in _block(raw, t).items() if k not in t.drop}


def _block(obj: dict[str, Any], t: TfType) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if value == UNKNOWN:
            continue
        name = snake(key)
        name = t.renames.get(name, name)
        if isinstance(value, dict):
            out[name] = value if name in MAPS or name in t.maps else [_block(value, t)]
        elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
            out[name] = [_block(v, t) if isinstance(v, dict) else v for v in value]
        else:
            out[name] = value
    return out


def _address_name(name: str, taken: set[str], tf_type: str) -> str:
    """A Terraform resource name (letters, digits, `_` and `-`, not starting with a digit), unique in its type."""
    clean = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    if not re.match(r"[A-Za-z_]", clean):
        clean = f"_{clean}"
    candidate, n = clean, 1
    while f"{tf_type}.{candidate}" in taken:
        n += 1
        candidate = f"{clean}_{n}"
    return candidate


def _leaves(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_leaves(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_leaves(v) for v in value)) if value else set()
    return {value} if isinstance(value, str) else set()


def _identities(resources: list[dict[str, Any]], addresses: dict[str, str]) -> dict[str, dict[str, list[str]]]:
    """Per URN: each value the provider computes for that resource and a dependent might refer to -> the
    Terraform references to it (`aws_kms_key.k.arn`, `aws_kms_key.k`). Values the resource's own inputs
    determine are known at plan time and left out."""
    out: dict[str, dict[str, list[str]]] = {}
    for r in resources:
        address = addresses.get(r["urn"])
        if not address:
            continue
        known = _leaves(r["inputs"])
        refs: dict[str, list[str]] = {}
        candidates = [("id", r.get("id"))] + [(snake(k), (r.get("computed") or {}).get(k)) for k in IDENTITY_OUTPUTS]
        for attr, value in candidates:
            if isinstance(value, str) and len(value) > 3 and value not in known and value not in refs:
                refs[value] = [f"{address}.{attr}", address]
        out[r["urn"]] = refs
    return out


def _unknowns(values: dict[str, Any], refs: dict[str, list[str]], maps: frozenset[str]
              ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Takes the values that are references out of a block: (known values, expressions, after_unknown)."""
    known: dict[str, Any] = {}
    expressions: dict[str, Any] = {}
    unknown: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, str) and value in refs:
            expressions[key] = {"references": refs[value]}
            unknown[key] = True
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            parts = [_unknowns(v, refs, maps) for v in value]
            known[key] = [p[0] for p in parts]
            if any(p[1] for p in parts):
                expressions[key] = [p[1] for p in parts]
                unknown[key] = [p[2] for p in parts]
        elif isinstance(value, list) and key not in maps and any(isinstance(v, str) and v in refs for v in value):
            known[key] = [None if isinstance(v, str) and v in refs else v for v in value]
            expressions[key] = {"references": [ref for v in value if isinstance(v, str) and v in refs
                                               for ref in refs[v]]}
            unknown[key] = [isinstance(v, str) and v in refs for v in value]
        else:
            known[key] = value
    return known, expressions, unknown


def _sensitive(value: Any) -> Any:
    """Terraform's sensitive_values: the shape of the values, `true` where a secret is."""
    if isinstance(value, dict):
        return {k: s for k, v in value.items() if (s := _sensitive(v)) not in (False, {}, [])}
    if isinstance(value, list):
        marks = [_sensitive(v) for v in value]
        return marks if any(m not in (False, {}, []) for m in marks) else []
    return value == SECRET_PLACEHOLDER


def terraform_plan(graph: dict[str, Any]) -> Export:
    """The preview graph (`selfhost preview --json`) as a Terraform plan JSON document."""
    resources = [r for r in graph["resources"] if r.get("custom")]
    addresses: dict[str, str] = {}
    not_mapped: list[dict[str, str]] = []
    for r in resources:
        t = TYPES.get(r["type"])
        if t is None:
            not_mapped.append({"urn": r["urn"], "type": r["type"],
                               "reason": NOT_MAPPED.get(r["type"], "no Terraform type in selfhost/export.py TYPES")})
            continue
        taken = set(addresses.values())
        addresses[r["urn"]] = f"{t.type}.{_address_name(r['name'], taken, t.type)}"
    identities = _identities(resources, addresses)

    planned: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    config: list[dict[str, Any]] = []
    providers: dict[str, dict[str, str]] = {}
    for r in resources:
        address = addresses.get(r["urn"])
        if address is None:
            continue
        t = TYPES[r["type"]]
        tf_type, name = address.split(".", 1)
        refs: dict[str, list[str]] = {}
        for dep in r.get("dependencies") or []:
            for value, ref in identities.get(dep, {}).items():
                refs.setdefault(value, ref)
        values, expressions, unknown = _unknowns(convert(r["inputs"], t), refs, MAPS | t.maps)
        sensitive = _sensitive(values)
        head = {"address": address, "mode": "managed", "type": tf_type, "name": name,
                "provider_name": PROVIDERS[t.provider]}
        planned.append({**head, "schema_version": 0, "values": values, "sensitive_values": sensitive})
        changes.append({**head, "change": {
            "actions": ["create"], "before": None, "after": values, "after_unknown": {"id": True, **unknown},
            "before_sensitive": False, "after_sensitive": sensitive}})
        config.append({"address": address, "mode": "managed", "type": tf_type, "name": name,
                       "provider_config_key": t.provider, "expressions": expressions, "schema_version": 0})
        providers[t.provider] = {"name": t.provider, "full_name": PROVIDERS[t.provider]}

    document = {
        "format_version": FORMAT_VERSION,
        "terraform_version": TERRAFORM_VERSION,
        "planned_values": {"root_module": {"resources": planned}},
        "resource_changes": changes,
        "configuration": {"provider_config": dict(sorted(providers.items())), "root_module": {"resources": config}},
        "applyable": True,
        "complete": True,
        "errored": False,
        # Ours (consumers of the format ignore keys they do not know): where the plan came from, what is not in it.
        "selfhost_export": {
            "project": graph.get("project"), "stack": graph.get("stack"),
            "source": "selfhost preview: the Pulumi program run under Pulumi's mocks, no cloud account",
            "not_mapped": not_mapped,
        },
    }
    return Export(document, addresses, not_mapped)
