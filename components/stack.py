"""Declares one environment from its validated config: each platform's foundation once, on demand, then every
target on it; the stack outputs are built from the targets' endpoint records, the same keys for every kind."""

from __future__ import annotations

from typing import Any

from .config import Environment
from .schema import StackSecrets
from .targets.base import Endpoint
from .targets.registry import PLATFORMS, kind_of


def cost_inputs(env: Environment) -> dict[str, Any]:
    """What the cost engine needs beside the resources: the usage profile, the budget, the platforms' own
    inputs (an owner's rates) and the LoRA adapters each target serves, as a stack output, so `selfhost cost` reads
    them from the previewed graph like everything else."""
    platforms = {name: inputs for name, platform in PLATFORMS.items()
                 if name in env.platforms_used and (inputs := platform.cost_inputs(env))}
    # The adapters each target's replicas serve beside its base model, by the target's component name (what the
    # engine knows a serving resource by): the report shows ten adapters on one endpoint as such, not as ten
    # endpoints. Absent without adapters, so stacks without them export what they did.
    adapters = {f"{env.name}-{t.name}": names for t in env.targets
                if (names := [a.name for a in env.model(t.model).adapters])}
    routing = {"routing": {
        # The order the router tries the targets in, by their components' names (the cost engine plans the
        # first for the load, the next for what it cannot serve), and the share of requests the user expects
        # past the first (null: from capacity).
        "order": [f"{env.name}-{name}" for name in env.router.order],
        "burstShare": env.router.burst_share}} if env.router else {}
    return {"usage": env.usage.wire(), "budgetMonthlyUsd": env.budget.monthly_usd,
            **({"platforms": platforms} if platforms else {}), **routing,
            **({"adapters": adapters} if adapters else {})}


def declare_router(env: Environment, foundation: Any, backends: list[Endpoint]) -> dict[str, object]:
    """The router on its platform (validated: it hosts routers and reaches every backend) and its stack output,
    the same keys on every platform: where callers reach it, the model they ask for, the order it tries the
    targets in, how callers authenticate, and their keys (secrets)."""
    from .router import ADMIN, router_runtime

    assert env.router is not None and env.router_platform is not None
    platform = PLATFORMS[env.router_platform]
    runtime, keys = router_runtime(env, backends)
    endpoint = platform.declare_router(env, foundation, runtime)
    generated = {who: endpoint.keys[secret] for who, secret in keys.items()}
    model = backends[0].model
    return {"platform": platform.name, "openaiBaseUrl": endpoint.base_url, "model": model,
            "aliases": list(dict.fromkeys(m.name for m in env.models if m.id == model)),
            "order": [b.name for b in backends], "auth": "api-key",
            "callerKeys": {who: key for who, key in generated.items() if who != ADMIN}, "adminKey": generated[ADMIN],
            **endpoint.details}


def router_needs(env: Environment) -> frozenset[str]:
    """What the router's platform's foundation must have for it (`Platform.router_needs`)."""
    platform = PLATFORMS[env.router_platform] if env.router_platform else None
    return (platform.router_needs or frozenset()) if platform else frozenset()


def declare_environment(env: Environment, secrets: StackSecrets) -> dict[str, object]:
    """Declare every resource of `env` and return the stack outputs."""
    outputs: dict[str, object] = {"environment": env.name, "tier": env.tier}
    endpoints: dict[str, Endpoint] = {}
    foundations: dict[str, Any] = {}
    for name, platform in PLATFORMS.items():
        targets = [t for t in env.targets if kind_of(t).platform == name]
        if not targets:
            continue
        needs = frozenset().union(*(kind_of(t).platform_needs(t) for t in targets),
                                  router_needs(env) if env.router_platform == name else frozenset())
        foundations[name], foundation_outputs = platform.declare(env, needs, secrets)
        outputs.update(foundation_outputs)
        for target in targets:
            endpoints[target.name] = kind_of(target).declare(env, target, foundations[name], secrets.hf_token)
    # What each serves (weights, adapters) beside the kind's record: the same keys for every kind, from the config.
    outputs["endpoints"] = {t.name: {**endpoints[t.name].output(), **env.model(t.model).served()}
                            for t in env.targets if t.name in endpoints}
    if env.router is not None and env.router_platform is not None:
        where = env.router_platform
        if where not in foundations:  # a platform that runs only the router
            foundations[where], foundation_outputs = PLATFORMS[where].declare(env, router_needs(env), secrets)
            outputs.update(foundation_outputs)
        outputs["router"] = declare_router(env, foundations[where], [endpoints[n] for n in env.router.order])
    if env.allowed_gpus is not None:
        # What the policy pack checks the endpoints against (it reads the plan, not the config).
        outputs["policyInputs"] = {"allowedGpus": env.allowed_gpus}
    return outputs
