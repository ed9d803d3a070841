"""The WES runner against a fake GA4GH WES 1.0 server, for what the real Toil test cannot show:
Cromwell's WES dialect (201 on submit, one attachment and no workflow_url, 403/404 on cancel,
outputs as a map of paths), error bodies `{"msg", "status_code"}`, every state of the mapping,
the transient 404, logs served as text or as run-relative URLs, and S3 inputs passed as URIs.

The real engine is exercised in tests/integration/test_toil_wes.py (Toil's `toil server`).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from mev.jobs.runners.base import RunnerError, RunPhase, SubmitRequest, get_runner
from mev.jobs.runners.engines import InputStager, fetch_output
from mev.jobs.runners.http import EngineClient
from mev.jobs.runners.wes import WesRunner, error_lines_from_log
from tests.jobs.test_cromwell import parse_multipart

BUNDLES = Path(__file__).parent / "bundles"
COUNTS = "gene\tcount\nA\t5\nB\t2\nC\t9\n"


class FakeWes:
    """A WES 1.0 server; `flavor` picks Toil's or Cromwell's documented differences (§6.3)."""

    def __init__(self, storage: Path, flavor: str = "toil") -> None:
        self.storage = storage
        self.flavor = flavor
        self.runs: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, str]] = []
        self.hidden_polls = 0
        self.states = ["QUEUED", "RUNNING", "COMPLETE"]
        self.outputs: dict[str, Any] = {}
        self.stderr = ""
        self.cancel_answer: int | None = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def send(self, code: int, body: Any, content_type: str = "application/json") -> None:
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                fake.handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                fake.handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.base = "/api/ga4gh/wes/v1" if flavor == "cromwell" else "/ga4gh/wes/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def error(self, handler: Any, code: int, msg: str) -> None:
        handler.send(code, {"msg": msg, "status_code": code})

    def handle(self, handler: Any, method: str) -> None:
        path = urlparse(handler.path).path
        self.requests.append((method, path, handler.headers.get("Content-Type", "")))
        if path.startswith("/toil/wes/v1/logs/"):
            run_id, stream = path.split("/")[-2:]
            return handler.send(200, self.runs[run_id][stream], "text/plain")
        if not path.startswith(self.base):
            return self.error(handler, 404, "Not found")
        route = path[len(self.base):].strip("/").split("/")
        if route == ["service-info"]:
            return handler.send(200, {"workflow_engine_versions": {self.flavor: "9.6.0"}, "version": "1"})
        if route == ["runs"] and method == "POST":
            return self.submit(handler)
        run = self.runs.get(route[1]) if len(route) >= 2 else None
        if run is None:
            return self.error(handler, 404, "The requested workflow run wasn't found.")
        if run["hidden"] > 0 and method == "GET":
            run["hidden"] -= 1
            return self.error(handler, 404, "The requested workflow run wasn't found.")
        if route[2:] == ["status"]:
            if run.pop("cancel_seen", False):
                run["state"] = "CANCELED"  # a few seconds after the cancel, as Toil does
            elif run["state"] == "CANCELING":
                run["cancel_seen"] = True
            elif run["script"]:
                run["state"] = run["script"].pop(0)
            return handler.send(200, {"run_id": run["run_id"], "state": run["state"]})
        if route[2:] == ["cancel"] and method == "POST":
            if self.cancel_answer:
                return self.error(handler, self.cancel_answer, "Run not in progress")
            run["state"] = "CANCELING"
            return handler.send(200, {"run_id": run["run_id"]})
        if route[2:] == []:
            if self.flavor == "toil":
                logs = {"stdout": f"../../../../toil/wes/v1/logs/{run['run_id']}/stdout",
                        "stderr": f"../../../../toil/wes/v1/logs/{run['run_id']}/stderr"}
            else:
                logs = {"stdout": run["stdout"], "stderr": run["stderr"]}
            return handler.send(200, {
                "run_id": run["run_id"], "state": run["state"], "request": run["request"],
                "run_log": {"cmd": ["engine"], "start_time": "2026-01-01T00:00:00Z", "end_time": "2026-01-01T00:00:04Z",
                            "exit_code": 0 if run["state"] == "COMPLETE" else 1, **logs},
                "task_logs": [], "outputs": self.outputs if run["state"] == "COMPLETE" else {}})
        return self.error(handler, 404, "Not found")

    def submit(self, handler: Any) -> None:
        content_type = handler.headers.get("Content-Type", "")
        if not content_type.startswith("multipart/form-data"):
            return self.error(handler, 415, "Unsupported Media Type")
        body = handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
        parts = parse_multipart(content_type, body)
        fields = {k: v[0][1].decode() for k, v in parts.items() if k != "workflow_attachment"}
        attachments = [(name, data) for name, data in parts.get("workflow_attachment", [])]
        if self.flavor == "toil" and "workflow_url" not in fields:
            return self.error(handler, 400, "Missing workflow_url")
        if self.flavor == "cromwell" and "workflow_url" in fields and attachments:
            return self.error(handler, 400, "Only one of workflow_url or workflow_attachment may be given")
        if fields.get("workflow_type") == "BAD":
            return self.error(handler, 400, "Unsupported workflow type: BAD")
        run_id = f"run-{uuid.uuid4().hex}" if self.flavor == "toil" else str(uuid.uuid4())
        self.runs[run_id] = {
            "run_id": run_id, "fields": fields, "attachments": attachments, "state": "QUEUED",
            "script": list(self.states), "hidden": self.hidden_polls,
            "request": {k: fields.get(k) for k in ("workflow_type", "workflow_url")},
            "stdout": "engine stdout\n", "stderr": self.stderr,
        }
        handler.send(200 if self.flavor == "toil" else 201, {"run_id": run_id})

    def __enter__(self) -> FakeWes:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def _configure(settings, fake: FakeWes, tmp_path: Path) -> None:
    settings.MEV_WES_URL = fake.url
    settings.MEV_WES_BASE_PATH = fake.base
    settings.MEV_WES_FLAVOR = fake.flavor
    settings.MEV_WES_WORKFLOW_ENGINE_PARAMETERS = {"--no-container": None} if fake.flavor == "toil" else {}
    settings.MEV_ENGINE_SHARED_DIR = str(tmp_path / "shared")
    settings.MEV_ENGINE_S3_PREFIX = ""
    settings.MEV_ENGINE_OUTPUT_ROOTS = [str(tmp_path / "shared"), str(tmp_path / "engine")]
    settings.MEV_ENGINE_SUBMIT_GRACE_SECONDS = 60


@pytest.fixture
def toil(settings, tmp_path: Path) -> Iterator[FakeWes]:
    with FakeWes(tmp_path / "engine", "toil") as fake:
        _configure(settings, fake, tmp_path)
        yield fake


@pytest.fixture
def cromwell_wes(settings, tmp_path: Path) -> Iterator[FakeWes]:
    with FakeWes(tmp_path / "engine", "cromwell") as fake:
        _configure(settings, fake, tmp_path)
        yield fake


def _runner() -> WesRunner:
    from django.conf import settings

    return WesRunner(EngineClient(settings.MEV_WES_URL.rstrip("/") + settings.MEV_WES_BASE_PATH,
                                  sleep=lambda _: None))


def _cwl_request(tmp_path: Path, **inputs: Any) -> tuple[SubmitRequest, Path]:
    workdir = tmp_path / "job"
    staged = workdir / "inputs" / str(uuid.uuid4()) / "counts.tsv"
    staged.parent.mkdir(parents=True)
    staged.write_text(COUNTS)
    spec = json.loads((BUNDLES / "wes_cwl_scale" / "operation_spec.json").read_text())
    return SubmitRequest(execution_id=str(uuid.uuid4()), operation_spec=spec, bundle_dir=BUNDLES / "wes_cwl_scale",
                         inputs={"counts": str(staged), **inputs}, workdir=workdir), staged


def _wdl_bundle(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    bundle = tmp_path / "wdl"
    bundle.mkdir()
    (bundle / "main.wdl").write_text("version 1.0\nworkflow W { input { File f } output { File o = f } }\n")
    (bundle / "extra.wdl").write_text("version 1.0\n")
    spec = {"inputs": {"W.f": {"converter": "resource.single", "spec": {"attribute_type": "DataResource",
                                                                         "resource_type": "ANN", "many": False}}},
            "outputs": {"W.o": {"converter": "resource.single", "spec": {"attribute_type": "DataResource",
                                                                          "resource_type": "ANN", "many": False}},
                        "W.n": {"converter": "value", "spec": {"attribute_type": "Integer"}}}}
    return bundle, spec


# --------------------------------------------------------------------------------------------------


def test_registered_under_its_mode():
    assert isinstance(get_runner("wes"), WesRunner)


def test_toil_submission_is_multipart_with_attachments_and_url(toil, tmp_path, settings):
    request, staged = _cwl_request(tmp_path, factor=3)
    run_id = _runner().submit(request)
    run = toil.runs[run_id]
    assert toil.requests[-1][2].startswith("multipart/form-data")
    assert run["fields"]["workflow_url"] == "main.cwl"
    assert [name for name, _ in run["attachments"]] == ["main.cwl", "tools/scale.cwl"]
    assert run["fields"]["workflow_type"] == "CWL" and run["fields"]["workflow_type_version"] == "v1.2"
    assert json.loads(run["fields"]["workflow_engine_parameters"]) == {"--no-container": None}
    assert json.loads(run["fields"]["tags"]) == {"mev_execution_id": request.execution_id}
    params = json.loads(run["fields"]["workflow_params"])
    assert params["factor"] == 3
    assert params["counts"]["class"] == "File"
    shared = Path(params["counts"]["path"])
    assert shared.read_text() == COUNTS and shared.stat().st_ino == staged.stat().st_ino  # a hard link
    assert str(shared).startswith(str(Path(settings.MEV_ENGINE_SHARED_DIR).resolve() / request.execution_id))
    assert request.runner_state["run_id"] == run_id


def test_cromwell_wes_gets_one_attachment_no_url_and_201(cromwell_wes, tmp_path):
    bundle, spec = _wdl_bundle(tmp_path)
    staged = tmp_path / "job" / "inputs" / str(uuid.uuid4()) / "f.tsv"
    staged.parent.mkdir(parents=True)
    staged.write_text(COUNTS)
    request = SubmitRequest(execution_id="e1", operation_spec=spec, bundle_dir=bundle, inputs={"W.f": str(staged)},
                            workdir=tmp_path / "job")
    run_id = _runner().submit(request)
    run = cromwell_wes.runs[run_id]
    assert "workflow_url" not in run["fields"]
    assert [name for name, _ in run["attachments"]] == ["main.wdl"]
    assert run["fields"]["workflow_type"] == "WDL" and run["fields"]["workflow_type_version"] == "1.0"
    assert isinstance(json.loads(run["fields"]["workflow_params"])["W.f"], str)  # WDL: plain paths


def test_error_body_becomes_the_runner_error(toil, tmp_path, settings):
    settings.MEV_WES_FLAVOR = "cromwell"  # no workflow_url: Toil refuses with its own message
    request, _ = _cwl_request(tmp_path)
    with pytest.raises(RunnerError) as caught:
        _runner().submit(request)
    assert str(caught.value) == "The engine refused the workflow: Missing workflow_url (HTTP 400)"
    assert not caught.value.transient


@pytest.mark.parametrize(("state", "phase"), [
    ("QUEUED", RunPhase.SUBMITTED), ("INITIALIZING", RunPhase.SUBMITTED), ("PAUSED", RunPhase.SUBMITTED),
    ("RUNNING", RunPhase.RUNNING), ("CANCELING", RunPhase.RUNNING), ("COMPLETE", RunPhase.SUCCEEDED),
    ("EXECUTOR_ERROR", RunPhase.FAILED), ("SYSTEM_ERROR", RunPhase.FAILED), ("CANCELED", RunPhase.CANCELED),
    ("UNKNOWN", RunPhase.FAILED),
])
def test_state_mapping(toil, tmp_path, state, phase):
    toil.states = [state]
    request, _ = _cwl_request(tmp_path)
    runner = _runner()
    run_id = runner.submit(request)
    status = runner.poll(run_id, runner_state=request.runner_state)
    assert status.phase == phase and status.detail == state
    if state == "UNKNOWN":
        assert status.error_messages == ["The engine has no record of this run."]


def test_executor_error_messages_come_from_the_stderr_tail(toil, tmp_path):
    toil.states = ["RUNNING", "EXECUTOR_ERROR"]
    toil.stderr = ("[2026] [MainThread] [I] starting\n[2026] [E] [toil.cwl.cwltoil] Failed command standard error:\n"
                   "\tawk: fatal: cannot open file `x' for reading\n\n[2026] [W] more noise\n")
    request, _ = _cwl_request(tmp_path)
    runner = _runner()
    run_id = runner.submit(request)
    assert runner.poll(run_id, runner_state=request.runner_state).phase == RunPhase.RUNNING
    status = runner.poll(run_id, runner_state=request.runner_state)
    assert status.phase == RunPhase.FAILED
    assert status.error_messages == ["The workflow failed.", "awk: fatal: cannot open file `x' for reading"]


def test_stderr_tail_fallback():
    assert error_lines_from_log("a\n\nb\nc\n", limit=2) == ["b", "c"]
    assert error_lines_from_log("") == []


def test_transient_404_then_lost(toil, tmp_path, settings):
    toil.hidden_polls = 1
    request, _ = _cwl_request(tmp_path)
    runner = _runner()
    run_id = runner.submit(request)
    assert runner.poll(run_id, runner_state=request.runner_state).phase == RunPhase.SUBMITTED  # 404 in grace
    assert runner.poll(run_id, runner_state=request.runner_state).phase == RunPhase.SUBMITTED  # QUEUED
    settings.MEV_ENGINE_SUBMIT_GRACE_SECONDS = 0
    lost = runner.poll("run-gone", runner_state={"submitted_at": time.time()})
    assert lost.phase == RunPhase.FAILED and lost.error_messages == ["The engine has no record of this run."]


def test_toil_outputs_and_run_relative_log_urls(toil, tmp_path):
    engine_out = tmp_path / "engine" / "run" / "outputs"
    engine_out.mkdir(parents=True)
    (engine_out / "scaled.tsv").write_text("gene\tcount\nA\t10\n")
    toil.outputs = {"scaled": {"class": "File", "location": f"file://{engine_out / 'scaled.tsv'}",
                               "path": str(engine_out / "scaled.tsv"), "size": 17}}
    request, _ = _cwl_request(tmp_path)
    runner = _runner()
    run_id = runner.submit(request)
    toil.runs[run_id]["stdout"] = "tool said hello\n"
    toil.runs[run_id]["stderr"] = "engine chatter\n"
    while runner.poll(run_id, runner_state=request.runner_state).phase != RunPhase.SUCCEEDED:
        pass
    result = runner.collect(run_id, runner_state=request.runner_state, workdir=request.workdir)
    local = Path(result.outputs["scaled"])
    assert local == request.workdir / "outputs" / "scaled" / "scaled.tsv"
    assert local.read_text() == "gene\tcount\nA\t10\n"
    assert result.stdout_tail == "tool said hello\n" and result.stderr_tail == "engine chatter\n"
    assert result.metrics == {"exit_code": 0, "wall_seconds": 4.0}
    assert runner.logs(run_id, runner_state=request.runner_state) == ("tool said hello\n", "engine chatter\n")


def test_cromwell_wes_outputs_map_of_paths(cromwell_wes, tmp_path):
    bundle, spec = _wdl_bundle(tmp_path)
    engine_file = tmp_path / "engine" / "cromwell-executions" / "W" / "call-x" / "o.tsv"
    engine_file.parent.mkdir(parents=True)
    engine_file.write_text(COUNTS)
    cromwell_wes.outputs = {"W.o": str(engine_file), "W.n": 3}
    request = SubmitRequest(execution_id="e2", operation_spec=spec, bundle_dir=bundle, inputs={},
                            workdir=tmp_path / "job")
    runner = _runner()
    run_id = runner.submit(request)
    while runner.poll(run_id, runner_state=request.runner_state).phase != RunPhase.SUCCEEDED:
        pass
    result = runner.collect(run_id, runner_state=request.runner_state, workdir=request.workdir)
    assert Path(result.outputs["W.o"]).read_text() == COUNTS
    assert request.workdir.resolve() in Path(result.outputs["W.o"]).resolve().parents
    assert result.outputs["W.n"] == 3
    assert result.stdout_tail == "engine stdout\n"


@pytest.mark.parametrize("answer", [403, 404])
def test_cancel_tolerates_cromwell_403_and_404(cromwell_wes, tmp_path, answer):
    bundle, spec = _wdl_bundle(tmp_path)
    request = SubmitRequest(execution_id="e3", operation_spec=spec, bundle_dir=bundle, inputs={},
                            workdir=tmp_path / "job")
    runner = _runner()
    run_id = runner.submit(request)
    cromwell_wes.cancel_answer = answer
    runner.cancel(run_id, runner_state=request.runner_state)
    cromwell_wes.cancel_answer = 400
    with pytest.raises(RunnerError, match="Run not in progress"):
        runner.cancel(run_id, runner_state=request.runner_state)


def test_cancel_goes_canceling_then_canceled(toil, tmp_path):
    toil.states = ["RUNNING"]
    request, _ = _cwl_request(tmp_path)
    runner = _runner()
    run_id = runner.submit(request)
    assert runner.poll(run_id, runner_state=request.runner_state).phase == RunPhase.RUNNING
    runner.cancel(run_id, runner_state=request.runner_state)
    assert runner.poll(run_id, runner_state=request.runner_state).phase == RunPhase.RUNNING  # CANCELING
    assert runner.poll(run_id, runner_state=request.runner_state).phase == RunPhase.CANCELED


def test_health(toil, settings):
    assert WesRunner().health() == {"ok": True, "version": "toil 9.6.0"}
    settings.MEV_WES_URL = "http://127.0.0.1:9"
    down = WesRunner().health(timeout=1, tries=1)
    assert down["ok"] is False and "could not connect" in down["error"]


def test_s3_inputs_are_passed_as_uris_without_copying(settings, tmp_path):
    settings.MEV_ENGINE_S3_PREFIX = "s3://mev-bucket/"
    settings.MEV_ENGINE_SHARED_DIR = str(tmp_path / "shared")
    resource_id = str(uuid.uuid4())
    staged = tmp_path / "job" / "inputs" / resource_id / "m.tsv"
    staged.parent.mkdir(parents=True)
    staged.write_text(COUNTS)
    stager = InputStager(execution_id="e", workdir=tmp_path / "job",
                         resource_key=lambda rid: f"users/1/{rid}/m.tsv")
    specs = {"a": {"converter": "resource.single", "spec": {"attribute_type": "DataResource"}},
             "b": {"converter": "resource.csv", "spec": {"attribute_type": "DataResource"}}}
    out = stager.convert({"a": str(staged), "b": f"{staged},{staged}", "c": 4}, specs,
                         file_object=lambda loc: {"class": "File", "location": loc})
    uri = f"s3://mev-bucket/users/1/{resource_id}/m.tsv"
    assert out == {"a": {"class": "File", "location": uri}, "b": f"{uri},{uri}", "c": 4}
    assert not (tmp_path / "shared").exists()


def test_without_a_shared_dir_the_engine_reads_our_paths(settings, tmp_path):
    settings.MEV_ENGINE_SHARED_DIR = ""
    settings.MEV_ENGINE_S3_PREFIX = ""
    staged = tmp_path / "job" / "inputs" / str(uuid.uuid4()) / "m.tsv"
    staged.parent.mkdir(parents=True)
    staged.write_text(COUNTS)
    stager = InputStager(execution_id="e", workdir=tmp_path / "job")
    assert stager.location(str(staged)) == str(staged.resolve())
    assert stager.location("/etc/passwd") == "/etc/passwd"  # not ours: left alone, never copied


def test_outputs_outside_the_engine_directories_are_refused(toil, tmp_path, settings):
    secret = tmp_path / "server-secret.txt"
    secret.write_text("not for users")
    toil.outputs = {"scaled": {"class": "File", "path": str(secret)}}
    request, _ = _cwl_request(tmp_path)
    runner = _runner()
    run_id = runner.submit(request)
    while runner.poll(run_id, runner_state=request.runner_state).phase != RunPhase.SUCCEEDED:
        pass
    with pytest.raises(RunnerError, match="outside the directories engines may write to"):
        runner.collect(run_id, runner_state=request.runner_state, workdir=request.workdir)
    settings.MEV_ENGINE_OUTPUT_ROOTS = None
    settings.MEV_ENGINE_SHARED_DIR = str(tmp_path / "shared")
    with pytest.raises(RunnerError, match="outside"):
        fetch_output(str(secret), workdir=request.workdir, key="k")


def test_fetch_output_records_files_already_in_the_workdir(tmp_path):
    workdir = tmp_path / "job"
    inside = workdir / "engine-out" / "x.tsv"
    inside.parent.mkdir(parents=True)
    inside.write_text("x")
    assert fetch_output(f"file://{inside}", workdir=workdir, key="k") == str(inside.resolve())
    with pytest.raises(RunnerError, match="cannot fetch"):
        fetch_output("gs://bucket/x.tsv", workdir=workdir, key="k")
    with pytest.raises(RunnerError, match="not readable"):
        fetch_output(str(tmp_path / "missing.tsv"), workdir=workdir, key="k")  # no roots configured here
