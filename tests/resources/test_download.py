"""Download, signed URL and the public signed route (contract §2.2, download protocol)."""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from mev.resources.models import Resource
from tests.factories import UserFactory
from tests.resources.helpers import stored_resource

pytestmark = pytest.mark.django_db
CONTENT = bytes(range(256)) * 40  # 10240 bytes


@pytest.fixture
def resource(user):
    return stored_resource(user, content=CONTENT, name="reads.bam")


def test_streamed_download(auth_client, resource):
    response = auth_client.get(f"/api/resources/download/{resource.pk}")
    assert response.status_code == 200
    assert response.streaming
    assert b"".join(response.streaming_content) == CONTENT
    assert response["Content-Disposition"].startswith('attachment; filename="reads.bam"')
    assert response["Content-Length"] == str(len(CONTENT))
    assert response["Content-Type"] != "application/json"


def test_content_type_guessed_from_name(auth_client, user):
    res = stored_resource(user, content=b"a,b\n", name="table.csv")
    assert auth_client.get(f"/api/resources/download/{res.pk}/")["Content-Type"] == "text/csv"


def test_accel_redirect_mode(auth_client, resource, settings):
    settings.MEV_DOWNLOAD_ACCEL = True
    response = auth_client.get(f"/api/resources/download/{resource.pk}/")
    assert response.status_code == 200
    assert response.content == b""
    assert response["X-Accel-Redirect"] == f"/_protected/{resource.datafile}"
    assert response["Content-Disposition"].startswith('attachment; filename="reads.bam"')


def test_download_refusals(auth_client, resource, make_client):
    stranger = make_client(UserFactory())
    assert stranger.get(f"/api/resources/download/{resource.pk}/").status_code == 404
    assert stranger.get(f"/api/resources/signed-url/{resource.pk}/").status_code == 404
    assert auth_client.get("/api/resources/download/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert auth_client.get("/api/resources/signed-url/00000000-0000-0000-0000-000000000000/").status_code == 404
    Resource.objects.filter(pk=resource.pk).update(is_active=False)
    r = auth_client.get(f"/api/resources/download/{resource.pk}/")
    assert r.status_code == 400 and r.json() == {"error": "The resource is inactive."}
    r = auth_client.get(f"/api/resources/signed-url/{resource.pk}/")
    assert r.status_code == 400 and r.json() == {"error": "The resource is inactive."}


def _signed(auth_client, resource) -> str:
    response = auth_client.get(f"/api/resources/signed-url/{resource.pk}")
    assert response.status_code == 200
    body = response.json()
    assert body["download_type"] == "local"
    assert body["url"].startswith("http://testserver/api/resources/signed/")
    return body["url"].removeprefix("http://testserver")


def test_signed_url_works_without_auth_and_supports_range(auth_client, resource):
    path = _signed(auth_client, resource)
    anonymous = APIClient()
    full = anonymous.get(path)
    assert full.status_code == 200
    assert b"".join(full.streaming_content) == CONTENT
    assert full["Accept-Ranges"] == "bytes"
    part = anonymous.get(path, HTTP_RANGE="bytes=100-199", HTTP_ORIGIN="http://igv.example")
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 100-199/{len(CONTENT)}"
    assert part["Content-Length"] == "100"
    assert b"".join(part.streaming_content) == CONTENT[100:200]
    assert part["Access-Control-Allow-Origin"] == "*"
    tail = anonymous.get(path, HTTP_RANGE="bytes=-10")
    assert tail.status_code == 206 and b"".join(tail.streaming_content) == CONTENT[-10:]
    open_end = anonymous.get(path, HTTP_RANGE="bytes=10000-")
    assert b"".join(open_end.streaming_content) == CONTENT[10000:]
    bad = anonymous.get(path, HTTP_RANGE=f"bytes={len(CONTENT)}-")
    assert bad.status_code == 416
    # a token for a bearer-less browser: the Authorization header is simply not needed
    assert anonymous.options(path).status_code == 204


def test_signed_url_expires_and_cannot_be_forged(auth_client, resource, settings):
    path = _signed(auth_client, resource)
    settings.MEV_SIGNED_URL_SECONDS = 1
    time.sleep(2.1)
    assert APIClient().get(path).status_code == 403
    assert APIClient().get(path[:-5] + "AAAA/").status_code == 403


def test_signed_url_dies_with_the_resource(auth_client, resource):
    path = _signed(auth_client, resource)
    assert auth_client.delete(f"/api/resources/{resource.pk}/").status_code == 200
    assert APIClient().get(path).status_code == 404


def test_shared_workspace_reader_may_download_and_sign(user, make_client):
    from mev.workspaces.models import ShareRole, WorkspaceShare
    from tests.resources.helpers import workspace_with

    owner = UserFactory()
    theirs = stored_resource(owner, content=b"abc", name="t.bed")
    ws = workspace_with(owner, theirs)
    WorkspaceShare.objects.create(workspace=ws, user=user, role=ShareRole.READER)
    client = make_client(user)
    assert b"".join(client.get(f"/api/resources/download/{theirs.pk}/").streaming_content) == b"abc"
    assert client.get(f"/api/resources/signed-url/{theirs.pk}/").status_code == 200


def test_missing_stored_file_is_404_not_500(auth_client, user):
    from mev.resources import storage

    res = stored_resource(user)
    storage.delete(res.datafile)
    assert auth_client.get(f"/api/resources/download/{res.pk}/").status_code == 404
