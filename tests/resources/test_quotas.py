"""Storage quota per user (contract §7.3.10): multipart and tus uploads, the usage endpoint."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from mev.resources import quotas
from mev.resources.models import Resource, UploadSession
from tests.factories import UserFactory
from tests.resources.helpers import stored_resource, upload

pytestmark = pytest.mark.django_db

TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}


@pytest.fixture(autouse=True)
def _private_tmp(settings, tmp_path: Path) -> None:
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "tmp")
    Path(settings.FILE_UPLOAD_TEMP_DIR).mkdir()


def _tus_create(client, length: int):
    meta = "filename " + base64.b64encode(b"big.tsv").decode()
    return client.post("/api/resources/uploads/", HTTP_UPLOAD_LENGTH=str(length), HTTP_UPLOAD_METADATA=meta, **TUS)


def test_usage_counts_owned_files_and_open_uploads(auth_client, user, make_client, settings):
    settings.MEV_STORAGE_QUOTA_BYTES = 10_000
    stored_resource(user, content=b"x" * 1200)
    stranger_client = make_client(UserFactory())
    assert upload(stranger_client, b"y" * 500, "theirs.tsv").status_code == 201  # someone else's file
    assert _tus_create(auth_client, 3000).status_code == 201
    body = auth_client.get("/api/resources/usage/").json()
    assert body == {"used_bytes": 4200, "quota_bytes": 10_000, "available_bytes": 5800}
    assert auth_client.get("/api/resources/usage").status_code == 200  # slash-less form


def test_no_limit_is_null(auth_client, settings):
    settings.MEV_STORAGE_QUOTA_BYTES = 0
    assert auth_client.get("/api/resources/usage/").json() == {
        "used_bytes": 0, "quota_bytes": None, "available_bytes": None}


def test_usage_needs_authentication(api_client):
    assert api_client.get("/api/resources/usage/").status_code == 401


def test_multipart_upload_past_the_quota_is_413_and_leaves_nothing(auth_client, user, settings):
    settings.MEV_STORAGE_QUOTA_BYTES = 1000
    stored_resource(user, content=b"x" * 600)
    assert upload(auth_client, b"a" * 400, "fits.tsv").status_code == 201  # exactly full is allowed
    response = upload(auth_client, b"b", "one-too-many.tsv")
    assert response.status_code == 413
    message = response.json()["detail"]
    assert "quota is full" in message and "needs 1 bytes" in message and "only 0 bytes" in message
    assert Resource.objects.filter(owner=user).count() == 2
    assert [p for p in os.listdir(settings.FILE_UPLOAD_TEMP_DIR) if p.startswith("upload-")] == []


def test_exact_size_is_checked_after_the_body_even_if_content_length_looked_fine(auth_client, user, settings):
    """The fast check subtracts the multipart slack from Content-Length; the final check is exact."""
    settings.MEV_STORAGE_QUOTA_BYTES = 1000
    response = upload(auth_client, b"z" * 1001, "just-over.tsv")
    assert response.status_code == 413, response.content
    assert not Resource.objects.filter(owner=user).exists()


def test_a_users_own_quota_overrides_the_default(auth_client, user, settings):
    settings.MEV_STORAGE_QUOTA_BYTES = 10
    user.storage_quota_bytes = 5000
    user.save(update_fields=["storage_quota_bytes"])
    assert upload(auth_client, b"a" * 4000, "big.tsv").status_code == 201
    user.storage_quota_bytes = 0  # this user has no limit at all
    user.save(update_fields=["storage_quota_bytes"])
    assert upload(auth_client, b"a" * 4000, "bigger.tsv").status_code == 201


def test_tus_creation_reserves_the_length(auth_client, user, settings):
    settings.MEV_STORAGE_QUOTA_BYTES = 5000
    assert _tus_create(auth_client, 3000).status_code == 201
    refused = _tus_create(auth_client, 2001)  # 3000 reserved by the open upload
    assert refused.status_code == 413 and "quota is full" in refused.json()["detail"]
    assert UploadSession.objects.filter(owner=user).count() == 1
    assert _tus_create(auth_client, 2000).status_code == 201


def test_outputs_are_never_refused_but_count(user, settings):
    """A resource made by the server (an analysis output) is stored even past the quota."""
    settings.MEV_STORAGE_QUOTA_BYTES = 100
    stored_resource(user, content=b"o" * 300)
    usage = quotas.usage_of(user)
    assert usage.used_bytes == 300 and usage.available_bytes == 0


@pytest.mark.parametrize(("n", "text"), [(0, "0 bytes"), (999, "999 bytes"), (1000, "1.0 KB"),
                                         (1_500_000, "1.5 MB"), (53_687_091_200, "53.7 GB")])
def test_human_size(n, text):
    assert quotas.human_size(n) == text


def test_open_resumable_uploads_are_capped(auth_client, user, settings):
    settings.MEV_MAX_OPEN_UPLOADS = 2
    assert _tus_create(auth_client, 10).status_code == 201
    assert _tus_create(auth_client, 10).status_code == 201
    refused = _tus_create(auth_client, 10)
    assert refused.status_code == 429
    assert "2 resumable uploads in progress" in refused.json()["detail"]
    UploadSession.objects.filter(owner=user).first().delete()
    assert _tus_create(auth_client, 10).status_code == 201
