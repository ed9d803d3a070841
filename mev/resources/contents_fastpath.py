"""The owner's table pages, answered in front of Django's URL routing and DRF (a WSGI wrapper).

A table viewer pages, filters and sorts one request at a time, so `GET /api/resources/<id>/contents/`
is the API's most frequent request, and its fixed cost (Django's handler and middleware chain, DRF's
request, authentication, negotiation and response, two primary-key queries) was twice the query
engine's own time on a feature-table page. This wrapper answers the common case itself:

- a GET of exactly that route (with or without the final slash), with a Bearer access token this
  worker has already verified (`mev.core.authentication`) and that has not expired (the header
  types are simplejwt's own);
- the user and the resource read together in ONE query; the user passes the same checks as
  `BearerJWTAuthentication.get_user` (active, token version), the user OWNS the resource, the
  resource is active and is a table or BED file with a stored columnar copy;
- no `Accept` header, or one that admits `application/json` without parameters; no DRF `format`
  parameter; no session or CSRF cookie (their middlewares answer some with a cookie of their own);
  the query engine answers 200.

Everything else — any other route or method, no or an unknown token, a reader through a shared
workspace, an inactive resource, a JSON document, an engine error (400/404), a database error, a
disallowed host, an HTTPS redirect — is passed to Django untouched and answered there, so every
status code and error body comes from the one implementation. The response itself is built by the
same code as Django's: the view's body function (`contents_apis.table_contents`), DRF's renderer,
and the response hooks of the middlewares in `settings.MIDDLEWARE` that act on such a response
(request id, security headers, CORS, Content-Length, X-Frame-Options). The wrapper switches itself
off (answers nothing) when `settings.MIDDLEWARE`, the renderers or the view's policies
(authentication, permissions, throttles, versioning, negotiation) differ from what it was written
for, with `CSRF_USE_SESSIONS`, or when `MEV_CONTENTS_FAST_PATH` is false. A worker's threads share
it, each with its own database connection, so what it remembers per connection it keeps per thread.
`tests/resources/test_contents_fastpath.py` compares status, headers and body with Django's own
answer request by request.

Measured by bench/bench_contents_http.py: see bench/RESULTS.md.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from django.conf import settings
from django.core import signals
from django.core.exceptions import DisallowedHost
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.db import connections, router
from django.http import HttpResponse
from django.urls import Resolver404, resolve, set_script_prefix
from psycopg import pq
from rest_framework.settings import api_settings as drf_settings
from rest_framework_simplejwt import authentication as simplejwt_authentication
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.utils import aware_utcnow

from mev.core.authentication import BearerJWTAuthentication, token_user_refusal, user_by_id, verified_token
from mev.core.middleware import request_id_context, request_id_for
from mev.core.renderers import FastJSONRenderer
from mev.resources.contents_apis import ResourceContentsApi, table_contents
from mev.resources.models import Resource
from mev.resources.selectors import contents_lookup

logger = logging.getLogger(__name__)

# The middlewares this wrapper was written for, in order; any other list turns it off.
EXPECTED_MIDDLEWARE = (
    "mev.core.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
)
# Session, CSRF, authentication and messages middlewares change a response only when the request
# used a session, a CSRF token or a message, or sent a session or CSRF cookie (a malformed one is
# deleted or replaced): a Bearer-token contents request without those cookies uses none of them.

_ROUTE = re.compile(
    r"^/api/resources/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/contents/?\Z"
)
# `\Z`, as Django's routes end: `$` would also match before a final "\n" (a 404 for Django).
_JSON_RANGES = frozenset({"*/*", "application/*", "application/json"})
# The view's methods, as DRF's `Allow` header lists them.
_ALLOW = "GET, HEAD, OPTIONS"

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def enabled() -> bool:
    return bool(getattr(settings, "MEV_CONTENTS_FAST_PATH", True))


def _accepts_json(accept: str | None) -> bool:
    """True when DRF's negotiation would pick its one JSON renderer without media-type parameters."""
    if accept is None:
        return True
    ranges = [part.strip() for part in accept.split(",")]
    if any(";" in part for part in ranges):
        return False  # parameters (q=0, indent=...) change DRF's choice or output: let DRF decide
    return any(part.lower() in _JSON_RANGES for part in ranges)


