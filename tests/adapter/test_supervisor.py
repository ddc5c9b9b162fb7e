"""The engine supervisor's verdicts against a scripted engine: busy is not stuck, stuck and broken are
restarted (issue 8, defect 1); frozen is out of rotation within the stall window and back when it answers,
busy never is (issue 25). In-process, with the check interval shortened, against a stub on loopback."""

from __future__ import annotations

import asyncio
import time

import pytest
from selfhost_adapter import engines
from selfhost_adapter.engines import Engine, State
from selfhost_adapter.settings import Settings

from .conftest import run_async


class ScriptedEngine:
    """Answers POST with an SSE stream that drips an event every 0.1 s for `stream_seconds`; answers
    GET /health with `health_status`, or never (`health_status=None`, as an engine stuck or too busy to)."""

    def __init__(self, health_status: int | None, stream_seconds: float = 0.0) -> None:
        self.health_status = health_status
        self.stream_seconds = stream_seconds

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                if head.startswith(b"GET /health"):
                    if self.health_status is None:
                        await asyncio.sleep(3600)
                    writer.write(b"HTTP/1.1 %d X\r\ncontent-length: 2\r\n\r\n{}" % self.health_status)
                    continue
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                             b"transfer-encoding: chunked\r\n\r\n")
                ends = time.monotonic() + self.stream_seconds
                while time.monotonic() < ends:
                    event = b'data: {"choices": [{"text": "x"}]}\n\n'
                    writer.write(b"%x\r\n%s\r\n" % (len(event), event))
                    await asyncio.sleep(0.1)
                writer.write(b"0\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


async def supervised(stub: ScriptedEngine, engine_timeout_seconds: float,
                     engine_stall_seconds: float = 12.0) -> tuple[Engine, asyncio.Server]:
    server = await asyncio.start_server(stub.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    engine = Engine(Settings(engine="external", engine_url=f"http://127.0.0.1:{port}",
                             engine_timeout_seconds=engine_timeout_seconds,
                             engine_stall_seconds=engine_stall_seconds))
    return engine, server


async def shut(engine: Engine, server: asyncio.Server) -> None:
    await engine.stop()
    server.close()
    others = asyncio.all_tasks() - {asyncio.current_task()}
    for task in others:  # the stub's handlers, some waiting forever on purpose
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


@pytest.fixture(autouse=True)
def quick_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "HEALTH_INTERVAL_SECONDS", 0.1)
    monkeypatch.setattr(engines, "PROBE_TIMEOUT_SECONDS", 0.2)


def test_an_engine_that_streams_is_busy_not_stuck_and_one_that_does_nothing_is_stuck() -> None:
    async def run() -> list[tuple[float, State]]:
        stub = ScriptedEngine(health_status=200, stream_seconds=3.0)
        engine, server = await supervised(stub, engine_timeout_seconds=1.0, engine_stall_seconds=0.5)
        engine.start()
        assert await engine.wait_ready(5)
        stub.health_status = None  # from now on its health check never answers, as an engine busy generating
        states: list[tuple[float, State]] = []
        started = time.monotonic()
        response = await engine.upstream.request("POST", "/v1/completions", b"{}")
        async for _ in response.chunks():  # 3 s of events: bytes flow, so the engine is working
            states.append((time.monotonic() - started, engine.state))
        response.close()
        deadline = time.monotonic() + 5
        while engine.state is State.READY and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        states.append((time.monotonic() - started, engine.state))
        await shut(engine, server)
        return states

    states = run_async(run())
    during, (after_seconds, after) = states[:-1], states[-1]
    # 3 s, past the 0.5 s stall window and the 1 s restart window: never stalled, never down
    assert len(during) >= 20 and all(state is State.READY for _, state in during)
    assert after is not State.READY and after_seconds < during[-1][0] + 3  # quiet for 1 s: stuck


def test_an_engine_that_says_it_is_broken_is_taken_down() -> None:
    async def run() -> State:
        stub = ScriptedEngine(health_status=200)
        engine, server = await supervised(stub, engine_timeout_seconds=300.0)
        engine.start()
        assert await engine.wait_ready(5)
        stub.health_status = 503  # vLLM's answer once its engine core has died
        deadline = time.monotonic() + 5
        while engine.state is State.READY and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        state = engine.state
        await shut(engine, server)
        return state

    assert run_async(run()) is not State.READY


def test_a_frozen_engine_is_stalled_within_the_window_and_back_when_it_answers() -> None:
    """Frozen (SIGSTOP, a deadlock): it answers nothing and sends nothing. Out of rotation once the stall window
    has passed, not before; back in rotation as soon as it answers; not restarted before the engine timeout."""
    async def run() -> tuple[float, list[State], State, int]:
        stub = ScriptedEngine(health_status=200)
        engine, server = await supervised(stub, engine_timeout_seconds=300.0, engine_stall_seconds=1.0)
        seen: list[State] = []
        engine.on_state = seen.append
        engine.start()
        assert await engine.wait_ready(5)
        stub.health_status = None
        frozen = time.monotonic()
        deadline = frozen + 5
        while engine.state is State.READY and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        stalled_after = time.monotonic() - frozen
        stalled = engine.state
        stub.health_status = 200
        deadline = time.monotonic() + 5
        while engine.state is not State.READY and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        after, starts = engine.state, engine.starts
        await shut(engine, server)
        return stalled_after, [stalled, *seen], after, starts

    stalled_after, (stalled, *seen), after, starts = run_async(run())
    assert stalled is State.STALLED and 0.8 <= stalled_after <= 1.0 + 0.4, stalled_after
    # never taken down (external: nothing to start, so nothing restarted); STOPPED is the test's own stop
    assert after is State.READY and seen == [State.READY, State.STALLED, State.READY, State.STOPPED], seen
    assert starts == 0
