"""The LiteLLM proxy's configuration, the router every platform's router component runs: its port and health
routes, where its keys are mounted, and its config.yaml (`litellm_config`) for the stack's endpoint records
(`backends_from_endpoints`). Keys are never in the config, nor in the container's environment: each backend's key,
and the router's own master key, are files of a mounted secret, which the proxy reads when it loads its config
(`secret_ref`).

Pure: no Pulumi, no litellm import (the project's environment cannot import litellm). How the proxy honours each
setting was read in litellm 1.99.4's own source (`make litellm` installs it in .tools/litellm); the comments name
the lines. tests/adapter/test_hybrid_router.py runs the generated config against that proxy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PORT = 4000
"""The proxy's port (LiteLLM's default; its image listens there)."""
LIVENESS_ROUTE = "/health/liveliness"
READINESS_ROUTE = "/health/readiness"
SECRETS_DIR = "/run/secrets/selfhost-router"
"""Where the router's keys are mounted: under /run/secrets, where litellm reads secret files from by default
(secret_managers/main.py _DEFAULT_OIDC_ALLOWED_CREDENTIAL_DIRS, 49; LITELLM_OIDC_ALLOWED_CREDENTIAL_DIRS moves it)."""
MASTER_KEY_FILE = "master_key"
# The endpoint record's `auth` values the router can speak, and the key each needs: our adapter's API key, or a
# Hugging Face token (an Inference Endpoint takes it as the bearer key). It runs on the stack's own cluster, so
# targets that answer only inside a cloud network (`vpc-only`, private links) are out of its reach, and IAM-signed
# kinds (aws-sigv4, gcp-oauth) need credentials the OpenAI client cannot send.
ROUTABLE_AUTH = ("api-key", "hf-token")


def secret_ref(path: str) -> str:
    """How the config names a secret kept in the file `path`: litellm resolves `os.environ/` values through
    get_secret when it loads the config (proxy_server.py 4420 and 5240 for the master key; the model list's
    keys: 5440-5442), and get_secret reads `oidc/file/<absolute path>` from the file (secret_managers/main.py
    197-201 and 292-297), as is, within the allowed directories. So the key is neither in the config nor in the
    process's environment."""
    if not path.startswith("/"):
        raise ValueError(f"secret file {path!r} is not an absolute path")
    return f"os.environ/oidc/file/{path}"


def key_file(target: str) -> str:
    """The file name of a backend's key in the router's Secret: `onprem-gpu` -> `onprem-gpu.key`."""
    return f"{target}.key"


@dataclass(frozen=True)
class Backend:
    """One deployment behind the router."""

    name: str
    """Its name (the target's): also the router's deployment id, which the proxy returns in `x-litellm-model-id`."""
    api_base: str
    """An OpenAI-compatible base URL, ending in /v1."""
    served_model: str
    """The model name the backend serves (our adapter: the Hugging Face id)."""
    api_key_file: str
    """The absolute path of the file the router reads the backend's key from."""
    priority: int = 1
    """1 is used first; a higher number only while every lower one fails or is cooling down."""

    def __post_init__(self) -> None:
        problems = []
        if not self.api_base.rstrip("/").endswith("/v1"):
            problems.append(f"api_base {self.api_base!r} is not an OpenAI-compatible base URL ending in /v1")
        if self.priority < 1:
            problems.append(f"priority {self.priority} is below 1")
        if problems:
            raise ValueError(f"backend {self.name!r}: " + "; ".join(problems))


def backends_from_endpoints(endpoints: Mapping[str, Mapping[str, Any]], order: Sequence[str],
                            secrets_dir: str = SECRETS_DIR) -> list[Backend]:
    """The stack's endpoint records (resolved values, not Outputs) as backends, in `order`: the first target named
    has priority 1, the next 2, ... Every target in `order` must have a record with an `openaiBaseUrl` (or a
    `routerBaseUrl`, where a router on the cluster reaches it) and an `auth` the router can speak; all problems are
    reported together. Each backend's key is read from `secrets_dir`/`key_file(name)`."""
    problems, backends = [], []
    if len(set(order)) != len(order):
        problems.append(f"targets named twice in {list(order)}")
    for priority, name in enumerate(order, start=1):
        record = endpoints.get(name)
        if record is None:
            problems.append(f"{name}: no such endpoint (endpoints: {sorted(endpoints)})")
            continue
        auth, base = record.get("auth"), record.get("routerBaseUrl") or record.get("openaiBaseUrl")
        if auth not in ROUTABLE_AUTH:
            problems.append(f"{name}: auth {auth!r} cannot be routed to (allowed: {', '.join(ROUTABLE_AUTH)})")
        if not base:
            problems.append(f"{name}: no OpenAI-compatible base URL (openaiBaseUrl)")
        if auth in ROUTABLE_AUTH and base:
            backends.append(Backend(name=name, api_base=base, served_model=record["model"],
                                    api_key_file=f"{secrets_dir}/{key_file(name)}", priority=priority))
    if problems:
        raise ValueError("cannot route to: " + "; ".join(problems))
    return backends


