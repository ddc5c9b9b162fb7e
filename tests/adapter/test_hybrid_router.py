"""The hybrid router, run for real: the config components/routing.py generates, loaded by the LiteLLM proxy
(`make litellm` installs it in .tools/litellm), in front of two `selfhost serve` instances on the tiny model, one
standing for on-prem capacity and one for the cloud burst target, each with its own API key.

The keys (each backend's and the router's master key) are files of a per-test secrets directory, as the mounted
Secret is in the cluster; the proxy reads them when it loads its config, so they are in neither the config nor
its environment. Traffic goes to on-prem; when it is killed (SIGKILL), every request still succeeds, on the cloud;
when it is back on the same port, traffic returns to it. When on-prem has no room (its per-key limit), the excess
goes to the cloud. Streams pass through as server-sent events, and one cut short by a dying backend ends at once.
All on 127.0.0.1, every wait bounded, every process stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from components.litellm import (
    MASTER_KEY_FILE,
    READINESS_ROUTE,
    ROUTABLE_AUTH,
    SECRETS_DIR,
    Backend,
    SecretSource,
    backends_from_endpoints,
    key_file,
    litellm_config,
    secret_ref,
)

from .conftest import ROOT, Running, free_port, start_adapter, stop_process, wait_until

LITELLM = ROOT / ".tools" / "litellm" / "bin" / "litellm"
SELFHOST = Path(sys.executable).parent / "selfhost"
MODEL = "tiny"  # what callers ask the router for
ALIAS = "tiny-chat"  # another name for it (model_group_alias)
SERVED = "selfhost/tiny-random"  # what both backends serve (a target serves its model under the Hugging Face id)
KEYS = {"onprem": "sk-onprem-0123456789abcdef", "cloud": "sk-cloud-fedcba9876543210"}
MASTER_KEY = "sk-router-master-5555555555"
SECRETS = [*KEYS.values(), MASTER_KEY]
COOLDOWN_SECONDS = 3.0
START_SECONDS = 60.0
REQUEST_SECONDS = 30.0


def serve(workdir: Path, port: int, key: str, model: Path, *, max_concurrency: int = 32,
          max_tokens_cap: int = 64, name: str = SERVED) -> Running:
    """`selfhost serve` on the tiny model at 127.0.0.1:port, taking one API key; waits until it answers /health."""
    workdir.mkdir(parents=True, exist_ok=True)
    keys = workdir / "api-keys"
    keys.write_text(f"router:{key}\n")
    return start_adapter(workdir, "--model", str(model), "--api-keys-file", str(keys), "--model-name", name,
                         "--max-tokens-cap", str(max_tokens_cap), "--max-concurrency-per-key", str(max_concurrency),
                         command=[str(SELFHOST), "serve"], port=port)


def chats_served(running: Running) -> int:
    """Chat completions the backend answered with 200, from its access log."""
    return sum(1 for e in running.access_log() if e["route"] == "openai_chat" and e["status"] == 200)


def chats_refused(running: Running) -> int:
    """Chat completions the backend refused with 429 (its per-key limit), from its access log."""
    return sum(1 for e in running.access_log() if e["route"] == "openai_chat" and e["status"] == 429)


def write_secrets(directory: Path, secrets: dict[str, str]) -> Path:
    """The router's Secret as the cluster mounts it: one read-only file per key, holding the key and nothing else
    (no trailing newline: litellm reads the file as it is, and a newline would become part of the key)."""
    directory.mkdir(mode=0o700)
    for name, value in secrets.items():
        path = directory / name
        path.write_text(value)
        path.chmod(0o400)
    return directory


class Router:
    """The LiteLLM proxy on a generated config, allowed to read its keys from `secrets_dir` only; `chat()`
    returns (status, the backend that answered)."""

    def __init__(self, config: dict, workdir: Path, secrets_dir: Path):
        if not LITELLM.exists():
            pytest.fail(f"{LITELLM} is missing: run `make litellm` (the LiteLLM proxy the router test runs)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_file = workdir / "litellm.yaml"
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        self.log = workdir / "litellm.log"
        # The oidc/file/ secrets are read only inside these directories (secret_managers/main.py
        # _resolve_oidc_file_path). No network: the model price map from the package, not GitHub; no telemetry.
        self.env = {**os.environ, "LITELLM_OIDC_ALLOWED_CREDENTIAL_DIRS": str(secrets_dir),
                    "LITELLM_LOCAL_MODEL_COST_MAP": "True", "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
        self.env.pop("DATABASE_URL", None)
        self.proc = subprocess.Popen(
            [str(LITELLM), "--config", str(self.config_file), "--host", "127.0.0.1", "--port", str(self.port),
             "--telemetry", "False"],
            cwd=workdir, stdout=self.log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=self.env)
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

    def chat(self, text: str = "Hello", max_tokens: int = 4, model: str = MODEL) -> tuple[int, str | None]:
        body = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens}
        try:
            r = self.client.post(self.url + "/v1/chat/completions", json=body)
        except httpx.HTTPError as e:
            return 0, repr(e)
        return r.status_code, (r.headers.get("x-litellm-model-id") if r.status_code == 200 else r.text[:500])

    def stop(self) -> None:
        self.client.close()
        stop_process(self.proc, timeout_seconds=10)


@dataclass
class Hybrid:
    """On-prem (priority 1) and the cloud (priority 2) behind the router."""

    onprem: Running
    cloud: Running
    router: Router
    secrets_dir: Path


def start_hybrid(tmp_path: Path, model: Path, processes: list, *, onprem: dict | None = None,
                 cloud: dict | None = None, aliases: tuple[str, ...] = ()) -> Hybrid:
    """Both backends (`serve` keyword arguments in `onprem` and `cloud`) and the router, configured as the stack
    configures it: backends from the endpoint records, each key in its file of the secrets directory."""
    onprem_port, cloud_port = free_port(), free_port()
    on = serve(tmp_path / "onprem-1", onprem_port, KEYS["onprem"], model, **(onprem or {}))
    processes.append(on)
    off = serve(tmp_path / "cloud", cloud_port, KEYS["cloud"], model, **(cloud or {}))
    processes.append(off)

    secrets_dir = write_secrets(tmp_path / "secrets", {key_file("onprem"): KEYS["onprem"],
                                                       key_file("cloud"): KEYS["cloud"],
                                                       MASTER_KEY_FILE: MASTER_KEY})
    endpoints = {"onprem": {"kind": "kubernetes", "model": SERVED, "auth": "api-key",
                            "openaiBaseUrl": f"http://127.0.0.1:{onprem_port}/v1"},
                 "cloud": {"kind": "kubernetes", "model": SERVED, "auth": "api-key",
                           "openaiBaseUrl": f"http://127.0.0.1:{cloud_port}/v1"}}
    backends = backends_from_endpoints(endpoints, ["onprem", "cloud"])
    config = litellm_config(MODEL, backends, aliases=aliases, secrets=SecretSource.files(str(secrets_dir)),
                            cooldown_seconds=COOLDOWN_SECONDS, timeout_seconds=REQUEST_SECONDS)
    router = Router(config, tmp_path, secrets_dir)
    processes.append(router)
    # The keys are in files only: not in the config, not in the proxy's environment.
    text = router.config_file.read_text()
    assert not any(secret in text for secret in SECRETS), "a key is in the router's config file"
    assert not any(secret in value for value in router.env.values() for secret in SECRETS), \
        "a key is in the router's environment"
    environ = Path(f"/proc/{router.proc.pid}/environ").read_bytes()  # the process's own, as it started
    assert b"LITELLM_OIDC_ALLOWED_CREDENTIAL_DIRS=" in environ
    assert not any(secret.encode() in environ for secret in SECRETS), "a key is in the router's environment"
    router.wait_ready()
    return Hybrid(on, off, router, secrets_dir)


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


def test_the_config_names_its_keys_by_file_only():
    backends = [Backend("cloud", "http://127.0.0.1:2/v1/", SERVED, "cloud.key", 2),
                Backend("onprem", "http://127.0.0.1:1/v1", SERVED, "onprem.key", 1)]
    config = litellm_config(MODEL, backends, cooldown_seconds=COOLDOWN_SECONDS,
                            secrets=SecretSource.files("/run/secrets/r"))
    text = yaml.safe_dump(config)
    assert not any(secret in text for secret in SECRETS)
    deployments = config["model_list"]
    # In priority order, whatever order they were given in; every one a deployment of the one model group.
    assert [d["model_info"]["id"] for d in deployments] == ["onprem", "cloud"]
    assert [d["litellm_params"]["order"] for d in deployments] == [1, 2]
    assert {d["model_name"] for d in deployments} == {MODEL}
    assert [d["litellm_params"]["api_base"] for d in deployments] == ["http://127.0.0.1:1/v1",
                                                                      "http://127.0.0.1:2/v1"]
    assert [d["litellm_params"]["model"] for d in deployments] == [f"openai/{SERVED}"] * 2
    # Each key is named by its file, which litellm's get_secret reads (oidc/file/ and an absolute path).
    assert [d["litellm_params"]["api_key"] for d in deployments] == [
        "os.environ/oidc/file//run/secrets/r/onprem.key", "os.environ/oidc/file//run/secrets/r/cloud.key"]
    assert config["general_settings"]["master_key"] == secret_ref(f"/run/secrets/r/{MASTER_KEY_FILE}")
    assert litellm_config(MODEL, backends)["general_settings"] == {
        "master_key": "os.environ/oidc/file//run/secrets/selfhost-router/master_key"} == {
        "master_key": secret_ref(f"{SECRETS_DIR}/{MASTER_KEY_FILE}")}
    with pytest.raises(ValueError, match="not an absolute path"):
        secret_ref("secrets/master_key")
    # The last priority is never cooled down; the others after allowed_fails failures.
    assert [d["model_info"].get("cooldown_time") for d in deployments] == [None, 0]
    assert [d["model_info"].get("allowed_fails") for d in deployments] == [1, None]
    # Aliases: every other name of the model maps to its group; the model's own name is no alias.
    assert "model_group_alias" not in config["router_settings"]
    aliased = litellm_config(MODEL, backends, aliases=(MODEL, ALIAS, "gpt-4o-mini"))
    assert aliased["router_settings"]["model_group_alias"] == {ALIAS: MODEL, "gpt-4o-mini": MODEL}
    assert "model_group_alias" not in litellm_config(MODEL, backends, aliases=(MODEL,))["router_settings"]


def test_backends_come_from_the_stacks_endpoint_records_in_the_order_given():
    def record(base: str | None, auth: str, model: str = "Qwen/Qwen2.5-1.5B-Instruct", **more: str) -> dict:
        return {"kind": "x", "model": model, "openaiBaseUrl": base, "auth": auth, **more}

    assert ROUTABLE_AUTH == ("api-key", "hf-token")
    endpoints = {"onprem-gpu": record("https://llm.example.com/v1", "api-key",
                                      routerBaseUrl="http://serving.ns.svc.cluster.local/v1"),
                 "hf": record("https://abc.endpoints.huggingface.cloud/v1", "hf-token"),
                 "burst": record("https://10.0.0.7/v1", "vpc-only-tls"), "pool": record(None, "vpc-only"),
                 "sm": record(None, "aws-sigv4"), "vertex": record("https://x/v1beta1/e", "gcp-oauth"),
                 "priv": record("https://p/v1", "aws-privatelink")}
    # The router on the cluster prefers the in-cluster address (routerBaseUrl) to the public one; each key is a
    # file of the router's secrets directory, named after its target.
    model = "Qwen/Qwen2.5-1.5B-Instruct"
    assert backends_from_endpoints(endpoints, ["onprem-gpu", "hf"]) == [
        Backend("onprem-gpu", "http://serving.ns.svc.cluster.local/v1", model,
                "onprem-gpu.key", 1),
        Backend("hf", "https://abc.endpoints.huggingface.cloud/v1", model, "hf.key", 2)]
    assert key_file("onprem-gpu") == "onprem-gpu.key"
    assert [b.api_key for b in backends_from_endpoints(endpoints, ["hf", "onprem-gpu"])] == [
        "hf.key", "onprem-gpu.key"]
    assert [b.priority for b in backends_from_endpoints(endpoints, ["hf", "onprem-gpu"])] == [1, 2]
    # Everything the router cannot reach or speak is refused, all problems at once, each with its reason.
    with pytest.raises(ValueError) as problems:
        backends_from_endpoints(endpoints, ["burst", "pool", "sm", "vertex", "priv", "nowhere"])
    allowed = "(allowed: api-key, hf-token)"
    for text in (f"burst: auth 'vpc-only-tls' cannot be routed to {allowed}",
                 f"pool: auth 'vpc-only' cannot be routed to {allowed}", "pool: no OpenAI-compatible base URL",
                 f"sm: auth 'aws-sigv4' cannot be routed to {allowed}", "sm: no OpenAI-compatible base URL",
                 f"vertex: auth 'gcp-oauth' cannot be routed to {allowed}",
                 f"priv: auth 'aws-privatelink' cannot be routed to {allowed}", "nowhere: no such endpoint"):
        assert text in str(problems.value), text
    with pytest.raises(ValueError, match="no OpenAI-compatible base URL"):
        backends_from_endpoints({"k": record(None, "api-key")}, ["k", "hf"])
    with pytest.raises(ValueError, match="targets named twice"):
        backends_from_endpoints(endpoints, ["hf", "hf"])
    # The whole chain: records to config, keys named by file.
    config = litellm_config(MODEL, backends_from_endpoints(endpoints, ["onprem-gpu", "hf"]),
                            secrets=SecretSource.files("/s"))
    assert [d["litellm_params"]["api_key"] for d in config["model_list"]] == [
        secret_ref("/s/onprem-gpu.key"), secret_ref("/s/hf.key")]


@pytest.mark.slow
def test_traffic_goes_on_prem_fails_over_to_the_cloud_and_returns(tiny_model: Path, tmp_path: Path, processes):
    started = time.monotonic()
    hybrid = start_hybrid(tmp_path, tiny_model, processes)
    onprem, cloud, router = hybrid.onprem, hybrid.cloud, hybrid.router
    onprem_port = onprem.port

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
        stop_process(onprem.proc, signal.SIGKILL)  # returns once it has exited
        # Taken once it is dead: a request sent while the kill was on its way may still have been answered there.
        killed_at = time.monotonic()
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


ONPREM_LIMIT = 2  # on-prem's --max-concurrency-per-key in the overflow test
BURST = 8  # requests sent at once
BURST_TOKENS = 1024  # about 1.1 s of generation each on the tiny model (llama.cpp runs one at a time)


@pytest.mark.slow
def test_what_on_prem_has_no_room_for_goes_to_the_cloud(tiny_model: Path, tmp_path: Path, processes):
    """On-prem takes ONPREM_LIMIT requests at once (its adapter answers 429, Retry-After 1 s, to one more); a
    burst of BURST requests at once: every one succeeds, ONPREM_LIMIT on-prem and the rest on the cloud, each
    served exactly once.

    Measured (litellm 1.99.4, 2 cores): on-prem 2, cloud 6; on-prem refused 7 attempts with 429: 5 of the 6 were
    retried (num_retries) onto the cloud once the second refusal had put on-prem in cooldown, 1 was refused
    twice (retry still on-prem, before the cooldown) and went to the cloud by the order fallback
    (x-litellm-attempted-retries and -fallbacks say which); the burst took 6.4-9.1 s (the cloud's llama.cpp
    generates its 6 one after the other). On-prem's cooldown (the 1 s of its Retry-After, routing.py says; at most
    COOLDOWN_SECONDS) is over before the burst is: the next request, one at a time, is on-prem again (measured:
    the very first)."""
    started = time.monotonic()
    limits = {"max_tokens_cap": BURST_TOKENS}
    hybrid = start_hybrid(tmp_path, tiny_model, processes, onprem={**limits, "max_concurrency": ONPREM_LIMIT},
                          cloud={**limits, "max_concurrency": 32}, aliases=(ALIAS,))
    onprem, cloud, router = hybrid.onprem, hybrid.cloud, hybrid.router

    # The model's alias (model_group_alias) is served as the model itself.
    assert router.chat("alias", model=ALIAS) == (200, "onprem")
    assert (chats_served(onprem), chats_served(cloud)) == (1, 0)

    def send(i: int) -> tuple[int, str | None, str | None, str | None, float]:
        sent = time.monotonic()
        body = {"model": MODEL, "messages": [{"role": "user", "content": f"burst {i}"}], "max_tokens": BURST_TOKENS}
        r = router.client.post(router.url + "/v1/chat/completions", json=body)
        assert r.status_code != 200 or r.json()["usage"]["completion_tokens"] == BURST_TOKENS, r.text[:500]
        return (r.status_code, r.headers.get("x-litellm-model-id") if r.status_code == 200 else r.text[:500],
                r.headers.get("x-litellm-attempted-retries"), r.headers.get("x-litellm-attempted-fallbacks"),
                time.monotonic() - sent)

    burst_at = time.monotonic()
    with ThreadPoolExecutor(BURST) as pool:
        results = list(pool.map(send, range(BURST)))
    burst_seconds = time.monotonic() - burst_at
    assert all(status == 200 for status, *_ in results), results
    served = [by for _, by, *_ in results]
    # Exactly ONPREM_LIMIT on-prem: the first ONPREM_LIMIT requests routed find room there (nothing has failed
    # yet, so nothing cools it down), and no more can: all BURST are sent within milliseconds, while on-prem's
    # requests hold their slots for over a second.
    assert served.count("onprem") == ONPREM_LIMIT and served.count("cloud") == BURST - ONPREM_LIMIT, results

    # The backends' own access logs agree: each request served once, none lost (BURST 200s in all), the excess
    # refused on-prem with 429 (at least once each but for any routed after its cooldown began), never by the
    # cloud, which has room for all.
    wait_until(lambda: chats_served(onprem) + chats_served(cloud) == 1 + BURST, 5, "access logs of the burst")
    assert (chats_served(onprem), chats_served(cloud)) == (1 + ONPREM_LIMIT, BURST - ONPREM_LIMIT)
    refused = chats_refused(onprem)
    assert refused >= 1 and chats_refused(cloud) == 0
    assert all(e["completion_tokens"] == BURST_TOKENS for e in cloud.access_log() if e["status"] == 200)

    # Afterwards, one request at a time: on-prem again, once its cooldown is over (bounded by COOLDOWN_SECONDS).
    after_at = time.monotonic()
    wait_until(lambda: router.chat("after")[1] == "onprem", COOLDOWN_SECONDS + 5, "traffic back on-prem",
               interval=0.1)
    back_after = time.monotonic() - after_at
    after = [router.chat(f"after {i}") for i in range(5)]
    assert after == [(200, "onprem")] * 5, after

    print(f"\noverflow: {BURST} at once, on-prem (limit {ONPREM_LIMIT}) served {served.count('onprem')}, the "
          f"cloud {served.count('cloud')}; on-prem refused {refused} attempts (429); (retries, fallbacks) of the "
          f"cloud's: {[(r, f) for _, by, r, f, _ in results if by == 'cloud']}; burst {burst_seconds:.1f} s, "
          f"slowest {max(s for *_, s in results):.1f} s; back on-prem {back_after:.2f} s after the burst; "
          f"whole test {time.monotonic() - started:.1f} s")
    assert not any(secret in router.log.read_text() for secret in SECRETS), "a key is in the router's log"
    assert time.monotonic() - started < 60


STREAM_TOKENS = 1900  # the tiny model's context is 2048 tokens, the prompt about 22


def read_stream(router: Router, max_tokens: int, on_event=None, seconds: float = 30.0):
    """A streamed chat completion through the router: (response headers, [(seconds since sent, SSE line)],
    the exception that ended it or None). No gap between bytes may exceed 10 s, nor the whole `seconds`."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": max_tokens,
            "stream": True}
    sent, events, error, headers = time.monotonic(), [], None, httpx.Headers()
    try:
        with router.client.stream("POST", router.url + "/v1/chat/completions", json=body,
                                  timeout=httpx.Timeout(seconds, read=10)) as r:
            headers = r.headers
            assert r.status_code == 200, r.read()[:500]
            for line in r.iter_lines():
                if line:
                    events.append((time.monotonic() - sent, line))
                    if on_event:
                        on_event(*events[-1])
                assert time.monotonic() - sent < seconds, f"stream still open after {seconds} s"
    except httpx.HTTPError as e:
        error = e
    return headers, events, error


