"""A lean HTTP/1.1 client for the one upstream the adapter has: the engine on 127.0.0.1.

Why not a general client: httpx measured 1.5-3 ms per request against an instant local server here, most of
it in its generic machinery, against a 1 ms budget for the whole adapter. This client does only what talking
to a local engine needs (keep-alive connections, Content-Length and chunked bodies, streaming, httptools for
parsing) and costs about a tenth of that.
"""

from __future__ import annotations

import asyncio
import collections
import time
from urllib.parse import urlsplit

import httptools

# Stop reading from the engine while this much of a stream waits for a slow client.
HIGH_WATER_BYTES = 1 << 20
MAX_IDLE_CONNECTIONS = 256


class UpstreamError(ConnectionError):
    """The engine could not be reached, or the connection broke before the answer was whole."""


class Interrupted(Exception):
    """The adapter stopped waiting for this answer (the client hung up, or the drain deadline came); `reason`
    says why, in the shape the client is told."""

    def __init__(self, reason: Exception) -> None:
        super().__init__(str(reason))
        self.reason = reason


class _Connection(asyncio.Protocol):
    __slots__ = ("pool", "parser", "transport", "status", "chunks", "buffered", "complete", "error", "waiter",
                 "got_bytes", "content_type", "paused", "keep_alive")

    def __init__(self, pool: Upstream) -> None:
        self.pool = pool
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.error: Exception | None = None
        self.waiter: asyncio.Future[None] | None = None
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.content_type = b""
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.complete = False
        self.got_bytes = False
        self.paused = False
        self.keep_alive = False

    # -- protocol callbacks -----------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        self.pool.last_byte_monotonic = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"bad response from the engine: {exc}"))

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"content-type":
            self.content_type = value

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        # Asked now: once the message is complete, the parser has already forgotten.
        self.keep_alive = self.parser.should_keep_alive()
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER_BYTES and self.transport and not self.paused:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.complete:
            self._fail(UpstreamError("the engine closed the connection"))

    # -- helpers ----------------------------------------------------------------------------------------------

    def _fail(self, exc: Exception) -> None:
        if self.error is None:  # the first cause is the one to report
            self.error = exc
        if self.transport:
            self.transport.close()
            self.transport = None
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def wait(self) -> None:
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None

    def take(self) -> bytes:
        data = b"".join(self.chunks) if len(self.chunks) > 1 else self.chunks.popleft()
        self.chunks.clear()
        self.buffered = 0
        if self.paused and self.transport:
            self.paused = False
            self.transport.resume_reading()
        return data

    @property
    def reusable(self) -> bool:
        return self.complete and self.error is None and self.transport is not None and self.keep_alive


class Response:
    """An answer whose headers have arrived; the body is read with `read()` or `chunks()`, then `close()`."""

    def __init__(self, pool: Upstream, conn: _Connection) -> None:
        self._pool = pool
        self._conn = conn
        self._closed = False
        self.status = conn.status
        self.content_type = conn.content_type

    def interrupt(self, reason: Exception) -> None:
        """Stop reading: the wait in `chunks()` ends at once with Interrupted(reason), and the connection is closed
        (which is how an engine learns to stop generating)."""
        if not self._closed:
            self._conn._fail(Interrupted(reason))

    async def chunks(self, idle_timeout_seconds: float | None = None):
        """Body pieces as they arrive. Raises TimeoutError when none comes for `idle_timeout_seconds`."""
        conn = self._conn
        while True:
            if conn.chunks:
                yield conn.take()
                continue
            if conn.complete:
                return
            if conn.error is not None:
                raise conn.error
            if idle_timeout_seconds is None:
                await conn.wait()
            else:
                async with asyncio.timeout(idle_timeout_seconds):
                    await conn.wait()

    async def read(self) -> bytes:
        return b"".join([piece async for piece in self.chunks()])

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool._release(self._conn)
            self._pool._leave()


class Upstream:
    """Keep-alive connections to one base URL (http only: the engine is on loopback).

    With `max_connections`, at most that many requests are open at once and the others wait their turn: a
    request fanned out to thousands of engine calls must not exhaust the container's file descriptors. The time
    the engine last sent a byte (on any connection) tells a busy engine from a stuck one.
    """

    def __init__(self, base_url: str, max_connections: int | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"engine URL must be http://host:port, got {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self._host_header = f"{self.host}:{self.port}".encode()
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections) if max_connections else None
        self.active = 0
        """Requests open now (sent, answer not yet closed)."""
        self.last_byte_monotonic = 0.0
        """When the engine last sent anything, on any connection (time.monotonic())."""

    async def request(self, method: str, path: str, body: bytes = b"") -> Response:
        """Send a request and wait for the answer's headers. Raises UpstreamError if the engine is unreachable."""
        if self._slots is not None:
            await self._slots.acquire()
        self.active += 1
        try:
            return Response(self, await self._send(method, path, body))
        except BaseException:
            self._leave()
            raise

    def _leave(self) -> None:
        self.active -= 1
        if self._slots is not None:
            self._slots.release()

    async def _send(self, method: str, path: str, body: bytes) -> _Connection:
        head = (b"%s %s HTTP/1.1\r\nhost: %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
                % (method.encode(), (self.prefix + path).encode(), self._host_header, len(body)))
        # A kept-alive connection may have been closed by the engine meanwhile: if it fails before a single
        # byte of the answer, the request never reached the engine, and one retry on a new connection is safe.
        for attempt in (0, 1):
            conn = self._take_idle() if attempt == 0 else None
            reused = conn is not None
            if conn is None:
                conn = await self._connect()
            conn._reset()
            assert conn.transport is not None
            conn.transport.write(head + body if len(body) < 65536 else head)
            if len(body) >= 65536:
                conn.transport.write(body)
            try:
                while not conn.status and conn.error is None:
                    await conn.wait()
            except BaseException:
                self._discard(conn)
                raise
            if conn.error is None:
                return conn
            self._discard(conn)
            if not (reused and not conn.got_bytes):
                raise conn.error
        raise UpstreamError("unreachable")  # the loop always returns or raises

    def _take_idle(self) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if conn.transport is not None and not conn.transport.is_closing():
                return conn
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: _Connection(self), self.host, self.port)
        except OSError as exc:
            raise UpstreamError(f"cannot connect to the engine: {exc.strerror or exc}") from None
        return conn

    def _release(self, conn: _Connection) -> None:
        if conn.reusable and len(self._idle) < MAX_IDLE_CONNECTIONS:
            self._idle.append(conn)
        else:
            self._discard(conn)

    @staticmethod
    def _discard(conn: _Connection) -> None:
        if conn.transport is not None:
            conn.transport.close()
            conn.transport = None

    def close(self) -> None:
        for conn in self._idle:
            self._discard(conn)
        self._idle.clear()
