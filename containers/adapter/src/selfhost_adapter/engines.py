"""The engine: how to start each one, and a supervisor that keeps it running and knows when it is ready.

The adapter never answers inference itself. It starts the engine on 127.0.0.1, reports ready only once the
engine answers its readiness route (both engines listen only after the model is loaded), notices at once when
the process dies (503 from then on), and starts it again with a capped backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shlex
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from .settings import Settings, gguf_file
from .upstream import Upstream, UpstreamError

log = logging.getLogger("selfhost_adapter.engine")


@dataclass(frozen=True)
class EngineSpec:
    command: Callable[[Settings, str, int], list[str]]
    """argv for (settings, python, port): the engine listens on 127.0.0.1:port only."""
    ready_path: str
    """GET answers 200 once the model is loaded."""
    stream_usage: bool
    """The engine honours `stream_options.include_usage` (so streamed token counts are exact)."""
    env: tuple[tuple[str, str], ...] = ()
    renames: tuple[tuple[str, str], ...] = ()
    """OpenAI-side parameter names this engine spells its own way (TGI's repetition_penalty)."""


def _vllm(s: Settings, python: str, port: int) -> list[str]:
    return [python, "-m", "vllm.entrypoints.openai.api_server", "--model", s.resolved_model(),
            "--served-model-name", s.resolved_model_name(), "--host", "127.0.0.1", "--port", str(port),
            "--disable-uvicorn-access-log"]


def _llamacpp(s: Settings, python: str, port: int) -> list[str]:
    # interrupt_requests would cut a running stream short whenever another request arrives.
    model = gguf_file(s.resolved_model()) or s.resolved_model()
    return [python, "-m", "llama_cpp.server", "--model", str(model), "--model_alias",
            s.resolved_model_name(), "--host", "127.0.0.1", "--port", str(port), "--interrupt_requests", "false"]


ENGINES: dict[str, EngineSpec] = {
    "vllm": EngineSpec(_vllm, "/health", stream_usage=True, env=(("VLLM_NO_USAGE_STATS", "1"),)),
    "llamacpp": EngineSpec(_llamacpp, "/v1/models", stream_usage=False,
                           renames=(("repetition_penalty", "repeat_penalty"),)),
    # Someone else runs it: we only watch its health and proxy to it.
    "external": EngineSpec(lambda s, python, port: [], "/v1/models", stream_usage=False),
}


class State(str, Enum):
    STARTING = "starting"
    READY = "ready"
    DOWN = "down"
    STOPPED = "stopped"


HEALTH_INTERVAL_SECONDS = 2.0
PROBE_TIMEOUT_SECONDS = 2.0
HEALTH_FAILURES_TO_RESTART = 3
STARTUP_POLL_SECONDS = 0.1
BACKOFF_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
STOP_GRACE_SECONDS = 10.0


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
        self.state = State.STARTING
        self.starts = 0
        self.process: asyncio.subprocess.Process | None = None
        self._ready = asyncio.Event()
        self._suspect = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._probe = Upstream(self.base_url)
        self.on_state: Callable[[State], None] = lambda state: None

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
            if await self._healthy():
                return True
            await asyncio.sleep(STARTUP_POLL_SECONDS)
        log.error("engine not ready after %.0f s", self.settings.engine_startup_timeout_seconds)
        return False

    async def _watch(self) -> None:
        """Return when the engine has died or failed its health check too often."""
        failures = 0
        while failures < HEALTH_FAILURES_TO_RESTART:
            waits = [asyncio.ensure_future(self._suspect.wait())]
            if self.process:
                waits.append(asyncio.ensure_future(self.process.wait()))
            done, pending = await asyncio.wait(waits, timeout=HEALTH_INTERVAL_SECONDS,
                                               return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            if self.process and self.process.returncode is not None:
                log.error("engine exited with code %s", self.process.returncode)
                return
            suspected = self._suspect.is_set()
            self._suspect.clear()
            if await self._healthy():
                failures = 0
                continue
            failures += 1
            if suspected:
                # Requests are failing right now: answer 503 while we find out, rather than time out.
                self._set(State.DOWN)
        log.error("engine failed %d health checks", failures)

    async def _healthy(self) -> bool:
        response = None
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                response = await self._probe.request("GET", self.spec.ready_path)
                await response.read()
        except (UpstreamError, TimeoutError):
            return False
        finally:
            if response is not None:
                response.close()
        if response.status == 200 and self.state is State.DOWN:
            self._set(State.READY)  # a suspicion that proved wrong
        return response.status == 200

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