def chunks(events: list[tuple[float, str]]) -> list[dict]:
    """The JSON payloads of the stream's `data:` events, [DONE] left out."""
    return [json.loads(line.removeprefix("data: ")) for _, line in events
            if line.startswith("data: ") and line != "data: [DONE]"]


def text_of(payloads: list[dict]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in payloads if c.get("choices"))


@pytest.mark.slow
def test_streams_pass_through_and_a_dying_backend_ends_its_stream(tiny_model: Path, tmp_path: Path, processes):
    """(a) A stream arrives as server-sent events (`data: {chat.completion.chunk}`: the role, one event per
    token, the finish reason), the last `data: [DONE]`.

    (b) On-prem killed (SIGKILL) mid-stream: the stream cannot move to the cloud once content has been sent
    (litellm's mid-stream fallback, router.py stream_with_fallbacks, only runs before any content). Measured
    (litellm 1.99.4): the client first gets the chunks already on their way (100-300 after a kill at the 50th
    token, 0.1-0.3 s into the stream), then one error event, `data: {"error": {"message": "litellm.APIConnectionError:
    APIConnectionError: OpenAIException - Response payload is not completed: <TransferEncodingError: 400,
    message='Not enough data to satisfy transfer length header.'>", "type": null, "param": null, "code":
    "500"}}`, and the stream ends, closed cleanly (no [DONE], no transport error), 0.1-0.6 s after the kill
    (proxy_server.py async_data_generator). The status stays the 200 already sent. The cloud never sees the
    stream; the next (non-streamed) request is served by the cloud."""
    started = time.monotonic()
    limits = {"max_tokens_cap": STREAM_TOKENS}
    hybrid = start_hybrid(tmp_path, tiny_model, processes, onprem=limits, cloud=limits)
    onprem, cloud, router = hybrid.onprem, hybrid.cloud, hybrid.router

    # (a) A whole stream.
    headers, events, error = read_stream(router, 32)
    assert error is None, error
    assert headers["content-type"].startswith("text/event-stream") and headers["x-litellm-model-id"] == "onprem"
    assert all(line.startswith("data: ") for _, line in events), events
    assert events[-1][1] == "data: [DONE]" and sum(1 for _, line in events if line == "data: [DONE]") == 1
    payloads = chunks(events)
    assert {c["object"] for c in payloads} == {"chat.completion.chunk"} and len({c["id"] for c in payloads}) == 1
    assert payloads[0]["choices"][0]["delta"].get("role") == "assistant"
    assert len(text_of(payloads)) == 32  # the tiny model's tokens are one character each
    assert payloads[-1]["choices"][0]["finish_reason"] == "length"
    assert not any("error" in c for c in payloads)
    wait_until(lambda: chats_served(onprem) == 1, 5, "on-prem's access log of the stream")
    assert [(e["stream"], e["completion_tokens"]) for e in onprem.access_log() if e["route"] == "openai_chat"] == [
        (True, 32)]

    # (b) On-prem dies mid-stream.
    killed: list[float] = []
    tokens = [0]

    def kill_at_50th_token(at: float, line: str) -> None:
        if not killed:
            tokens[0] += len(text_of(chunks([(at, line)])))
            if tokens[0] >= 50:
                stop_process(onprem.proc, signal.SIGKILL)  # returns once it has exited
                killed.append(at)

    headers, events, error = read_stream(router, STREAM_TOKENS, kill_at_50th_token, seconds=20)
    assert killed, f"the stream ended before its 50th event: {events[-3:]}"
    ended = events[-1][0]
    assert headers["x-litellm-model-id"] == "onprem"
    # It ends, soon, cleanly, with an error event and no [DONE]; what had been sent before stays a prefix.
    assert error is None, error
    assert ended - killed[0] < 5, f"the stream ended {ended - killed[0]:.1f} s after the kill"
    assert "data: [DONE]" not in [line for _, line in events]
    payloads = chunks(events)
    last = payloads[-1]
    assert set(last) == {"error"} and last["error"]["code"] == "500", last
    assert "APIConnectionError" in last["error"]["message"], last
    assert not any("error" in c for c in payloads[:-1])
    received = len(text_of(payloads))
    assert 50 <= received < STREAM_TOKENS
    after_kill = sum(1 for t, _ in events if t > killed[0])
    assert not [e for e in cloud.access_log() if e["route"] == "openai_chat"]  # the stream did not move

    # The next request: the cloud.
    assert router.chat("after the stream") == (200, "cloud")
    wait_until(lambda: chats_served(cloud) == 1, 5, "cloud's access log")
    assert not any(secret in router.log.read_text() for secret in SECRETS), "a key is in the router's log"

    print(f"\nstreams: on-prem killed {killed[0]:.2f} s into a stream of {STREAM_TOKENS} tokens; the client got "
          f"{received} tokens ({after_kill} events after the kill), then the error event "
          f"{ended - killed[0]:.2f} s after the kill, and the stream closed; whole test "
          f"{time.monotonic() - started:.1f} s")
    assert time.monotonic() - started < 60
