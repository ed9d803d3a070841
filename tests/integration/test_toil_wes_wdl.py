"""WDL through a real GA4GH WES engine: Toil's `toil server` on loopback, running `toil-wdl-runner`.

Two facts of Toil 9.6 (the pinned, and latest, release) shape this file:

- Its WES server cannot run WDL as released. With a local job store it always passes `--outdir=<dir>`
  to the runner (server/wes/tasks.py, `sort_options`), and toil-wdl-runner refuses every CWL option:
  "toil-wdl-runner: error: CWL options like those populating outdir are not allowed on the command
  line." `test_stock_toil_wes_refuses_wdl` pins that (and that the user is shown the engine's line).
  The other tests run a second server whose PATH starts with deploy/toil/ (a `toil-wdl-runner` wrapper that hands
  that directory over as the WDL runner's own `--wdlOutputDirectory=<dir>` and execs the real runner):
  the operator workaround a WDL-on-Toil deployment needs until Toil is fixed. Everything else is Toil's.
- It runs every WDL task command in a Docker or Singularity container (`--container` accepts only
  singularity, docker, auto; a task without a `docker` runtime still goes to Docker), and the machines
  running this suite have neither. So the bundle (tests/integration/bundles/wdl_pick_column, WDL 1.0
  in two files: a workflow calling an imported sub-workflow) has no task; its read_tsv, scatter and
  write_tsv are evaluated by Toil itself.

The runner is driven directly first (outputs in both of toil-wdl-runner's dialects, the failure's
message, per-language engine parameters), then the whole path runs as production does: an upload
through the HTTP API, validation and the job on a real Celery worker and beat (Redis broker), the WES
runner talking to Toil, the output resource downloaded through the API.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from mev.jobs.runners.base import RunnerError, RunPhase, SubmitRequest
from mev.jobs.runners.wes import WesRunner, engine_parameters, error_lines_from_log, outputs_document
from tests.integration.conftest import VENV_BIN, Stack, running_toil_server, wait_until
from tests.integration.test_toil_wes import _poll_until

pytestmark = pytest.mark.integration

BUNDLE = Path(__file__).parent / "bundles" / "wdl_pick_column"
MATRIX = "gene\ts1\ts2\nA\t5\t50\nB\t2\t20\nC\t9\t90\n"
SECOND_COLUMN = "gene\ts2\nA\t50\nB\t20\nC\t90\n"
# Toil's CWL runner needs --no-container here, and its WDL runner exits on that option.
PER_LANGUAGE = {"CWL": {"--no-container": None}, "WDL": {}}

WDL_RUNNER_WRAPPER = Path(__file__).resolve().parents[2] / "deploy" / "toil" / "toil-wdl-runner"


@pytest.fixture(scope="session")
def toil_wdl_server(toil_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`toil server` with the shipped WDL runner wrapper first on its PATH, as a deployment runs it."""
    with running_toil_server(toil_venv, tmp_path_factory.mktemp("toil-wdl"),
                             path_first=(WDL_RUNNER_WRAPPER.parent,)) as server:
        yield server


def _spec() -> dict[str, Any]:
    return json.loads((BUNDLE / "operation_spec.json").read_text())


def _out_of_bounds_message() -> str:
    """What Toil tells the user when `column` is past the table: miniwdl's error at the index."""
    lines = (BUNDLE / "lib" / "columns.wdl").read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if "row[column]" in line)
    column = lines[number - 1].index("column]") + 1
    return f"(lib/columns.wdl Ln {number} Col {column}) Array index out of bounds"


def _submit(tmp_path: Path, column: int) -> tuple[WesRunner, str, SubmitRequest]:
    workdir = tmp_path / "job"
    staged = workdir / "inputs" / str(uuid.uuid4()) / "matrix.tsv"
    staged.parent.mkdir(parents=True)
    staged.write_text(MATRIX)
    request = SubmitRequest(execution_id=str(uuid.uuid4()), operation_spec=_spec(), bundle_dir=BUNDLE,
                            inputs={"PickColumn.counts": str(staged), "PickColumn.column": column}, workdir=workdir)
    runner = WesRunner()
    return runner, runner.submit(request), request


def _engine_outputs_roots(shared: Path, toil: dict[str, Any]) -> list[str]:
    # Toil's --work_dir holds the outputs; in production it sits on the shared volume.
    return [str(shared), str(toil["work_dir"])]


