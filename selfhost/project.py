"""Reads Pulumi.yaml and the stack files the way the Pulumi CLI hands them to a program."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.config import SECRET_PLACEHOLDER

# libyaml's parser (PyYAML's C extension, in its wheels) with the same safe constructor: the same documents, about
# a tenth of the pure-Python parser's time, which every preview pays once per stack file (twice under `--all`,
# where the stacks are grouped by platform before they run).
_LOADER = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader


class ProjectError(Exception):
    """A missing or malformed project or stack file."""


@dataclass(frozen=True)
class Project:
    root: Path
    name: str
    stack_dir: Path
    defaults: dict[str, Any]
    """Project-level config defaults from Pulumi.yaml's `config:` block, by short key."""

    def stacks(self) -> list[str]:
        return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in self.stack_dir.glob("Pulumi.*.yaml"))

    def stack_file(self, stack: str) -> Path:
        return self.stack_dir / f"Pulumi.{stack}.yaml"


def load_project(root: Path) -> Project:
    path = root / "Pulumi.yaml"
    if not path.is_file():
        raise ProjectError(f"no Pulumi.yaml in {root}")
    doc = _yaml(path)
    defaults = {k: v["default"] for k, v in (doc.get("config") or {}).items()
                if isinstance(v, dict) and "default" in v}
    return Project(root=root, name=doc["name"], stack_dir=root / doc.get("stackConfigDir", "."), defaults=defaults)


def stack_config(project: Project, stack: str) -> tuple[dict[str, str], list[str]]:
    """The config map and secret keys a program sees for `stack`: full keys ('ns:key'), values as strings
    (objects and arrays as JSON, as the CLI passes them). `secure:` values cannot be decrypted offline: they
    become placeholders and their keys are marked secret."""
    path = project.stack_file(stack)
    if not path.is_file():
        known = ", ".join(project.stacks()) or "none"
        raise ProjectError(f"no stack '{stack}': {path} does not exist; stacks: {known}")
    doc = _yaml(path)
    raw = {**{k: v for k, v in project.defaults.items()}, **(doc.get("config") or {})}
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in raw.items():
        full = key if ":" in key else f"{project.name}:{key}"
        value, secret = _unseal(value)
        if secret:
            secret_keys.append(full)
        config[full] = value if isinstance(value, str) else _pulumi_text(value)
    return config, secret_keys


def _yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(), Loader=_LOADER) or {}
    except yaml.YAMLError as exc:
        raise ProjectError(f"{path}: not valid YAML: {exc}") from None


def _unseal(value: Any) -> tuple[Any, bool]:
    """Replace every `{secure: ...}` with a placeholder; report whether any was found."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return SECRET_PLACEHOLDER, True
        pairs = {k: _unseal(v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(s for _, s in pairs.values())
    if isinstance(value, list):
        unsealed = [_unseal(v) for v in value]
        return [v for v, _ in unsealed], any(s for _, s in unsealed)
    return value, False


def _pulumi_text(value: Any) -> str:
    # The CLI passes booleans and numbers as their YAML spelling, structures as JSON.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value)
