"""One Hugging Face Inference Endpoint as a Pulumi dynamic resource.

Hugging Face publishes no Pulumi or Terraform provider, so `HfEndpointProvider` drives the endpoint through the
`huggingface_hub` client (`HfApi.create/get/update/delete_inference_endpoint`), which speaks the REST API
(`{constants.INFERENCE_ENDPOINTS_ENDPOINT}/endpoint/{namespace}[/{name}]`, the constant read at call time).

The provider's methods are plain Python over plain dicts, callable without Pulumi's engine (the tests call them
against a loopback fake of the API). `HfInferenceEndpoint` is the resource a component declares, with typed args.

Shapes, from huggingface_hub 2.4.0 (`hf_api.py`, `_inference_endpoints.py`):
- the create payload: `name`, `type`, `provider{vendor,region}`, `compute{accelerator,instanceType,instanceSize,
  scaling{minReplica,maxReplica,scaleToZeroTimeout}}`, `model{repository,revision,task,framework,image,env}`;
- `model.image` is a union keyed by variant: `{"vLLM": {...}}`, `{"tgi": {...}}`, `{"llamacpp": {...}}`,
  `{"custom": {...}}` (the client docstring of `custom_image`, and `_TENSOR_PARALLEL_IMAGE_KEYS = ("sGLang", "vLLM")`),
  each with its container `url` (required inside the variant, per `update_inference_endpoint`) and camelCase
  settings (`healthRoute`, `port`, ...). A dict without a top-level `url` is forwarded as-is
  (`_build_endpoint_image_payload`), so we always pass the variant-keyed form;
- the status values of `InferenceEndpointStatus`: pending, initializing, updating, updateFailed, running, paused,
  failed, scaledToZero; the human-readable reason is `status.message`.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi.dynamic as dyn
from huggingface_hub import HfApi, InferenceEndpoint
from huggingface_hub.errors import HfHubHTTPError
from pulumi.runtime import rpc

TYPE_TOKEN = "pulumi-python:dynamic/hf:InferenceEndpoint"
"""The type the resource registers as (`pulumi.dynamic.Resource` with module "hf", name "InferenceEndpoint")."""

PROVIDER_KEY = "__provider"
"""The input where `pulumi.dynamic.Resource` stores the serialized provider (always a secret)."""

ENDPOINT_TYPES = ("private", "authenticated", "public")

IMAGE_VARIANTS = {"vllm": "vLLM", "tgi": "tgi", "llamacpp": "llamacpp", "custom": "custom"}
"""Our image kind -> the key of the variant in the API's `model.image` union (spelled as the client spells it)."""

DEFAULT_VARIANT = "huggingface"
"""The variant the client sends when no image is given: the Hugging Face managed image."""

REPLACE_KEYS = ("namespace", "name", "vendor", "region", "type")
"""Inputs the API cannot change in place: a change replaces the endpoint."""

UPDATE_KEYS: dict[str, str] = {
    "accelerator": "accelerator",
    "instanceType": "instance_type",
    "instanceSize": "instance_size",
    "minReplica": "min_replica",
    "maxReplica": "max_replica",
    "scaleToZeroTimeout": "scale_to_zero_timeout",
    "repository": "repository",
    "revision": "revision",
    "task": "task",
    "framework": "framework",
    "image": "custom_image",
    "env": "env",
}
"""Inputs updated in place -> the `update_inference_endpoint` argument that carries them."""

UNSETTABLE_KEYS = ("revision", "task")
"""In-place keys the client cannot clear (it drops None from the PUT): going back to None replaces the endpoint."""

PROVIDER_ONLY_KEYS = ("token", "waitTimeoutSeconds")
"""Inputs only the provider reads: a change is an in-place update that sends nothing to the API."""

FAILED_STATES = ("failed", "updateFailed")

READ_BACK = {
    "vendor": ("provider", "vendor"),
    "region": ("provider", "region"),
    "type": ("type",),
    "accelerator": ("compute", "accelerator"),
    "instanceType": ("compute", "instanceType"),
    "instanceSize": ("compute", "instanceSize"),
    "minReplica": ("compute", "scaling", "minReplica"),
    "maxReplica": ("compute", "scaling", "maxReplica"),
    "scaleToZeroTimeout": ("compute", "scaling", "scaleToZeroTimeout"),
    "repository": ("model", "repository"),
    "revision": ("model", "revision"),
    "task": ("model", "task"),
    "framework": ("model", "framework"),
}
"""Where `read` finds each scalar input in the API's answer (to show drift on refresh)."""

