"""The contents fast path (mev/resources/contents_fastpath.py) answers exactly what Django answers.

Every request is sent twice through real WSGI applications: Django's own handler, and the same
handler behind the fast path (as `mev.wsgi.application` is built). Status line, headers (the
request id is fixed by the request) and body must be byte-identical, and each case also says
whether the fast path itself answered or passed the request on to Django.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from django.test import RequestFactory
from rest_framework_simplejwt.tokens import AccessToken

from mev.resources import contents_fastpath
from mev.resources.contents_fastpath import ContentsFastPath
from mev.resources.models import Resource
from mev.users.tokens import token_pair_for
from mev.workspaces.models import ShareRole, Workspace, WorkspaceResource, WorkspaceShare
from tests.factories import UserFactory
from tests.resources.test_contents_api import ANNOTATION, BED6, DGE, JSON_ARRAY, MATRIX
from tests.resources.validated_factory import make_resource, store_resource

pytestmark = pytest.mark.django_db

REQUEST_ID = "fastpath-test-1"


class Apps:
    """Django's WSGI handler alone, and behind the fast path; records whether the fast path answered."""

    def __init__(self) -> None:
        self.django = WSGIHandler()
        self.fast = ContentsFastPath(self.django)
        self.answered: list[bool] = []
        original = self.fast._answer

        def spy(*args: Any) -> Any:
            response = original(*args)
            self.answered.append(response is not None)
            return response

        self.fast._answer = spy  # type: ignore[method-assign]

    def both(self, path: str, data: dict[str, Any] | None = None, *, method: str = "get", **headers: Any
             ) -> tuple[tuple[str, list[tuple[str, str]], bytes], bool]:
        """(the answer, identical from both apps; whether the fast path answered it)."""
        headers.setdefault("HTTP_X_REQUEST_ID", REQUEST_ID)
        self.answered.clear()
        fast = _call(self.fast, _environ(method, path, data, headers))
        answered = any(self.answered)
        plain = _call(self.django, _environ(method, path, data, headers))
        assert fast[0] == plain[0], (fast[0], plain[0], fast[2][:300], plain[2][:300])
        assert fast[1] == plain[1]
        assert fast[2] == plain[2]
        return fast, answered


def _environ(method: str, path: str, data: dict[str, Any] | None, headers: dict[str, Any]) -> dict[str, Any]:
    request = getattr(RequestFactory(), method)(path, data or {}, **headers)
    return dict(request.environ)


