"""Resource types no one platform owns: the tools every platform's foundation may use (docker-build's image build
and push, the command provider's local commands, the tls provider's keys and certificates: components/tls.py). They
cost nothing by themselves, the first two have no Terraform resource (tls has hashicorp/tls's), and their mocks
answer as those providers do. The registry reads this like a platform's tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class SharedTypes:
    name = "shared"
    packages = ("docker-build", "command", "tls")
    cost_rules: Mapping[str, Any] = {}
    free_types = frozenset({"docker-build:index:Image", "tls:index/privateKey:PrivateKey",
                            "tls:index/selfSignedCert:SelfSignedCert", "tls:index/certRequest:CertRequest",
                            "tls:index/locallySignedCert:LocallySignedCert"})

    def mocks(self) -> Mapping[str, Any]:
        from ..mocking import SHARED_RESOURCES

        return SHARED_RESOURCES

    def terraform(self) -> tuple[Mapping[str, Any], Mapping[str, str], Mapping[str, str]]:
        from ..terraform import TfType

        return {
            "tls:index/privateKey:PrivateKey": TfType("tls_private_key"),
            "tls:index/selfSignedCert:SelfSignedCert": TfType("tls_self_signed_cert"),
            "tls:index/certRequest:CertRequest": TfType("tls_cert_request"),
            "tls:index/locallySignedCert:LocallySignedCert": TfType("tls_locally_signed_cert"),
        }, {"tls": "registry.terraform.io/hashicorp/tls"}, {
            "docker-build:index:Image": "an image build and push at deploy time; Terraform has no resource of that "
                                        "model",
            "command:local:Command": "a local command run at deploy time (Terraform: a provisioner, which scanners "
                                     "skip)"}

    def replacement_rules(self) -> tuple[Mapping[str, Any], tuple[tuple[str, Any], ...]]:
        return {}, ()

    # The rest of the Platform contract the engines read from a type's owner, as a platform that says nothing.
    def mock_call(self, token: str, args: Mapping[str, Any], ctx: Any) -> dict[str, Any] | None:
        return None

    def mock_location(self, config: Mapping[str, str]) -> tuple[str, str]:
        return "", ""

    def replacement_note(self, token: str) -> str | None:
        return None

    def deletes_before_replace(self, token: str) -> bool:
        return False

    def summary_fields(self) -> Mapping[str, tuple[str, ...]]:
        return {}

    def tag_field(self, token: str) -> tuple[str, ...] | None:
        return None  # docker-build's `tags` are image names, not labels; tls resources live in state, unlabeled


SHARED = SharedTypes()
