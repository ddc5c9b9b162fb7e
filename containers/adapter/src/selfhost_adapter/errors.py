"""Errors as clients see them: an HTTP status and an OpenAI-style JSON body, the same on every route."""

from __future__ import annotations

import json

# status -> (error type, code): one row per status the adapter itself answers with.
ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "malformed_request"),
    401: ("authentication_error", "invalid_api_key"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    408: ("invalid_request_error", "request_timeout"),
    413: ("invalid_request_error", "request_too_large"),
    422: ("invalid_request_error", "invalid_parameter"),
    429: ("rate_limit_error", "too_many_concurrent_requests"),
    431: ("invalid_request_error", "request_header_fields_too_large"),
    # nginx's "client closed request": never sent (nobody is listening), but logged and counted as such.
    499: ("invalid_request_error", "client_gone"),
    502: ("engine_error", "engine_error"),
    503: ("engine_error", "engine_unavailable"),
    504: ("engine_error", "engine_timeout"),
}
# After these the rest of the request may still be on its way: the connection is closed rather than reused.
CLOSE_AFTER = frozenset({408, 413, 431})


class ApiError(Exception):
    """Raised anywhere in a request; the app turns it into the response. Messages never carry secrets."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self._code = code

    @property
    def code(self) -> str:
        return self._code or ERRORS[self.status][1]

    def body(self) -> bytes:
        return json.dumps({"error": {"message": self.message, "type": ERRORS[self.status][0], "code": self.code,
                                     "param": self.param}}).encode()

    def headers(self) -> list[tuple[bytes, bytes]]:
        # 429 and 503 are retryable after a short wait; clients and load balancers honour Retry-After.
        if self.status in (429, 503):
            return [(b"retry-after", b"1")]
        return [(b"connection", b"close")] if self.status in CLOSE_AFTER else []


def client_gone() -> ApiError:
    return ApiError(499, "the client closed the connection")


def draining() -> ApiError:
    return ApiError(503, "this server is shutting down: send the request again", code="shutting_down")


def engine_stalled() -> ApiError:
    return ApiError(503, "the engine has stopped answering (stalled): send the request again", code="engine_stalled")
