"""The LiteLLM proxy's configuration, the router every platform's router component runs: its port and health
routes, where its keys are mounted, and its config.yaml (`litellm_config`) for the stack's endpoint records
(`backends_from_endpoints`). Keys are never in the config: each backend's key, each caller's and the router's own
master key are named by a `SecretSource` (files of a mounted secret on Kubernetes and Cloud Run, environment
variables the ECS agent fills on AWS), which the proxy resolves when it loads its config. Backends are our
OpenAI-compatible targets (`Backend`), SageMaker endpoints (`SageMakerBackend`, signed with the platform's AWS
credentials) and Vertex AI endpoints (`VertexBackend`, which our adapter cannot answer yet: see there). Callers
(`Caller`) each have their own key and limits, checked by the custom auth module shipped next to config.yaml
(`ROUTER_MODULE`, containers/router/selfhost_router.py).

Pure: no Pulumi, no litellm import (the project's environment cannot import litellm). How the proxy honours each
setting was read in litellm 1.99.4's own source (`make litellm` installs it in .tools/litellm); the comments name
the lines. tests/adapter/test_hybrid_router.py and test_cloud_router.py run the generated configs against that
proxy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

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


@dataclass(frozen=True)
class SecretSource:
    """Where the platform puts the router's secrets, and so how config.yaml names one: `files(dir)`, one file per
    secret in `dir` (a Kubernetes Secret or Cloud Run's Secret Manager volume), or `environment(prefix)`, one
    variable per secret (ECS fills them from Secrets Manager when the task starts). Either way litellm's
    get_secret resolves the `os.environ/` reference when it loads the config, and the value is not in the config."""

    kind: Literal["files", "environment"]
    location: str
    """The directory (absolute) of the files, or the prefix of the variables."""

    def __post_init__(self) -> None:
        if self.kind == "files" and not self.location.startswith("/"):
            raise ValueError(f"secrets directory {self.location!r} is not an absolute path")
        if self.kind == "environment" and not re.fullmatch(r"[A-Z][A-Z0-9_]*|", self.location):
            raise ValueError(f"environment prefix {self.location!r} is not upper-case letters, digits and _")

    @classmethod
    def files(cls, directory: str = SECRETS_DIR) -> SecretSource:
        return cls("files", directory.rstrip("/") or "/")

    @classmethod
    def environment(cls, prefix: str = "") -> SecretSource:
        return cls("environment", prefix)

    def variable(self, name: str) -> str:
        """The environment variable holding secret `name`: `onprem-gpu.key` -> `<PREFIX>ONPREM_GPU_KEY`."""
        return self.location + re.sub(r"[^A-Z0-9]", "_", name.upper())

    def ref(self, name: str) -> str:
        """How config.yaml names secret `name`: get_secret reads `oidc/file/<path>` from the file (see
        `secret_ref`), and any other `os.environ/<NAME>` from the process's environment (secret_managers/main.py
        get_secret, 197-198)."""
        if self.kind == "files":
            return secret_ref(f"{self.location}/{name}")
        return f"os.environ/{self.variable(name)}"


MOUNTED_SECRETS = SecretSource.files(SECRETS_DIR)
"""The router's secrets as the Kubernetes Secret mounts them."""


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
    api_key: str
    """The name of the backend's key in the router's `SecretSource` (`key_file(name)`)."""
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


