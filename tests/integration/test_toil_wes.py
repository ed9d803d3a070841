"""The WES runner against a real engine: Toil's WES server (`toil server`), running CWL without
containers (`--no-container`).

A session fixture builds Toil's own virtualenv with `scripts/toil_venv.sh` (a few minutes the first
time, a no-op afterwards) and starts `toil server` on a free loopback port with a temporary work
directory. The tests then drive the runner directly (submit, poll, collect, cancel, a failing run)
and once through the jobs app: POST /api/operations/run/, the sweep until COMPLETED, and the output
as a validated Resource in GET /api/resources/.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from mev.jobs.runners.base import RunPhase, RunStatus, SubmitRequest
from mev.jobs.runners.wes import WesRunner
from tests.integration.conftest import ROOT

pytestmark = pytest.mark.integration

BUNDLES = ROOT / "tests" / "jobs" / "bundles"
COUNTS = "gene\tcount\nA\t5\nB\t2\nC\t9\n"
SCALED_BY_3 = "gene\tcount\nA\t15\nB\t6\nC\t27\n"


@pytest.fixture
def wes_settings(settings, toil_server, tmp_path: Path) -> Path:
    shared = tmp_path / "shared"
    shared.mkdir()
    settings.MEV_WES_URL = toil_server["url"]
    settings.MEV_WES_BASE_PATH = "/ga4gh/wes/v1"
    settings.MEV_WES_WORKFLOW_ENGINE_PARAMETERS = '{"--no-container": null}'
    settings.MEV_ENGINE_SHARED_DIR = str(shared)
    # Toil's --work_dir holds the outputs; in production it sits on the shared volume.
    settings.MEV_ENGINE_OUTPUT_ROOTS = [str(shared), str(toil_server["work_dir"])]
    settings.MEV_ENGINE_S3_PREFIX = ""
    settings.MEV_ENGINE_SUBMIT_GRACE_SECONDS = 60
    return shared


def _request(bundle: str, workdir: Path, inputs: dict) -> SubmitRequest:
    import json

    spec = json.loads((BUNDLES / bundle / "operation_spec.json").read_text())
    return SubmitRequest(execution_id=str(uuid.uuid4()), operation_spec=spec, bundle_dir=BUNDLES / bundle,
                         inputs=inputs, workdir=workdir)


def _poll_until(runner: WesRunner, job_id: str, state: dict, phases: set[RunPhase], timeout: float) -> RunStatus:
    deadline = time.monotonic() + timeout
    while True:
        status = runner.poll(job_id, runner_state=state)
        if status.phase in phases:
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"run {job_id} still {status.phase} ({status.detail}) after {timeout}s")
        time.sleep(0.5)


def test_cwl_run_end_to_end(wes_settings: Path, tmp_path: Path):
    workdir = tmp_path / "job"
    staged = workdir / "inputs" / str(uuid.uuid4()) / "counts.tsv"
    staged.parent.mkdir(parents=True)
    staged.write_text(COUNTS)
    request = _request("wes_cwl_scale", workdir, {"counts": str(staged), "factor": 3})

    runner = WesRunner()
    job_id = runner.submit(request)
    state = request.runner_state
    assert job_id.startswith("run-") and state["run_id"] == job_id

    # The input went to the shared directory (a hard link), and the engine was told that path.
    shared_copy = Path(state["staged_inputs"][str(staged)])
    assert wes_settings in shared_copy.parents and shared_copy.read_text() == COUNTS

    status = _poll_until(runner, job_id, state, {RunPhase.SUCCEEDED, RunPhase.FAILED}, timeout=180)
    assert status.phase == RunPhase.SUCCEEDED, status.error_messages

    result = runner.collect(job_id, runner_state=state, workdir=workdir)
    output = Path(result.outputs["scaled"])
    assert workdir.resolve() in output.resolve().parents
    assert output.read_text() == SCALED_BY_3
    assert result.metrics["exit_code"] == 0 and result.metrics["wall_seconds"] >= 0
    assert not shared_copy.exists()  # released once the run is over
    # Collecting again is safe and fetches nothing twice.
    assert runner.collect(job_id, runner_state=state, workdir=workdir).outputs["scaled"] == str(output)
    # The engine's record carries our execution id.
    record = requests.get(f"{state['base_url']}/runs/{job_id}", timeout=10).json()
    assert record["request"]["tags"] == {"mev_execution_id": request.execution_id}


def test_long_run_is_canceled(wes_settings: Path, tmp_path: Path):
    request = _request("wes_cwl_sleep", tmp_path / "job", {"seconds": 600})
    runner = WesRunner()
    job_id = runner.submit(request)
    state = request.runner_state
    _poll_until(runner, job_id, state, {RunPhase.RUNNING}, timeout=60)
    runner.cancel(job_id, runner_state=state)
    status = _poll_until(runner, job_id, state, {RunPhase.CANCELED, RunPhase.FAILED, RunPhase.SUCCEEDED},
                         timeout=90)
    assert status.phase == RunPhase.CANCELED
    runner.cancel(job_id, runner_state=state)  # idempotent


def test_failing_run_reports_the_tools_stderr(wes_settings: Path, tmp_path: Path):
    request = _request("wes_cwl_sleep", tmp_path / "job", {"seconds": -1})
    runner = WesRunner()
    job_id = runner.submit(request)
    status = _poll_until(runner, job_id, request.runner_state, {RunPhase.SUCCEEDED, RunPhase.FAILED, RunPhase.CANCELED},
                         timeout=180)
    assert status.phase == RunPhase.FAILED and status.detail == "EXECUTOR_ERROR"
    assert status.error_messages[0] == "The workflow failed."
    assert any("sleep" in m and "invalid" in m for m in status.error_messages[1:]), status.error_messages


def test_unknown_run_is_lost_after_the_grace_window(wes_settings: Path, settings):
    runner = WesRunner()
    fresh = {"submitted_at": time.time()}
    assert runner.poll("run-doesnotexist", runner_state=fresh).phase == RunPhase.SUBMITTED
    settings.MEV_ENGINE_SUBMIT_GRACE_SECONDS = 0
    lost = runner.poll("run-doesnotexist", runner_state=fresh)
    assert lost.phase == RunPhase.FAILED and lost.error_messages == ["The engine has no record of this run."]
    assert runner.health()["ok"] is True and "toil" in runner.health()["version"]


# --------------------------------------------------------------------------------------------------
# Through the jobs app: the run endpoint, the sweep, finalization into a Resource.


@pytest.fixture
def drive(django_capture_on_commit_callbacks) -> Callable:
    from mev.jobs.models import TERMINAL_STATES, ExecutedOperation
    from mev.jobs.services import jobs_sweep

    def _drive(execution_id, *, timeout: float = 180):
        deadline = time.monotonic() + timeout
        while True:
            with django_capture_on_commit_callbacks(execute=True):
                jobs_sweep()
            execution = ExecutedOperation.objects.get(pk=execution_id)
            if execution.state in TERMINAL_STATES:
                return execution
            if time.monotonic() > deadline:
                raise AssertionError(f"job still {execution.state} after {timeout}s")
            time.sleep(0.5)

    return _drive


@pytest.mark.django_db
def test_wes_job_through_the_jobs_app(wes_settings: Path, settings, tmp_path: Path, user, auth_client,
                                      django_capture_on_commit_callbacks, drive):
    from mev.jobs.models import JobState
    from mev.jobs.staging import store_file
    from mev.operations.services import operation_ingest_folder
    from mev.resources.models import Resource

    settings.MEV_JOBS_DIR = tmp_path / "jobs"
    settings.MEV_OPERATIONS_DIR = tmp_path / "ops"
    settings.MEV_SUBMIT_GRACE_SECONDS = 0
    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLES / "wes_cwl_scale", bundle)
    operation = operation_ingest_folder(folder=bundle)[0]
    assert operation.mode == "wes"

    resource = Resource(owner=user, name="counts.tsv", resource_type="ANN", file_format="tsv", is_active=True)
    source = tmp_path / "counts.tsv"
    source.write_text(COUNTS)
    resource.datafile, resource.size, resource.checksum = store_file(path=source, owner_id=user.pk,
                                                                     resource_id=resource.id, name="counts.tsv")
    resource.save()

    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client.post("/api/operations/run/", {
            "operation_id": str(operation.id), "job_name": "scale",
            "inputs": {"counts": str(resource.id), "factor": 3}}, format="json")
    assert response.status_code == 200, response.json()
    execution_id = response.json()["executed_operation_id"]

    execution = drive(execution_id)
    assert execution.state == JobState.COMPLETED, execution.error_messages
    output_id = execution.outputs["scaled"]
    listed = {r["id"]: r for r in auth_client.get("/api/resources/").json()}
    assert output_id in listed
    assert listed[output_id]["resource_type"] == "ANN" and listed[output_id]["name"] == "scale.scaled.tsv"
    stored = Resource.objects.get(pk=output_id)
    assert stored.parent_operation_id == execution.id and stored.is_active


@pytest.mark.django_db
def test_user_cancel_reaches_the_engine(wes_settings: Path, settings, tmp_path: Path, auth_client,
                                        django_capture_on_commit_callbacks):
    from mev.jobs.models import ExecutedOperation, JobState
    from mev.operations.services import operation_ingest_folder

    settings.MEV_JOBS_DIR = tmp_path / "jobs"
    settings.MEV_OPERATIONS_DIR = tmp_path / "ops"
    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLES / "wes_cwl_sleep", bundle)
    operation = operation_ingest_folder(folder=bundle)[0]
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client.post("/api/operations/run/", {
            "operation_id": str(operation.id), "job_name": "nap", "inputs": {"seconds": 600}}, format="json")
    assert response.status_code == 200, response.json()
    execution = ExecutedOperation.objects.get(pk=response.json()["executed_operation_id"])
    assert execution.job_id.startswith("run-"), (execution.state, execution.error_messages)

    assert auth_client.post(f"/api/executed-operations/{execution.id}/cancel/").status_code == 200
    execution.refresh_from_db()
    assert execution.state == JobState.CANCELED
    status = _poll_until(WesRunner(), execution.job_id, execution.runner_state,
                         {RunPhase.CANCELED, RunPhase.FAILED, RunPhase.SUCCEEDED}, timeout=90)
    assert status.phase == RunPhase.CANCELED
