"""The one list of target kinds and platforms. Add a kind here (one line) and nothing else changes: config
choices, error texts, `selfhost size`, cost rules and stack outputs all read this registry."""

from __future__ import annotations

from typing import Any

from ..platforms import Aws, Cluster, Gcp, HuggingFace
from ..sizing_options import Host, Lookup
from .aws_pool import AwsPool
from .base import Platform, TargetKind
from .gcp_pool import GcpPool
from .hf_endpoint import HfEndpoint
from .kubernetes import Kubernetes, onprem_hosts
from .sagemaker import SageMaker
from .vertex import Vertex

PLATFORMS: dict[str, Platform] = {p.name: p for p in (Aws(), Gcp(), Cluster(), HuggingFace())}
KINDS: dict[str, TargetKind] = {k.kind: k for k in (SageMaker(), Vertex(), AwsPool(), GcpPool(), Kubernetes(),
                                                    HfEndpoint())}

# The region `selfhost size` prices each platform in unless told (Hugging Face's kind lists every vendor's).
DEFAULT_REGIONS = {"aws": "us-east-1", "gcp": "us-central1", "huggingface": "all"}


def kind_of(target: Any) -> TargetKind:
    return KINDS[target.kind]


def platform_of(target: Any) -> Platform:
    return PLATFORMS[kind_of(target).platform]


def _owners() -> tuple[Platform | TargetKind, ...]:
    return (*PLATFORMS.values(), *KINDS.values())


def cost_rules() -> dict[str, Any]:
    """Resource type -> pricing rule, from every platform and kind; a type has one owner."""
    rules: dict[str, Any] = {}
    for owner in _owners():
        for token, rule in owner.cost_rules.items():
            if token in rules:
                raise ValueError(f"{token} is priced twice (again by {type(owner).__name__})")
            rules[token] = rule
    return rules


def quota_rules() -> dict[str, Any]:
    """Resource type -> quota rule, from every kind; a type has one owner."""
    rules: dict[str, Any] = {}
    for kind in KINDS.values():
        for token, rule in kind.quota_rules.items():
            if token in rules:
                raise ValueError(f"{token} has two quota rules (again by {type(kind).__name__})")
            rules[token] = rule
    return rules


def free_types() -> frozenset[str]:
    """Resource types that cost nothing by themselves, from every platform and kind."""
    return frozenset().union(*(owner.free_types for owner in _owners()))


def hosts(clouds: tuple[str, ...], regions: dict[str, str], lookup: Lookup, onprem_gpu_hour_usd: float | None = None,
          onprem_node_hour_usd: float = 0.0) -> list[Host]:
    """Hosts of every target kind on the given platforms (components/targets/registry.py), in each platform's
    region (defaults: us-east-1, us-central1), plus `onprem`: GPU servers of every known GPU, priced from the
    given rates."""
    out: list[Host] = []
    for kind in KINDS.values():
        if kind.platform in clouds and kind.platform in DEFAULT_REGIONS:
            out += kind.hosts(regions.get(kind.platform) or DEFAULT_REGIONS[kind.platform], lookup)
    if "onprem" in clouds:
        out += onprem_hosts(onprem_gpu_hour_usd, onprem_node_hour_usd, "configured $/GPU-hour and $/node-hour")
    return out
