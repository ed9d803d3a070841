"""Periodic clean-up: orphaned stored files (§7.3.7) and the local table cache."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from mev.resources import storage
from mev.resources.services import resource_delete, stored_keys
from mev.resources.tasks import cleanup_orphaned_files, cleanup_table_cache
from tests.resources.validated_factory import make_resource

pytestmark = pytest.mark.django_db


def _age(path, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_old_orphans_go_and_referenced_or_young_files_stay(user, settings, tmp_path) -> None:
    settings.DATA_DIR = tmp_path / "data"
    resource = make_resource(user, "gene\tS1\nG1\t1\n", resource_type="MTX", file_format="tsv")
    keys = [resource.datafile, resource.standardized_file, resource.table_file, resource.table_rows_file]
    assert all(keys)
    for key in keys:
        _age(storage.local_path(key), 10 * 24 * 3600)

    orphan = storage.new_key(owner_id=user.pk, resource_id=resource.pk, suffix=".parquet")
    young = storage.new_key(owner_id=user.pk, resource_id=resource.pk, suffix=".tsv")
    gone_resource = storage.new_key(owner_id=user.pk, resource_id=uuid.uuid4())
    for key in (orphan, young, gone_resource):
        path = storage.local_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    _age(storage.local_path(orphan), 2 * 24 * 3600)
    _age(storage.local_path(gone_resource), 2 * 24 * 3600)
    foreign = settings.MEDIA_ROOT / "bundles" / "keep.txt"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("not ours")
    _age(foreign, 100 * 24 * 3600)

    assert cleanup_orphaned_files() == 2
    assert all(storage.exists(key) for key in keys)
    assert storage.exists(young) and not storage.exists(orphan) and not storage.exists(gone_resource)
    assert foreign.exists()


def test_table_cache_prunes_idle_copies(settings, tmp_path) -> None:
    settings.DATA_DIR = tmp_path
    cache = tmp_path / "cache" / "tables"
    cache.mkdir(parents=True)
    idle, fresh = cache / "a.parquet", cache / "b.parquet"
    idle.write_bytes(b"1")
    fresh.write_bytes(b"2")
    _age(idle, 30 * 24 * 3600)
    assert cleanup_table_cache() == 1
    assert fresh.exists() and not idle.exists()


def test_deleting_a_resource_removes_every_stored_file(user, django_capture_on_commit_callbacks) -> None:
    resource = make_resource(user, "gene\tS1\nG1\t1\n", resource_type="MTX", file_format="tsv")
    resource.refresh_from_db()
    keys = stored_keys(resource)
    assert len(keys) == 4 and resource.table_rows_file in keys

    with django_capture_on_commit_callbacks(execute=True):
        resource_delete(resource=resource)

    assert not any(storage.exists(key) for key in keys)
