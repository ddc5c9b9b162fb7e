from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

# Roles granted on the project because these permissions exist at no narrower level: writing logs and
# metrics. Every other grant to the serving identity is made on the one resource it needs.
from ..catalog.iam import PROJECT_ROLES


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
