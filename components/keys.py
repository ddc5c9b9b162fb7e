"""API keys a component generates for its callers: random, kept only in the stack's state (a secret), in the form
OpenAI clients and LiteLLM expect (`sk-` and 48 letters and digits)."""

from __future__ import annotations

import re
from collections.abc import Iterable

import pulumi
import pulumi_random as random


def slug(text: str) -> str:
    """A resource or child name's part from any text: lower case, runs of other characters one `-`
    (`caller-web.key` -> `caller-web-key`, `SELFHOST_ROUTER_MASTER_KEY` -> `selfhost-router-master-key`)."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")


def api_keys(name: str, secrets: Iterable[str], parent: pulumi.Resource) -> dict[str, pulumi.Output[str]]:
    """One key per secret name, each a child of `parent` named `<name>-<secret name, slugged>` (`caller-web.key` ->
    `<name>-caller-web-key`)."""
    keys: dict[str, pulumi.Output[str]] = {}
    for secret in secrets:
        password = random.RandomPassword(f"{name}-{slug(secret)}", length=48, special=False,
                                         opts=pulumi.ResourceOptions(parent=parent))
        key: pulumi.Output[str] = password.result.apply(lambda v: f"sk-{v}")
        keys[secret] = pulumi.Output.secret(key)
    return keys
