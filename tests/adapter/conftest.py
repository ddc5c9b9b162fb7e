"""Real processes for the adapter's end-to-end tests: the adapter supervising llama.cpp on a tiny GGUF model,
and the adapter in front of the instant upstream (a controllable engine, for the timing-dependent cases).

Everything listens on 127.0.0.1 on ephemeral ports; every wait is bounded; every process is stopped.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from .tinymodel import write_tiny_llama

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"team-a": "sk-test-alpha-0123456789", "team-b": "sk-test-beta-9876543210"}
START_TIMEOUT_SECONDS = 120.0


def run_async(coro):
    """Run a coroutine on a loop of its own. Not asyncio.run(): that leaves the main thread with no current
    event loop, and Pulumi's mocks in the other tests need one."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], bool], timeout_seconds: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what}: not within {timeout_seconds} s")


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout_seconds: float = 30.0) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout_seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


@dataclass
class Running:
    """A started server: its process, its URL, and what it has written."""

    proc: subprocess.Popen
    port: int
    stdout: Path
    stderr: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def access_log(self) -> list[dict]:
        return [json.loads(line) for line in self.stdout.read_text().splitlines() if line.strip()]

    def all_output(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()

    def healthy(self) -> bool:
        try:
            return httpx.get(self.url + "/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def engine_pids(self) -> list[int]:
        """Processes whose parent is the adapter (the engine)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                pids.append(int(stat.parent.name))
        return pids


def start_adapter(workdir: Path, *args: str, env: dict[str, str] | None = None, wait_ready: bool = True,
                  command: list[str] | None = None, port: int | None = None) -> Running:
    """`command` (default: the adapter module) with `args`, on 127.0.0.1 at `port` (default: a free one); with
    `wait_ready`, once it answers its health route."""
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    stdout, stderr = workdir / "stdout.log", workdir / "stderr.log"
    argv = (command or [sys.executable, "-m", "selfhost_adapter"]) + [*args, "--host", "127.0.0.1",
                                                                      "--port", str(port)]
    # Only our variables: the platform ones (AIP_*, SAGEMAKER_*) of a developer's shell must not leak in.
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SELFHOST_", "AIP_", "SAGEMAKER_"))}
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=stdout.open("wb"), stderr=stderr.open("wb"),
                            stdin=subprocess.DEVNULL, env={**clean, **(env or {})})
    running = Running(proc, port, stdout, stderr)
    if wait_ready:
        try:
            wait_until(lambda: proc.poll() is not None or running.healthy(), START_TIMEOUT_SECONDS, "adapter ready")
        except TimeoutError:
            stop_process(proc, signal.SIGKILL)
            raise
        if proc.poll() is not None:
            raise RuntimeError(f"adapter exited with {proc.returncode}:\n{stderr.read_text()[-3000:]}")
    return running


def start_upstream(workdir: Path) -> Running:
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    stdout, stderr = workdir / "upstream.out", workdir / "upstream.err"
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.instant_upstream", "--port", str(port)], cwd=ROOT,
                            stdout=stdout.open("wb"), stderr=stderr.open("wb"), stdin=subprocess.DEVNULL)
    running = Running(proc, port, stdout, stderr)

    def up() -> bool:
        try:
            return httpx.get(running.url + "/v1/models", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, 30, "instant upstream")
    return running


def auth(key_id: str = "team-a") -> dict[str, str]:
    return {"authorization": f"Bearer {KEYS[key_id]}"}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_llama(tmp_path_factory.mktemp("model") / "tiny.gguf")


@pytest.fixture(scope="session")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secrets") / "api-keys"
    path.write_text("# key-id:secret\n" + "".join(f"{k}:{v}\n" for k, v in KEYS.items()))
    return path


LLAMA_SETTINGS = ("--max-tokens-cap", "64", "--max-concurrency-per-key", "16", "--max-body-bytes", "65536",
                  "--model-aliases", "gpt-4o-mini")


@pytest.fixture(scope="session")
def llama(tiny_model: Path, keys_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The adapter supervising llama.cpp on the tiny model, every contract on."""
    running = start_adapter(tmp_path_factory.mktemp("llama"), "all", "--engine", "llamacpp", "--model",
                            str(tiny_model), "--api-keys-file", str(keys_file), *LLAMA_SETTINGS)
    yield running
    stop_process(running.proc)


@pytest.fixture(scope="session")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = start_upstream(tmp_path_factory.mktemp("upstream"))
    yield running
    stop_process(running.proc)


@pytest.fixture(scope="session")
def gated(upstream: Running, keys_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The adapter in front of the instant upstream: two requests per key, a 1 s engine timeout."""
    running = start_adapter(tmp_path_factory.mktemp("gated"), "all", "--engine", "external", "--engine-url",
                            upstream.url, "--api-keys-file", str(keys_file), "--max-concurrency-per-key", "2",
                            "--engine-timeout-seconds", "1", "--max-tokens-cap", "64")
    yield running
    stop_process(running.proc)


@pytest.fixture(scope="session")
def guarded(upstream: Running, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The adapter in front of the instant upstream with tight limits: two requests at once per key, one second
    to send headers or a body, 8 KiB and 50 fields of headers, no API keys."""
    running = start_adapter(tmp_path_factory.mktemp("guarded"), "all", "--engine", "external", "--engine-url",
                            upstream.url, "--max-concurrency-per-key", "2", "--body-timeout-seconds", "1",
                            "--header-timeout-seconds", "1", "--max-header-bytes", "8192", "--max-headers", "50",
                            "--max-tokens-cap", "64", "--model-name", "instant")
    yield running
    stop_process(running.proc)


def metric(running: Running, name: str, **labels: str) -> float:
    """The sum of the series of `name` that have these labels (and any others), as PromQL's sum() reads them."""
    text = httpx.get(running.url + "/metrics", timeout=5).text
    want = {f'{k}="{v}"' for k, v in labels.items()}
    total = 0.0
    for line in text.splitlines():
        m = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if m and want <= set((m.group(1) or "").split(",")):
            total += float(m.group(2))
    return total


def log_of(running: Running, response: httpx.Response) -> dict:
    """The access-log line of a response (written when the response has ended, so wait for it)."""
    request_id = response.headers["x-request-id"]
    wait_until(lambda: any(e["request_id"] == request_id for e in running.access_log()), 5, "access log line")
    return next(e for e in running.access_log() if e["request_id"] == request_id)
