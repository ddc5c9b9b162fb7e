"""End to end through the adapter, against llama.cpp serving the tiny GGUF model (and, where timing must be
controlled, against the instant upstream). Every contract, every error code, the engine killed mid-run, a
drain on SIGTERM, and a bounded load with none lost."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from benchmarks.loadgen import build_request, run_load

from .conftest import (
    KEYS,
    LLAMA_SETTINGS,
    Running,
    auth,
    log_of,
    metric,
    run_async,
    start_adapter,
    stop_process,
    wait_until,
)

pytestmark = pytest.mark.slow

CHAT = {"messages": [{"role": "user", "content": "Say something"}], "max_tokens": 8}


def sse_data(text: str) -> list[str]:
    return [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]


# --- health and the OpenAI contract ----------------------------------------------------------------------------

def test_ready_only_with_the_model_loaded(llama: Running) -> None:
    for path in ("/health", "/ping", "/health"):
        assert httpx.get(llama.url + path).json() == {"status": "ready"}
    assert metric(llama, "selfhost_engine_ready") == 1.0
    models = httpx.get(llama.url + "/v1/models", headers=auth()).json()
    assert [m["id"] for m in models["data"]] == ["tiny", "gpt-4o-mini"]
    # Probes are counted, but kept out of the usage log.
    assert metric(llama, "selfhost_requests_total", route="sagemaker_ping", key_id="-", status="200") >= 1
    assert not any(e["route"] in ("health", "sagemaker_ping", "metrics") for e in llama.access_log())


def test_openai_chat_answers_and_logs_usage_without_prompt_or_key(llama: Running) -> None:
    r = httpx.post(llama.url + "/v1/chat/completions", json=CHAT, headers=auth("team-b"), timeout=30)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["choices"][0]["message"]["role"] == "assistant"
    assert doc["usage"]["completion_tokens"] == 8  # the tiny model never stops early
    entry = log_of(llama, r)
    assert entry["status"] == 200 and entry["key_id"] == "team-b" and entry["stream"] is False
    assert entry["completion_tokens"] == 8 and entry["prompt_tokens"] == doc["usage"]["prompt_tokens"] > 0
    assert entry["route"] == "openai_chat"
    assert "prompt" not in entry and "Say something" not in llama.stdout.read_text()
    assert metric(llama, "selfhost_completion_tokens_total", key_id="team-b") >= 8


def test_openai_chat_streams_event_by_event(llama: Running) -> None:
    body = {**CHAT, "stream": True, "max_tokens": 12}
    with httpx.stream("POST", llama.url + "/v1/chat/completions", json=body, headers=auth(), timeout=30) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    data = sse_data(text)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    pieces = [ch["choices"][0]["delta"].get("content") for ch in chunks if ch["choices"][0]["delta"].get("content")]
    assert len(pieces) == 12
    entry = log_of(llama, r)
    assert entry["stream"] is True and entry["completion_tokens"] == 12 and entry["tokens_counted"] == "chunks"


def test_openai_completions(llama: Running) -> None:
    r = httpx.post(llama.url + "/v1/completions", json={"prompt": "Once", "max_tokens": 5}, headers=auth(),
                   timeout=30)
    assert r.status_code == 200
    assert len(r.json()["choices"][0]["text"]) >= 5
    assert r.json()["usage"]["completion_tokens"] == 5


def test_streams_are_passed_on_as_they_come(gated: Running) -> None:
    """The upstream sends one event every 0.2 s: the first must reach the client long before the last."""
    body = {"messages": [{"role": "user", "content": "drip:0.2"}], "max_tokens": 5, "stream": True}
    arrivals = []
    started = time.monotonic()
    with httpx.stream("POST", gated.url + "/v1/chat/completions", json=body, headers=auth(), timeout=10) as r:
        for line in r.iter_lines():
            if line.startswith("data:"):
                arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 6  # 5 pieces and [DONE]
    assert arrivals[0] < 0.6 and arrivals[-1] > 1.0
    entry = log_of(gated, r)
    # The instant upstream honours include_usage only when asked; the adapter asks only vLLM for it.
    assert entry["completion_tokens"] == 5


# --- SageMaker ---------------------------------------------------------------------------------------------------

def test_sagemaker_invocations_take_openai_and_tgi_bodies(llama: Running) -> None:
    r = httpx.post(llama.url + "/invocations", json=CHAT, timeout=30)
    assert r.status_code == 200 and r.json()["object"] == "chat.completion"
    r = httpx.post(llama.url + "/invocations", json={"prompt": "Hi", "max_tokens": 4}, timeout=30)
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 4
    r = httpx.post(llama.url + "/invocations", json={"inputs": "Hello", "parameters": {
        "max_new_tokens": 6, "temperature": 0.7, "return_full_text": True}}, timeout=30)
    assert r.status_code == 200, r.text
    [answer] = r.json()
    assert answer["generated_text"].startswith("Hello") and len(answer["generated_text"]) >= len("Hello") + 6
    entry = log_of(llama, r)
    assert entry["key_id"] == "-" and entry["completion_tokens"] == 6


def test_sagemaker_response_stream_openai_and_tgi(llama: Running) -> None:
    r = httpx.post(llama.url + "/invocations-response-stream", json=CHAT, timeout=30)
    assert r.status_code == 200 and sse_data(r.text)[-1] == "[DONE]"
    r = httpx.post(llama.url + "/invocations-response-stream",
                   json={"inputs": "Hey", "parameters": {"max_new_tokens": 5}}, timeout=30)
    assert r.status_code == 200
    events = [json.loads(d) for d in sse_data(r.text)]
    assert all("token" in e for e in events)
    text = "".join(e["token"]["text"] for e in events)
    assert events[-1]["generated_text"] == text and all(e["generated_text"] is None for e in events[:-1])


# --- Vertex ------------------------------------------------------------------------------------------------------

def test_vertex_predict_several_instances(llama: Running) -> None:
    body = {"instances": [{"prompt": "one"}, "two", {"messages": [{"role": "user", "content": "three"}]}],
            "parameters": {"max_tokens": 3}}
    r = httpx.post(llama.url + "/predict", json=body, timeout=60)
    assert r.status_code == 200, r.text
    predictions = r.json()["predictions"]
    assert [p["object"] for p in predictions] == ["text_completion", "text_completion", "chat.completion"]
    assert all(p["usage"]["completion_tokens"] == 3 for p in predictions)
    entry = log_of(llama, r)
    assert entry["instances"] == 3 and entry["completion_tokens"] == 9


def test_vertex_predict_answers_an_openai_chat_body_plain_and_streamed(llama: Running) -> None:
    """Vertex's OpenAI-compatible route forwards the chat body as sent, `model` empty, to the predict route."""
    body = {"model": "", "messages": [{"role": "user", "content": "Say something"}], "max_tokens": 6}
    r = httpx.post(llama.url + "/predict", json=body, timeout=60)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["object"] == "chat.completion" and doc["model"] == "tiny"
    assert doc["choices"][0]["message"]["content"] and doc["usage"]["completion_tokens"] == 6
    entry = log_of(llama, r)
    assert (entry["route"], entry["stream"], entry["completion_tokens"]) == ("vertex_predict", False, 6)
    with httpx.stream("POST", llama.url + "/predict", json={**body, "stream": True}, timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    data = sse_data(text)
    assert data[-1] == "[DONE]"
    pieces = [d["choices"][0]["delta"].get("content") for d in map(json.loads, data[:-1])]
    assert len([p for p in pieces if p]) == 6
    entry = log_of(llama, r)
    assert (entry["route"], entry["stream"], entry["completion_tokens"]) == ("vertex_predict", True, 6)
    # Vertex's own body still gets predictions; a body of neither kind a 422 naming both.
    r = httpx.post(llama.url + "/predict", json={"instances": ["one"], "parameters": {"max_tokens": 2}}, timeout=60)
    assert r.status_code == 200 and len(r.json()["predictions"]) == 1
    r = httpx.post(llama.url + "/predict", json={"prompt": "x", "max_tokens": 2}, timeout=60)
    assert r.status_code == 422 and r.json()["error"]["param"] == "instances"
    assert "'messages'" in r.json()["error"]["message"]


def test_vertex_instances_go_to_the_engine_concurrently(gated: Running) -> None:
    body = {"instances": [{"prompt": "sleep:0.4"}] * 4, "parameters": {"max_tokens": 2}}
    started = time.monotonic()
    r = httpx.post(gated.url + "/predict", json=body, timeout=10)
    assert r.status_code == 200 and len(r.json()["predictions"]) == 4
    assert time.monotonic() - started < 1.2  # one after another would take 1.6 s


def test_vertex_routes_follow_the_aip_variables(upstream: Running, tmp_path: Path) -> None:
    env = {"AIP_HEALTH_ROUTE": "/v1/endpoints/7/deployedModels/8", "AIP_PREDICT_ROUTE": "/v1/endpoints/7:predict"}
    running = start_adapter(tmp_path, "vertex", "--engine", "external", "--engine-url", upstream.url, env=env)
    try:
        assert httpx.get(running.url + env["AIP_HEALTH_ROUTE"]).status_code == 200
        r = httpx.post(running.url + env["AIP_PREDICT_ROUTE"], json={"instances": ["a", "b"]})
        assert r.status_code == 200 and len(r.json()["predictions"]) == 2
        assert httpx.post(running.url + "/invocations", json=CHAT).status_code == 404  # not SageMaker here
    finally:
        stop_process(running.proc)


# --- every error code ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("path, content, headers, status", [
    ("/v1/chat/completions", b"{nope", auth(), 400),
    ("/v1/chat/completions", b"[]", auth(), 400),
    ("/invocations", b"not json", {}, 400),
    ("/v1/chat/completions", json.dumps(CHAT).encode(), {}, 401),
    ("/v1/chat/completions", json.dumps(CHAT).encode(), {"authorization": "Bearer sk-wrong-key"}, 401),
    ("/v1/chat/completions", json.dumps({**CHAT, "max_tokens": 65}).encode(), auth(), 422),
    ("/v1/chat/completions", json.dumps({**CHAT, "temperature": -1}).encode(), auth(), 422),
    ("/v1/completions", json.dumps({"max_tokens": 4}).encode(), auth(), 422),
    ("/invocations", json.dumps({"inputs": "x", "parameters": {"best_of": 3}}).encode(), {}, 422),
    ("/predict", json.dumps({"instances": []}).encode(), {}, 422),
    ("/v1/chat/completions", b'{"messages": "' + b"x" * 70_000 + b'"}', auth(), 413),
    ("/v1/nothing", b"{}", auth(), 404),
])
def test_errors_are_clear_json(llama: Running, path: str, content: bytes, headers: dict, status: int) -> None:
    r = httpx.post(llama.url + path, content=content, headers={"content-type": "application/json", **headers},
                   timeout=30)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["message"] and error["code"]
    assert not any(key in r.text for key in KEYS.values())