@dataclass(frozen=True)
class SageMakerBackend:
    """A SageMaker endpoint running our serving container, behind the router. litellm's `sagemaker_chat` provider
    sends the OpenAI chat body as it is to InvokeEndpoint (`/endpoints/<name>/invocations`) and, for a stream, to
    InvokeEndpointWithResponseStream (`/invocations-response-stream`), reading its AWS event stream
    (llms/sagemaker/chat/transformation.py get_complete_url 82-105, get_async_custom_stream_wrapper 179-223); our
    adapter answers both routes with OpenAI chat. Requests are SigV4-signed for service `sagemaker` in `region`
    (sign_request 107-127, llms/bedrock/base_aws_llm.py _sign_request) with boto3's default credentials: the ECS
    task role, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY."""

    name: str
    endpoint_name: str
    region: str
    priority: int = 1
    endpoint_url: str | None = None
    """Tests only: the whole URL every request goes to instead of SageMaker's (litellm's `sagemaker_base_url`
    replaces the URL, streamed or not: transformation.py 101-103)."""
    served_model: str = field(kw_only=True)
    """The model name the container serves (our adapter: the Hugging Face id), sent as the body's `model`
    (litellm's `hf_model_name`, transformation.py transform_request 77-80): without it litellm sends the endpoint's
    name, which our adapter refuses with 404 model_not_found (measured)."""

    def __post_init__(self) -> None:
        if self.priority < 1:
            raise ValueError(f"backend {self.name!r}: priority {self.priority} is below 1")
        if not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", self.endpoint_name):
            raise ValueError(f"backend {self.name!r}: {self.endpoint_name!r} is not a SageMaker endpoint name")
        if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", self.region):
            raise ValueError(f"backend {self.name!r}: {self.region!r} is not an AWS region")


@dataclass(frozen=True)
class VertexBackend:
    """A Vertex AI endpoint (numeric id) running our serving container. litellm's `vertex_ai/openai/<id>` provider
    (llms/vertex_ai/vertex_model_garden/main.py 32-53 and 82-130) posts the OpenAI chat body, `model` emptied, to
    `.../v1beta1/projects/<project>/locations/<region>/endpoints/<id>/chat/completions` (or `<api_base>/chat/
    completions`), streamed as server-sent events, with a bearer token from google-auth's default credentials (the
    Cloud Run service account). Vertex hands that body to the container's predict route as it is.

    Our adapter answers it there: a predict body with `messages` and no `instances` is an OpenAI chat completion,
    streamed when it asks (contracts.route_prediction), and the empty `model` is the one model it serves
    (contracts.Rules). litellm imports `vertexai` (google-cloud-aiplatform) before the call, which the router's
    environment must therefore have (the Makefile's `litellm` target installs it). Run for real in
    tests/adapter/test_cloud_router.py. The other Vertex routes of litellm 1.99.4 fit no better: a bare
    numeric id is sent Gemini's generateContent body (common_utils.py get_vertex_ai_model_route 178-181, _get_vertex_url
    403-419) or goes through the aiplatform SDK's gRPC predict with a flattened prompt (vertex_ai_non_gemini.py), and
    `vertex_ai/gemma/` expects `predictions` to be one OpenAI response and fakes streaming."""

    name: str
    endpoint_id: str
    project: str
    region: str
    priority: int = 1
    api_base: str | None = None
    """A private endpoint's base (its Private Service Connect address, through `/endpoints/<id>`)."""

    def __post_init__(self) -> None:
        if self.priority < 1:
            raise ValueError(f"backend {self.name!r}: priority {self.priority} is below 1")
        if not self.endpoint_id.isdigit():
            raise ValueError(f"backend {self.name!r}: {self.endpoint_id!r} is not a Vertex endpoint id (digits)")


AnyBackend = Backend | SageMakerBackend | VertexBackend


@dataclass(frozen=True)
class Caller:
    """One caller of the router (`web`, `batch`): its own key, named `caller_key_file(id)` in the router's
    `SecretSource`, and its limits, per router replica (None: none). Past a limit the router answers 429."""

    id: str
    rpm_limit: int | None = None
    """Requests per minute."""
    tpm_limit: int | None = None
    """Tokens (prompt and completion) per minute."""
    max_parallel_requests: int | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,62}", self.id):
            raise ValueError(f"caller id {self.id!r} is not lower-case letters, digits and -")
        for limit, value in (("rpm_limit", self.rpm_limit), ("tpm_limit", self.tpm_limit),
                             ("max_parallel_requests", self.max_parallel_requests)):
            if value is not None and value < 1:
                raise ValueError(f"caller {self.id!r}: {limit} {value} is below 1")


def caller_key_file(caller_id: str) -> str:
    """The name of a caller's key in the router's secrets: `web` -> `caller-web.key`."""
    return f"caller-{caller_id}.key"


