"""Guardrails every plan must pass: the policy pack (policy/) runs them in `pulumi preview`, and
`selfhost check` runs them offline on the previewed graph. Pure functions over the captured resources."""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from .catalog.iam import ACTIONS_WITHOUT_RESOURCE_LEVEL, FORBIDDEN_ROLES
from .cost import Estimate, Resource

REQUIRED_TAGS = ("environment", "owner", "managed-by", "project")


@dataclass(frozen=True)
class Violation:
    policy: str
    resource: str | None
    message: str


def budget(est: Estimate) -> list[Violation]:
    if not est.over_budget:
        return []
    low, expected, high = est.total()
    return [Violation("monthly-budget", None,
                      f"expected monthly cost ${expected:,.2f} (min ${low:,.2f}, max ${high:,.2f}) is over the "
                      f"budget ${est.budget_monthly_usd:,.2f} (selfhost-llm:budget.monthlyUsd)")]


def least_privilege_iam(resources: Iterable[Resource]) -> list[Violation]:
    found = []
    for r in resources:
        if r.type in ("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy"):
            doc = r.inputs.get("policy")
            doc = json.loads(doc) if isinstance(doc, str) and doc.startswith("{") else doc
            for st in (doc or {}).get("Statement", []) if isinstance(doc, dict) else []:
                if st.get("Effect") != "Allow":
                    continue
                actions = st["Action"] if isinstance(st.get("Action"), list) else [st.get("Action")]
                targets = st["Resource"] if isinstance(st.get("Resource"), list) else [st.get("Resource")]
                wild = [a for a in actions if a and "*" in a]
                if wild:
                    found.append(Violation("least-privilege-iam", r.name, f"wildcard action {wild[0]}"))
                if "*" in targets and not set(actions) <= ACTIONS_WITHOUT_RESOURCE_LEVEL:
                    found.append(Violation("least-privilege-iam", r.name,
                                           f"Resource '*' for {sorted(set(actions) - ACTIONS_WITHOUT_RESOURCE_LEVEL)}, "
                                           "which AWS can scope to named resources"))
        if r.type.startswith("gcp:") and "iAM" in r.type and r.inputs.get("role") in FORBIDDEN_ROLES:
            found.append(Violation("least-privilege-iam", r.name, f"role {r.inputs['role']} is never granted"))
    return found


def environment_tags(resources: Iterable[Resource]) -> list[Violation]:
    found = []
    for r in resources:
        field = tag_field(r.type)
        if field is None:
            continue
        tags = r.inputs.get(field) or {}
        if isinstance(tags, list):  # an Auto Scaling group's tags: [{key, value, propagateAtLaunch}]
            tags = {t.get("key"): t.get("value") for t in tags if isinstance(t, dict)}
        missing = [t for t in REQUIRED_TAGS if t not in tags]
        if missing:
            found.append(Violation("environment-tags", r.name, f"{field} lack {', '.join(missing)}"))
    return found


@cache
def tag_field(token: str) -> str | None:
    """Where a resource type takes our tags: AWS `tags`, GCP `labels` / `userLabels`; None if it takes none (and
    for other providers, whose `tags` and `labels` are something else: docker-build's image names)."""
    try:
        pkg, module, name = token.split(":")
        if pkg not in ("aws", "gcp"):
            return None
        mod = importlib.import_module(f"pulumi_{pkg}" + (f".{module.split('/')[0]}" if module != "index" else ""))
        params = inspect.signature(getattr(mod, name)._internal_init).parameters
    except (ValueError, ImportError, AttributeError):
        return None
    for py, wire in (("tags", "tags"),) if pkg == "aws" else (("labels", "labels"), ("user_labels", "userLabels")):
        if py in params:
            return wire
    return None


def check_all(resources: list[Resource], est: Estimate) -> list[Violation]:
    return budget(est) + least_privilege_iam(resources) + environment_tags(resources)
