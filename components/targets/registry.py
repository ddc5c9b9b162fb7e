"""The one list of target kinds and platforms, and the tables merged from them. Add a kind or a platform with one
call (`register`; the shipped ones are listed below) and nothing else changes: config sections and choices, error
texts, `selfhost size`, prices, cost, quota and replacement rules, policy rules, mocks, tag fields, Terraform-plan
types and stack outputs all read this registry.

Every table keyed by resource type has one owner per type, and every policy rule id one platform, or the merge raises
naming both.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from ..catalog import pricing
from ..catalog import quotas as quota_table
from ..sizing_options import Host, Lookup
from .aws import AWS
from .aws_pool import AwsPool
from .azure import AZURE
from .azure_ml import AzureMl
from .base import Platform, TargetKind
from .cluster import CLUSTER
from .gcp import GCP
from .gcp_pool import GcpPool
from .hf_endpoint import HfEndpoint
from .huggingface import HUGGINGFACE
from .kubernetes import Kubernetes
from .sagemaker import SageMaker
from .shared import SHARED
from .vertex import Vertex

if TYPE_CHECKING:
    from ..policy import BootScript, ContainerEnvironment
    from ..policy import Rule as PolicyRule

PLATFORMS: dict[str, Platform] = {}
KINDS: dict[str, TargetKind] = {}


def register(*items: Platform | TargetKind) -> None:
    """Add platforms and kinds (a platform before the kinds that stand on it). The merged tables are rebuilt, and
    a clash (a name taken, a type with two owners) raises here, before anything uses them."""
    for item in items:
        if isinstance(item, Platform):
            if item.name in PLATFORMS:
                raise ValueError(f"platform {item.name!r} is registered twice")
            PLATFORMS[item.name] = item
            if item.price_file is not None:
                pricing.register(item.name, item.price_file)
            if item.quota_file is not None:
                quota_table.register(item.quota_file)
        else:
            if item.kind in KINDS:
                raise ValueError(f"kind {item.kind!r} is registered twice")
            if item.platform not in PLATFORMS:
                raise ValueError(f"kind {item.kind!r} stands on platform {item.platform!r}, which is not registered; "
                                 f"registered: {', '.join(PLATFORMS)}")
            KINDS[item.kind] = item
    _clear()
    # Every table keyed by type is merged now, so a second owner of a type stops the registration here.
    for table in (cost_rules, quota_rules, free_types, mocks, terraform, replacement_rules, summary_fields,
                  policy_rules, scanner_notes, boot_scripts, container_environments):
        table()


def kind_of(target: Any) -> TargetKind:
    return KINDS[target.kind]


def platform_named(name: str) -> Platform | None:
    """The platform of that name or alias (`selfhost size --cloud`)."""
    return PLATFORMS.get(name) or next((p for p in PLATFORMS.values() if name in p.aliases), None)


def _owners() -> tuple[Any, ...]:
    return (*PLATFORMS.values(), SHARED, *KINDS.values())


def _type_owners() -> tuple[Any, ...]:
    """The owners of provider packages: the platforms and the shared tools."""
    return (*PLATFORMS.values(), SHARED)


def _merge(tables: Iterable[tuple[Any, Mapping[str, Any] | list[tuple[str, Any]]]], what: str) -> dict[str, Any]:
    """One table from every owner's (a mapping, or a list of (key, value) pairs, where one owner may repeat a key);
    a key two owners give (or one, twice) raises, naming both."""
    merged: dict[str, Any] = {}
    owner_of: dict[str, str] = {}
    for owner, table in tables:
        name = getattr(owner, "kind", None) or owner.name
        for key, value in (table if isinstance(table, list) else table.items()):
            if key in merged:
                raise ValueError(f"{key} has two {what}: {owner_of[key]} and {name}")
            merged[key], owner_of[key] = value, name
    return merged


@cache
def cost_rules() -> dict[str, Any]:
    """Resource type -> pricing rule, from every platform and kind."""
    return _merge(((o, o.cost_rules) for o in _owners()), "cost rules")


@cache
def quota_rules() -> dict[str, Any]:
    """Resource type -> quota rule, from every platform (its foundation's and its router's resources) and every
    kind."""
    return _merge([*((p, p.quota_rules) for p in PLATFORMS.values()),
                   *((k, k.quota_rules) for k in KINDS.values())], "quota rules")


@cache
def free_types() -> frozenset[str]:
    """Resource types that cost nothing by themselves; a type is free by one owner's word, and never also priced."""
    free = _merge(((o, dict.fromkeys(o.free_types, True)) for o in _owners()), "owners saying it is free")
    priced = set(free) & set(cost_rules())
    if priced:
        raise ValueError(f"{sorted(priced)[0]} is both priced and free")
    return frozenset(free)


@cache
def mocks() -> dict[str, Any]:
    """Resource type (or `<package>:` for a whole package) -> its mock, from every platform and the shared tools."""
    return _merge(((o, o.mocks()) for o in _type_owners()), "mocks")


@cache
def terraform() -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """Pulumi type -> TfType, Terraform provider -> its address, and type -> why it has no Terraform resource."""
    tables = [(o, o.terraform()) for o in _type_owners()]
    types = _merge(((o, t[0]) for o, t in tables), "Terraform mappings")
    not_mapped = _merge(((o, t[2]) for o, t in tables), "not-mapped reasons")
    both = set(types) & set(not_mapped)
    if both:
        raise ValueError(f"{sorted(both)[0]} is both mapped and not mapped")
    providers: dict[str, str] = {}
    for _, (_, addresses, _) in tables:
        for name, address in addresses.items():
            if providers.setdefault(name, address) != address:
                raise ValueError(f"Terraform provider {name} has two addresses: {providers[name]} and {address}")
    return types, providers, not_mapped


