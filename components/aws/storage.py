from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .tags import ACCESS_LOGS_PURPOSE

# Where things live in the bucket. The SageMaker role is granted exactly these prefixes.
MODELS_PREFIX = "models"
DATA_CAPTURE_PREFIX = "data-capture"
# Where load balancers write their access logs in the access-log bucket (`alb/<pool>/AWSLogs/<account>/...`).
ALB_LOGS_PREFIX = "alb"
# Elastic Load Balancing's account per region that opened before August 2022: the principal of access log
# delivery there (ELB user guide, "Enable access logs for your Application Load Balancer", step 2); regions
# opened since take the log delivery service principal.
ELB_ACCOUNTS = {
    "us-east-1": "127311923021", "us-east-2": "033677994240", "us-west-1": "027434742980",
    "us-west-2": "797873946194", "eu-west-1": "156460612806", "eu-central-1": "054676820928",
    "eu-west-2": "652711504416", "eu-west-3": "009996457667", "eu-north-1": "897822967062",
    "ap-northeast-1": "582318560864", "ap-southeast-1": "114774131450", "ap-southeast-2": "783225319266",
    "ap-south-1": "718504428378", "ca-central-1": "985666609251", "sa-east-1": "507241528517",
}


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
    lb_logs_region: str | None = None
    """The region of load balancers whose access logs the access-log bucket admits (ALB_LOGS_PREFIX); None: none."""




class AccessLogBucket(pulumi.ComponentResource):
    """Where S3 writes the artifacts bucket's server access logs: never public, TLS only, written only by the
    S3 logging service for that one bucket, expiring after the retention period. Encrypted with S3-managed keys:
    server access logging cannot deliver to a bucket whose default encryption is a KMS key, and ALB access
    logging only to SSE-S3 (ELB user guide: "the only server-side encryption option supported is SSE-S3").
    With `lb_logs_region`, ELB log delivery may write under ALB_LOGS_PREFIX too, for this account only."""

    def __init__(self, name: str, source_bucket_arn: pulumi.Input[str], account_id: pulumi.Input[str], days: int,
                 tags: dict[str, str], opts: pulumi.ResourceOptions | None = None, lb_logs_region: str | None = None):
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
                    *([_elb_log_delivery(self.bucket.arn, account_id, lb_logs_region)] if lb_logs_region else []),
                ],
            }),
            opts=child,
        )
        self.register_outputs({"bucket": self.bucket.bucket})


def _elb_log_delivery(arn: pulumi.Output[str], account_id: pulumi.Input[str], region: str) -> dict[str, object]:
    """Load balancer access log delivery, under ALB_LOGS_PREFIX, for this account's load balancers only."""
    elb = ELB_ACCOUNTS.get(region)
    principal = ({"AWS": f"arn:aws:iam::{elb}:root"} if elb
                 else {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"})
    return {"Sid": "AlbAccessLogs", "Effect": "Allow", "Principal": principal, "Action": "s3:PutObject",
            "Resource": pulumi.Output.concat(arn, f"/{ALB_LOGS_PREFIX}/*/AWSLogs/", account_id, "/*")}


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
                               opts=child, lb_logs_region=args.lb_logs_region)
        aws.s3.BucketLogging(f"{name}-access-logging", bucket=self.bucket.id, target_bucket=logs.bucket.id,
                             target_prefix="artifacts/", opts=child)
        self.bucket_name = self.bucket.bucket
        self.bucket_arn = self.bucket.arn
        self.access_log_bucket = logs.bucket.bucket
        self.register_outputs({"bucket": self.bucket_name, "arn": self.bucket_arn})
