"""The `aws` platform: one region of an AWS account. Its foundation (components/aws/foundation.py) is the stack's
KMS key, VPC, artifact bucket, token secret and image repository, declared once, on demand, for every target on
it; its config is the AWS provider's own `aws:region`.

Pure: the provider SDK, the components, the mocks and the online readers are imported only when used.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import Field

from ..catalog.images import is_ecr
from ..catalog.pricing import DATA_DIR as PRICE_DATA
from ..cost_rules import HOURS_PER_MONTH, Ctx, Estimate, LineItem, Resource, flat, hourly, monthly, replica_hours
from ..quotas import QuotaCtx, QuotaItem
from ..schema import MISSING, PROJECT, EnvironmentSpec, Problem, StackSecrets, Strict
from .base import Platform, RouterEndpoint, RouterRuntime, TargetKind, provider_tag_field


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




# What one router task serves, for planning its replicas: LiteLLM's published high-throughput run held 3,000
# requests/s on 33 pods of 4 vCPUs (4 workers each), about 23 requests/s a vCPU, with 50K-100K-token prompts, half
# of them streamed, and keys, budgets and spend tracking on (docs.litellm.ai/docs/benchmarks, "High-throughput
# performance test results", read 2026-12-07). Rounded down to 20: our tasks run one worker (proxy_cli.py
# --num_workers, default 1), so a task serves at most one vCPU's worth, whatever its size.
ROUTER_REQUESTS_PER_S_PER_VCPU = 20.0


def _router_service(r: Resource, ctx: Ctx) -> tuple[float, int, tuple[int, int, int]]:
    """A router service's task size (vCPUs, MiB) and its tasks at min / expected / max: the minimum, or what the
    busy hours' requests need of tasks of one worker each, up to the maximum."""
    task = ctx.sibling(r, "aws:ecs/taskDefinition:TaskDefinition")
    target = ctx.sibling(r, "aws:appautoscaling/target:Target")
    cpu = int((task.inputs if task else {}).get("cpu") or 0) / 1024
    memory = int((task.inputs if task else {}).get("memory") or 0)
    low = int((target.inputs if target else r.inputs).get("minCapacity", r.inputs.get("desiredCount", 1)))
    high = int((target.inputs if target else {}).get("maxCapacity", low))
    per_task = ROUTER_REQUESTS_PER_S_PER_VCPU * min(cpu, 1.0)
    need = math.ceil(ctx.usage.busy_requests_per_s / per_task) if per_task and ctx.usage.requests_per_day else 0
    return cpu, memory, (low, min(max(need, low), high), high)


