"""Resumable uploads over tus 1.0.0 (core + creation + termination)."""

from __future__ import annotations

import base64
import gc
import hashlib
import os
import tracemalloc
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from mev.resources import storage, tus
from mev.resources.models import Resource, UploadSession
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
BASE = "/api/resources/uploads/"
TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}


@pytest.fixture(autouse=True)
def _private_tmp(settings, tmp_path: Path) -> None:
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "tmp")
    Path(settings.FILE_UPLOAD_TEMP_DIR).mkdir()


def create(client, length: int, filename: str = "big.tsv") -> str:
    meta = "filename " + base64.b64encode(filename.encode()).decode() + ",filetype dGV4dA=="
    response = client.post(BASE, HTTP_UPLOAD_LENGTH=str(length), HTTP_UPLOAD_METADATA=meta, **TUS)
    assert response.status_code == 201, response.content
    assert response["Tus-Resumable"] == "1.0.0"
    location = response["Location"]
    assert location.startswith("http://testserver/api/resources/uploads/")
    return location.removeprefix("http://testserver")


def patch(client, url: str, offset: int, data: bytes, content_type: str = tus.OFFSET_CONTENT_TYPE):
    return client.generic("PATCH", url, data, content_type=content_type, HTTP_UPLOAD_OFFSET=str(offset), **TUS)


def test_discovery_needs_no_auth(api_client):
    response = api_client.options(BASE)
    assert response.status_code == 204
    assert response["Tus-Version"] == "1.0.0"
    assert "creation" in response["Tus-Extension"] and "termination" in response["Tus-Extension"]


def test_create_patch_head_complete(auth_client, user, make_client):
    data = b"gene\tA\tB\n" + b"g\t1\t2\n" * 2000
    url = create(auth_client, len(data))
    head = auth_client.head(url)
    assert head.status_code == 200
    assert head["Upload-Offset"] == "0" and head["Upload-Length"] == str(len(data))
    assert head["Cache-Control"] == "no-store"

    first = patch(auth_client, url, 0, data[:5000])
    assert first.status_code == 204 and first["Upload-Offset"] == "5000"
    assert "Upload-Resource-Id" not in first

    # "interruption": a brand-new client asks where to resume
    again = make_client(user)
    assert again.head(url)["Upload-Offset"] == "5000"
    assert patch(again, url, 4000, data[4000:]).status_code == 409  # offset mismatch
    assert patch(again, url, 5000, data[5000:], content_type="application/json").status_code == 415

    last = patch(again, url, 5000, data[5000:])
    assert last.status_code == 204
    assert last["Upload-Offset"] == str(len(data))
    resource_id = last["Upload-Resource-Id"]
    resource = Resource.objects.get(pk=resource_id)
    assert resource.name == "big.tsv" and resource.size == len(data) and resource.owner == user
    assert resource.checksum == hashlib.sha256(data).hexdigest()
    assert resource.is_active and resource.resource_type is None and resource.status == ""
    with storage.open_read(resource.datafile) as handle:
        assert handle.read() == data
    body = again.get(url).json()
    assert body["offset"] == body["length"] == len(data)
    assert body["resource"]["id"] == resource_id
    assert os.listdir(tus.partial_dir()) == []
    assert patch(again, url, len(data), b"x").status_code == 409  # complete: nothing more


def test_sessions_are_owner_scoped(auth_client, make_client):
    url = create(auth_client, 10)
    stranger = make_client(UserFactory())
    assert stranger.head(url).status_code == 404
    assert stranger.get(url).status_code == 404
    assert patch(stranger, url, 0, b"0123456789").status_code == 404
    assert stranger.delete(url).status_code == 404
    assert auth_client.head(url)["Upload-Offset"] == "0"