def _configure(settings, server: dict[str, Any], shared: Path) -> None:
    settings.MEV_WES_URL = server["url"]
    settings.MEV_WES_BASE_PATH = "/ga4gh/wes/v1"
    settings.MEV_WES_FLAVOR = "toil"
    settings.MEV_WES_WORKFLOW_ENGINE_PARAMETERS = json.dumps(PER_LANGUAGE)
    settings.MEV_ENGINE_SHARED_DIR = str(shared)
    settings.MEV_ENGINE_OUTPUT_ROOTS = _engine_outputs_roots(shared, server)
    settings.MEV_ENGINE_S3_PREFIX = ""
    settings.MEV_ENGINE_SUBMIT_GRACE_SECONDS = 60


@pytest.fixture
def wdl_settings(settings, toil_wdl_server, tmp_path: Path) -> Path:
    shared = tmp_path / "shared"
    shared.mkdir()
    _configure(settings, toil_wdl_server, shared)
    return shared


def test_stock_toil_wes_refuses_wdl(settings, toil_server, tmp_path: Path):  # noqa: F811
    shared = tmp_path / "shared"
    shared.mkdir()
    _configure(settings, toil_server, shared)
    runner, job_id, request = _submit(tmp_path, column=2)
    status = _poll_until(runner, job_id, request.runner_state, {RunPhase.SUCCEEDED, RunPhase.FAILED}, timeout=120)
    assert status.phase == RunPhase.FAILED and status.detail == "EXECUTOR_ERROR"
    assert status.error_messages[0] == "The workflow failed."
    assert status.error_messages[-1] == ("toil-wdl-runner: error: CWL options like those populating outdir are not "
                                         "allowed on the command line.")
    record = requests.get(f"{request.runner_state['base_url']}/runs/{job_id}", timeout=10).json()
    command = " ".join(record["run_log"]["cmd"])
    assert command.startswith("toil-wdl-runner ") and " --outdir=" in command


def test_wdl_run_end_to_end(wdl_settings: Path, tmp_path: Path):
    runner, job_id, request = _submit(tmp_path, column=2)
    state = request.runner_state
    assert job_id.startswith("run-") and state["workflow_type"] == "WDL"

    status = _poll_until(runner, job_id, state, {RunPhase.SUCCEEDED, RunPhase.FAILED}, timeout=240)
    assert status.phase == RunPhase.SUCCEEDED, status.error_messages

    record = requests.get(f"{state['base_url']}/runs/{job_id}", timeout=10).json()
    assert record["request"]["workflow_type"] == "WDL" and record["request"]["workflow_url"] == "main.wdl"
    # The WDL runner got only the WDL options (CWL's --no-container would have stopped it).
    assert record["request"]["workflow_engine_parameters"] in ({}, "{}")
    # Toil's own `outputs` only lists its output directory: no output names, no scalar.
    assert "PickColumn.rows" not in record["outputs"] and "PickColumn.picked" not in record["outputs"]

    result = runner.collect(job_id, runner_state=state, workdir=request.workdir)
    assert set(result.outputs) == {"PickColumn.picked", "PickColumn.rows"}
    assert result.outputs["PickColumn.rows"] == 3
    picked = Path(result.outputs["PickColumn.picked"])
    assert request.workdir.resolve() in picked.resolve().parents
    assert picked.read_text() == SECOND_COLUMN
    assert result.metrics["exit_code"] == 0
    assert not Path(next(iter(state["staged_inputs"].values()))).exists()  # released once the run is over
    assert runner.collect(job_id, runner_state=state, workdir=request.workdir).outputs == result.outputs


def test_wdl_outputs_in_the_miniwdl_dialect(wdl_settings: Path, settings, tmp_path: Path):
    settings.MEV_WES_WORKFLOW_ENGINE_PARAMETERS = {"cwl": {"--no-container": None},
                                                   "wdl": {"--wdlOutputDialect": "miniwdl"}}
    runner, job_id, request = _submit(tmp_path, column=1)
    status = _poll_until(runner, job_id, request.runner_state, {RunPhase.SUCCEEDED, RunPhase.FAILED}, timeout=240)
    assert status.phase == RunPhase.SUCCEEDED, status.error_messages
    stdout, _ = runner.logs(job_id, runner_state=request.runner_state)
    assert set(json.loads(stdout)) == {"dir", "outputs"}  # the option reached toil-wdl-runner
    result = runner.collect(job_id, runner_state=request.runner_state, workdir=request.workdir)
    assert result.outputs["PickColumn.rows"] == 3
    assert Path(result.outputs["PickColumn.picked"]).read_text() == "gene\ts1\nA\t5\nB\t2\nC\t9\n"


