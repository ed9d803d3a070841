"""The local runner's sandbox (mev/jobs/runners/sandbox.py): real tools run in bubblewrap through the
real runner and wrapper, and report what they could read, write, reach and see.

bubblewrap is required here (scripts/ensure_services.sh installs it); the tests that need it set
MEV_LOCAL_SANDBOX=bwrap, so a machine where it cannot run fails them loudly instead of running the
tools unconfined.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import shutil
import signal
import socket
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.conf import settings as django_settings

from mev.jobs.models import JobState
from mev.jobs.runners import local_wrapper, sandbox
from mev.jobs.runners.base import RunPhase, SubmitRequest
from mev.jobs.runners.local import LocalRunner, proc_start_time
from mev.jobs.staging import local_copy, store_file
from mev.operations.models import Operation
from mev.operations.services import operation_ingest_folder
from mev.operations.spec import SpecError, parse_operation_spec
from mev.resources.models import Resource
from mev.workspaces.models import WorkspaceResource

REPO = Path(__file__).resolve().parents[2]
OPERATIONS = REPO / "operations"
REFERENCE = REPO / "tests" / "reference"
SECRETS = {"DATABASE_URL": "postgres://mev:hunter2@db/mev", "MEV_SECRET_KEY": "s" * 40,
           "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "aws-secret", "MEV_JWT_SIGNING_KEY": "jwt"}

# A tool that tries things and writes what happened to report.json, then does what it was asked to.
PROBE = textwrap.dedent('''
    import json, os, socket, sys, time

    inputs = json.load(open(sys.argv[1]))
    report = {"read": {}, "write": {}, "connect": {}, "env": dict(os.environ), "tmpdir_entries": None}

    def attempt(action):
        try:
            action()
            return "ok"
        except OSError as exc:
            return type(exc).__name__

    def read(path):
        with open(path, "rb") as handle:
            handle.read(1)

    def write(path):
        with open(path, "w") as handle:
            handle.write("written by the tool")

    for path in inputs.get("read", []):
        report["read"][path] = attempt(lambda: read(path))
    for path in inputs.get("write", []):
        report["write"][path] = attempt(lambda: write(path))
    for host, port in inputs.get("connect", []):
        report["connect"][f"{host}:{port}"] = attempt(lambda: socket.create_connection((host, port), 3).close())
    with open("report.json", "w") as handle:
        json.dump(report, handle)
    open("started", "w").close()
    if inputs.get("allocate"):
        block = b"x" * inputs["allocate"] if inputs.get("touch") else bytearray(inputs["allocate"])
    if inputs.get("sleep"):
        time.sleep(inputs["sleep"])
    if inputs.get("signal"):
        os.kill(os.getpid(), inputs["signal"])
    if inputs.get("exit"):
        sys.exit(inputs["exit"])
    json.dump({}, open("outputs.json", "w"))
''')


@dataclass
class ToolRun:
    runner: LocalRunner
    job_id: str
    state: dict[str, Any]
    workdir: Path
    bundle_dir: Path

    def expand(self, path: str) -> str:
        return path.format(workdir=self.workdir, bundle=self.bundle_dir)

    def phase(self) -> RunPhase:
        return self.runner.poll(self.job_id, runner_state=self.state).phase

    def wait(self, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while (status := self.runner.poll(self.job_id, runner_state=self.state)).phase == RunPhase.RUNNING:
            assert time.monotonic() < deadline, "the tool did not finish"
            time.sleep(0.05)
        return status

    def status_file(self) -> dict[str, Any]:
        return json.loads((self.workdir / local_wrapper.STATUS_FILE).read_text())

    def report(self) -> dict[str, Any]:
        return json.loads((self.workdir / "report.json").read_text())

    def tool_processes(self) -> list[int]:
        """Host pids of the live processes whose argv names this run's main.py: the wrapper, bubblewrap
        (outside and as the sandbox's init) and the tool."""
        marker = str(self.bundle_dir / "main.py").encode()
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if marker in (entry / "cmdline").read_bytes().split(b"\0") and proc_start_time(int(entry.name)):
                        found.append(int(entry.name))
                except OSError:
                    continue
        return found


@pytest.fixture(autouse=True)
def _fresh_probe() -> Iterator[None]:
    sandbox.reset_for_tests()
    yield
    sandbox.reset_for_tests()


@pytest.fixture
def bwrap_mode(settings) -> None:
    settings.MEV_LOCAL_SANDBOX = "bwrap"


@pytest.fixture
def start_tool(tmp_path: Path):
    """Start the probe tool through LocalRunner.submit, as the jobs app does, with a staged input file."""
    started: list[ToolRun] = []

    def _start(inputs: dict[str, Any], *, network: bool | None = None, limits: dict[str, Any] | None = None,
               wait: bool = True) -> ToolRun:
        home = tmp_path / f"op-{uuid.uuid4().hex[:8]}"
        bundle = home / "bundle"
        bundle.mkdir(parents=True)
        (bundle / "main.py").write_text(PROBE)
        spec = {"name": "probe", "mode": "local"} | ({"network": network} if network is not None else {})
        (bundle / "operation_spec.json").write_text(json.dumps(spec))
        (home / "_common").mkdir()
        (home / "_common" / "helper.py").write_text("VALUE = 1\n")
        workdir = Path(django_settings.MEV_JOBS_DIR) / str(uuid.uuid4())
        places = {"workdir": workdir, "bundle": bundle}
        inputs = {key: [p.format(**places) for p in value] if key in ("read", "write") else value
                  for key, value in inputs.items()}
        (workdir / "inputs" / "r1").mkdir(parents=True)
        (workdir / "inputs" / "r1" / "own.tsv").write_text("gene\tS1\ng1\t1\n")
        request = SubmitRequest(execution_id=workdir.name, operation_spec={}, bundle_dir=bundle, inputs=inputs,
                                workdir=workdir, limits=limits or {})
        runner = LocalRunner()
        run = ToolRun(runner, runner.submit(request), request.runner_state, workdir, bundle)
        started.append(run)
        if wait:
            run.wait()
        return run

    yield _start
    for run in started:  # nothing may outlive a test
        run.runner.cancel(run.job_id, runner_state=run.state)


@pytest.fixture
def outside_files(tmp_path: Path, settings, user) -> dict[str, Path]:
    """Files a tool must never see: another user's stored file, a file of the data directory, another
    job's input, the repository's files and a root-only system file."""
    source = tmp_path / "source.tsv"
    source.write_text("private\n")
    key, _, _ = store_file(path=source, owner_id="someone-else", resource_id=uuid.uuid4(), name="private.tsv")
    with local_copy(key) as stored:
        stored_path = Path(stored)
    data_file = Path(settings.DATA_DIR) / f"probe-{uuid.uuid4().hex}.txt"
    data_file.write_text("data-dir secret\n")
    other_job = Path(settings.MEV_JOBS_DIR) / "another-job" / "inputs" / "x"
    other_job.mkdir(parents=True)
    (other_job / "their.tsv").write_text("theirs\n")
    yield {"stored": stored_path, "data_dir": data_file, "other_job": other_job / "their.tsv",
           "repository": REPO / "pyproject.toml", "shadow": Path("/etc/shadow")}
    data_file.unlink(missing_ok=True)


class _Listener:
    """A loopback TCP server that counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[_Listener]:
    server = _Listener()
    yield server
    server.close()


def _wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# -- what a confined tool can and cannot do ----------------------------------------------------------


@pytest.mark.django_db
def test_a_confined_tool_reads_only_its_job_its_bundle_and_the_system(bwrap_mode, start_tool, outside_files):
    allowed = ["{workdir}/inputs/r1/own.tsv", "{bundle}/main.py", "{bundle}/../_common/helper.py", "/usr/bin/env",
               "/etc/ld.so.cache"]
    run = start_tool({"read": [str(p) for p in outside_files.values()] + allowed})
    assert run.state["sandbox"] == "bwrap"
    report = run.report()["read"]
    assert {path: report[str(path)] for path in outside_files.values()} == {
        path: "FileNotFoundError" for path in outside_files.values()}
    assert [report[run.expand(path)] for path in allowed] == ["ok"] * len(allowed)
    assert run.status_file()["exit_code"] == 0


@pytest.mark.django_db
def test_without_a_sandbox_the_same_tool_reads_them_all(settings, start_tool, outside_files):
    """The control: the files above are readable to an unconfined tool, so the test above can fail."""
    settings.MEV_LOCAL_SANDBOX = "none"
    wanted = [outside_files[name] for name in ("stored", "data_dir", "other_job", "repository")]
    run = start_tool({"read": [str(p) for p in wanted]})
    assert run.state["sandbox"] == "none"
    assert run.report()["read"] == {str(p): "ok" for p in wanted}


@pytest.mark.django_db
def test_a_confined_tool_writes_only_in_its_working_directory(bwrap_mode, start_tool, outside_files, tmp_path):
    run_dir_probe = tmp_path / "outside-written.txt"
    targets = {
        "own": "result.txt",
        "tmp": "/tmp/scratch.txt",  # noqa: S108  (the sandbox's private /tmp)
        "input": "inputs/r1/own.tsv",
        "new_input": "inputs/r1/new.tsv",
        "stored": str(outside_files["stored"]),
        "outside": str(run_dir_probe),
        "repository": str(REPO / "written-by-a-tool.txt"),
        "root": "/written-by-a-tool.txt",
        "dev": "/dev/written-by-a-tool",
        "bundle": "{bundle}/written.txt",
        "shm": "/dev/shm/sem.probe",
    }
    run = start_tool({"write": list(targets.values())})
    written = run.report()["write"]
    written = {name: written[run.expand(target)] for name, target in targets.items()}
    assert {name: written[name] for name in ("own", "tmp", "shm")} == {"own": "ok", "tmp": "ok", "shm": "ok"}
    assert (run.workdir / "result.txt").read_text() == "written by the tool"
    # The private /tmp and /dev/shm are folders of the job, on disk.
    assert (run.workdir / sandbox.PRIVATE_TMP / "scratch.txt").read_text() == "written by the tool"
    assert (run.workdir / sandbox.PRIVATE_SHM / "sem.probe").exists()
    # EROFS (plain OSError): the staged inputs, the bundle, and the sandbox's own root and /dev.
    for name in ("input", "new_input", "bundle", "root", "dev"):
        assert written[name] == "OSError", name
    # The repository is not mounted. A checkout under the host's /tmp (a CI clone) has that path inside
    # the private /tmp, where the write lands harmlessly; elsewhere it is the read-only root.
    assert written["repository"] == "OSError" or str(REPO).startswith("/tmp/"), written["repository"]  # noqa: S108
    assert (run.workdir / "inputs" / "r1" / "own.tsv").read_text() == "gene\tS1\ng1\t1\n"
    assert not (run.bundle_dir / "written.txt").exists() and not (REPO / "written-by-a-tool.txt").exists()
    assert written["stored"] != "ok" and outside_files["stored"].read_text() == "private\n"
    # The test's folder is under the host's /tmp: inside, that path is in the private /tmp, not here.
    assert not run_dir_probe.exists()
    assert not Path("/tmp/scratch.txt").exists()  # noqa: S108


@pytest.mark.django_db
def test_no_network_unless_the_spec_asks_for_it(bwrap_mode, start_tool, listener):
    address = [["127.0.0.1", listener.port]]
    for network in (None, False):
        run = start_tool({"connect": address}, network=network)
        assert run.state["network"] is False
        assert run.report()["connect"] == {f"127.0.0.1:{listener.port}": "ConnectionRefusedError"}
    assert listener.accepted == 0

    run = start_tool({"connect": address}, network=True)
    assert run.state["network"] is True
    assert run.report()["connect"] == {f"127.0.0.1:{listener.port}": "ok"}
    assert _wait_until(lambda: listener.accepted == 1)


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["bwrap", "none"])
def test_the_environment_holds_no_secrets_sandboxed_or_not(settings, monkeypatch, start_tool, mode):
    settings.MEV_LOCAL_SANDBOX = mode
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    run = start_tool({}, limits={"cpus": 2})
    env = run.report()["env"]
    assert not set(SECRETS) & set(env)
    assert not [name for name in env if name.startswith(("AWS_", "DATABASE", "CELERY", "EMAIL"))]
    assert not [value for value in env.values() if value in SECRETS.values()]
    assert env["HOME"] == str(run.workdir) and env["MEV_N_CPUS"] == "2" and "PATH" in env
    if mode == "bwrap":
        assert env["TMPDIR"] == "/tmp"  # noqa: S108


# -- limits, exit codes, cancel ----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_memory_limit_holds_in_the_sandbox(bwrap_mode, start_tool):
    run = start_tool({"allocate": 512 * 1024**2}, limits={"memory_bytes": 256 * 1024**2})
    status = run.wait()
    assert status.phase == RunPhase.FAILED
    assert status.error_messages == ["The process ran out of memory (limit: 256 MiB)."]
    assert run.status_file()["exit_code"] == 1

    run = start_tool({"allocate": 32 * 1024**2}, limits={"memory_bytes": 256 * 1024**2})
    assert run.wait().phase == RunPhase.SUCCEEDED  # the limit, not the sandbox, stopped the first one


@pytest.mark.django_db
def test_the_time_limit_kills_the_sandboxed_tool(bwrap_mode, start_tool):
    run = start_tool({"sleep": 60}, limits={"wall_seconds": 1}, wait=False)
    assert _wait_until(lambda: (run.workdir / "started").exists())
    assert run.tool_processes(), "the tool should be running inside the sandbox"
    status = run.wait(timeout=15)
    assert status.phase == RunPhase.FAILED
    assert status.error_messages == ["The job exceeded its time limit of 1 seconds and was stopped."]
    assert run.status_file()["timed_out"] is True
    assert _wait_until(lambda: not run.tool_processes(), timeout=5)


@pytest.mark.django_db
def test_cancel_kills_the_sandboxed_tool(bwrap_mode, start_tool):
    run = start_tool({"sleep": 60}, wait=False)
    assert _wait_until(lambda: (run.workdir / "started").exists())
    tools = run.tool_processes()
    assert tools and run.phase() == RunPhase.RUNNING
    run.runner.cancel(run.job_id, runner_state=run.state)
    # The wrapper, bubblewrap, the sandbox's init and the tool: all gone.
    assert len(tools) == 4 and int(run.state["pid"]) in tools
    assert _wait_until(lambda: not any(proc_start_time(pid) for pid in tools), timeout=5)
    assert not run.tool_processes()


@pytest.mark.django_db
@pytest.mark.parametrize(("inputs", "exit_code", "message"), [
    ({"exit": 3}, 3, "The tool failed with exit code 3 and wrote no error message."),
    ({"signal": int(signal.SIGKILL)}, -9, "The process was killed by signal SIGKILL."),
    ({"signal": int(signal.SIGSEGV)}, -11, "The process was killed by signal SIGSEGV."),
])
def test_exit_codes_and_signals_read_as_without_a_sandbox(bwrap_mode, start_tool, inputs, exit_code, message):
    run = start_tool(inputs)
    status = run.wait()
    assert status.phase == RunPhase.FAILED and status.error_messages == [message]
    recorded = run.status_file()
    assert recorded["exit_code"] == exit_code
    assert recorded["signal"] == (-exit_code if exit_code < 0 else None)


@pytest.mark.django_db
def test_metrics_count_the_tool_inside_the_sandbox(bwrap_mode, start_tool):
    run = start_tool({"allocate": 200 * 1024**2, "touch": True})
    assert run.wait().phase == RunPhase.SUCCEEDED
    assert run.status_file()["max_rss_bytes"] > 150 * 1024**2  # the tool's peak, not bubblewrap's


# -- modes ---------------------------------------------------------------------------------------------


def _payload(operation: Operation, workspace, **inputs: Any) -> dict[str, Any]:
    return {"operation_id": str(operation.id), "workspace_id": str(workspace.id), "job_name": "sandboxed",
            "inputs": {"job_name": "sandboxed", "number": 21, **inputs}}


@pytest.mark.django_db
def test_bwrap_mode_without_bubblewrap_fails_the_job_clearly(settings, monkeypatch, run, drive, operation, workspace):
    settings.MEV_LOCAL_SANDBOX = "bwrap"
    monkeypatch.setattr(sandbox, "BWRAP", "/nonexistent/bwrap")
    execution_id = run(_payload(operation, workspace)).json()["executed_operation_id"]
    execution = drive(execution_id)
    assert execution.state == JobState.FAILED
    assert execution.error_messages == [
        "The job could not be submitted: Local tools must run in a sandbox (MEV_LOCAL_SANDBOX=bwrap), but "
        "bubblewrap cannot run: the program '/nonexistent/bwrap' was not found (install the Debian package "
        "bubblewrap)."]
    assert not execution.job_id  # nothing was started


@pytest.mark.django_db
def test_auto_without_bubblewrap_runs_unconfined_with_one_warning(settings, monkeypatch, start_tool, caplog,
                                                                  outside_files):
    settings.MEV_LOCAL_SANDBOX = "auto"
    monkeypatch.setattr(sandbox, "BWRAP", "/nonexistent/bwrap")
    with caplog.at_level(logging.WARNING, logger="mev.jobs"):
        runs = [start_tool({"read": [str(outside_files["repository"])]}) for _ in range(3)]
    assert [r.state["sandbox"] for r in runs] == ["none"] * 3
    assert all(r.wait().phase == RunPhase.SUCCEEDED for r in runs)
    warnings = [r for r in caplog.records if "WITHOUT a sandbox" in r.getMessage()]
    assert len(warnings) == 1 and "/nonexistent/bwrap" in warnings[0].getMessage()


@pytest.mark.django_db
def test_auto_confines_when_bubblewrap_works(settings, start_tool, caplog):
    settings.MEV_LOCAL_SANDBOX = "auto"
    with caplog.at_level(logging.WARNING, logger="mev.jobs"):
        run = start_tool({})
    assert run.state["sandbox"] == "bwrap" and run.wait().phase == RunPhase.SUCCEEDED
    assert not [r for r in caplog.records if "sandbox" in r.getMessage()]


def test_the_probe_runs_once_per_process(monkeypatch):
    calls = []
    real_run = sandbox.subprocess.run

    def counting_run(*args, **kwargs):
        calls.append(args[0])
        return real_run(*args, **kwargs)

    monkeypatch.setattr(sandbox.subprocess, "run", counting_run)
    assert sandbox.bwrap_problem() is None
    assert sandbox.bwrap_problem() is None
    assert len(calls) == 1 and calls[0][-4:] == ["-I", "-S", "-c", "pass"]


def test_a_broken_bubblewrap_is_reported_by_the_probe(tmp_path, monkeypatch):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to creating new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sandbox, "BWRAP", str(fake))
    problem = sandbox.bwrap_problem()
    assert problem == "a test run failed (exit code 1): bwrap: No permissions to creating new namespace"


def test_an_unknown_mode_is_refused(settings):
    settings.MEV_LOCAL_SANDBOX = "maybe"
    with pytest.raises(sandbox.SandboxUnavailable, match="auto, bwrap, none"):
        sandbox.use_bwrap()


# -- the spec field -------------------------------------------------------------------------------------


def _spec(**extra: Any) -> dict[str, Any]:
    return {"name": "n", "description": "", "inputs": {}, "outputs": {}, "mode": "local",
            "workspace_operation": False, **extra}


@pytest.mark.parametrize(("extra", "network"), [({}, False), ({"network": False}, False), ({"network": True}, True)])
def test_the_spec_may_ask_for_network(extra, network):
    parsed = parse_operation_spec(_spec(**extra), known_resource_types=lambda c: True, known_modes={"local"},
                                  bundle_dir=None)
    assert parsed.network is network


@pytest.mark.parametrize("value", ["true", 1, None, []])
def test_the_network_field_must_be_a_boolean(value):
    with pytest.raises(SpecError) as caught:
        parse_operation_spec(_spec(network=value), known_resource_types=lambda c: True, known_modes={"local"},
                             bundle_dir=None)
    assert [str(p) for p in caught.value.problems] == ["network: must be true or false"]


def test_only_the_dropbox_import_asks_for_network():
    asking = {path.parent.name for path in OPERATIONS.glob("*/operation_spec.json")
              if json.loads(path.read_text()).get("network") is True}
    assert asking == {"dropbox_import"}
    for path in OPERATIONS.glob("*/operation_spec.json"):  # every built-in still passes ingestion's checks
        parse_operation_spec(json.loads(path.read_text()), known_resource_types=lambda c: True,
                             known_modes={"local"}, bundle_dir=path.parent)


# -- real operations, end to end through the API --------------------------------------------------------


@pytest.mark.django_db
def test_deseq2_runs_in_the_sandbox_and_agrees_with_r(bwrap_mode, settings, run, drive, workspace, user):
    settings.MEV_JOB_MEMORY_BYTES = 4 * 1024**3
    operation = operation_ingest_folder(folder=OPERATIONS / "deseq2")[0]
    counts = Resource(owner=user, name="counts.tsv", resource_type="RNASEQ_COUNT_MTX", file_format="tsv")
    key, size, digest = store_file(path=REFERENCE / "counts_2group.tsv", owner_id=user.pk, resource_id=counts.id,
                                   name="counts.tsv")
    counts.datafile, counts.size, counts.checksum = key, size, digest
    counts.save()
    WorkspaceResource.objects.create(workspace=workspace, resource=counts)
    base, exp = [f"ctrl_{i}" for i in range(1, 5)], [f"trt_{i}" for i in range(1, 5)]
    payload = {"operation_id": str(operation.id), "workspace_id": str(workspace.id), "job_name": "de",
               "inputs": {"raw_counts": str(counts.id),
                          "base_condition_samples": {"elements": [{"id": s} for s in base]},
                          "experimental_condition_samples": {"elements": [{"id": s} for s in exp]},
                          "base_condition_name": "ctrl", "experimental_condition_name": "trt"}}
    answer = run(payload)
    assert answer.status_code == 200, answer.json()
    execution = drive(answer.json()["executed_operation_id"], timeout=300)
    assert execution.state == JobState.COMPLETED, execution.error_messages
    assert execution.runner_state["sandbox"] == "bwrap" and execution.runner_state["network"] is False

    results = Resource.objects.get(pk=execution.outputs["dge_results"])
    with local_copy(results.datafile) as path:
        ours = pd.read_csv(path, sep="\t", index_col=0)
    with gzip.open(REFERENCE / "deseq2_results.tsv.gz", "rt") as handle:
        reference = pd.read_csv(io.StringIO(handle.read()), sep="\t", index_col=0)
    ours = ours.loc[reference.index]
    both = np.isfinite(ours.log2FoldChange) & np.isfinite(reference.log2FoldChange)
    assert both.sum() >= 1990
    assert np.corrcoef(ours.log2FoldChange[both], reference.log2FoldChange[both])[0, 1] >= 0.9999999
    assert np.allclose(ours.overall_mean, reference.baseMean, rtol=1e-6)


BODY = b"gene\tS1\tS2\ng1\t1\t2\n"


class _FileHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def file_server(settings) -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _FileHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    # Test-only relaxation (as in test_dropbox.py): the loopback server stands in for Dropbox.
    settings.MEV_DROPBOX_HOSTS = [f"127.0.0.1:{httpd.server_port}"]
    settings.MEV_DROPBOX_REQUIRE_HTTPS = False
    settings.MEV_DROPBOX_TIMEOUT_SECONDS = 5
    yield f"http://127.0.0.1:{httpd.server_port}/s/file.tsv"
    httpd.shutdown()
    httpd.server_close()


def _import(auth_client, django_capture_on_commit_callbacks, drive, link: str):
    with django_capture_on_commit_callbacks(execute=True):
        answer = auth_client.post("/api/resources/dropbox-upload/", [{"download_link": link, "filename": "f.tsv"}],
                                  format="json")
    assert answer.status_code == 200, answer.json()
    return drive(answer.json()["upload_ids"][0], timeout=60)


@pytest.mark.django_db
def test_the_dropbox_import_reaches_the_network_from_the_sandbox(bwrap_mode, auth_client, file_server, drive,
                                                                 django_capture_on_commit_callbacks):
    operation_ingest_folder(folder=OPERATIONS / "dropbox_import")
    execution = _import(auth_client, django_capture_on_commit_callbacks, drive, file_server)
    assert execution.state == JobState.COMPLETED, execution.error_messages
    assert execution.runner_state["sandbox"] == "bwrap" and execution.runner_state["network"] is True
    imported = Resource.objects.get(pk=execution.outputs["imported_file"])
    with local_copy(imported.datafile) as path:
        assert Path(path).read_bytes() == BODY


@pytest.mark.django_db
def test_the_same_import_without_the_network_flag_cannot_connect(bwrap_mode, tmp_path, auth_client, file_server,
                                                                 drive, django_capture_on_commit_callbacks):
    copy = tmp_path / "built-ins" / "dropbox_import"
    shutil.copytree(OPERATIONS / "dropbox_import", copy, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    spec = json.loads((copy / "operation_spec.json").read_text())
    del spec["network"]
    (copy / "operation_spec.json").write_text(json.dumps(spec))
    operation_ingest_folder(folder=copy)
    execution = _import(auth_client, django_capture_on_commit_callbacks, drive, file_server)
    assert execution.state == JobState.FAILED
    assert execution.runner_state["network"] is False
    assert "Connection refused" in " ".join(execution.error_messages)
