"""The engine: how to start each one, and a supervisor that keeps it running and knows when it is ready.

The adapter never answers inference itself. It starts the engine on 127.0.0.1, reports ready once the engine
answers its health check, notices at once when the process dies (503 from then on), and starts it again with
a capped backoff.

Busy is not dead. The health check is a route that does not queue behind generations (vLLM's `/health`; for
llama-cpp-python, whose every model route waits for the one model lock, any HTTP answer at all), and an engine
whose health check is slow but which keeps sending bytes on its connections is working, not stuck. The engine
is restarted only when its process exits, when it refuses connections or reports itself broken several checks
in a row, or when it has neither answered a health check nor sent a byte for `engine_timeout_seconds` (the
same wait after which its callers have had a 504): requests in flight are never cut for being long.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import re
import shlex
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

from .fetch import DEFAULT_ENDPOINT, FetchError, Target, fetch, read_token
from .settings import PEFT_FILES, Lora, Settings, gguf_file, hub_source
from .upstream import Upstream, UpstreamError

log = logging.getLogger("selfhost_adapter.engine")


@dataclass(frozen=True)
class EngineSpec:
    command: Callable[[Settings, str, int], list[str]]
    """argv for (settings, python, port): the engine listens on 127.0.0.1:port only."""
    health_path: str
    """GET it: any answer below 500 means the model is loaded and the engine serves. It must not wait for
    running generations."""
    stream_usage: bool
    """The engine honours `stream_options.include_usage` (so streamed token counts are exact)."""
    env: tuple[tuple[str, str], ...] = ()
    renames: tuple[tuple[str, str], ...] = ()
    """OpenAI-side parameter names this engine spells its own way (TGI's repetition_penalty)."""
    refusals: tuple[tuple[str, int], ...] = ()
    """(regex on the error message, status): the engine's 5xx answers that are a client's mistake, not its own
    failure, so the client is told 4xx and SageMaker does not retry them."""
    metrics_path: str | None = None
    """Where the engine serves its own Prometheus metrics, which the adapter's /metrics adds to its own (the
    engine's port is not exposed); None: it has none."""


def _vllm(s: Settings, python: str, port: int) -> list[str]:
    argv = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", s.resolved_model(),
            "--served-model-name", s.resolved_model_name(), "--host", "127.0.0.1", "--port", str(port),
            "--disable-uvicorn-access-log"]
    if s.adapters:
        # One --lora-modules with every adapter: it takes many values, and a second one would replace the first.
        # vLLM routes a request to an adapter by its `model` itself; --max-loras and --max-lora-rank, if any,
        # come with engine_args.
        argv += ["--enable-lora", "--lora-modules", *(f"{lora.name}={lora.source}" for lora in s.adapters)]
    return argv


def _llamacpp(s: Settings, python: str, port: int) -> list[str]:
    # interrupt_requests would cut a running stream short whenever another request arrives.
    model = gguf_file(s.resolved_model()) or s.resolved_model()
    # llama-cpp-python's own server has no adapter per request: with adapters, our entry module runs it.
    module = ["selfhost_adapter.llamacpp_lora"] if s.adapters else ["llama_cpp.server"]
    for lora in s.adapters:
        module += ["--lora_module", f"{lora.name}={lora.source}"]
    return [python, "-m", *module, "--model", str(model), "--model_alias", s.resolved_model_name(), "--host",
            "127.0.0.1", "--port", str(port), "--interrupt_requests", "false"]


def fetch_adapters(s: Settings, environ: Mapping[str, str]) -> Settings:
    """The settings with every hf:// adapter downloaded into `adapters_dir` and named by its local path there
    (vLLM: the folder of its PEFT files; llama.cpp: the file). A download already in the cache is kept. Raises
    FetchError naming the adapter. An external engine has its adapters where it runs: nothing is fetched."""
    if s.engine == "external" or not any(lora.source.startswith("hf://") for lora in s.adapters):
        return s
    token = read_token(environ)
    endpoint = environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
    loras = []
    for lora in s.adapters:
        hub = hub_source(lora.source)
        if hub is None:
            loras.append(lora)
            continue
        files = (hub.file,) if hub.file else PEFT_FILES
        try:
            paths = [fetch(Target(hub.repo, hub.revision, file, s.resolved_adapters_dir(), hub.sha256), endpoint,
                           token) for file in files]
        except FetchError as exc:
            raise FetchError(f"adapter {lora.name} ({lora.source}): {exc}") from None
        local: Path = paths[0] if hub.file else paths[0].parent
        log.info("adapter %s: %s", lora.name, local)
        loras.append(Lora(lora.name, str(local)))
    return replace(s, adapters=tuple(loras))