@cache
def replacement_rules() -> tuple[dict[str, Any], tuple[tuple[str, Any], ...]]:
    """Type -> which inputs replace it, and (type prefix, rule) fallbacks, from every platform."""
    tables = [(o, o.replacement_rules()) for o in _type_owners()]
    exact = _merge(((o, t[0]) for o, t in tables), "replacement rules")
    prefixes = _merge(((o, dict(t[1])) for o, t in tables), "replacement rule prefixes")
    # The longest prefix first, so a package's special case wins over its general rule.
    return exact, tuple(sorted(prefixes.items(), key=lambda kv: -len(kv[0])))


@cache
def summary_fields() -> dict[str, tuple[str, ...]]:
    """Type -> the inputs `selfhost preview` shows beside a resource of that type, from every platform."""
    return _merge(((o, o.summary_fields()) for o in _type_owners()), "summary fields")


@cache
def policy_rules() -> dict[str, PolicyRule]:
    """Rule id -> policy rule, from every platform, in registry order (each platform's in its own order);
    components/policies.py puts the generic rules before them."""
    return _merge(((p, [(r.id, r) for r in p.policy_rules()]) for p in PLATFORMS.values()), "policy rules")


@cache
def scanner_notes() -> dict[str, str]:
    """Checkov check id -> why its findings stand though no rule reports them, from every platform."""
    return _merge(((p, p.scanner_notes()) for p in PLATFORMS.values()), "scanner notes")


@cache
def boot_scripts() -> dict[str, BootScript]:
    """Type -> how to read the boot script a resource of that type runs, from every platform."""
    return _merge(((p, p.boot_scripts()) for p in PLATFORMS.values()), "boot script readers")


@cache
def container_environments() -> dict[str, ContainerEnvironment]:
    """Type -> how to read its containers' environment variables, from every platform."""
    return _merge(((p, p.container_environments()) for p in PLATFORMS.values()), "container environment readers")


def owner_of_type(token: str) -> Any | None:
    """The platform (or the shared tools) whose package the resource type belongs to."""
    best, length = None, -1
    for owner in _type_owners():
        for package in owner.packages:
            if (token.startswith(f"{package}:") or token.startswith(f"pulumi:providers:{package}")) \
                    and len(package) > length:
                best, length = owner, len(package)
    return best


@cache
def tag_field(token: str) -> tuple[str, ...] | None:
    """Where a resource of that type carries the environment's tags (its platform says), or None."""
    owner = owner_of_type(token)
    return owner.tag_field(token) if owner is not None else None


def check_quota_table(rows: Iterable[Any] | None = None) -> None:
    """Raise ValueError unless every row of the quota table (components/catalog/quotas.py, default: all of it)
    names a registered platform and one of that platform's `quota_services`."""
    if rows is None:
        from ..catalog.quotas import QUOTAS

        rows = QUOTAS.values()
    for row in rows:
        platform = PLATFORMS.get(row.platform)
        if platform is None:
            raise ValueError(f"{row.need}: platform {row.platform!r} is not registered; registered: "
                             f"{', '.join(PLATFORMS)}")
        if row.service not in platform.quota_services:
            raise ValueError(f"{row.need}: service {row.service!r} is not one of platform {row.platform!r}'s "
                             f"({', '.join(platform.quota_services) or 'none'})")


def _clear() -> None:
    for table in (cost_rules, quota_rules, free_types, mocks, terraform, replacement_rules, tag_field,
                  summary_fields, policy_rules, scanner_notes, boot_scripts, container_environments):
        table.cache_clear()


def hosts(clouds: Iterable[str], regions: Mapping[str, str], lookup: Lookup,
          owner_rates: Mapping[str, float] | None = None) -> list[Host]:
    """Hosts of every target kind on the given platforms, each in the platform's region from `regions` (default:
    the platform's `default_region`). A platform priced at the owner's rates (`Platform.owner_rates`) is priced
    from `owner_rates` (`gpuHourUsd`, `nodeHourUsd`: `selfhost size --gpu-hour-usd`)."""
    from ..cost_rules import with_owner_rates

    out: list[Host] = []
    for name in clouds:
        platform = PLATFORMS[name]
        priced = lookup
        if platform.owner_rates:
            priced = with_owner_rates(lookup, {name: {"ownerRates": {
                "basis": "configured $/GPU-hour and $/node-hour", "asOf": "", **(owner_rates or {})}}})
        region = regions.get(name) or platform.default_region or ""
        for kind in KINDS.values():
            if kind.platform == name:
                out += kind.hosts(region, priced)
    return out


def size_problems(clouds: Iterable[str], owner_rates: Mapping[str, float] | None) -> list[str]:
    """What `selfhost size` lacks to price the chosen platforms."""
    return [f"--cloud {name} is priced at the owner's rates: give --gpu-hour-usd (and optionally --node-hour-usd)"
            for name in clouds if PLATFORMS[name].owner_rates and not (owner_rates or {}).get("gpuHourUsd")]


PLUGINS_VARIABLE = "SELFHOST_PLUGINS"
"""Python modules (comma-separated) imported after the shipped platforms and kinds: each registers its own with
one `register(...)` call. How a team adds a platform or kind of its own without editing this project (the
program, the policy pack and every `selfhost` command read the same variable)."""


def _load_plugins() -> None:
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_VARIABLE, "").split(","))):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ImportError(f"{PLUGINS_VARIABLE}: cannot import {module!r} ({exc}); allowed: importable "
                              "module names, comma-separated") from exc


register(AWS, GCP, AZURE, CLUSTER, HUGGINGFACE, SageMaker(), Vertex(), AwsPool(), GcpPool(), Kubernetes(), HfEndpoint(),
         AzureMl())
_load_plugins()