def _text_decoder(field: Any) -> Callable[[bytes], Any]:
    """How a column of ``field`` reads from PostgreSQL's text result format."""
    kind = field.target_field.get_internal_type() if field.is_relation else field.get_internal_type()
    if kind == "UUIDField":
        return lambda value: uuid.UUID(value.decode())
    if kind == "BooleanField":
        return lambda value: value == b"t"
    if kind.endswith("IntegerField"):
        return int
    if kind in {"CharField", "TextField", "FileField"}:
        return bytes.decode
    raise TypeError(f"no text decoder for {field!r} ({kind})")


_statement_numbers = itertools.count(1)


class _Joined:
    """The user row and the resource row in one round trip (LEFT JOIN: the user may exist alone)."""

    USER_FIELDS = ("id", "is_active", "token_version")
    RESOURCE_FIELDS = ("owner", "is_active", "resource_type", "datafile", "table_file", "table_rows_file")

    def __init__(self, user_model: Any) -> None:
        self.user_model = user_model
        # `Model.from_db` takes the loaded values in the order of the model's concrete fields.
        self.user_fields = [field for field in user_model._meta.concrete_fields if field.name in self.USER_FIELDS]
        resource_fields = [Resource._meta.get_field(name) for name in self.RESOURCE_FIELDS]
        self.decoders = [_text_decoder(field) for field in [*self.user_fields, *resource_fields]]
        resource_table, user_table = Resource._meta.db_table, user_model._meta.db_table
        selected = [f'u."{field.column}"' for field in self.user_fields] + [
            f'r."{field.column}"' for field in resource_fields
        ]
        # Only model metadata goes into the text; the two keys are parameters.
        self.sql = " ".join([
            f"SELECT {', '.join(selected)} FROM \"{user_table}\" u",  # noqa: S608
            f'LEFT JOIN "{resource_table}" r ON r."{Resource._meta.pk.column}" = $1::uuid',
            f'WHERE u."{user_model._meta.pk.column}" = $2::uuid',
        ]).encode()
        # The libpq connection the statement was prepared on, per thread: with gunicorn threads each
        # thread has its own Django connection, and one shared attribute made them re-prepare on
        # each other's turn (which fails: the name exists), sending their requests to Django.
        self._local = threading.local()
        # A name of its own: preparing a name that exists fails, and inside a transaction that failure
        # would abort it (a second instance on the same connection, as in tests, must not collide).
        self.statement = f"mev_contents_join_{next(_statement_numbers)}_{os.getpid()}".encode()

    @property
    def _prepared_on(self) -> Any:
        """The libpq connection this thread's statement was prepared on (None: not yet)."""
        return getattr(self._local, "prepared_on", None)

    def read(self, user_id: uuid.UUID, resource_id: uuid.UUID) -> tuple[Any, dict[str, Any] | None] | None:
        """(the user with USER_FIELDS loaded, the resource's fields or None); None when no such user."""
        alias = router.db_for_read(Resource)
        connection = connections[alias]
        if connection.vendor != "postgresql":
            # Other databases (SQLite in `make run`): the two reads of the Django path.
            user = user_by_id().get(user_id)
            if user is None:
                return None
            resource = contents_lookup.get(resource_id)
            if resource is None:
                return user, None
            return user, {name: getattr(resource, Resource._meta.get_field(name).attname)
                          for name in self.RESOURCE_FIELDS}
        row = self._execute(connection, [str(resource_id).encode(), str(user_id).encode()])
        if row is None:
            return None
        n = len(self.user_fields)
        user = self.user_model.from_db(alias, [field.attname for field in self.user_fields], row[:n])
        if row[n] is None:  # owner is NOT NULL: no resource row
            return user, None
        return user, dict(zip(self.RESOURCE_FIELDS, row[n:], strict=True))

    def _execute(self, connection: Any, params: list[bytes]) -> list[Any] | None:
        """The join's one row (decoded), or None, through libpq itself.

        Measured on PostgreSQL 15 over loopback: this prepared statement through libpq answers in
        ~30 µs, where psycopg's cursor takes ~200 µs for the same statement (its Python-level
        send/wait loop) and an unprepared join adds PostgreSQL's planning. So the statement is
        prepared once per database connection and run with `PGconn.exec_prepared` (psycopg's
        documented libpq wrapper, `psycopg.pq`). Django still opens, checks and closes the
        connection (`close_old_connections`); the statement is read-only and leaves no transaction
        open. With `MEV_DB_PREPARED_STATEMENTS=false` (a pooler that cannot keep prepared
        statements, such as PgBouncer before 1.21 in transaction mode) it is sent unprepared, with
        `exec_params`, and PostgreSQL plans it each time.
        """
        connection.ensure_connection()
        pgconn = connection.connection.pgconn
        if not settings.MEV_DB_PREPARED_STATEMENTS:
            result = pgconn.exec_params(self.sql, params)
        else:
            if self._prepared_on is not pgconn:
                prepared = pgconn.prepare(self.statement, self.sql)
                if prepared.status != pq.ExecStatus.COMMAND_OK:
                    raise psycopg.OperationalError(prepared.get_error_message())
                self._local.prepared_on = pgconn
            result = pgconn.exec_prepared(self.statement, params)
        if result.status != pq.ExecStatus.TUPLES_OK:
            self._local.prepared_on = None  # e.g. the statement was discarded: prepare again next time
            raise psycopg.OperationalError(result.get_error_message())
        if result.ntuples == 0:
            return None
        values = [result.get_value(0, column) for column in range(result.nfields)]
        return [None if value is None else decode(value) for decode, value in zip(self.decoders, values, strict=True)]


