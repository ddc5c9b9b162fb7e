"""The `huggingface` platform: Hugging Face's managed Inference Endpoints. Nothing of ours is declared beside them
but the namespace they live in (the `huggingface` section); the token is the stack's `hfToken` secret. Each
endpoint names its own vendor and region, so the platform has no region of its own: its prices are per vendor.

Pure: the dynamic provider and its mocks are imported only when used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import Field

from ..catalog.pricing import DATA_DIR as PRICE_DATA
from ..schema import MISSING, PROJECT, EnvironmentSpec, Problem, StackSecrets, Strict
from .base import Platform


class HfAccount(Strict):
    namespace: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
    """The Hugging Face user or organization the endpoints are created (and billed) under."""


class HfSettings(Strict):
    account: HfAccount | None = Field(default=None, alias="huggingface")
    """The Hugging Face namespace `hf-endpoint` targets are created in."""


class HuggingFace(Platform):
    name = "huggingface"
    title = "Hugging Face"
    settings = HfSettings
    # Our dynamic provider's resource types (components/hf/endpoint.py TYPE_TOKEN).
    packages = ("pulumi-python:dynamic/hf",)
    default_region = "all"  # `selfhost size` lists every vendor's instances
    regions = ("all",)
    online = "components.hf.online"
    price_file = PRICE_DATA / "huggingface.csv"
    login = "the stack's `hfToken` secret (a token with write access to the namespace's endpoints)"
    price_sources = ("hf_pricing",)

    def of(self, env: EnvironmentSpec) -> HfSettings:
        return env.settings(self.name)

    def region(self, env: EnvironmentSpec) -> str | None:
        return None  # each endpoint names its own vendor and region

    def validate(self, env: EnvironmentSpec) -> list[Problem]:
        if self.of(env).account is None:
            return [Problem(f"{PROJECT}:huggingface", MISSING, "required for hf-endpoint targets",
                            "{namespace: <the user or organization the endpoints are billed to>}")]
        return []

    def declare(self, env: EnvironmentSpec, needs: frozenset[str], secrets: StackSecrets
                ) -> tuple[Any, dict[str, Any]]:
        from ..hf.serving import HfFoundation

        account = self.of(env).account
        assert account is not None  # validated: its targets require it
        return HfFoundation(account.namespace), {"huggingfaceNamespace": account.namespace}

    def mocks(self) -> Mapping[str, Any]:
        from ..hf.mocks import RESOURCES

        return RESOURCES

    def policy_rules(self) -> Sequence[Any]:
        from ..hf.policies import RULES

        return RULES

    def terraform(self) -> tuple[Mapping[str, Any], Mapping[str, str], Mapping[str, str]]:
        return {}, {}, {"pulumi-python:dynamic/hf:InferenceEndpoint": "a Hugging Face Inference Endpoint, managed "
                        "by our dynamic provider: there is no Terraform provider for it"}



HUGGINGFACE = HuggingFace()
