"""The platforms target kinds stand on: where their shared foundation is declared, and its cost rules.

Pure: each platform imports its provider SDK and components only when a stack declares its foundation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from .cost_rules import HOURS_PER_MONTH, Ctx, Estimate, LineItem, Resource, flat, hourly, monthly
from .schema import EnvironmentSpec
from .targets.base import Platform

if TYPE_CHECKING:
    import pulumi



def _interface_endpoint(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
    if r.inputs.get("vpcEndpointType") != "Interface":
        return []
    zones = len(r.inputs.get("subnetIds", []))
    service = r.inputs.get("serviceName", "").split(f".{ctx.regions.get('aws', '')}.", 1)[-1]
    return [ctx.item(r, "aws", "vpc-endpoint", "interface-az-hour", "endpoint-zone-hour",
                     flat(zones * HOURS_PER_MONTH), f"interface endpoint {service} in {zones} zones",
                     "plus per-GB data processing, not estimated")]


def _artifact_bucket(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
    """What the targets keep in the bucket: staged weights, captured requests (TargetKind.stored_bytes)."""
    gb = ctx.stored_bytes("aws") / 1e9
    return [ctx.item(r, "aws", "s3", "standard", "GB-month", flat(gb),
                     f"{gb:.2f} GB: staged weights and 30 days of captured requests")]


class Aws(Platform):
    name = "aws"
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
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "aws:secretsmanager/secretVersion:SecretVersion", "aws:ecr/repository:Repository",
        "aws:ecr/lifecyclePolicy:LifecyclePolicy", "docker-build:index:Image",
    })

    def region(self, env: EnvironmentSpec) -> str | None:
        return env.aws_region

    def declare(self, env: EnvironmentSpec, needs: frozenset[str], hf_token: pulumi.Output[str] | None
                ) -> tuple[Any, dict[str, Any]]:
        from .aws.foundation import declare_foundation

        assert env.aws_region is not None  # validated: its targets require aws:region
        return declare_foundation(env.name, env.aws_region, env.network, env.all_tags, hf_token,
                                  own_image="own-image" in needs,
                                  extra_endpoints=tuple(sorted(n.removeprefix("endpoint:") for n in needs
                                                               if n.startswith("endpoint:"))))


class Gcp(Platform):
    name = "gcp"
    nat_modes = ("none", "single")
    nat_problem = "Cloud NAT is regional: one serves every zone"
    cost_rules: ClassVar[dict[str, Any]] = {
        "gcp:compute/routerNat:RouterNat": hourly("gcp", "cloud-nat", "gateway-hour", "Cloud NAT gateway",
                                                  "plus per-GB data processing, not estimated"),
        "gcp:secretmanager/secretVersion:SecretVersion": monthly("gcp", "secret-manager", "version",
                                                                 "secret version"),
    }
    free_types = frozenset({
        "gcp:projects/service:Service", "gcp:compute/network:Network", "gcp:compute/subnetwork:Subnetwork",
        "gcp:compute/router:Router", "gcp:compute/firewall:Firewall", "gcp:serviceaccount/account:Account",
        "gcp:projects/iAMMember:IAMMember", "gcp:secretmanager/secret:Secret",
        "gcp:secretmanager/secretIamBinding:SecretIamBinding", "gcp:artifactregistry/repository:Repository",
        "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember", "docker-build:index:Image",
    })

    def region(self, env: EnvironmentSpec) -> str | None:
        return env.gcp_region

    def declare(self, env: EnvironmentSpec, needs: frozenset[str], hf_token: pulumi.Output[str] | None
                ) -> tuple[Any, dict[str, Any]]:
        from .gcp.foundation import declare_foundation

        assert env.gcp_project is not None and env.gcp_region is not None  # validated: its targets require both
        return declare_foundation(env.name, env.gcp_project, env.gcp_region, env.network, env.all_tags, hf_token,
                                  own_image="own-image" in needs,
                                  extra_apis=sorted(n.removeprefix("api:") for n in needs if n.startswith("api:")),
                                  proxy_subnet="proxy-subnet" in needs)
