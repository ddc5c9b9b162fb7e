"""The `gcp` platform's Pulumi types as Terraform resources, for `selfhost export` (components/terraform.py).
pulumi-gcp is bridged from terraform-provider-google: each type is the `google_` resource of the same name.

Read through `Platform.terraform()` of the `gcp` platform (components/targets/gcp.py).
"""

from __future__ import annotations

from ..terraform import TfType

PROVIDERS = {"google": "registry.terraform.io/hashicorp/google"}

TYPES: dict[str, TfType] = {
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
    "gcp:compute/regionTargetHttpsProxy:RegionTargetHttpsProxy": TfType("google_compute_region_target_https_proxy"),
    "gcp:compute/regionSslCertificate:RegionSslCertificate": TfType("google_compute_region_ssl_certificate"),
    "gcp:compute/regionSslPolicy:RegionSslPolicy": TfType("google_compute_region_ssl_policy"),
    "gcp:compute/address:Address": TfType("google_compute_address"),
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
    # Its repeatable blocks keep their plural names in Terraform (containers, volumes, volume_mounts,
    # network_interfaces, ports), but for env and command.
    "gcp:cloudrunv2/service:Service": TfType("google_cloud_run_v2_service", {"envs": "env", "commands": "command"},
                                            maps=frozenset({"limits"})),
    "gcp:projects/iAMCustomRole:IAMCustomRole": TfType("google_project_iam_custom_role"),
    "gcp:vertex/aiEndpointIamMember:AiEndpointIamMember": TfType("google_vertex_ai_endpoint_iam_member"),
    "gcp:vertex/aiEndpointWithModelGardenDeployment:AiEndpointWithModelGardenDeployment": TfType(
        "google_vertex_ai_endpoint_with_model_garden_deployment", {"envs": "env", "commands": "command"}),
}

NOT_MAPPED: dict[str, str] = {
    "pulumi:providers:gcp": "a provider configuration, not a resource",
}
