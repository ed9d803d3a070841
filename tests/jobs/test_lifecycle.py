"""The lifecycle end to end: eager tasks, a real detached subprocess, the sweep driving each job."""

from __future__ import annotations

import os
import signal
import time

import pytest

from mev.jobs.models import ExecutedOperation, ExecutionEvent, JobState
from mev.jobs.runners.local import proc_start_time
from mev.resources.models import Resource
from mev.workspaces.models import WorkspaceResource

pytestmark = pytest.mark.django_db


def _payload(operation, workspace, **inputs):
    return {"operation_id": str(operation.id), "workspace_id": str(workspace.id), "job_name": "my run",
            "inputs": {"job_name": "my run", "number": 21, **inputs}}


def test_success_end_to_end(auth_client, run, drive, operation, workspace, make_resource, user):
    matrix = make_resource(user, workspace=workspace)
    response = run(_payload(operation, workspace, matrix=str(matrix.id)))
    assert response.status_code == 200, response.json()
    execution_id = response.json()["executed_operation_id"]
    assert ExecutedOperation.objects.filter(pk=execution_id).exists()
    assert auth_client.get(f"/api/executed-operations/{execution_id}/").status_code in (204, 208, 200)

    execution = drive(execution_id)
    assert execution.state == JobState.COMPLETED, execution.error_messages
    body = auth_client.get(f"/api/executed-operations/{execution_id}").json()
    assert body["job_failed"] is False and body["is_finalizing"] is False
    assert body["error_messages"] is None
    assert body["execution_stop_datetime"].endswith("Z")
    assert body["outputs"]["doubled"] == 42
    assert body["outputs"]["cpus"] == 1
    assert body["operation"]["operation_name"] == "Test operation"
    assert body["operation"]["categories"] == ["Utilities"]
    assert body["inputs"]["matrix"] == str(matrix.id)
    assert set(body["metrics"]) >= {"wall_seconds", "cpu_seconds", "max_rss_bytes", "exit_code"}
    assert body["metrics"]["exit_code"] == 0

    report = Resource.objects.get(pk=body["outputs"]["report"])
    assert report.name == "my run.report.tsv"
    assert report.resource_type == "MTX" and report.is_active and report.parent_operation_id == execution.id
    assert report.owner_id == user.pk
    assert WorkspaceResource.objects.filter(workspace=workspace, resource=report).exists()

    states = list(ExecutionEvent.objects.filter(execution_id=execution_id).values_list("to_state", flat=True))
    assert states == ["QUEUED", "SUBMITTED", "RUNNING", "FINALIZING", "COMPLETED"]

    logs = auth_client.get(f"/api/executed-operations/{execution_id}/logs/").json()
    assert "got 21 (ok)" in logs["stdout"] and "a line on stderr" in logs["stderr"]


def test_poll_codes(auth_client, run, drive, operation, workspace):
    execution_id = run(_payload(operation, workspace, behavior="sleep", seconds=30)).json()["executed_operation_id"]
    assert auth_client.get(f"/api/executed-operations/{execution_id}/").status_code == 204
    ExecutedOperation.objects.filter(pk=execution_id).update(state=JobState.FINALIZING)
    response = auth_client.get(f"/api/executed-operations/{execution_id}")
    assert response.status_code == 208 and response.content == b""
    ExecutedOperation.objects.filter(pk=execution_id).update(state=JobState.RUNNING)
    assert auth_client.post(f"/api/executed-operations/{execution_id}/cancel/").status_code == 200
    assert auth_client.get(f"/api/executed-operations/{execution_id}/").status_code == 200


def test_tool_error_messages(auth_client, run, drive, operation, workspace):
    execution_id = run(_payload(operation, workspace, behavior="fail")).json()["executed_operation_id"]
    execution = drive(execution_id)
    assert execution.state == JobState.FAILED
    body = auth_client.get(f"/api/executed-operations/{execution_id}/").json()
    assert body["job_failed"] is True and body["outputs"] is None
    assert body["error_messages"] == ["The chosen samples are not in the matrix.", "Choose at least 2 samples."]
    assert body["metrics"]["exit_code"] == 2


