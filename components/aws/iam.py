from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ..catalog.iam import ACTIONS_WITHOUT_RESOURCE_LEVEL


@dataclass(frozen=True)
class SageMakerExecutionRoleArgs:
    region: str
    account_id: str
    bucket_arn: pulumi.Input[str]
    read_prefix: str | None
    """Bucket prefix the model reads weights from (None when it downloads from the Hub)."""
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
        if args.read_prefix:
            statements += [
                {"Sid": "ReadModelWeights", "Effect": "Allow", "Action": "s3:GetObject",
                 "Resource": pulumi.Output.concat(args.bucket_arn, f"/{args.read_prefix}/*")},
                {"Sid": "ListModelWeights", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": args.bucket_arn,
                 "Condition": {"StringLike": {"s3:prefix": [f"{args.read_prefix}/*", f"{args.read_prefix}/"]}}},
            ]
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
