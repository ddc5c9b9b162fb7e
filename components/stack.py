"""Declares one environment from its validated config: each platform's foundation once, on demand, then every
target on it; the stack outputs are built from the targets' endpoint records, the same keys for every kind."""

from __future__ import annotations

from typing import Any

from .config import Environment
from .routing import ROUTER_PLATFORM
from .schema import StackSecrets
from .targets.base import Endpoint
from .targets.registry import PLATFORMS, kind_of


def cost_inputs(env: Environment) -> dict[str, Any]:
    """What the cost engine needs beside the resources: the usage profile, the budget and the platforms' own
    inputs (an owner's rates), as a stack output, so `selfhost cost` reads them from the previewed graph like
    everything else."""
    platforms = {name: inputs for name, platform in PLATFORMS.items()
                 if name in env.platforms_used and (inputs := platform.cost_inputs(env))}
    routing = {"routing": {
        # The order the router tries the targets in, by their components' names (the cost engine plans the
        # first for the load, the next for what it cannot serve), and the share of requests the user expects
        # past the first (null: from capacity).
        "order": [f"{env.name}-{name}" for name in env.router.order],
        "burstShare": env.router.burst_share}} if env.router else {}
    return {"usage": env.usage.wire(), "budgetMonthlyUsd": env.budget.monthly_usd,
            **({"platforms": platforms} if platforms else {}), **routing}


def declare_router(env: Environment, cluster: Any, backends: list[Endpoint]) -> dict[str, object]:
    """The router on the stack's cluster (validated: there is one) and its stack output: where callers reach it,
    the model they ask for, the order it tries the targets in, and its master key (a secret)."""
    from .k8s.cluster import labels_of
    from .k8s.router import Router, RouterArgs

    assert env.router is not None
    model = backends[0].model
    aliases = tuple(dict.fromkeys(m.name for m in env.models if m.id == model))
    router = Router(f"{env.name}-router", RouterArgs(
        environment=env.name, foundation=cluster, spec=env.router, model_id=model, aliases=aliases, backends=backends,
        labels=labels_of(env.all_tags)))
    return {"openaiBaseUrl": router.base_url, "inClusterUrl": router.in_cluster_url, "model": model,
            "aliases": list(aliases), "order": [b.name for b in backends], "namespace": router.namespace,
            "auth": "api-key", "masterKey": router.master_key}


def declare_environment(env: Environment, secrets: StackSecrets) -> dict[str, object]:
    """Declare every resource of `env` and return the stack outputs."""
    outputs: dict[str, object] = {"environment": env.name, "tier": env.tier}
    endpoints: dict[str, Endpoint] = {}
    foundations: dict[str, Any] = {}
    for name, platform in PLATFORMS.items():
        targets = [t for t in env.targets if kind_of(t).platform == name]
        if not targets:
            continue
        needs = frozenset().union(*(kind_of(t).platform_needs(t) for t in targets))
        foundations[name], foundation_outputs = platform.declare(env, needs, secrets)
        outputs.update(foundation_outputs)
        for target in targets:
            endpoints[target.name] = kind_of(target).declare(env, target, foundations[name], secrets.hf_token)
    outputs["endpoints"] = {name: endpoint.output() for name, endpoint in endpoints.items()}
    if env.router is not None:
        if ROUTER_PLATFORM not in foundations:  # a cluster that runs only the router
            foundations[ROUTER_PLATFORM], foundation_outputs = PLATFORMS[ROUTER_PLATFORM].declare(env, frozenset(),
                                                                                                secrets)
            outputs.update(foundation_outputs)
        outputs["router"] = declare_router(env, foundations[ROUTER_PLATFORM],
                                           [endpoints[n] for n in env.router.order])
    if env.allowed_gpus is not None:
        # What the policy pack checks the endpoints against (it reads the plan, not the config).
        outputs["policyInputs"] = {"allowedGpus": env.allowed_gpus}
    return outputs