def test_crash_reports_stderr_tail(run, drive, operation, workspace):
    execution = drive(run(_payload(operation, workspace, behavior="crash")).json()["executed_operation_id"])
    assert execution.state == JobState.FAILED
    assert "boom: an unexpected crash" in execution.error_messages[0]
    assert "exit code 1" in execution.error_messages[0]


def test_memory_limit(settings, run, drive, operation, workspace):
    settings.MEV_JOB_MEMORY_BYTES = 512 * 1024**2
    execution = drive(run(_payload(operation, workspace, behavior="oom")).json()["executed_operation_id"])
    assert execution.state == JobState.FAILED
    assert execution.error_messages == ["The process ran out of memory (limit: 512 MiB)."]


def test_wall_clock_limit(settings, run, drive, operation, workspace):
    settings.MEV_JOB_TIMEOUT_SECONDS = 1
    execution = drive(run(_payload(operation, workspace, behavior="sleep", seconds=30)).json()["executed_operation_id"])
    assert execution.state == JobState.FAILED
    assert "time limit of 1 seconds" in execution.error_messages[0]


def test_bad_required_output_fails_and_cleans_up(run, drive, operation, workspace):
    execution = drive(run(_payload(operation, workspace, behavior="bad_output")).json()["executed_operation_id"])
    assert execution.state == JobState.FAILED
    assert any(m.startswith("Output doubled:") for m in execution.error_messages)
    assert any(m.startswith("Output report:") for m in execution.error_messages)
    assert not Resource.objects.filter(parent_operation=execution).exists()


def _tool_pid(execution: ExecutedOperation) -> int:
    path = f"{execution.runner_state['workdir']}/tool.pid"
    deadline = time.monotonic() + 10
    while not os.path.exists(path) or not open(path).read().strip():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return int(open(path).read())


def test_kill_9_of_the_tool(run, drive, operation, workspace):
    execution_id = run(_payload(operation, workspace, behavior="sleep", seconds=60)).json()["executed_operation_id"]
    execution = drive(execution_id, until={JobState.RUNNING})
    os.kill(_tool_pid(execution), signal.SIGKILL)
    execution = drive(execution_id)
    assert execution.state == JobState.FAILED
    assert execution.error_messages[0].startswith("The process was killed by signal SIGKILL")


def test_kill_9_of_the_wrapper_and_tool(run, drive, operation, workspace):
    execution_id = run(_payload(operation, workspace, behavior="sleep", seconds=60)).json()["executed_operation_id"]
    execution = drive(execution_id, until={JobState.RUNNING})
    tool = _tool_pid(execution)
    os.kill(execution.runner_state["pid"], signal.SIGKILL)
    os.killpg(tool, signal.SIGKILL)
    execution = drive(execution_id)
    assert execution.state == JobState.FAILED
    assert execution.error_messages[0].startswith("The process was killed before it finished")


def test_cancel(auth_client, run, drive, operation, workspace):
    execution_id = run(_payload(operation, workspace, behavior="sleep", seconds=60)).json()["executed_operation_id"]
    execution = drive(execution_id, until={JobState.RUNNING})
    tool = _tool_pid(execution)
    response = auth_client.post(f"/api/executed-operations/{execution_id}/cancel/")
    assert response.status_code == 200
    body = response.json()
    assert body["job_failed"] is True and body["execution_stop_datetime"] and body["error_messages"]
    assert body["status"] == "Canceled by the user."
    execution = ExecutedOperation.objects.get(pk=execution_id)
    assert execution.state == JobState.CANCELED
    assert proc_start_time(tool) is None  # gone (or a zombie awaiting its reaper)
    # Cancelling again is refused; the sweep leaves the job alone.
    assert auth_client.post(f"/api/executed-operations/{execution_id}/cancel/").status_code == 400
    assert drive(execution_id).state == JobState.CANCELED


def test_rerun(auth_client, run, drive, operation, workspace):
    first = run(_payload(operation, workspace)).json()["executed_operation_id"]
    drive(first)
    response = auth_client.post(f"/api/executed-operations/{first}/rerun/")
    assert response.status_code == 200
    second = response.json()["executed_operation_id"]
    assert second != first
    rerun = ExecutedOperation.objects.get(pk=second)
    assert rerun.inputs == ExecutedOperation.objects.get(pk=first).inputs
    rerun.refresh_from_db()
    assert drive(second).state == JobState.COMPLETED


