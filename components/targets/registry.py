"""The one list of target kinds and platforms. Add a kind here (one line) and nothing else changes: config
choices, error texts, `selfhost size`, cost rules and stack outputs all read this registry."""

from __future__ import annotations

from typing import Any

from ..platforms import Aws, Gcp
from .base import Platform, TargetKind
from .sagemaker import SageMaker
from .vertex import Vertex

PLATFORMS: dict[str, Platform] = {p.name: p for p in (Aws(), Gcp())}
KINDS: dict[str, TargetKind] = {k.kind: k for k in (SageMaker(), Vertex())}


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


def free_types() -> frozenset[str]:
    """Resource types that cost nothing by themselves, from every platform and kind."""
    return frozenset().union(*(owner.free_types for owner in _owners()))
