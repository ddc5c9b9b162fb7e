"""The toy platform's ComponentResources: its foundation (a private network) and a serving target on it."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from .sdk import GpuServer, PrivateNet


class ToyNetwork(pulumi.ComponentResource):
    def __init__(self, name: str, cidr: str, labels: dict[str, str], region: str,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("selfhost:toycloud:Network", name, None, opts)
        self.region = region
        self.net = PrivateNet(f"{name}-net", cidr=cidr, labels=labels, opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({"netId": self.net.id})


@dataclass(frozen=True)
class ToyServingArgs:
    network: ToyNetwork
    machine: str
    min_count: int
    max_count: int
    image: str
    args: tuple[str, ...]
    labels: dict[str, str]


class ToyServing(pulumi.ComponentResource):
    def __init__(self, name: str, args: ToyServingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("selfhost:toycloud:Serving", name, None, opts)
        self.server = GpuServer(f"{name}-server", machine=args.machine, min_count=args.min_count,
                                max_count=args.max_count, image=args.image, args=list(args.args),
                                network=args.network.net.id, labels=args.labels,
                                opts=pulumi.ResourceOptions(parent=self))
        self.url = self.server.id.apply(lambda i: f"https://{i}.toy-east.toycloud.example/v1")
        self.register_outputs({"url": self.url})
