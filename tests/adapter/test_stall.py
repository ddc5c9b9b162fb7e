"""A frozen engine is told apart from a busy one and taken out of rotation in seconds (issue 25).

llama.cpp stopped with SIGSTOP (as a hung driver or a deadlock leaves an engine: the process is there, its port
takes connections, nothing answers): within the stall window `/ping`, `/health` and `/metrics`' readiness say
503, the request waiting on it is answered 503 with Retry-After at that moment, not at its client's timeout, and
new ones at once; after SIGCONT everything is 200 again, with no restart. The busy side (long generations at full
concurrency never marked down) is `test_long_load.py`, whose pinger asks `/ping` and `/health` throughout.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from .conftest import LLAMA_SETTINGS, Running, auth, metric, start_adapter, start_upstream, stop_process, wait_until

pytestmark = pytest.mark.slow

STALL_SECONDS = 12.0  # the default window, which this test measures
MARGIN_SECONDS = 2.0
CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


class Watcher(threading.Thread):
    """Asks the readiness routes every 0.2 s and notes when each first answered 503 (bounded: 2 minutes)."""

    ROUTES = ("/ping", "/health")

    def __init__(self, running: Running) -> None:
        super().__init__(daemon=True)
        self.running = running
        self.first_503: dict[str, float] = {}
        self.statuses: list[tuple[float, str, int]] = []
        self.done = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + 120
        with httpx.Client(timeout=2) as client:
            while not self.done.is_set() and time.monotonic() < deadline:
                for route in self.ROUTES:
                    try:
                        status = client.get(self.running.url + route).status_code
                    except httpx.HTTPError:
                        status = 0
                    now = time.monotonic()
                    self.statuses.append((now, route, status))
                    if status == 503:
                        self.first_503.setdefault(route, now)
                self.done.wait(0.2)


@pytest.fixture
def stallable(tiny_model: Path, keys_file: Path, tmp_path: Path) -> Iterator[Running]:
    running = start_adapter(tmp_path, "all", "--engine", "llamacpp", "--model", str(tiny_model),
                            "--api-keys-file", str(keys_file), *LLAMA_SETTINGS)
    yield running
    for pid in running.engine_pids():  # never leave a stopped engine behind
        os.kill(pid, signal.SIGCONT)
    stop_process(running.proc)


def test_a_frozen_engine_is_out_of_rotation_within_the_window_and_back_after(stallable: Running) -> None:
    running = stallable
    assert httpx.post(running.url + "/invocations", json=CHAT, timeout=30).status_code == 200
    [engine] = running.engine_pids()
    watcher = Watcher(running)
    watcher.start()
    try:
        time.sleep(0.5)
        os.kill(engine, signal.SIGSTOP)
        frozen = time.monotonic()
        with ThreadPoolExecutor(2) as pool:
            # Requests that reach the frozen engine and wait on it, well within their clients' 60 s.
            time.sleep(1.0)
            unary = pool.submit(httpx.post, running.url + "/v1/chat/completions", json=CHAT, headers=auth(),
                                timeout=60)
            vertex = pool.submit(httpx.post, running.url + "/predict", json={"instances": ["a", "b"]}, timeout=60)
            answers = [unary.result(), vertex.result()]
            answered = time.monotonic() - frozen
        wait_until(lambda: len(watcher.first_503) == 2, MARGIN_SECONDS, "both readiness routes 503")
        assert httpx.get(running.url + "/livez", timeout=2).status_code == 200  # the adapter itself is fine
        started = time.monotonic()
        fresh = httpx.post(running.url + "/invocations", json=CHAT, timeout=60)
        fresh_seconds = time.monotonic() - started
        stalled_ready = metric(running, "selfhost_engine_ready")
        os.kill(engine, signal.SIGCONT)
        resumed = time.monotonic()
        wait_until(lambda: watcher.statuses[-1][2] == 200 and watcher.statuses[-2][2] == 200, 10, "200 again")
        back_after = time.monotonic() - resumed
        after = httpx.post(running.url + "/invocations", json=CHAT, timeout=30)
    finally:
        watcher.done.set()
        watcher.join(5)
        os.kill(engine, signal.SIGCONT)
    ping_after, health_after = (watcher.first_503[r] - frozen for r in Watcher.ROUTES)
    print(f"\nafter SIGSTOP: /ping 503 at {ping_after:.1f} s, /health 503 at {health_after:.1f} s, waiting "
          f"requests answered at {answered:.1f} s, a new one in {fresh_seconds * 1000:.0f} ms; after SIGCONT "
          f"200 within {back_after:.1f} s")
    # Not before the window (the engine may have answered up to one probe interval before it froze) ...
    for seconds in (ping_after, health_after, answered):
        assert STALL_SECONDS - 2.5 <= seconds <= STALL_SECONDS + MARGIN_SECONDS, (ping_after, health_after,
                                                                                  answered)
    # ... and answered with a 503 to retry elsewhere, in the usual error shape.
    for r in [*answers, fresh]:
        assert r.status_code == 503 and r.headers["retry-after"], r.text
        assert r.json()["error"]["code"] == "engine_stalled", r.text
    assert fresh_seconds < 1.0 and stalled_ready == 0.0
    assert back_after < 5 and after.status_code == 200, after.text
    assert running.engine_pids() == [engine] and metric(running, "selfhost_engine_starts") == 1.0  # no restart
    statuses = {status for _, _, status in watcher.statuses}
    assert statuses <= {200, 503}, statuses  # never a hang or a dropped connection


def test_a_stream_cut_by_a_frozen_engine_ends_with_an_error_event(tmp_path: Path) -> None:
    """A stream under way when its engine freezes ends, at the stall, with a last event holding the 503 and a
    proper end (the instant upstream, dripping an event every 0.2 s, is the engine: SIGSTOP freezes it)."""
    upstream = start_upstream(tmp_path / "upstream")
    running = start_adapter(tmp_path / "adapter", "all", "--engine", "external", "--engine-url", upstream.url,
                            "--engine-stall-seconds", "2")
    events: list[str] = []
    outcome: dict[str, object] = {}

    def stream() -> None:
        chat = {"messages": [{"role": "user", "content": "drip:0.2"}], "max_tokens": 50, "stream": True}
        try:
            with httpx.stream("POST", running.url + "/v1/chat/completions", json=chat, timeout=30) as r:
                events.extend(line[5:].strip() for line in r.iter_lines() if line.startswith("data:"))
            outcome["status"] = r.status_code
        except httpx.HTTPError as exc:
            outcome["status"] = exc

    reader = threading.Thread(target=stream)
    try:
        reader.start()
        wait_until(lambda: len(events) >= 2, 10, "stream under way")
        time.sleep(0.5)
        os.kill(upstream.proc.pid, signal.SIGSTOP)
        frozen = time.monotonic()
        reader.join(10)
        ended = time.monotonic() - frozen
        ping = httpx.get(running.url + "/ping", timeout=2).status_code
        os.kill(upstream.proc.pid, signal.SIGCONT)
        wait_until(lambda: httpx.get(running.url + "/ping", timeout=2).status_code == 200, 10, "200 again")
    finally:
        os.kill(upstream.proc.pid, signal.SIGCONT)
        stop_process(running.proc)
        stop_process(upstream.proc)
    assert outcome["status"] == 200, outcome
    assert 2 <= len(events) < 50 and json.loads(events[-1])["error"]["code"] == "engine_stalled", events[-3:]
    assert 1.5 <= ended <= 2 + MARGIN_SECONDS, ended
    assert ping == 503