ROUTER_KEY_ID = "router"
"""The caller id of the key a routed target generates for the router (a target's own `apiKeys` entry)."""
IMAGE = "ghcr.io/berriai/litellm-non_root:v1.99.4"
"""LiteLLM's non-root image (docker/Dockerfile.non_root: user nobody, 65534; entrypoint docker/prod_entrypoint.sh)
of the version the tests run (`make litellm`). Pin it by digest with `router.image`."""
CONFIG_FILE = "config.yaml"
ROUTER_MODULE = "selfhost_router"
"""The custom auth and usage-logging module: `<ROUTER_MODULE>.py` goes next to config.yaml, where litellm imports
`custom_auth` and callbacks from (proxy/types_utils/utils.py get_instance_fn, relative to the config file)."""
_MODULE_PATH = Path(__file__).resolve().parents[1] / "containers" / "router" / f"{ROUTER_MODULE}.py"


FILE_VARIABLES = {"SELFHOST_ROUTER_CONFIG": CONFIG_FILE, "SELFHOST_ROUTER_MODULE": f"{ROUTER_MODULE}.py"}
"""Where a router on a cloud receives its files (plain environment variables its command writes out): variable ->
file name. A cluster mounts the same files from a ConfigMap."""


def router_module_text() -> str:
    """The module's source, for the platform to ship next to config.yaml (a ConfigMap key, a file in the image)."""
    return _MODULE_PATH.read_text()


def backends_from_endpoints(endpoints: Mapping[str, Mapping[str, Any]], order: Sequence[str]) -> list[Backend]:
    """The stack's endpoint records (resolved values, not Outputs) as backends, in `order`: the first target named
    has priority 1, the next 2, ... Every target in `order` must have a record with an `openaiBaseUrl` (or a
    `routerBaseUrl`, where a router on the cluster reaches it) and an `auth` the router can speak; all problems are
    reported together. Each backend's key is the secret `key_file(name)`."""
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
            backends.append(Backend(name=name, api_base=base, served_model=record["model"], api_key=key_file(name),
                                    priority=priority))
    if problems:
        raise ValueError("cannot route to: " + "; ".join(problems))
    return backends