def _call(app: Any, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """A WSGI call as a server makes it (iterate, then close). Inside a test's transaction the
    connection must outlive the request, so, as Django's test client does, the signal handlers that
    close database connections are disconnected meanwhile."""
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started["status"], started["headers"] = status, headers

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        result = app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    return started["status"], sorted(started["headers"]), body


def bearer(user: Any) -> str:
    return f"Bearer {token_pair_for(user)['access']}"


@pytest.fixture
def apps() -> Apps:
    return Apps()


@pytest.fixture
def owner_auth(user, apps: Apps) -> str:
    """The owner's token, already verified by this worker (as after the viewer's first request)."""
    auth = bearer(user)
    _call(apps.django, _environ("get", "/api/", None, {"HTTP_AUTHORIZATION": auth}))
    return auth


def contents(resource: Any, slash: str = "/") -> str:
    pk = getattr(resource, "pk", resource)
    return f"/api/resources/{pk}/contents{slash}"


# --------------------------------------------------------------------------- answered by the fast path


QUERIES = [
    {},
    {"page": "1", "page_size": "2"},
    {"page": "2", "page_size": "2"},
    {"padj": "[lt]:0.05"},
    {"padj": "[lt]:0.05", "page": "1", "page_size": "2"},
    {"sort_vals": "[asc]:padj"},
    {"sort_vals": "[desc]:log2FoldChange", "page": "2", "page_size": "2"},
    {"log2FoldChange": "[absgt]:2", "sort_vals": "[asc]:padj"},
    {"symbol": "[startswith]:K"},
    {"__rowname__": "[eq]:G2"},
    {"unrelated": "ignored?"},
]


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("slash", ["/", ""])
def test_owner_pages_of_a_feature_table(user, apps, owner_auth, query, slash) -> None:
    dge = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    (status, _, body), answered = apps.both(contents(dge, slash), query, HTTP_AUTHORIZATION=owner_auth)
    if status.startswith("200"):
        assert answered, body[:200]
    else:  # an engine error is Django's to answer
        assert not answered


@pytest.mark.parametrize(
    ("content", "resource_type", "query"),
    [
        (MATRIX, "MTX", {"page": "2", "page_size": "5"}),
        (MATRIX, "MTX", {"sort_vals": "[desc]:S3", "__rowmean__": "[gt]:5"}),
        (MATRIX, "MTX", {"S1": "[gte]:4"}),
        (ANNOTATION, "ANN", {"condition": "[eq]:treated"}),
        (BED6, "BED6", {}),
    ],
)
def test_owner_pages_of_other_tables(user, apps, owner_auth, content, resource_type, query) -> None:
    resource = make_resource(user, content, resource_type=resource_type, file_format="tsv")
    (status, _, _), answered = apps.both(contents(resource), query, HTTP_AUTHORIZATION=owner_auth)
    assert status == "200 OK" and answered


@pytest.mark.parametrize("accept", ["application/json", "*/*", "application/json, text/plain, */*", "application/*"])
def test_accept_headers_that_choose_json(user, apps, owner_auth, accept) -> None:
    dge = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    (status, _, _), answered = apps.both(contents(dge), HTTP_AUTHORIZATION=owner_auth, HTTP_ACCEPT=accept)
    assert status == "200 OK" and answered


@pytest.mark.parametrize("origin", ["http://localhost:4200", "https://elsewhere.example.org", ""])
def test_cors_headers_are_django_s(user, apps, owner_auth, origin) -> None:
    dge = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    (status, headers, _), answered = apps.both(contents(dge), HTTP_AUTHORIZATION=owner_auth, HTTP_ORIGIN=origin)
    assert status == "200 OK" and answered
    allowed = {name.lower(): value for name, value in headers}.get("access-control-allow-origin")
    assert allowed == (origin if origin == "http://localhost:4200" else None)


def test_behind_https_proxy_gets_hsts_and_https_links(user, owner_auth, settings) -> None:
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 3600
    apps = Apps()  # middlewares read their settings when built
    dge = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    (status, headers, body), answered = apps.both(
        contents(dge), {"page": "1", "page_size": "2"}, HTTP_AUTHORIZATION=owner_auth, HTTP_X_FORWARDED_PROTO="https"
    )
    assert status == "200 OK" and answered
    assert dict(headers)["Strict-Transport-Security"] == "max-age=3600"
    assert b'"next":"https://testserver' in body


def test_a_caller_request_id_is_echoed_and_a_bad_one_replaced(user, apps, owner_auth) -> None:
    dge = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    environ = _environ("get", contents(dge), None, {"HTTP_AUTHORIZATION": owner_auth, "HTTP_X_REQUEST_ID": "a b"})
    apps.answered.clear()
    _, headers, _ = _call(apps.fast, environ)
    assert apps.answered == [True]
    given = dict(headers)["X-Request-ID"]
    assert given != "a b" and len(given) == 32


# --------------------------------------------------------------------------- passed on to Django


def test_first_request_with_a_new_token_goes_to_django_then_the_next_is_fast(user, apps) -> None:
    dge = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    auth = bearer(user)
    (status, _, _), answered = apps.both(contents(dge), HTTP_AUTHORIZATION=auth)
    assert status == "200 OK" and not answered
    (status, _, _), answered = apps.both(contents(dge), HTTP_AUTHORIZATION=auth)
    assert status == "200 OK" and answered


def test_a_revoked_token_is_refused_although_this_worker_verified_it(user, apps, owner_auth) -> None:
    dge = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    assert apps.both(contents(dge), HTTP_AUTHORIZATION=owner_auth)[1]
    user.token_version += 1
    user.save(update_fields=["token_version"])
    (status, _, body), answered = apps.both(contents(dge), HTTP_AUTHORIZATION=owner_auth)
    assert status.startswith("401") and not answered and b"revoked" in body


def test_a_deactivated_user_is_refused_although_this_worker_verified_the_token(user, apps, owner_auth) -> None:
    dge = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    assert apps.both(contents(dge), HTTP_AUTHORIZATION=owner_auth)[1]
    user.is_active = False
    user.save(update_fields=["is_active"])
    (status, _, _), answered = apps.both(contents(dge), HTTP_AUTHORIZATION=owner_auth)
    assert status.startswith("401") and not answered


def test_a_deleted_user_is_refused(user, apps, owner_auth) -> None:
    other = UserFactory()
    dge = make_resource(other, DGE, resource_type="FT", file_format="tsv")
    user.delete()
    (status, _, _), answered = apps.both(contents(dge), HTTP_AUTHORIZATION=owner_auth)
    assert status.startswith("401") and not answered


def test_an_expired_token_is_refused(user, apps) -> None:
    dge = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=timedelta(seconds=-1))
    auth = f"Bearer {token}"
    for _ in range(2):
        (status, _, _), answered = apps.both(contents(dge), HTTP_AUTHORIZATION=auth)
        assert status.startswith("401") and not answered


