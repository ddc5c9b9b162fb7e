"""The vocabulary of `selfhost export` (selfhost/export.py is the engine): how a platform says which Terraform
resource each of its Pulumi types is (components/<platform>/terraform.py, returned by `Platform.terraform()`).

A Pulumi provider bridged from Terraform's takes each Terraform argument in camelCase, with two differences the
engine undoes: a nested block that holds at most one item is an object (Terraform: a list of one), and a repeatable
block has a plural name (`rules`; Terraform: `rule`), which `TfType.renames` maps back.

Pure: no provider SDK is imported here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TfType:
    """How one Pulumi type becomes a Terraform resource."""

    type: str
    renames: Mapping[str, str] = field(default_factory=dict)
    """Pulumi input (snake_case) -> Terraform argument, at any depth: the plural names of repeatable blocks."""
    maps: frozenset[str] = frozenset()
    """Map arguments of this type besides the engine's MAPS (those of every provider)."""
    drop: frozenset[str] = frozenset()
    """Top-level inputs Terraform has no argument for (snake_case)."""
    adapt: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    """Reshapes the Pulumi inputs first, where a rename is not enough."""
    manifest: bool = False
    """kubernetes_manifest: the whole object, as the Kubernetes API has it, is the `manifest` argument."""

    @property
    def provider(self) -> str:
        """The Terraform provider's name (`aws_s3_bucket` -> `aws`): a key of the platform's PROVIDERS."""
        return self.type.split("_", 1)[0]
