"""The environment's customer-managed key on Google Cloud (Cloud KMS), and the service agents allowed to use it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

# Rotate every 90 days (a new key version; data stays readable with the old ones).
ROTATION = f"{90 * 86_400}s"
# The Google-managed identities that encrypt for the services we give the key to: BigQuery's is the project's
# "encryption service account"; Secret Manager's and Artifact Registry's are their service agents, created on
# demand (Cloud KMS docs, "CMEK integrations").
AGENT_SERVICES = ("secretmanager.googleapis.com", "artifactregistry.googleapis.com")


@dataclass(frozen=True)
class EncryptionKeyArgs:
    project: str
    region: str
    labels: dict[str, str]
    depends_on: list[pulumi.Resource] = field(default_factory=list)


class EncryptionKey(pulumi.ComponentResource):
    """A regional key ring and key, rotated every 90 days and `protect`ed (a deleted key makes its data unreadable
    for good), usable for encryption by exactly the service agents of BigQuery, Secret Manager and Artifact
    Registry in this project."""

    def __init__(self, name: str, args: EncryptionKeyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:gcp:EncryptionKey", name, None, opts)
        after = pulumi.ResourceOptions(parent=self, depends_on=args.depends_on)
        ring = gcp.kms.KeyRing(f"{name}-ring", project=args.project, location=args.region, name=f"{name}-ring",
                               opts=after)
        self.key = gcp.kms.CryptoKey(
            f"{name}-key", key_ring=ring.id, name=f"{name}-key", purpose="ENCRYPT_DECRYPT", rotation_period=ROTATION,
            labels=args.labels, opts=pulumi.ResourceOptions(parent=self, protect=True))
        bigquery = gcp.bigquery.get_default_service_account_output(
            project=args.project, opts=pulumi.InvokeOutputOptions(parent=self))
        members: dict[str, pulumi.Input[str]] = {"bigquery": bigquery.member}
        for service in AGENT_SERVICES:
            agent = gcp.projects.ServiceIdentity(f"{name}-{service.split('.')[0]}-agent", project=args.project,
                                                 service=service, opts=after)
            members[service.split(".")[0]] = agent.member
        self.grants: list[pulumi.Resource] = [
            gcp.kms.CryptoKeyIAMMember(f"{name}-{who}", crypto_key_id=self.key.id, member=member,
                                       role="roles/cloudkms.cryptoKeyEncrypterDecrypter",
                                       opts=pulumi.ResourceOptions(parent=self))
            for who, member in members.items()
        ]
        self.key_id = self.key.id
        self.register_outputs({"keyId": self.key_id})
