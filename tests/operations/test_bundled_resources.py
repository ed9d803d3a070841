"""Files bundled with an operation (`operation_resources.json`, contract §2.8, §4.2, §4.5.5, §7.2.5, §7.2.14):
ingestion, the listing endpoints, run-time validation by input key, and a run that stages one."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from mev.jobs.models import TERMINAL_STATES, ExecutedOperation, JobState
from mev.jobs.services import jobs_sweep
from mev.jobs.staging import local_copy
from mev.operations.ingestion import IngestionError
from mev.operations.models import OperationResource
from mev.operations.services import operation_ingest_folder

pytestmark = pytest.mark.django_db
BUNDLE = Path(__file__).resolve().parents[1] / "jobs" / "bundles" / "testop_bundled"


@pytest.fixture(autouse=True)
def _dirs(settings, tmp_path):
    settings.MEV_OPERATIONS_DIR = tmp_path / "ops"
    settings.MEV_JOBS_DIR = tmp_path / "jobs"
    settings.MEV_JOB_TIMEOUT_SECONDS = 60
    settings.MEV_JOB_MEMORY_BYTES = 1024**3


@pytest.fixture
def operation():
    return operation_ingest_folder(folder=BUNDLE)[0]


@pytest.fixture
def bundle(tmp_path) -> Path:
    target = tmp_path / "src" / "bundled"
    shutil.copytree(BUNDLE, target)
    return target


def _bundled(operation, name):
    return OperationResource.objects.get(operation=operation, name=name)


def _write_resources(bundle: Path, mapping) -> None:
    (bundle / "operation_resources.json").write_text(json.dumps(mapping))


# -- ingestion ---------------------------------------------------------------------------------------


def test_ingestion_stores_each_bundled_file(operation):
    items = {(r.input_key, r.name, r.resource_type) for r in OperationResource.objects.filter(operation=operation)}
    assert items == {("reference", "Small reference", "MTX"), ("reference", "Large reference", "MTX"),
                     ("annotation", "Annotation", "MTX")}
    small = _bundled(operation, "Small reference")
    assert small.datafile and small.size == len((BUNDLE / "data" / "small.tsv").read_bytes())
    with local_copy(small.datafile) as path:
        assert Path(path).read_bytes() == (BUNDLE / "data" / "small.tsv").read_bytes()


def test_reingesting_the_same_content_adds_no_files(operation):
    again, created = operation_ingest_folder(folder=BUNDLE)
    assert (again.id, created) == (operation.id, False)
    assert OperationResource.objects.count() == 3


def test_a_new_data_directory_restores_the_stored_files(operation):
    from mev.jobs.staging import delete_key

    small = _bundled(operation, "Small reference")
    delete_key(small.datafile)
    shutil.rmtree(operation.bundle_dir)
    again, created = operation_ingest_folder(folder=BUNDLE)
    assert (again.id, created) == (operation.id, False)
    restored = _bundled(operation, "Small reference")
    assert restored.id == small.id and restored.datafile != small.datafile
    with local_copy(restored.datafile) as path:
        assert Path(path).read_bytes() == (BUNDLE / "data" / "small.tsv").read_bytes()


def test_a_bundle_without_the_file_has_none(bundle):
    (bundle / "operation_resources.json").unlink()
    operation, _ = operation_ingest_folder(folder=bundle)
    assert not OperationResource.objects.filter(operation=operation).exists()


@pytest.mark.parametrize(("mapping", "expected"), [
    ({"nope": []}, "nope: not an input of type OperationDataResource"),
    ({"reference": {"name": "x"}}, "reference: must be a list"),
    ({"reference": [{"name": "x", "path": "data/small.tsv"}]}, "name, path and resource_type are required"),
    ({"reference": [{"name": "x", "path": "../outside.tsv", "resource_type": "MTX"}]}, "is not a file inside"),
    ({"reference": [{"name": "x", "path": "/etc/passwd", "resource_type": "MTX"}]}, "is not a file inside"),
    ({"reference": [{"name": "x", "path": "data/missing.tsv", "resource_type": "MTX"}]}, "is not a file inside"),
    ({"reference": [{"name": "x", "path": "data/small.tsv", "resource_type": "NOPE"}]}, "unknown resource type"),
    ({"reference": [{"name": "x", "path": "data/small.tsv", "resource_type": "FQ"}]}, "accepts MTX, not FQ"),
    ({"reference": [{"name": "x", "path": "data/small.tsv", "resource_type": "MTX"},
                    {"name": "x", "path": "data/large.tsv", "resource_type": "MTX"}]}, "listed twice"),
])
def test_malformed_operation_resources_fail_ingestion(bundle, tmp_path, mapping, expected):
    (tmp_path / "src" / "outside.tsv").write_text("gene\tS1\ng\t1\n")
    _write_resources(bundle, mapping)
    with pytest.raises(IngestionError) as caught:
        operation_ingest_folder(folder=bundle)
    assert any(expected in message for message in caught.value.messages), caught.value.messages
    assert not OperationResource.objects.exists()


def test_invalid_json_fails_ingestion(bundle):
    (bundle / "operation_resources.json").write_text("{not json")
    with pytest.raises(IngestionError, match="operation_resources.json is not valid JSON"):
        operation_ingest_folder(folder=bundle)


# -- listing -----------------------------------------------------------------------------------------


def test_listing_all_and_by_input_key(auth_client, operation):
    everything = auth_client.get(f"/api/operation-resources/{operation.id}/")
    assert everything.status_code == 200
    assert {item["name"] for item in everything.json()} == {"Small reference", "Large reference", "Annotation"}
    small = _bundled(operation, "Small reference")
    item = next(i for i in everything.json() if i["id"] == str(small.id))
    assert {k: item[k] for k in ("id", "name", "resource_type", "input_key")} == {
        "id": str(small.id), "name": "Small reference", "resource_type": "MTX", "input_key": "reference"}
    assert "datafile" not in item  # no storage key or link in listings (§7.1.16)

    by_key = auth_client.get(f"/api/operation-resources/{operation.id}/annotation/")
    assert by_key.status_code == 200
    assert [i["name"] for i in by_key.json()] == ["Annotation"]


def test_listing_unknown_operation_or_key_is_404(auth_client, operation):
    assert auth_client.get(f"/api/operation-resources/{operation.id}/nope/").status_code == 404
    assert auth_client.get("/api/operation-resources/00000000-0000-4000-8000-000000000000/").status_code == 404


def test_listing_needs_authentication(api_client, operation):
    assert api_client.get(f"/api/operation-resources/{operation.id}/").status_code == 401


def test_bundled_files_are_not_user_resources(auth_client, operation):
    """§7.2.14: not in anyone's resource list; resource routes given their id answer 404."""
    small = _bundled(operation, "Small reference")
    assert str(small.id) not in {r["id"] for r in auth_client.get("/api/resources/").json()}
    for path in (f"/api/resources/{small.id}/", f"/api/resources/download/{small.id}/",
                 f"/api/resources/signed-url/{small.id}/", f"/api/resources/{small.id}/contents/"):
        assert auth_client.get(path).status_code == 404, path


