"""Pulumi mocks that answer as the real providers would, and a monitor that records what the program declares.

The values follow each provider's formats (ids, ARNs, names, URLs), so the preview's outputs read as a real
deployment's would. They are derived from a hash of the resource's URN: the same program gives the same preview.
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks

from components.schema import SECRET_PLACEHOLDER, UNKNOWN

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

SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
SPECIAL_SIG = "4dabf18193072939515e22adb298388d"
RESOURCE_REF_SIG = "5cf8f73096256a8f31e491e813e4eb8e"


@dataclass
class Ctx:
    """What a mock needs to fabricate one resource's provider-computed values."""

    urn: str
    name: str
    inputs: dict[str, Any]
    region: str
    project: str = ""
    subnets: dict[str, str] = field(default_factory=dict)
    """network id -> subnet CIDR, for values providers allocate from a subnet (PSC addresses)."""

    def hex(self, n: int, salt: str = "") -> str:
        return hashlib.sha256(f"{self.urn}{salt}".encode()).hexdigest()[:n]

    def uuid(self) -> str:
        return str(uuid.UUID(self.hex(32)))

    def autoname(self, key: str, lower: bool = False) -> str:
        """Pulumi's auto-naming: the logical name plus a 7-character random suffix, unless a name was given."""
        given = self.inputs.get(key)
        name = given or f"{self.name}-{self.hex(7, 'name')}"
        return name.lower() if lower and not given else name

    def arn(self, service: str, resource: str, region: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if region else ''}:{ACCOUNT_ID}:{resource}"


def _ec2(prefix: str, kind: str, **extra: Callable[[Ctx, str], Any]) -> Callable[[Ctx], tuple[str, dict]]:
    def make(c: Ctx) -> tuple[str, dict]:
        rid = f"{prefix}-{c.hex(17)}"
        out = {"arn": c.arn("ec2", f"{kind}/{rid}"), "ownerId": ACCOUNT_ID}
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


def _by_input(key: str) -> Callable[[Ctx], tuple[str, dict]]:
    return lambda c: (str(c.inputs.get(key, c.name)), {})


def _kms_key(c: Ctx) -> tuple[str, dict]:
    kid = c.uuid()
    return kid, {"keyId": kid, "arn": c.arn("kms", f"key/{kid}")}


def _bucket(c: Ctx) -> tuple[str, dict]:
    name = c.autoname("bucket", lower=True)
    return name, {"bucket": name, "arn": f"arn:aws:s3:::{name}", "region": c.region,
                  "bucketDomainName": f"{name}.s3.amazonaws.com",
                  "bucketRegionalDomainName": f"{name}.s3.{c.region}.amazonaws.com"}


def _secret(c: Ctx) -> tuple[str, dict]:
    name = c.autoname("name")
    arn = c.arn("secretsmanager", f"secret:{name}-{c.hex(6, 'suffix')}")
    return arn, {"name": name, "arn": arn}


def _secret_version(c: Ctx) -> tuple[str, dict]:
    version = c.uuid()
    return f"{c.inputs['secretId']}|{version}", {"versionId": version, "arn": c.inputs["secretId"]}


def _vpc_endpoint(c: Ctx) -> tuple[str, dict]:
    rid = f"vpce-{c.hex(17)}"
    out: dict[str, Any] = {"arn": c.arn("ec2", f"vpc-endpoint/{rid}"), "ownerId": ACCOUNT_ID, "state": "available"}
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
    arn = c.arn("autoscaling", f"scalingPolicy:{c.uuid()}:resource/{c.inputs.get('serviceNamespace')}/"
                               f"{resource}:policyName/{name}")
    return name, {"name": name, "arn": arn}


def _sagemaker(kind: str):
    return _named("name", lambda c, n: c.arn("sagemaker", f"{kind}/{n.lower()}"))


def _launch_template(c: Ctx) -> tuple[str, dict]:
    rid = f"lt-{c.hex(17)}"
    return rid, {"arn": c.arn("ec2", f"launch-template/{rid}"), "latestVersion": 1, "defaultVersion": 1,
                 "name": c.autoname("name")}


def _load_balancer(kind: str) -> Callable[[Ctx], tuple[str, dict]]:
    """ALBs and target groups: ARNs with a 16-hex id; an ALB's internal DNS name as AWS writes it."""
    def make(c: Ctx) -> tuple[str, dict]:
        name = c.inputs.get("name") or f"{c.name[:24]}-{c.hex(7, 'name')}"
        suffix = f"{kind}/{name}/{c.hex(16)}"
        arn = c.arn("elasticloadbalancing", suffix if kind == "targetgroup" else f"loadbalancer/{suffix}")
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
    arn = c.arn("autoscaling", f"autoScalingGroup:{c.uuid()}:autoScalingGroupName/{name}")
    return name, {"name": name, "arn": arn}


