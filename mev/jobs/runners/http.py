"""A small HTTP client for remote workflow engines: timeouts, bounded retries with backoff.

Connection errors, timeouts and 5xx answers are retried (by default 3 tries, waiting 0.5 s, 1 s,
then at most 2 s); when the tries are spent they become a transient `RunnerError`, which the jobs app
retries on its next sweep. A request that must not be repeated once the engine may have received it
(a submission) passes `idempotent=False`: it is then retried only when the connection could not be
made at all. Every other answer is returned to the caller, who decides what a 4xx means.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import requests
from django.conf import settings
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from mev.jobs.runners.base import RunnerError

logger = logging.getLogger("mev.jobs.engines")

DEFAULT_TIMEOUT_SECONDS = 30.0


def engine_timeout() -> float:
    return float(getattr(settings, "MEV_ENGINE_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS))


def error_text(response: requests.Response) -> str:
    """The engine's own words for a failed request (WES `msg`, Cromwell `message`/`errors`), else the body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        parts: list[str] = []
        for key in ("msg", "message"):
            if isinstance(body.get(key), str) and body[key].strip():
                parts.append(body[key].strip())
        errors = body.get("errors")
        if isinstance(errors, list):
            parts.extend(str(e).strip() for e in errors if str(e).strip() and str(e).strip() not in parts)
        if parts:
            return "; ".join(parts)
    text = (response.text or "").strip()
    return text[:500] if text else f"HTTP {response.status_code}"


class EngineClient:
    """Talks to one engine at `base_url`; paths passed to `request` are appended to it."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float | None = None,
        tries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 2.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = engine_timeout() if timeout is None else timeout
        self.tries = max(1, tries)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.session = session or requests.Session()
        self._sleep = sleep

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}" if path else self.base_url

    def request(self, method: str, path: str, *, idempotent: bool = True, **kwargs: Any) -> requests.Response:
        url = self.url(path)
        kwargs.setdefault("timeout", self.timeout)
        delay = self.backoff
        last_problem = ""
        for attempt in range(1, self.tries + 1):
            try:
                response = self.session.request(method, url, **kwargs)
            except requests.ConnectionError as exc:
                # Refused, unreachable or connect timeout (ConnectTimeout is a ConnectionError too).
                last_problem = f"could not connect to {self.base_url} ({type(exc).__name__})"
                retry = idempotent or _never_sent(exc)
            except requests.Timeout:
                # The request went out but no answer came: repeating a submission could start it twice.
                last_problem = f"{self.base_url} did not answer within {kwargs['timeout']} s"
                retry = idempotent
            else:
                if response.status_code < 500:
                    return response
                last_problem = f"{self.base_url} answered {response.status_code}: {error_text(response)}"
                retry = idempotent
            if not retry or attempt == self.tries:
                break
            logger.info("%s %s: %s; retrying in %.1f s", method, url, last_problem, delay)
            self._sleep(delay)
            delay = min(delay * 2, self.max_backoff)
        raise RunnerError(f"The engine is unavailable: {last_problem}.", transient=True)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def get_json(self, path: str, **kwargs: Any) -> Any:
        """GET and decode; any non-2xx becomes a RunnerError (transient for 429/5xx)."""
        response = self.get(path, **kwargs)
        if not response.ok:
            raise RunnerError(f"{error_text(response)} (HTTP {response.status_code})",
                              transient=response.status_code == 429)
        return decode_json(response)


def _never_sent(exc: requests.ConnectionError) -> bool:
    """Whether the connection failed before the request could reach the engine (refused, no route,
    connect timeout), as opposed to a connection lost after sending it."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def decode_json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise RunnerError(f"The engine answered something that is not JSON (HTTP {response.status_code}).",
                          transient=True) from exc


def json_setting(name: str, default: Any) -> Any:
    """A setting that holds JSON: either the decoded structure or its text."""
    value = getattr(settings, name, default)
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return default
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise RunnerError(f"The setting {name} is not valid JSON: {exc.msg}.") from exc
    return value