def test_failing_wdl_run_reports_the_engines_message(wdl_settings: Path, tmp_path: Path):
    runner, job_id, request = _submit(tmp_path, column=7)
    status = _poll_until(runner, job_id, request.runner_state, {RunPhase.SUCCEEDED, RunPhase.FAILED, RunPhase.CANCELED},
                         timeout=240)
    assert status.phase == RunPhase.FAILED and status.detail == "EXECUTOR_ERROR"
    assert status.error_messages == ["The workflow failed.", _out_of_bounds_message()]
    # A failed run's outputs are not fetched, and collecting it still gives its log and exit code.
    result = runner.collect(job_id, runner_state=request.runner_state, workdir=request.workdir)
    assert result.metrics["exit_code"] != 0 and "Array index out of bounds" in result.stderr_tail
    assert not (request.workdir / "outputs").exists()


# --------------------------------------------------------------------------------------------------
# The helpers behind it, on the edge cases a real run does not produce.


def test_engine_parameters_flat_or_per_language(settings):
    settings.MEV_WES_WORKFLOW_ENGINE_PARAMETERS = {"--no-container": None}
    assert engine_parameters("CWL") == engine_parameters("WDL") == {"--no-container": None}
    settings.MEV_WES_WORKFLOW_ENGINE_PARAMETERS = '{"CWL": {"--no-container": null}}'
    assert engine_parameters("CWL") == {"--no-container": None} and engine_parameters("WDL") == {}
    settings.MEV_WES_WORKFLOW_ENGINE_PARAMETERS = {"WDL": "--no-container"}
    with pytest.raises(RunnerError, match=r"\['WDL'\] must be a JSON object"):
        engine_parameters("WDL")
    settings.MEV_WES_WORKFLOW_ENGINE_PARAMETERS = "[]"
    with pytest.raises(RunnerError, match="must be a JSON object"):
        engine_parameters("CWL")


def test_outputs_document_shapes():
    assert outputs_document('{"W.n": 3}\n') == {"W.n": 3}
    assert outputs_document('{"dir": "/o", "outputs": {"W.n": 3}}') == {"W.n": 3}
    assert outputs_document('a tool wrote this\n{"W.n": 3}\n') == {"W.n": 3}
    assert outputs_document("") is None and outputs_document("not json\n[1]") is None


def test_wdl_error_fences_win_over_the_log_tail():
    fence = "\U0001f6a8" * 3
    stderr = (f"[2026] [C] [toil.wdl.wdltoil] Could not run workflow node because:\n\t\n\t{fence}\n"
              f"\t(main.wdl Ln 3 Col 1) Array index out of bounds\n\t{fence}\n\t\n"
              f"\n{fence}\n(main.wdl Ln 3 Col 1) Array index out of bounds\n{fence}\n"
              "Log from job follows:\n=========>\n<=========\n")
    assert error_lines_from_log(stderr) == ["(main.wdl Ln 3 Col 1) Array index out of bounds"]


# --------------------------------------------------------------------------------------------------
# The whole path: HTTP API (gunicorn) -> Celery worker and beat on Redis -> WES runner -> Toil.


@pytest.fixture
def wes_stack(stack: Stack, toil_wdl_server, tmp_path: Path) -> Iterator[tuple[Stack, str]]:
    """gunicorn, a Celery worker and beat, all configured for the Toil WES server."""
    shared = tmp_path / "engine-shared"
    shared.mkdir()
    stack.env.update({
        "MEV_WES_URL": str(toil_wdl_server["url"]),
        "MEV_WES_WORKFLOW_ENGINE_PARAMETERS": json.dumps(PER_LANGUAGE),
        "MEV_ENGINE_SHARED_DIR": str(shared),
        "MEV_ENGINE_OUTPUT_ROOTS": ",".join(_engine_outputs_roots(shared, toil_wdl_server)),
        "MEV_ENGINE_STARTUP_CHECK": "0",
    })
    stack.spawn("celery", [str(VENV_BIN / "celery"), "-A", "mev", "worker", "--pool=solo", "--loglevel=INFO",
                           "--without-gossip", "--without-mingle"])
    wait_until(lambda: "ready." in stack.log("celery"), timeout=60, what="celery worker",
               log=stack.logs / "celery.log")
    stack.spawn("beat", [str(VENV_BIN / "celery"), "-A", "mev", "beat", "--loglevel=INFO",
                         "--schedule", str(stack.data_dir / "celerybeat-schedule")])
    yield stack, stack.gunicorn_on_loopback()


