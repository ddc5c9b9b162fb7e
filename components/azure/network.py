"""The stack's virtual network on Azure: one subnet for private endpoints, closed to the internet, and the private
DNS zones that make the services' own names resolve to those endpoints inside it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure

# Each Private Link service and the zone its records live in (Azure Private Endpoint DNS configuration, "Azure
# services DNS zone configuration", read 2026-12-08). An Azure ML workspace needs two.
ZONES: dict[str, tuple[str, ...]] = {
    "vault": ("privatelink.vaultcore.azure.net",),
    "blob": ("privatelink.blob.core.windows.net",),
    "file": ("privatelink.file.core.windows.net",),
    "registry": ("privatelink.azurecr.io",),
    "amlworkspace": ("privatelink.api.azureml.ms", "privatelink.notebooks.azure.net"),
}


@dataclass(frozen=True)
class NetworkArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    cidr: str
    tags: dict[str, str]


class Network(pulumi.ComponentResource):
    """A virtual network whose one subnet holds the private endpoints of the vault, the storage account, the
    registry and the workspace (and so of its online endpoints), behind a network security group that admits the
    virtual network and nothing from the internet; and the private DNS zones of those services, linked to it."""

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:azure:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.resource_group_name = args.resource_group_name
        self.location = args.location
        self.tags = args.tags
        self.vnet = azure.network.VirtualNetwork(
            f"{name}-vnet", resource_group_name=args.resource_group_name, location=args.location,
            address_space={"address_prefixes": [args.cidr]}, tags=args.tags, opts=child)
        # Explicit, though the defaults say the same, so a rule added later reads against them.
        self.nsg = azure.network.NetworkSecurityGroup(
            f"{name}-nsg", resource_group_name=args.resource_group_name, location=args.location, tags=args.tags,
            security_rules=[
                {"name": "allow-vnet-https", "priority": 100, "direction": "Inbound", "access": "Allow",
                 "protocol": "Tcp", "source_address_prefix": "VirtualNetwork", "source_port_range": "*",
                 "destination_address_prefix": "VirtualNetwork", "destination_port_range": "443"},
                {"name": "deny-internet", "priority": 4000, "direction": "Inbound", "access": "Deny",
                 "protocol": "*", "source_address_prefix": "Internet", "source_port_range": "*",
                 "destination_address_prefix": "*", "destination_port_range": "*"},
            ], opts=child)
        subnet_cidr = str(next(ipaddress.ip_network(args.cidr).subnets(new_prefix=24)))
        self.subnet = azure.network.Subnet(
            f"{name}-private-endpoints", resource_group_name=args.resource_group_name,
            virtual_network_name=self.vnet.name, address_prefix=subnet_cidr,
            network_security_group={"id": self.nsg.id},
            # The security group applies to private endpoints only when their network policies are on.
            private_endpoint_network_policies="Enabled",
            # Nothing in it needs to reach the internet on its own (Azure retires default outbound access).
            default_outbound_access=False, opts=child)
        self.zones: dict[str, azure.privatedns.PrivateZone] = {}
        for zone in sorted({z for zones in ZONES.values() for z in zones}):
            role = zone.removeprefix("privatelink.").split(".")[0]
            self.zones[zone] = azure.privatedns.PrivateZone(
                f"{name}-zone-{role}", resource_group_name=args.resource_group_name, location="global",
                private_zone_name=zone, tags=args.tags, opts=child)
            azure.privatedns.VirtualNetworkLink(
                f"{name}-zone-{role}-link", resource_group_name=args.resource_group_name, location="global",
                private_zone_name=self.zones[zone].name, virtual_network={"id": self.vnet.id},
                registration_enabled=False, tags=args.tags, opts=child)
        self.register_outputs({"vnetId": self.vnet.id, "subnetId": self.subnet.id})

    def private_endpoint(self, name: str, target_id: pulumi.Input[str], group: str,
                         parent: pulumi.Resource) -> azure.network.PrivateEndpoint:
        """A private endpoint for `group` of the resource `target_id` in the subnet, its names registered in the
        group's private DNS zones; parented to the resource's own component."""
        child = pulumi.ResourceOptions(parent=parent)
        endpoint = azure.network.PrivateEndpoint(
            f"{name}-pe", resource_group_name=self.resource_group_name, location=self.location,
            subnet={"id": self.subnet.id}, tags=self.tags,
            private_link_service_connections=[{"name": f"{name}-{group}", "private_link_service_id": target_id,
                                               "group_ids": [group]}], opts=child)
        azure.network.PrivateDnsZoneGroup(
            f"{name}-pe-dns", resource_group_name=self.resource_group_name, private_endpoint_name=endpoint.name,
            private_dns_zone_group_name="default",
            private_dns_zone_configs=[{"name": zone.replace(".", "-"), "private_dns_zone_id": self.zones[zone].id}
                                      for zone in ZONES[group]], opts=child)
        return endpoint