def test_a_stranger_gets_django_s_empty_404(user, apps, owner_auth) -> None:
    stranger = UserFactory()
    theirs = make_resource(stranger, DGE, resource_type="FT", file_format="tsv")
    (status, _, body), answered = apps.both(contents(theirs), HTTP_AUTHORIZATION=owner_auth)
    assert status.startswith("404") and body == b"" and not answered
    (status, _, body), answered = apps.both(contents(uuid.uuid4()), HTTP_AUTHORIZATION=owner_auth)
    assert status.startswith("404") and body == b"" and not answered


def test_a_reader_of_a_shared_workspace_is_answered_by_django(user, apps) -> None:
    reader = UserFactory()
    dge = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    workspace = Workspace.objects.create(owner=user, workspace_name="shared")
    WorkspaceResource.objects.create(workspace=workspace, resource=dge)
    WorkspaceShare.objects.create(workspace=workspace, user=reader, role=ShareRole.READER)
    auth = bearer(reader)
    apps.both(contents(dge), HTTP_AUTHORIZATION=auth)
    (status, _, body), answered = apps.both(contents(dge), HTTP_AUTHORIZATION=auth)
    assert status == "200 OK" and not answered and b"G1" in body


@pytest.mark.parametrize("case", ["inactive", "json", "untyped"])
def test_resources_the_fast_path_leaves_to_django(user, apps, owner_auth, case) -> None:
    if case == "inactive":
        resource = make_resource(user, DGE, resource_type="FT", file_format="tsv")
        Resource.objects.filter(pk=resource.pk).update(is_active=False)
    elif case == "json":
        resource = make_resource(user, JSON_ARRAY, resource_type="JSON", file_format="json", name="a.json")
    else:
        resource = store_resource(user, DGE)
    (_, _, body), answered = apps.both(contents(resource), HTTP_AUTHORIZATION=owner_auth)
    assert not answered and body


@pytest.mark.parametrize(
    "query",
    [{"page": "99", "page_size": "2"}, {"padj": "[lt]:abc"}, {"sort_vals": "[up]:padj"},
     {"sort_vals": "[asc]:nope"}, {"page": "0"}, {"format": "json"}],
)
def test_engine_errors_and_drf_format_are_django_s(user, apps, owner_auth, query) -> None:
    dge = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    (status, _, _), answered = apps.both(contents(dge), query, HTTP_AUTHORIZATION=owner_auth)
    assert not answered
    if "format" not in query:
        assert status[:3] in {"400", "404"}


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_AUTHORIZATION": "Token abc"},
        {"HTTP_AUTHORIZATION": "Bearer"},
        {"HTTP_AUTHORIZATION": "Bearer a b"},
        {"HTTP_AUTHORIZATION": "Bearer not-a-jwt"},
        {"HTTP_ACCEPT": "text/html"},
        {"HTTP_ACCEPT": "application/json; indent=4"},
        {"HTTP_ACCEPT": "application/json;q=0, text/html"},
        {"HTTP_HOST": "evil.example.org"},
    ],
)
def test_requests_the_fast_path_leaves_to_django(user, apps, owner_auth, headers) -> None:
    dge = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    headers = {"HTTP_AUTHORIZATION": owner_auth, **headers}
    (status, _, _), answered = apps.both(contents(dge), **headers)
    assert not answered
    assert not status.startswith("5")


@pytest.mark.parametrize("method", ["head", "post", "delete", "options"])
def test_other_methods_are_django_s(user, apps, owner_auth, method) -> None:
    dge = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    _, answered = apps.both(contents(dge), method=method, HTTP_AUTHORIZATION=owner_auth)
    assert not answered