# -- validation and a run ----------------------------------------------------------------------------


def _run(auth_client, django_capture_on_commit_callbacks, operation, inputs):
    with django_capture_on_commit_callbacks(execute=True):
        return auth_client.post("/api/operations/run/", {"operation_id": str(operation.id), "inputs": inputs},
                                format="json")


def test_validation_accepts_only_files_bundled_for_that_key(auth_client, django_capture_on_commit_callbacks,
                                                           operation, user, tmp_path):
    annotation = _bundled(operation, "Annotation")
    wrong_key = _run(auth_client, django_capture_on_commit_callbacks, operation, {"reference": str(annotation.id)})
    assert wrong_key.status_code == 400
    assert "No file bundled with this operation for the input reference" in wrong_key.json()["inputs"]["reference"]

    # The same key of ANOTHER operation's bundle is no good either.
    copy = tmp_path / "src" / "other"
    shutil.copytree(BUNDLE, copy)
    document = json.loads((copy / "operation_spec.json").read_text())
    document["name"] = "Another operation with bundled files"
    (copy / "operation_spec.json").write_text(json.dumps(document))
    other = operation_ingest_folder(folder=copy)[0]
    foreign = _run(auth_client, django_capture_on_commit_callbacks, operation,
                   {"reference": str(_bundled(other, "Large reference").id)})
    assert foreign.status_code == 400 and "reference" in foreign.json()["inputs"]

    unknown = _run(auth_client, django_capture_on_commit_callbacks, operation,
                   {"reference": "00000000-0000-4000-8000-000000000000"})
    assert unknown.status_code == 400 and "reference" in unknown.json()["inputs"]
    assert not ExecutedOperation.objects.exists()


