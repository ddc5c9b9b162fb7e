"""The adapter's `/metrics` carries the engine's own metrics after its own (the engine's port is not exposed, and an
autoscaler reads vLLM's queue depth there), and still answers at once with its own when the engine cannot.

In process: the adapter app called over ASGI, in front of a tiny local HTTP server as an `external` engine."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from selfhost_adapter import engines
from selfhost_adapter.app import Adapter
from selfhost_adapter.engines import ENGINES
from selfhost_adapter.settings import Settings

from .conftest import free_port, run_async


def vllm_text() -> bytes:
    """Metrics as vLLM serves them, with a family of ours in it too, as an engine that is itself an adapter has."""
    registry = CollectorRegistry()
    Gauge("vllm:num_requests_waiting", "Requests waiting to be processed.", ("model_name",),
          registry=registry).labels("tiny").set(3)
    Counter("vllm:prompt_tokens", "Prefill tokens processed.", ("model_name",),
            registry=registry).labels("tiny").inc(42)
    Gauge("selfhost_engine_ready", "The other adapter's.", registry=registry).set(0)
    return generate_latest(registry)


@dataclass
class FakeEngine:
    """Answers /health at once; /metrics as `mode` says: prometheus, json, missing (404) or slow (never, until
    released)."""

    mode: str = "prometheus"
    release: threading.Event = field(default_factory=threading.Event)
    scrapes: int = 0
    url: str = ""
    kill: Callable[[], None] = lambda: None
    """Stop serving: the port refuses connections from then on."""

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        status, kind, body = 200, "application/json", b'{"status": "ok"}'
        if h.path == "/metrics":
            self.scrapes += 1
            if self.mode == "slow":
                self.release.wait(10)
            if self.mode in ("prometheus", "slow"):
                kind, body = CONTENT_TYPE_LATEST, vllm_text()
            elif self.mode == "missing":
                status, body = 404, b"not found"
        h.send_response(status)
        h.send_header("Content-Type", kind)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)


@pytest.fixture
def engine() -> Iterator[FakeEngine]:
    fake = FakeEngine()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.handle(self)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_port}"

    def kill() -> None:
        server.shutdown()
        server.server_close()

    fake.kill = kill
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)  # quick to shut down
    thread.start()
    yield fake
    fake.release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


async def get(adapter: Adapter, path: str) -> tuple[int, str, str]:
    sent: list[dict] = []

    async def receive() -> dict:
        await asyncio.Event().wait()  # a GET route reads no body
        return {}

    async def send(message: dict) -> None:
        sent.append(message)

    await adapter({"type": "http", "method": "GET", "path": path, "headers": []}, receive, send)
    headers = dict(sent[0]["headers"])
    return sent[0]["status"], headers[b"content-type"].decode(), b"".join(m.get("body", b"") for m in sent[1:]).decode()


def scrape(url: str, ready: bool = True, before: Callable[[], None] = lambda: None) -> tuple[int, str, str, float]:
    """(status, content type, text, seconds) of one GET /metrics of an adapter in front of `url`, once it has seen
    the engine ready (or, with `ready` false, given up waiting), and `before` has run."""

    async def run() -> tuple[int, str, str, float]:
        adapter = Adapter(Settings(engine="external", engine_url=url))
        adapter.engine.start()
        try:
            assert await adapter.engine.wait_ready(5 if ready else 0.3) is ready
            before()
            started = time.monotonic()
            status, kind, text = await get(adapter, "/metrics")
            return status, kind, text, time.monotonic() - started
        finally:
            await adapter.engine.stop()

    return run_async(run())


def families(text: str) -> dict[str, list]:
    names = [f.name for f in text_string_to_metric_families(text)]
    assert len(names) == len(set(names)), f"a metric family twice: {names}"
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_the_engine_table_says_where_metrics_are() -> None:
    assert ENGINES["vllm"].metrics_path == "/metrics"
    assert ENGINES["llamacpp"].metrics_path is None  # llama-cpp-python's server has none
    assert ENGINES["external"].metrics_path == "/metrics"
    assert engines.METRICS_TIMEOUT_SECONDS <= 2.0


def test_engine_metrics_follow_the_adapters_as_valid_prometheus_text(engine: FakeEngine) -> None:
    status, kind, text, _ = scrape(engine.url)
    assert status == 200 and kind.startswith("text/plain")
    assert text.index("selfhost_engine_ready") < text.index("vllm:num_requests_waiting")
    found = families(text)
    assert [s.value for s in found["vllm:num_requests_waiting"]] == [3.0]
    assert found["vllm:num_requests_waiting"][0].labels == {"model_name": "tiny"}
    assert "vllm:prompt_tokens" in found and "selfhost_requests" in found
    # The engine's copy of a family of ours is left out: the adapter's own value stands.
    assert [s.value for s in found["selfhost_engine_ready"]] == [1.0]


@pytest.mark.parametrize("mode", ["json", "missing"])
def test_an_engine_without_prometheus_metrics_adds_nothing(engine: FakeEngine, mode: str) -> None:
    engine.mode = mode
    status, _, text, _ = scrape(engine.url)
    found = families(text)
    assert status == 200 and engine.scrapes == 1
    assert "selfhost_engine_ready" in found and not any(name.startswith("vllm:") for name in found)


def test_a_slow_engine_costs_the_scrape_the_timeout_at_most(engine: FakeEngine,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "METRICS_TIMEOUT_SECONDS", 0.3)
    engine.mode = "slow"
    status, _, text, seconds = scrape(engine.url)
    assert status == 200 and 0.3 <= seconds < 1.3
    found = families(text)
    assert [s.value for s in found["selfhost_engine_ready"]] == [1.0] and "vllm:num_requests_waiting" not in found


def test_a_dead_engine_still_leaves_the_adapters_metrics(engine: FakeEngine) -> None:
    # Gone right after it was seen ready: the scrape finds the port closed before a health check notices.
    status, _, text, seconds = scrape(engine.url, before=engine.kill)
    found = families(text)
    assert status == 200 and seconds < 1.0
    assert "selfhost_engine_ready" in found and "vllm:num_requests_waiting" not in found


def test_an_engine_that_is_not_ready_is_not_asked(engine: FakeEngine) -> None:
    status, _, text, seconds = scrape(f"http://127.0.0.1:{free_port()}", ready=False)
    found = families(text)
    assert status == 200 and seconds < 0.5
    assert [s.value for s in found["selfhost_engine_ready"]] == [0.0] and "vllm:num_requests_waiting" not in found


def test_liveness_answers_while_the_engine_is_down_and_readiness_does_not() -> None:
    # Kubernetes restarts a pod whose liveness check fails: that must not happen while the adapter restarts its
    # engine (minutes for a large model), so /livez is the adapter's own answer and /health the engine's.
    async def run() -> tuple[tuple[int, str, str], tuple[int, str, str]]:
        adapter = Adapter(Settings(engine="external", engine_url=f"http://127.0.0.1:{free_port()}"))
        adapter.engine.start()
        try:
            assert await adapter.engine.wait_ready(0.3) is False
            return await get(adapter, "/livez"), await get(adapter, "/health")
        finally:
            await adapter.engine.stop()

    (live, _, body), (health, _, _) = run_async(run())
    assert (live, health) == (200, 503)
    assert '"status": "alive"' in body
