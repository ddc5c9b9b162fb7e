"""Long generations under load, against llama.cpp on a model slow enough for answers of half a minute
(issue 8, defect 1). The old supervisor probed `/v1/models`, which llama-cpp-python serves only between
generations: after about 12 s of continuous generation it declared the engine dead, cut its streams, answered
503 and restarted it. A busy engine must be left to work."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from .conftest import Running, auth, metric, start_adapter, stop_process
from .tinymodel import SLOW, write_tiny_llama

pytestmark = pytest.mark.slow

LONG_SECONDS = 31.0  # each long generation is sized to take at least this long here
USER = [{"role": "user", "content": "Tell a long story"}]


@pytest.fixture(scope="module")
def busy(keys_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    model = write_tiny_llama(tmp_path_factory.mktemp("slow-model") / "slow.gguf", shape=SLOW)
    # One thread: the engine keeps a core busy, the adapter and the test clients have the other.
    running = start_adapter(tmp_path_factory.mktemp("busy"), "all", "--engine", "llamacpp", "--model", str(model),
                            "--api-keys-file", str(keys_file), "--max-tokens-cap", str(SLOW.n_ctx - 256),
                            "--engine-args", f"--n_threads 1 --n_ctx {SLOW.n_ctx}")
    yield running
    stop_process(running.proc)


def tokens_for(running: Running, seconds: float) -> int:
    """How many tokens take at least `seconds` to generate here. These machines are shared: the fastest of
    three measurements is the engine's own speed (others only slow it down), so the answers last at least that
    long whatever else runs meanwhile."""
    per_token = []
    for _ in range(3):
        started = time.monotonic()
        r = httpx.post(running.url + "/v1/completions", json={"prompt": "calibrate", "max_tokens": 64},
                       headers=auth(), timeout=60)
        assert r.status_code == 200
        per_token.append((time.monotonic() - started) / 64)
    return min(SLOW.n_ctx - 256, math.ceil(seconds / min(per_token)))


def pieces(text: str) -> list[str]:
    data = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
    return data


class Pinger(threading.Thread):
    """Asks /ping and /health every half second, as SageMaker, load balancers and Kubernetes do, until stopped
    (bounded: at most 10 minutes). A busy engine must never be taken for a frozen one (issue 25): all 200."""

    def __init__(self, running: Running) -> None:
        super().__init__(daemon=True)
        self.running = running
        self.statuses: list[int] = []
        self.done = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + 600
        while not self.done.is_set() and time.monotonic() < deadline:
            for route in ("/ping", "/health"):
                try:
                    self.statuses.append(httpx.get(self.running.url + route, timeout=2).status_code)
                except httpx.HTTPError:
                    self.statuses.append(0)
            self.done.wait(0.5)


def test_long_generations_streamed_and_not_are_never_cut(busy: Running) -> None:
    n = tokens_for(busy, LONG_SECONDS)
    pinger = Pinger(busy)
    pinger.start()
    results: dict[str, tuple[int, str, float]] = {}

    def streamed() -> None:
        started = time.monotonic()
        body = {"messages": USER, "max_tokens": n, "stream": True}
        with httpx.stream("POST", busy.url + "/v1/chat/completions", json=body, headers=auth(), timeout=300) as r:
            text = "".join(r.iter_text())
        results["stream"] = (r.status_code, text, time.monotonic() - started)

    def unary() -> None:
        started = time.monotonic()
        r = httpx.post(busy.url + "/invocations", json={"prompt": "Once upon a time", "max_tokens": n}, timeout=300)
        results["unary"] = (r.status_code, r.text, time.monotonic() - started)

    try:
        first = threading.Thread(target=streamed)
        first.start()
        time.sleep(1.0)  # the unary request queues behind the stream in llama.cpp, then generates as long
        second = threading.Thread(target=unary)
        second.start()
        first.join(300)
        second.join(300)
    finally:
        pinger.done.set()
        pinger.join(5)
    status, text, seconds = results["stream"]
    data = pieces(text)
    assert status == 200 and data[-1] == "[DONE]", data[-3:]
    assert sum(bool(json.loads(d)["choices"][0]["delta"].get("content")) for d in data[:-1]) == n
    assert seconds >= 30, f"the stream took {seconds:.1f} s: not a long generation"
    status, text, seconds = results["unary"]
    assert status == 200 and json.loads(text)["usage"]["completion_tokens"] == n, text[:300]
    assert seconds >= 30
    assert pinger.statuses and set(pinger.statuses) == {200}, pinger.statuses
    assert metric(busy, "selfhost_engine_starts") == 1.0


def test_32_concurrent_long_requests_over_three_contracts_none_cut(busy: Running) -> None:
    """32 at once, about a second of generation each: llama.cpp runs one at a time, so the last answers wait
    half a minute and more. Every answer whole, every token there, no 503, no restart."""
    n = tokens_for(busy, 1.25)
    streamed_chat = ("/v1/chat/completions", {"messages": USER, "max_tokens": n, "stream": True}, auth())
    unary_completion = ("/v1/completions", {"prompt": "Once", "max_tokens": n}, auth())
    sagemaker_chat = ("/invocations", {"messages": USER, "max_tokens": n}, {})
    sagemaker_tgi_stream = ("/invocations-response-stream", {"inputs": "Once", "parameters": {"max_new_tokens": n}},
                            {})
    vertex = ("/predict", {"instances": [{"prompt": "Once"}], "parameters": {"max_tokens": n}}, {})
    mix = [streamed_chat, unary_completion, sagemaker_chat, sagemaker_tgi_stream, vertex]

    def one(i: int) -> tuple[str, int, str, float]:
        path, body, headers = mix[i % len(mix)]
        started = time.monotonic()
        r = httpx.post(busy.url + path, json=body, headers=headers, timeout=300)
        return path, r.status_code, r.text, time.monotonic() - started

    pinger = Pinger(busy)
    pinger.start()
    try:
        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(one, range(32)))
    finally:
        pinger.done.set()
        pinger.join(5)
    for path, status, text, _ in answers:
        assert status == 200, (path, text[:300])
        if path == "/v1/chat/completions":
            data = pieces(text)
            assert data[-1] == "[DONE]" and len(data) - 1 >= n, (path, data[-2:])
            assert sum(bool(json.loads(d)["choices"][0]["delta"].get("content")) for d in data[:-1]) == n
        elif path == "/invocations-response-stream":
            events = [json.loads(d) for d in pieces(text)]
            assert sum(not e["token"]["special"] for e in events) == n, events[-2:]
            assert events[-1]["generated_text"] is not None and len(events[-1]["generated_text"]) >= n
        elif path == "/predict":
            assert json.loads(text)["predictions"][0]["usage"]["completion_tokens"] == n
        else:
            assert json.loads(text)["usage"]["completion_tokens"] == n
    slowest = max(seconds for *_, seconds in answers)
    assert slowest >= 30, f"the slowest answer took {slowest:.1f} s: the load was not long"
    assert metric(busy, "selfhost_engine_starts") == 1.0
    assert not [e for e in busy.access_log() if e["status"] != 200]
    assert len(pinger.statuses) >= 60 and set(pinger.statuses) == {200}, pinger.statuses  # never stalled