def test_reuse_returns_the_earlier_completed_job(run, drive, operation, workspace, make_resource, user):
    matrix = make_resource(user, workspace=workspace)
    first = run(_payload(operation, workspace, matrix=str(matrix.id))).json()["executed_operation_id"]
    drive(first)
    again = run({**_payload(operation, workspace, matrix=str(matrix.id)), "reuse": True})
    assert again.json()["executed_operation_id"] == first
    different = run({**_payload(operation, workspace, matrix=str(matrix.id), number=3), "reuse": True})
    assert different.json()["executed_operation_id"] != first
    # Same contents under another resource id: same checksum, so reused too.
    copy = make_resource(user, workspace=workspace)
    same_content = run({**_payload(operation, workspace, matrix=str(copy.id)), "reuse": True})
    assert same_content.json()["executed_operation_id"] == first
    without_flag = run(_payload(operation, workspace, matrix=str(matrix.id)))
    assert without_flag.json()["executed_operation_id"] != first


def test_non_workspace_operation(auth_client, run, drive, nows_operation, make_resource, user):
    matrix = make_resource(user)  # in no workspace: fine for a non-workspace operation (§7.2.9)
    response = run({"operation_id": str(nows_operation.id), "inputs": {"number": 2, "matrix": str(matrix.id)}})
    assert response.status_code == 200, response.json()
    execution_id = response.json()["executed_operation_id"]
    execution = drive(execution_id)
    assert execution.state == JobState.COMPLETED and execution.workspace_id is None
    assert execution.job_name == execution_id
    listed = auth_client.get("/api/non-workspace-executed-operations/").json()
    assert [e["id"] for e in listed] == [execution_id]
    assert auth_client.get("/api/executed-operations/non-workspace").json()[0]["id"] == execution_id


def test_staged_inputs_are_removed_when_the_job_stops(run, drive, operation, workspace, make_resource, user):
    matrix = make_resource(user, workspace=workspace)
    execution = drive(run(_payload(operation, workspace, matrix=str(matrix.id))).json()["executed_operation_id"])
    assert execution.state == JobState.COMPLETED
    workdir = execution.runner_state["workdir"]
    assert not os.path.exists(f"{workdir}/inputs")
    assert os.path.exists(f"{workdir}/stdout.txt")
    report = open(f"{workdir}/report.tsv").read()
    assert "g3\t3\t0" in report  # the staged matrix (header + 2 rows) was readable by the tool


def test_cancel_a_queued_job(auth_client, operation, workspace, django_capture_on_commit_callbacks):
    from unittest import mock

    with mock.patch("mev.jobs.services._enqueue_submit"):
        response = auth_client.post("/api/operations/run/", {
            "operation_id": str(operation.id), "workspace_id": str(workspace.id), "inputs": {"number": 1}},
            format="json")
    execution_id = response.json()["executed_operation_id"]
    assert auth_client.get(f"/api/executed-operations/{execution_id}/").status_code == 204
    body = auth_client.post(f"/api/executed-operations/{execution_id}/cancel").json()
    assert body["job_failed"] is True and body["error_messages"] == ["The job was canceled at the user's request."]
    from mev.jobs.services import execution_submit

    execution_submit(execution_id=execution_id)  # a late submission does nothing
    assert ExecutedOperation.objects.get(pk=execution_id).job_id == ""


def test_bundle_limits_file(settings, tmp_path):
    import json
    from pathlib import Path

    from mev.jobs.services import _limits

    settings.MEV_JOB_TIMEOUT_SECONDS = 100
    settings.MEV_JOB_MEMORY_BYTES = 1000
    settings.MEV_JOB_MAX_CPUS = 4
    assert _limits(Path(tmp_path)) == {"wall_seconds": 100.0, "memory_bytes": 1000, "cpus": 1}
    (tmp_path / "limits.json").write_text(json.dumps({"wall_seconds": 10, "memory_bytes": 5000, "cpus": 8}))
    assert _limits(Path(tmp_path)) == {"wall_seconds": 10.0, "memory_bytes": 1000, "cpus": 4}
