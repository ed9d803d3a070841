"""The Cromwell runner against a fake Cromwell server.

Cromwell's server is a JVM service that cannot run on these machines, so a small HTTP server on
loopback (`FakeCromwell`, a ThreadingHTTPServer in a thread) stands in for it. It follows Cromwell's
documented REST API (api-contract §6.1): multipart submission with only the known part names (any
other gets 400 "Unexpected body part name"), 201 {"id", "status": "Submitted"}, the transient 404
"Unrecognized workflow ID" while the metadata summary lags behind a submission, abort answering 404
for a finished workflow, `failures` with nested `causedBy`, `outputs` keyed by fully qualified names
with files as paths in the engine's own storage, and `/engine/v1/version`.
"""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from mev.jobs.runners.base import RunnerError, RunPhase, SubmitRequest, get_runner
from mev.jobs.runners.cromwell import CromwellRunner, dependencies_zip, failure_messages
from mev.jobs.runners.http import EngineClient

BUNDLES = Path(__file__).parent / "bundles"
BUNDLE = BUNDLES / "cromwell_scale"
COUNTS = "gene\tcount\nA\t5\nB\t2\nC\t9\n"
PARTS = {"workflowSource", "workflowUrl", "workflowInputs", "workflowOptions", "labels", "workflowDependencies",
         "workflowType", "workflowTypeVersion", "workflowRoot", "workflowOnHold", "requestedWorkflowId"}


