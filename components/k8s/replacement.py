"""Which changes replace the `kubernetes` platform's resources (components/replacement.py): the pulumi-kubernetes
provider's own table (not bridged from Terraform; server-side apply does not change it), each rule citing it.

Read through `Platform.replacement_rules()` of the `kubernetes` platform (components/targets/cluster.py).
"""

from __future__ import annotations

from ..replacement import Rule

_META = ("metadata.name", "metadata.namespace")
_K8S = ("pulumi-kubernetes provider/pkg/provider/diff.go forceNewProperties: metadata.name and metadata.namespace "
        "for every kind")

RULES: dict[str, Rule] = {
    "kubernetes:apps/v1:Deployment": Rule(
        replace=(*_META, "spec.selector"),
        risk="downtime: the Deployment is recreated rather than rolled (every pod at once)",
        source=f"{_K8S}; spec.selector for apps/v1 Deployment"),
    "kubernetes:core/v1:PersistentVolumeClaim": Rule(
        # The whole spec: storageClassName, accessModes, resources (a size change too), selector, volumeName.
        replace=(*_META, "spec"),
        risk="data loss: the new claim is a new, empty volume (a model cache downloads the weights again)",
        removal="data loss: the volume goes with the claim (per its reclaim policy)",
        source=f"{_K8S}; .spec and everything in it for core/v1 PersistentVolumeClaim"),
    "kubernetes:core/v1:Namespace": Rule(
        replace=_META,
        risk="data loss and downtime: deleting a namespace deletes every object in it",
        removal="data loss and downtime: every object in the namespace is deleted with it",
        source=_K8S),
    "kubernetes:core/v1:Secret": Rule(
        replace=(*_META, "type", "stringData", "data"),
        note="its values are secret: a change to them does not show in this diff",
        source=f"{_K8S}; .type, .stringData and .data for core/v1 Secret"),
    "kubernetes:core/v1:ConfigMap": Rule(replace=(*_META, "data", "binaryData"),
                                         source=f"{_K8S}; .data and .binaryData for core/v1 ConfigMap"),
    "kubernetes:core/v1:Service": Rule(
        replace=(*_META, "spec.clusterIP"), risk="a new address: the Service gets a new cluster IP",
        source=f"{_K8S}; .spec.clusterIP for core/v1 Service"),
    "kubernetes:apps/v1:StatefulSet": Rule(
        replace=(*_META, "spec.podManagementPolicy", "spec.revisionHistoryLimit", "spec.selector", "spec.serviceName",
                 "spec.volumeClaimTemplates"),
        risk="downtime: the StatefulSet is recreated rather than rolled",
        source=f"{_K8S}; five spec fields for apps/v1 StatefulSet"),
    "kubernetes:batch/v1:Job": Rule(
        replace=(*_META, "spec.completions", "spec.parallelism", "spec.selector", "spec.template"),
        source=f"{_K8S}; four spec fields for batch/v1 Job"),
    "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding": Rule(replace=(*_META, "roleRef"),
                                                               source=f"{_K8S}; .roleRef for RoleBinding"),
    "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding": Rule(
        replace=(*_META, "roleRef"), source=f"{_K8S}; .roleRef for ClusterRoleBinding"),
    "kubernetes:storage.k8s.io/v1:StorageClass": Rule(
        replace=(*_META, "parameters", "provisioner"), source=f"{_K8S}; .parameters and .provisioner for StorageClass"),
    "kubernetes:core/v1:ResourceQuota": Rule(replace=(*_META, "spec.scopes"),
                                             source=f"{_K8S}; .spec.scopes for core/v1 ResourceQuota"),
    # The provider lists many more fields of these (a Pod's spec, a volume's sources): not copied here.
    "kubernetes:core/v1:Pod": Rule(replace=_META, complete=False, source=_K8S),
    "kubernetes:core/v1:PersistentVolume": Rule(replace=_META, complete=False, source=_K8S),
    "pulumi:providers:kubernetes": Rule(
        replace=("clusterIdentifier",),
        # Replaced when the kubeconfig, context or cluster points at another cluster, which the provider reads
        # from the kubeconfig itself: a secret here.
        maybe=("kubeconfig", "context", "cluster"), complete=False,
        risk="every Kubernetes object this provider manages may be replaced with it (volumes lose their data)",
        source="pulumi-kubernetes provider/pkg/provider/provider_diffconfig_test.go (DiffConfig): a change of "
               "clusterIdentifier replaces the provider; kubeconfig, context or cluster replace it when the target "
               "cluster differs"),
}

# For the types not listed above.
PREFIXES: tuple[tuple[str, Rule], ...] = (
    # Helm releases are the provider's own resource, not a Kubernetes object: not covered by its table.
    ("kubernetes:helm.sh/", Rule(complete=False)),
    # Every other kind: diff.go lists nothing more for it (custom resources included), so the rest updates in
    # place (the API server may still refuse a change to a field it holds immutable: an error, not a replacement).
    ("kubernetes:", Rule(replace=_META, source=_K8S)),
)
