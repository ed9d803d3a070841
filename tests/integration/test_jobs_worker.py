"""A trivial local operation from `run` to COMPLETED with a REAL Celery worker and beat on Redis,
followed through HTTP polling of the poll endpoint (gunicorn on a loopback port)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from mev.operations.services import operation_ingest_folder
from mev.users.tokens import token_pair_for
from mev.workspaces.models import Workspace
from tests.factories import UserFactory
from tests.integration.conftest import VENV_BIN, wait_until

pytestmark = [pytest.mark.integration]
BUNDLE = Path(__file__).resolve().parents[1] / "jobs" / "bundles" / "testop"


@pytest.fixture
def beat(stack):
    return stack.spawn("beat", [str(VENV_BIN / "celery"), "-A", "mev", "beat", "--loglevel=INFO",
                                "--schedule", str(stack.data_dir / "celerybeat-schedule")])


@pytest.fixture
def api_url(stack):
    return stack.gunicorn_on_loopback()


def test_run_to_completed_through_worker_beat_and_polling(stack, settings, celery_worker, beat, api_url):
    settings.MEV_OPERATIONS_DIR = stack.data_dir / "operations"
    operation, _ = operation_ingest_folder(folder=BUNDLE)
    user = UserFactory()
    workspace = Workspace.objects.create(owner=user, workspace_name="w")
    headers = {"Authorization": f"Bearer {token_pair_for(user)['access']}"}

    started = time.monotonic()
    response = requests.post(f"{api_url}/api/operations/run/", headers=headers, timeout=10, json={
        "operation_id": str(operation.id), "workspace_id": str(workspace.id), "job_name": "integration",
        "inputs": {"number": 20, "job_name": "integration"}})
    assert response.status_code == 200, response.text
    execution_id = response.json()["executed_operation_id"]

    codes = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        poll = requests.get(f"{api_url}/api/executed-operations/{execution_id}", headers=headers, timeout=10)
        codes.append(poll.status_code)
        if poll.status_code not in (204, 208):
            break
        time.sleep(0.2)
    assert codes[-1] == 200, (codes, stack.log("celery")[-3000:], stack.log("beat")[-2000:])
    assert set(codes[:-1]) <= {204, 208} and codes[0] in (204, 208)
    body = poll.json()
    assert body["job_failed"] is False, body["error_messages"]
    assert body["outputs"]["doubled"] == 40 and body["status"] == "Successfully completed."
    assert body["metrics"]["exit_code"] == 0
    report = requests.get(f"{api_url}/api/executed-operations/workspace/{workspace.id}/", headers=headers,
                          timeout=10).json()
    assert report[0]["id"] == execution_id
    # The job may well be done before beat's first tick (its end is acted on at once): beat still sweeps.
    wait_until(lambda: "mev.jobs.tasks.sweep_jobs" in stack.log("beat"), timeout=30, what="beat's sweep",
               log=stack.logs / "beat.log")
    print(f"run -> COMPLETED via worker+beat in {time.monotonic() - started:.2f}s; poll codes {codes}")


def test_a_running_job_survives_a_killed_worker(stack, settings, celery_worker, beat):
    """kill -9 of the worker while the tool runs: the detached tool keeps going, and a new worker's
    sweep (beat keeps ticking) notices the end and finalizes it."""
    import os
    import signal

    from mev.jobs.models import ExecutedOperation, JobState
    from mev.jobs.services import execution_create

    settings.MEV_OPERATIONS_DIR = stack.data_dir / "operations"
    operation, _ = operation_ingest_folder(folder=BUNDLE)
    user = UserFactory()
    workspace = Workspace.objects.create(owner=user, workspace_name="w")
    execution, _ = execution_create(user=user, operation_id=operation.id, workspace_id=workspace.id,
                                    inputs={"number": 5, "behavior": "sleep", "seconds": 4})
    wait_until(lambda: ExecutedOperation.objects.get(pk=execution.pk).state == JobState.RUNNING, timeout=30,
               what="job running", log=stack.logs / "celery.log")
    os.killpg(celery_worker.pid, signal.SIGKILL)
    celery_worker.wait(timeout=10)
    tool_pid = ExecutedOperation.objects.get(pk=execution.pk).runner_state["pid"]
    os.kill(tool_pid, 0)  # the run outlived its worker

    stack.spawn("celery2", [str(VENV_BIN / "celery"), "-A", "mev", "worker", "--pool=solo", "--loglevel=INFO",
                            "--without-gossip", "--without-mingle"])
    wait_until(lambda: ExecutedOperation.objects.get(pk=execution.pk).state == JobState.COMPLETED, timeout=60,
               what="job completed after the worker restart", log=stack.logs / "celery2.log")
    done = ExecutedOperation.objects.get(pk=execution.pk)
    assert done.outputs["doubled"] == 10 and done.metrics["wall_seconds"] >= 4
