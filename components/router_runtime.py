"""The contract between the router and the platforms that host it (`Platform.declare_router`): what the router runs
(`RouterRuntime`, built by components/router.py) and what the platform's router component answers
(`RouterEndpoint`). Here, below the platforms' components, so they take it without reaching up to the registry.

Pure: no provider SDK.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pulumi


class Route(Protocol):
    """What a router component reads of a target it calls: its endpoint record (components/targets/base.py
    `Endpoint`)."""

    @property
    def name(self) -> str: ...
    @property
    def auth(self) -> str: ...
    """How it is called: `aws-sigv4`, `gcp-oauth`, `api-key`, `hf-token`."""
    @property
    def details(self) -> dict[str, Any]: ...
    """What only its kind has: `endpointArn`, `endpointId`, ..."""


@dataclass(frozen=True)
class RouterRuntime:
    """The router as every platform that can host it runs it (`Platform.declare_router`): the LiteLLM proxy's image
    and arguments, the files it reads at start (its config and our auth module: not secret), the secrets it reads
    from environment variables the platform's secret store fills when the container starts (Secrets Manager,
    Secret Manager: never a value in a task definition or service spec), its sizing and who may call it."""

    name: str
    """The component's name (`<environment>-router`): children are named after it."""
    image: str
    port: int
    command: tuple[str, ...]
    """The container's command: writes `files` under `files_dir`, then runs the proxy (components/routing.py)."""
    files: Mapping[str, pulumi.Input[str]]
    """Environment variable -> text of a file the command writes before the proxy starts (the config, the module)."""
    files_dir: str
    """A writable directory the platform provides (the root file system stays read-only where it can be)."""
    secrets: Mapping[str, pulumi.Input[str]]
    """Environment variable (or, where the platform mounts them, file name: `Platform.router_secrets_as`) ->
    secret value: each kept in the platform's secret store, encrypted with the stack's key, and handed to the
    container at start by reference."""
    generated: tuple[str, ...]
    """More secrets, named as in `secrets`, whose values the component generates (components/keys.py api_keys,
    as its children): the callers' keys and the admin key. It returns them in `RouterEndpoint.keys`."""
    environment: Mapping[str, str]
    """Plain environment variables."""
    liveness_path: str
    readiness_path: str
    min_replicas: int
    max_replicas: int
    cpu: float
    """vCPUs per replica."""
    memory_mib: int
    timeout_seconds: float
    """The longest one attempt may take (a whole answer): the load balancer must keep a request open longer."""
    routes: tuple[Route, ...]
    """The targets it calls, in order (their endpoint records): its identity may invoke exactly these (their
    records' ARNs, ids)."""
    allowed_cidrs: tuple[str, ...]
    """Address ranges that may call it, beside the stack's own network."""
    certificate: str | None
    """The platform's certificate for its endpoint (an ACM ARN, ...); None: the platform's default (a certificate
    the stack issues from its own CA, or one the platform manages)."""
    tags: Mapping[str, str]


@dataclass(frozen=True)
class RouterEndpoint:
    """What `Platform.declare_router` returns: where callers reach the router, the same keys on every platform."""

    base_url: pulumi.Input[str]
    """The OpenAI-compatible base URL (https://.../v1)."""
    keys: Mapping[str, pulumi.Output[str]]
    """The `generated` secrets' values (secrets), by their names."""
    details: dict[str, Any] = field(default_factory=dict)
    """What only this platform has (its load balancer, service, the CA certificate to trust), camelCase keys."""
