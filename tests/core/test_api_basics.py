"""API-wide behaviour: root, schema, docs, CORS, the error envelope, request ids."""

from __future__ import annotations

import logging

import pytest
import yaml
from django.urls import path
from openapi_spec_validator import validate
from rest_framework.views import APIView

pytestmark = pytest.mark.django_db


def test_api_root_answers_an_empty_object_with_and_without_slash(api_client):
    for url in ("/api/", "/api"):
        response = api_client.get(url)
        assert response.status_code == 200 and response.json() == {}


def test_schema_is_valid_openapi_3(api_client):
    response = api_client.get("/api/schema/")
    assert response.status_code == 200
    document = yaml.safe_load(response.content)
    assert document["openapi"].startswith("3.")
    validate(document)
    assert "/api/token/refresh/" in document["paths"]
    # The slash-less aliases are not documented twice.
    assert "/api/token/refresh" not in document["paths"]


def test_interactive_docs_are_served_without_a_cdn(api_client):
    response = api_client.get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger-ui" in response.content
    assert b"cdn.jsdelivr" not in response.content


def test_admin_login_page_answers(client):
    assert client.get("/admin/login/").status_code == 200


def test_unknown_route_is_a_json_404(api_client):
    response = api_client.get("/api/no-such-thing/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"detail": "Not found."}


class _Boom(APIView):
    permission_classes: list = []

    def get(self, request):
        raise RuntimeError("secret internal detail")


urlpatterns = [path("boom/", _Boom.as_view())]


@pytest.mark.urls("tests.core.test_api_basics")
def test_unexpected_error_is_a_json_500_with_a_request_id_and_no_internals(api_client, caplog):
    with caplog.at_level(logging.ERROR):
        response = api_client.get("/boom/", HTTP_X_REQUEST_ID="req-123")
    assert response.status_code == 500
    body = response.json()
    assert list(body) == ["error"]
    assert "req-123" in body["error"] and "secret" not in body["error"]
    assert response["X-Request-ID"] == "req-123"
    assert any("secret internal detail" in (r.exc_text or "") or r.exc_info for r in caplog.records)


def test_a_forged_request_id_is_replaced(api_client):
    response = api_client.get("/api/", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert response["X-Request-ID"] != "bad id\nwith newline"
    assert len(response["X-Request-ID"]) == 32


def test_validation_errors_are_keyed_by_field(api_client):
    response = api_client.post("/api/users/register/", {"email": "nope"}, format="json")
    assert response.status_code == 400
    assert {"email", "password", "confirm_password"} <= set(response.json())


class TestCors:
    def test_preflight_from_an_allowed_origin_needs_no_token(self, api_client):
        response = api_client.options(
            "/api/users/",
            HTTP_ORIGIN="http://localhost:4200",
            HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
            HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,content-type",
        )
        assert response.status_code == 200
        assert response["Access-Control-Allow-Origin"] == "http://localhost:4200"
        allowed = response["Access-Control-Allow-Headers"].lower()
        assert "authorization" in allowed and "content-type" in allowed
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            assert method in response["Access-Control-Allow-Methods"]

    def test_content_disposition_is_exposed(self, api_client):
        response = api_client.get("/api/", HTTP_ORIGIN="http://127.0.0.1:4200")
        assert response["Access-Control-Allow-Origin"] == "http://127.0.0.1:4200"
        assert "Content-Disposition" in response["Access-Control-Expose-Headers"]

    def test_other_origins_are_not_reflected(self, api_client):
        response = api_client.get("/api/", HTTP_ORIGIN="https://evil.example")
        assert "Access-Control-Allow-Origin" not in response


def test_globus_transfers_are_an_empty_list_when_globus_is_off(auth_client, api_client):
    assert auth_client.get("/api/globus/transfer/").json() == []
    assert auth_client.get("/api/globus/transfer").status_code == 200
    assert api_client.get("/api/globus/transfer/").status_code == 401


@pytest.mark.parametrize("route", ["/api/resources/", "/api/workspaces/"])
def test_too_many_query_parameters_is_a_400_naming_the_limit(auth_client, settings, route):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 50
    response = auth_client.get(route + "?" + "&".join(f"p{i}=1" for i in range(51)))
    assert response.status_code == 400
    assert "DATA_UPLOAD_MAX_NUMBER_FIELDS" in response.json()["detail"]