def test_limits_and_bad_headers(auth_client, settings):
    settings.MEV_MAX_UPLOAD_BYTES = 100
    assert auth_client.post(BASE, HTTP_UPLOAD_LENGTH="101", **TUS).status_code == 413
    assert auth_client.post(BASE, **TUS).status_code == 400
    assert auth_client.post(BASE, HTTP_UPLOAD_LENGTH="abc", **TUS).status_code == 400
    assert auth_client.post(BASE, HTTP_UPLOAD_LENGTH="5", HTTP_TUS_RESUMABLE="0.2.2").status_code == 412
    url = create(auth_client, 10)
    assert patch(auth_client, url, 0, b"x" * 11).status_code == 413
    assert UploadSession.objects.count() == 1 and Resource.objects.count() == 0


def test_termination_removes_session_and_partial_file(auth_client, django_capture_on_commit_callbacks):
    url = create(auth_client, 100)
    patch(auth_client, url, 0, b"x" * 10)
    assert len(os.listdir(tus.partial_dir())) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert auth_client.delete(url).status_code == 204
    assert UploadSession.objects.count() == 0
    assert os.listdir(tus.partial_dir()) == []
    assert auth_client.head(url).status_code == 404


def test_cleanup_stale_uploads(auth_client, settings):
    settings.MEV_UPLOAD_EXPIRY_HOURS = 1
    stale_url = create(auth_client, 100)
    fresh_url = create(auth_client, 100)
    stale_id = stale_url.rstrip("/").rsplit("/", 1)[1]
    UploadSession.objects.filter(pk=stale_id).update(updated=timezone.now() - timedelta(hours=2))
    orphan = tus.partial_dir() / "orphan.part"
    orphan.write_bytes(b"x")
    old = (timezone.now() - timedelta(hours=3)).timestamp()
    os.utime(orphan, (old, old))
    assert tus.cleanup_stale_uploads() == 1
    assert auth_client.head(stale_url).status_code == 404
    assert auth_client.head(fresh_url).status_code == 200
    assert not orphan.exists()
    assert len(os.listdir(tus.partial_dir())) == 1


def test_20_mb_in_1_mb_chunks_keeps_python_memory_flat(auth_client):
    mib = 1024 * 1024
    total = 20 * mib
    url = create(auth_client, total, "big.bin")
    digest = hashlib.sha256()
    tracemalloc.start()
    try:
        for i in range(20):
            chunk = bytes([i]) * mib
            digest.update(chunk)
            response = patch(auth_client, url, i * mib, chunk)
            assert response.status_code == 204
            resource_id = response.get("Upload-Resource-Id")
            # The test client's request/response objects form cycles holding the 2 MiB fake body.
            del chunk, response
            gc.collect()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    resource = Resource.objects.get(pk=resource_id)
    assert resource.size == total and resource.checksum == digest.hexdigest()
    # The test client itself copies each 1 MiB request body a few times; the server adds one chunk.
    assert peak < 8 * mib, f"peak {peak / mib:.1f} MiB for a {total / mib:.0f} MiB upload"


def test_bad_metadata_is_400(auth_client):
    response = auth_client.post(BASE, HTTP_UPLOAD_LENGTH="5", HTTP_UPLOAD_METADATA="filename !!!notbase64", **TUS)
    assert response.status_code == 400
    assert UploadSession.objects.count() == 0


def test_hostile_tus_filename_is_only_a_display_name(auth_client):
    url = create(auth_client, 3, "../../etc/passwd")
    response = patch(auth_client, url, 0, b"abc")
    resource = Resource.objects.get(pk=response["Upload-Resource-Id"])
    assert resource.name == "passwd"
    assert resource.datafile.startswith(f"{resource.owner_id}/{resource.pk}/")


def test_empty_upload_is_complete_at_creation(auth_client):
    response = auth_client.post(BASE, HTTP_UPLOAD_LENGTH="0",
                                HTTP_UPLOAD_METADATA="filename " + base64.b64encode(b"e.txt").decode(), **TUS)
    assert response.status_code == 201
    resource = Resource.objects.get(pk=response["Upload-Resource-Id"])
    assert resource.size == 0 and resource.name == "e.txt"


def test_lost_partial_file_is_410(auth_client):
    url = create(auth_client, 10)
    for path in tus.partial_dir().glob("*.part"):
        path.unlink()
    assert patch(auth_client, url, 0, b"x").status_code == 410
