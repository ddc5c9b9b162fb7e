"""A fake provider SDK, `toycloud`, with two resource classes shaped as a Pulumi provider's are (a type token, the
inputs as properties, outputs the provider computes). Nothing runs it but Pulumi's mocks."""

from __future__ import annotations

from typing import Any

import pulumi


class PrivateNet(pulumi.CustomResource):
    """A private network: callers inside it reach the servers; nothing else does."""

    def __init__(self, name: str, *, cidr: str, labels: dict[str, str],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("toycloud:network/privateNet:PrivateNet", name,
                         {"cidr": cidr, "labels": labels, "netId": None}, opts)


class GpuServer(pulumi.CustomResource):
    """A group of GPU servers running one container image, between `minCount` and `maxCount` of them."""

    def __init__(self, name: str, *, machine: str, min_count: int, max_count: int, image: str, args: list[str],
                 network: pulumi.Input[str], labels: dict[str, str], opts: pulumi.ResourceOptions | None = None
                 ) -> None:
        props: dict[str, Any] = {"machine": machine, "minCount": min_count, "maxCount": max_count, "image": image,
                                 "args": args, "networkId": network, "labels": labels, "privateUrl": None}
        super().__init__("toycloud:compute/gpuServer:GpuServer", name, props, opts)