def _until(fetch, done, *, timeout: float, what: str, stack: Stack) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} after {timeout}s: {value}\n{stack.log('celery')[-4000:]}")
        time.sleep(0.5)


def test_wdl_operation_through_api_celery_and_toil(wes_stack: tuple[Stack, str], settings):
    from mev.operations.services import operation_ingest_folder
    from mev.users.tokens import token_pair_for
    from tests.factories import UserFactory

    stack, url = wes_stack
    settings.MEV_OPERATIONS_DIR = stack.data_dir / "operations"  # where the worker looks for bundles
    operation = operation_ingest_folder(folder=BUNDLE)[0]
    assert operation.mode == "wes"
    user = UserFactory()
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token_pair_for(user)['access']}"

    uploaded = api.post(f"{url}/api/resources/upload/", files={"datafile": ("matrix.tsv", MATRIX.encode())},
                        timeout=30)
    assert uploaded.status_code == 201, uploaded.text
    resource_id = uploaded.json()["id"]
    patched = api.patch(f"{url}/api/resources/{resource_id}/", json={"resource_type": "MTX", "file_format": "tsv"},
                        timeout=30)
    assert patched.status_code in (200, 202), patched.text
    typed = _until(lambda: api.get(f"{url}/api/resources/{resource_id}/", timeout=10).json(),
                   lambda body: body["status"] != "Validating...",
                   timeout=60, what="input never validated", stack=stack)
    assert typed["resource_type"] == "MTX" and typed["status"] == "", typed["status"]

    def run(job_name: str, column: int) -> tuple[dict[str, Any], list[int]]:
        response = api.post(f"{url}/api/operations/run/", timeout=30, json={
            "operation_id": str(operation.id), "job_name": job_name,
            "inputs": {"PickColumn.counts": resource_id, "PickColumn.column": column}})
        assert response.status_code == 200, response.text
        execution_id = response.json()["executed_operation_id"]
        codes: list[int] = []

        def poll() -> requests.Response:
            answer = api.get(f"{url}/api/executed-operations/{execution_id}/", timeout=10)
            codes.append(answer.status_code)
            return answer

        final = _until(poll, lambda answer: answer.status_code not in (204, 208), timeout=300,
                       what=f"{job_name} still running", stack=stack)
        assert final.status_code == 200, final.text
        return final.json(), codes

    started = time.monotonic()
    body, codes = run("pick", 2)
    elapsed = time.monotonic() - started
    assert body["job_failed"] is False, (body["error_messages"], stack.log("celery")[-4000:])
    assert set(codes[:-1]) <= {204, 208} and codes[0] in (204, 208)
    assert body["outputs"]["PickColumn.rows"] == 3
    output_id = body["outputs"]["PickColumn.picked"]
    output = api.get(f"{url}/api/resources/{output_id}/", timeout=10).json()
    assert output["resource_type"] == "MTX" and output["name"].startswith("pick.") and output["status"] == ""
    downloaded = api.get(f"{url}/api/resources/download/{output_id}/", timeout=30)
    assert downloaded.status_code == 200
    # The engine was given the validated (standardized) copy of the input, whose header names no index
    # column; the rows are the second column's, as the direct run shows.
    header, *rows = downloaded.content.decode().splitlines()
    assert header.split("\t")[1:] == ["s2"] and rows == SECOND_COLUMN.splitlines()[1:]
    print(f"WDL run -> COMPLETED through API, Celery and Toil WES in {elapsed:.1f}s")

    body, _ = run("pick-missing", 7)
    assert body["job_failed"] is True
    assert body["error_messages"] == ["The workflow failed.", _out_of_bounds_message()], body["error_messages"]
    listed = api.get(f"{url}/api/resources/", timeout=10).json()
    assert {r["id"] for r in listed} == {resource_id, output_id}  # the failed run stored nothing