# Resource type token -> (id, provider-computed outputs). Inputs are echoed back as outputs, as providers do.
AWS_RESOURCES: dict[str, Callable[[Ctx], tuple[str, dict]]] = {
    "aws:kms/key:Key": _kms_key,
    "aws:kms/alias:Alias": _named("name", lambda c, n: c.arn("kms", n)),
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
    "aws:cloudwatch/logGroup:LogGroup": _named("name", lambda c, n: c.arn("logs", f"log-group:{n}")),
    "aws:cloudwatch/metricAlarm:MetricAlarm": _named("name", lambda c, n: c.arn("cloudwatch", f"alarm:{n}")),
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
        {"arn": c.arn("application-autoscaling", f"scalable-target/0s{c.hex(30)}")}),
    "aws:appautoscaling/policy:Policy": _scaling_policy,
    "aws:ecr/repository:Repository": lambda c: (lambda n: (n, {
        "name": n, "arn": c.arn("ecr", f"repository/{n}"), "registryId": ACCOUNT_ID,
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
        c.arn("elasticloadbalancing", f"listener/app/{c.name[:24]}/{c.hex(16)}/{c.hex(16, 'l')}")),
    "aws:autoscaling/group:Group": _auto_scaling_group,
    "aws:autoscaling/policy:Policy": lambda c: (lambda n: (n, {"name": n, "arn": c.arn(
        "autoscaling", f"scalingPolicy:{c.uuid()}:autoScalingGroupName/{c.inputs.get('autoscalingGroupName')}"
                       f":policyName/{n}")}))(c.autoname("name")),
}


def project_number(project: str) -> str:
    """A stable 12-digit project number for a project id (real ones are assigned by Google)."""
    return str(10**11 + int(hashlib.sha256(project.encode()).hexdigest(), 16) % (9 * 10**11))


def _digits(c: Ctx, n: int, salt: str = "") -> str:
    return str(int(c.hex(24, salt), 16) % 10 ** (n - 1) + 10 ** (n - 1))


def _gcp(path: str, key: str = "name", lower: bool = True, self_link: bool = False, **extra):
    """A GCP resource whose id is a path like projects/{project}/regions/{region}/routers/{name}."""
    def make(c: Ctx) -> tuple[str, dict]:
        name = c.autoname(key, lower)
        project = c.inputs.get("project", c.project)
        region = c.inputs.get("region") or c.inputs.get("location") or c.region
        rid = path.format(project=project, region=region, name=name, number=project_number(project))
        out: dict[str, Any] = {key: name, "project": project}
        if self_link:
            out["selfLink"] = f"https://www.googleapis.com/compute/v1/{rid}"
        out.update({k: f(c, rid) for k, f in extra.items()})
        return rid, out
    return make


def _garden_deployment(c: Ctx) -> tuple[str, dict]:
    project, location = c.inputs.get("project", c.project), c.inputs.get("location", c.region)
    endpoint = _digits(c, 19, "endpoint")
    out: dict[str, Any] = {"endpoint": endpoint, "deployedModelId": _digits(c, 19, "model"), "project": project,
                           "location": location, "deletionPolicy": "DELETE",
                           "deployedModelDisplayName": c.inputs.get("modelConfig", {}).get("modelDisplayName", c.name)}
    psc = (c.inputs.get("endpointConfig") or {}).get("privateServiceConnectConfig")
    if psc:
        # The forwarding rule PSC automation creates takes an address in the consumer network's subnet.
        automation = psc.get("pscAutomationConfigs", {})
        cidr = c.subnets.get(automation.get("network", ""), "10.0.0.0/24")
        address = str(ipaddress.ip_network(cidr)[2 + int(c.hex(4, "ip"), 16) % 200])
        configs = {**automation, "ipAddress": address,
                   "state": "SUCCESSFUL",
                   "forwardingRule": f"https://www.googleapis.com/compute/v1/projects/{project}/regions/{location}"
                                     f"/forwardingRules/sca-auto-fr-{c.hex(8, 'fr')}"}
        out["endpointConfig"] = {**c.inputs["endpointConfig"],
                                 "privateServiceConnectConfig": {**psc, "pscAutomationConfigs": configs}}
    return f"projects/{project}/locations/{location}/endpoints/{endpoint}", out


def _service_account(c: Ctx) -> tuple[str, dict]:
    project = c.inputs.get("project", c.project)
    email = f"{c.inputs['accountId']}@{project}.iam.gserviceaccount.com"
    rid = f"projects/{project}/serviceAccounts/{email}"
    return rid, {"email": email, "member": f"serviceAccount:{email}", "name": rid, "uniqueId": _digits(c, 21)}


def _gcp_secret_version(c: Ctx) -> tuple[str, dict]:
    name = f"{c.inputs['secret']}/versions/1"
    return name, {"name": name, "version": "1", "enabled": True}


GCP_RESOURCES: dict[str, Callable[[Ctx], tuple[str, dict]]] = {
    "gcp:projects/service:Service": lambda c: (f"{c.inputs.get('project', c.project)}/{c.inputs['service']}", {}),
    "gcp:compute/network:Network": _gcp("projects/{project}/global/networks/{name}", self_link=True,
                                        numericId=lambda c, _: _digits(c, 19)),
    "gcp:compute/subnetwork:Subnetwork": _gcp(
        "projects/{project}/regions/{region}/subnetworks/{name}", self_link=True,
        gatewayAddress=lambda c, _: str(next(ipaddress.ip_network(c.inputs["ipCidrRange"]).hosts()))),
    "gcp:compute/router:Router": _gcp("projects/{project}/regions/{region}/routers/{name}", self_link=True),
    "gcp:compute/routerNat:RouterNat": _gcp("{project}/{region}/{name}"),
    "gcp:compute/firewall:Firewall": _gcp("projects/{project}/global/firewalls/{name}", self_link=True),
    "gcp:serviceaccount/account:Account": _service_account,
    "gcp:projects/iAMMember:IAMMember": lambda c: (
        f"{c.inputs['project']}/{c.inputs['role']}/{c.inputs['member']}", {"etag": f"BwY{c.hex(9, 'etag')}="}),
    "gcp:secretmanager/secret:Secret": lambda c: (
        f"projects/{c.inputs.get('project', c.project)}/secrets/{c.inputs['secretId']}",
        {"name": f"projects/{project_number(c.inputs.get('project', c.project))}/secrets/{c.inputs['secretId']}"}),
    "gcp:secretmanager/secretVersion:SecretVersion": _gcp_secret_version,
    "gcp:secretmanager/secretIamBinding:SecretIamBinding": lambda c: (
        f"projects/{c.inputs.get('project', c.project)}/secrets/{c.inputs['secretId']}/{c.inputs['role']}",
        {"etag": f"BwY{c.hex(9, 'etag')}="}),
    "gcp:vertex/aiEndpointWithModelGardenDeployment:AiEndpointWithModelGardenDeployment": _garden_deployment,
    # Cloud KMS names: projects/P/locations/L/keyRings/R[/cryptoKeys/K] (the resources' `id`).
    "gcp:kms/keyRing:KeyRing": lambda c: (
        f"projects/{c.inputs.get('project', c.project)}/locations/{c.inputs['location']}/keyRings/{c.inputs['name']}",
        {}),
    "gcp:kms/cryptoKey:CryptoKey": lambda c: (f"{c.inputs['keyRing']}/cryptoKeys/{c.inputs['name']}", {
        "primaries": [{"name": f"{c.inputs['keyRing']}/cryptoKeys/{c.inputs['name']}/cryptoKeyVersions/1",
                       "state": "ENABLED"}]}),
    "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember": lambda c: (
        f"{c.inputs['cryptoKeyId']}/{c.inputs['role']}/{c.inputs['member']}", {"etag": f"BwY{c.hex(9, 'etag')}="}),
    # A service agent: service-<project number>@gcp-sa-<service>.iam.gserviceaccount.com.
    "gcp:projects/serviceIdentity:ServiceIdentity": lambda c: (lambda email: (
        f"projects/{c.inputs.get('project', c.project)}/services/{c.inputs['service']}",
        {"email": email, "member": f"serviceAccount:{email}"}))(
        f"service-{project_number(c.inputs.get('project', c.project))}@gcp-sa-"
        f"{c.inputs['service'].split('.')[0]}.iam.gserviceaccount.com"),
    "gcp:networkconnectivity/serviceConnectionPolicy:ServiceConnectionPolicy": _gcp(
        "projects/{project}/locations/{region}/serviceConnectionPolicies/{name}"),
    "gcp:dns/managedZone:ManagedZone": _gcp("projects/{project}/managedZones/{name}",
                                            managedZoneId=lambda c, _: _digits(c, 19),
                                            nameServers=lambda c, _: ["ns-gcp-private.googledomains.com."]),
    "gcp:dns/recordSet:RecordSet": lambda c: (
        f"projects/{c.inputs.get('project', c.project)}/managedZones/{c.inputs['managedZone']}/rrsets/"
        f"{c.inputs['name']}/{c.inputs['type']}", {}),
    "gcp:bigquery/dataset:Dataset": lambda c: (
        f"projects/{c.inputs.get('project', c.project)}/datasets/{c.inputs['datasetId']}",
        {"selfLink": f"https://bigquery.googleapis.com/bigquery/v2/projects/{c.inputs.get('project', c.project)}"
                     f"/datasets/{c.inputs['datasetId']}", "etag": c.hex(22, "etag"), "creationTime": 1764374400000}),
    "gcp:artifactregistry/repository:Repository": lambda c: (lambda p, loc, rid: (
        f"projects/{p}/locations/{loc}/repositories/{rid}",
        {"name": rid, "createTime": "2026-11-29T00:00:00Z"}))(
        c.inputs.get("project", c.project), c.inputs.get("location", c.region), c.inputs["repositoryId"]),
    "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember": lambda c: (
        f"projects/{c.inputs['project']}/locations/{c.inputs['location']}/repositories/{c.inputs['repository']}"
        f"/{c.inputs['role']}/{c.inputs['member']}", {"etag": f"BwY{c.hex(9, 'etag')}="}),
    "gcp:monitoring/alertPolicy:AlertPolicy": lambda c: (lambda n: (n, {"name": n}))(
        f"projects/{c.inputs.get('project', c.project)}/alertPolicies/{_digits(c, 19)}"),
    "gcp:compute/instanceTemplate:InstanceTemplate": _gcp(
        "projects/{project}/global/instanceTemplates/{name}", self_link=True,
        selfLinkUnique=lambda c, rid: f"https://www.googleapis.com/compute/v1/{rid}?uniqueId={_digits(c, 19, 'u')}",
        name=lambda c, _: f"{c.inputs.get('namePrefix', c.name)}{c.hex(26, 'tpl')}"),
    "gcp:compute/regionHealthCheck:RegionHealthCheck": _gcp(
        "projects/{project}/regions/{region}/healthChecks/{name}", self_link=True),
    "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager": _gcp(
        "projects/{project}/regions/{region}/instanceGroupManagers/{name}", self_link=True,
        instanceGroup=lambda c, rid: "https://www.googleapis.com/compute/v1/" + rid.replace(
            "instanceGroupManagers", "instanceGroups")),
    "gcp:compute/regionAutoscaler:RegionAutoscaler": _gcp(
        "projects/{project}/regions/{region}/autoscalers/{name}", self_link=True),
    "gcp:compute/regionBackendService:RegionBackendService": _gcp(
        "projects/{project}/regions/{region}/backendServices/{name}", self_link=True,
        fingerprint=lambda c, _: c.hex(12, "fp")),
    "gcp:compute/regionUrlMap:RegionUrlMap": _gcp("projects/{project}/regions/{region}/urlMaps/{name}",
                                                  self_link=True),
    "gcp:compute/regionTargetHttpProxy:RegionTargetHttpProxy": _gcp(
        "projects/{project}/regions/{region}/targetHttpProxies/{name}", self_link=True),
    # An internal forwarding rule takes an address from its subnet (mocked from the subnet's range).
    "gcp:compute/forwardingRule:ForwardingRule": _gcp(
        "projects/{project}/regions/{region}/forwardingRules/{name}", self_link=True,
        ipAddress=lambda c, _: f"10.{int(c.hex(2, 'a'), 16) % 200}.0.{int(c.hex(2, 'b'), 16) % 250 + 2}"),
    "gcp:monitoring/dashboard:Dashboard": lambda c: (
        f"projects/{project_number(c.inputs.get('project', c.project))}/dashboards/{c.uuid()}", {}),
}


# Providers that are not clouds.
def _kubernetes(c: Ctx) -> tuple[str, dict]:
    """A Kubernetes object as the API server returns it: id `namespace/name` (or `name` for cluster-scoped
    objects), the metadata the server fills in; a Service gets its cluster IP."""
    meta = dict(c.inputs.get("metadata") or {})
    name, namespace = meta.get("name") or c.autoname("", lower=True), meta.get("namespace")
    meta |= {"name": name, "uid": c.uuid(), "resourceVersion": str(int(c.hex(6), 16)), "generation": 1,
             "creationTimestamp": "2026-12-01T00:00:00Z"}
    computed: dict[str, Any] = {"metadata": meta}
    if c.inputs.get("kind") == "Service":
        octets = bytes.fromhex(c.hex(4, "ip"))
        computed["spec"] = {**(c.inputs.get("spec") or {}), "clusterIP": f"10.96.{octets[0]}.{octets[1]}"}
    return (f"{namespace}/{name}" if namespace else name), computed


OTHER_RESOURCES: dict[str, Callable[[Ctx], tuple[str, dict]]] = {
    # An explicit provider's id is a UUID the engine assigns; it computes nothing.
    "pulumi:providers:kubernetes": lambda c: (c.uuid(), {}),
    # A Helm release: the chart as deployed (`status` of `helm status`).
    "kubernetes:helm.sh/v3:Release": lambda c: (f"{c.inputs.get('namespace')}/{c.inputs.get('name')}", {
        "status": {"name": c.inputs.get("name"), "namespace": c.inputs.get("namespace"),
                   "chart": c.inputs.get("chart"), "version": c.inputs.get("version"), "status": "deployed",
                   "revision": 1, "appVersion": c.inputs.get("version")}}),
    # The random provider's id for a password is "none"; its result is what the SDK marks secret.
    "random:index/randomPassword:RandomPassword": lambda c: ("none", {
        "result": c.hex(int(c.inputs.get("length", 16)), "password"), "bcryptHash": f"$2a$10${c.hex(53, 'bcrypt')}"}),
    # A Hugging Face Inference Endpoint (components/hf/endpoint.py's dynamic resource): its id is
    # "<namespace>/<name>"; once running the API reports its URL, https://<id>.<region>.<vendor>.endpoints.
    # huggingface.cloud, and the state.
    "pulumi-python:dynamic/hf:InferenceEndpoint": lambda c: (f"{c.inputs.get('namespace')}/{c.inputs.get('name')}", {
        "url": f"https://{c.hex(16, 'hf-endpoint')}.{c.inputs.get('region')}.{c.inputs.get('vendor')}"
               ".endpoints.huggingface.cloud",
        "status": "scaledToZero" if c.inputs.get("minReplica") == 0 else "running"}),
    # A local command's id is random; its output is what the command printed (the API's JSON, not kept).
    "command:local:Command": lambda c: (c.hex(16), {"stdout": "", "stderr": ""}),
    # docker-build pushes and reports the manifest digest; `ref` is the first tag at that digest.
    "docker-build:index:Image": lambda c: (lambda digest: (digest, {
        "digest": digest, "ref": f"{str((c.inputs.get('tags') or [''])[0]).split(':')[0]}@{digest}"}))(
        f"sha256:{c.hex(64, 'digest')}"),
}


def _gcp_call(token: str, args: dict, project: str) -> dict:
    if token == "gcp:organizations/getClientConfig:getClientConfig":
        return {"accessToken": "preview-placeholder", "project": project, "region": "", "zone": "", "id": project}
    if token == "gcp:compute/getImage:getImage":
        # The family's current image, named as Deep Learning VM images are (deterministic per family).
        family, image_project = args.get("family", ""), args.get("project", project)
        name = f"{family}-v20261115"
        link = f"https://www.googleapis.com/compute/v1/projects/{image_project}/global/images/{name}"
        return {"name": name, "family": family, "project": image_project, "selfLink": link, "status": "READY",
                "id": f"projects/{image_project}/global/images/{name}", "diskSizeGb": 50,
                "imageId": str(int(hashlib.sha256(name.encode()).hexdigest(), 16) % 10**19)}
    if token == "gcp:bigquery/getDefaultServiceAccount:getDefaultServiceAccount":
        # BigQuery's encryption service account, named after the project number.
        pid = args.get("project") or project
        email = f"bq-{project_number(pid)}@bigquery-encryption.iam.gserviceaccount.com"
        return {"email": email, "member": f"serviceAccount:{email}", "project": pid, "id": pid}
    if token == "gcp:organizations/getProject:getProject":
        pid = args.get("projectId") or project
        return {"projectId": pid, "number": project_number(pid), "name": pid, "id": f"projects/{pid}"}
    raise UnmockedCall(token)


def _aws_call(token: str, args: dict, region: str) -> dict:
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
    raise UnmockedCall(token)


class UnmockedCall(Exception):
    """The program called a provider function the offline preview cannot answer faithfully."""


@dataclass
class Recorded:
    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    inputs: dict[str, Any]
    secret_paths: list[str]
    dependencies: list[str]
    protect: bool
    id: str = ""
    computed: dict[str, Any] = field(default_factory=dict)
    provider: str = ""
    """The explicit provider's URN, where one is given (an empty string: the default provider)."""
    outputs: dict[str, Any] = field(default_factory=dict)


class PreviewMocks(Mocks):
    def __init__(self, config: dict[str, str]):
        self.region = config.get("aws:region", "us-east-1")
        self.gcp_project = config.get("gcp:project", "")
        self.gcp_region = config.get("gcp:region", "us-central1")
        self.subnets: dict[str, str] = {}
        self.unmocked: set[str] = set()
        # The SDK registers resources from a thread pool; each registration keeps its URN and computed
        # values in its own thread.
        self.current = threading.local()

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict]:
        if not args.custom:
            return "", {}
        make = AWS_RESOURCES.get(args.typ) or GCP_RESOURCES.get(args.typ) or OTHER_RESOURCES.get(args.typ) or (
            _kubernetes if args.typ.startswith("kubernetes:") else None)
        if make is None:
            self.unmocked.add(args.typ)
            return f"{args.name}-{hashlib.sha256(args.name.encode()).hexdigest()[:8]}", dict(args.inputs)
        region, project = (self.gcp_region, self.gcp_project) if args.typ.startswith("gcp:") else (self.region, "")
        rid, computed = make(Ctx(self.current.urn, args.name, args.inputs, region, project, self.subnets))
        if args.typ == "gcp:compute/subnetwork:Subnetwork":
            self.subnets[args.inputs["network"]] = args.inputs["ipCidrRange"]
        self.current.computed = computed
        return rid, {**args.inputs, **computed}

    def call(self, args: MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        """The function's result, and no check failures."""
        if args.token.startswith("aws:"):
            return _aws_call(args.token, args.args, self.region), []
        if args.token.startswith("gcp:"):
            return _gcp_call(args.token, args.args, self.gcp_project), []
        raise UnmockedCall(args.token)


class RecordingMonitor(MockMonitor):
    """The mock monitor, also keeping each registration as the engine would see it: parent, dependencies,
    options and inputs, with secret inputs redacted and their paths noted."""

    mocks: PreviewMocks

    def __init__(self, mocks: PreviewMocks):
        super().__init__(mocks)
        self.recorded: dict[str, Recorded] = {}

    def RegisterResource(self, request):
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)
        self.mocks.current.urn = urn
        self.mocks.current.computed = {}
        response = super().RegisterResource(request)
        inputs, secrets = redact(json_format.MessageToDict(request.object))
        self.recorded[urn] = Recorded(
            urn=urn, type=request.type, name=request.name, parent=request.parent or None, custom=request.custom,
            inputs=inputs, secret_paths=secrets, dependencies=sorted(set(request.dependencies)),
            protect=bool(request.protect), id=response.id, computed=dict(self.mocks.current.computed),
            # A provider reference is `<urn>::<id>`.
            provider=request.provider.rsplit("::", 1)[0],
        )
        return response

    def RegisterResourceOutputs(self, request):
        if request.urn in self.recorded:
            self.recorded[request.urn].outputs, _ = redact(json_format.MessageToDict(request.outputs))
        return super().RegisterResourceOutputs(request)


def redact(value: Any, path: str = "") -> tuple[Any, list[str]]:
    """Replace secret values by a marker, resource references by their URN and unknowns by a note.
    Returns the cleaned value and the paths of the secrets found."""
    if isinstance(value, dict):
        sig = value.get(SPECIAL_SIG)
        if sig == SECRET_SIG:
            return SECRET_PLACEHOLDER, [path or "."]
        if sig == RESOURCE_REF_SIG:
            return value.get("urn"), []
        out, secrets = {}, []
        for k, v in value.items():
            out[k], found = redact(v, f"{path}.{k}" if path else k)
            secrets += found
        return out, secrets
    if isinstance(value, list):
        items, secrets = [], []
        for i, v in enumerate(value):
            item, found = redact(v, f"{path}[{i}]")
            items.append(item)
            secrets += found
        return items, secrets
    if value == UNKNOWN:
        return "(known after apply)", []
    if isinstance(value, float) and value.is_integer():  # protobuf Struct holds every number as a double
        return int(value), []
    return value, []