def test_a_user_resource_is_not_a_bundled_file(auth_client, django_capture_on_commit_callbacks, operation, user,
                                               tmp_path):
    from mev.jobs.staging import store_file
    from mev.resources.models import Resource

    resource = Resource(owner=user, name="mine.tsv", resource_type="MTX", file_format="tsv")
    source = tmp_path / "mine.tsv"
    source.write_text("gene\tS1\ng\t1\n")
    resource.datafile, resource.size, resource.checksum = store_file(path=source, owner_id=user.pk,
                                                                     resource_id=resource.id, name="mine.tsv")
    resource.save()
    answer = _run(auth_client, django_capture_on_commit_callbacks, operation, {"reference": str(resource.id)})
    assert answer.status_code == 400 and "reference" in answer.json()["inputs"]


def test_a_run_stages_the_bundled_file(auth_client, django_capture_on_commit_callbacks, operation):
    large = _bundled(operation, "Large reference")
    annotation = _bundled(operation, "Annotation")
    answer = _run(auth_client, django_capture_on_commit_callbacks, operation,
                  {"reference": str(large.id), "annotation": str(annotation.id)})
    assert answer.status_code == 200, answer.json()
    execution_id = answer.json()["executed_operation_id"]
    deadline = time.monotonic() + 30
    while True:
        with django_capture_on_commit_callbacks(execute=True):
            jobs_sweep()
        execution = ExecutedOperation.objects.get(pk=execution_id)
        if execution.state in TERMINAL_STATES or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert execution.state == JobState.COMPLETED, execution.error_messages
    assert execution.outputs == {"lines": 4, "first_gene": "gX"}
    assert execution.inputs["reference"] == str(large.id)
    detail = auth_client.get(f"/api/executed-operations/{execution_id}/")
    assert detail.status_code == 200 and detail.json()["outputs"]["lines"] == 4


def test_a_workspace_run_shows_the_bundled_file_in_the_tree(auth_client, django_capture_on_commit_callbacks,
                                                            bundle, user):
    from mev.workspaces.models import Workspace

    document = json.loads((bundle / "operation_spec.json").read_text())
    document["workspace_operation"] = True
    (bundle / "operation_spec.json").write_text(json.dumps(document))
    operation = operation_ingest_folder(folder=bundle)[0]
    workspace = Workspace.objects.create(owner=user, workspace_name="ws")
    small = _bundled(operation, "Small reference")
    with django_capture_on_commit_callbacks(execute=True):
        answer = auth_client.post("/api/operations/run/", {"operation_id": str(operation.id),
                                                           "workspace_id": str(workspace.id),
                                                           "inputs": {"reference": str(small.id)}}, format="json")
    assert answer.status_code == 200, answer.json()
    tree = auth_client.get(f"/api/executed-operations/workspace/{workspace.id}/tree/").json()
    node = next(n for n in tree if n["id"] == str(small.id))
    assert node["node_name"] == "Small reference"
    op_node = next(n for n in tree if n["node_type"] == "op_node")
    assert op_node["parentIds"] == [str(small.id)]
