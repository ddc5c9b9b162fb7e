"""`selfhost preview <env> --base <ref>`: what a change does to a stack's resources, as a pull request reviewer
needs it: what is added, removed and changed, which changes replace a resource instead of updating it in place,
and which of those replacements lose data, cause downtime or give a resource a new address.

Pure functions over two documents of `selfhost preview --json` (the base may be None: the stack is new). Resources
are matched by URN. Inputs are compared in the provider's wire format, flattened to paths such as
`inputs.spec.template.spec.containers[0].image`. Secret values never appear: the preview holds only a marker for
them, so a changed secret is not even visible here.

The offline preview has no provider to ask whether a change replaces a resource, so REPLACE_ON_CHANGE below says
it per resource type, from the provider's own source, each entry cited. A type not in the table shows as
`update?`: the real `pulumi preview` against the stack decides.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from components.schema import SECRET_PLACEHOLDER

Effect = Literal["replace", "may-replace", "update", "unknown"]
Action = Literal["create", "delete", "update", "replace", "may-replace"]

EVERY = "*"  # a key matching every input path


@dataclass(frozen=True)
class Rule:
    """When a provider replaces a resource of one type rather than updating it in place."""

    replace: tuple[str, ...] = ()
    """Input paths (as the preview's secretInputs write them: `a.b[0].c`) whose change forces a replacement;
    a key covers every path below it. EVERY: all inputs (an immutable resource)."""
    maybe: tuple[str, ...] = ()
    """Paths whose change may force one: the provider decides from values or state the preview lacks."""
    except_: tuple[str, ...] = ()
    """With EVERY: the inputs that still update in place (tags)."""
    complete: bool = True
    """The source lists every replace-on-change input: any other change is an in-place update. False: other
    changes show as `update?`."""
    risk: str | None = None
    """Why a user would not want this replaced (data loss, downtime, a new address): a warning when it is."""
    removal: str | None = None
    """Why its removal hurts: a warning when it is removed."""
    note: str | None = None
    """What a replacement means for this type."""
    updates: tuple[tuple[str, str], ...] = ()
    """(path, what an in-place change of it does)."""
    source: str = ""


_TF_AWS = "terraform-provider-aws internal/service/"
# Why a Terraform provider's ForceNew is a Pulumi replacement: said once, under the sources in a PR comment.
_BRIDGE = ("pulumi-aws and pulumi-gcp bridge the Terraform providers: pulumi-terraform-bridge's Diff turns a "
           "ForceNew attribute into a replacement")
_META = ("metadata.name", "metadata.namespace")
_K8S = ("pulumi-kubernetes provider/pkg/provider/diff.go forceNewProperties: metadata.name and metadata.namespace "
        "for every kind")
_AWS_TAGS = ("tags", "tagsAll")
# pulumi-aws v7 adds a per-resource `region` input; it is not in the sources read here, and a resource cannot
# move between regions in place, so its change is a "may".
_REGION = ("region",)

REPLACE_ON_CHANGE: dict[str, Rule] = {
    "aws:sagemaker/model:Model": Rule(
        replace=(EVERY,), except_=_AWS_TAGS,
        note="a SageMaker model cannot be changed: a new one is created under a new name, and the endpoint "
             "configuration naming it is replaced with it",
        source=f"{_TF_AWS}sagemaker/model.go: every argument but tags is ForceNew (primary_container.*, "
               "execution_role_arn, vpc_config, enable_network_isolation, name...)"),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": Rule(
        replace=(EVERY,), except_=_AWS_TAGS,
        risk="endpoint configurations are immutable: a new one is created and the endpoint is updated to it, a "
             "blue/green deployment (SageMaker provisions the new fleet beside the old one: instance quota for "
             "both, traffic shifted per the endpoint's deploymentConfig)",
        source=f"{_TF_AWS}sagemaker/endpoint_configuration.go: every argument but tags is ForceNew "
               "(production_variants.*, data_capture_config, kms_key_arn...)"),
    "aws:sagemaker/endpoint:Endpoint": Rule(
        replace=("name", "deploymentConfig.autoRollbackConfiguration"), maybe=_REGION,
        risk="downtime: a replaced endpoint is a new endpoint; requests fail until it is InService (with a fixed "
             "name the old one must be deleted first)",
        removal="downtime: the endpoint stops serving",
        updates=(("endpointConfigName", "SageMaker moves the endpoint to the new configuration in place: a "
                                        "blue/green deployment per its deploymentConfig"),),
        source=f"{_TF_AWS}sagemaker/endpoint.go: name and deployment_config.auto_rollback_configuration are "
               "ForceNew; endpoint_config_name and the rest of deployment_config call UpdateEndpoint"),
    "aws:s3/bucket:Bucket": Rule(
        replace=("bucket", "bucketPrefix", "objectLockEnabled"), maybe=_REGION,
        risk="data loss and a new address: the new bucket is empty and has another name; the objects stay in the "
             "old one, which is deleted",
        removal="data loss: the bucket and its objects go",
        source="terraform-provider-aws website/docs/r/s3_bucket.html.markdown: bucket, bucket_prefix and "
               "object_lock_enabled are 'Forces new resource'"),
    "aws:kms/key:Key": Rule(
        replace=("customerMasterKeySpec", "keyUsage", "multiRegion", "customKeyStoreId", "xksKeyId"), maybe=_REGION,
        risk="data loss: what the old key encrypted (objects, secrets, logs) decrypts only with it, and a replaced "
             "key is scheduled for deletion",
        removal="data loss: what the key encrypted cannot be decrypted once its deletion window ends",
        source=f"{_TF_AWS}kms/key.go: custom_key_store_id, customer_master_key_spec, key_usage, multi_region and "
               "xks_key_id are ForceNew"),
    "aws:ec2/vpc:Vpc": Rule(
        replace=("cidrBlock", "ipv4IpamPoolId", "ipv4NetmaskLength"), maybe=_REGION,
        risk="downtime and new addresses: the subnets, endpoints and gateways in the VPC are recreated with it",
        removal="downtime: everything in the VPC loses its network",
        source=f"{_TF_AWS}ec2/vpc_.go: cidr_block, ipv4_ipam_pool_id and ipv4_netmask_length are ForceNew"),
    "aws:ec2/subnet:Subnet": Rule(
        replace=("availabilityZone", "availabilityZoneId", "cidrBlock", "ipv4IpamPoolId", "ipv4NetmaskLength",
                 "ipv6IpamPoolId", "ipv6Native", "ipv6NetmaskLength", "outpostArn", "vpcId"),
        # ForceNewIf: only when the subnet was created with assignIpv6AddressOnCreation.
        maybe=("ipv6CidrBlock", *_REGION),
        risk="downtime and new addresses: the network interfaces in the subnet (endpoints, NAT, instances) are "
             "recreated",
        removal="downtime: what runs in the subnet loses its network",
        source=f"{_TF_AWS}ec2/vpc_subnet.go: availability_zone(_id), cidr_block, the IPAM and IPv6 options, "
               "outpost_arn and vpc_id are ForceNew, ipv6_cidr_block by a ForceNewIf"),
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
    # Kubernetes: the provider's own table (not bridged). Server-side apply does not change it.
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

# Prefix rules, for the types not listed above.
PREFIX_RULES: tuple[tuple[str, Rule], ...] = (
    # Helm releases are the provider's own resource, not a Kubernetes object: not covered by its table.
    ("kubernetes:helm.sh/", Rule(complete=False)),
    # Every other kind: diff.go lists nothing more for it (custom resources included), so the rest updates in
    # place (the API server may still refuse a change to a field it holds immutable: an error, not a replacement).
    ("kubernetes:", Rule(replace=_META, source=_K8S)),
    ("pulumi:providers:", Rule(
        maybe=(EVERY,), complete=False,
        risk="every resource this provider manages may be replaced with it",
        source="a provider's configuration change can replace the provider; the offline preview cannot tell")),
)


def rule_for(type_: str) -> Rule | None:
    if type_ in REPLACE_ON_CHANGE:
        return REPLACE_ON_CHANGE[type_]
    return next((rule for prefix, rule in PREFIX_RULES if type_.startswith(prefix)), None)


@dataclass(frozen=True)
class InputChange:
    path: str
    """As shown: `inputs.primaryContainer.image`, `inputs.policy<json>.Statement[0].Action`, `options.protect`."""
    old: str | None
    """Shown value, "[secret]" for secrets, None when absent."""
    new: str | None
    effect: Effect
    raw: str = ""
    """The input property path the replacement table matches (`primaryContainer.image`, `policy`)."""


@dataclass
class ResourceChange:
    urn: str
    type: str
    name: str
    action: Action
    inputs: list[InputChange] = field(default_factory=list)
    known: bool = True
    """False: the type is not in the replacement table, or not all of its changed inputs are: an update may still
    turn out to be a replacement."""
    protect: bool = False
    risky: bool = False
    why: str | None = None
    """Why the replacement or removal hurts (risky), or what a replacement means."""
    notes: list[str] = field(default_factory=list)
    follows: list[str] = field(default_factory=list)
    """Names of replaced resources this change follows (its inputs hold their ids)."""

    @property
    def label(self) -> str:
        return "update?" if self.action == "update" and not self.known else self.action


@dataclass
class PlanDiff:
    stack: str
    base_ref: str | None
    new_stack: bool
    changes: list[ResourceChange]
    warnings: list[str]

    def count(self, *actions: Action) -> int:
        return sum(c.action in actions for c in self.changes)

    def summary(self) -> str:
        replaced, maybe = self.count("replace"), self.count("may-replace")
        return (f"{self.count('create')} to add, {self.count('update', 'replace', 'may-replace')} to change "
                f"({replaced} replaced{f', {maybe} may be replaced' if maybe else ''}), "
                f"{self.count('delete')} to remove")


ORDER: dict[str, int] = {"replace": 0, "may-replace": 1, "update": 2, "create": 3, "delete": 4}


# The temporary worktree previews_at_ref (selfhost/cost_report.py) previews the base in: absolute paths in the base
# (a docker build context) start with it where the head's start with the project root.
BASE_TREE = re.compile(r'(?:/[^/"\\\s]+)*?/selfhost-base-[^/"\\\s]+/tree(?=[/"])')


def plan_diff(base: dict[str, Any] | None, head: dict[str, Any], base_ref: str | None = None,
              project_root: str | None = None) -> PlanDiff:
    """What `head` changes against `base` (None: the stack does not exist at the base). Only custom resources
    count: components own no cloud object. With `project_root`, the base's worktree paths read as the project's,
    so where the base was previewed is not a change."""
    if base is not None and project_root:
        root = json.dumps(project_root)[1:-1]
        base = json.loads(BASE_TREE.sub(lambda _: root, json.dumps(base)))
    old = {r["urn"]: r for r in (base or {}).get("resources", []) if r.get("custom")}
    new = {r["urn"]: r for r in head["resources"] if r.get("custom")}
    changes: dict[str, ResourceChange] = {}
    for urn, r in new.items():
        if urn not in old:
            changes[urn] = ResourceChange(urn, r["type"], r["name"], "create", protect=bool(r.get("protect")))
        elif inputs := _input_changes(old[urn], r):
            changes[urn] = _classified(ResourceChange(urn, r["type"], r["name"], "update", inputs,
                                                      protect=bool(r.get("protect"))))
    for urn, r in old.items():
        if urn not in new:
            changes[urn] = ResourceChange(urn, r["type"], r["name"], "delete", protect=bool(r.get("protect")))
    _follow_replacements(changes, new)
    _moved(changes)
    ordered = sorted(changes.values(), key=lambda c: (ORDER[c.action], c.name, c.type))
    for c in ordered:
        _assess(c, new)
    return PlanDiff(stack=head["stack"], base_ref=base_ref, new_stack=base is None, changes=ordered,
                    warnings=[w for c in ordered if (w := _warning(c))])


def _input_changes(old: dict[str, Any], new: dict[str, Any]) -> list[InputChange]:
    rule = rule_for(new["type"])
    secrets = set(old.get("secretInputs") or []) | set(new.get("secretInputs") or [])
    before, after = _leaves(old.get("inputs") or {}), _leaves(new.get("inputs") or {})
    out = []
    for path in [*after, *(p for p in before if p not in after)]:
        (raw_old, a), (raw_new, b) = before.get(path, ("", _ABSENT)), after.get(path, ("", _ABSENT))
        if a == b and type(a) is type(b):  # 1 == True == 1.0: a type change is a change
            continue
        raw = raw_new or raw_old
        hidden = _secret(raw, secrets) or SECRET_PLACEHOLDER in (a, b)
        out.append(InputChange(path, _shown(a, hidden), _shown(b, hidden), _effect(rule, raw), raw))
    # `protect` is Pulumi's own state: no provider call.
    if bool(old.get("protect")) != bool(new.get("protect")):
        out.append(InputChange("options.protect", _shown(bool(old.get("protect"))), _shown(bool(new.get("protect"))),
                               "update"))
    # Another explicit provider may be another cluster or account (the default providers are not recorded).
    if (old.get("provider") or None) != (new.get("provider") or None):
        out.append(InputChange("options.provider", _shown(old.get("provider") or _ABSENT),
                               _shown(new.get("provider") or _ABSENT), "may-replace"))
    return out


_ABSENT = object()
_PLAIN_KEY = re.compile(r"[A-Za-z_$][\w$-]*")


def _leaves(value: Any, shown: str = "inputs", raw: str = "", in_json: bool = False,
            out: dict[str, tuple[str, Any]] | None = None) -> dict[str, tuple[str, Any]]:
    """Shown path -> (input property path, value) for every scalar (and empty container) in `value`. A string
    holding a JSON document (IAM policies, dashboards) is flattened too, so a change inside it reads as the one
    statement that changed; its paths keep the property's own for the replacement table."""
    out = {} if out is None else out
    if isinstance(value, dict) and value:
        for k, v in value.items():
            key = f"{shown}.{k}" if _PLAIN_KEY.fullmatch(k) else f"{shown}[{json.dumps(k)}]"
            _leaves(v, key, raw if in_json else f"{raw}.{k}" if raw else k, in_json, out)
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            _leaves(v, f"{shown}[{i}]", raw if in_json else f"{raw}[{i}]", in_json, out)
    elif isinstance(value, str) and value[:1] in ("{", "[") and isinstance(doc := _json(value), dict | list) and doc:
        _leaves(doc, f"{shown}<json>", raw, True, out)
    else:
        out[shown] = (raw, value)
    return out


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _secret(raw: str, secrets: set[str]) -> bool:
    """`raw` is a secret input or lies within one (the preview's secretInputs paths; "." is all inputs)."""
    return any(s == "." or raw == s or raw.startswith((f"{s}.", f"{s}[")) for s in secrets)


MAX_VALUE = 80


def _shown(value: Any, hidden: bool = False) -> str | None:
    if value is _ABSENT:
        return None
    if hidden:
        return SECRET_PLACEHOLDER
    text = json.dumps(value, ensure_ascii=False)
    # The middle goes: the ends of image URIs, ARNs and hashes are what differ.
    return text if len(text) <= MAX_VALUE else f"{text[:48]}...{text[-(MAX_VALUE - 51):]}"


def _covers(key: str, raw: str) -> bool:
    return key == EVERY or raw == key or raw.startswith((f"{key}.", f"{key}["))


def _effect(rule: Rule | None, raw: str) -> Effect:
    if rule is None:
        return "unknown"
    top = re.split(r"[.\[]", raw, maxsplit=1)[0]
    if any(_covers(k, raw) for k in rule.replace) and not (EVERY in rule.replace and top in rule.except_):
        return "replace"
    if any(_covers(k, raw) for k in rule.maybe):
        return "may-replace"
    return "update" if rule.complete else "unknown"


def _classified(c: ResourceChange) -> ResourceChange:
    effects = {i.effect for i in c.inputs}
    c.action = "replace" if "replace" in effects else "may-replace" if "may-replace" in effects else "update"
    c.known = "unknown" not in effects
    return c


def _follow_replacements(changes: dict[str, ResourceChange], resources: dict[str, dict[str, Any]]) -> None:
    """A replaced resource gets a new id (and ARN) unless its name is given; the resources whose inputs hold it
    change with it, and may be replaced in turn (a SageMaker model replaced: its endpoint configuration is
    replaced, the endpoint updated). The offline preview cannot see this: its ids come from the URN."""
    queue = [u for u, c in changes.items() if c.action == "replace"]
    while queue:
        source = resources[queue.pop(0)]
        sid = str(source.get("id") or "")
        if len(sid) < 6 or _keeps_id(source):
            continue
        for urn, r in resources.items():
            if source["urn"] not in (r.get("dependencies") or []):
                continue
            c = changes.get(urn) or ResourceChange(urn, r["type"], r["name"], "update",
                                                   protect=bool(r.get("protect")))
            changed = {i.path for i in c.inputs}
            rule = rule_for(r["type"])
            refs = [InputChange(path, _shown(v), f"(known after {source['name']} is replaced)", _effect(rule, raw),
                                raw)
                    for path, (raw, v) in _leaves(r.get("inputs") or {}).items()
                    if path not in changed and isinstance(v, str) and (sid in v or v == source["urn"])]
            if not refs:
                continue
            was = c.action
            c.inputs += refs
            c.follows.append(source["name"])
            changes[urn] = _classified(c)
            if c.action == "replace" and was != "replace":
                queue.append(urn)


def _keeps_id(r: dict[str, Any]) -> bool:
    """The id ends with a name given in the inputs (a fixed name, a Kubernetes `namespace/name`, a dataset id):
    a replacement keeps it, so what refers to it does not change."""
    last = re.split(r"[/:]", str(r.get("id") or ""))[-1]
    return any(v == last for _, v in _leaves(r.get("inputs") or {}).values())


def _moved(changes: dict[str, ResourceChange]) -> None:
    """A resource removed and one added with the same type and name: its URN changed (a new parent)."""
    added = {(c.type, c.name): c for c in changes.values() if c.action == "create"}
    for c in [c for c in changes.values() if c.action == "delete"]:
        if twin := added.get((c.type, c.name)):
            for x in (c, twin):
                x.notes.append("its URN changed (a new parent or name): without an `aliases` option Pulumi "
                               "deletes the old one and creates a new one")


def _assess(c: ResourceChange, resources: dict[str, dict[str, Any]]) -> None:
    """The why and the notes of a change, and whether it is risky."""
    if c.action in ("replace", "may-replace", "delete") and c.protect:
        c.risky = True
        c.notes.append("protected: `pulumi up` refuses to delete it, so the update fails until `protect` is "
                       "lifted")
    r = resources.get(c.urn)
    if c.action == "replace" and r and not c.type.startswith("kubernetes:") and _keeps_id(r):
        c.notes.append("its name is fixed: Pulumi creates the replacement before it deletes the old one (unless "
                       "the resource sets deleteBeforeReplace), and the two may not share the name")
    rule = rule_for(c.type)
    if rule is None:
        return
    if c.action in ("replace", "may-replace"):
        c.why = rule.risk or rule.note
        c.risky = c.risky or rule.risk is not None
        if c.type.startswith("pulumi:providers:"):
            users = sum(x.get("provider") == c.urn for x in resources.values())
            c.notes.append(f"{users} resources use this provider")
    elif c.action == "delete":
        c.why = rule.removal
        c.risky = c.risky or rule.removal is not None
    for path, what in rule.updates:
        if c.action == "update" and any(_covers(path, i.raw) for i in c.inputs):
            c.notes.append(f"{path}: {what}")
    if c.action == "replace" and rule.note and rule.risk:
        c.notes.append(rule.note)


def _warning(c: ResourceChange) -> str | None:
    if not c.risky:
        return None
    what = {"replace": "is replaced", "may-replace": "may be replaced", "delete": "is removed"}[c.action]
    forced = [i.path for i in c.inputs if i.effect in ("replace", "may-replace")]
    by = f" (by {', '.join(forced[:3])}{', ...' if len(forced) > 3 else ''})" if forced else ""
    reasons = [r for r in (c.why, "protected: `pulumi up` will fail until `protect` is lifted" if c.protect else None)
               if r]
    return f"{c.name} ({c.type}) {what}{by}: {'; '.join(reasons)}"


MAX_PATHS = 12  # per resource in the renderers; the rest is counted


def _effect_label(i: InputChange) -> str:
    return {"replace": "forces replacement", "may-replace": "may force replacement", "update": "",
            "unknown": ""}[i.effect]


def text(d: PlanDiff) -> str:
    """The diff for a terminal or a CI log."""
    against = f" against {d.base_ref}" if d.base_ref else ""
    head = f"Plan for {d.stack}{against}: " + ("new stack, " if d.new_stack else "")
    if not d.changes:
        return head + "no changes\n"
    lines = [head + d.summary()]
    lines += [f"warning: {w}" for w in d.warnings]
    for c in d.changes:
        follows = f"  (follows {', '.join(c.follows)})" if c.follows else ""
        lines.append(f"  {c.label:11} {c.name}  {c.type}{follows}")
        for i in c.inputs[:MAX_PATHS]:
            effect = f"  ({_effect_label(i)})" if _effect_label(i) else ""
            lines.append(f"      {i.path}: {i.old or '(none)'} -> {i.new or '(none)'}{effect}")
        if len(c.inputs) > MAX_PATHS:
            lines.append(f"      ... and {len(c.inputs) - MAX_PATHS} more changed inputs")
        if c.why and not c.risky:
            lines.append(f"      {c.why}")
        lines += [f"      {n}" for n in c.notes]
    if any(not c.known for c in d.changes):
        lines.append("update?: the type, or one of its changed inputs, is not in the replacement table "
                     "(selfhost/plan_diff.py); `pulumi preview` decides")
    return "\n".join(lines) + "\n"


def markdown(d: PlanDiff) -> str:
    """The diff as a pull request comment section: the summary, the warnings first, then each change."""
    against = f" against `{d.base_ref}`" if d.base_ref else ""
    lines = [f"### selfhost-llm plan: `{d.stack}`{against}", ""]
    if not d.changes:
        return "\n".join([*lines, "No changes.", ""]) + "\n"
    lines += [("New stack: " if d.new_stack else "") + f"**{d.summary()}**", ""]
    if d.warnings:
        lines += ["> [!WARNING]", *(f"> - {_md(w)}" for w in d.warnings), ""]
    sections = (("Replaced", ("replace", "may-replace")), ("Updated in place", ("update",)),
                ("Added", ("create",)), ("Removed", ("delete",)))
    for title, actions in sections:
        items = [c for c in d.changes if c.action in actions]
        if not items:
            continue
        body = [line for c in items for line in _md_change(c)]
        if len(items) > 10:  # a new stack: the list folds away
            lines += [f"<details><summary>{title} ({len(items)})</summary>", "", *body, "", "</details>", ""]
        else:
            lines += [f"#### {title}", "", *body, ""]
    used = sorted({c.type for c in d.changes if c.action in ("replace", "may-replace") and rule_for(c.type)})
    if used:
        lines += ["<details><summary>Why these are replacements</summary>", ""]
        lines += [f"- `{t}`: {_md(rule.source)}" for t in used if (rule := rule_for(t)) and rule.source]
        if any(t.startswith(("aws:", "gcp:")) for t in used):
            lines.append(f"- {_md(_BRIDGE)}")
        lines += ["", "</details>", ""]
    lines.append("<sub>Replacements per resource type from selfhost/plan_diff.py (each cited there); `update?`: not "
                 "in it, the real `pulumi preview` decides. Secret values are never shown or compared.</sub>")
    return "\n".join(lines) + "\n"


def _md_change(c: ResourceChange) -> list[str]:
    follows = f" (follows {', '.join(f'`{n}`' for n in c.follows)})" if c.follows else ""
    out = [f"- **{c.label}** `{c.name}` `{c.type}`{follows}"]
    for i in c.inputs[:MAX_PATHS]:
        effect = f" **{_effect_label(i)}**" if _effect_label(i) else ""
        out.append(f"  - {_code(i.path)}: {_code(i.old or '(none)')} → {_code(i.new or '(none)')}{effect}")
    if len(c.inputs) > MAX_PATHS:
        out.append(f"  - ... and {len(c.inputs) - MAX_PATHS} more changed inputs")
    if c.why and not c.risky:
        out.append(f"  - {_md(c.why)}")
    out += [f"  - {_md(n)}" for n in c.notes]
    return out


def _code(text: str) -> str:
    """An inline code span that survives any value (a backtick inside one would end it)."""
    return f"`{text.replace('`', chr(39))}`"


def _md(text: str) -> str:
    return text.replace("<", "&lt;")