def test_wrong_method_is_405(llama: Running) -> None:
    assert httpx.get(llama.url + "/invocations").status_code == 405


def test_413_also_for_a_body_without_length(llama: Running) -> None:
    def chunks():
        for _ in range(20):
            yield b"x" * 4096
    r = httpx.post(llama.url + "/invocations", content=chunks(), timeout=30)
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"


def test_engine_refusals_pass_on_in_our_shape(gated: Running) -> None:
    r = httpx.post(gated.url + "/v1/completions", json={"prompt": "status:400", "max_tokens": 1}, headers=auth())
    assert r.status_code == 400 and "as asked" in r.json()["error"]["message"]
    r = httpx.post(gated.url + "/v1/completions", json={"prompt": "status:500", "max_tokens": 1}, headers=auth())
    assert r.status_code == 502 and r.json()["error"]["code"] == "engine_error"


def test_429_past_the_per_key_limit_and_only_for_that_key(gated: Running) -> None:
    slow = {"prompt": "sleep:0.8", "max_tokens": 1}  # under the 1 s engine timeout
    with ThreadPoolExecutor(2) as pool:
        held = [pool.submit(httpx.post, gated.url + "/v1/completions", json=slow, headers=auth(), timeout=10)
                for _ in range(2)]
        wait_until(lambda: metric(gated, "selfhost_requests_in_flight", key_id="team-a") == 2, 5, "2 in flight")
        r = httpx.post(gated.url + "/v1/completions", json={"prompt": "x", "max_tokens": 1}, headers=auth())
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        other = httpx.post(gated.url + "/v1/completions", json={"prompt": "x", "max_tokens": 1},
                           headers=auth("team-b"))
        assert other.status_code == 200
        assert [f.result().status_code for f in held] == [200, 200]
    r = httpx.post(gated.url + "/v1/completions", json={"prompt": "x", "max_tokens": 1}, headers=auth())
    assert r.status_code == 200