def _fargate(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
    """vCPU-hours and GB-hours of the service's Fargate tasks (Linux/x86, on demand) at the tasks the usage needs
    between its autoscaling bounds (Fargate bills the task size, per second, whatever the task uses)."""
    if r.inputs.get("launchType") != "FARGATE":
        return []
    cpu, memory_mib, tasks = _router_service(r, ctx)
    hours = replica_hours(tasks, ctx.usage)
    gb = memory_mib / 1024
    vcpu_hours = (hours[0] * cpu, hours[1] * cpu, hours[2] * cpu)
    gb_hours = (hours[0] * gb, hours[1] * gb, hours[2] * gb)
    return [ctx.item(r, "aws", "fargate", "linux-x86-vcpu-hour", "vCPU-hour", vcpu_hours,
                     f"{cpu:g} vCPU a task, {tasks[0]}..{tasks[2]} tasks (expected {tasks[1]})",
                     "plus the cluster's Container Insights metrics (CloudWatch custom metrics), not estimated"),
            ctx.item(r, "aws", "fargate", "linux-x86-gb-hour", "GB-hour", gb_hours,
                     f"{gb:g} GB a task", "plus 20 GB of ephemeral storage a task, included")]


def _fargate_quota(r: Resource, ctx: QuotaCtx) -> list[QuotaItem]:
    """Fargate's On-Demand vCPU quota, counted in vCPUs of running tasks: the service's tasks at its bounds, and
    during a deployment, which starts a new set beside the old (maximumPercent, 200 by default)."""
    if r.inputs.get("launchType") != "FARGATE":
        return []
    task = ctx.sibling(r, "aws:ecs/taskDefinition:TaskDefinition")
    target = ctx.sibling(r, "aws:appautoscaling/target:Target")
    cpu = int((task.inputs if task else {}).get("cpu") or 0) / 1024
    low = int((target.inputs if target else r.inputs).get("minCapacity", r.inputs.get("desiredCount", 1)))
    high = int((target.inputs if target else {}).get("maxCapacity", low))
    surge = int(r.inputs.get("deploymentMaximumPercent") or 200) / 100
    return [ctx.need("fargate-vcpus:on-demand", r, low * cpu, high * cpu, math.ceil(high * surge) * cpu)]


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
    quota_services = ("sagemaker", "ec2", "fargate")
    price_sources = ("aws_offers", "aws_spot")
    cost_rules: ClassVar[dict[str, Any]] = {
        "aws:ec2/natGateway:NatGateway": hourly("aws", "nat-gateway", "hour", "NAT gateway",
                                                "plus per-GB data processing (Hub downloads), not estimated"),
        "aws:ec2/eip:Eip": hourly("aws", "public-ipv4", "hour", "public IPv4 address"),
        "aws:ec2/vpcEndpoint:VpcEndpoint": _interface_endpoint,
        "aws:kms/key:Key": monthly("aws", "kms", "key", "customer-managed KMS key", "plus per-request charges"),
        "aws:secretsmanager/secret:Secret": monthly("aws", "secretsmanager", "secret", "secret"),
        "aws:s3/bucket:Bucket": _artifact_bucket,
        "aws:ecs/service:Service": _fargate,
    }
    quota_rules: ClassVar[dict[str, Any]] = {"aws:ecs/service:Service": _fargate_quota}
    """Resource type -> what it needs of the cloud's quotas, for the foundation's and the router's resources (the
    kinds declare their own)."""
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
        # ECS bills nothing for a cluster or a task definition; Fargate bills the service's tasks (above).
        "aws:ecs/cluster:Cluster", "aws:ecs/taskDefinition:TaskDefinition",
    })
    # The router's load balancer access logs go to the access-log bucket, whose policy then admits ELB log delivery
    # (as an aws-pool's do).
    router_needs = frozenset({"lb-access-logs"})

    def of(self, env: EnvironmentSpec) -> AwsSettings:
        return env.settings(self.name)

    def region(self, env: EnvironmentSpec) -> str | None:
        return self.of(env).region

    def validate(self, env: EnvironmentSpec) -> list[Problem]:
        region = self.of(env).region
        if region is None:
            return [Problem("aws:region", MISSING, "required for AWS targets",
                            "an AWS region, e.g. us-east-1")]
        return self._router_problems(env, region) if env.router_platform == self.name else []

    def _router_problems(self, env: EnvironmentSpec, region: str) -> list[Problem]:
        """What a router on Fargate needs of the rest of the config: a way to its image (a public registry is
        reached through the NAT; the stack's interface endpoints reach only ECR), and an ACM certificate of the
        stack's region, when one is given."""
        router = env.router
        problems: list[Problem] = []
        image = getattr(router, "image", None) or ""
        if env.network.nat == "none" and not is_ecr(image):
            problems.append(Problem(f"{PROJECT}:network.nat", "none", (
                f"the router's image ({image or 'LiteLLM on ghcr.io'}) is pulled from a public registry, which a "
                "network without NAT does not reach (its interface endpoints reach only AWS services)"),
                "single or per-az; or router.image mirrored into this account's ECR in the stack's region"))
        certificate = getattr(router, "certificate", None)
        if certificate is not None and not re.fullmatch(
                rf"arn:aws[\w-]*:acm:{re.escape(region)}:\d{{12}}:certificate/[\w-]+", certificate):
            problems.append(Problem(f"{PROJECT}:router.certificate", certificate,
                                    "not an ACM certificate of the stack's region (a load balancer takes only those)",
                                    f"arn:aws:acm:{region}:<account>:certificate/<id>"))
        return problems

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

    def router_reaches(self, kind: TargetKind, target: Any) -> str | None:
        """A router on Fargate in the stack's VPC calls SageMaker endpoints of the stack (SigV4, with its task
        role; through the runtime's interface endpoint) and Hugging Face endpoints of type authenticated (a token,
        through the NAT), and the stack's pools (their keys, their load balancers in the same VPC; their own CA's
        certificate joins the router's CA bundle). Not Google Cloud targets: their
        internal load balancers answer only inside the stack's Google VPC, and Vertex takes Google OAuth tokens this
        router has no identity for; not a cluster's targets: their Services answer inside the cluster (and an
        Ingress would need the cluster's own router)."""
        auth = kind.auth(target)
        if kind.platform == "aws" and auth in ("aws-sigv4", "api-key"):
            return None
        if kind.platform == "huggingface" and auth == "hf-token":
            return None
        if kind.platform == "huggingface":
            return (f"a Hugging Face endpoint authenticating with {auth}: the router reaches only endpoints of type "
                    "authenticated (a Hugging Face token), through the NAT")
        if kind.platform == "aws":
            return f"an AWS target authenticating with {auth}, which the router cannot speak"
        return (f"a {kind.platform} target answers only inside its own network or with credentials of its own "
                "cloud, which a router on Fargate in the stack's AWS VPC has not")

    def declare_router(self, env: EnvironmentSpec, foundation: Any, runtime: RouterRuntime) -> RouterEndpoint:
        from ..aws.router import Router, RouterArgs

        router = Router(runtime.name, RouterArgs(foundation=foundation, runtime=runtime,
                                                 production=env.tier == "production"))
        return router.endpoint

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
