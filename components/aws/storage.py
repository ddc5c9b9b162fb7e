from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .tags import ACCESS_LOGS_PURPOSE

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
    access_log_days: int = 365
    """How long the bucket's access logs (who read or wrote what) are kept."""
    incomplete_upload_days: int = 7
    """Parts of multipart uploads that never completed (an interrupted weights upload) are removed after this."""




class AccessLogBucket(pulumi.ComponentResource):
    """Where S3 writes the artifacts bucket's server access logs: never public, TLS only, written only by the
    S3 logging service for that one bucket, expiring after the retention period. Encrypted with S3-managed keys:
    server access logging cannot deliver to a bucket whose default encryption is a KMS key."""

    def __init__(self, name: str, source_bucket_arn: pulumi.Input[str], account_id: pulumi.Input[str], days: int,
                 tags: dict[str, str], opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:aws:AccessLogBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.bucket = aws.s3.Bucket(f"{name}-bucket", force_destroy=False,
                                    tags={**tags, ACCESS_LOGS_PURPOSE[0]: ACCESS_LOGS_PURPOSE[1]},
                                    opts=pulumi.ResourceOptions(parent=self, protect=True))
        _locked_down(name, self.bucket, child, sse=aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
            apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="AES256")))
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=self.bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-access-logs", status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=days),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=1),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=1),
                ),
            ],
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-policy", bucket=self.bucket.id,
            policy=pulumi.Output.json_dumps({
                "Version": "2012-10-17",
                "Statement": [
                    _deny_insecure(self.bucket.arn),
                    # The logging service writes, for our bucket only (S3 user guide, "Enabling server access
                    # logging": a bucket policy, since ACLs are off with BucketOwnerEnforced).
                    {"Sid": "S3ServerAccessLogs", "Effect": "Allow",
                     "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject",
                     "Resource": pulumi.Output.concat(self.bucket.arn, "/*"),
                     "Condition": {"ArnLike": {"aws:SourceArn": source_bucket_arn},
                                   "StringEquals": {"aws:SourceAccount": account_id}}},
                ],
            }),
            opts=child,
        )
        self.register_outputs({"bucket": self.bucket.bucket})


def _deny_insecure(arn: pulumi.Output[str]) -> dict[str, object]:
    return {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [arn, pulumi.Output.concat(arn, "/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


def _locked_down(name: str, bucket: aws.s3.Bucket, child: pulumi.ResourceOptions,
                 sse: aws.s3.BucketServerSideEncryptionConfigurationRuleArgs) -> None:
    """What every bucket of ours has: owner-enforced objects (no ACLs), no public access, versions, encryption."""
    aws.s3.BucketOwnershipControls(
        f"{name}-ownership", bucket=bucket.id,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"), opts=child,
    )
    aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access-block", bucket=bucket.id, block_public_acls=True, block_public_policy=True,
        ignore_public_acls=True, restrict_public_buckets=True, opts=child,
    )
    aws.s3.BucketVersioning(
        f"{name}-versioning", bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"), opts=child,
    )
    aws.s3.BucketServerSideEncryptionConfiguration(f"{name}-encryption", bucket=bucket.id, rules=[sse], opts=child)


class ArtifactStore(pulumi.ComponentResource):
    """The model artifacts bucket: versioned, KMS-encrypted, never public, TLS only, protected from deletion, its
    access logged (it holds captured prompts), incomplete uploads cleaned up."""

    def __init__(self, name: str, args: ArtifactStoreArgs, account_id: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:aws:ArtifactStore", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.bucket = aws.s3.Bucket(
            f"{name}-bucket", force_destroy=False, tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        _locked_down(name, self.bucket, child, sse=aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
            apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="aws:kms", kms_master_key_id=args.kms_key_arn),
            bucket_key_enabled=True,  # one KMS call per bucket key instead of per object: cost and throttling
        ))
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
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="abort-incomplete-uploads", status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=args.incomplete_upload_days),
                ),
            ],
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-tls-only", bucket=self.bucket.id,
            policy=pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": [_deny_insecure(self.bucket.arn)]}),
            opts=child,
        )
        logs = AccessLogBucket(f"{name}-access-logs", self.bucket.arn, account_id, args.access_log_days, args.tags,
                               opts=child)
        aws.s3.BucketLogging(f"{name}-access-logging", bucket=self.bucket.id, target_bucket=logs.bucket.id,
                             target_prefix="artifacts/", opts=child)
        self.bucket_name = self.bucket.bucket
        self.bucket_arn = self.bucket.arn
        self.register_outputs({"bucket": self.bucket_name, "arn": self.bucket_arn})
