"""The Inference Endpoints dynamic provider against a loopback fake of the REST API, as `huggingface_hub` calls it.

The fake (`FakeEndpointsApi`) answers `POST/GET/PUT/DELETE {base}/endpoint/{namespace}[/{name}]` with bodies built
from tests/data/hf_endpoints/endpoint_running.json (see the README there for where the shape comes from), moves a
new endpoint pending -> initializing -> running over successive GETs, refuses any other token than TOKEN with a 401,
and records every request so the tests can read what the provider sent. The client reads
`huggingface_hub.constants.INFERENCE_ENDPOINTS_ENDPOINT` at call time (hf_api.py builds each URL from it), so
pointing that constant at the fake is enough. No request leaves the machine.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import pickle
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pulumi
import pytest
from huggingface_hub import constants
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import close_session
from pulumi.dynamic.dynamic import serialize_provider

from components.hf.endpoint import (
    TYPE_TOKEN,
    HfEndpointArgs,
    HfEndpointError,
    HfEndpointProvider,
    HfImage,
    HfInferenceEndpoint,
    image_payload,
    input_problems,
    resource_options,
)
from selfhost import mocks as preview_mocks
from selfhost.preview import run_program

DATA = Path(__file__).parent / "data" / "hf_endpoints"
TOKEN = "hf_test_0123456789abcdefghijklmnopqrstuv"
NAMESPACE = "selfhost-ci"

MESSAGES = {
    "pending": "Endpoint waiting to be scheduled",
    "initializing": "Endpoint is initializing",
    "updating": "Endpoint is updating",
    "running": "Endpoint is ready",
    "scaledToZero": "Endpoint is scaled to zero",
}


@dataclass
class Request:
    method: str
    path: str
    authorization: str | None
    body: Any


@dataclass
class Stored:
    raw: dict[str, Any]
    upcoming: list[tuple[str, str]] = field(default_factory=list)
    """(state, message) the next GETs report, one per GET; the last one stays."""


def _merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict) and key not in ("image", "env"):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


class FakeEndpointsApi:
    """The Inference Endpoints API for one token, in memory."""

    def __init__(self) -> None:
        self.template = json.loads((DATA / "endpoint_running.json").read_text())
        self.endpoints: dict[tuple[str, str], Stored] = {}
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.scripts: dict[str, list[tuple[str, str]]] = {}
        """Endpoint name -> the states it goes through after creation (default: pending, initializing, running)."""

    def script(self, name: str, *states: str | tuple[str, str]) -> None:
        self.scripts[name] = [(s, MESSAGES[s]) if isinstance(s, str) else s for s in states]

    def _set_state(self, stored: Stored, state: str, message: str) -> None:
        status = stored.raw["status"]
        status.update(state=state, message=message, updatedAt="2026-12-01T09:14:41.118Z")
        if state == "running":
            status.update(url=self.template["status"]["url"], readyReplica=1, targetReplica=1)
        elif "url" in status and state not in ("updating", "scaledToZero"):
            del status["url"]

    def _advance(self, stored: Stored) -> None:
        if len(stored.upcoming) > 1:
            stored.upcoming.pop(0)
        self._set_state(stored, *stored.upcoming[0])

    def handle(self, method: str, path: str, authorization: str | None, body: Any) -> tuple[int, Any]:
        with self.lock:
            self.requests.append(Request(method, path, authorization, body))
            if authorization != f"Bearer {TOKEN}":
                return 401, {"error": "Invalid credentials in Authorization header"}
            parts = path.removeprefix("/v2/endpoint/").split("/")
            if method == "POST" and len(parts) == 1:
                return self._create(parts[0], body)
            if len(parts) != 2:
                return 404, {"error": "Not Found"}
            key = (parts[0], parts[1])
            stored = self.endpoints.get(key)
            if stored is None:
                return 404, {"error": f"Inference Endpoint {parts[1]} not found"}
            if method == "GET":
                self._advance(stored)
            elif method == "PUT":
                _merge(stored.raw, body)
                stored.upcoming = [("updating", MESSAGES["updating"]), ("running", MESSAGES["running"])]
                self._set_state(stored, *stored.upcoming[0])
            elif method == "DELETE":
                del self.endpoints[key]
                return 200, {}
            return 200, stored.raw

    def _create(self, namespace: str, body: dict[str, Any]) -> tuple[int, Any]:
        if (namespace, body["name"]) in self.endpoints:
            return 409, {"error": f"Inference Endpoint {body['name']} already exists"}
        raw = copy.deepcopy(self.template)
        for key in ("name", "type", "provider", "compute"):
            raw[key] = copy.deepcopy(body[key])
        raw["model"] = {"task": "text-generation", "env": {}, **copy.deepcopy(body["model"])}
        if raw["model"]["revision"] is None:
            raw["model"]["revision"] = "0" * 40  # the API resolves the default branch
        stored = Stored(raw, list(self.scripts.get(body["name"]) or [
            ("pending", MESSAGES["pending"]), ("initializing", MESSAGES["initializing"]),
            ("running", MESSAGES["running"])]))
        self._set_state(stored, *stored.upcoming[0])
        self.endpoints[(namespace, body["name"])] = stored
        return 200, raw

    def sent(self, method: str) -> list[Request]:
        return [r for r in self.requests if r.method == method]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEndpointsApi]:
    fake = FakeEndpointsApi()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, answer = fake.handle(self.command, self.path, self.headers.get("Authorization"), body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setattr(constants, "INFERENCE_ENDPOINTS_ENDPOINT", f"http://127.0.0.1:{server.server_port}/v2")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    close_session()  # the shared HTTP client reads proxy settings when created
    try:
        yield fake
    finally:
        close_session()
        server.shutdown()
        server.server_close()


@pytest.fixture
def provider() -> HfEndpointProvider:
    return HfEndpointProvider(poll_interval_seconds=0.01)


def inputs(**overrides: Any) -> dict[str, Any]:
    """An input bag as Pulumi hands it to the provider (plain values, the serialized provider included)."""
    props = {
        "namespace": NAMESPACE, "name": "t-chat", "vendor": "aws", "region": "us-east-1", "accelerator": "gpu",
        "instanceType": "nvidia-l4", "instanceSize": "x1", "minReplica": 1, "maxReplica": 2,
        "scaleToZeroTimeout": None, "repository": "mistralai/Mistral-7B-Instruct-v0.3",
        "revision": "c170c708c41dac9275d15a8fff4eca08d52bab71", "task": "text-generation", "framework": "pytorch",
        "image": {"kind": "vllm", "url": "vllm/vllm-openai:v0.23.0", "port": 8000, "healthRoute": "/health",
                  "settings": {}},
        "type": "authenticated", "env": {"MAX_MODEL_LEN": "8192"}, "token": TOKEN, "waitTimeoutSeconds": 5,
        "__provider": "c2VyaWFsaXplZA==",
    }
    props.update(overrides)
    return props


def test_create_waits_for_running_and_returns_the_url(api: FakeEndpointsApi, provider: HfEndpointProvider):
    result = provider.create(inputs())
    assert result.id == f"{NAMESPACE}/t-chat"
    assert result.outs is not None
    assert result.outs["status"] == "running"
    assert result.outs["url"] == "https://vksrvs8pc1xnifhq.us-east-1.aws.endpoints.huggingface.cloud"
    assert result.outs["maxReplica"] == 2 and result.outs["token"] == TOKEN
    assert "__provider" not in result.outs  # the dynamic provider host adds it back itself
    # It polled through pending and initializing before returning.
    assert len(api.sent("GET")) == 2
    [post] = api.sent("POST")
    assert post.path == f"/v2/endpoint/{NAMESPACE}"
    body = post.body
    assert body["name"] == "t-chat" and body["type"] == "authenticated"
    assert body["provider"] == {"vendor": "aws", "region": "us-east-1"}
    assert body["compute"] == {"accelerator": "gpu", "instanceType": "nvidia-l4", "instanceSize": "x1",
                               "scaling": {"minReplica": 1, "maxReplica": 2, "scaleToZeroTimeout": None}}
    assert body["model"]["image"] == {"vLLM": {"url": "vllm/vllm-openai:v0.23.0", "port": 8000,
                                               "healthRoute": "/health"}}
    assert body["model"]["revision"] == "c170c708c41dac9275d15a8fff4eca08d52bab71"
    assert body["model"]["task"] == "text-generation" and body["model"]["framework"] == "pytorch"
    assert body["model"]["env"] == {"MAX_MODEL_LEN": "8192"}


def test_scale_to_zero_endpoint_settles_on_scaled_to_zero(api: FakeEndpointsApi, provider: HfEndpointProvider):
    api.script("t-chat", "pending", "initializing", "scaledToZero")
    result = provider.create(inputs(minReplica=0, scaleToZeroTimeout=15))
    assert result.outs is not None and result.outs["status"] == "scaledToZero"
    assert api.sent("POST")[0].body["compute"]["scaling"] == {"minReplica": 0, "maxReplica": 2,
                                                              "scaleToZeroTimeout": 15}


@pytest.mark.parametrize("kind, variant", [("vllm", "vLLM"), ("tgi", "tgi"), ("llamacpp", "llamacpp"),
                                           ("custom", "custom")])
def test_image_kinds_map_to_the_api_variants(kind: str, variant: str):
    image = {"kind": kind, "url": "ghcr.io/example/server:1", "port": 8080, "healthRoute": None,
             "settings": {"ctxSize": 8192}}
    assert image_payload(image) == {variant: {"url": "ghcr.io/example/server:1", "port": 8080, "ctxSize": 8192}}
    assert image_payload(None) == {"huggingface": {}}
    assert HfImage(kind, "u", health_route="/health").to_input()["healthRoute"] == "/health"


def test_failed_endpoint_raises_its_status_message_and_is_deleted(api: FakeEndpointsApi,
                                                                   provider: HfEndpointProvider):
    api.script("t-chat", "pending", ("failed", "Container exited: torch.OutOfMemoryError: CUDA out of memory"))
    with pytest.raises(HfEndpointError, match="is failed: Container exited: torch.OutOfMemoryError") as error:
        provider.create(inputs())
    # Pulumi keeps no state for a failed create: the endpoint must not be left billing.
    assert "deleted" in str(error.value)
    assert [r.path for r in api.sent("DELETE")] == [f"/v2/endpoint/{NAMESPACE}/t-chat"]
    assert not api.endpoints


def test_wait_is_bounded_by_the_timeout(api: FakeEndpointsApi):
    api.script("t-chat", "pending", "initializing")  # never runs
    provider = HfEndpointProvider(poll_interval_seconds=0.05)
    start = time.monotonic()
    with pytest.raises(HfEndpointError, match=r"not running after 0.3 s, still initializing: Endpoint is init"):
        provider.create(inputs(waitTimeoutSeconds=0.3))
    assert time.monotonic() - start < 2.0
    assert not api.endpoints


def test_diff():
    p = HfEndpointProvider()
    olds = {**inputs(), "url": "https://x.endpoints.huggingface.cloud", "status": "running", "__provider": "old"}

    region = p.diff("ns/t-chat", olds, inputs(region="eu-west-1"))
    assert region.changes and region.replaces == ["region"] and region.delete_before_replace
    renamed = p.diff("ns/t-chat", olds, inputs(name="t-chat-2", type="private"))
    assert renamed.replaces == ["name", "type"] and not renamed.delete_before_replace

    scaled = p.diff("ns/t-chat", olds, inputs(maxReplica=4))
    assert scaled.changes and scaled.replaces == [] and not scaled.delete_before_replace
    changes: list[dict[str, Any]] = [
        {"instanceType": "nvidia-a10g"}, {"scaleToZeroTimeout": 30}, {"revision": "1" * 40},
        {"image": {**inputs()["image"], "url": "vllm/vllm-openai:v0.24.0"}}, {"env": {}},
        {"token": "hf_rotated"}, {"waitTimeoutSeconds": 60}]
    for change in changes:
        d = p.diff("ns/t-chat", olds, inputs(**change))
        assert d.changes and d.replaces == [], change

    # Nothing differs: outputs (url, status) and the serialized provider are not inputs to compare.
    same = p.diff("ns/t-chat", olds, inputs(__provider="new"))
    assert same.changes is False and same.replaces == []
    # The client cannot unset a pinned revision in place.
    assert p.diff("ns/t-chat", olds, inputs(revision=None)).replaces == ["revision"]


def test_update_sends_only_what_changed_and_waits(api: FakeEndpointsApi, provider: HfEndpointProvider):
    created = provider.create(inputs())
    assert created.outs is not None
    gets = len(api.sent("GET"))

    updated = provider.update(created.id, created.outs, inputs(maxReplica=4, revision="1" * 40))
    [put] = api.sent("PUT")
    assert put.path == f"/v2/endpoint/{NAMESPACE}/t-chat"
    assert put.body == {"compute": {"scaling": {"maxReplica": 4}}, "model": {"revision": "1" * 40}}
    assert len(api.sent("GET")) == gets + 1  # updating -> running
    assert updated.outs is not None and updated.outs["status"] == "running" and updated.outs["maxReplica"] == 4
    assert api.endpoints[(NAMESPACE, "t-chat")].raw["compute"]["scaling"]["maxReplica"] == 4

    image = {"kind": "tgi", "url": "ghcr.io/huggingface/text-generation-inference:3.3", "port": None,
             "healthRoute": None, "settings": {"maxTotalTokens": 8192}}
    provider.update(created.id, updated.outs, inputs(maxReplica=4, revision="1" * 40, image=image, env={}))
    assert api.sent("PUT")[-1].body == {"model": {"env": {}, "image": {
        "tgi": {"url": "ghcr.io/huggingface/text-generation-inference:3.3", "maxTotalTokens": 8192}}}}

    # A rotated token (or wait bound) changes nothing on the endpoint: no PUT, the new value recorded.
    rotated = provider.update(created.id, created.outs, {**created.outs, "waitTimeoutSeconds": 9})
    assert len(api.sent("PUT")) == 2 and rotated.outs is not None and rotated.outs["waitTimeoutSeconds"] == 9


def test_delete_then_delete_again(api: FakeEndpointsApi, provider: HfEndpointProvider):
    created = provider.create(inputs())
    assert created.outs is not None
    provider.delete(created.id, created.outs)
    assert not api.endpoints
    # Already gone (a 404) is a success.
    provider.delete(created.id, created.outs)
    assert [r.path for r in api.sent("DELETE")] == [f"/v2/endpoint/{NAMESPACE}/t-chat"] * 2


def test_read_reports_live_state_and_gone(api: FakeEndpointsApi, provider: HfEndpointProvider):
    created = provider.create(inputs(revision=None))
    assert created.outs is not None
    # Someone scaled it by hand.
    api.endpoints[(NAMESPACE, "t-chat")].raw["compute"]["scaling"]["maxReplica"] = 5
    live = provider.read(created.id, {**created.outs, "__provider": "p"})
    assert live.id == created.id and live.outs is not None
    assert live.outs["maxReplica"] == 5 and live.outs["status"] == "running"
    assert live.outs["revision"] is None  # left to the API: not a drift
    assert provider.diff(created.id, live.outs, inputs(revision=None)).changes

    del api.endpoints[(NAMESPACE, "t-chat")]
    gone = provider.read(created.id, created.outs)
    assert gone.id is None and gone.outs == {}


def test_wrong_token_is_refused(api: FakeEndpointsApi, provider: HfEndpointProvider):
    with pytest.raises(HfHubHTTPError) as error:
        provider.create(inputs(token="hf_wrong"))
    assert error.value.response.status_code == 401
    assert "hf_wrong" not in str(error.value)
    with pytest.raises(HfEndpointError, match="token"):
        provider.create(inputs(token=""))


def test_token_is_only_ever_the_authorization_header(api: FakeEndpointsApi, provider: HfEndpointProvider,
                                                      caplog: pytest.LogCaptureFixture,
                                                      capsys: pytest.CaptureFixture[str]):
    # huggingface_hub's loggers may not propagate to the root: listen on them directly as well.
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(self.format(record))

    hub_logger = logging.getLogger("huggingface_hub")
    keep, level = Keep(logging.DEBUG), hub_logger.level
    hub_logger.addHandler(keep)
    hub_logger.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    try:
        created = provider.create(inputs())
        assert created.outs is not None
        updated = provider.update(created.id, created.outs, inputs(maxReplica=3))
        assert updated.outs is not None
        provider.read(created.id, updated.outs)
        provider.delete(created.id, updated.outs)
        api.script("t-fail", "pending", ("failed", "boom"))
        with pytest.raises(HfEndpointError) as error:
            provider.create(inputs(name="t-fail"))
    finally:
        hub_logger.removeHandler(keep)
        hub_logger.setLevel(level)

    assert seen or caplog.records  # the client did log (its debug lines), just never the token
    out, err = capsys.readouterr()
    for text in (caplog.text, "\n".join(seen), out, err, str(error.value)):
        assert TOKEN not in text
    assert api.requests and all(r.authorization == f"Bearer {TOKEN}" for r in api.requests)
    for r in api.requests:
        assert TOKEN not in r.path and TOKEN not in json.dumps(r.body)


def test_check_reports_every_problem_at_once():
    p = HfEndpointProvider()
    assert p.check({}, inputs()).failures == []
    bad = inputs(type="protected", minReplica=0, maxReplica=0, token=None, region="",
                 image={"kind": "sglang", "url": ""})
    assert sorted(f.property for f in p.check({}, bad).failures) == [
        "image.kind", "image.url", "maxReplica", "region", "scaleToZeroTimeout", "token", "type"]
    # Values a preview cannot know yet are not judged.
    assert input_problems(inputs(type=pulumi.runtime.rpc.UNKNOWN)) == []


def test_provider_serializes_without_secrets():
    """Pulumi pickles the provider (dill) into every resource's `__provider` input: it must round-trip and
    carry no token (it holds only its poll interval)."""
    blob = serialize_provider(HfEndpointProvider(poll_interval_seconds=3.0))
    # The class goes by reference (the provider host imports components.hf.endpoint), so plain pickle loads it.
    restored = pickle.loads(base64.b64decode(blob))
    assert isinstance(restored, HfEndpointProvider) and restored.poll_interval_seconds == 3.0


def test_resource_registers_with_the_token_secret(monkeypatch: pytest.MonkeyPatch):
    asked: dict[str, list[str]] = {}
    register = preview_mocks.RecordingMonitor.RegisterResource

    def recording(self, request):
        asked[request.name] = list(request.additionalSecretOutputs)
        return register(self, request)

    monkeypatch.setattr(preview_mocks.RecordingMonitor, "RegisterResource", recording)

    def program() -> None:
        endpoint = HfInferenceEndpoint("chat", HfEndpointArgs(
            namespace=NAMESPACE, name="t-chat", vendor="aws", region="us-east-1", accelerator="gpu",
            instance_type="nvidia-l4", instance_size="x1", repository="mistralai/Mistral-7B-Instruct-v0.3",
            token=TOKEN, image=HfImage("vllm", "vllm/vllm-openai:v0.23.0", port=8000)),
            pulumi.ResourceOptions(additional_secret_outputs=["url"]))
        pulumi.export("token", endpoint.token)
        pulumi.export("url", endpoint.url)

    preview = run_program("selfhost-llm", "t", {}, [], program)
    [endpoint] = preview.by_type(TYPE_TOKEN)
    assert TYPE_TOKEN == "pulumi-python:dynamic/hf:InferenceEndpoint"
    assert {"token", "__provider"} <= set(endpoint.secret_paths)
    assert TOKEN not in json.dumps(endpoint.inputs)
    assert endpoint.inputs["instanceType"] == "nvidia-l4" and endpoint.inputs["image"]["kind"] == "vllm"
    # The caller's options are kept, the token added.
    assert sorted(asked["chat"]) == ["token", "url"]
    assert "token" in preview.secret_outputs
    assert resource_options(None).additional_secret_outputs == ["token"]


def test_declaring_endpoints_leaves_the_pickler_as_it_was():
    """pulumi.dynamic wraps the pure-Python pickler's `_batch_setitems` once more per dynamic resource and never
    unwraps it (about a thousand declarations in one process and every dict pickled there hits RecursionError).
    Each declaration restores it."""
    before = pickle._Pickler._batch_setitems, pickle._Pickler.save_dict  # type: ignore[attr-defined]

    def program() -> None:
        for name in ("a", "b", "c"):
            HfInferenceEndpoint(name, HfEndpointArgs(
                namespace=NAMESPACE, name=f"t-{name}", vendor="aws", region="us-east-1", accelerator="gpu",
                instance_type="nvidia-l4", instance_size="x1", repository="mistralai/Mistral-7B-Instruct-v0.3",
                token=TOKEN))

    preview = run_program("selfhost-llm", "t", {}, [], program)
    assert (pickle._Pickler._batch_setitems, pickle._Pickler.save_dict) == before  # type: ignore[attr-defined]
    assert len(preview.by_type(TYPE_TOKEN)) == 3