DEFAULT_WAIT_TIMEOUT_SECONDS = 1800
DEFAULT_POLL_INTERVAL_SECONDS = 10.0


class HfEndpointError(Exception):
    """The endpoint did not reach a usable state, or the API refused a request; the message says why."""


def image_payload(image: Mapping[str, Any] | None) -> dict[str, Any]:
    """The API's `model.image` for our `image` input: `{"kind", "url", "port"?, "healthRoute"?, "settings"?}`
    becomes `{<variant>: {"url", "port", "healthRoute", **settings}}`; None is the managed Hugging Face image."""
    if image is None:
        return {DEFAULT_VARIANT: {}}
    variant = IMAGE_VARIANTS[image["kind"]]
    body: dict[str, Any] = {"url": image["url"]}
    for key in ("port", "healthRoute"):
        if image.get(key) is not None:
            body[key] = image[key]
    body.update(image.get("settings") or {})
    return {variant: body}


def _dig(raw: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = raw
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _status_message(endpoint: InferenceEndpoint) -> str:
    return str((endpoint.raw.get("status") or {}).get("message") or "no status message")


def _is_not_found(error: HfHubHTTPError) -> bool:
    return error.response is not None and error.response.status_code == 404


def _same(old: Any, new: Any, key: str) -> bool:
    if key == "env":
        return (old or {}) == (new or {})
    return bool(old == new)


class HfEndpointProvider(dyn.ResourceProvider):
    """Create, diff, update, delete and read one Inference Endpoint.

    Inputs (the keys Pulumi passes): namespace, name, vendor, region, accelerator, instanceType, instanceSize,
    minReplica, maxReplica, scaleToZeroTimeout (minutes, or None), repository, revision (None: the default
    branch's head, resolved by the API), task, framework, image (see `image_payload`; None: the managed image),
    type (private | authenticated | public), env, token (a Hugging Face token that may manage the namespace's
    endpoints), waitTimeoutSeconds. Outputs: the inputs, plus `url` and `status` (the endpoint's state).

    The provider holds no state but its poll interval: Pulumi serializes it (dill) into every resource's
    `__provider` input, so it must never carry the token.
    """

    def __init__(self, poll_interval_seconds: float = DEFAULT_POLL_INTERVAL_SECONDS) -> None:
        super().__init__()
        self.poll_interval_seconds = poll_interval_seconds

    # -- Pulumi's dynamic provider interface -------------------------------------------------------------------

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dyn.CheckResult:
        """All problems of the inputs at once, before anything is created. Values unknown in a preview are
        skipped (they are strings only the engine can resolve)."""
        failures = [dyn.CheckFailure(key, reason) for key, reason in input_problems(news)]
        return dyn.CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        namespace, name, token = props["namespace"], props["name"], _token(props)
        created = HfApi().create_inference_endpoint(
            name,
            namespace=namespace,
            token=token,
            vendor=props["vendor"],
            region=props["region"],
            type=props.get("type") or "authenticated",
            accelerator=props["accelerator"],
            instance_type=props["instanceType"],
            instance_size=props["instanceSize"],
            min_replica=props.get("minReplica", 1),
            max_replica=props.get("maxReplica", 1),
            scale_to_zero_timeout=props.get("scaleToZeroTimeout"),
            repository=props["repository"],
            revision=props.get("revision"),
            task=props.get("task"),
            framework=props.get("framework") or "pytorch",
            custom_image=image_payload(props.get("image")),
            env=dict(props.get("env") or {}) or None,
        )
        try:
            endpoint = self._wait(created, props)
        except HfEndpointError as error:
            # A failed create must leave nothing behind (Pulumi records no state for it, so nothing would ever
            # delete it), and an endpoint bills per minute while it initializes: delete it before reporting.
            raise HfEndpointError(f"{error}; {self._discard(namespace, name, token)}") from None
        return dyn.CreateResult(f"{namespace}/{name}", self._outs(props, endpoint))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        """`olds` are the recorded outputs (the inputs, `url`, `status`), `news` the new inputs. Replacement for
        what the API cannot change in place, an in-place update for the rest; the serialized provider
        (`__provider`) is ignored, and so is the token unless its value changed (then: in place)."""
        replaces = [k for k in REPLACE_KEYS if not _same(olds.get(k), news.get(k), k)]
        replaces += [k for k in UNSETTABLE_KEYS if olds.get(k) is not None and news.get(k) is None]
        changed = replaces or [k for k in (*UPDATE_KEYS, *PROVIDER_ONLY_KEYS)
                               if not _same(olds.get(k), news.get(k), k)]
        same_name = all(olds.get(k) == news.get(k) for k in ("namespace", "name"))
        return dyn.DiffResult(
            changes=bool(changed),
            replaces=replaces,
            # Names are unique per namespace: a replacement under the same name must delete the old one first
            # (Pulumi's default, create before delete, would be refused with a conflict).
            delete_before_replace=bool(replaces) and same_name,
        )

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        """Send only what changed (nothing, when only the token or the wait bound changed), then wait as
        `create` does."""
        namespace, name, token = news["namespace"], news["name"], _token(news)
        api = HfApi()
        changes: dict[str, Any] = {}
        for key, argument in UPDATE_KEYS.items():
            if _same(olds.get(key), news.get(key), key):
                continue
            value = news.get(key)
            if key == "image":
                value = image_payload(value)
            elif key == "env":
                value = dict(value or {})
            changes[argument] = value
        if changes:
            endpoint = api.update_inference_endpoint(name, namespace=namespace, token=token, **changes)
        else:
            endpoint = api.get_inference_endpoint(name, namespace=namespace, token=token)
        return dyn.UpdateResult(self._outs(news, self._wait(endpoint, news)))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """Delete; an endpoint already gone is a success. Waits (within waitTimeoutSeconds) until the API no
        longer knows the name, so a replacement under the same name can be created right after."""
        namespace, name, token = _identity(_id, props)
        api = HfApi()
        try:
            api.delete_inference_endpoint(name, namespace=namespace, token=token)
        except HfHubHTTPError as error:
            if _is_not_found(error):
                return
            raise
        deadline = time.monotonic() + float(props.get("waitTimeoutSeconds") or DEFAULT_WAIT_TIMEOUT_SECONDS)
        while time.monotonic() < deadline:
            if _get(namespace, name, token) is None:
                return
            time.sleep(self.poll_interval_seconds)

    def read(self, id_: str, props: dict[str, Any]) -> dyn.ReadResult:
        """The live endpoint: `url`, `status` and the scalar settings as the API reports them (drift shows in the
        next diff). A 404 means gone: no id, and an empty dict of outputs (not None: the dynamic provider host
        adds `__provider` to it)."""
        namespace, name, token = _identity(id_, props)
        endpoint = _get(namespace, name, token)
        if endpoint is None:
            return dyn.ReadResult(None, {})
        outs = {k: v for k, v in props.items() if k != PROVIDER_KEY}
        for key, path in READ_BACK.items():
            live = _dig(endpoint.raw, path)
            # Only what the program set: a revision or timeout left to the API stays unset, not a drift.
            if live is not None and outs.get(key) is not None:
                outs[key] = live
        return dyn.ReadResult(f"{namespace}/{name}", self._outs(outs, endpoint))

    # -- helpers ------------------------------------------------------------------------------------------------

    def _wait(self, endpoint: InferenceEndpoint, props: Mapping[str, Any]) -> InferenceEndpoint:
        """Poll the control plane until the endpoint is running (or scaled to zero, when minReplica is 0), within
        waitTimeoutSeconds.

        Not `InferenceEndpoint.wait`: it never settles on scaledToZero, it probes `{url}/{healthRoute}` from this
        machine (unreachable for a private, PrivateLink-only endpoint), and its errors carry no status message."""
        timeout = float(props.get("waitTimeoutSeconds") or DEFAULT_WAIT_TIMEOUT_SECONDS)
        deadline = time.monotonic() + timeout
        settled = {"running"} | ({"scaledToZero"} if props.get("minReplica") == 0 else set())
        where = f"Inference Endpoint {props['namespace']}/{props['name']}"
        while True:
            state = str(endpoint.status)
            if state in settled:
                return endpoint
            if state in FAILED_STATES:
                raise HfEndpointError(f"{where} is {state}: {_status_message(endpoint)}")
            if state == "paused":
                raise HfEndpointError(f"{where} is paused: resume it (HfApi.resume_inference_endpoint) and retry")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HfEndpointError(f"{where} not running after {timeout:g} s, still {state}: "
                                      f"{_status_message(endpoint)}")
            time.sleep(min(self.poll_interval_seconds, remaining))
            endpoint = HfApi().get_inference_endpoint(endpoint.name, namespace=props["namespace"],
                                                      token=_token(props))

    def _discard(self, namespace: str, name: str, token: str) -> str:
        try:
            HfApi().delete_inference_endpoint(name, namespace=namespace, token=token)
        except HfHubHTTPError as error:
            if not _is_not_found(error):
                return f"deleting it failed too ({error.response.status_code}): delete it by hand"
        return "the endpoint was deleted"

    @staticmethod
    def _outs(inputs: Mapping[str, Any], endpoint: InferenceEndpoint) -> dict[str, Any]:
        # The token stays in the outputs: `delete` (and `read` on refresh) receive only the id and the recorded
        # outputs, never the program's inputs, and need the token to authenticate. The resource declares
        # `additional_secret_outputs=["token"]`, so the state keeps it encrypted like the input.
        outs = {k: v for k, v in inputs.items() if k != PROVIDER_KEY}
        outs.update(url=endpoint.url, status=str(endpoint.status))
        return outs


def _get(namespace: str, name: str, token: str) -> InferenceEndpoint | None:
    """The endpoint as the API reports it; None when the API does not know it (404)."""
    try:
        return HfApi().get_inference_endpoint(name, namespace=namespace, token=token)
    except HfHubHTTPError as error:
        if _is_not_found(error):
            return None
        raise


def _token(props: Mapping[str, Any]) -> str:
    token = props.get("token")
    if not token:
        # Never fall back to the machine's saved login: the endpoint would belong to whoever ran the deploy.
        raise HfEndpointError("no Hugging Face token: the `token` input is required")
    return str(token)


def _identity(id_: str, props: Mapping[str, Any]) -> tuple[str, str, str]:
    namespace, _, name = (id_ or "").partition("/")
    return props.get("namespace") or namespace, props.get("name") or name, _token(props)


def _known(value: Any) -> bool:
    # A value a preview cannot know yet arrives as a sentinel string.
    return value != rpc.UNKNOWN


def input_problems(props: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every problem of an input bag, as (key, reason): the checks `check` reports in one place."""
    problems: list[tuple[str, str]] = []
    for key in ("namespace", "name", "vendor", "region", "accelerator", "instanceType", "instanceSize",
                "repository", "token"):
        if not props.get(key):
            problems.append((key, "required"))
    kind = props.get("type") or "authenticated"
    if _known(kind) and kind not in ENDPOINT_TYPES:
        problems.append(("type", f"{kind!r} is not one of {', '.join(ENDPOINT_TYPES)}"))
    image = props.get("image")
    if image is not None and _known(image):
        if image.get("kind") not in IMAGE_VARIANTS:
            problems.append(("image.kind", f"{image.get('kind')!r} is not one of {', '.join(IMAGE_VARIANTS)}"))
        if not image.get("url"):
            problems.append(("image.url", "required: the container image the variant runs"))
    low, high = props.get("minReplica", 1), props.get("maxReplica", 1)
    if all(isinstance(v, int) for v in (low, high)):
        if not 0 <= low <= high or high < 1:
            problems.append(("maxReplica", f"replicas must satisfy 0 <= minReplica ({low}) <= maxReplica ({high}), "
                                           "maxReplica >= 1"))
        if low == 0 and props.get("scaleToZeroTimeout") is None:
            problems.append(("scaleToZeroTimeout", "required (minutes) when minReplica is 0"))
    return problems


@dataclass(frozen=True)
class HfImage:
    """The container an endpoint runs, as one of the API's image variants."""

    kind: str
    """vllm | tgi | llamacpp | custom (the API's `vLLM`, `tgi`, `llamacpp`, `custom`)."""
    url: str
    """The container image reference, e.g. `vllm/vllm-openai:v0.23.0`."""
    port: int | None = None
    """The port the container listens on (the API's default for the variant when None)."""
    health_route: str | None = None
    """The readiness route, e.g. `/health` (the API's default for the variant when None)."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    """Further settings of the variant, in the API's camelCase (e.g. `maxTotalTokens` for tgi, `modelPath`,
    `ctxSize` for llamacpp), forwarded as given."""

    def to_input(self) -> dict[str, Any]:
        return {"kind": self.kind, "url": self.url, "port": self.port, "healthRoute": self.health_route,
                "settings": dict(self.settings)}


@dataclass(frozen=True)
class HfEndpointArgs:
    namespace: pulumi.Input[str]
    """The user or organization that owns the endpoint."""
    name: pulumi.Input[str]
    """The endpoint's name, unique in the namespace (changing it replaces the endpoint)."""
    vendor: pulumi.Input[str]
    """The cloud the endpoint runs on: aws | gcp | azure (see `HfApi.list_inference_endpoints_hardware`)."""
    region: pulumi.Input[str]
    accelerator: pulumi.Input[str]
    """gpu | cpu | neuron."""
    instance_type: pulumi.Input[str]
    """e.g. nvidia-l4, nvidia-a10g."""
    instance_size: pulumi.Input[str]
    """e.g. x1, x4 (the accelerator count)."""
    repository: pulumi.Input[str]
    """The model's Hub id."""
    token: pulumi.Input[str]
    """A Hugging Face token allowed to manage the namespace's endpoints; always made secret."""
    revision: pulumi.Input[str] | None = None
    """The model commit to deploy (None: the API resolves the default branch at creation)."""
    task: pulumi.Input[str] | None = "text-generation"
    framework: pulumi.Input[str] = "pytorch"
    image: HfImage | None = None
    """None: the managed Hugging Face image."""
    type: pulumi.Input[str] = "authenticated"
    """private (AWS PrivateLink only) | authenticated (a Hugging Face token) | public."""
    min_replica: pulumi.Input[int] = 1
    max_replica: pulumi.Input[int] = 1
    scale_to_zero_timeout_minutes: pulumi.Input[int] | None = None
    """Idle minutes before scaling to zero; required when min_replica is 0."""
    env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Non-secret container environment variables."""
    wait_timeout_seconds: int = DEFAULT_WAIT_TIMEOUT_SECONDS
    """How long create and update wait for the endpoint to run before failing (30 minutes: a large model's
    download and load)."""

    def to_inputs(self) -> dict[str, Any]:
        """The provider's input bag (its keys are the provider's interface)."""
        return {
            "namespace": self.namespace, "name": self.name, "vendor": self.vendor, "region": self.region,
            "accelerator": self.accelerator, "instanceType": self.instance_type,
            "instanceSize": self.instance_size, "minReplica": self.min_replica, "maxReplica": self.max_replica,
            "scaleToZeroTimeout": self.scale_to_zero_timeout_minutes, "repository": self.repository,
            "revision": self.revision, "task": self.task, "framework": self.framework,
            "image": self.image.to_input() if self.image else None, "type": self.type, "env": dict(self.env),
            "token": pulumi.Output.secret(self.token), "waitTimeoutSeconds": self.wait_timeout_seconds,
        }


def resource_options(opts: pulumi.ResourceOptions | None) -> pulumi.ResourceOptions:
    """The caller's options, with the token output declared secret (merged, so the caller's own
    additional_secret_outputs stay)."""
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["token"]))


class HfInferenceEndpoint(dyn.Resource, module="hf", name="InferenceEndpoint"):
    """A Hugging Face Inference Endpoint (type `pulumi-python:dynamic/hf:InferenceEndpoint`)."""

    # For the type checker only. The SDK resolves a resource class's annotations (typing.get_type_hints) again on
    # every registration of every instance, for the types of their outputs, which are plain strings here: at run
    # time it sets these from the property bag below, and without the annotations each endpoint registers about a
    # tenth faster.
    if TYPE_CHECKING:
        url: pulumi.Output[str]
        """The endpoint's inference URL (None until the API assigns one; a private endpoint may have none)."""
        status: pulumi.Output[str]
        """The endpoint's state when the deployment last touched it: running, or scaledToZero."""
        token: pulumi.Output[str]

    def __init__(self, name: str, args: HfEndpointArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # Outputs must be named in the property bag for the SDK to resolve them onto the resource.
        props = {**args.to_inputs(), "url": None, "status": None}
        with _pickler_kept():
            super().__init__(HfEndpointProvider(), name, props, resource_options(opts))


@contextmanager
def _pickler_kept() -> Iterator[None]:
    """The pure-Python pickler's methods as they were, whatever `pulumi.dynamic` does to them.

    `serialize_provider` (pulumi 3.272, dynamic/dynamic.py) patches `pickle._Pickler._batch_setitems` with a sorting
    wrapper around whatever is there, and restores only `pickle.Pickler`: each dynamic resource a process declares
    wraps the last wrapper once more. Past about a thousand (a long-lived process: the preview-speed benchmark, a
    test run) every pickling of a dict there recurses through them all and fails with RecursionError. Restoring
    them after each declaration keeps the depth at one; the serialized provider is byte-for-byte the same."""
    pickler: Any = pickle._Pickler  # the pure-Python class the SDK patches
    saved = pickler._batch_setitems, pickler.save_dict
    try:
        yield
    finally:
        pickler._batch_setitems, pickler.save_dict = saved
