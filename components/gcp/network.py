from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_gcp as gcp

# Google's load balancer health-check probes come from these ranges (Cloud Load Balancing docs,
# "Health checks overview: probe IP ranges and firewall rules").
HEALTH_CHECK_RANGES = ("35.191.0.0/16", "130.211.0.0/22")


@dataclass(frozen=True)
class NetworkArgs:
    project: str
    region: str
    cidr: str
    nat: Literal["none", "single"]
    labels: dict[str, str]
    health_check_ports: tuple[int, ...] = ()
    """Ports a load balancer health-checks; only then is ingress opened, and only from Google's probe ranges."""
    depends_on: list[pulumi.Resource] = field(default_factory=list)


class Network(pulumi.ComponentResource):
    """A custom-mode VPC with one private regional subnet (Private Google Access, flow logs), Cloud NAT only on
    request, and a firewall that denies all ingress."""

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:gcp:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=args.depends_on)
        self.network = gcp.compute.Network(
            f"{name}-vpc", project=args.project, auto_create_subnetworks=False, routing_mode="REGIONAL",
            description=f"{name}: private network for model serving", opts=child,
        )
        self.subnet = gcp.compute.Subnetwork(
            f"{name}-subnet-{args.region}", project=args.project, region=args.region, network=self.network.id,
            ip_cidr_range=args.cidr, private_ip_google_access=True,
            log_config=gcp.compute.SubnetworkLogConfigArgs(
                aggregation_interval="INTERVAL_5_SEC", flow_sampling=0.5, metadata="INCLUDE_ALL_METADATA"),
            opts=child,
        )
        if args.nat != "none":
            router = gcp.compute.Router(f"{name}-router", project=args.project, region=args.region,
                                        network=self.network.id, opts=child)
            gcp.compute.RouterNat(
                f"{name}-nat", project=args.project, region=args.region, router=router.name,
                nat_ip_allocate_option="AUTO_ONLY", source_subnetwork_ip_ranges_to_nat="LIST_OF_SUBNETWORKS",
                subnetworks=[gcp.compute.RouterNatSubnetworkArgs(
                    name=self.subnet.id, source_ip_ranges_to_nats=["ALL_IP_RANGES"])],
                log_config=gcp.compute.RouterNatLogConfigArgs(enable=True, filter="ERRORS_ONLY"),
                opts=child,
            )
        # VPC networks already deny ingress implicitly; an explicit, logged rule makes it visible and auditable.
        gcp.compute.Firewall(
            f"{name}-deny-ingress", project=args.project, network=self.network.id, direction="INGRESS",
            priority=65534, source_ranges=["0.0.0.0/0"], denies=[gcp.compute.FirewallDenyArgs(protocol="all")],
            log_config=gcp.compute.FirewallLogConfigArgs(metadata="INCLUDE_ALL_METADATA"),
            description="Deny all ingress unless a higher-priority rule allows it", opts=child,
        )
        if args.health_check_ports:
            gcp.compute.Firewall(
                f"{name}-allow-health-checks", project=args.project, network=self.network.id, direction="INGRESS",
                priority=1000, source_ranges=list(HEALTH_CHECK_RANGES),
                allows=[gcp.compute.FirewallAllowArgs(protocol="tcp", ports=[str(p) for p in args.health_check_ports])],
                description="Load balancer health checks only", opts=child,
            )
        self.network_id = self.network.id
        self.subnet_id = self.subnet.id
        self.register_outputs({"networkId": self.network_id, "subnetId": self.subnet_id})
