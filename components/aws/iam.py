from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ..catalog.iam import ACTIONS_WITHOUT_RESOURCE_LEVEL
from ..weights import Location


@dataclass(frozen=True)
class PrefixRead:
    """Read access to weights under key prefixes of one bucket: s3:GetObject on exactly those prefixes and
    s3:ListBucket only with them as `s3:prefix`, nothing else of the bucket (a team's checkpoint bucket holds
    more than the one checkpoint a target serves)."""

    name: str
    """Names its statements, `Read<name>` and `List<name>` (IAM Sids take letters and digits only)."""
    bucket_arn: pulumi.Input[str]
    prefixes: tuple[str, ...]
    """Key prefixes without a trailing '/'; '' grants the whole bucket (a source of s3://bucket)."""


def read_statements(reads: Sequence[PrefixRead]) -> list[dict]:
    """The policy statements of `reads`: objects under each prefix, and listing conditioned on the prefixes (what
    SageMaker's S3Prefix download and `aws s3 sync` list with: `prefix/`)."""
    statements: list[dict] = []
    for read in reads:
        objects = [pulumi.Output.concat(read.bucket_arn, f"/{p}/*" if p else "/*") for p in read.prefixes]
        statements.append({"Sid": f"Read{read.name}", "Effect": "Allow", "Action": "s3:GetObject",
                           "Resource": objects[0] if len(objects) == 1 else objects})
        listing: dict = {"Sid": f"List{read.name}", "Effect": "Allow", "Action": "s3:ListBucket",
                         "Resource": read.bucket_arn}
        if all(read.prefixes):
            listing["Condition"] = {"StringLike": {"s3:prefix": [v for p in read.prefixes
                                                                 for v in (f"{p}/*", f"{p}/")]}}
        statements.append(listing)
    return statements


def owned_reads(locations: Iterable[Location]) -> list[PrefixRead]:
    """One read per bucket of the team's own (`s3://bucket/prefix` sources), over the prefixes served from it,
    in bucket order (a stable policy: the same sources give the same document)."""
    by_bucket: dict[str, list[str]] = {}
    for location in locations:
        if location.scheme == "s3":
            prefixes = by_bucket.setdefault(location.bucket, [])
            if location.prefix not in prefixes:
                prefixes.append(location.prefix)
    names: set[str] = set()
    reads = []
    for bucket in sorted(by_bucket):
        # A Sid from the bucket's name (letters and digits), unique even where two names differ only by '.'/'-'.
        base = "WeightsIn" + "".join(w.capitalize() for w in re.split(r"[^a-z0-9]+", bucket) if w)
        name = base if base not in names else f"{base}{len(names)}"
        names.add(name)
        # S3 bucket ARNs name no region or account (the `aws` partition: the regions this project deploys to).
        reads.append(PrefixRead(name, f"arn:aws:s3:::{bucket}", tuple(by_bucket[bucket])))
    return reads


@dataclass(frozen=True)
class SageMakerExecutionRoleArgs:
    region: str
    account_id: str
    bucket_arn: pulumi.Input[str]
    reads: tuple[PrefixRead, ...]
    """The weights it reads from S3 (the model's and its adapters': in the stack's bucket, in the team's own);
    empty when the container downloads from the Hub."""
    write_prefix: str | None
    """Bucket prefix data capture writes to (None when capture is off)."""
    ecr_repository_arn: pulumi.Input[str]
    log_group_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    secret_arn: pulumi.Input[str] | None
    subnet_ids: list[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    tags: dict[str, str]


class SageMakerExecutionRole(pulumi.ComponentResource):
    """The role one SageMaker endpoint runs as, granted the exact bucket prefixes, image repository, log group,
    secret and key it uses, and nothing else."""

    def __init__(self, name: str, args: SageMakerExecutionRoleArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:aws:SageMakerExecutionRole", name, None, opts)
        ec2_arn = f"arn:aws:ec2:{args.region}:{args.account_id}"
        subnet_arns = [pulumi.Output.concat(f"{ec2_arn}:subnet/", s) for s in args.subnet_ids]
        statements: list[dict] = [
            {"Sid": "PullServingImage", "Effect": "Allow",
             "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
             "Resource": args.ecr_repository_arn},
            {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
            {"Sid": "WriteEndpointLogs", "Effect": "Allow",
             "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
             "Resource": [args.log_group_arn, pulumi.Output.concat(args.log_group_arn, ":*")]},
            {"Sid": "PublishMetrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*",
             "Condition": {"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "AWS/SageMaker"]}}},
            {"Sid": "UseEnvironmentKey", "Effect": "Allow",
             "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"], "Resource": args.kms_key_arn},
            # SageMaker attaches the model's network interfaces in our subnets with this role.
            {"Sid": "AttachToVpc", "Effect": "Allow", "Action": "ec2:CreateNetworkInterface",
             "Resource": [*subnet_arns, pulumi.Output.concat(f"{ec2_arn}:security-group/", args.security_group_id),
                          f"{ec2_arn}:network-interface/*"]},
            {"Sid": "ManageOwnInterfaces", "Effect": "Allow",
             "Action": ["ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface",
                        "ec2:DeleteNetworkInterfacePermission"],
             "Resource": f"{ec2_arn}:network-interface/*"},
            {"Sid": "DescribeNetwork", "Effect": "Allow",
             "Action": sorted(a for a in ACTIONS_WITHOUT_RESOURCE_LEVEL if a.startswith("ec2:")), "Resource": "*"},
            {"Sid": "LocateBucket", "Effect": "Allow", "Action": "s3:GetBucketLocation", "Resource": args.bucket_arn},
        ]
        statements += read_statements(args.reads)
        if args.write_prefix:
            statements.append({"Sid": "WriteDataCapture", "Effect": "Allow", "Action": "s3:PutObject",
                               "Resource": pulumi.Output.concat(args.bucket_arn, f"/{args.write_prefix}/*")})
        if args.secret_arn is not None:
            statements.append({"Sid": "ReadHfToken", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                               "Resource": args.secret_arn})

        self.role = aws.iam.Role(
            f"{name}-role",
            description=f"SageMaker execution role for {name}",
            assume_role_policy=pulumi.Output.json_dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
                               "Action": "sts:AssumeRole",
                               "Condition": {"StringEquals": {"aws:SourceAccount": args.account_id}}}],
            }),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.policy = aws.iam.RolePolicy(
            f"{name}-policy", role=self.role.id,
            policy=pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements}),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.arn = self.role.arn
        self.register_outputs({"arn": self.arn})
