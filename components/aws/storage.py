from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

# Where things live in the bucket. The SageMaker role is granted exactly these prefixes.
MODELS_PREFIX = "models"
DATA_CAPTURE_PREFIX = "data-capture"


@dataclass(frozen=True)
class ArtifactStoreArgs:
    kms_key_arn: pulumi.Input[str]
    tags: dict[str, str]
    noncurrent_version_days: int = 90
    """Old object versions (overwritten weights) are kept this long, then expire."""
    data_capture_days: int = 30
    """Captured requests and responses hold user prompts: keep them no longer than needed."""


class ArtifactStore(pulumi.ComponentResource):
    """The model artifacts bucket: versioned, KMS-encrypted, never public, TLS only, protected from deletion."""

    def __init__(self, name: str, args: ArtifactStoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:aws:ArtifactStore", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.bucket = aws.s3.Bucket(
            f"{name}-bucket", force_destroy=False, tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership", bucket=self.bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"), opts=child,
        )
        aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block", bucket=self.bucket.id, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True, opts=child,
        )
        aws.s3.BucketVersioning(
            f"{name}-versioning", bucket=self.bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"), opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption", bucket=self.bucket.id,
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="aws:kms", kms_master_key_id=args.kms_key_arn),
                bucket_key_enabled=True,  # one KMS call per bucket key instead of per object: cost and throttling
            )],
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=self.bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-noncurrent-versions", status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=args.noncurrent_version_days),
                ),
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-data-capture", status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=f"{DATA_CAPTURE_PREFIX}/"),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=args.data_capture_days),
                ),
            ],
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-tls-only", bucket=self.bucket.id,
            policy=pulumi.Output.json_dumps({
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                    "Resource": [self.bucket.arn, pulumi.Output.concat(self.bucket.arn, "/*")],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }],
            }),
            opts=child,
        )
        self.bucket_name = self.bucket.bucket
        self.bucket_arn = self.bucket.arn
        self.register_outputs({"bucket": self.bucket_name, "arn": self.bucket_arn})
