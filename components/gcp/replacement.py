"""Which changes replace the `gcp` platform's resources (components/replacement.py), from terraform-provider-google's
source (generated from magic-modules), each rule citing it: pulumi-gcp is bridged from that provider, so its ForceNew
and immutable arguments are replacements.

Read through `Platform.replacement_rules()` of the `gcp` platform (components/targets/gcp.py).
"""

from __future__ import annotations

from ..replacement import EVERY, Rule

# Why a Terraform provider's ForceNew is a Pulumi replacement: said once, under the sources in a PR comment.
NOTE = ("pulumi-gcp bridges terraform-provider-google: pulumi-terraform-bridge's Diff turns a ForceNew attribute "
        "into a replacement")

RULES: dict[str, Rule] = {
    "gcp:vertex/aiEndpointWithModelGardenDeployment:AiEndpointWithModelGardenDeployment": Rule(
        replace=(EVERY,),
        risk="downtime and a new address: a new endpoint with a new id is deployed; clients of the old one fail",
        removal="downtime: the endpoint stops serving",
        source="magic-modules mmv1/products/vertexai/EndpointWithModelGardenDeployment.yaml: `immutable: true` "
               "for the whole resource (every argument ForceNew in terraform-provider-google)"),
    "gcp:bigquery/dataset:Dataset": Rule(
        replace=("datasetId", "location", "project", "externalDatasetReference"),
        risk="data loss: the dataset's tables go with it (or the replacement fails while they exist)",
        removal="data loss: the dataset's tables go with it (or the removal fails while they exist)",
        source="magic-modules mmv1/products/bigquery/Dataset.yaml: datasetReference.datasetId, location and "
               "externalDatasetReference are immutable, and project is ForceNew in every generated resource"),
    "gcp:compute/instanceTemplate:InstanceTemplate": Rule(
        replace=(EVERY,),
        note="instance templates are immutable: a new one is created and the instance group manager rolls its "
             "VMs to it per its update policy",
        source="terraform-provider-google website/docs/r/compute_instance_template.html.markdown: 'Instance "
               "Templates cannot be updated after creation'"),
    "gcp:compute/forwardingRule:ForwardingRule": Rule(
        replace=(EVERY,), except_=("target", "labels", "allowGlobalAccess", "allowPscGlobalAccess"),
        risk="downtime, and a new address unless the rule takes a reserved one: the load balancer stops answering "
             "while its rule is recreated",
        source="magic-modules mmv1/products/compute/ForwardingRule.yaml: `immutable: true` for the resource; only "
               "target (setTarget), labels (setLabels), allowGlobalAccess and allowPscGlobalAccess (PATCH) have an "
               "update_url"),
    "gcp:compute/address:Address": Rule(
        replace=(EVERY,), except_=("labels",),
        risk="a new address: callers (and the certificate issued for it) name the old one",
        removal="callers lose the address the load balancer answered at",
        source="magic-modules mmv1/products/compute/Address.yaml: `immutable: true`; only labels (setLabels) have "
               "an update_url"),
    "gcp:compute/regionSslCertificate:RegionSslCertificate": Rule(
        replace=(EVERY,),
        note="certificates are immutable: a new one (a new name from the prefix) is created and attached to the "
             "proxy before the old one is deleted",
        source="magic-modules mmv1/products/compute/RegionSslCertificate.yaml: `immutable: true` (no update_url)"),
    "gcp:cloudrunv2/service:Service": Rule(
        replace=("name", "location", "project"),
        risk="downtime and a new URL: the service is deleted and created again under its new name; callers of the "
             "old run.app URL fail",
        removal="downtime: the router stops answering (deletion protection refuses it in production)",
        note="every other change (image, environment, secrets' versions, scaling) is a new revision, rolled out "
             "when it is ready",
        source="magic-modules@0047dd65967f23c0af099e10aac644b506b36ea0 mmv1/products/cloudrunv2/Service.yaml: "
               "`name` and `location` are `immutable: true` (url_param_only), and project is ForceNew in every "
               "generated resource"),
    "gcp:projects/iAMCustomRole:IAMCustomRole": Rule(
        replace=("roleId", "project"),
        note="a deleted custom role's id stays taken for 37 days (IAM docs \"Create and manage custom roles\"): a "
             "replacement under the same id fails until then",
        source="terraform-provider-google google/services/resourcemanager/resource_google_project_iam_custom_role.go: "
               "role_id and project are ForceNew (not re-read for this rule: verify)"),
}

PREFIXES: tuple[tuple[str, Rule], ...] = ()
