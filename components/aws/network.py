from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

# Interface endpoints a SageMaker endpoint in private subnets needs without NAT (AWS PrivateLink supported
# services; SageMaker developer guide "host-vpc"): image pulls, logs, the runtime API, STS for its role, and
# Secrets Manager for containers that read their Hugging Face token at start. S3 comes through a gateway.
# Interface endpoints every environment gets (image pulls, logs, credentials, the token secret); targets add the
# ones only they call (SageMaker runtime).
INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "logs", "sts", "secretsmanager")


@dataclass(frozen=True)
class NetworkArgs:
    region: str
    cidr: str
    availability_zones: list[str]
    """One private subnet per zone, named after the zone so adding a zone never renames the others."""
    nat: Literal["none", "single", "per-az"]
    flow_log_retention_days: int
    kms_key_arn: pulumi.Input[str]
    tags: dict[str, str]
    extra_endpoints: tuple[str, ...] = ("sagemaker.runtime",)
    """Interface endpoints beyond INTERFACE_ENDPOINTS, by service name."""


class Network(pulumi.ComponentResource):
    """A private VPC: subnets across zones, VPC endpoints instead of internet egress, flow logs, closed default SG.

    NAT gateways (and the public subnets they need) exist only when `nat` asks for them.
    """

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:aws:Network", name, None, opts)
        tags = lambda role: {**args.tags, "Name": f"{name}-{role}"}  # noqa: E731

        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc", cidr_block=args.cidr, enable_dns_support=True, enable_dns_hostnames=True,
            tags=tags("vpc"), opts=pulumi.ResourceOptions(parent=self),
        )
        # No rules: nothing may use the default security group by accident.
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=self.vpc.id, tags=tags("default-closed"),
                                     opts=pulumi.ResourceOptions(parent=self))

        # Private subnets take the first blocks of /+3 (8 blocks, at most 6 zones); public ones the last block.
        vpc_net = ipaddress.IPv4Network(args.cidr)  # the config allows IPv4 ranges only
        blocks = list(vpc_net.subnets(new_prefix=vpc_net.prefixlen + 3))
        public_blocks = list(blocks[-1].subnets(new_prefix=blocks[-1].prefixlen + 3))
        nat_gateways = self._nat_gateways(name, args, public_blocks, tags)
        self.private_subnets: dict[str, aws.ec2.Subnet] = {}
        private_route_tables = self._private_subnets(name, args, blocks, nat_gateways, tags)
        self._service_endpoints(name, args, private_route_tables, tags)
        self._flow_logs(name, args, tags)

        self.vpc_id = self.vpc.id
        self.subnet_ids: list[pulumi.Input[str]] = [s.id for s in self.private_subnets.values()]
        self.register_outputs({
            "vpcId": self.vpc_id,
            "privateSubnetIds": self.subnet_ids,
            "s3PrefixListId": self.s3_endpoint.prefix_list_id,
        })

    def _nat_gateways(self, name: str, args: NetworkArgs, public_blocks: list[ipaddress.IPv4Network],
                      tags: Callable[[str], dict[str, str]]) -> dict[str, aws.ec2.NatGateway]:
        """The NAT gateways `nat` asks for, by zone, each in a public subnet of its own behind the internet
        gateway; none (and no public subnets) for `none`."""
        child = pulumi.ResourceOptions(parent=self)
        nat_zones = {"none": [], "single": args.availability_zones[:1], "per-az": args.availability_zones}[args.nat]
        nat_gateways: dict[str, aws.ec2.NatGateway] = {}
        if not nat_zones:
            return nat_gateways
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=self.vpc.id, tags=tags("igw"), opts=child)
        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=self.vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            tags=tags("public-rt"), opts=child,
        )
        for az, block in zip(nat_zones, public_blocks, strict=False):  # 8 blocks for at most 6 zones
            public = aws.ec2.Subnet(
                f"{name}-public-{az}", vpc_id=self.vpc.id, cidr_block=str(block), availability_zone=az,
                map_public_ip_on_launch=False, tags=tags(f"public-{az}"), opts=child,
            )
            aws.ec2.RouteTableAssociation(f"{name}-public-rta-{az}", subnet_id=public.id,
                                          route_table_id=public_rt.id, opts=child)
            eip = aws.ec2.Eip(f"{name}-nat-eip-{az}", domain="vpc", tags=tags(f"nat-{az}"), opts=child)
            nat_gateways[az] = aws.ec2.NatGateway(
                f"{name}-nat-{az}", allocation_id=eip.id, subnet_id=public.id, tags=tags(f"nat-{az}"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
            )
        return nat_gateways

    def _private_subnets(self, name: str, args: NetworkArgs, blocks: list[ipaddress.IPv4Network],
                         nat_gateways: dict[str, aws.ec2.NatGateway],
                         tags: Callable[[str], dict[str, str]]) -> list[aws.ec2.RouteTable]:
        """One private subnet per zone (into `self.private_subnets`), routed to its zone's NAT gateway, or the
        single one, or nowhere; returns their route tables."""
        child = pulumi.ResourceOptions(parent=self)
        private_route_tables = []
        for az, block in zip(args.availability_zones, blocks, strict=False):  # 8 blocks for at most 6 zones
            subnet = aws.ec2.Subnet(
                f"{name}-private-{az}", vpc_id=self.vpc.id, cidr_block=str(block), availability_zone=az,
                tags=tags(f"private-{az}"), opts=child,
            )
            nat = nat_gateways.get(az) or next(iter(nat_gateways.values()), None)
            rt = aws.ec2.RouteTable(
                f"{name}-private-rt-{az}", vpc_id=self.vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)] if nat else [],
                tags=tags(f"private-rt-{az}"), opts=child,
            )
            aws.ec2.RouteTableAssociation(f"{name}-private-rta-{az}", subnet_id=subnet.id, route_table_id=rt.id,
                                          opts=child)
            self.private_subnets[az] = subnet
            private_route_tables.append(rt)
        return private_route_tables

    def _service_endpoints(self, name: str, args: NetworkArgs, private_route_tables: list[aws.ec2.RouteTable],
                           tags: Callable[[str], dict[str, str]]) -> None:
        """AWS services reached from the private subnets without internet egress: the S3 gateway, and the
        interface endpoints behind a security group that admits HTTPS from the VPC."""
        child = pulumi.ResourceOptions(parent=self)
        region = args.region
        self.s3_endpoint = aws.ec2.VpcEndpoint(
            f"{name}-vpce-s3", vpc_id=self.vpc.id, service_name=f"com.amazonaws.{region}.s3",
            vpc_endpoint_type="Gateway", route_table_ids=[rt.id for rt in private_route_tables],
            tags=tags("vpce-s3"), opts=child,
        )
        self.endpoint_sg = aws.ec2.SecurityGroup(
            f"{name}-vpce-sg", vpc_id=self.vpc.id, description="HTTPS from inside the VPC to AWS service endpoints",
            ingress=[aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=443, to_port=443,
                                                      cidr_blocks=[args.cidr], description="HTTPS from the VPC")],
            tags=tags("vpce-sg"), opts=child,
        )
        for service in (*INTERFACE_ENDPOINTS, *args.extra_endpoints):
            aws.ec2.VpcEndpoint(
                f"{name}-vpce-{service.replace('.', '-')}", vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{region}.{service}", vpc_endpoint_type="Interface",
                private_dns_enabled=True, subnet_ids=[s.id for s in self.private_subnets.values()],
                security_group_ids=[self.endpoint_sg.id], tags=tags(f"vpce-{service}"), opts=child,
            )

    def _flow_logs(self, name: str, args: NetworkArgs, tags: Callable[[str], dict[str, str]]) -> None:
        """Every flow of the VPC to an encrypted log group, through a role only the VPC's own account's flow logs
        service may assume."""
        child = pulumi.ResourceOptions(parent=self)
        flow_logs = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs", name=f"/selfhost/{name}/vpc-flow-logs", retention_in_days=args.flow_log_retention_days,
            kms_key_id=args.kms_key_arn, tags=args.tags, opts=child,
        )
        flow_role = aws.iam.Role(
            f"{name}-flow-logs-role",
            assume_role_policy=pulumi.Output.json_dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                               "Action": "sts:AssumeRole",
                               "Condition": {"StringEquals": {"aws:SourceAccount": self.vpc.owner_id}}}],
            }),
            tags=args.tags, opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs-policy", role=flow_role.id,
            policy=pulumi.Output.json_dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow",
                               "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                               "Resource": [flow_logs.arn, pulumi.Output.concat(flow_logs.arn, ":*")]}],
            }),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log", vpc_id=self.vpc.id, traffic_type="ALL", log_destination_type="cloud-watch-logs",
            log_destination=flow_logs.arn, iam_role_arn=flow_role.arn, max_aggregation_interval=60,
            tags=tags("flow-log"), opts=child,
        )
