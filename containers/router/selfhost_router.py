"""The router's callers, inside the LiteLLM proxy: who may call it, within which limits, and one usage line per
finished request. Shipped next to config.yaml (components/litellm.py `router_module_text`), which names it:
`general_settings.custom_auth: selfhost_router.user_api_key_auth` and
`litellm_settings.callbacks: [selfhost_router.usage_logger, prometheus]`.

No database: LiteLLM's own virtual keys need its Postgres. The callers (id, limits, and where the key is) are in
config.yaml under `general_settings.selfhost_callers`; the proxy resolves each caller's `os.environ/` key reference
when it loads the config, as it does the backends' keys, so a key is a mounted file or an environment variable,
never in the config. The identity
this returns carries the caller's limits; the proxy's default rate limiter (proxy/hooks/parallel_request_limiter_v3
.py, the `parallel_request_limiter` hook, keyed by the identity's `api_key`) enforces them in memory, per replica,
and answers 429 past them.

A caller's key opens the model routes only (litellm's own list of them: RouteChecks.is_llm_api_route); the master
key, the operator's, opens everything else (/metrics, the proxy's admin routes) and never the models, so every
request that costs tokens is a caller's, counted and limited, and no caller reaches an admin route: the identity
returned here skips litellm's own role checks (proxy/auth/user_api_key_auth.py 1278-1292).
"""

# No `from __future__ import annotations`: litellm loads this file without registering it in sys.modules
# (proxy/types_utils/utils.py get_instance_fn, 43-50), and dataclasses resolve string annotations through it.
import hmac
import json
import sys
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from litellm.integrations.custom_logger import CustomLogger
from litellm.proxy._types import LitellmUserRoles, ProxyErrorTypes, ProxyException, UserAPIKeyAuth
from litellm.proxy.auth.route_checks import RouteChecks
from litellm.secret_managers.main import get_secret

SETTINGS_KEY = "selfhost_callers"
"""Where config.yaml lists the callers: general_settings.selfhost_callers, {id: {key, rpm_limit, ...}}."""
IDENTITY_PREFIX = "selfhost-caller:"
"""The identity's `api_key`: the rate limiter's counter key and what litellm logs as the key's hash. Not the key
itself, and not `sk-...` (which UserAPIKeyAuth would hash into an opaque value)."""


@dataclass(frozen=True)
class Caller:
    """One caller of the router, its key resolved."""

    id: str
    key: str
    rpm_limit: int | None
    tpm_limit: int | None
    max_parallel_requests: int | None


_callers: tuple[Caller, ...] | None = None


def _load_callers() -> tuple[Caller, ...]:
    """The callers of config.yaml, read once (a secret changes with a restart, as the backends' keys do). The proxy
    has already replaced each `os.environ/` key reference by its value when it loaded the config
    (proxy_server.py _check_for_os_environ_vars, 4397-4420, over the whole config). A caller whose key could not be
    read fails every request with a 500 that says so, rather than letting anyone in."""
    global _callers
    if _callers is None:
        from litellm.proxy.proxy_server import general_settings

        declared = general_settings.get(SETTINGS_KEY) or {}
        callers = []
        for caller_id, spec in declared.items():
            key = spec.get("key")
            if isinstance(key, str) and key.startswith("os.environ/"):
                key = get_secret(key)
            if not isinstance(key, str) or not key or key.startswith("os.environ/"):
                raise _refuse(f"the router's configuration has no key for caller {caller_id!r}", 500)
            callers.append(Caller(caller_id, key, spec.get("rpm_limit"), spec.get("tpm_limit"),
                                  spec.get("max_parallel_requests")))
        _callers = tuple(callers)
    return _callers


def _refuse(message: str, code: int = 401) -> ProxyException:
    # A ProxyException passes litellm's auth error handler as it is; any other exception makes it import prisma
    # (auth/auth_exception_handler.py 177-180, db/exception_handler.py 82), which this router does not have: 500.
    return ProxyException(message=message, type=ProxyErrorTypes.auth_error, param="api_key", code=code)


def _matches(candidate: str, key: str) -> bool:
    # Constant time, so the time to refuse says nothing about how much of a key was right.
    return hmac.compare_digest(candidate.encode(), key.encode())


async def user_api_key_auth(request: Request, api_key: str) -> UserAPIKeyAuth:
    """LiteLLM's custom_auth hook (proxy/auth/user_api_key_auth.py, `user_custom_auth`): the caller whose key
    was sent (`Authorization: Bearer <key>`, the `Bearer ` already stripped), with its limits; 401 otherwise. Every
    caller's key is compared, whichever matches, so the time taken does not depend on which one did."""
    from litellm.proxy.proxy_server import master_key

    candidate = (api_key or "").removeprefix("Bearer ").strip()
    if not candidate:
        raise _refuse("no API key: send `Authorization: Bearer <your key>`")
    found = None
    for caller in _load_callers():
        if _matches(candidate, caller.key) and found is None:
            found = caller
    models = RouteChecks.is_llm_api_route(request.url.path)
    if found is not None:
        if not models:
            raise _refuse("a caller's key opens the model routes only", 403)
        return UserAPIKeyAuth(api_key=f"{IDENTITY_PREFIX}{found.id}", key_alias=found.id, user_id=found.id,
                              rpm_limit=found.rpm_limit, tpm_limit=found.tpm_limit,
                              max_parallel_requests=found.max_parallel_requests)
    if isinstance(master_key, str) and master_key and _matches(candidate, master_key):
        if models:
            raise _refuse("the master key is for administration; call the models with a caller's key", 403)
        return UserAPIKeyAuth(api_key=master_key, user_role=LitellmUserRoles.PROXY_ADMIN, key_alias="admin")
    raise _refuse("invalid API key")


class UsageLogger(CustomLogger):
    """One JSON line on stdout per finished request: the caller, the model group, the deployment that answered,
    tokens, latency and status. Never the messages: only counts and names are read from litellm's standard
    logging payload."""

    async def async_log_success_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any,
                                      end_time: Any) -> None:
        self._write(kwargs, "success")

    async def async_log_failure_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any,
                                      end_time: Any) -> None:
        self._write(kwargs, "failure")

    @staticmethod
    def _write(kwargs: dict[str, Any], status: str) -> None:
        payload = kwargs.get("standard_logging_object") or {}
        metadata = payload.get("metadata") or {}
        line = {
            "event": "selfhost_router_usage",
            "time": time.time(),
            "caller": metadata.get("user_api_key_alias"),
            "model_group": payload.get("model_group"),
            "deployment": payload.get("model_id"),
            "prompt_tokens": payload.get("prompt_tokens"),
            "completion_tokens": payload.get("completion_tokens"),
            "latency_seconds": payload.get("response_time"),
            "status": payload.get("status") or status,
            "stream": payload.get("stream"),
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()


usage_logger = UsageLogger()
