"""The adapter's HTTP client to the engine, against the instant upstream: keep-alive reuse, streaming, and
connections the engine has closed."""

from __future__ import annotations

import asyncio
import json

import pytest
from selfhost_adapter.upstream import Upstream, UpstreamError

from .conftest import Running, free_port, run_async

pytestmark = pytest.mark.slow


def _body(stream: bool, n: int = 3) -> bytes:
    return json.dumps({"messages": [{"role": "user", "content": "x"}], "max_tokens": n, "stream": stream}).encode()


def test_keep_alive_reuse_and_chunked_streams(upstream: Running) -> None:
    async def run() -> None:
        client = Upstream(upstream.url)
        for stream in (False, True, False):
            response = await client.request("POST", "/v1/chat/completions", _body(stream))
            data = await response.read()
            response.close()
            assert response.status == 200
            if stream:
                assert response.content_type == b"text/event-stream" and data.endswith(b"data: [DONE]\n\n")
                assert data.count(b"data: ") == 4
            else:
                assert json.loads(data)["usage"]["completion_tokens"] == 3
            assert len(client._idle) == 1  # one connection, reused
        client.close()

    run_async(run())


def test_a_connection_the_engine_closed_is_not_reused(upstream: Running) -> None:
    async def run() -> None:
        client = Upstream(upstream.url)
        first = await client.request("GET", "/v1/models")
        await first.read()
        first.close()
        [idle] = client._idle
        idle.transport.close()  # as an engine that restarted would have
        await asyncio.sleep(0.01)
        second = await client.request("GET", "/v1/models")
        assert second.status == 200 and b"instant" in await second.read()
        second.close()
        assert client._idle and client._idle[0] is not idle
        client.close()

    run_async(run())


def test_unreachable_engine_is_an_upstream_error() -> None:
    async def run() -> None:
        with pytest.raises(UpstreamError):
            await Upstream(f"http://127.0.0.1:{free_port()}").request("GET", "/health")

    run_async(run())
    with pytest.raises(ValueError):
        Upstream("https://example.invalid")
