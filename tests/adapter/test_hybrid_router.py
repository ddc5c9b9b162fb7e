"""The hybrid router, run for real: the config components/routing.py generates, loaded by the LiteLLM proxy
(`make litellm` installs it in .tools/litellm), in front of two `selfhost serve` instances on the tiny model, one
standing for on-prem capacity and one for the cloud burst target, each with its own API key.

Traffic goes to on-prem; when it is killed (SIGKILL), every request still succeeds, on the cloud; when it is back
on the same port, traffic returns to it. All on 127.0.0.1, every wait bounded, every process stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml

from components.routing import (
    MASTER_KEY_ENV,
    NO_KEY,
    READINESS_ROUTE,
    Backend,
    backends_from_endpoints,
    key_env,
    litellm_config,
)

from .conftest import ROOT, Running, free_port, start_adapter, stop_process, wait_until

LITELLM = ROOT / ".tools" / "litellm" / "bin" / "litellm"
SELFHOST = Path(sys.executable).parent / "selfhost"
MODEL = "tiny"  # what callers ask the router for
SERVED = "selfhost/tiny-random"  # what both backends serve (a target serves its model under the Hugging Face id)
KEYS = {"onprem": "sk-onprem-0123456789abcdef", "cloud": "sk-cloud-fedcba9876543210"}
MASTER_KEY = "sk-router-master-5555555555"
COOLDOWN_SECONDS = 3.0
START_SECONDS = 60.0
REQUEST_SECONDS = 30.0


def serve(workdir: Path, port: int, key: str, model: Path) -> Running:
    """`selfhost serve` on the tiny model at 127.0.0.1:port, taking one API key; waits until it answers /health."""
    workdir.mkdir(parents=True, exist_ok=True)
    keys = workdir / "api-keys"
    keys.write_text(f"router:{key}\n")
    return start_adapter(workdir, "--model", str(model), "--api-keys-file", str(keys), "--model-name", SERVED,
                         "--max-tokens-cap", "64", "--max-concurrency-per-key", "32",
                         command=[str(SELFHOST), "serve"], port=port)


def chats_served(running: Running) -> int:
    """Chat completions the backend answered with 200, from its access log."""
    return sum(1 for e in running.access_log() if e["route"] == "openai_chat" and e["status"] == 200)


class Router:
    """The LiteLLM proxy on a generated config; `chat()` returns (status, the backend that answered)."""

    def __init__(self, config: dict, workdir: Path, env: dict[str, str]):
        if not LITELLM.exists():
            pytest.fail(f"{LITELLM} is missing: run `make litellm` (the LiteLLM proxy the router test runs)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_file = workdir / "litellm.yaml"
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        self.log = workdir / "litellm.log"
        # No network: the model price map from the package, not GitHub; no telemetry.
        full_env = {**os.environ, **env, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "NO_PROXY": "127.0.0.1",
                    "no_proxy": "127.0.0.1"}
        full_env.pop("DATABASE_URL", None)
        self.proc = subprocess.Popen(
            [str(LITELLM), "--config", str(self.config_file), "--host", "127.0.0.1", "--port", str(self.port),
             "--telemetry", "False"],
            cwd=workdir, stdout=self.log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=full_env)
        self.client = httpx.Client(timeout=REQUEST_SECONDS,
                                   headers={"authorization": f"Bearer {MASTER_KEY}"})

    def ready(self) -> bool:
        try:
            return httpx.get(self.url + READINESS_ROUTE, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self) -> None:
        try:
            wait_until(lambda: self.proc.poll() is not None or self.ready(), START_SECONDS, "LiteLLM proxy ready",
                       interval=0.2)
        except TimeoutError:
            raise TimeoutError(f"LiteLLM proxy not ready:\n{self.log.read_text()[-3000:]}") from None
        if self.proc.poll() is not None:
            raise RuntimeError(f"LiteLLM proxy exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")

    def chat(self, text: str = "Hello") -> tuple[int, str | None]:
        body = {"model": MODEL, "messages": [{"role": "user", "content": text}], "max_tokens": 4}
        try:
            r = self.client.post(self.url + "/v1/chat/completions", json=body)
        except httpx.HTTPError as e:
            return 0, repr(e)
        return r.status_code, (r.headers.get("x-litellm-model-id") if r.status_code == 200 else r.text[:500])

    def stop(self) -> None:
        self.client.close()
        stop_process(self.proc, timeout_seconds=10)


@pytest.fixture
def processes() -> Iterator[list]:
    """Everything the test starts, stopped at the end whatever happened (SIGKILL after a grace period)."""
    started: list = []
    yield started
    for item in reversed(started):
        if isinstance(item, Router):
            item.stop()
        else:
            stop_process(item.proc, timeout_seconds=10)


def test_the_config_names_its_keys_by_environment_variable_only():
    backends = [Backend("onprem", "http://127.0.0.1:1/v1", SERVED, key_env("onprem"), 1),
                Backend("cloud", "http://127.0.0.1:2/v1", SERVED, key_env("cloud"), 2)]
    config = litellm_config(MODEL, backends, cooldown_seconds=COOLDOWN_SECONDS)
    text = yaml.safe_dump(config)
    assert [d["litellm_params"]["api_key"] for d in config["model_list"]] == [
        "os.environ/ONPREM_API_KEY", "os.environ/CLOUD_API_KEY"]
    assert config["general_settings"]["master_key"] == f"os.environ/{MASTER_KEY_ENV}"
    assert [d["litellm_params"]["order"] for d in config["model_list"]] == [1, 2]
    assert not any(secret in text for secret in [*KEYS.values(), MASTER_KEY])


def test_backends_come_from_the_stacks_endpoint_records_in_the_order_given():
    def record(base: str | None, auth: str, model: str = "Qwen/Qwen2.5-1.5B-Instruct") -> dict:
        return {"kind": "x", "model": model, "openaiBaseUrl": base, "auth": auth}

    endpoints = {"onprem-gpu": record("http://serving.ns.svc.cluster.local/v1", "api-key"),
                 "burst": record("https://10.0.0.7/v1", "vpc-only-tls"),
                 "sm": record(None, "aws-sigv4"), "vertex": record("https://x/v1beta1/e", "gcp-oauth")}
    assert backends_from_endpoints(endpoints, ["onprem-gpu", "burst"]) == [
        Backend("onprem-gpu", "http://serving.ns.svc.cluster.local/v1", "Qwen/Qwen2.5-1.5B-Instruct",
                "ONPREM_GPU_API_KEY", 1),
        Backend("burst", "https://10.0.0.7/v1", "Qwen/Qwen2.5-1.5B-Instruct", None, 2)]
    with pytest.raises(ValueError) as problems:
        backends_from_endpoints(endpoints, ["sm", "vertex", "nowhere"])
    for text in ("sm: auth 'aws-sigv4'", "sm: no OpenAI-compatible base URL", "vertex: auth 'gcp-oauth'",
                 "nowhere: no such endpoint"):
        assert text in str(problems.value)
    config = litellm_config(MODEL, backends_from_endpoints(endpoints, ["onprem-gpu", "burst"]))
    assert [d["litellm_params"]["api_key"] for d in config["model_list"]] == ["os.environ/ONPREM_GPU_API_KEY",
                                                                             NO_KEY]


@pytest.mark.slow
def test_traffic_goes_on_prem_fails_over_to_the_cloud_and_returns(tiny_model: Path, tmp_path: Path, processes):
    started = time.monotonic()
    onprem_port, cloud_port = free_port(), free_port()
    onprem = serve(tmp_path / "onprem-1", onprem_port, KEYS["onprem"], tiny_model)
    processes.append(onprem)
    cloud = serve(tmp_path / "cloud", cloud_port, KEYS["cloud"], tiny_model)
    processes.append(cloud)

    backends = [Backend("onprem", f"http://127.0.0.1:{onprem_port}/v1", SERVED, key_env("onprem"), priority=1),
                Backend("cloud", f"http://127.0.0.1:{cloud_port}/v1", SERVED, key_env("cloud"), priority=2)]
    config = litellm_config(MODEL, backends, cooldown_seconds=COOLDOWN_SECONDS, timeout_seconds=REQUEST_SECONDS)
    env = {key_env("onprem"): KEYS["onprem"], key_env("cloud"): KEYS["cloud"], MASTER_KEY_ENV: MASTER_KEY}
    router = Router(config, tmp_path, env)
    processes.append(router)
    text = router.config_file.read_text()
    assert not any(secret in text for secret in env.values()), "a key is in the router's config file"
    router.wait_ready()

    # The router's own key is required: without it, or with a backend's key, nothing reaches a backend. (Without
    # a database, LiteLLM 1.99.4 refuses them with 500 (no key: its auth error handler imports prisma, of the
    # `extra-proxy` packages, which its image has) and 400 "No connected db" (another key: looked up in the
    # database), not 401.)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
    for headers in ({}, {"authorization": f"Bearer {KEYS['onprem']}"}):
        r = httpx.post(router.url + "/v1/chat/completions", json=body, headers=headers, timeout=REQUEST_SECONDS)
        assert r.status_code >= 400, r.text
    assert chats_served(onprem) == chats_served(cloud) == 0

    def batch(sequential: int, concurrent: int) -> list[tuple[int, str | None]]:
        results = [router.chat(f"sequential {i}") for i in range(sequential)]
        with ThreadPoolExecutor(concurrent) as pool:
            results += list(pool.map(lambda i: router.chat(f"concurrent {i}"), range(concurrent)))
        return results

    # 1. Both up: everything on-prem.
    results = batch(10, 6)
    assert results == [(200, "onprem")] * 16, results
    assert chats_served(onprem) == 16 and chats_served(cloud) == 0

    # 2. On-prem dies (SIGKILL) under a steady stream of requests, and comes back on the same port while the stream
    # goes on: no request fails; those sent while it is dead are served by the cloud; traffic returns to it once
    # it answers again and its cooldown (the stream keeps renewing it while it is dead) has passed.
    stream: list[tuple[float, int, str | None, float]] = []  # (sent at, status, served by, seconds)
    stop_stream = threading.Event()

    def steady() -> None:
        while not stop_stream.is_set():
            sent = time.monotonic()
            status, served = router.chat("steady")
            stream.append((sent, status, served, time.monotonic() - sent))
            time.sleep(0.02)

    def sent_after(moment: float) -> list[str | None]:
        return [served for t, _, served, _ in list(stream) if t > moment]

    streamer = threading.Thread(target=steady, daemon=True)
    streamer.start()
    try:
        wait_until(lambda: len(stream) >= 3, 10, "steady stream started")
        killed_at = time.monotonic()
        stop_process(onprem.proc, signal.SIGKILL)  # returns once it has exited
        wait_until(lambda: len(sent_after(killed_at)) >= 20, 20, "requests after the kill")
        dead = batch(10, 6)  # beside the stream, concurrent ones too
        onprem = serve(tmp_path / "onprem-2", onprem_port, KEYS["onprem"], tiny_model)
        processes.append(onprem)
        back_at = time.monotonic()
        wait_until(lambda: "onprem" in sent_after(back_at), COOLDOWN_SECONDS + 10, "traffic back on-prem")
        returned_after = time.monotonic() - back_at
        returned_at = next(t for t, _, served, _ in list(stream) if t > back_at and served == "onprem")
        wait_until(lambda: len(sent_after(returned_at)) >= 10, 20, "requests after the return")
    finally:
        stop_stream.set()
        streamer.join(REQUEST_SECONDS + 5)
    assert all(status == 200 for _, status, _, _ in stream), [s for s in stream if s[1] != 200]
    assert dead == [(200, "cloud")] * 16, dead
    while_dead = [served for t, _, served, _ in stream if killed_at < t < back_at]
    assert set(while_dead) == {"cloud"}, while_dead
    assert set(sent_after(returned_at)) == {"onprem"}, sent_after(returned_at)
    # The backends' own access logs agree with the router's x-litellm-model-id.
    on_cloud = sum(1 for _, _, served, _ in stream if served == "cloud") + 16
    on_restarted = sum(1 for t, _, served, _ in stream if served == "onprem" and t > back_at)
    wait_until(lambda: chats_served(cloud) == on_cloud, 5, f"cloud's access log: {on_cloud} served")
    wait_until(lambda: chats_served(onprem) == on_restarted, 5, f"on-prem's access log: {on_restarted} served")

    # 3. Back to normal: everything on-prem again.
    served_before = chats_served(onprem)
    results = batch(10, 6)
    assert results == [(200, "onprem")] * 16, results
    assert chats_served(onprem) == served_before + 16

    slowest = max(seconds for t, *_, seconds in stream if t > killed_at)
    print(f"\nfailover: {len(stream)} requests in the steady stream, {len(while_dead)} while on-prem was dead "
          f"(+16 in batches), {sum(1 for _, s, _, _ in stream if s != 200)} failed, slowest {slowest * 1000:.0f} ms; "
          f"on-prem down {back_at - killed_at:.1f} s; traffic back on it {returned_after:.2f} s after it "
          f"answered /health; whole test {time.monotonic() - started:.1f} s")
    assert time.monotonic() - started < 110
