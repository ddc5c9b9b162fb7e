"""The AWS provider under the offline preview (components/mocking.py): what it computes for each resource type
(`RESOURCES`) and what its functions return (`call`), in AWS's own formats, for the documentation account.

Read through `Platform.mocks()` / `Platform.mock_call()` of the `aws` platform (components/targets/aws.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from ..mocking import Ctx, MockCallCtx, MockFn

# AWS's documentation account id: never a real customer's.
ACCOUNT_ID = "123456789012"

# Availability zones by region (AWS "Regions and Zones", read 2026-11-29), with their zone ids.
AWS_ZONES: dict[str, list[str]] = {
    "us-east-1": ["a", "b", "c", "d", "e", "f"],
    "us-east-2": ["a", "b", "c"],
    "us-west-2": ["a", "b", "c", "d"],
    "eu-west-1": ["a", "b", "c"],
    "eu-central-1": ["a", "b", "c"],
}
# The S3 gateway endpoint's managed prefix list per region (`aws ec2 describe-prefix-lists`).
S3_PREFIX_LISTS = {"us-east-1": "pl-63a5400a", "us-west-2": "pl-68a54001", "eu-west-1": "pl-6da54004",
                   "us-east-2": "pl-7ba54012", "eu-central-1": "pl-6ea54007"}


def _arn(c: Ctx, service: str, resource: str, region: bool = True) -> str:
    return f"arn:aws:{service}:{c.region if region else ''}:{ACCOUNT_ID}:{resource}"


def _ec2(prefix: str, kind: str, **extra: Callable[[Ctx, str], Any]) -> MockFn:
    def make(c: Ctx) -> tuple[str, dict]:
        rid = f"{prefix}-{c.hex(17)}"
        out = {"arn": _arn(c, "ec2", f"{kind}/{rid}"), "ownerId": ACCOUNT_ID}
        out.update({k: f(c, rid) for k, f in extra.items()})
        return rid, out
    return make


def _named(key: str, arn: Callable[[Ctx, str], str] | None = None, lower: bool = False, arn_key: str = "arn"):
    def make(c: Ctx) -> tuple[str, dict]:
        name = c.autoname(key, lower)
        out: dict[str, Any] = {key: name}
        if arn:
            out[arn_key] = arn(c, name)
        return name, out
    return make


def _by_input(key: str) -> MockFn:
    return lambda c: (str(c.inputs.get(key, c.name)), {})


def _kms_key(c: Ctx) -> tuple[str, dict]:
    kid = c.uuid()
    return kid, {"keyId": kid, "arn": _arn(c, "kms", f"key/{kid}")}


def _bucket(c: Ctx) -> tuple[str, dict]:
    name = c.autoname("bucket", lower=True)
    return name, {"bucket": name, "arn": f"arn:aws:s3:::{name}", "region": c.region,
                  "bucketDomainName": f"{name}.s3.amazonaws.com",
                  "bucketRegionalDomainName": f"{name}.s3.{c.region}.amazonaws.com"}


def _secret(c: Ctx) -> tuple[str, dict]:
    name = c.autoname("name")
    arn = _arn(c, "secretsmanager", f"secret:{name}-{c.hex(6, 'suffix')}")
    return arn, {"name": name, "arn": arn}


def _secret_version(c: Ctx) -> tuple[str, dict]:
    version = c.uuid()
    return f"{c.inputs['secretId']}|{version}", {"versionId": version, "arn": c.inputs["secretId"]}


def _vpc_endpoint(c: Ctx) -> tuple[str, dict]:
    rid = f"vpce-{c.hex(17)}"
    out: dict[str, Any] = {"arn": _arn(c, "ec2", f"vpc-endpoint/{rid}"), "ownerId": ACCOUNT_ID, "state": "available"}
    service = c.inputs.get("serviceName", "")
    if c.inputs.get("vpcEndpointType") == "Gateway":
        out["prefixListId"] = S3_PREFIX_LISTS.get(c.region, f"pl-{c.hex(8, 'pl')}")
    else:
        short = service.removeprefix(f"com.amazonaws.{c.region}.")
        out["dnsEntries"] = [{"dnsName": f"{rid}-{c.hex(8, 'dns')}.{short}.{c.region}.vpce.amazonaws.com",
                              "hostedZoneId": "Z7HUB22UULQXV"}]
        out["networkInterfaceIds"] = [f"eni-{c.hex(17, str(i))}" for i, _ in enumerate(c.inputs.get("subnetIds", []))]
    return rid, out


def _scaling_policy(c: Ctx) -> tuple[str, dict]:
    name = c.autoname("name")
    resource = c.inputs.get("resourceId", "")
    arn = _arn(c, "autoscaling", f"scalingPolicy:{c.uuid()}:resource/{c.inputs.get('serviceNamespace')}/"
                               f"{resource}:policyName/{name}")
    return name, {"name": name, "arn": arn}


def _sagemaker(kind: str):
    return _named("name", lambda c, n: _arn(c, "sagemaker", f"{kind}/{n.lower()}"))


def _launch_template(c: Ctx) -> tuple[str, dict]:
    rid = f"lt-{c.hex(17)}"
    return rid, {"arn": _arn(c, "ec2", f"launch-template/{rid}"), "latestVersion": 1, "defaultVersion": 1,
                 "name": c.autoname("name")}


def _load_balancer(kind: str) -> MockFn:
    """ALBs and target groups: ARNs with a 16-hex id; an ALB's internal DNS name as AWS writes it."""
    def make(c: Ctx) -> tuple[str, dict]:
        name = c.inputs.get("name") or f"{c.name[:24]}-{c.hex(7, 'name')}"
        suffix = f"{kind}/{name}/{c.hex(16)}"
        arn = _arn(c, "elasticloadbalancing", suffix if kind == "targetgroup" else f"loadbalancer/{suffix}")
        out: dict[str, Any] = {"name": name, "arn": arn, "arnSuffix": arn.split(":", 5)[5].removeprefix(
            "loadbalancer/")}
        if kind != "targetgroup":
            prefix = "internal-" if c.inputs.get("internal") else ""
            out.update(dnsName=f"{prefix}{name}-{int(c.hex(8, 'dns'), 16) % 10**10}.{c.region}.elb.amazonaws.com",
                       zoneId="Z35SXDOTRQ7X7K", vpcId="vpc-" + c.hex(17, "vpc"))
        return arn, out
    return make


