"""The vocabulary policy rules are written in: a rule (data and a check), the plan it checks, what it finds, and the
helpers rules share for reading resources in the provider's wire format.

A rule is data (id, description, severity, mandatory or advisory, the fix, the Checkov id a security reviewer
knows from Terraform where one exists) and a pure function over the plan's resources. Where the platform makes
the rule impossible for a resource, the rule does not skip it silently: it reports an exemption that says why.

Who declares rules: components/policies.py the generic ones (every stack), each platform's
components/<platform>/policies.py its own (handed to the registry by `Platform.policy_rules`). Each such module
keeps its own list, in the order its rules are declared, and fills it with the decorator `rule_decorator(list)`
returns, so there is no global list here and a module's rules are exactly those it declared:

    RULES: list[Rule] = []
    rule = rule_decorator(RULES)

    @rule("x-encrypted", "Disks are encrypted.", "high", "Set encrypted: true.")
    def _encrypted(plan: Plan) -> Iterator[tuple[Resource, str]]: ...

Pure: no provider SDK, no registry, no config (`make lint`'s import contracts keep it so).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from .cost_rules import Estimate, Resource

Severity = Literal["critical", "high", "medium", "low"]
OPEN = ("0.0.0.0/0", "::/0")
"""The address ranges that mean "the internet" in an ingress rule."""


@dataclass(frozen=True)
class Finding:
    rule: str
    resource: str | None
    message: str
    exempt: str | None = None
    """Why the platform makes the rule impossible here: reported, not a violation."""


@dataclass(frozen=True)
class Plan:
    resources: list[Resource]
    estimate: Estimate | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    """The stack outputs (`tier`, the environment's class, among them)."""

    @property
    def production(self) -> bool:
        return self.outputs.get("tier") == "production"

    def of(self, *types: str) -> Iterator[Resource]:
        return (r for r in self.resources if r.type in types)

    def beside(self, r: Resource, token: str) -> list[Resource]:
        """Resources of type `token` in the same component as `r`."""
        return [s for s in self.resources if s.component == r.component and s.type == token]


Check = Callable[[Plan], Iterable[Any]]
"""A rule's check: yields (resource or None for the stack, message) pairs, or `Finding`s (exemptions)."""


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    severity: Severity
    mandatory: bool
    fix: str
    check: Callable[[Plan], Iterable[tuple[Resource | None, str] | Finding]]
    checkov: tuple[str, ...] = ()
    """The same rule's ids in Checkov (Terraform and Kubernetes scanners), where it has one."""

    def run(self, plan: Plan) -> list[Finding]:
        out = []
        for item in self.check(plan):
            if isinstance(item, Finding):
                out.append(item)
            else:
                r, message = item
                out.append(Finding(self.id, r.name if r else None, message))
        return out


BootScript = Callable[[dict[str, Any]], Any]
"""Reads the script a resource (an instance template) runs at boot from its inputs, as the instance sees it (user
data decoded): what the generic rule `secrets-not-in-user-data` searches for tokens (`Platform.boot_scripts`)."""
ContainerEnvironment = Callable[[dict[str, Any]], Iterable[tuple[str, Any]]]
"""Reads the (name, value) environment variables of the containers a resource runs from its inputs: what the
generic rule `secrets-not-in-container-env` searches for tokens (`Platform.container_environments`)."""


class RuleDecorator(Protocol):
    """`@rule(id, description, severity, fix, checkov=..., mandatory=...)` over a check function."""

    def __call__(self, id: str, description: str, severity: Severity, fix: str, *, checkov: tuple[str, ...] = (),
                 mandatory: bool = True) -> Callable[[Check], Check]: ...


def rule_decorator(into: list[Rule]) -> RuleDecorator:
    """The `@rule(...)` decorator of one module: each check it decorates becomes a `Rule` appended to `into` (the
    module's list, in declaration order); the function itself is returned unchanged."""

    def rule(id: str, description: str, severity: Severity, fix: str, *, checkov: tuple[str, ...] = (),
             mandatory: bool = True) -> Callable[[Check], Check]:
        def register(check: Check) -> Check:
            into.append(Rule(id, description, severity, mandatory, fix, check, checkov))
            return check
        return register
    return rule


def dig(data: Any, *path: str | int) -> Any:
    """The value at `path` (keys of objects, indexes of lists) inside `data`, or None where the path ends."""
    for part in path:
        if isinstance(part, int):
            data = data[part] if isinstance(data, list) and len(data) > part else None
        else:
            data = data.get(part) if isinstance(data, dict) else None
    return data


def truthy(value: Any) -> bool:
    """Booleans as the providers' wire format has them: some are strings ("true", "TRUE")."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def json_doc(value: Any) -> dict[str, Any]:
    """A JSON document an input holds (an IAM policy), as a string or already parsed; {} for anything else."""
    if isinstance(value, str) and value.startswith("{"):
        return json.loads(value)
    return value if isinstance(value, dict) else {}


def listed(value: Any) -> list[Any]:
    """A value the wire format gives as one item or a list of them (an IAM statement's Action), as a list."""
    return value if isinstance(value, list) else [value]
