"""`manage.py install_operations`: every built-in bundle, idempotent."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command

from mev.operations.models import Operation

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _ops_dir(settings, tmp_path):
    settings.MEV_OPERATIONS_DIR = tmp_path / "ops"


def test_install_built_ins_idempotently():
    out = io.StringIO()
    call_command("install_operations", stdout=out, stderr=io.StringIO())
    installed = Operation.objects.count()
    assert installed >= 1
    folders = [p for p in (ROOT / "operations").iterdir()
               if p.is_dir() and p.name != "_common" and (p / "operation_spec.json").exists()]
    assert installed <= len(folders)
    for operation in Operation.objects.all():
        assert operation.categories.exists()
        assert Path(operation.bundle_dir, "main.py").is_file()
        if (ROOT / "operations" / operation.repository_name / ".." / "_common").exists():
            assert (Path(operation.bundle_dir).parent / "_common").is_dir()
    call_command("install_operations", stdout=io.StringIO(), stderr=io.StringIO())
    assert Operation.objects.count() == installed


def test_skips_common_and_folders_without_a_spec(tmp_path):
    root = tmp_path / "operations"
    shutil.copytree(ROOT / "tests" / "jobs" / "bundles" / "testop", root / "good")
    (root / "_common").mkdir()
    (root / "_common" / "operation_spec.json").write_text("{}")
    (root / "empty").mkdir()
    shutil.copytree(ROOT / "tests" / "jobs" / "bundles" / "testop", root / "broken")
    (root / "broken" / "operation_spec.json").write_text("{}")
    err = io.StringIO()
    call_command("install_operations", "--root", str(root), stdout=io.StringIO(), stderr=err)
    assert list(Operation.objects.values_list("repository_name", flat=True)) == ["good"]
    assert "broken: not ingested" in err.getvalue() and "name: required" in err.getvalue()
