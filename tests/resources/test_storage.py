"""The storage interface on both backends; S3 runs against moto's server on loopback."""

from __future__ import annotations

import io
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mev.resources import storage
from mev.resources.models import Resource
from tests.resources.helpers import upload, use_moto_s3

pytestmark = pytest.mark.django_db
BUCKET = "mev-test-bucket"


@pytest.fixture
def s3(settings, moto_endpoint, monkeypatch):
    return use_moto_s3(settings, monkeypatch, moto_endpoint, bucket=BUCKET, prefix="mev-files")


@pytest.fixture
def local_tmp(settings, tmp_path: Path) -> None:
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "tmp")
    Path(settings.FILE_UPLOAD_TEMP_DIR).mkdir()


def _roundtrip(data: bytes) -> None:
    key = storage.new_key(owner_id="o", resource_id="r", suffix=".tsv")
    assert key.startswith("o/r/") and key.endswith(".tsv")
    assert not storage.exists(key)
    size, sha = storage.save_stream(key=key, fileobj=io.BytesIO(data))
    assert size == len(data) and len(sha) == 64
    assert storage.exists(key) and storage.size(key) == len(data)
    with pytest.raises(storage.KeyExistsError):
        storage.save_stream(key=key, fileobj=io.BytesIO(b"other"))
    handle = storage.open_read(key)
    try:
        assert handle.read() == data
    finally:
        handle.close()
    with storage.local_copy(key) as path:
        assert Path(path).read_bytes() == data
        copy_path = Path(path)
    storage.delete(key)
    storage.delete(key)  # idempotent
    assert not storage.exists(key)
    return copy_path


def test_local_backend(local_tmp, settings):
    data = b"x" * (3 * storage.CHUNK_SIZE + 17)
    copy_path = _roundtrip(data)
    assert copy_path.is_relative_to(Path(settings.MEDIA_ROOT))
    assert storage.presigned_url("a/b/c", filename="x") is None
    assert storage.local_path("a/b/c") == Path(settings.MEDIA_ROOT) / "a/b/c"


@pytest.mark.parametrize("bad", ["", "/abs", "../x", "a/../b", "a//b", "a\\b", "a/./b"])
def test_bad_keys_are_refused(bad):
    with pytest.raises(storage.StorageError):
        storage.check_key(bad)


def test_new_keys_are_unique_and_ignore_names():
    keys = {storage.new_key(owner_id=1, resource_id=2) for _ in range(100)}
    assert len(keys) == 100
    with pytest.raises(storage.StorageError):
        storage.new_key(owner_id=1, resource_id=2, suffix="/../x")


def test_save_path_move_consumes_the_source(local_tmp, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"abc")
    key = storage.new_key(owner_id="o", resource_id="r")
    assert storage.save_path(key=key, path=src, move=True)[0] == 3
    assert not src.exists() and storage.exists(key)


def test_s3_backend(s3, local_tmp, settings):
    copy_path = _roundtrip(b"y" * (2 * storage.CHUNK_SIZE + 5))
    assert not copy_path.exists()  # the temporary copy is removed on exit
    assert storage.local_path("a/b") is None


def test_s3_upload_download_presigned_delete(s3, local_tmp, auth_client, settings, django_capture_on_commit_callbacks):
    data = b"gene\tA\ng1\t1\n"
    response = upload(auth_client, data, 'my "file".tsv')
    assert response.status_code == 201, response.content
    resource = Resource.objects.get(pk=response.json()["id"])
    head = s3.head_object(Bucket=BUCKET, Key=f"mev-files/{resource.datafile}")
    assert head["ContentLength"] == len(data)

    download = auth_client.get(f"/api/resources/download/{resource.pk}/")
    assert download.status_code == 302
    with urllib.request.urlopen(download["Location"]) as fetched:  # noqa: S310 - loopback moto
        assert fetched.read() == data
        assert 'filename="my _file_.tsv"' in fetched.headers["Content-Disposition"]

    signed = auth_client.get(f"/api/resources/signed-url/{resource.pk}/").json()
    assert signed["download_type"] == "remote"
    assert "X-Amz-Expires=300" in signed["url"]
    with urllib.request.urlopen(signed["url"]) as fetched:  # noqa: S310
        assert fetched.read() == data

    with django_capture_on_commit_callbacks(execute=True):
        assert auth_client.delete(f"/api/resources/{resource.pk}/").status_code == 200
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(signed["url"])  # noqa: S310
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=f"mev-files/{resource.owner_id}/{resource.pk}/")["KeyCount"] == 0


def _listed_after_saving(keys: list[str]) -> dict[str, float]:
    before = time.time() - 5
    for key in keys:
        storage.save_stream(key=key, fileobj=io.BytesIO(key.encode()))
    listed = dict(storage.iter_keys())
    assert set(keys) <= set(listed)
    assert all(listed[key] >= before for key in keys)
    return listed


def test_local_iter_keys_lists_every_key_but_no_partial_file(local_tmp, settings):
    listed = _listed_after_saving(["o1/r1/a.tsv", "o1/r2/b", "o2/r3/c.parquet"])
    (Path(settings.MEDIA_ROOT) / "o1" / "r1" / ".partial-xyz").write_bytes(b"in flight")
    assert set(dict(storage.iter_keys())) == set(listed) == {"o1/r1/a.tsv", "o1/r2/b", "o2/r3/c.parquet"}


def test_s3_iter_keys_strips_the_prefix_and_stays_inside_it(s3, local_tmp):
    s3.put_object(Bucket=BUCKET, Key="someone-else/x", Body=b"not ours")
    keys = [f"o/r{i}/k{i}" for i in range(3)]
    listed = _listed_after_saving(keys)
    assert not any(key.startswith(("mev-files", "someone-else")) for key in listed)
    for key in keys:
        storage.delete(key)


def test_skip_checksum_does_not_read_a_linked_file_again(local_tmp, tmp_path, monkeypatch):
    src = tmp_path / "derived.parquet"
    src.write_bytes(b"derived bytes")
    monkeypatch.setattr(storage, "sha256_of_path", lambda path: pytest.fail("hashed although skipped"))
    key = storage.new_key(owner_id="o", resource_id="r", suffix=".parquet")
    assert storage.save_path(key=key, path=src, move=True, checksum=storage.SKIP_CHECKSUM) == (13, "")
    assert storage.exists(key) and not src.exists()