@pytest.mark.parametrize("suffix", ["preview/", "transform/", "x/"])
def test_other_routes_are_django_s(user, apps, owner_auth, suffix) -> None:
    dge = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    _, answered = apps.both(contents(dge) + suffix, HTTP_AUTHORIZATION=owner_auth)
    assert not answered


def test_https_redirect_is_django_s(user, owner_auth, settings) -> None:
    settings.SECURE_SSL_REDIRECT = True
    apps = Apps()
    dge = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    (status, _, _), answered = apps.both(contents(dge), HTTP_AUTHORIZATION=owner_auth)
    assert status.startswith("301") and not answered


# --------------------------------------------------------------------------- switched off


def test_the_setting_turns_it_off(user, apps, owner_auth, settings) -> None:
    settings.MEV_CONTENTS_FAST_PATH = False
    dge = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    (status, _, _), answered = apps.both(contents(dge), HTTP_AUTHORIZATION=owner_auth)
    assert status == "200 OK" and not answered


def test_other_middleware_turns_it_off(user, owner_auth, settings, caplog) -> None:
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.middleware.gzip.GZipMiddleware"]
    apps = Apps()
    dge = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    with caplog.at_level("WARNING", logger=contents_fastpath.__name__):
        (status, _, _), answered = apps.both(contents(dge), HTTP_AUTHORIZATION=owner_auth)
    assert status == "200 OK" and not answered
    assert "fast path is off" in caplog.text


# --------------------------------------------------------------------------- its one database statement


@pytest.mark.django_db(transaction=True)
def test_a_new_database_connection_prepares_the_statement_again(user, apps, owner_auth) -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the statement is prepared on PostgreSQL only")
    dge = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    assert apps.both(contents(dge), HTTP_AUTHORIZATION=owner_auth)[1]
    first = connection.connection.pgconn
    connection.close()  # as CONN_MAX_AGE or a failed health check would
    assert apps.both(contents(dge), HTTP_AUTHORIZATION=owner_auth)[1]
    assert connection.connection.pgconn is not first
    assert apps.fast._joined._prepared_on is connection.connection.pgconn


@pytest.mark.django_db(transaction=True)
def test_a_discarded_statement_is_prepared_again(user, apps, owner_auth) -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the statement is prepared on PostgreSQL only")
    dge = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    assert apps.both(contents(dge), HTTP_AUTHORIZATION=owner_auth)[1]
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # what a pooler's server reset does
    (status, _, _), answered = apps.both(contents(dge), HTTP_AUTHORIZATION=owner_auth)
    assert status == "200 OK" and not answered  # that request went to Django...
    assert apps.both(contents(dge), HTTP_AUTHORIZATION=owner_auth)[1]  # ...and the next is fast again


def test_unprepared_statements_give_the_same_answers(user, apps, owner_auth, settings) -> None:
    settings.MEV_DB_PREPARED_STATEMENTS = False
    dge = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    (status, _, _), answered = apps.both(contents(dge), {"padj": "[lt]:0.05"}, HTTP_AUTHORIZATION=owner_auth)
    assert status == "200 OK" and answered


# --------------------------------------------------------------------------- review findings


def test_a_path_with_a_final_newline_is_django_s(user, apps, owner_auth) -> None:
    """`$` in the route's pattern matched before a final "\\n" (`%0A` in the URL); Django's routes end
    with `\\Z`, so Django answers 404 where the fast path answered 200."""
    dge = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    (status, _, _), answered = apps.both(contents(dge) + "%0A", HTTP_AUTHORIZATION=owner_auth)
    assert status.startswith("404") and not answered
    (status, _, _), answered = apps.both(contents(dge, "") + "%0A", HTTP_AUTHORIZATION=owner_auth)
    assert status.startswith("404") and not answered


def test_a_malformed_session_cookie_is_deleted_as_django_does(user, apps, owner_auth) -> None:
    """Django's session middleware deletes a session cookie whose key is malformed (Set-Cookie with
    Max-Age=0, Vary: Cookie); the fast path answered without either."""
    dge = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    for cookie in ["sessionid=x", "sessionid=", "other=1; sessionid=short"]:
        (status, headers, _), answered = apps.both(contents(dge), HTTP_AUTHORIZATION=owner_auth, HTTP_COOKIE=cookie)
        assert status == "200 OK" and not answered
        assert any(name == "Set-Cookie" and "sessionid=" in value for name, value in headers)


