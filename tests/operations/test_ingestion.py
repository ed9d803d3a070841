"""Ingestion: folder bundles, git repositories, malformed specs (messages name the key)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mev.operations import ingestion
from mev.operations.models import IngestionRecord, Operation
from mev.operations.services import operation_ingest_folder, operation_ingest_repository

pytestmark = pytest.mark.django_db
BUNDLE = Path(__file__).resolve().parents[1] / "jobs" / "bundles" / "testop"


@pytest.fixture(autouse=True)
def _ops_dir(settings, tmp_path):
    settings.MEV_OPERATIONS_DIR = tmp_path / "ops"


@pytest.fixture
def bundle(tmp_path) -> Path:
    target = tmp_path / "src" / "mybundle"
    shutil.copytree(BUNDLE, target)
    return target


def _edit(bundle: Path, change) -> None:
    path = bundle / "operation_spec.json"
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def test_folder_ingestion_stores_the_ten_keys(bundle):
    operation, created = operation_ingest_folder(folder=bundle)
    assert created
    assert set(operation.spec) == {"id", "name", "description", "inputs", "outputs", "mode", "repository_url",
                                   "repository_name", "git_hash", "workspace_operation"}
    assert operation.spec["id"] == str(operation.id)
    assert Path(operation.bundle_dir, "main.py").is_file()
    assert [c.category for c in operation.categories.all()] == ["Utilities"]


def test_same_content_no_new_version_changed_content_new_version(bundle):
    first, _ = operation_ingest_folder(folder=bundle)
    again, created = operation_ingest_folder(folder=bundle)
    assert not created and again.pk == first.pk
    (bundle / "main.py").write_text((bundle / "main.py").read_text() + "\n# changed\n")
    second, created = operation_ingest_folder(folder=bundle)
    assert created and second.pk != first.pk
    first.refresh_from_db()
    assert not first.active and second.active  # every version stays, the newest is listed
    assert Operation.objects.filter(name="Test operation").count() == 2


def test_bundle_copy_is_immutable(bundle):
    operation, _ = operation_ingest_folder(folder=bundle)
    (bundle / "main.py").write_text("broken")
    assert "behavior" in Path(operation.bundle_dir, "main.py").read_text()


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d.pop("name"), "name: required"),
    (lambda d: d.update(mode="warp"), "mode: no runner for mode 'warp'"),
    (lambda d: d["inputs"]["number"]["spec"].pop("min"), "inputs.number.spec.min"),
    (lambda d: d["inputs"]["number"].update(converter="api.converters.nope"), "inputs.number.converter"),
    (lambda d: d["outputs"]["report"]["spec"].update(resource_type="XYZ"), "outputs.report.spec.resource_type"),
    (lambda d: d["inputs"]["behavior"]["spec"].update(default="fly"), "inputs.behavior.spec.default"),
    (lambda d: d.update(extra=1), "extra: unknown top-level key"),
])
def test_malformed_specs_name_the_key(bundle, change, expected):
    _edit(bundle, change)
    with pytest.raises(ingestion.IngestionError) as error:
        operation_ingest_folder(folder=bundle)
    assert any(expected in message for message in error.value.messages), error.value.messages
    assert not Operation.objects.exists()


def test_every_problem_is_reported(bundle):
    _edit(bundle, lambda d: (d.pop("name"), d["inputs"]["number"]["spec"].pop("min")))
    with pytest.raises(ingestion.IngestionError) as error:
        operation_ingest_folder(folder=bundle)
    assert len(error.value.messages) == 2


def test_missing_mode_file(bundle):
    (bundle / "main.py").unlink()
    with pytest.raises(ingestion.IngestionError) as error:
        operation_ingest_folder(folder=bundle)
    assert "mode: required file main.py is missing (mode local)" in error.value.messages


def test_invalid_json(bundle):
    (bundle / "operation_spec.json").write_text("{nope")
    with pytest.raises(ingestion.IngestionError, match="not valid JSON"):
        operation_ingest_folder(folder=bundle)


@pytest.mark.parametrize("url", [
    "http://github.com/a/b", "https://gitlab.com/a/b", "https://github.com/a", "file:///etc",
    "https://github.com/-u/x", "https://user:pw@github.com/a/b", "--upload-pack=x", "",
])
def test_repository_url_checks(url):
    with pytest.raises(ingestion.IngestionError):
        ingestion.check_repository_url(url)


def _git_repo(path: Path, source: Path) -> str:
    shutil.copytree(source, path)
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e",
           "PATH": "/usr/bin:/bin", "HOME": str(path)}
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "one"]):
        subprocess.run(["git", *args], cwd=path, env=env, check=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_clone_pins_the_commit(tmp_path):
    commit = _git_repo(tmp_path / "repo", BUNDLE)
    target = tmp_path / "clone"
    assert ingestion.clone(f"file://{tmp_path / 'repo'}", commit[:10], target) == commit
    assert (target / "operation_spec.json").is_file()
    with pytest.raises(ingestion.IngestionError):
        ingestion.clone(f"file://{tmp_path / 'repo'}", "deadbeef", tmp_path / "clone2")


def test_repository_ingestion_records_success_and_failure(tmp_path, user, monkeypatch):
    commit = _git_repo(tmp_path / "repo", BUNDLE)
    real_clone = ingestion.clone
    monkeypatch.setattr(ingestion, "clone",
                        lambda url, c, into: real_clone(f"file://{tmp_path / 'repo'}", c, into))
    record = IngestionRecord.objects.create(repository_url="https://github.com/me/testop", commit="",
                                            requested_by=user)
    record = operation_ingest_repository(ingestion_id=record.id)
    assert record.state == "succeeded", record.message
    operation = Operation.objects.get(pk=record.id)
    assert operation.git_hash == commit and operation.repository_name == "testop"
    assert operation.spec["repository_url"] == "https://github.com/me/testop"

    bad = IngestionRecord.objects.create(repository_url="https://github.com/me/testop", commit="abcdef1")
    bad = operation_ingest_repository(ingestion_id=bad.id)
    assert bad.state == "failed" and "git checkout failed" in bad.message
