"""POST /api/operations/run/: every check, every bad key reported at once (§2.9, §4.5)."""

from __future__ import annotations

import uuid

import pytest

from mev.jobs.models import ExecutedOperation
from mev.workspaces.models import ShareRole, Workspace, WorkspaceShare
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _payload(operation, workspace, **inputs):
    return {"operation_id": str(operation.id), "workspace_id": str(workspace.id), "inputs": {"number": 1, **inputs}}


def test_missing_keys(run):
    response = run({})
    assert response.status_code == 400
    assert response.json() == {"operation_id": "This field is required.", "inputs": "This field is required."}


def test_bad_uuid_and_unknown_operation(run):
    response = run({"operation_id": "nope", "inputs": {}})
    assert response.status_code == 400 and "could not be cast as a valid UUID" in response.json()["operation_id"]
    response = run({"operation_id": str(uuid.uuid4()), "inputs": {}})
    assert response.status_code == 404 and "did not match any known operations" in response.json()["operation_id"]


def test_inactive_operation_is_404(run, operation, workspace):
    operation.active = False
    operation.save()
    assert run(_payload(operation, workspace)).status_code == 404


def test_workspace_checks(run, operation, workspace):
    response = run({"operation_id": str(operation.id), "inputs": {"number": 1}})
    assert response.status_code == 400 and "workspace_id" in response.json()
    foreign = Workspace.objects.create(owner=UserFactory(), workspace_name="theirs")
    response = run({**_payload(operation, workspace), "workspace_id": str(foreign.id)})
    assert response.status_code == 404 and response.json()["workspace_id"].startswith("No workspace found by ID")


def test_inputs_must_be_an_object(run, operation, workspace):
    response = run({**_payload(operation, workspace), "inputs": "x"})
    assert response.status_code == 400
    assert response.json() == {"inputs": 'The "inputs" key must be a JSON object.'}


def test_every_bad_key_at_once(run, operation, workspace, make_resource, user):
    other = UserFactory()
    theirs = make_resource(other)
    inactive = make_resource(user, workspace=workspace, active=False)
    outside = make_resource(user)  # mine, but not in the workspace
    wrong_type = make_resource(user, workspace=workspace, resource_type="ANN")
    payload = {
        "operation_id": str(operation.id), "workspace_id": str(workspace.id),
        "inputs": {
            "job_name": "x", "not_a_spec_key": 1,
            "number": 5000,  # above max
            "behavior": "dance",  # not an option
            "seconds": -1,
            "matrix": str(theirs.id),
            "matrices": [str(inactive.id), str(outside.id), str(wrong_type.id)],
            "samples": {"elements": [{"id": "a"}, {"id": "a"}]},
        },
    }
    response = run(payload)
    assert response.status_code == 400
    errors = response.json()["inputs"]
    assert set(errors) == {"number", "behavior", "seconds", "matrix", "matrices", "samples"}
    assert "not found" in errors["matrix"]
    assert "not ready" in errors["matrices"] and "not in this workspace" in errors["matrices"]
    assert "ANN" in errors["matrices"]
    assert not ExecutedOperation.objects.exists()


def test_required_input_missing(run, operation, workspace):
    response = run({"operation_id": str(operation.id), "workspace_id": str(workspace.id), "inputs": {"number": None}})
    assert response.status_code == 400
    assert response.json() == {"inputs": {"number": "This is a required input field."}}


def test_client_quirks_are_accepted(run, operation, workspace, make_resource, user):
    matrix = make_resource(user, workspace=workspace)
    response = run({"operation_id": str(operation.id), "workspace_id": str(workspace.id), "job_name": 2024,
                    "inputs": {"number": 3.0, "seconds": None, "matrices": str(matrix.id), "job_name": 2024}})
    assert response.status_code == 200, response.json()
    execution = ExecutedOperation.objects.get(pk=response.json()["executed_operation_id"])
    assert execution.job_name == "2024"
    assert execution.inputs["matrices"] == [str(matrix.id)]
    assert execution.inputs["behavior"] == "ok"  # the spec default
    assert "seconds" not in execution.inputs


def test_shared_workspace_editor_may_use_its_resources(run, make_client, operation, make_resource):
    owner = UserFactory()
    editor = UserFactory()
    shared = Workspace.objects.create(owner=owner, workspace_name="shared")
    WorkspaceShare.objects.create(workspace=shared, user=editor, role=ShareRole.EDITOR)
    matrix = make_resource(owner, workspace=shared)
    response = run(_payload(operation, shared, matrix=str(matrix.id)), client=make_client(editor))
    assert response.status_code == 200, response.json()
    reader = UserFactory()
    WorkspaceShare.objects.create(workspace=shared, user=reader, role=ShareRole.READER)
    assert run(_payload(operation, shared), client=make_client(reader)).status_code == 403


def test_concurrency_limit(settings, run, operation, workspace):
    settings.MEV_MAX_CONCURRENT_JOBS_PER_USER = 2
    for _ in range(2):
        assert run(_payload(operation, workspace, behavior="sleep", seconds=30)).status_code == 200
    response = run(_payload(operation, workspace))
    assert response.status_code == 429 and "limit is 2" in response.json()["message"]
    for execution in ExecutedOperation.objects.all():
        from mev.jobs.services import execution_cancel

        execution_cancel(execution=execution)