class ContentsFastPath:
    """WSGI wrapper: owner table pages answered here, everything else by ``app`` (Django)."""

    def __init__(self, app: Wsgi) -> None:
        self.app = app
        self._ready: bool | None = None

    def _setup(self) -> bool:
        from corsheaders.middleware import CorsMiddleware
        from django.contrib.auth import get_user_model
        from django.middleware.clickjacking import XFrameOptionsMiddleware
        from django.middleware.common import CommonMiddleware
        from django.middleware.security import SecurityMiddleware
        from rest_framework.negotiation import DefaultContentNegotiation
        from rest_framework.permissions import IsAuthenticated

        reasons = []
        if tuple(settings.MIDDLEWARE) != EXPECTED_MIDDLEWARE:
            reasons.append("settings.MIDDLEWARE differs from the list it was written for")
        if settings.CSRF_USE_SESSIONS:
            reasons.append("CSRF_USE_SESSIONS reads the session on every request (Vary: Cookie)")
        view = ResourceContentsApi  # its policies were read from REST_FRAMEWORK when it was defined
        if list(drf_settings.DEFAULT_RENDERER_CLASSES) != [FastJSONRenderer] or list(view.renderer_classes) != [
            FastJSONRenderer
        ]:
            reasons.append("the API has other renderers than FastJSONRenderer")
        if (
            list(view.authentication_classes) != [BearerJWTAuthentication]
            or list(view.permission_classes) != [IsAuthenticated]
            or list(view.throttle_classes)
            or view.versioning_class is not None
            or view.content_negotiation_class is not DefaultContentNegotiation
        ):
            reasons.append("the contents view's authentication, permissions, throttles, versioning or negotiation differ")
        for probe in ("/api/resources/00000000-0000-4000-8000-000000000000/contents/",
                      "/api/resources/00000000-0000-4000-8000-000000000000/contents"):
            try:
                routed = getattr(resolve(probe).func, "view_class", None)
            except Resolver404:
                routed = None
            if routed is not ResourceContentsApi:
                reasons.append(f"{probe} is not routed to ResourceContentsApi")
                break
        if drf_settings.URL_FORMAT_OVERRIDE is None:
            reasons.append("URL_FORMAT_OVERRIDE is off")
        if jwt_settings.CHECK_REVOKE_TOKEN or jwt_settings.AUTH_HEADER_NAME != "HTTP_AUTHORIZATION":
            reasons.append("the token settings differ from what it was written for")
        if reasons:
            logger.warning("The contents fast path is off: %s.", "; ".join(reasons))
            return False
        never: Callable[[Any], Any] = lambda request: None  # noqa: E731  (hooks are called one by one)
        self._security = SecurityMiddleware(never)
        self._cors = CorsMiddleware(never)
        self._common = CommonMiddleware(never)
        self._xframe = XFrameOptionsMiddleware(never)
        self._renderer = FastJSONRenderer()
        self._joined = _Joined(get_user_model())
        self._format_param = drf_settings.URL_FORMAT_OVERRIDE
        return True

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "GET" or not enabled():
            return self.app(environ, start_response)
        match = _ROUTE.match(environ.get("PATH_INFO", ""))
        header = environ.get("HTTP_AUTHORIZATION")
        if match is None or not header or not _accepts_json(environ.get("HTTP_ACCEPT")):
            return self.app(environ, start_response)
        if self._ready is None:
            self._ready = self._setup()
        if not self._ready:
            return self.app(environ, start_response)
        try:
            response = self._answer(environ, match.group(1), header)
        except Exception:  # noqa: BLE001  (Django answers it, and logs whatever goes wrong there too)
            logger.debug("The contents fast path passed a request on after an error", exc_info=True)
            response = None
        if response is None:
            return self.app(environ, start_response)
        response._handler_class = WSGIHandler  # close() sends request_finished, as Django's do
        start_response(f"{response.status_code} {response.reason_phrase}", list(response.items()))
        return response

    def _answer(self, environ: dict[str, Any], resource_id: str, header: str) -> HttpResponse | None:
        """The response Django would give, or None to let Django answer."""
        # simplejwt's get_raw_token: exactly "<type> <token>", with a type simplejwt accepts (its own
        # set, built from AUTH_HEADER_TYPES when it was imported); anything else goes to Django.
        parts = header.encode("iso-8859-1").split()
        if len(parts) != 2 or parts[0] not in simplejwt_authentication.AUTH_HEADER_TYPE_BYTES:
            return None
        token = verified_token(parts[1])
        if token is None:
            return None  # not yet verified by this worker: Django verifies it (and remembers it)
        try:
            token.check_exp(current_time=aware_utcnow())
            user_id = uuid.UUID(str(token[jwt_settings.USER_ID_CLAIM]))
        except (TokenError, KeyError, ValueError):
            return None

        set_script_prefix(environ.get("SCRIPT_NAME", "") or "/")
        signals.request_started.send(sender=WSGIHandler, environ=environ)
        request = WSGIRequest(environ)
        if self._format_param in request.GET:
            return None
        if settings.SESSION_COOKIE_NAME in request.COOKIES or settings.CSRF_COOKIE_NAME in request.COOKIES:
            # The session and CSRF middlewares answer some of these cookies (one with a malformed
            # value: a deleted session cookie, a new CSRF cookie, `Vary: Cookie`): Django's to answer.
            return None
        try:
            base_url = request.build_absolute_uri(request.path)
        except DisallowedHost:
            return None
        if self._security.process_request(request) is not None or self._common.process_request(request):
            return None

        rows = self._joined.read(user_id, uuid.UUID(resource_id))
        if rows is None:
            return None
        user, resource = rows
        if token_user_refusal(token, user) is not None or resource is None:
            return None
        if resource["owner"] != user.pk or not resource["is_active"]:
            return None  # readers through a workspace, and inactive resources: Django's rules

        request_id = request_id_for(request)
        params = [(key, value) for key, values in request.GET.lists() for value in values]
        with request_id_context(request_id):
            try:
                data = table_contents(resource, params, base_url=base_url)
            except Exception:  # noqa: BLE001  (QueryError, PageNotFound, no contents...: Django answers)
                return None
        response = HttpResponse(self._renderer.render(data), content_type="application/json")
        response["Allow"] = _ALLOW
        response = self._xframe.process_response(request, response)
        response = self._common.process_response(request, response)
        self._cors.add_response_headers(request, response)
        response = self._security.process_response(request, response)
        response["X-Request-ID"] = request_id
        response._resource_closers.append(request.close)
        return response


def wrap(app: Wsgi) -> Wsgi:
    return ContentsFastPath(app)