def test_a_malformed_csrf_cookie_is_replaced_as_django_does(user, apps, owner_auth) -> None:
    """Django's CSRF middleware answers a malformed CSRF cookie with a new one (a random value, masked
    here) and Vary: Cookie; the fast path answered without either."""
    import re

    dge = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    environ = _environ("get", contents(dge), None, {"HTTP_AUTHORIZATION": owner_auth, "HTTP_X_REQUEST_ID": REQUEST_ID,
                                                    "HTTP_COOKIE": "csrftoken=not-a-token"})

    def masked(app: Any) -> tuple[str, list[tuple[str, str]], bytes]:
        status, headers, body = _call(app, dict(environ))
        return status, [(name, re.sub(r"csrftoken=\w+", "csrftoken=*", value)) for name, value in headers], body

    apps.answered.clear()
    fast = masked(apps.fast)
    assert fast == masked(apps.django)
    assert apps.answered == [False]
    assert ("Vary", "Cookie, origin") in fast[1]


def test_csrf_kept_in_the_session_turns_it_off(user, owner_auth, settings) -> None:
    """With CSRF_USE_SESSIONS every request reads the session, so Django adds Vary: Cookie."""
    settings.CSRF_USE_SESSIONS = True
    apps = Apps()
    dge = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    (status, headers, _), answered = apps.both(contents(dge), HTTP_AUTHORIZATION=owner_auth)
    assert status == "200 OK" and not answered
    assert ("Vary", "Cookie, origin") in headers


def test_a_throttle_on_the_view_turns_it_off(user, owner_auth, monkeypatch) -> None:
    """The view's policies (authentication, permissions, throttles...) are Django's to apply: a
    throttle that refuses got 429 from Django and 200 from the fast path."""
    from rest_framework.throttling import BaseThrottle

    from mev.resources.contents_apis import ResourceContentsApi

    class Refuse(BaseThrottle):
        def allow_request(self, request: Any, view: Any) -> bool:
            return False

    monkeypatch.setattr(ResourceContentsApi, "throttle_classes", [Refuse])
    apps = Apps()
    dge = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    (status, _, _), answered = apps.both(contents(dge), HTTP_AUTHORIZATION=owner_auth)
    assert status.startswith("429") and not answered


def test_the_header_types_are_simplejwt_s(user, owner_auth, monkeypatch) -> None:
    """simplejwt accepts the header types of AUTH_HEADER_TYPES (its set, built at import); a "Bearer"
    header it does not accept got 401 from Django and 200 from the fast path."""
    from rest_framework_simplejwt import authentication as simplejwt_authentication

    monkeypatch.setattr(simplejwt_authentication, "AUTH_HEADER_TYPE_BYTES", {b"JWT"})
    apps = Apps()
    dge = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    (status, _, _), answered = apps.both(contents(dge), HTTP_AUTHORIZATION=owner_auth)
    assert status.startswith("401") and not answered
    jwt = owner_auth.replace("Bearer", "JWT")
    (status, _, _), answered = apps.both(contents(dge), HTTP_AUTHORIZATION=jwt)
    assert status == "200 OK" and answered


@pytest.mark.django_db(transaction=True)
def test_threads_with_their_own_connections_keep_their_statement(user, apps, owner_auth) -> None:
    """gunicorn threads share the wrapper, each with its own database connection: where the statement
    was prepared is tracked per thread. A shared record made each thread prepare again after another
    thread's request, which fails (the name exists on its connection), so it went to Django."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("the statement is prepared on PostgreSQL only")
    dge = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    threads = [ThreadPoolExecutor(max_workers=1) for _ in range(2)]  # one lasting thread each
    try:
        for _ in range(3):
            for thread in threads:
                (status, _, _), answered = thread.submit(apps.both, contents(dge), HTTP_AUTHORIZATION=owner_auth).result()
                assert status == "200 OK" and answered
    finally:
        for thread in threads:
            thread.submit(connections.close_all).result()
            thread.shutdown()


def test_a_route_that_shadows_the_contents_view_turns_it_off(user, owner_auth, settings, caplog) -> None:
    settings.ROOT_URLCONF = "tests.resources.shadowing_urls"
    apps = Apps()
    dge = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    with caplog.at_level("WARNING", logger=contents_fastpath.__name__):
        (status, _, body), answered = apps.both(contents(dge), HTTP_AUTHORIZATION=owner_auth)
    assert not answered and status == "200 OK" and body == b'"shadowed"'
    assert "is not routed to ResourceContentsApi" in caplog.text
