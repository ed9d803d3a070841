"""Multipart upload `POST /api/resources/upload/` (contract §2.2, §7.1.4, §7.2.7)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from mev.resources import storage
from mev.resources.models import Resource
from tests.resources.helpers import RESOURCE_FIELDS, upload

pytestmark = pytest.mark.django_db

TABLE = b"gene\tA\tB\ng1\t1\t2\ng2\t3\t4\n"


def _tmp_files(settings) -> list[str]:
    return [p for p in os.listdir(settings.FILE_UPLOAD_TEMP_DIR) if p.startswith("upload-")]


@pytest.fixture(autouse=True)
def _private_tmp(settings, tmp_path: Path) -> None:
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "tmp")
    Path(settings.FILE_UPLOAD_TEMP_DIR).mkdir()


def test_upload_happy_path(auth_client, user, settings):
    response = upload(auth_client, TABLE, "counts.tsv")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == RESOURCE_FIELDS
    assert body["name"] == "counts.tsv"
    assert body["is_active"] is True and body["status"] == ""
    assert body["resource_type"] is None and body["file_format"] is None
    assert body["readable_resource_type"] is None
    assert body["size"] == len(TABLE) and body["owner_email"] == user.email
    resource = Resource.objects.get(pk=body["id"])
    assert resource.checksum == hashlib.sha256(TABLE).hexdigest()
    assert "counts" not in resource.datafile  # server-chosen key
    assert resource.datafile.startswith(f"{user.pk}/{resource.pk}/")
    with storage.open_read(resource.datafile) as handle:
        assert handle.read() == TABLE
    # the sniffer's suggestion is stored, never applied
    assert body["suggested_resource_type"] is not None
    assert _tmp_files(settings) == []


def test_same_name_twice_never_overwrites(auth_client):
    first = upload(auth_client, b"one\n", "same.txt").json()
    second = upload(auth_client, b"two\n", "same.txt").json()
    a, b = Resource.objects.get(pk=first["id"]), Resource.objects.get(pk=second["id"])
    assert a.datafile != b.datafile
    with storage.open_read(a.datafile) as handle:
        assert handle.read() == b"one\n"


def test_other_fields_are_ignored(auth_client):
    response = upload(auth_client, TABLE, "x.tsv", resource_type="MTX", file_format="tsv", is_public="true",
                      status="hacked", is_active="false", name="other")
    assert response.status_code == 201
    body = response.json()
    assert body["resource_type"] is None and body["file_format"] is None
    assert body["is_public"] is False and body["status"] == "" and body["is_active"] is True
    assert body["name"] == "x.tsv"


def test_missing_datafile_is_400(auth_client):
    response = auth_client.post("/api/resources/upload/", {"something": "else"}, format="multipart")
    assert response.status_code == 400
    assert "datafile" in response.json()


def test_above_limit_is_413_and_leaves_nothing(auth_client, settings):
    settings.MEV_MAX_UPLOAD_BYTES = 1000
    response = upload(auth_client, b"x" * 5000, "big.bin")
    assert response.status_code == 413
    assert "detail" in response.json()
    assert Resource.objects.count() == 0
    assert _tmp_files(settings) == []
    assert not any(Path(settings.MEDIA_ROOT).rglob("*.*")) and not any(p.is_file() for p in Path(settings.MEDIA_ROOT).rglob("*"))


def test_limit_crossed_mid_stream_without_content_length_hint(auth_client, settings):
    """The Content-Length check has slack for multipart framing; the byte count is exact."""
    settings.MEV_MAX_UPLOAD_BYTES = 10_000
    assert upload(auth_client, b"x" * 10_000, "ok.bin").status_code == 201
    response = upload(auth_client, b"x" * 10_001, "big.bin")
    assert response.status_code == 413
    assert Resource.objects.count() == 1
    assert _tmp_files(settings) == []


def test_content_length_checked_up_front(auth_client, settings):
    settings.MEV_MAX_UPLOAD_BYTES = 10
    response = auth_client.generic(
        "POST", "/api/resources/upload/", b"", content_type="multipart/form-data; boundary=xyz",
        CONTENT_LENGTH=str(50 * 1024 * 1024),
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ('we"ird\\name.tsv', None),
        ("line\nbreak.tsv", None),
        ("tab\tand\rcr.tsv", None),
    ],
)
def test_hostile_names_are_stored_harmlessly(auth_client, user, settings, sent, expected):
    response = upload(auth_client, b"a\tb\n", sent)
    assert response.status_code == 201, response.content
    body = response.json()
    if expected:
        assert body["name"] == expected
    assert "\n" not in body["name"] and "\r" not in body["name"] and "\t" not in body["name"]
    assert "/" not in body["name"]
    resource = Resource.objects.get(pk=body["id"])
    stored = storage.local_path(resource.datafile)
    assert stored is not None and stored.is_file()
    assert Path(settings.MEDIA_ROOT).resolve() in stored.resolve().parents
    assert not (Path(settings.MEDIA_ROOT).parent / "etc").exists()
    download = auth_client.get(f"/api/resources/download/{resource.pk}/")
    disposition = download["Content-Disposition"]
    quoted = disposition.split('filename="', 1)[1].split('"', 1)[0]
    assert "\n" not in disposition and "\r" not in disposition
    assert disposition.startswith(f'attachment; filename="{quoted}"; filename*=UTF-8\'\'')
    assert "\\" not in quoted


def test_unicode_name_roundtrips_in_filename_star(auth_client):
    body = upload(auth_client, b"x\n", "données é.tsv").json()
    assert body["name"] == "données é.tsv"
    response = auth_client.get(f"/api/resources/download/{body['id']}/")
    assert 'filename="donnees e.tsv"' in response["Content-Disposition"]
    assert "filename*=UTF-8''donn%C3%A9es%20%C3%A9.tsv" in response["Content-Disposition"]


def test_half_finished_upload_leaves_no_record_and_no_file(auth_client, settings):
    """The body ends in the middle of the file part (client went away): nothing is kept."""
    body = (b"--xyz\r\nContent-Disposition: form-data; name=\"datafile\"; filename=\"cut.tsv\"\r\n"
            b"Content-Type: text/plain\r\n\r\n" + b"a\tb\n" * 5000)
    response = auth_client.generic("POST", "/api/resources/upload/", body,
                                   content_type="multipart/form-data; boundary=xyz")
    assert response.status_code == 400
    assert Resource.objects.count() == 0
    assert _tmp_files(settings) == []
    assert not any(p.is_file() for p in Path(settings.MEDIA_ROOT).rglob("*"))


def test_storage_failure_leaves_no_record_and_no_temp_file(auth_client, settings, monkeypatch):
    def broken(**kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(storage, "save_path", broken)
    response = upload(auth_client, TABLE, "x.tsv")
    assert response.status_code == 500 and "error" in response.json()
    assert Resource.objects.count() == 0
    assert _tmp_files(settings) == []
