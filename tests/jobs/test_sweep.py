"""The sweep recovers from faults: nothing stays QUEUED, RUNNING or FINALIZING forever (§7.3)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from mev.jobs import services
from mev.jobs.models import ExecutedOperation, JobState
from mev.jobs.tasks import sweep_jobs

pytestmark = pytest.mark.django_db


def _row(operation, workspace, user, **fields) -> ExecutedOperation:
    defaults = {"owner": user, "operation": operation, "workspace": workspace, "job_name": "j", "mode": "local",
                "runner": "local", "inputs": {"number": 4, "behavior": "ok"}}
    return ExecutedOperation.objects.create(**{**defaults, **fields})


def _age(execution, seconds):
    ExecutedOperation.objects.filter(pk=execution.pk).update(state_changed=timezone.now() - timedelta(seconds=seconds))


def test_queued_job_never_submitted_is_submitted_by_the_sweep(operation, workspace, user, drive):
    execution = _row(operation, workspace, user)  # as if the broker was down: no submission enqueued
    _age(execution, 10)
    assert drive(execution.id).state == JobState.COMPLETED


def test_queued_job_with_a_dead_submitter_is_resubmitted(operation, workspace, user, drive):
    execution = _row(operation, workspace, user, runner_state={"claimed_at": 1.0, "submit_attempts": 1})
    _age(execution, 10)
    done = drive(execution.id)
    assert done.state == JobState.COMPLETED and done.runner_state["submit_attempts"] == 2


def test_queued_timeout(settings, operation, workspace, user):
    settings.MEV_QUEUED_TIMEOUT_SECONDS = 5
    execution = _row(operation, workspace, user)
    _age(execution, 10)
    sweep_jobs.delay()
    execution.refresh_from_db()
    assert execution.state == JobState.FAILED and "could not be submitted" in execution.error_messages[0]
    assert execution.execution_stop_datetime is not None


def test_running_job_whose_process_is_gone(operation, workspace, user, tmp_path, drive):
    workdir = tmp_path / "gone"
    workdir.mkdir()
    execution = _row(operation, workspace, user, state=JobState.RUNNING, job_id="999999",
                     runner_state={"pid": 999999, "start_time": 1, "workdir": str(workdir)})
    done = drive(execution.id)
    assert done.state == JobState.FAILED
    assert done.error_messages[0].startswith("The process was killed before it finished")


def test_running_job_with_a_reused_pid(operation, workspace, user, tmp_path, drive):
    import os

    workdir = tmp_path / "reused"
    workdir.mkdir()
    # Our own pid is alive, but its start time differs: a different process, so the job is dead.
    execution = _row(operation, workspace, user, state=JobState.RUNNING, job_id=str(os.getpid()),
                     runner_state={"pid": os.getpid(), "start_time": 1, "workdir": str(workdir)})
    assert drive(execution.id).state == JobState.FAILED


def test_finalization_that_raises_ends_failed(operation, workspace, user, run, drive):
    payload = {"operation_id": str(operation.id), "workspace_id": str(workspace.id), "inputs": {"number": 1}}
    execution_id = run(payload).json()["executed_operation_id"]
    with mock.patch("mev.jobs.services.finalize_outputs", side_effect=RuntimeError("disk on fire")):
        done = drive(execution_id)
    assert done.state == JobState.FAILED
    assert done.error_messages == [services.FINALIZE_CRASH_MESSAGE]
    assert done.execution_stop_datetime is not None and not done.is_finalizing


def test_finalizing_job_whose_worker_died_is_finalized_again(operation, workspace, user, run, drive):
    payload = {"operation_id": str(operation.id), "workspace_id": str(workspace.id), "inputs": {"number": 1}}
    execution_id = run(payload).json()["executed_operation_id"]
    with mock.patch("mev.jobs.services._enqueue_finalize"):  # the finalize task is lost
        stuck = drive(execution_id, until={JobState.FINALIZING})
    ExecutedOperation.objects.filter(pk=stuck.pk).update(
        runner_state={**stuck.runner_state, "finalize_claimed_at": 1.0, "finalize_attempts": 1})
    done = drive(execution_id)
    assert done.state == JobState.COMPLETED and done.outputs["doubled"] == 2


def test_finalizing_timeout(settings, operation, workspace, user):
    settings.MEV_FINALIZE_TIMEOUT_SECONDS = 5
    execution = _row(operation, workspace, user, state=JobState.FINALIZING)
    _age(execution, 10)
    sweep_jobs.delay()
    execution.refresh_from_db()
    assert execution.state == JobState.FAILED and execution.execution_stop_datetime is not None


def test_finalize_is_idempotent(operation, workspace, user, run, drive):
    payload = {"operation_id": str(operation.id), "workspace_id": str(workspace.id), "inputs": {"number": 1}}
    execution_id = run(payload).json()["executed_operation_id"]
    done = drive(execution_id)
    assert services.execution_finalize(execution_id=done.id).state == JobState.COMPLETED
    from mev.resources.models import Resource

    assert Resource.objects.filter(parent_operation=done).count() == 1


def test_submission_failure_is_a_failed_job(operation, workspace, user, make_resource):
    from mev.resources.models import Resource

    matrix = make_resource(user, workspace=workspace)
    execution = _row(operation, workspace, user, inputs={"number": 1, "matrix": str(matrix.id)})
    Resource.objects.filter(pk=matrix.pk).update(datafile="", standardized_file="")
    services.execution_submit(execution_id=execution.id)
    execution.refresh_from_db()
    assert execution.state == JobState.FAILED and execution.job_failed
    assert execution.execution_stop_datetime is not None and "Matrix:" in execution.error_messages[0]


def test_unknown_execution_is_ignored():
    services.execution_advance(execution_id=uuid.uuid4())
    services.execution_submit(execution_id=uuid.uuid4())
    services.execution_finalize(execution_id=uuid.uuid4())


def test_overlapping_sweeps_skip(operation, workspace, user):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the sweep lock is a PostgreSQL advisory lock")
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    other = psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"],
                            password=db.get("PASSWORD") or None, dbname=connection.settings_dict["NAME"])
    try:
        other.execute("SELECT pg_advisory_lock(%s)", [services._SWEEP_LOCK_KEY])
        assert services.jobs_sweep()["skipped"] == 1
        other.execute("SELECT pg_advisory_unlock(%s)", [services._SWEEP_LOCK_KEY])
        assert "skipped" not in services.jobs_sweep()
    finally:
        other.close()
