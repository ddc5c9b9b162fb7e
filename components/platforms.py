"""The platforms target kinds stand on: where their shared foundation is declared, and its cost rules.

Pure: each platform imports its provider SDK and components only when a stack declares its foundation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from .catalog import gcp_machines
from .catalog.models import MODELS
from .cost_rules import (
    HOURS_PER_MONTH,
    Ctx,
    Estimate,
    LineItem,
    Lookup,
    Plan,
    Resource,
    Serving,
    flat,
    hourly,
    monthly,
    plan_replicas,
    replica_hours,
)
from .schema import MISSING, PROJECT, EnvironmentSpec, Problem, StackSecrets
from .sizing import Hardware
from .targets.base import Platform

if TYPE_CHECKING:
    from .sizing_options import Host



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
    from .aws.tags import ACCESS_LOGS_PURPOSE

    if (r.inputs.get("tags") or {}).get(ACCESS_LOGS_PURPOSE[0]) == ACCESS_LOGS_PURPOSE[1]:
        return []
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
        "aws:s3/bucketPolicy:BucketPolicy", "aws:s3/bucketLogging:BucketLogging",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "aws:secretsmanager/secretVersion:SecretVersion", "aws:ecr/repository:Repository",
        "aws:ecr/lifecyclePolicy:LifecyclePolicy", "docker-build:index:Image",
    })

    def region(self, env: EnvironmentSpec) -> str | None:
        return env.aws_region

    def declare(self, env: EnvironmentSpec, needs: frozenset[str], secrets: StackSecrets
                ) -> tuple[Any, dict[str, Any]]:
        from .aws.foundation import declare_foundation

        assert env.aws_region is not None  # validated: its targets require aws:region
        return declare_foundation(env.name, env.aws_region, env.network, env.all_tags,
                                  secrets.hf_token, log_retention_days=env.retention_days,
                                  own_image="own-image" in needs,
                                  extra_endpoints=tuple(sorted(n.removeprefix("endpoint:") for n in needs
                                                               if n.startswith("endpoint:"))))


def gcp_gpu_machine_items(r: Resource, ctx: Ctx, est: Estimate, *, model_id: str, machine: str,
                          accelerator: str | None, count: int, low: int, high: int, services: tuple[str, str],
                          unit: str, description: str, per: str, quantization: str = "none",
                          kv_bytes: float = 2.0) -> list[LineItem]:
    """Hours of a Google Cloud GPU machine (`services`: the machine's and the GPUs' price rows) at the replicas
    the usage needs between `low` and `high`, its GPUs apart; records the replica as a serving one."""
    plan = Plan(low, low, None)
    if accelerator in gcp_machines.ACCELERATORS:
        host = gcp_machines.host(machine, accelerator, count)
        plan = plan_replicas(MODELS.get(model_id), Hardware.of_gpu(host.gpu, count, host.total_gpu_memory_gib), low,
                             high, ctx.usage, quantization, kv_bytes=kv_bytes)
    hours = replica_hours((low, plan.expected, high), ctx.usage)
    items = [ctx.item(r, "gcp", services[0], machine, unit, hours, description)]
    if accelerator:
        items.append(ctx.item(r, "gcp", services[1], accelerator, "gpu-hour",
                              (hours[0] * count, hours[1] * count, hours[2] * count),
                              f"{count} x {accelerator} per {per}"))
    node_usd = items[0].unit_usd
    gpu_usd = items[1].unit_usd if accelerator else 0.0
    replica_usd = None if node_usd is None or gpu_usd is None else node_usd + gpu_usd * count
    est.serving.append(Serving(r.name, model_id or "?", (low, plan.expected, high), plan, replica_usd))
    return items


def gcp_gpu_host(kind: str, name: str, machine: str, accelerator: str, count: int, region: str, lookup: Lookup,
                 services: tuple[str, str]) -> Host:
    """A Google Cloud GPU machine as a `selfhost size` host, priced from `services` (machine and GPU rows)."""
    from .sizing_options import Host

    h = gcp_machines.host(machine, accelerator, count)
    from .catalog.pricing import Price, least_confident

    node = lookup("gcp", services[0], region, machine)
    gpu = lookup("gcp", services[1], region, accelerator)
    price = Price(node.usd + gpu.usd * count, "hour", f"{node.source}; {gpu.source}", node.as_of,
                  least_confident(node.confidence, gpu.confidence)) if node and gpu else None
    return Host("gcp", kind, name, region, h.gpu, count, h.total_gpu_memory_gib, price)


class Gcp(Platform):
    name = "gcp"
    nat_modes = ("none", "single")
    nat_problem = "Cloud NAT is regional: one serves every zone"
    cost_rules: ClassVar[dict[str, Any]] = {
        "gcp:compute/routerNat:RouterNat": hourly("gcp", "cloud-nat", "gateway-hour", "Cloud NAT gateway",
                                                  "plus per-GB data processing, not estimated"),
        "gcp:secretmanager/secretVersion:SecretVersion": monthly("gcp", "secret-manager", "version",
                                                                 "secret version"),
        "gcp:kms/cryptoKey:CryptoKey": monthly("gcp", "kms", "key-version", "Cloud KMS key (one active version)",
                                               "plus $0.06 a month per rotated version kept, and per-operation "
                                               "charges"),
    }
    free_types = frozenset({
        "gcp:projects/service:Service", "gcp:compute/network:Network", "gcp:compute/subnetwork:Subnetwork",
        "gcp:compute/router:Router", "gcp:compute/firewall:Firewall", "gcp:serviceaccount/account:Account",
        "gcp:projects/iAMMember:IAMMember", "gcp:secretmanager/secret:Secret",
        "gcp:secretmanager/secretIamBinding:SecretIamBinding", "gcp:artifactregistry/repository:Repository",
        "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember", "docker-build:index:Image",
        "gcp:kms/keyRing:KeyRing", "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember",
        "gcp:projects/serviceIdentity:ServiceIdentity",
    })

    def region(self, env: EnvironmentSpec) -> str | None:
        return env.gcp_region

    def declare(self, env: EnvironmentSpec, needs: frozenset[str], secrets: StackSecrets
                ) -> tuple[Any, dict[str, Any]]:
        from .gcp.foundation import declare_foundation

        assert env.gcp_project is not None and env.gcp_region is not None  # validated: its targets require both
        return declare_foundation(env.name, env.gcp_project, env.gcp_region, env.network, env.all_tags,
                                  secrets.hf_token, own_image="own-image" in needs,
                                  extra_apis=sorted(n.removeprefix("api:") for n in needs if n.startswith("api:")),
                                  proxy_subnet="proxy-subnet" in needs)


class HuggingFace(Platform):
    """Hugging Face's managed endpoints: nothing of ours to declare beside them but the namespace they live in
    (the token is the stack's `hfToken` secret)."""

    name = "huggingface"

    def region(self, env: EnvironmentSpec) -> str | None:
        return None  # each endpoint names its own vendor and region

    def validate(self, env: EnvironmentSpec) -> list[Problem]:
        if env.huggingface is None:
            return [Problem(f"{PROJECT}:huggingface", MISSING, "required for hf-endpoint targets",
                            "{namespace: <the user or organization the endpoints are billed to>}")]
        return []

    def declare(self, env: EnvironmentSpec, needs: frozenset[str], secrets: StackSecrets
                ) -> tuple[Any, dict[str, Any]]:
        from .hf.serving import HfFoundation

        assert env.huggingface is not None  # validated: its targets require it
        return HfFoundation(env.huggingface.namespace), {"huggingfaceNamespace": env.huggingface.namespace}


class Cluster(Platform):
    """A cluster of the team's own: reached through an explicit provider (a kubeconfig kept as a secret, or a
    named context), never the machine's ambient default; with the NVIDIA GPU Operator by config."""

    name = "kubernetes"
    nat_modes = ("none", "single", "per-az")  # the cluster's egress is its own; `network` does not apply
    free_types = frozenset({"kubernetes:helm.sh/v3:Release", "kubernetes:core/v1:Namespace"})

    def region(self, env: EnvironmentSpec) -> str | None:
        return env.kubernetes.name if env.kubernetes else None

    def validate(self, env: EnvironmentSpec) -> list[Problem]:
        from .catalog.kubernetes import SUPPORTED_VERSIONS

        cluster = env.kubernetes
        if cluster is None:
            return [Problem(f"{PROJECT}:kubernetes", MISSING, "required for kubernetes targets and the router",
                            "{name, version, cost: {gpuHourUsd, nodeHourUsd, asOf}, and context or kubeconfig}")]
        problems = []
        if cluster.version not in SUPPORTED_VERSIONS:
            problems.append(Problem(f"{PROJECT}:kubernetes.version", cluster.version,
                                    "no API schemas to check the manifests against", ", ".join(SUPPORTED_VERSIONS)))
        if env.kubeconfig == (cluster.context is not None):
            problems.append(Problem(f"{PROJECT}:kubernetes.context", cluster.context,
                                    "set exactly one way to reach the cluster" if env.kubeconfig else
                                    "no way to reach the cluster",
                                    "a kubeconfig context name, or `pulumi config set --secret kubeconfig "
                                    "< kubeconfig.yaml` (not both)"))
        return problems

    def cost_inputs(self, env: EnvironmentSpec) -> dict[str, Any]:
        return {"ownerRates": env.kubernetes.cost.model_dump(by_alias=True)} if env.kubernetes else {}

    def declare(self, env: EnvironmentSpec, needs: frozenset[str], secrets: StackSecrets
                ) -> tuple[Any, dict[str, Any]]:
        from .k8s.cluster import declare_cluster

        assert env.kubernetes is not None  # validated: its targets require it
        return declare_cluster(env.name, env.kubernetes, secrets.kubeconfig, gpu="gpu" in needs, tags=env.all_tags)
