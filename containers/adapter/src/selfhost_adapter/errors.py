"""Errors as clients see them: an HTTP status and an OpenAI-style JSON body, the same on every route."""

from __future__ import annotations

import json

# status -> (error type, code): one row per status the adapter itself answers with.
ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "malformed_request"),
    401: ("authentication_error", "invalid_api_key"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "request_too_large"),
    422: ("invalid_request_error", "invalid_parameter"),
    429: ("rate_limit_error", "too_many_concurrent_requests"),
    502: ("engine_error", "engine_error"),
    503: ("engine_error", "engine_unavailable"),
    504: ("engine_error", "engine_timeout"),
}


class ApiError(Exception):
    """Raised anywhere in a request; the app turns it into the response. Messages never carry secrets."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param

    @property
    def code(self) -> str:
        return ERRORS[self.status][1]

    def body(self) -> bytes:
        kind, code = ERRORS[self.status]
        return json.dumps({"error": {"message": self.message, "type": kind, "code": code,
                                     "param": self.param}}).encode()

    def headers(self) -> list[tuple[bytes, bytes]]:
        # Both are retryable after a short wait; clients and load balancers honour Retry-After.
        return [(b"retry-after", b"1")] if self.status in (429, 503) else []