def test_504_when_the_engine_is_too_slow(gated: Running) -> None:
    started = time.monotonic()
    r = httpx.post(gated.url + "/v1/completions", json={"prompt": "sleep:3", "max_tokens": 1}, headers=auth(),
                   timeout=10)
    assert r.status_code == 504 and r.json()["error"]["code"] == "engine_timeout"
    assert time.monotonic() - started < 2.5
    r = httpx.post(gated.url + "/invocations-response-stream", json={"prompt": "sleep:3", "max_tokens": 1},
                   timeout=10)
    assert r.status_code == 504


def test_503_before_the_engine_is_ready(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{_closed_port()}"
    running = start_adapter(tmp_path, "all", "--engine", "external", "--engine-url", dead, wait_ready=False)
    try:
        wait_until(lambda: _status(running, "/ping") == 503, 30, "adapter answering")
        for path, body in (("/invocations", CHAT), ("/v1/chat/completions", CHAT), ("/predict", {"instances": ["a"]})):
            r = httpx.post(running.url + path, json=body)
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            assert r.json()["error"]["code"] == "engine_unavailable"
    finally:
        stop_process(running.proc)


def _closed_port() -> int:
    from .conftest import free_port
    return free_port()


def _status(running: Running, path: str) -> int:
    try:
        return httpx.get(running.url + path, timeout=2).status_code
    except httpx.HTTPError:
        return 0


def test_keys_never_reach_logs_or_metrics(llama: Running) -> None:
    httpx.post(llama.url + "/v1/chat/completions", json=CHAT, headers=auth("team-a"), timeout=30)
    httpx.post(llama.url + "/v1/chat/completions", json=CHAT, headers={"authorization": "Bearer sk-guess"})
    output = llama.all_output() + httpx.get(llama.url + "/metrics").text
    assert not any(secret in output for secret in [*KEYS.values(), "sk-guess"])
    assert 'key_id="team-a"' in output


# --- the engine dies, the adapter drains -----------------------------------------------------------------------

def test_engine_killed_mid_run_503_then_recovery(tiny_model: Path, keys_file: Path, tmp_path: Path) -> None:
    running = start_adapter(tmp_path, "all", "--engine", "llamacpp", "--model", str(tiny_model),
                            "--api-keys-file", str(keys_file), *LLAMA_SETTINGS)
    statuses: list[int] = []
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(timeout=30) as client:
            for _ in range(2000):  # bounded; the test stops it long before
                if stop.is_set():
                    return
                status = client.post(running.url + "/invocations", json=CHAT).status_code
                statuses.append(status)
                if status == 503:
                    time.sleep(0.05)  # as a client honouring Retry-After would, if more eagerly

    try:
        [engine] = running.engine_pids()
        worker = threading.Thread(target=traffic)
        worker.start()
        wait_until(lambda: len(statuses) >= 3, 30, "traffic flowing")
        os.kill(engine, signal.SIGKILL)
        wait_until(lambda: 503 in statuses, 10, "503 once the engine is gone")
        wait_until(lambda: statuses[-1] == 200 and running.healthy(), 60, "recovery")
        stop.set()
        worker.join(30)
        assert set(statuses) <= {200, 503}, statuses  # never a hang, a 500 or a dropped connection
        assert engine not in running.engine_pids() and len(running.engine_pids()) == 1
        assert metric(running, "selfhost_engine_starts") == 2.0
    finally:
        stop.set()
        stop_process(running.proc)
    assert running.proc.returncode == -signal.SIGTERM  # uvicorn re-raises the signal once it has shut down
    assert running.engine_pids() == []


def test_sigterm_drains_in_flight_requests(upstream: Running, tmp_path: Path) -> None:
    running = start_adapter(tmp_path, "all", "--engine", "external", "--engine-url", upstream.url,
                            "--drain-seconds", "10")
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(httpx.post, running.url + "/invocations",
                              json={"prompt": "sleep:1", "max_tokens": 2}, timeout=10)
        wait_until(lambda: metric(running, "selfhost_requests_in_flight", key_id="-") == 1, 5, "in flight")
        running.proc.send_signal(signal.SIGTERM)
        assert pending.result().status_code == 200
    assert running.proc.wait(15) == -signal.SIGTERM
    assert [e["status"] for e in running.access_log() if e["route"] == "sagemaker_invocations"] == [200]


# --- bounded load --------------------------------------------------------------------------------------------------

def test_200_requests_at_16_concurrent_none_lost(llama: Running) -> None:
    before = metric(llama, "selfhost_requests_total", route="openai_chat", key_id="team-a", status="200")
    body = json.dumps({**CHAT, "max_tokens": 4}).encode()
    raw = build_request("127.0.0.1", llama.port, "POST", "/v1/chat/completions", body, auth())
    result = run_async(run_load("127.0.0.1", llama.port, raw, total=200, concurrency=16, deadline_seconds=180,
                                  keep_bodies=True))
    assert result.not_sent == 0 and not result.errors
    assert dict(result.statuses) == {200: 200}
    assert all(json.loads(b)["usage"]["completion_tokens"] == 4 for b in result.bodies)
    after = metric(llama, "selfhost_requests_total", route="openai_chat", key_id="team-a", status="200")
    assert after - before == 200


def test_prompts_are_logged_only_when_asked(upstream: Running, keys_file: Path, tmp_path: Path) -> None:
    running = start_adapter(tmp_path, "all", "--engine", "external", "--engine-url", upstream.url,
                            "--api-keys-file", str(keys_file), "--log-prompts", "true")
    try:
        chat = {"messages": [{"role": "user", "content": "remember this line"}], "max_tokens": 2}
        r = httpx.post(running.url + "/v1/chat/completions", json=chat, headers=auth())
        assert log_of(running, r)["prompt"] == chat["messages"]
        r = httpx.post(running.url + "/predict", json={"instances": ["first", {"prompt": "second"}]})
        assert log_of(running, r)["prompt"] == ["first", "second"]
        assert not any(key in running.all_output() for key in KEYS.values())
    finally:
        stop_process(running.proc)


def test_streamed_usage_is_asked_of_engines_that_report_it(upstream: Running, tmp_path: Path) -> None:
    """As with vLLM: the adapter asks for usage on every stream, and hides the usage event from clients that
    did not ask for it themselves."""
    running = start_adapter(tmp_path, "openai", "--engine", "external", "--engine-url", upstream.url,
                            "--engine-stream-usage", "true")
    try:
        chat = {"messages": [{"role": "user", "content": "x"}], "max_tokens": 5, "stream": True}
        r = httpx.post(running.url + "/v1/chat/completions", json=chat)
        events = [json.loads(d) for d in sse_data(r.text)[:-1]]
        assert len(events) == 5 and not any("usage" in e for e in events)
        entry = log_of(running, r)
        assert (entry["prompt_tokens"], entry["completion_tokens"], entry["tokens_counted"]) == (7, 5, "engine")
        r = httpx.post(running.url + "/v1/chat/completions",
                       json={**chat, "stream_options": {"include_usage": True}})
        assert json.loads(sse_data(r.text)[-2])["usage"]["completion_tokens"] == 5
    finally:
        stop_process(running.proc)


def test_engine_lost_mid_stream_ends_the_stream_with_an_error_event(tmp_path: Path) -> None:
    from .conftest import start_upstream
    upstream = start_upstream(tmp_path / "upstream")
    running = start_adapter(tmp_path, "openai", "--engine", "external", "--engine-url", upstream.url)
    try:
        chat = {"messages": [{"role": "user", "content": "drip:0.2"}], "max_tokens": 20, "stream": True}
        data = []
        with httpx.stream("POST", running.url + "/v1/chat/completions", json=chat, timeout=10) as r:
            for line in r.iter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                    if len(data) == 2:
                        stop_process(upstream.proc, signal.SIGKILL)
        assert r.status_code == 200
        assert 2 <= len(data) < 20
        assert json.loads(data[-1])["error"]["code"] == "engine_unavailable"
        entry = log_of(running, r)
        assert entry["error"] == "engine_unavailable" and entry["completion_tokens"] == len(data) - 1
    finally:
        stop_process(running.proc)
        stop_process(upstream.proc)
