"""The toy platform, `toycloud`: everything about the cloud in one module, as components/targets/aws.py is for AWS."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from components.cost_rules import monthly
from components.schema import MISSING, EnvironmentSpec, Problem, StackSecrets, Strict
from components.targets.base import Platform

HERE = Path(__file__).parent
REGIONS = ("toy-east", "toy-west")


class ToySettings(Strict):
    region: str | None = Field(default=None, alias="toycloud:region")
    """The toy provider's own key, as `aws:region` is AWS's."""


def _net_mock(c: Any) -> tuple[str, dict[str, Any]]:
    net = f"net-{c.hex(12)}"
    return net, {"netId": net}


def _server_mock(c: Any) -> tuple[str, dict[str, Any]]:
    server = f"srv-{c.hex(12)}"
    return server, {"privateUrl": f"https://{server}.{c.region}.toycloud.example"}


class ToyCloud(Platform):
    name = "toycloud"
    title = "Toy Cloud"
    settings = ToySettings
    packages = ("toycloud",)
    default_region = "toy-east"
    regions = REGIONS
    price_file = HERE / "prices.csv"
    quota_file = HERE / "quotas.csv"
    quota_services = ("gpus.toycloud.example",)
    login = "a toy token"
    cost_rules: ClassVar[dict[str, Any]] = {
        "toycloud:network/privateNet:PrivateNet": monthly("toycloud", "network", "private-net", "private network")}

    def of(self, env: EnvironmentSpec) -> ToySettings:
        return env.settings(self.name)

    def region(self, env: EnvironmentSpec) -> str | None:
        return self.of(env).region

    def validate(self, env: EnvironmentSpec) -> list[Problem]:
        region = self.of(env).region
        if region not in REGIONS:
            return [Problem("toycloud:region", MISSING if region is None else region,
                            "required for Toy Cloud targets" if region is None else "not a Toy Cloud region",
                            ", ".join(REGIONS))]
        return []

    def declare(self, env: EnvironmentSpec, needs: frozenset[str], secrets: StackSecrets
                ) -> tuple[Any, dict[str, Any]]:
        from .components import ToyNetwork

        region = self.of(env).region
        assert region is not None
        network = ToyNetwork(f"{env.name}-toy", env.network.cidr, env.all_tags, region)
        return network, {"toycloudRegion": region}

    def tag_field(self, token: str) -> tuple[str, ...] | None:
        return ("labels",)

    def mocks(self) -> Mapping[str, Any]:
        return {"toycloud:network/privateNet:PrivateNet": _net_mock,
                "toycloud:compute/gpuServer:GpuServer": _server_mock}

    def mock_location(self, config: Mapping[str, str]) -> tuple[str, str]:
        return config.get("toycloud:region", "toy-east"), ""

    def terraform(self) -> tuple[Mapping[str, Any], Mapping[str, str], Mapping[str, str]]:
        from components.terraform import TfType

        return ({"toycloud:network/privateNet:PrivateNet": TfType("toycloud_private_net"),
                 "toycloud:compute/gpuServer:GpuServer": TfType("toycloud_gpu_server")},
                {"toycloud": "registry.terraform.io/example/toycloud"}, {})
