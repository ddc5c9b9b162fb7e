"""Declares one environment from its validated config: each platform's foundation once, on demand, then every
target on it; the stack outputs are built from the targets' endpoint records, the same keys for every kind."""

from __future__ import annotations

from typing import Any

from .config import Environment
from .schema import StackSecrets
from .targets.registry import PLATFORMS, kind_of


def regions(env: Environment) -> dict[str, str]:
    """Platform -> region of the environment, as the cost engine keys prices."""
    return {name: region for name, platform in PLATFORMS.items() if (region := platform.region(env))}


def cost_inputs(env: Environment) -> dict[str, Any]:
    """What the cost engine needs beside the resources: the usage profile, the budget and the platforms' own
    inputs (an owner's rates), as a stack output, so `selfhost cost` reads them from the previewed graph like
    everything else."""
    platforms = {name: inputs for name, platform in PLATFORMS.items()
                 if any(kind_of(t).platform == name for t in env.targets) and (inputs := platform.cost_inputs(env))}
    return {"usage": env.usage.wire(), "budgetMonthlyUsd": env.budget.monthly_usd,
            **({"platforms": platforms} if platforms else {})}


def declare_environment(env: Environment, secrets: StackSecrets) -> dict[str, object]:
    """Declare every resource of `env` and return the stack outputs."""
    outputs: dict[str, object] = {"environment": env.name, "tier": env.tier}
    endpoints: dict[str, Any] = {}
    for name, platform in PLATFORMS.items():
        targets = [t for t in env.targets if kind_of(t).platform == name]
        if not targets:
            continue
        needs = frozenset().union(*(kind_of(t).platform_needs(t) for t in targets))
        foundation, foundation_outputs = platform.declare(env, needs, secrets)
        outputs.update(foundation_outputs)
        for target in targets:
            endpoints[target.name] = kind_of(target).declare(env, target, foundation, secrets.hf_token).output()
    outputs["endpoints"] = endpoints
    if env.allowed_gpus is not None:
        # What the policy pack checks the endpoints against (it reads the plan, not the config).
        outputs["policyInputs"] = {"allowedGpus": env.allowed_gpus}
    return outputs
