from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

# Roles granted on the project because these permissions exist at no narrower level: writing logs and
# metrics. Every other grant to the serving identity is made on the one resource it needs.
from ..catalog.iam import PROJECT_ROLES
from ..schema import ModelSpec
from ..weights import Location


@dataclass(frozen=True)
class ServingIdentityArgs:
    project: str
    account_id: str
    """6-30 characters: lowercase letters, digits, hyphens."""
    depends_on: list[pulumi.Resource] = field(default_factory=list)


class ServingIdentity(pulumi.ComponentResource):
    """The dedicated service account serving workloads run as, with only log and metric writing at project level.

    Components that own a resource (a secret, a dataset, an image repository) grant this account access to that
    one resource.
    """

    def __init__(self, name: str, args: ServingIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:gcp:ServingIdentity", name, None, opts)
        self.account = gcp.serviceaccount.Account(
            f"{name}-sa", project=args.project, account_id=args.account_id,
            display_name=f"{name}: model serving", description="Runtime identity of the model servers",
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
        )
        self.email = self.account.email
        self.member = self.account.member
        for role in PROJECT_ROLES:
            gcp.projects.IAMMember(
                f"{name}-{role.split('/')[1].replace('.', '-').lower()}", project=args.project, role=role,
                member=self.member, opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({"email": self.email})


WEIGHTS_READER_ROLE = "roles/storage.objectViewer"


def prefix_condition(location: Location) -> str:
    """The IAM condition that narrows a bucket grant to `location`'s prefix: its objects (get), and listings under
    it (`gcloud storage cp -r` lists the prefix before it reads).

    Objects: `resource.name` is projects/_/buckets/<bucket>/objects/<name> (IAM Conditions resource attributes,
    Cloud Storage). Listings are checked against the bucket, whose name has no object part: the request's prefix is
    the API attribute `storage.googleapis.com/objectListPrefix` (IAM Conditions attribute reference, API
    attributes; the same two clauses scope Cloud Storage credential access boundaries in public code, 2026-12).
    A source that is a whole bucket gets a condition all the same (the bucket and everything in it): a condition's
    title tells the grants of two targets apart, so that destroying one does not take the other's away."""
    if not location.object_prefix:
        return f"resource.name.startsWith({json.dumps(f'projects/_/buckets/{location.bucket}')})"
    objects = json.dumps(f"projects/_/buckets/{location.bucket}/objects/{location.object_prefix}")
    listed = json.dumps(location.object_prefix)
    return (f"resource.name.startsWith({objects}) || "
            f'api.getAttribute("storage.googleapis.com/objectListPrefix", "").startsWith({listed})')


def grant_weights_read(name: str, owner: str, location: Location, member: pulumi.Input[str],
                       opts: pulumi.ResourceOptions | None = None) -> gcp.storage.BucketIAMMember:
    """`member` reads the weights at `location` (a gs:// source in the team's bucket) and nothing else of the
    bucket: roles/storage.objectViewer on the bucket, conditioned on the prefix (prefix_condition). `owner` (the
    target's name) titles the condition: IAM keys a conditional binding by role and condition, so two targets
    granting the same member the same prefix hold two bindings, and destroying one leaves the other.

    The bucket is the team's, not the stack's: this adds one member to its policy (non-authoritative), and removes
    only that one on destroy. IAM Conditions on a bucket need uniform bucket-level access enabled on it (Cloud
    Storage "Use IAM Conditions": a bucket with fine-grained ACLs refuses conditional bindings), so a bucket that
    still uses ACLs makes `pulumi up` fail here, with Google's error, rather than grant the whole bucket."""
    return gcp.storage.BucketIAMMember(
        name, bucket=location.bucket, role=WEIGHTS_READER_ROLE, member=member,
        condition=gcp.storage.BucketIAMMemberConditionArgs(
            title=f"{owner}: weights"[:100], expression=prefix_condition(location),
            description=f"selfhost-llm {owner} reads {location.uri} only"),
        opts=opts)


def grant_model_weights(name: str, owner: str, model: ModelSpec, member: pulumi.Input[str],
                        opts: pulumi.ResourceOptions | None = None) -> list[gcp.storage.BucketIAMMember]:
    """One grant_weights_read per gs:// source of `model` (its weights, its adapters), each source once; named
    `{name}-read-model` and `{name}-read-adapter-<adapter name>` (stable keys, never list positions)."""
    sources = (("model", model.location), *((f"adapter-{a.name}", a.location) for a in model.adapters))
    grants: dict[str, gcp.storage.BucketIAMMember] = {}
    for key, location in sources:
        if location.scheme == "gs" and location.uri not in grants:
            grants[location.uri] = grant_weights_read(f"{name}-read-{key}", f"{owner} {key}", location, member, opts)
    return list(grants.values())