def litellm_config(model_name: str, backends: Sequence[Backend], *, aliases: Sequence[str] = (),
                   master_key_file: str = f"{SECRETS_DIR}/{MASTER_KEY_FILE}", cooldown_seconds: float = 30.0,
                   allowed_fails: int = 1, num_retries: int = 1, timeout_seconds: float = 600.0) -> dict[str, Any]:
    """The LiteLLM proxy's config.yaml, as a dict, serving `model_name` (and its `aliases`) from `backends`.

    Every backend is a deployment of one model group, `model_name`, ordered by priority. A request goes to the
    lowest priority that is not cooling down; when it fails there (refused connection, 5xx, 429, timeout), it is
    retried within the same request, `num_retries` more times (on whatever is then first in line), then on each
    higher priority in turn: a backend's death loses no non-streamed request (a stream already under way cannot
    move). A backend other than the last is skipped once it has failed more than `allowed_fails` times within
    `cooldown_seconds`, for `cooldown_seconds` (for as long as its own Retry-After says, if it sent one: our
    adapter's 429 and 503 say 1 s); the last priority is never skipped: it is the last resort.
    `timeout_seconds` bounds one attempt, the whole answer: keep it above the longest generation."""
    if not backends:
        raise ValueError("no backends to route to")
    names = [b.name for b in backends]
    if len(set(names)) != len(names):
        raise ValueError(f"backend names are not unique: {names}")
    if cooldown_seconds <= 0 or timeout_seconds <= 0 or allowed_fails < 0 or num_retries < 0:
        raise ValueError("cooldown_seconds and timeout_seconds must be above 0, allowed_fails and num_retries at "
                         "least 0")
    last = max(b.priority for b in backends)
    # Line numbers below are litellm 1.99.4's (site-packages/litellm/...).
    return {
        "model_list": [_deployment(model_name, b, last, allowed_fails)
                       for b in sorted(backends, key=lambda b: (b.priority, b.name))],
        "router_settings": {
            # "simple-shuffle" picks at random among router.py async_get_healthy_deployments (11171-11314; its
            # async path: async_get_available_deployment, 11316-11386), which drops cooling deployments
            # (11230-11239) and then keeps only the lowest `order` left (11291-11294, utils.py
            # _get_order_filtered_deployments 4680-4702). That filter runs whatever `enable_pre_call_checks` says:
            # those checks (11259-11275, router.py _pre_call_checks 10709) filter by context window, rpm and
            # region only, so it is left off. Backends of one priority share its traffic.
            "routing_strategy": "simple-shuffle",
            # router.py async_function_with_retries (6651-6833): a failed attempt is retried `num_retries` times,
            # each retry picking a deployment anew and at once (no back-off while a healthy deployment is left:
            # _time_to_sleep_before_retry, 6984-7004). Then the order-based fallbacks
            # (async_function_with_fallbacks_common_utils, 6341-6392) try each higher `order` in turn, in the same
            # request, for any error but context-window and content-policy ones (they are not the backend's
            # fault). One retry keeps a single blip on-prem, or, while on-prem is away, on the cloud.
            "num_retries": num_retries,
            # How long a cooled deployment is skipped unless it said otherwise (router.py 666,
            # deployment_callback_on_failure 7238-7258: the deployment's own cooldown_time, then the error's
            # Retry-After, then this); also how long its failures are counted (cooldown_handlers.py
            # _should_cooldown_based_on_deployment_policy 162-171, should_cooldown_based_on_allowed_fails_policy
            # 548-597).
            "cooldown_time": cooldown_seconds,
            # One attempt's limit (router.py 693: without it litellm.request_timeout, 6000 s).
            "timeout": timeout_seconds,
            # Our short names for the model, as the adapter takes them (router.py model_group_alias).
            **({"model_group_alias": {alias: model_name for alias in aliases if alias != model_name}}
               if any(alias != model_name for alias in aliases) else {}),
        },
        "litellm_settings": {
            # The proxy's logs say which deployment failed and why, never the request's text.
            "turn_off_message_logging": True,
        },
        "general_settings": {
            # Read from its file when the proxy loads its config (secret_ref). Callers send
            # `Authorization: Bearer <that key>`.
            "master_key": secret_ref(master_key_file),
        },
    }


def _deployment(model_name: str, backend: Backend, last_priority: int, allowed_fails: int) -> dict[str, Any]:
    model_info: dict[str, Any] = {
        # A stable deployment id, kept as declared: the proxy names the backend that answered in the
        # `x-litellm-model-id` response header, and keeps cooldowns per id.
        "id": backend.name,
    }
    if backend.priority == last_priority:
        # Never cooled down: a cooldown time of 0 turns the cooldown logic off for the deployment
        # (cooldown_handlers.py _should_run_cooldown_logic 286-288, given the deployment's own cooldown_time by
        # router.py 7238-7254). Cooling the last resort would leave a request nothing to fall back to.
        model_info["cooldown_time"] = 0
    else:
        # Cooled down after more than `allowed_fails` failures in the window. Per deployment, not as
        # router_settings.allowed_fails: the router takes an allowed_fails equal to litellm's module default (3)
        # for unset (cooldown_handlers.py _is_allowed_fails_set_on_router 600-613) and then cools down by failure
        # rate instead (_should_cooldown_deployment 362-401: half the requests of the minute, at least 5); the
        # deployment's own count is read first (350-359, _get_deployment_cooldown_policy 91-112) and has no such
        # special value. A refused connection counts: litellm's OpenAI client reports it as InternalServerError
        # 500 "Connection error." (measured), not as the APIConnectionError that _is_cooldown_required (223-227)
        # exempts; so do 5xx, 401, 404, 408, 429 and timeouts (234-252).
        model_info["allowed_fails"] = allowed_fails
    return {
        "model_name": model_name,
        "litellm_params": {
            # openai/: litellm's OpenAI-compatible client, posting to api_base as given.
            "model": f"openai/{backend.served_model}",
            "api_base": backend.api_base.rstrip("/"),
            "api_key": secret_ref(backend.api_key_file),
            "order": backend.priority,
        },
        "model_info": model_info,
    }