ENGINES: dict[str, EngineSpec] = {
    # /health: 200, or 503 once the engine core has died. /metrics has vllm:num_requests_waiting, the queue
    # depth an autoscaler reads.
    "vllm": EngineSpec(_vllm, "/health", stream_usage=True, env=(("VLLM_NO_USAGE_STATS", "1"),),
                       metrics_path="/metrics"),
    # llama-cpp-python has no health route and its /v1/models waits for the model lock that every generation
    # holds; it listens only once the model is loaded, so its 404 for /health, answered at once, is the check.
    # Its error handler turns request validation failures (and strings it cannot encode) into 500s. It serves
    # no metrics.
    "llamacpp": EngineSpec(_llamacpp, "/health", stream_usage=False,
                           renames=(("repetition_penalty", "repeat_penalty"),),
                           refusals=((r"^\d+ validation errors?:", 422), (r"surrogates not allowed", 422))),
    # Someone else runs it: we only watch its health and proxy to it. llama.cpp's own server and vLLM both
    # answer /health (503 while loading or broken); anything that answers below 500 is taken as serving.
    # Their metrics are asked for too: vLLM, TGI and llama.cpp's server (with --metrics) all serve them on
    # /metrics, and an engine that answers there with anything but Prometheus text is left out.
    "external": EngineSpec(lambda s, python, port: [], "/health", stream_usage=False, metrics_path="/metrics"),
}


class State(StrEnum):
    STARTING = "starting"
    READY = "ready"
    STALLED = "stalled"
    """Running, but neither answering its health check nor sending a byte for `engine_stall_seconds`: frozen
    (a hung driver, a deadlock, SIGSTOP). Out of rotation (503) until it answers again; restarted only after
    `engine_timeout_seconds` of that."""
    DOWN = "down"
    STOPPED = "stopped"


class Probe(Enum):
    OK = "ok"
    BROKEN = "broken"  # refused the connection, or answered 5xx: it says so itself
    SLOW = "slow"  # took the connection but did not answer in time: busy or stuck


