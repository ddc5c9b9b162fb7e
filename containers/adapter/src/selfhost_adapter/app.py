"""The ASGI app: one route table, every platform contract, all proxied to the engine on 127.0.0.1.

Written against bare ASGI (run by uvicorn) rather than a framework: the hot path is a dict lookup, a body
read and an HTTP call, and streamed answers go out chunk by chunk as the engine sends them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import contracts as c
from .engines import Engine, State
from .errors import ERRORS, ApiError, client_gone, draining, engine_stalled
from .keys import KeyRing
from .settings import Settings
from .upstream import Interrupted, Response, UpstreamError
from .usage import Call, Usage

log = logging.getLogger("selfhost_adapter")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

JSON = b"application/json"
SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"),
               (b"x-accel-buffering", b"no")]  # tells nginx-style proxies in front not to buffer either

# Which contracts each platform argument turns on. The OpenAI routes are always there (behind API keys
# when a key file is set); SageMaker and Vertex authenticate callers themselves before they reach us.
CONTRACTS: dict[str, frozenset[str]] = {
    "serve": frozenset({"sagemaker", "openai"}),
    "sagemaker": frozenset({"sagemaker", "openai"}),
    "vertex": frozenset({"vertex", "openai"}),
    "openai": frozenset({"openai"}),
    "all": frozenset({"sagemaker", "vertex", "openai"}),
}


class Reply:
    """The response side of one request; knows whether headers have gone out (after that, no error status).

    `stop` resolves, with the error to report, when the adapter should stop waiting for the engine on this
    request's behalf: the client hung up, or the drain deadline came.
    """

    __slots__ = ("send", "call", "started", "stop")

    def __init__(self, send: Send, call: Call) -> None:
        self.send = send
        self.call = call
        self.started = False
        self.stop: asyncio.Future[ApiError] | None = None

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.call.status = status
        self.started = True
        await self.send({"type": "http.response.start", "status": status,
                         "headers": [*headers, (b"x-request-id", self.call.request_id.encode())]})

    async def body(self, data: bytes, more: bool = False) -> None:
        await self.send({"type": "http.response.body", "body": data, "more_body": more})

    async def whole(self, status: int, data: bytes, content_type: bytes = JSON,
                    headers: list[tuple[bytes, bytes]] | None = None) -> None:
        await self.start(status, [(b"content-type", content_type), *(headers or [])])
        await self.body(data)


Handler = Callable[[Scope, Receive, Reply, Call], Awaitable[None]]
T = TypeVar("T")

# Streams still open this long before the drain ends are closed by us, with a final error event, so that no
# client sees a cut connection.
DRAIN_MARGIN_SECONDS = 1.0


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    name: str
    handler: Handler
    contract: str | None  # None: always on
    inference: bool = False  # reads a body, counts against the key's concurrency, needs the engine

    @property
    def logged(self) -> bool:
        """Probes and scrapes (every few seconds, forever) are counted in the metrics but kept out of the
        usage log."""
        return self.inference or self.contract == "openai"

    @property
    def needs_key(self) -> bool:
        return self.contract == "openai"


class Adapter:
    def __init__(self, settings: Settings, engine: Engine | None = None, usage: Usage | None = None) -> None:
        self.s = settings
        self.engine = engine or Engine(settings)
        self.keys = KeyRing(settings.api_keys_file)
        self.usage = usage or Usage(settings.log_prompts)
        self.usage.engine_up.set_function(lambda: float(self.engine.ready))
        self.usage.engine_starts.set_function(lambda: float(self.engine.starts))
        self.engine.on_state = self._engine_state
        self.renames = dict(self.engine.spec.renames)
        self.rules = c.Rules(settings.max_tokens_cap, settings.resolved_model_name(),
                             frozenset(settings.model_aliases), tuple(lora.name for lora in settings.adapters))
        self.in_flight: dict[str, int] = {}
        self.upstream = self.engine.upstream
        self.open: set[asyncio.Future[ApiError]] = set()
        """The `stop` of every inference request being answered."""
        self.drained = False
        """The drain deadline has come: a request that starts now is answered 'shutting down'."""
        self.created = int(time.time())
        self.routes = {(r.method, r.path): r for r in self._route_table()
                       if r.contract is None or r.contract in CONTRACTS[settings.platform]}
        self.paths = {path for _, path in self.routes}
        if not self.keys.enabled:
            log.warning("no API keys file: the OpenAI routes answer anyone who can reach port %d", settings.port)

    def _route_table(self) -> list[Route]:
        s = self.s
        return [
            Route("GET", "/health", "health", self.health, None),
            Route("GET", "/livez", "liveness", self.liveness, None),
            Route("GET", "/metrics", "metrics", self.metrics, None),
            Route("GET", "/ping", "sagemaker_ping", self.health, "sagemaker"),
            Route("POST", "/invocations", "sagemaker_invocations", self.invocations, "sagemaker", True),
            Route("POST", "/invocations-response-stream", "sagemaker_stream", self.invocations_stream,
                  "sagemaker", True),
            Route("GET", s.health_route, "vertex_health", self.health, "vertex"),
            Route("POST", s.predict_route, "vertex_predict", self.predict, "vertex", True),
            Route("GET", "/v1/models", "openai_models", self.models, "openai"),
            Route("POST", c.CHAT, "openai_chat", self.openai, "openai", True),
            Route("POST", c.COMPLETIONS, "openai_completions", self.openai, "openai", True),
        ]

    # -- ASGI ------------------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        route = self.routes.get((scope["method"], scope["path"]))
        headers = dict(scope["headers"])
        call = Call(route.name if route else "unknown",
                    request_id=headers.get(b"x-request-id", b"").decode("latin-1")[:128] or uuid.uuid4().hex)
        reply = Reply(send, call)
        counted = False
        gone: asyncio.Future[Any] | None = None
        try:
            if route is None:
                raise ApiError(405, "method not allowed") if scope["path"] in self.paths else \
                    ApiError(404, f"no route {scope['path']}")
            if route.needs_key:
                call.key_id = self.keys.check(headers.get(b"authorization"))
            if route.inference:
                call.model = self.rules.model
                # The whole body first, then a slot: a client that sends slowly holds nothing of anyone's.
                scope["body"] = await self._read_body(headers, receive)
                counted = self._enter(call.key_id)
                gone = self._watch(reply, receive)
            await route.handler(scope, receive, reply, call)
        except ApiError as exc:
            call.error = exc.code
            if reply.started:
                log.warning("%s after the response started: %s", exc.code, exc.message)
            else:
                unread = route is None or (route.inference and "body" not in scope)
                close = [(b"connection", b"close")] if unread and scope["method"] == "POST" else []
                await reply.whole(exc.status, exc.body(), headers=exc.headers() or close)
        except Exception:
            log.exception("request %s failed", call.request_id)
            call.error = "internal_error"
            if not reply.started:
                await reply.whole(500, json.dumps({"error": {"message": "internal error", "type": "server_error",
                                                             "code": "internal_error"}}).encode())
        finally:
            if gone is not None:
                gone.cancel()
                self.open.discard(reply.stop)
            if counted:
                self._leave(call.key_id)
            self.usage.record(call, log_line=route is None or route.logged)

    def _watch(self, reply: Reply, receive: Receive) -> asyncio.Future[Any]:
        """Give the request its `stop`, resolved when the client hangs up (the body is all read, so the next
        message can only be the disconnect) or when the drain ends."""
        stop: asyncio.Future[ApiError] = asyncio.get_running_loop().create_future()
        reply.stop = stop
        self.open.add(stop)
        gone = asyncio.ensure_future(receive())

        def hung_up(f: asyncio.Future[Any]) -> None:
            if not (stop.done() or f.cancelled()):
                stop.set_result(client_gone())

        gone.add_done_callback(hung_up)
        if self.drained:
            stop.set_result(draining())
        return gone

    def begin_drain(self) -> None:
        """The server stops taking connections and gives the open requests `drain_seconds` to finish: end
        those still open just before that, each with an answer of its own."""
        def cut() -> None:
            self.drained = True
            if self.open:
                log.warning("drain ends: %d requests still open are answered 'shutting down'", len(self.open))
            for stop in list(self.open):
                if not stop.done():
                    stop.set_result(draining())

        asyncio.get_running_loop().call_later(max(0.0, self.s.drain_seconds - DRAIN_MARGIN_SECONDS), cut)

    def _engine_state(self, state: State) -> None:
        """A stalled engine answers nothing: the requests waiting on it are answered 503 now (streams already
        started end with an error event) rather than at the client's timeout or the engine timeout."""
        if state is not State.STALLED:
            return
        waiting = [stop for stop in self.open if not stop.done()]
        if waiting:
            log.warning("engine stalled: %d requests waiting on it are answered 503", len(waiting))
        for stop in waiting:
            stop.set_result(engine_stalled())

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.engine.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # uvicorn has drained the in-flight requests by now (or given up after drain_seconds).
                await self.engine.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- limits ----------------------------------------------------------------------------------------------

    def _enter(self, key_id: str) -> bool:
        n = self.in_flight.get(key_id, 0)
        if n >= self.s.max_concurrency_per_key:
            raise ApiError(429, f"too many concurrent requests for this key (limit {self.s.max_concurrency_per_key})")
        self.in_flight[key_id] = n + 1
        self.usage.in_flight.labels(key_id).inc()
        return True

    def _leave(self, key_id: str) -> None:
        self.in_flight[key_id] -= 1
        self.usage.in_flight.labels(key_id).dec()

    async def _read_body(self, headers: dict[bytes, bytes], receive: Receive) -> bytes:
        limit = self.s.max_body_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, f"request body over {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.s.body_timeout_seconds):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise client_gone()
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        raise ApiError(413, f"request body over {limit} bytes")
                    chunks.append(chunk)
                    if not message.get("more_body"):
                        return b"".join(chunks) if len(chunks) > 1 else chunks[0]
        except TimeoutError:
            raise ApiError(408, f"request body not received within {self.s.body_timeout_seconds:g} s") from None

    # -- routes ----------------------------------------------------------------------------------------------

    async def health(self, scope: Scope, receive: Receive, reply: Reply, call: Call) -> None:
        ready = self.engine.ready
        await reply.whole(200 if ready else 503, json.dumps({"status": self.engine.state.value}).encode())

    async def liveness(self, scope: Scope, receive: Receive, reply: Reply, call: Call) -> None:
        # The adapter itself answers: it restarts a broken engine on its own, so an orchestrator's liveness check
        # must not kill the pod (and a model's minutes of loading) while it does.
        await reply.whole(200, json.dumps({"status": "alive", "engine": self.engine.state.value}).encode())

    async def metrics(self, scope: Scope, receive: Receive, reply: Reply, call: Call) -> None:
        # The engine's metrics follow ours: its port is not exposed, and an autoscaler reads its queue depth.
        engine = await self.engine.metrics()
        await reply.whole(200, generate_latest(self.usage.registry) + engine, CONTENT_TYPE_LATEST.encode())

    async def models(self, scope: Scope, receive: Receive, reply: Reply, call: Call) -> None:
        # Answered here: the list is ours (the served name, its aliases, its adapters), and llama-cpp-python's
        # own /v1/models waits behind every running generation. Adapters name their base in `parent`, as vLLM's
        # list does.
        data: list[dict[str, Any]] = [{"id": name, "object": "model", "created": self.created,
                                       "owned_by": "selfhost"} for name in self.s.served_names()]
        data += [{"id": name, "object": "model", "created": self.created, "owned_by": "selfhost",
                  "parent": self.rules.model} for name in self.rules.adapters]
        await reply.whole(200, json.dumps({"object": "list", "data": data}).encode())

    async def openai(self, scope: Scope, receive: Receive, reply: Reply, call: Call) -> None:
        await self._openai_call(reply, call, scope["path"], scope["body"])

    async def invocations(self, scope: Scope, receive: Receive, reply: Reply, call: Call) -> None:
        body = c.parse_json_object(scope["body"])
        kind = c.route_invocation(body)
        if kind != "tgi":
            await self._openai_call(reply, call, kind, scope["body"], body)
            return
        tgi = c.parse_tgi(body, self.renames, self.rules)
        requests = [c.tgi_completion(p, tgi.params) for p in tgi.prompts]
        for request in requests:
            self.rules.check(request, c.COMPLETIONS, where="parameters.")
        call.prompt = tgi.prompts if self.s.log_prompts else None
        answers = await self._fan_out(reply, call, [(c.COMPLETIONS, r) for r in requests])
        out = [{"generated_text": (p if tgi.return_full_text else "") + c.completion_text(a)}
               for p, a in zip(tgi.prompts, answers, strict=True)]
        await reply.whole(200, json.dumps(out).encode())

    async def invocations_stream(self, scope: Scope, receive: Receive, reply: Reply, call: Call) -> None:
        body = c.parse_json_object(scope["body"])
        kind = c.route_invocation(body)
        if kind != "tgi":
            self.rules.check(body, kind)
            body["stream"] = True
            self._note(call, body)
            await self._stream(reply, call, kind, body)
            return
        tgi = c.parse_tgi(body, self.renames, self.rules)
        if len(tgi.prompts) != 1:
            raise ApiError(422, "a streamed TGI request takes one string in 'inputs'", "inputs")
        request = {**c.tgi_completion(tgi.prompts[0], tgi.params), "stream": True}
        self.rules.check(request, c.COMPLETIONS, where="parameters.")
        call.prompt = tgi.prompts[0] if self.s.log_prompts else None
        prefix = tgi.prompts[0] if tgi.return_full_text else ""
        await self._stream(reply, call, c.COMPLETIONS, request, tgi_prefix=prefix)

    async def predict(self, scope: Scope, receive: Receive, reply: Reply, call: Call) -> None:
        body = c.parse_json_object(scope["body"])
        if c.route_prediction(body) == c.CHAT:
            # Vertex's OpenAI-compatible route (and a streamRawPredict) lands here with the chat body as sent:
            # answered as the OpenAI route answers it, streamed when it asks, as /invocations does for SageMaker.
            await self._openai_call(reply, call, c.CHAT, scope["body"], body)
            return
        calls = c.parse_vertex(body, self.rules)
        call.instances = len(calls)
        # Each instance may name its own model (an adapter): the usage line names each, once.
        call.model = ",".join(dict.fromkeys(request["model"] for _, request in calls))
        if self.s.log_prompts:
            call.prompt = [r.get("messages", r.get("prompt")) for _, r in calls]
        predictions = await self._fan_out(reply, call, calls)
        await reply.whole(200, json.dumps({"predictions": predictions}).encode())

    # -- talking to the engine -------------------------------------------------------------------------------

    async def _openai_call(self, reply: Reply, call: Call, path: str, raw: bytes,
                           body: dict[str, Any] | None = None) -> None:
        body = c.parse_json_object(raw) if body is None else body
        changed = self.rules.check(body, path)
        self._note(call, body)
        if body.get("stream"):
            await self._stream(reply, call, path, body)
        else:
            await self._unary(reply, call, path, json.dumps(body).encode() if changed else raw)

    def _note(self, call: Call, body: dict[str, Any]) -> None:
        """Record a checked OpenAI request: its model (the served name or an adapter's) and how it is asked."""
        call.model = body["model"]
        call.stream = bool(body.get("stream"))
        if self.s.log_prompts:
            call.prompt = body.get("messages", body.get("prompt"))

    def _require_engine(self) -> None:
        if not self.engine.ready:
            if self.engine.state is State.STALLED:
                raise engine_stalled()
            raise ApiError(503, f"engine {self.engine.state.value}: not ready to answer")

    async def _until_stopped(self, reply: Reply, work: Awaitable[T]) -> T:
        """`work`, unless the request's `stop` comes first: then the work is cancelled (closing its engine
        connection, which is how an engine learns to stop) and the stop's error is raised."""
        task = asyncio.ensure_future(work)
        stop = reply.stop
        if stop is None:
            return await task
        cancel = lambda _: task.cancel()  # noqa: E731
        stop.add_done_callback(cancel)
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if stop.done() and not (current and current.cancelling()):
                raise stop.result() from None
            raise
        finally:
            stop.remove_done_callback(cancel)

    async def _engine_call(self, method: str, path: str, content: bytes) -> tuple[int, bytes]:
        """One whole request to the engine: (status, body), engine failures already turned into ApiErrors."""
        response = None
        try:
            async with asyncio.timeout(self.s.engine_timeout_seconds):
                response = await self.upstream.request(method, path, content)
                status, answer = response.status, await response.read()
        except TimeoutError:
            raise ApiError(504, f"engine did not answer within {self.s.engine_timeout_seconds:g} s") from None
        except UpstreamError:
            self.engine.suspect()
            raise ApiError(503, "engine unavailable: the connection failed") from None
        finally:
            if response is not None:
                response.close()
        if status >= 300:
            raise engine_error(status, answer, self.engine.spec.refusals)
        return status, answer

    async def _unary(self, reply: Reply, call: Call, path: str, content: bytes) -> None:
        self._require_engine()
        status, answer = await self._until_stopped(reply, self._engine_call("POST", path, content))
        with contextlib.suppress(ValueError, AttributeError):
            call.add_usage(json.loads(answer).get("usage"))
        await reply.whole(status, answer)

    async def _fan_out(self, reply: Reply, call: Call, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
        """One engine call per item, all at once; the first failure fails the request and cancels the rest."""
        self._require_engine()

        async def one(path: str, request: dict[str, Any]) -> Any:
            _, answer = await self._engine_call("POST", path, json.dumps(request).encode())
            doc = json.loads(answer)
            call.add_usage(doc.get("usage"))
            return doc

        async def all_of() -> list[Any]:
            try:
                async with asyncio.TaskGroup() as group:
                    tasks = [group.create_task(one(path, request)) for path, request in calls]
            except BaseExceptionGroup as group_error:
                raise next((e for e in group_error.exceptions if isinstance(e, ApiError)), group_error) from None
            return [t.result() for t in tasks]

        return await self._until_stopped(reply, all_of())

    async def _stream(self, reply: Reply, call: Call, path: str, body: dict[str, Any],
                      tgi_prefix: str | None = None) -> None:
        """Relay the engine's server-sent events as they come: each event goes out as soon as it is whole."""
        self._require_engine()
        call.stream = True
        options = body.get("stream_options")
        client_wants_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        if self.engine.stream_usage and not client_wants_usage:
            # Ask for exact token counts; the extra usage-only event is taken out before the client sees it.
            body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        relay = SseRelay(call, drop_usage_events=not client_wants_usage, tgi_prefix=tgi_prefix)
        timeout = self.s.engine_timeout_seconds

        async def open_stream() -> Response:
            try:
                async with asyncio.timeout(timeout):
                    return await self.upstream.request("POST", path, json.dumps(body).encode())
            except TimeoutError:
                raise ApiError(504, f"engine did not start answering within {timeout:g} s") from None
            except UpstreamError:
                self.engine.suspect()
                raise ApiError(503, "engine unavailable: the connection failed") from None

        response = await self._until_stopped(reply, open_stream())
        stop = reply.stop
        interrupt = lambda f: response.interrupt(f.result())  # noqa: E731
        if stop is not None:
            stop.add_done_callback(interrupt)
        try:
            if response.status != 200:
                async with asyncio.timeout(timeout):
                    raise engine_error(response.status, await response.read(), self.engine.spec.refusals)
            await reply.start(200, SSE_HEADERS)
            async for chunk in response.chunks(idle_timeout_seconds=timeout):
                out = relay.feed(chunk)
                if out:
                    await reply.body(out, more=True)
            await reply.body(relay.close())
        except (TimeoutError, UpstreamError, Interrupted) as exc:
            if isinstance(exc, Interrupted) and isinstance(exc.reason, ApiError):
                error = exc.reason
            elif isinstance(exc, TimeoutError):
                error = ApiError(504, "engine stopped sending")
            else:
                self.engine.suspect()
                error = ApiError(503, "engine connection lost mid-stream")
            if not reply.started:
                raise error from None
            call.error = error.code
            if error.status != 499:  # a client that has gone reads nothing more
                await reply.body(b"data: " + error.body() + b"\n\n")
        finally:
            if stop is not None:
                stop.remove_done_callback(interrupt)
            response.close()
            relay.finish()


def engine_error(status: int, content: bytes, refusals: tuple[tuple[str, int], ...] = ()) -> ApiError:
    """An engine's refusal, in our error shape: its own words, its 4xx status, and 502 for its failures, but
    for the 5xx answers it gives to a client's mistakes (`refusals`), which stay the client's."""
    message: Any = content[:500].decode("utf-8", "replace")
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        doc = json.loads(content)
        error = doc.get("error") if isinstance(doc, dict) else None
        message = (error.get("message") if isinstance(error, dict) else error) or doc.get("detail") or message
    if not isinstance(message, str):
        message = json.dumps(message)[:500]
    if status >= 500:
        for pattern, refused in refusals:
            if re.search(pattern, message):
                field = _FIELD.search(message)
                return ApiError(refused, f"engine refused the request: {_first_problem(message)}",
                                field.group(1) if field else None)
    kept = status if status in ERRORS and status not in (499, 502) else (400 if 400 <= status < 500 else 502)
    return ApiError(kept, f"engine answered {status}: {message}")


# Where a pydantic validation report names the request field, and what it says of it.
_FIELD = re.compile(r"'loc': \('body', '([^']+)'")
_MSG = re.compile(r"""'msg': (?:'([^']*)'|"([^"]*)")""")


def _first_problem(message: str) -> str:
    """A validation report cut to its first problem (the rest, a traceback included, is the engine's)."""
    field, msg = _FIELD.search(message), _MSG.search(message)
    if field and msg:
        return f"'{field.group(1)}': {msg.group(1) or msg.group(2)}"
    return message.splitlines()[0][:300]


class SseRelay:
    """Cuts the engine's byte stream into server-sent events, counts tokens, and passes each event on.

    Events are forwarded whole and at once: a client acts on an event only at its blank line, so waiting for
    it costs nothing. With `tgi_prefix` set, OpenAI completion chunks become TGI `generate_stream` events.
    """

    def __init__(self, call: Call, drop_usage_events: bool, tgi_prefix: str | None = None) -> None:
        self.call = call
        self.drop_usage_events = drop_usage_events
        self.tgi_prefix = tgi_prefix
        self.text: list[str] = []
        self.pieces = 0
        self.buffer = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self.buffer + chunk if self.buffer else chunk
        out: list[bytes] = []
        start = 0
        while True:
            end, sep = _event_end(data, start)
            if end < 0:
                break
            event = self._event(data[start:end + sep])
            if event:
                out.append(event)
            start = end + sep
        self.buffer = data[start:]
        return b"".join(out)

    def close(self) -> bytes:
        rest, self.buffer = self.buffer, b""
        return rest if self.tgi_prefix is None else b""

    def finish(self) -> None:
        if self.call.tokens_counted != "engine":
            self.call.completion_tokens = self.pieces
            self.call.tokens_counted = "chunks"

    def _event(self, event: bytes) -> bytes:
        payload = _data(event)
        if payload is None or payload == b"[DONE]":
            return event if self.tgi_prefix is None else b""
        if self.tgi_prefix is None and b'"usage"' not in payload:
            # Passed on as it is: a byte search tells whether it carries text, a tenth of the cost of parsing.
            if _HAS_TEXT.search(payload):
                self.pieces += 1
            return event
        try:
            doc = json.loads(payload)
        except ValueError:
            return event
        if not isinstance(doc, dict):
            return event
        usage = doc.get("usage")
        if usage:
            self.call.add_usage(usage)
            if self.drop_usage_events and not doc.get("choices"):
                return b""
        text = c.chunk_text(doc)
        if text:
            self.pieces += 1
        if self.tgi_prefix is None:
            return event
        self.text.append(text)
        choices = doc.get("choices") or [{}]
        done = choices[0].get("finish_reason") is not None
        if not text and not done:
            return b""  # a chunk with no new text (a role, say) is no token
        # TGI streams one token per event and puts the whole text in the last one. Token ids are not
        # known through the OpenAI API: `id` is null. An engine that ends with a chunk of its own, without
        # text, ends here as TGI does when it stops on the end-of-sequence token: with a special token.
        tgi = {"token": {"id": None, "text": text, "logprob": None, "special": not text},
               "generated_text": self.tgi_prefix + "".join(self.text) if done else None, "details": None}
        return b"data:" + json.dumps(tgi).encode() + b"\n\n"


def _event_end(data: bytes, start: int) -> tuple[int, int]:
    """Where the event beginning at `start` ends (index of its blank line) and the separator's length."""
    lf = data.find(b"\n\n", start)
    crlf = data.find(b"\r\n\r\n", start)
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return crlf, 4
    return lf, 2


# A chunk with new text: a non-empty `content` (chat) or `text` (completion) string.
_HAS_TEXT = re.compile(rb'"(?:content|text)": ?"(?!")')


def _data(event: bytes) -> bytes | None:
    """The data of an event (its `data:` lines joined), or None for a comment or an event without data."""
    body = event.rstrip()
    if b"\n" not in body:  # the usual one-line event
        return body[5:].lstrip(b" ") if body.startswith(b"data:") else None
    lines = [line[5:].lstrip(b" ") for line in body.splitlines() if line.startswith(b"data:")]
    return b"\n".join(lines) if lines else None
