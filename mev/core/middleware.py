"""Request ids: one per request, echoed in X-Request-ID and stamped on every log record."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import uuid
from collections.abc import Callable, Iterator

from django.http import HttpRequest, HttpResponse

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
# A caller-supplied id is kept only when it is short and plain, so it cannot forge log lines.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def current_request_id() -> str:
    return _request_id.get()


def request_id_for(request: HttpRequest) -> str:
    """The caller's X-Request-ID when it is safe to log, else a new one; kept on ``request.request_id``."""
    given = request.headers.get("X-Request-ID", "")
    request_id = given if _SAFE_ID.match(given) else uuid.uuid4().hex
    request.request_id = request_id  # type: ignore[attr-defined]
    return request_id


@contextlib.contextmanager
def request_id_context(request_id: str) -> Iterator[None]:
    """Stamp ``request_id`` on every log record written inside the block."""
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_for(request)
        with request_id_context(request_id):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


class RequestIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True
