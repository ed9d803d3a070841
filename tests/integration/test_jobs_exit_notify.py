"""A finished local run is acted on at once, on every supported broker: with the sweep every 60 s, a
trivial job submitted through the API by a real prefork Celery worker (beat embedded) is COMPLETED in
a few seconds at most, which only the worker's watch on the run's process can do."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
import requests

from mev.jobs.models import ExecutedOperation, ExecutionEvent, JobState
from mev.operations.services import operation_ingest_folder
from mev.users.tokens import token_pair_for
from mev.workspaces.models import Workspace
from tests.factories import UserFactory
from tests.integration.conftest import VENV_BIN, wait_until

pytestmark = [pytest.mark.integration]
BUNDLE = Path(__file__).resolve().parents[1] / "jobs" / "bundles" / "testop"
SWEEP_SECONDS = 60
BROKERS = {
    "redis": lambda: os.environ.get("MEV_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
    "rabbitmq": lambda: os.environ.get("MEV_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//"),
    "filesystem": lambda: "filesystem://",
}


@pytest.mark.parametrize("broker", list(BROKERS))
def test_a_finished_run_completes_long_before_the_next_sweep(stack, settings, broker):
    stack.env.update({"CELERY_BROKER_URL": BROKERS[broker](), "MEV_SWEEP_SECONDS": str(SWEEP_SECONDS)})
    settings.MEV_OPERATIONS_DIR = stack.data_dir / "operations"
    operation, _ = operation_ingest_folder(folder=BUNDLE)
    user = UserFactory()
    workspace = Workspace.objects.create(owner=user, workspace_name="w")
    headers = {"Authorization": f"Bearer {token_pair_for(user)['access']}"}

    stack.spawn("celery", [str(VENV_BIN / "celery"), "-A", "mev", "worker", "--beat", "--concurrency=2",
                           "--loglevel=INFO", "--without-gossip", "--without-mingle",
                           "--schedule", str(stack.data_dir / "celerybeat-schedule")])
    url = stack.gunicorn_on_loopback(workers=1)
    wait_until(lambda: "ready." in stack.log("celery"), timeout=60, what="celery worker",
               log=stack.logs / "celery.log")

    started = time.monotonic()
    response = requests.post(f"{url}/api/operations/run/", headers=headers, timeout=10, json={
        "operation_id": str(operation.id), "workspace_id": str(workspace.id), "inputs": {"number": 8}})
    assert response.status_code == 200, response.text
    execution_id = response.json()["executed_operation_id"]
    wait_until(lambda: ExecutedOperation.objects.get(pk=execution_id).state == JobState.COMPLETED,
               timeout=SWEEP_SECONDS / 3, what="the job's completion", log=stack.logs / "celery.log")
    elapsed = time.monotonic() - started

    done = ExecutedOperation.objects.get(pk=execution_id)
    assert done.outputs["doubled"] == 16 and done.metrics["exit_code"] == 0
    events = {e.to_state: e.timestamp for e in ExecutionEvent.objects.filter(execution_id=execution_id)}
    # The run's end was acted on by the notification, not by a sweep: none is due for a minute, and
    # one run at start-up (or a stale message from an earlier run on the broker) saw no active job.
    log = stack.log("celery")
    assert "mev.jobs.tasks.advance_execution[" in log
    assert not re.search(r"sweep_jobs\[[^]]+\] succeeded in [0-9.]+s: \{'seen': [1-9]", log), log[-3000:]
    assert (events[JobState.COMPLETED] - events[JobState.RUNNING]).total_seconds() < 5
    print(f"{broker}: run -> COMPLETED in {elapsed:.2f}s with the sweep every {SWEEP_SECONDS}s")
