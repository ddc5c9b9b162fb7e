from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp


@dataclass(frozen=True)
class HfTokenSecretArgs:
    project: str
    region: str
    secret_id: str
    token: pulumi.Output[str]
    """A Pulumi secret (from `pulumi config set --secret hfToken`)."""
    reader: pulumi.Input[str]
    """The one IAM member (serviceAccount:...) that may read the token."""
    labels: dict[str, str]
    kms_key_id: pulumi.Input[str]
    """The environment's Cloud KMS key, in the same region: the replica is encrypted with it."""
    depends_on: list[pulumi.Resource] = field(default_factory=list)


class HfTokenSecret(pulumi.ComponentResource):
    """The Hugging Face token in Secret Manager, replicated only in the environment's region, encrypted with the
    environment's key, readable by one member: the binding is authoritative for the accessor role, so nobody else
    is granted it on this secret."""

    def __init__(self, name: str, args: HfTokenSecretArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:gcp:HfTokenSecret", name, None, opts)
        self.secret = gcp.secretmanager.Secret(
            f"{name}-secret", project=args.project, secret_id=args.secret_id, labels=args.labels,
            replication=gcp.secretmanager.SecretReplicationArgs(
                user_managed=gcp.secretmanager.SecretReplicationUserManagedArgs(
                    replicas=[gcp.secretmanager.SecretReplicationUserManagedReplicaArgs(
                        location=args.region,
                        customer_managed_encryption=gcp.secretmanager
                        .SecretReplicationUserManagedReplicaCustomerManagedEncryptionArgs(kms_key_name=args.kms_key_id),
                    )])),
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
        )
        # Annotated: from the argument's type alone, mypy cannot tell which part of Input[U] an Output[str] is.
        token: pulumi.Output[str] = pulumi.Output.secret(args.token)
        gcp.secretmanager.SecretVersion(
            f"{name}-version", secret=self.secret.id, secret_data=token,
            opts=pulumi.ResourceOptions(parent=self),
        )
        gcp.secretmanager.SecretIamBinding(
            f"{name}-accessor", project=args.project, secret_id=self.secret.secret_id,
            role="roles/secretmanager.secretAccessor", members=[args.reader],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.secret_id = self.secret.id
        self.register_outputs({"secretId": self.secret_id})