def _auto_scaling_group(c: Ctx) -> tuple[str, dict]:
    name = c.autoname("name")
    arn = _arn(c, "autoscaling", f"autoScalingGroup:{c.uuid()}:autoScalingGroupName/{name}")
    return name, {"name": name, "arn": arn}


def _ecs_cluster(c: Ctx) -> tuple[str, dict]:
    """Its id is its ARN (terraform-provider-aws sets the cluster's id to the ARN CreateCluster returns)."""
    name = c.autoname("name")
    arn = _arn(c, "ecs", f"cluster/{name}")
    return arn, {"name": name, "arn": arn}


def _ecs_task_definition(c: Ctx) -> tuple[str, dict]:
    """A new family's first revision: the id is the family, the ARN ends in `:<revision>`."""
    family = str(c.inputs.get("family") or c.name)
    plain = _arn(c, "ecs", f"task-definition/{family}")
    return family, {"arn": f"{plain}:1", "arnWithoutRevision": plain, "revision": 1}


def _ecs_service(c: Ctx) -> tuple[str, dict]:
    """Its id is its ARN, in the long format (`service/<cluster>/<service>`, the default since 2021)."""
    name = c.autoname("name")
    cluster = str(c.inputs.get("cluster") or "default").rsplit("/", 1)[-1]
    arn = _arn(c, "ecs", f"service/{cluster}/{name}")
    return arn, {"name": name, "arn": arn}


