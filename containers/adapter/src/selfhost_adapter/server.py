"""The HTTP server: uvicorn with its httptools protocol, plus the limits that protocol lacks, and the drain.

uvicorn's httptools protocol puts no bound on a request's head: an 8 MiB header, or thousands of header
fields, are buffered as they come, and a client may take forever to send them. Here a request line and its
headers together are capped in bytes and in fields (431) and must arrive within a deadline counted from the
request's first byte (408); a new connection that sends nothing is closed after the keep-alive timeout, as an
idle kept-alive one already is. Such a request never reaches the app: it is answered here, in the app's
error shape, counted in `selfhost_rejected_requests_total`, and its connection closed.

A connection closed while the client may still be sending (a body over the limit refused from its
Content-Length, a head refused halfway) is closed gently: closing a socket with unread bytes makes the kernel
answer with a reset, which destroys the response before the client has read it. The answer goes out, the
sending side is shut (where the transport can: not under TLS), and what the client still sends is read and
dropped, up to LINGER_MAX_BYTES and LINGER_SECONDS, or until it closes its side.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from .errors import ApiError

LINGER_SECONDS = 5.0
LINGER_MAX_BYTES = 16 << 20


class _CycleTransport:
    """The transport as one request's response cycle sees it: the connection's own `write` and `is_closing`
    (bound once: no cost per write), and a `close` that lets the protocol close gently."""

    __slots__ = ("write", "is_closing", "get_extra_info", "close")

    def __init__(self, transport: asyncio.Transport, close: Callable[[], None]) -> None:
        self.write = transport.write
        self.is_closing = transport.is_closing
        self.get_extra_info = transport.get_extra_info
        self.close = close


@dataclass(frozen=True)
class HeadLimits:
    max_bytes: int
    max_fields: int
    timeout_seconds: float


class _Refuse(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def guarded_protocol(limits: HeadLimits, on_refuse: Callable[[str], None]) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with bounded request heads; `on_refuse(reason)` is told of each refusal."""

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._in_head = True
            self._head_bytes = 0
            self._head_timer: asyncio.TimerHandle | None = None
            self._linger: asyncio.TimerHandle | None = None
            self._linger_bytes = 0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive,
                                                                self.timeout_keep_alive_handler)

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_timer()
            if self._linger is not None:
                self._linger.cancel()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._linger is not None:  # answered and closing: the rest of the request is dropped unread
                self._linger_bytes += len(data)
                if self._linger_bytes > LINGER_MAX_BYTES:
                    self.transport.close()
                return
            self._unset_keepalive_if_required()
            while data:
                if self._in_head:
                    # Feed the parser no more of a head than the limit: what it is fed, it buffers.
                    room = limits.max_bytes - self._head_bytes
                    if room <= 0:
                        self._refuse(_Refuse(431, "header_too_large",
                                             f"request line and headers over {limits.max_bytes} bytes"))
                        return
                    if self._head_timer is None:
                        self._head_timer = self.loop.call_later(limits.timeout_seconds, self._head_timeout)
                    piece, data = data[:room], data[room:]
                    self._head_bytes += len(piece)
                else:
                    piece, data = data, b""
                if not self._feed(piece):
                    return

        def _feed(self, piece: bytes) -> bool:
            """uvicorn's own data_received, for one piece; False once the connection is done for."""
            parser = self.parser
            if parser is None:  # uvicorn's connection_lost drops the parser: the connection is gone
                return False
            try:
                parser.feed_data(piece)
            except httptools.HttpParserCallbackError as exc:
                if isinstance(exc.__context__, _Refuse):
                    self._refuse(exc.__context__)
                else:
                    self.send_400_response("Invalid HTTP request received.")
                return False
            except httptools.HttpParserError:
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)
                return False
            except httptools.HttpParserUpgrade:
                self._unsupported_upgrade_warning()
                return False
            return not self.transport.is_closing()

        def on_headers_complete(self) -> None:
            self._stop_timer()
            self._in_head = False
            if len(self.headers) > limits.max_fields:
                raise _Refuse(431, "too_many_headers", f"more than {limits.max_fields} header fields")
            before = self.cycle
            super().on_headers_complete()
            if self.cycle is not before:  # a new request's cycle (an upgrade makes none)
                self.cycle.transport = _CycleTransport(self.transport, self._close_gently)  # type: ignore[assignment]

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_head = True
            self._head_bytes = 0

        def _head_timeout(self) -> None:
            self._head_timer = None
            if self._in_head and not self.transport.is_closing():
                self._refuse(_Refuse(408, "header_timeout",
                                     f"request headers not received within {limits.timeout_seconds:g} s"))

        def _stop_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _refuse(self, refusal: _Refuse) -> None:
            self._stop_timer()
            on_refuse(refusal.reason)
            # Answer only when no earlier response is still being written on this connection.
            if self.cycle is None or self.cycle.response_complete:
                body = ApiError(refusal.status, str(refusal)).body()
                self.transport.write(STATUS_LINE[refusal.status] + b"content-type: application/json\r\n"
                                     b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))
                self._close_gently()
            else:  # that response is cut: its writer must not find the connection half-closed
                self.transport.close()

        def _close_gently(self) -> None:
            """Close the connection; if the client may still be sending (a request not wholly read), only
            after it has had the time to read the answer (see the module's docstring)."""
            transport = self.transport
            if transport.is_closing() or self._linger is not None:
                return
            if self._in_head and not self._head_bytes:  # the request was read whole, nothing follows it
                transport.close()
                return
            self.pipeline.clear()
            self._linger = self.loop.call_later(LINGER_SECONDS, transport.close)
            if transport.can_write_eof():
                transport.write_eof()
            self.flow.resume_reading()  # uvicorn stops reading a body the app does not take

    return GuardedHttpToolsProtocol


class Server(uvicorn.Server):
    """Tells `on_drain` when a graceful shutdown begins (SIGTERM), before uvicorn waits for open requests."""

    def __init__(self, config: uvicorn.Config, on_drain: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_drain = on_drain

    async def shutdown(self, sockets: Any = None) -> None:
        self.on_drain()
        await super().shutdown(sockets)
