"""A minimal OpenAI-compatible upstream that answers at once: what isolates the adapter's own cost.

Raw asyncio + httptools (no framework), so it costs far less per request than the adapter it sits behind.
It answers `/v1/chat/completions` and `/v1/completions` with `max_tokens` pieces of text (streamed as SSE
events in one write, or as one JSON body), and GET `/v1/models`. The tests use it as a controllable engine:
a prompt or message content of `sleep:<seconds>` makes it wait that long before answering, `drip:<seconds>`
makes it send streamed events that far apart, and `status:<code>` makes it answer with that status.

    python -m benchmarks.instant_upstream --port 8000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re

import httptools

MODEL = "instant"
DIRECTIVE = re.compile(r"(sleep|status|drip):([0-9.]+)")


def _directives(request: dict) -> dict[str, float]:
    text = request.get("prompt")
    if text is None:
        messages = request.get("messages") or [{}]
        text = messages[-1].get("content") if isinstance(messages[-1], dict) else ""
    return {k: float(v) for k, v in DIRECTIVE.findall(text if isinstance(text, str) else json.dumps(text))}


def _completion(request: dict, chat: bool, n: int) -> bytes:
    text = "x" * n
    choice = ({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"} if chat
              else {"index": 0, "text": text, "finish_reason": "length"})
    return json.dumps({"id": "cmpl-instant", "object": "chat.completion" if chat else "text_completion",
                       "model": MODEL, "choices": [choice],
                       "usage": {"prompt_tokens": 7, "completion_tokens": n, "total_tokens": 7 + n}}).encode()


def _stream(request: dict, chat: bool, n: int) -> list[bytes]:
    events = []
    for i in range(n):
        choice = ({"index": 0, "delta": {"content": "x"}, "finish_reason": "length" if i == n - 1 else None} if chat
                  else {"index": 0, "text": "x", "finish_reason": "length" if i == n - 1 else None})
        events.append(b"data: " + json.dumps({"id": "cmpl-instant", "model": MODEL, "choices": [choice]}).encode()
                      + b"\n\n")
    if (request.get("stream_options") or {}).get("include_usage"):
        usage = {"prompt_tokens": 7, "completion_tokens": n, "total_tokens": 7 + n}
        events.append(b"data: " + json.dumps({"id": "cmpl-instant", "choices": [], "usage": usage}).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


class Http(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        url, body, method = self.url, b"".join(self.body), self.parser.get_method()
        self.url, self.body = b"", []
        if method == b"GET":
            self._send(200, json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode())
            return
        try:
            request = json.loads(body)
        except ValueError:
            self._send(400, b'{"error": {"message": "bad json"}}')
            return
        directives = _directives(request)
        if "sleep" in directives:
            asyncio.get_running_loop().call_later(directives["sleep"], self._answer, url, request, directives)
        else:
            self._answer(url, request, directives)

    def _answer(self, url: bytes, request: dict, directives: dict[str, float]) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if "status" in directives:
            self._send(int(directives["status"]), json.dumps({"error": {"message": "as asked"}}).encode())
            return
        chat = url.endswith(b"/chat/completions")
        n = int(request.get("max_tokens") or 16)
        if not request.get("stream"):
            self._send(200, _completion(request, chat, n))
            return
        chunks = [b"%x\r\n%s\r\n" % (len(e), e) for e in _stream(request, chat, n)] + [b"0\r\n\r\n"]
        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        if "drip" not in directives:
            self.transport.write(head + b"".join(chunks))
            return
        self.transport.write(head)
        loop = asyncio.get_running_loop()
        for i, chunk in enumerate(chunks):
            loop.call_later(directives["drip"] * (i + 1), self._write, chunk)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _send(self, status: int, body: bytes) -> None:
        self.transport.write(b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                             % (status, len(body), body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(host: str, port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Http, host, port, backlog=2048)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        from uvloop import run
    except ImportError:
        from asyncio import run
    run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