# Resource type token -> (id, provider-computed outputs). Inputs are echoed back as outputs, as providers do.
RESOURCES: dict[str, MockFn] = {
    "aws:kms/key:Key": _kms_key,
    "aws:kms/alias:Alias": _named("name", lambda c, n: _arn(c, "kms", n)),
    "aws:ec2/vpc:Vpc": _ec2("vpc", "vpc",
                            defaultSecurityGroupId=lambda c, _: f"sg-{c.hex(17, 'sg')}",
                            mainRouteTableId=lambda c, _: f"rtb-{c.hex(17, 'rtb')}",
                            defaultRouteTableId=lambda c, _: f"rtb-{c.hex(17, 'rtb')}",
                            defaultNetworkAclId=lambda c, _: f"acl-{c.hex(17, 'acl')}"),
    "aws:ec2/subnet:Subnet": _ec2("subnet", "subnet"),
    "aws:ec2/routeTable:RouteTable": _ec2("rtb", "route-table"),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": lambda c: (f"rtbassoc-{c.hex(17)}", {}),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": _ec2("sg", "security-group", name=lambda c, _: "default"),
    "aws:ec2/securityGroup:SecurityGroup": _ec2("sg", "security-group", name=lambda c, _: c.autoname("name")),
    "aws:ec2/internetGateway:InternetGateway": _ec2("igw", "internet-gateway"),
    "aws:ec2/eip:Eip": _ec2("eipalloc", "elastic-ip", allocationId=lambda c, rid: rid,
                            # TEST-NET-3 (RFC 5737): a documentation address, never a real host.
                            publicIp=lambda c, _: f"203.0.113.{int(c.hex(2, 'ip'), 16) % 254 + 1}"),
    "aws:ec2/natGateway:NatGateway": _ec2("nat", "natgateway",
                                          privateIp=lambda c, _: f"10.{int(c.hex(2, 'p'), 16)}.0.10"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": _vpc_endpoint,
    "aws:ec2/flowLog:FlowLog": _ec2("fl", "vpc-flow-log"),
    "aws:cloudwatch/logGroup:LogGroup": _named("name", lambda c, n: _arn(c, "logs", f"log-group:{n}")),
    "aws:cloudwatch/metricAlarm:MetricAlarm": _named("name", lambda c, n: _arn(c, "cloudwatch", f"alarm:{n}")),
    "aws:cloudwatch/dashboard:Dashboard": _named(
        "dashboardName", lambda c, n: f"arn:aws:cloudwatch::{ACCOUNT_ID}:dashboard/{n}", arn_key="dashboardArn"),
    "aws:iam/role:Role": lambda c: (lambda n: (n, {"name": n, "arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{n}",
                                                   "uniqueId": "AROA" + c.hex(17, "uid").upper()}))(c.autoname("name")),
    "aws:iam/rolePolicy:RolePolicy": lambda c: (lambda n: (f"{c.inputs.get('role')}:{n}", {"name": n}))(
        c.autoname("name")),
    "aws:s3/bucket:Bucket": _bucket,
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": _by_input("bucket"),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": _by_input("bucket"),
    "aws:s3/bucketVersioning:BucketVersioning": _by_input("bucket"),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": _by_input("bucket"),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": _by_input("bucket"),
    # Its id is the source bucket's name (Terraform's aws_s3_bucket_logging import id).
    "aws:s3/bucketLogging:BucketLogging": _by_input("bucket"),
    "aws:s3/bucketPolicy:BucketPolicy": _by_input("bucket"),
    "aws:secretsmanager/secret:Secret": _secret,
    "aws:secretsmanager/secretVersion:SecretVersion": _secret_version,
    "aws:sagemaker/model:Model": _sagemaker("model"),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": _sagemaker("endpoint-config"),
    "aws:sagemaker/endpoint:Endpoint": _sagemaker("endpoint"),
    "aws:appautoscaling/target:Target": lambda c: (
        str(c.inputs.get("resourceId")),
        {"arn": _arn(c, "application-autoscaling", f"scalable-target/0s{c.hex(30)}")}),
    "aws:appautoscaling/policy:Policy": _scaling_policy,
    "aws:ecr/repository:Repository": lambda c: (lambda n: (n, {
        "name": n, "arn": _arn(c, "ecr", f"repository/{n}"), "registryId": ACCOUNT_ID,
        "repositoryUrl": f"{ACCOUNT_ID}.dkr.ecr.{c.region}.amazonaws.com/{n}"}))(c.autoname("name", lower=True)),
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": lambda c: (str(c.inputs.get("repository")),
                                                          {"registryId": ACCOUNT_ID}),
    "aws:iam/instanceProfile:InstanceProfile": lambda c: (lambda n: (n, {
        "name": n, "arn": f"arn:aws:iam::{ACCOUNT_ID}:instance-profile/{n}",
        "uniqueId": "AIPA" + c.hex(17, "uid").upper()}))(c.autoname("name")),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": lambda c: (
        f"{c.inputs.get('role')}-{c.hex(20)}", {}),
    "aws:ec2/launchTemplate:LaunchTemplate": _launch_template,
    "aws:lb/loadBalancer:LoadBalancer": _load_balancer("app"),
    "aws:lb/targetGroup:TargetGroup": _load_balancer("targetgroup"),
    "aws:lb/listener:Listener": lambda c: (lambda arn: (arn, {"arn": arn}))(
        _arn(c, "elasticloadbalancing", f"listener/app/{c.name[:24]}/{c.hex(16)}/{c.hex(16, 'l')}")),
    "aws:autoscaling/group:Group": _auto_scaling_group,
    "aws:ecs/cluster:Cluster": _ecs_cluster,
    "aws:ecs/taskDefinition:TaskDefinition": _ecs_task_definition,
    "aws:ecs/service:Service": _ecs_service,
    # An imported certificate: ACM's ARN, its domain from the certificate (not parsed here).
    "aws:acm/certificate:Certificate": lambda c: (lambda arn: (arn, {
        "arn": arn, "status": "ISSUED", "type": "IMPORTED"}))(_arn(c, "acm", f"certificate/{c.uuid()}")),
    "aws:autoscaling/policy:Policy": lambda c: (lambda n: (n, {"name": n, "arn": _arn(c,
        "autoscaling", f"scalingPolicy:{c.uuid()}:autoScalingGroupName/{c.inputs.get('autoscalingGroupName')}"
                       f":policyName/{n}")}))(c.autoname("name")),
}


