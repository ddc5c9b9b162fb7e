"""A bounded closed-loop HTTP/1.1 load generator: `concurrency` workers, each on its own keep-alive connection,
send `total` requests between them and time each one from the first byte sent to the last byte received.

Raw asyncio + httptools, so the client's own cost is small and the same whichever server it measures.
Every run is bounded in count and in time: past `deadline_seconds` the remaining requests are not sent and
are reported as such.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import httptools


@dataclass
class Result:
    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    bodies: list[bytes] = field(default_factory=list)
    elapsed_s: float = 0.0
    not_sent: int = 0

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def throughput_rps(self) -> float:
        return len(self.latencies_s) / self.elapsed_s if self.elapsed_s else 0.0

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] * 1000


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.waiter and not self.waiter.done():
            self.waiter.set_result((self.parser.get_status_code(), b"".join(self.body)))
        if not self.parser.should_keep_alive() and self.transport:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._fail(exc or ConnectionResetError("connection closed"))

    def _fail(self, exc: Exception) -> None:
        if self.waiter and not self.waiter.done():
            self.waiter.set_exception(exc)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self.body = []
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter


def build_request(host: str, port: int, method: str, path: str, body: bytes = b"",
                  headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"host: {host}:{port}", "content-type: application/json",
             f"content-length: {len(body)}", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def run_load(host: str, port: int, raw_request: bytes, total: int, concurrency: int,
                   deadline_seconds: float = 120.0, keep_bodies: bool = False) -> Result:
    result = Result()
    remaining = total
    loop = asyncio.get_running_loop()
    stop_at = time.perf_counter() + deadline_seconds

    async def worker() -> None:
        nonlocal remaining
        conn: _Connection | None = None
        while remaining > 0 and time.perf_counter() < stop_at:
            remaining -= 1
            try:
                if conn is None or conn.transport is None:
                    _, conn = await loop.create_connection(_Connection, host, port)
                started = time.perf_counter()
                status, body = await asyncio.wait_for(conn.request(raw_request), stop_at - started)
            except (TimeoutError, OSError, httptools.HttpParserError) as exc:
                result.errors[type(exc).__name__] += 1
                conn = None
                continue
            result.latencies_s.append(time.perf_counter() - started)
            result.statuses[status] += 1
            if keep_bodies:
                result.bodies.append(body)
        if conn and conn.transport:
            conn.transport.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed_s = time.perf_counter() - started
    result.not_sent = max(remaining, 0)
    return result