def parse_multipart(content_type: str, body: bytes) -> dict[str, list[tuple[str | None, bytes]]]:
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    parts: dict[str, list[tuple[str | None, bytes]]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        parts.setdefault(name, []).append((part.get_filename(), part.get_payload(decode=True)))
    return parts


class FakeCromwell:
    """Cromwell's documented behaviour, scripted per workflow by the test.

    Each submitted workflow first answers 404 for `hidden_polls` status reads (the summary lag), then
    walks `statuses` one status read at a time and stays on the last. `run` (set by the test) is
    called at submission with the workflow record and may set outputs, failures and calls.
    """

    def __init__(self, storage: Path) -> None:
        self.storage = storage
        self.workflows: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.hidden_polls = 1
        self.statuses = ["Submitted", "Running", "Succeeded"]
        self.run: Callable[[dict[str, Any]], None] | None = None
        self.fail_next: list[int] = []  # status codes to answer (then forget) before serving normally
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                fake.handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                fake.handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # -- the API ----------------------------------------------------------------------------------

    def handle(self, handler: Any, method: str) -> None:
        url = urlparse(handler.path)
        self.requests.append((method, handler.path))
        if self.fail_next:
            handler._send(self.fail_next.pop(0), {"status": "error", "message": "temporarily unavailable"})
            return
        parts = url.path.strip("/").split("/")
        if url.path == "/engine/v1/version":
            return handler._send(200, {"cromwell": "87"})
        if parts[:3] != ["api", "workflows", "v1"]:
            return handler._send(404, {"status": "fail", "message": "not found"})
        if method == "POST" and len(parts) == 3:
            length = int(handler.headers.get("Content-Length", 0))
            return self.submit(handler, handler.headers.get("Content-Type", ""), handler.rfile.read(length))
        if len(parts) != 5:
            return handler._send(404, {"status": "fail", "message": "not found"})
        workflow_id, route = parts[3], parts[4]
        try:
            uuid.UUID(workflow_id)
        except ValueError:
            return handler._send(400, {"status": "fail", "message": f"Invalid workflow ID: '{workflow_id}'."})
        workflow = self.workflows.get(workflow_id)
        unknown = {"status": "fail", "message": f"Unrecognized workflow ID: {workflow_id}"}
        if workflow is None:
            return handler._send(404, unknown)
        if method == "POST" and route == "abort":
            if workflow["status"] in {"Succeeded", "Failed", "Aborted"}:
                return handler._send(404, {"status": "error", "message":
                                           f"Couldn't abort {workflow_id} because no workflow with that ID is in progress"})
            workflow["status"] = "Aborted" if workflow["status"] in {"Submitted", "On Hold"} else "Aborting"
            workflow["aborted"] = True
            return handler._send(200, {"id": workflow_id, "status": workflow["status"]})
        if route == "status":
            if workflow["hidden"] > 0:
                workflow["hidden"] -= 1
                return handler._send(404, unknown)
            self.advance(workflow)
            return handler._send(200, {"id": workflow_id, "status": workflow["status"]})
        if workflow["hidden"] > 0:
            return handler._send(404, unknown)
        if route == "outputs":
            return handler._send(200, {"id": workflow_id, "outputs": workflow["outputs"]})
        if route == "metadata":
            query = parse_qs(url.query)
            document = {"id": workflow_id, "workflowName": "ScaleCounts", "status": workflow["status"],
                        "submission": "2026-01-01T00:00:00.000Z", "start": "2026-01-01T00:00:01.000Z",
                        "end": "2026-01-01T00:00:08.500Z", "outputs": workflow["outputs"],
                        "labels": workflow["labels"], "failures": workflow["failures"], "calls": workflow["calls"],
                        "inputs": workflow["inputs"], "submittedFiles": {"workflow": workflow["source"]}}
            if not workflow["failures"]:
                document.pop("failures")
            if query.get("includeKey"):
                document = {k: v for k, v in document.items() if k in set(query["includeKey"]) | {"id"}}
            for key in query.get("excludeKey", []):
                document.pop(key, None)
            return handler._send(200, document)
        return handler._send(404, unknown)

    def submit(self, handler: Any, content_type: str, body: bytes) -> None:
        if not content_type.startswith("multipart/form-data"):
            return handler._send(415, {"status": "fail", "message": "Expected multipart/form-data"})
        parts = parse_multipart(content_type, body)
        unexpected = set(parts) - PARTS
        if unexpected:
            return handler._send(400, {"status": "fail", "message": f"Unexpected body part name: {sorted(unexpected)[0]}"})
        if ("workflowSource" in parts) == ("workflowUrl" in parts):
            return handler._send(400, {"status": "fail", "message": "Exactly one of workflowSource or workflowUrl"})
        workflow_id = str(uuid.uuid4())

        def text(name: str) -> str | None:
            return parts[name][0][1].decode() if name in parts else None

        workflow = {
            "id": workflow_id, "parts": parts, "source": text("workflowSource"),
            "inputs": json.loads(text("workflowInputs") or "{}"), "labels": json.loads(text("labels") or "{}"),
            "options": json.loads(text("workflowOptions") or "{}"),
            "dependencies": parts["workflowDependencies"][0][1] if "workflowDependencies" in parts else None,
            "type": text("workflowType"), "type_version": text("workflowTypeVersion"),
            "status": "Submitted", "script": list(self.statuses), "hidden": self.hidden_polls,
            "outputs": {}, "failures": [], "calls": {}, "aborted": False,
        }
        self.workflows[workflow_id] = workflow
        if self.run is not None:
            self.run(workflow)
        handler._send(201, {"id": workflow_id, "status": "Submitted"})

    @staticmethod
    def advance(workflow: dict[str, Any]) -> None:
        if workflow["aborted"]:
            workflow["status"] = "Aborted"
            return
        if workflow["script"]:
            workflow["status"] = workflow["script"].pop(0)

    def __enter__(self) -> FakeCromwell:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def scale_like_the_wdl(fake: FakeCromwell) -> Callable[[dict[str, Any]], None]:
    """Do what main.wdl does, writing into the fake engine's own execution directory."""

    def run(workflow: dict[str, Any]) -> None:
        call_dir = fake.storage / "cromwell-executions" / "ScaleCounts" / workflow["id"] / "call-Scale" / "execution"
        call_dir.mkdir(parents=True)
        lines = Path(workflow["inputs"]["ScaleCounts.counts"]).read_text().splitlines()
        factor = int(workflow["inputs"].get("ScaleCounts.factor", 2))
        rows = [lines[0]] + [f"{n}\t{int(c) * factor}" for n, c in (line.split("\t") for line in lines[1:])]
        (call_dir / "scaled.tsv").write_text("\n".join(rows) + "\n")
        (call_dir / "stdout").write_text("scaled 3 rows\n")
        (call_dir / "stderr").write_text("awk: a warning on stderr\n")
        workflow["outputs"] = {"ScaleCounts.scaled": str(call_dir / "scaled.tsv"), "ScaleCounts.rows": len(rows) - 1}
        workflow["calls"] = {"ScaleCounts.Scale": [{
            "shardIndex": -1, "attempt": 1, "executionStatus": "Done", "returnCode": 0,
            "stdout": str(call_dir / "stdout"), "stderr": str(call_dir / "stderr"), "commandLine": "awk ...",
        }]}

    return run


@pytest.fixture
def cromwell(settings, tmp_path: Path) -> Iterator[FakeCromwell]:
    storage = tmp_path / "engine"
    storage.mkdir()
    with FakeCromwell(storage) as fake:
        settings.MEV_CROMWELL_URL = fake.url
        settings.MEV_CROMWELL_OPTIONS = ""
        settings.MEV_ENGINE_SHARED_DIR = str(tmp_path / "shared")
        settings.MEV_ENGINE_S3_PREFIX = ""
        settings.MEV_ENGINE_OUTPUT_ROOTS = f"{tmp_path / 'shared'},{storage}"
        settings.MEV_ENGINE_SUBMIT_GRACE_SECONDS = 60
        settings.MEV_ENGINE_TIMEOUT_SECONDS = 5
        fake.run = scale_like_the_wdl(fake)
        yield fake


def _request(tmp_path: Path, *, factor: int = 3) -> SubmitRequest:
    workdir = tmp_path / "job"
    staged = workdir / "inputs" / str(uuid.uuid4()) / "counts.tsv"
    staged.parent.mkdir(parents=True)
    staged.write_text(COUNTS)
    spec = json.loads((BUNDLE / "operation_spec.json").read_text())
    return SubmitRequest(execution_id=str(uuid.uuid4()), operation_spec=spec, bundle_dir=BUNDLE,
                         inputs={"ScaleCounts.counts": str(staged), "ScaleCounts.factor": factor}, workdir=workdir)


def _runner() -> CromwellRunner:
    # No sleeping between retries in unit tests.
    from django.conf import settings

    return CromwellRunner(EngineClient(settings.MEV_CROMWELL_URL, sleep=lambda _: None))


def _poll_until(runner, job_id, state, phases, *, limit=20):
    for _ in range(limit):
        status = runner.poll(job_id, runner_state=state)
        if status.phase in phases:
            return status
    raise AssertionError(f"still {status.phase}")


# --------------------------------------------------------------------------------------------------


def test_registered_under_its_mode():
    assert isinstance(get_runner("cromwell"), CromwellRunner)


def test_submission_is_multipart_with_every_documented_part(cromwell, settings, tmp_path):
    settings.MEV_CROMWELL_OPTIONS = '{"final_workflow_outputs_dir": "/data/out", "read_from_cache": false}'
    request = _request(tmp_path)
    workflow_id = _runner().submit(request)

    workflow = cromwell.workflows[workflow_id]
    assert workflow["source"] == (BUNDLE / "main.wdl").read_text()
    assert workflow["parts"]["workflowSource"][0][0] == "main.wdl"
    assert workflow["type"] == "WDL" and workflow["type_version"] == "1.0"
    assert workflow["labels"] == {"mev-execution-id": request.execution_id}
    assert workflow["options"] == {"final_workflow_outputs_dir": "/data/out", "read_from_cache": False}
    # Imports travel as a zip that keeps their relative paths.
    with zipfile.ZipFile(io.BytesIO(workflow["dependencies"])) as archive:
        assert archive.namelist() == ["tasks/scale.wdl"]
        assert archive.read("tasks/scale.wdl").decode() == (BUNDLE / "tasks" / "scale.wdl").read_text()
    # Inputs keep their fully qualified names; the file was staged into the shared directory.
    staged = Path(workflow["inputs"]["ScaleCounts.counts"])
    assert workflow["inputs"]["ScaleCounts.factor"] == 3
    assert staged.parent.parent.parent == Path(settings.MEV_ENGINE_SHARED_DIR).resolve() / request.execution_id
    assert staged.read_text() == COUNTS
    assert request.runner_state["workflow_id"] == workflow_id
    assert request.runner_state["base_url"] == cromwell.url


def test_no_dependencies_part_without_imports(cromwell, tmp_path):
    cromwell.run = None
    bundle = tmp_path / "flat"
    bundle.mkdir()
    (bundle / "main.wdl").write_text("version 1.0\nworkflow W { output { Int x = 1 } }\n")
    assert dependencies_zip(bundle) is None
    request = SubmitRequest(execution_id="e1", operation_spec={"inputs": {}, "outputs": {}}, bundle_dir=bundle,
                            inputs={}, workdir=tmp_path / "job")
    workflow_id = _runner().submit(request)
    assert "workflowDependencies" not in cromwell.workflows[workflow_id]["parts"]
    assert "workflowOptions" not in cromwell.workflows[workflow_id]["parts"]


def test_submission_refused_becomes_a_runner_error(cromwell, tmp_path):
    cromwell.fail_next = [400]
    with pytest.raises(RunnerError) as caught:
        _runner().submit(_request(tmp_path))
    assert "temporarily unavailable" in str(caught.value) and not caught.value.transient


def test_transient_404_after_submit_then_success_and_outputs_fetched(cromwell, tmp_path):
    cromwell.hidden_polls = 2
    request = _request(tmp_path)
    runner = _runner()
    workflow_id = runner.submit(request)
    state = request.runner_state

    assert runner.poll(workflow_id, runner_state=state).phase == RunPhase.SUBMITTED  # 404, within grace
    assert runner.poll(workflow_id, runner_state=state).phase == RunPhase.SUBMITTED  # 404 again
    assert runner.poll(workflow_id, runner_state=state).phase == RunPhase.SUBMITTED  # "Submitted"
    assert runner.poll(workflow_id, runner_state=state).phase == RunPhase.RUNNING
    assert runner.poll(workflow_id, runner_state=state).phase == RunPhase.SUCCEEDED

    workdir = request.workdir
    result = runner.collect(workflow_id, runner_state=state, workdir=workdir)
    scaled = Path(result.outputs["ScaleCounts.scaled"])
    assert workdir.resolve() in scaled.resolve().parents
    assert scaled.read_text() == "gene\tcount\nA\t15\nB\t6\nC\t27\n"
    assert result.outputs["ScaleCounts.rows"] == 3
    assert "scaled 3 rows" in result.stdout_tail and "a warning on stderr" in result.stderr_tail
    assert result.metrics == {"wall_seconds": 7.5, "exit_code": 0}
    assert not Path(state["shared_inputs_dir"]).exists()  # the run's shared inputs are released
    # A second collect (a retried finalization) reuses the fetched file.
    again = runner.collect(workflow_id, runner_state=state, workdir=workdir)
    assert again.outputs["ScaleCounts.scaled"] == str(scaled)
    assert runner.logs(workflow_id, runner_state=state)[0].endswith("scaled 3 rows\n")


def test_404_past_the_grace_window_is_a_lost_run(cromwell, settings, tmp_path):
    cromwell.hidden_polls = 100
    request = _request(tmp_path)
    runner = _runner()
    workflow_id = runner.submit(request)
    assert runner.poll(workflow_id, runner_state=request.runner_state).phase == RunPhase.SUBMITTED
    settings.MEV_ENGINE_SUBMIT_GRACE_SECONDS = 0
    status = runner.poll(workflow_id, runner_state=request.runner_state)
    assert status.phase == RunPhase.FAILED and status.error_messages == ["The engine has no record of this run."]
    lost = runner.poll(str(uuid.uuid4()), runner_state={"submitted_at": time.time() - 3600})
    assert lost.phase == RunPhase.FAILED


def test_failures_with_nested_caused_by_become_deduplicated_messages(cromwell, tmp_path):
    def fail(workflow):
        workflow["failures"] = [{
            "message": "Workflow failed",
            "causedBy": [
                {"message": "Job ScaleCounts.Scale:NA:1 exited with return code 1.",
                 "causedBy": [{"message": "awk: cannot open counts.tsv", "causedBy": []}]},
                {"message": "Job ScaleCounts.Scale:NA:1 exited with return code 1.", "causedBy": []},
            ],
        }]
        workflow["calls"] = {"ScaleCounts.Scale": [{"shardIndex": -1, "attempt": 1, "returnCode": 1,
                                                   "stdout": "/nonexistent/stdout", "stderr": "/nonexistent/stderr"}]}

    cromwell.run = fail
    cromwell.hidden_polls = 0
    cromwell.statuses = ["Running", "Failed"]
    request = _request(tmp_path)
    runner = _runner()
    workflow_id = runner.submit(request)
    status = _poll_until(runner, workflow_id, request.runner_state, {RunPhase.FAILED, RunPhase.SUCCEEDED})
    assert status.phase == RunPhase.FAILED
    assert status.error_messages == ["Workflow failed", "Job ScaleCounts.Scale:NA:1 exited with return code 1.",
                                     "awk: cannot open counts.tsv"]
    result = runner.collect(workflow_id, runner_state=request.runner_state, workdir=request.workdir)
    assert result.metrics["exit_code"] == 1 and result.stderr_tail == ""


def test_failure_messages_walks_any_shape():
    assert failure_messages(None) == []
    assert failure_messages({"message": " a ", "causedBy": {"message": "b"}}) == ["a", "b"]


def test_abort_a_running_workflow_then_abort_again_once_finished(cromwell, tmp_path):
    cromwell.hidden_polls = 0
    cromwell.statuses = ["Running"]
    request = _request(tmp_path)
    runner = _runner()
    workflow_id = runner.submit(request)
    assert runner.poll(workflow_id, runner_state=request.runner_state).phase == RunPhase.RUNNING
    runner.cancel(workflow_id, runner_state=request.runner_state)
    assert cromwell.workflows[workflow_id]["status"] == "Aborting"
    assert runner.poll(workflow_id, runner_state=request.runner_state).phase == RunPhase.CANCELED
    runner.cancel(workflow_id, runner_state=request.runner_state)  # 404: already finished, that is fine
    assert ("POST", f"/api/workflows/v1/{workflow_id}/abort") in cromwell.requests
    runner.cancel("", runner_state={})  # never submitted: nothing to do
    with pytest.raises(RunnerError):
        runner.cancel("not-a-uuid", runner_state=request.runner_state)  # 400 for a malformed id


def test_5xx_and_connection_errors_are_retried_then_transient(cromwell, tmp_path):
    cromwell.hidden_polls = 0
    request = _request(tmp_path)
    runner = _runner()
    workflow_id = runner.submit(request)
    cromwell.fail_next = [503, 502]
    assert runner.poll(workflow_id, runner_state=request.runner_state).phase == RunPhase.SUBMITTED
    cromwell.fail_next = [500, 500, 500]
    with pytest.raises(RunnerError) as caught:
        runner.poll(workflow_id, runner_state=request.runner_state)
    assert caught.value.transient and "500" in str(caught.value)

    waits: list[float] = []
    unreachable = CromwellRunner(EngineClient("http://127.0.0.1:9", sleep=waits.append, tries=3))
    with pytest.raises(RunnerError) as caught:
        unreachable.poll(workflow_id, runner_state={"submitted_at": time.time()})
    assert caught.value.transient and waits == [0.5, 1.0]


def test_a_submission_lost_in_flight_is_not_sent_again(cromwell, tmp_path):
    def crash(workflow):
        raise RuntimeError("the engine dropped the connection after reading the request")

    cromwell.run = crash
    with pytest.raises(RunnerError) as caught:
        _runner().submit(_request(tmp_path))
    assert caught.value.transient
    assert [r for r in cromwell.requests if r[0] == "POST"] == [("POST", "/api/workflows/v1")]


def test_backoff_is_bounded():
    waits: list[float] = []
    client = EngineClient("http://127.0.0.1:9", tries=5, sleep=waits.append, timeout=1)
    with pytest.raises(RunnerError):
        client.get("x")
    assert waits == [0.5, 1.0, 2.0, 2.0]


def test_health(cromwell, settings):
    assert CromwellRunner().health() == {"ok": True, "version": "cromwell 87"}
    settings.MEV_CROMWELL_URL = "http://127.0.0.1:9"
    down = CromwellRunner().health(timeout=1, tries=1)
    assert down["ok"] is False and "could not connect" in down["error"]


# --------------------------------------------------------------------------------------------------
# Through the jobs app


@pytest.mark.django_db
def test_cromwell_job_through_the_jobs_app(cromwell, settings, tmp_path, user, auth_client,
                                           django_capture_on_commit_callbacks, drive):
    from mev.jobs.models import JobState
    from mev.jobs.staging import store_file
    from mev.operations.services import operation_ingest_folder
    from mev.resources.models import Resource

    settings.MEV_SUBMIT_GRACE_SECONDS = 0
    operation = operation_ingest_folder(folder=BUNDLE)[0]
    resource = Resource(owner=user, name="counts.tsv", resource_type="ANN", file_format="tsv", is_active=True)
    source = tmp_path / "counts.tsv"
    source.write_text(COUNTS)
    resource.datafile, resource.size, resource.checksum = store_file(path=source, owner_id=user.pk,
                                                                     resource_id=resource.id, name="counts.tsv")
    resource.save()
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client.post("/api/operations/run/", {
            "operation_id": str(operation.id), "job_name": "scale",
            "inputs": {"ScaleCounts.counts": str(resource.id), "ScaleCounts.factor": 3}}, format="json")
    assert response.status_code == 200, response.json()
    execution = drive(response.json()["executed_operation_id"])
    assert execution.state == JobState.COMPLETED, execution.error_messages
    assert execution.outputs["ScaleCounts.rows"] == 3
    listed = {r["id"]: r for r in auth_client.get("/api/resources/").json()}
    output = listed[execution.outputs["ScaleCounts.scaled"]]
    assert output["resource_type"] == "ANN" and output["name"] == "scale.scaled.tsv"
    workflow = next(iter(cromwell.workflows.values()))
    assert workflow["labels"] == {"mev-execution-id": str(execution.id)}