def call(token: str, args: Mapping[str, Any], ctx: MockCallCtx) -> dict[str, Any] | None:
    """The result of the AWS provider function `token` in `ctx.region`; None: not mocked."""
    region = ctx.region
    if token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
        # A registry login is short-lived and secret; a placeholder stands in for it (the SDK marks it secret).
        return {"userName": "AWS", "password": "preview-placeholder", "authorizationToken": "preview-placeholder",
                "proxyEndpoint": f"https://{ACCOUNT_ID}.dkr.ecr.{region}.amazonaws.com", "id": region,
                "expiresAt": "2026-11-29T12:00:00Z"}
    if token == "aws:index/getCallerIdentity:getCallerIdentity":
        return {"accountId": ACCOUNT_ID, "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/preview", "userId": "AIDAPREVIEW",
                "id": ACCOUNT_ID}
    if token == "aws:index/getRegion:getRegion":
        return {"name": region, "region": region, "id": region, "endpoint": f"ec2.{region}.amazonaws.com"}
    if token == "aws:ssm/getParameter:getParameter":
        # The public DLAMI parameter, answered with an AMI id in AWS's format (deterministic per name).
        name = str(args.get("name", ""))
        ami = "ami-0" + hashlib.sha256(f"{region}{name}".encode()).hexdigest()[:16]
        return {"name": name, "value": ami, "insecureValue": ami, "type": "String", "version": 1,
                "arn": f"arn:aws:ssm:{region}::parameter{name}", "id": name, "withDecryption": True}
    if token == "aws:index/getPartition:getPartition":
        return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
    if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
        letters = AWS_ZONES.get(region, ["a", "b", "c"])
        short = "".join(part[0] for part in region.split("-")[:-1]) + region.split("-")[-1]
        return {"names": [f"{region}{x}" for x in letters],
                "zoneIds": [f"{short}-az{i + 1}" for i in range(len(letters))], "id": region, "groupNames": [region]}
    return None
