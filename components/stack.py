"""Declares one environment from its validated config: each platform's foundation once, on demand, then every
target on it; the stack outputs are built from the targets' endpoint records, the same keys for every kind."""

from __future__ import annotations

from typing import Any

import pulumi

from .config import Environment
from .targets.registry import PLATFORMS, kind_of


def regions(env: Environment) -> dict[str, str]:
    """Platform -> region of the environment, as the cost engine keys prices."""
    return {name: region for name, platform in PLATFORMS.items() if (region := platform.region(env))}


def cost_inputs(env: Environment) -> dict[str, object]:
    """What the cost engine needs beside the resources: the usage profile and the budget (a stack output, so
    `selfhost cost` reads them from the previewed graph like everything else)."""
    return {"usage": env.usage.wire(), "budgetMonthlyUsd": env.budget.monthly_usd}


def declare_environment(env: Environment, hf_token: pulumi.Output[str] | None) -> dict[str, object]:
    """Declare every resource of `env` and return the stack outputs."""
    outputs: dict[str, object] = {"environment": env.name}
    endpoints: dict[str, Any] = {}
    for name, platform in PLATFORMS.items():
        targets = [t for t in env.targets if kind_of(t).platform == name]
        if not targets:
            continue
        needs = frozenset().union(*(kind_of(t).platform_needs(t) for t in targets))
        foundation, foundation_outputs = platform.declare(env, needs, hf_token)
        outputs.update(foundation_outputs)
        for target in targets:
            endpoints[target.name] = kind_of(target).declare(env, target, foundation, hf_token).output()
    outputs["endpoints"] = endpoints
    return outputs
