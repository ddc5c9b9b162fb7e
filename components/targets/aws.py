"""The `aws` platform: one region of an AWS account. Its foundation (components/aws/foundation.py) is the stack's
KMS key, VPC, artifact bucket, token secret and image repository, declared once, on demand, for every target on
it; its config is the AWS provider's own `aws:region`.

Pure: the provider SDK, the components, the mocks and the online readers are imported only when used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import Field

from ..catalog.pricing import DATA_DIR as PRICE_DATA
from ..cost_rules import HOURS_PER_MONTH, Ctx, Estimate, LineItem, Resource, flat, hourly, monthly
from ..schema import MISSING, EnvironmentSpec, Problem, StackSecrets, Strict
from .base import Platform, provider_tag_field


def _interface_endpoint(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
    if r.inputs.get("vpcEndpointType") != "Interface":
        return []
    zones = len(r.inputs.get("subnetIds", []))
    service = r.inputs.get("serviceName", "").split(f".{ctx.regions.get('aws', '')}.", 1)[-1]
    return [ctx.item(r, "aws", "vpc-endpoint", "interface-az-hour", "endpoint-zone-hour",
                     flat(zones * HOURS_PER_MONTH), f"interface endpoint {service} in {zones} zones",
                     "plus per-GB data processing, not estimated")]


def _artifact_bucket(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
    """What the targets keep in the bucket: staged weights, captured requests (TargetKind.stored_bytes). The
    access-log bucket holds a few MB of logs a month: not estimated (cost.NOT_ESTIMATED)."""
    from ..aws.tags import ACCESS_LOGS_PURPOSE

    if (r.inputs.get("tags") or {}).get(ACCESS_LOGS_PURPOSE[0]) == ACCESS_LOGS_PURPOSE[1]:
        return []
    gb = ctx.stored_bytes("aws") / 1e9
    return [ctx.item(r, "aws", "s3", "standard", "GB-month", flat(gb),
                     f"{gb:.2f} GB: staged weights and 30 days of captured requests")]


class AwsSettings(Strict):
    region: str | None = Field(default=None, alias="aws:region")
    """The region every AWS resource of the stack lives in (the AWS provider's own key)."""


class Aws(Platform):
    name = "aws"
    title = "AWS"
    settings = AwsSettings
    packages = ("aws",)
    default_region = "us-east-1"
    regions = ("us-east-1", "us-west-2", "eu-west-1")
    online = "components.aws.online"
    price_file = PRICE_DATA / "aws.csv"
    login = "an IAM role assumed through GitHub's OIDC provider (repository variables AWS_ROLE_ARN, AWS_REGION)"
    quota_services = ("sagemaker", "ec2")
    price_sources = ("aws_offers", "aws_spot")
    cost_rules: ClassVar[dict[str, Any]] = {
        "aws:ec2/natGateway:NatGateway": hourly("aws", "nat-gateway", "hour", "NAT gateway",
                                                "plus per-GB data processing (Hub downloads), not estimated"),
        "aws:ec2/eip:Eip": hourly("aws", "public-ipv4", "hour", "public IPv4 address"),
        "aws:ec2/vpcEndpoint:VpcEndpoint": _interface_endpoint,
        "aws:kms/key:Key": monthly("aws", "kms", "key", "customer-managed KMS key", "plus per-request charges"),
        "aws:secretsmanager/secret:Secret": monthly("aws", "secretsmanager", "secret", "secret"),
        "aws:s3/bucket:Bucket": _artifact_bucket,
    }
    free_types = frozenset({
        "aws:kms/alias:Alias", "aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:ec2/routeTable:RouteTable",
        "aws:ec2/routeTableAssociation:RouteTableAssociation", "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
        "aws:ec2/securityGroup:SecurityGroup", "aws:ec2/internetGateway:InternetGateway", "aws:ec2/flowLog:FlowLog",
        "aws:cloudwatch/logGroup:LogGroup", "aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy",
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "aws:s3/bucketVersioning:BucketVersioning",
        "aws:s3/bucketPolicy:BucketPolicy", "aws:s3/bucketLogging:BucketLogging",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "aws:secretsmanager/secretVersion:SecretVersion", "aws:ecr/repository:Repository",
        "aws:ecr/lifecyclePolicy:LifecyclePolicy",
    })

    def of(self, env: EnvironmentSpec) -> AwsSettings:
        return env.settings(self.name)

    def region(self, env: EnvironmentSpec) -> str | None:
        return self.of(env).region

    def validate(self, env: EnvironmentSpec) -> list[Problem]:
        if self.of(env).region is None:
            return [Problem("aws:region", MISSING, "required for AWS targets",
                            "an AWS region, e.g. us-east-1")]
        return []

    def tag_problems(self, tags: Mapping[str, str]) -> list[tuple[str, str]]:
        # AWS tag limits (Tagging AWS resources, "Tag naming limits and requirements"): `aws:` is reserved.
        return [(key, f"tag {key!r}: keys are 1-128 characters, not starting with 'aws:'; values at most 256")
                for key, value in tags.items()
                if key.lower().startswith("aws:") or not 1 <= len(key) <= 128 or len(value) > 256]

    def tag_field(self, token: str) -> tuple[str, ...] | None:
        return provider_tag_field(token, "pulumi_aws", (("tags", "tags"),))

    def mocks(self) -> Mapping[str, Any]:
        from ..aws.mocks import RESOURCES

        return RESOURCES

    def mock_call(self, token: str, args: Mapping[str, Any], ctx: Any) -> dict[str, Any] | None:
        from ..aws.mocks import call

        return call(token, args, ctx)

    def mock_location(self, config: Mapping[str, str]) -> tuple[str, str]:
        return config.get("aws:region", self.default_region or ""), ""

    def terraform(self) -> tuple[Mapping[str, Any], Mapping[str, str], Mapping[str, str]]:
        from ..aws.terraform import NOT_MAPPED, PROVIDERS, TYPES

        return TYPES, PROVIDERS, NOT_MAPPED

    def replacement_rules(self) -> tuple[Mapping[str, Any], tuple[tuple[str, Any], ...]]:
        from ..aws.replacement import PREFIXES, RULES

        return RULES, PREFIXES

    def replacement_note(self, token: str) -> str | None:
        from ..aws.replacement import NOTE

        return NOTE if token.split(":", 1)[0] in self.packages else None

    def summary_fields(self) -> Mapping[str, tuple[str, ...]]:
        from ..aws.summary import FIELDS

        return FIELDS

    def policy_rules(self) -> Sequence[Any]:
        from ..aws.policies import RULES

        return RULES

    def scanner_notes(self) -> Mapping[str, str]:
        from ..aws.policies import SCANNER_NOTES

        return SCANNER_NOTES

    def boot_scripts(self) -> Mapping[str, Any]:
        from ..aws.policies import BOOT_SCRIPTS

        return BOOT_SCRIPTS

    def container_environments(self) -> Mapping[str, Any]:
        from ..aws.policies import CONTAINER_ENVIRONMENTS

        return CONTAINER_ENVIRONMENTS

    def declare(self, env: EnvironmentSpec, needs: frozenset[str], secrets: StackSecrets
                ) -> tuple[Any, dict[str, Any]]:
        from ..aws.foundation import declare_foundation

        region = self.of(env).region
        assert region is not None  # validated: its targets require aws:region
        return declare_foundation(env.name, region, env.network, env.all_tags,
                                  secrets.hf_token, log_retention_days=env.retention_days,
                                  own_image="own-image" in needs, lb_access_logs="lb-access-logs" in needs,
                                  extra_endpoints=tuple(sorted(n.removeprefix("endpoint:") for n in needs
                                                               if n.startswith("endpoint:"))))




AWS = Aws()