HEALTH_INTERVAL_SECONDS = 2.0
PROBE_TIMEOUT_SECONDS = 2.0
MIN_PROBE_SECONDS = 0.05
BROKEN_CHECKS_TO_RESTART = 3
STARTUP_POLL_SECONDS = 0.1
BACKOFF_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
STOP_GRACE_SECONDS = 10.0
METRICS_TIMEOUT_SECONDS = 2.0
"""The longest a scrape of the adapter waits for the engine's metrics (Prometheus gives a scrape 10 s)."""
METRICS_MAX_BYTES = 8 << 20
# A line of one of our own metric families: an engine's copy of it would make the scrape invalid.
_OUR_FAMILY = re.compile(rb"(?:# (?:HELP|TYPE) )?selfhost_")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    # If the adapter is killed outright, the engine must not live on holding the GPU and the port.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Engine:
    """Starts the engine process and keeps `state` true; `base_url` is where to send requests."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.spec = ENGINES[settings.engine]
        if settings.engine == "external":
            self.base_url = settings.engine_url.rstrip("/")
            self.argv: list[str] = []
        else:
            port = settings.engine_port or free_port()
            self.base_url = f"http://127.0.0.1:{port}"
            python = settings.engine_python or sys.executable
            self.argv = self.spec.command(settings, python, port) + shlex.split(settings.engine_args)
        self.stream_usage = self.spec.stream_usage if settings.engine_stream_usage is None \
            else settings.engine_stream_usage
        self.upstream = Upstream(self.base_url, max_connections=settings.max_engine_connections)
        """Where requests go; the probes have connections of their own, so they never wait behind requests."""
        self.state = State.STARTING
        self.starts = 0
        self.process: asyncio.subprocess.Process | None = None
        self._ready = asyncio.Event()
        self._suspect = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._probe = Upstream(self.base_url)
        # Its own connections too: when every engine connection is taken, which is when the queue depth matters,
        # a scrape must not wait for one.
        self._scrape = Upstream(self.base_url)
        self._scrape_refused = False
        self.on_state: Callable[[State], None] = lambda state: None
        """Told of every change of `state` (the adapter answers the requests waiting on a stalled engine)."""

    @property
    def ready(self) -> bool:
        return self.state is State.READY

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._supervise(), name="engine-supervisor")

    async def wait_ready(self, timeout_seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout_seconds)
        return self.ready

    def suspect(self) -> None:
        """A request could not reach the engine: check it now instead of at the next interval."""
        self._suspect.set()

    async def stop(self) -> None:
        self._set(State.STOPPED)
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._kill()
        self._probe.close()
        self._scrape.close()
        self.upstream.close()

    async def metrics(self) -> bytes:
        """The engine's own Prometheus text, to follow the adapter's; empty when it has none, is not ready, or
        does not answer within METRICS_TIMEOUT_SECONDS: a scrape of the adapter never fails or hangs for it."""
        path = self.spec.metrics_path
        if path is None or not self.ready:
            return b""
        response = None
        text = bytearray()
        try:
            async with asyncio.timeout(METRICS_TIMEOUT_SECONDS):
                response = await self._scrape.request("GET", path)
                # Anything else is not text to append (an engine without metrics answers 404, or JSON).
                if response.status != 200 or not response.content_type.lower().startswith(b"text/plain"):
                    if not self._scrape_refused:
                        self._scrape_refused = True
                        log.info("the engine answers %s %d, not Prometheus text: its metrics are left out",
                                 path, response.status)
                    return b""
                async for chunk in response.chunks():
                    text += chunk
                    if len(text) > METRICS_MAX_BYTES:
                        log.warning("engine metrics over %d bytes: left out", METRICS_MAX_BYTES)
                        return b""
        except TimeoutError:
            log.warning("engine metrics not within %g s: left out", METRICS_TIMEOUT_SECONDS)
            return b""
        except UpstreamError as exc:
            log.warning("engine metrics left out: %s", exc)
            return b""
        finally:
            if response is not None:
                response.close()
        body = bytes(text)
        if b"selfhost_" in body:  # an external engine that is itself an adapter
            body = b"".join(line for line in body.splitlines(keepends=True) if not _OUR_FAMILY.match(line))
        return body if not body or body.endswith(b"\n") else body + b"\n"

    # -- internals ---------------------------------------------------------------------------------------

    def _set(self, state: State) -> None:
        if self.state is State.STOPPED or state is self.state:
            return
        log.info("engine %s", state.value, extra={"engine": self.settings.engine})
        self.state = state
        if state is State.READY:
            self._ready.set()
        else:
            self._ready.clear()
        self.on_state(state)

    async def _supervise(self) -> None:
        failures = 0
        while self.state is not State.STOPPED:
            self._set(State.STARTING)
            try:
                if self.argv:
                    await self._spawn()
                if await self._await_ready():
                    failures = 0
                    self._set(State.READY)
                    await self._watch()
            except Exception:
                # The supervisor must outlive any surprise of its own: log it, restart the engine, go on.
                log.exception("engine supervision failed; restarting the engine")
            self._set(State.DOWN)
            await self._kill()
            delay = BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS) - 1)]
            failures += 1
            await asyncio.sleep(delay)

    async def _spawn(self) -> None:
        env = {**os.environ, **dict(self.spec.env)}
        self.starts += 1
        log.info("starting engine: %s", shlex.join(self.argv))
        # The engine's stdout goes to our stderr: the adapter's stdout carries only the JSON access log.
        self.process = await asyncio.create_subprocess_exec(
            *self.argv, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=sys.stderr.fileno(),
            start_new_session=True, preexec_fn=_die_with_parent)

    async def _await_ready(self) -> bool:
        deadline = time.monotonic() + self.settings.engine_startup_timeout_seconds
        while time.monotonic() < deadline:
            if self.process and self.process.returncode is not None:
                log.error("engine exited with code %s while starting", self.process.returncode)
                return False
            if await self._check() is Probe.OK:
                return True
            await asyncio.sleep(STARTUP_POLL_SECONDS)
        log.error("engine not ready after %.0f s", self.settings.engine_startup_timeout_seconds)
        return False

    async def _watch(self) -> None:
        """Return when the engine has died, is broken, or is stuck; never because it is busy.

        A probe every HEALTH_INTERVAL_SECONDS (a slow probe, which has waited PROBE_TIMEOUT_SECONDS already, is
        followed by the next at once). An engine quiet (no health answer, no byte on any connection) for
        `engine_stall_seconds` is STALLED, out of rotation until it answers again; quiet for
        `engine_timeout_seconds`, it is restarted."""
        broken = 0
        last_ok = time.monotonic()
        stall_seconds = self.settings.engine_stall_seconds
        stuck_seconds = self.settings.engine_timeout_seconds
        wait = HEALTH_INTERVAL_SECONDS
        while True:
            waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._suspect.wait())]
            if self.process:
                waits.append(asyncio.ensure_future(self.process.wait()))
            try:
                await asyncio.wait(waits, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            finally:  # also when stop() cancels the supervisor here: no wait is left pending on a closed loop
                for task in waits:
                    task.cancel()
            if self.process and self.process.returncode is not None:
                log.error("engine exited with code %s", self.process.returncode)
                return
            suspected = self._suspect.is_set()
            self._suspect.clear()
            sent = time.monotonic()
            # A probe ends no later than the stall deadline, so a stall is seen when it is due, not a probe after.
            due = max(last_ok, self.upstream.last_byte_monotonic) + stall_seconds - sent
            timeout = PROBE_TIMEOUT_SECONDS if self.state is State.STALLED else \
                min(PROBE_TIMEOUT_SECONDS, max(due, MIN_PROBE_SECONDS))
            probe = await self._check(timeout)
            now = time.monotonic()
            # The next probe one interval after this one was sent; after a slow one (which has waited), at once.
            wait = 0.0 if probe is Probe.SLOW else max(0.0, HEALTH_INTERVAL_SECONDS - (now - sent))
            if probe is Probe.OK:
                broken, last_ok = 0, now
                if self.state is State.STALLED:
                    log.warning("engine answers again: back in rotation")
                self._set(State.READY)  # also ends a suspicion, or a stall, that proved wrong
                continue
            if probe is Probe.BROKEN:
                broken += 1
                if suspected:
                    # Requests are failing right now: answer 503 while we find out, rather than time out.
                    self._set(State.DOWN)
                if broken >= BROKEN_CHECKS_TO_RESTART:
                    log.error("engine failed %d health checks in a row", broken)
                    return
                continue
            broken = 0
            quiet = now - max(last_ok, self.upstream.last_byte_monotonic)
            if quiet >= stuck_seconds:
                log.error("engine stuck: no health answer and nothing sent for %.0f s (%d requests open)", quiet,
                          self.upstream.active)
                return
            if quiet >= stall_seconds and self.state is not State.STALLED:
                log.error("engine stalled: no health answer and nothing sent for %.1f s (%d requests open); out "
                          "of rotation until it answers, restarted after %.0f s", quiet, self.upstream.active,
                          stuck_seconds)
                self._set(State.STALLED)

    async def _check(self, timeout_seconds: float | None = None) -> Probe:
        response = None
        try:
            async with asyncio.timeout(timeout_seconds or PROBE_TIMEOUT_SECONDS):
                response = await self._probe.request("GET", self.spec.health_path)
                await response.read()
                status = response.status
        except TimeoutError:
            return Probe.SLOW
        except UpstreamError:
            return Probe.BROKEN
        finally:
            if response is not None:
                response.close()
        return Probe.OK if status < 500 else Probe.BROKEN

    async def _kill(self) -> None:
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        # The whole process group: vLLM runs its engine core and workers as child processes.
        for sig, wait in ((signal.SIGTERM, STOP_GRACE_SECONDS), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), wait)
                return
