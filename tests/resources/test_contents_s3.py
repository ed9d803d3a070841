"""Validation and contents with object storage (S3 through moto's server on loopback)."""

from __future__ import annotations

import pytest

from mev.resources import storage
from mev.resources.validation import resource_validate_now
from tests.resources.helpers import use_moto_s3
from tests.resources.validated_factory import make_resource

pytestmark = pytest.mark.django_db
BUCKET = "mev-contents-test"


@pytest.fixture
def s3(settings, moto_endpoint, monkeypatch, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    client = use_moto_s3(settings, monkeypatch, moto_endpoint, bucket=BUCKET, prefix="files")
    assert storage.backend_name() == "s3"
    return client


def _objects(client) -> set[str]:
    listing = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {item["Key"].removeprefix("files/") for item in listing}


def test_validation_and_contents_on_object_storage(s3, user, auth_client, settings,
                                                   django_capture_on_commit_callbacks) -> None:
    resource = make_resource(user, "gene\tS1\tS2\nG1\t1\t2\nG2\t3\t4\n", resource_type="MTX", file_format="tsv")
    assert resource.status == "" and resource.resource_type == "MTX"
    assert resource.table_rows_file.endswith(".rows.arrow")
    stored = {resource.datafile, resource.standardized_file, resource.table_file, resource.table_rows_file}
    assert stored <= _objects(s3)

    body = auth_client.get(f"/api/resources/{resource.pk}/contents/?S1=[gt]:2").json()
    assert body == [{"rowname": "G2", "values": {"S1": 3, "S2": 4}}]
    # The Parquet copy and the matrix's row file, each downloaded once to this host.
    cached = sorted(p.suffix for p in (settings.DATA_DIR / "cache" / "tables").iterdir())
    assert cached == [".arrow", ".parquet"]
    assert auth_client.get(f"/api/resources/{resource.pk}/contents/preview").status_code == 200

    old = {resource.standardized_file, resource.table_file, resource.table_rows_file}
    with django_capture_on_commit_callbacks(execute=True):
        again = resource_validate_now(resource=resource, resource_type="EXP_MTX", file_format="tsv")
    assert again.resource_type == "EXP_MTX"
    remaining = _objects(s3)
    assert not (old & remaining)
    assert {again.datafile, again.standardized_file, again.table_file, again.table_rows_file} <= remaining


def test_json_on_object_storage(s3, user, auth_client) -> None:
    resource = make_resource(user, '{"centroids": [1]}', resource_type="JSON", file_format="json")
    assert auth_client.get(f"/api/resources/{resource.pk}/contents/").json() == {"centroids": [1]}


def test_orphan_sweep_on_object_storage(s3, user, settings) -> None:
    """Unreferenced keys in the server's layout go; referenced ones, bundled operation files and
    objects outside the prefix stay. (moto cannot backdate objects, so the grace is negative here;
    the grace itself is tested on local storage in test_validation_cleanup.py.)"""
    import io
    import uuid

    from mev.resources.tasks import cleanup_orphaned_files

    # A prefix of its own: objects of the other tests (whose rows were rolled back) are orphans too.
    settings.MEV_S3_PREFIX = "sweep"
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="sweep/").get("KeyCount", 0) == 0

    resource = make_resource(user, "gene\tS1\nG1\t1\n", resource_type="MTX", file_format="tsv")
    kept = {resource.datafile, resource.standardized_file, resource.table_file, resource.table_rows_file}
    orphan = storage.new_key(owner_id=user.pk, resource_id=resource.pk, suffix=".parquet")
    gone = storage.new_key(owner_id=user.pk, resource_id=uuid.uuid4())
    bundled = f"operations/{uuid.uuid4()}/priors.tsv"
    for key in (orphan, gone, bundled):
        storage.save_stream(key=key, fileobj=io.BytesIO(b"x"))
    s3.put_object(Bucket=BUCKET, Key=f"elsewhere/{user.pk}/{resource.pk}/x", Body=b"not ours")

    assert cleanup_orphaned_files(grace_seconds=-60) == 2
    remaining = {item["Key"].removeprefix("sweep/") for item in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert kept | {bundled} <= remaining
    assert orphan not in remaining and gone not in remaining
    assert any(key.startswith("elsewhere/") for key in remaining)