def litellm_config(model_name: str, backends: Sequence[AnyBackend], *, aliases: Sequence[str] = (),
                   secrets: SecretSource = MOUNTED_SECRETS, callers: Sequence[Caller] = (),
                   cooldown_seconds: float = 30.0, allowed_fails: int = 1, num_retries: int = 1,
                   timeout_seconds: float = 600.0, ca_bundle_file: str | None = None) -> dict[str, Any]:
    """The LiteLLM proxy's config.yaml, as a dict, serving `model_name` (and its `aliases`) from `backends`.

    Every backend is a deployment of one model group, `model_name`, ordered by priority. A request goes to the
    lowest priority that is not cooling down; when it fails there (refused connection, 5xx, 429, timeout), it is
    retried within the same request, `num_retries` more times (on whatever is then first in line), then on each
    higher priority in turn: a backend's death loses no non-streamed request (a stream already under way cannot
    move). A backend other than the last is skipped once it has failed more than `allowed_fails` times within
    `cooldown_seconds`, for `cooldown_seconds` (for as long as its own Retry-After says, if it sent one: our
    adapter's 429 and 503 say 1 s); the last priority is never skipped: it is the last resort.
    `timeout_seconds` bounds one attempt, the whole answer: keep it above the longest generation.

    Every secret (the master key `MASTER_KEY_FILE`, the backends' keys, the callers' keys) is named through
    `secrets`. Without `callers`, the master key is the one key callers use (as on the hybrid stack). With them,
    each caller uses its own key, within its limits (`Caller`), checked by the `ROUTER_MODULE` (which must be next
    to config.yaml), which also writes one usage line per request; the master key then serves administration only.
    `ca_bundle_file`: the CA certificates (public roots and the stack's own CA) the proxy trusts for every backend:
    litellm's OpenAI client takes only the global setting (llms/openai/common_utils.py _get_async_http_client
    294-315, get_ssl_configuration with no per-deployment value), so per backend is not possible."""
    if not backends:
        raise ValueError("no backends to route to")
    ids = [c.id for c in callers]
    if len(set(ids)) != len(ids):
        raise ValueError(f"caller ids are not unique: {ids}")
    names = [b.name for b in backends]
    if len(set(names)) != len(names):
        raise ValueError(f"backend names are not unique: {names}")
    if cooldown_seconds <= 0 or timeout_seconds <= 0 or allowed_fails < 0 or num_retries < 0:
        raise ValueError("cooldown_seconds and timeout_seconds must be above 0, allowed_fails and num_retries at "
                         "least 0")
    last = max(b.priority for b in backends)
    # Line numbers below are litellm 1.99.4's (site-packages/litellm/...).
    return {
        "model_list": [_deployment(model_name, b, last, allowed_fails, secrets)
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
            # The usage line per request (proxy_server.py loads `module.instance` callbacks with get_instance_fn),
            # and Prometheus series per caller (its key alias) on /metrics: no licence check in 1.99.4
            # (integrations/prometheus.py), prometheus-client installed beside litellm; /metrics asks for a key
            # (litellm.require_auth_for_metrics_endpoint, on by default: proxy/middleware/prometheus_auth_middleware
            # .py 44), which the custom auth grants the master key and callers, as any route but inference.
            **({"callbacks": [f"{ROUTER_MODULE}.usage_logger", "prometheus"]} if callers else {}),
            # Set as litellm.ssl_verify: a path is the CA bundle every client verifies with (http_handler.py
            # get_ssl_verify 274-310).
            **({"ssl_verify": ca_bundle_file} if ca_bundle_file else {}),
        },
        "general_settings": {
            # Resolved when the proxy loads its config (SecretSource.ref). Without callers, callers send
            # `Authorization: Bearer <that key>`.
            "master_key": secrets.ref(MASTER_KEY_FILE),
            **({
                # Called for every request instead of litellm's key checks (proxy/auth/user_api_key_auth.py
                # 1259-1292: the enterprise wrapper calls it as is when no custom_auth_settings are set); its
                # answer, with the caller's limits, is what the default rate limiter
                # (proxy/hooks/parallel_request_limiter_v3.py 2644-2670, keyed by the identity's api_key) counts,
                # in memory without Redis.
                "custom_auth": f"{ROUTER_MODULE}.user_api_key_auth",
                # Read by the module from general_settings: limits in the open, keys by reference only.
                "selfhost_callers": {c.id: {"key": secrets.ref(caller_key_file(c.id)),
                                            **{k: v for k, v in (("rpm_limit", c.rpm_limit),
                                                                 ("tpm_limit", c.tpm_limit),
                                                                 ("max_parallel_requests", c.max_parallel_requests))
                                               if v is not None}}
                                     for c in callers},
            } if callers else {}),
        },
    }


def _deployment(model_name: str, backend: AnyBackend, last_priority: int, allowed_fails: int,
                secrets: SecretSource) -> dict[str, Any]:
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
    params: dict[str, Any]
    if isinstance(backend, SageMakerBackend):
        params = {
            # No api_key: one would be sent as a bearer token instead of signing (base_aws_llm.py
            # _sign_request 1536-1546).
            "model": f"sagemaker_chat/{backend.endpoint_name}",
            "aws_region_name": backend.region,
            "hf_model_name": backend.served_model,
            **({"sagemaker_base_url": backend.endpoint_url} if backend.endpoint_url else {}),
        }
    elif isinstance(backend, VertexBackend):
        params = {
            "model": f"vertex_ai/openai/{backend.endpoint_id}",
            "vertex_project": backend.project,
            "vertex_location": backend.region,
            **({"api_base": backend.api_base.rstrip("/")} if backend.api_base else {}),
        }
    else:
        params = {
            # openai/: litellm's OpenAI-compatible client, posting to api_base as given.
            "model": f"openai/{backend.served_model}",
            "api_base": backend.api_base.rstrip("/"),
            "api_key": secrets.ref(backend.api_key),
        }
    return {
        "model_name": model_name,
        "litellm_params": {**params, "order": backend.priority},
        "model_info": model_info,
    }
