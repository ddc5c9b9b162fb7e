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
}

PREFIXES: tuple[tuple[str, Rule], ...] = ()
