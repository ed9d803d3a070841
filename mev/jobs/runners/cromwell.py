"""The Cromwell runner (mode `cromwell`), over Cromwell's native REST API (`/api/workflows/v1`).

The bundle holds `main.wdl` (WDL 1.0), any imported `.wdl` files (sent zipped as
`workflowDependencies`, paths kept) and the spec, whose input/output keys are fully qualified names
(`Workflow.input`). Submission is multipart: `workflowSource`, `workflowInputs` (the converted inputs,
file inputs as engine-readable paths or s3:// URIs), `workflowOptions` (`MEV_CROMWELL_OPTIONS`),
`labels` (our execution id), `workflowType=WDL`, `workflowTypeVersion` (from main.wdl, default 1.0).

Cromwell writes its metadata summary a few seconds late, so status, outputs and metadata may answer
404 "Unrecognized workflow ID" right after a successful submission: within
`MEV_ENGINE_SUBMIT_GRACE_SECONDS` that is "still submitted", after it the run is lost.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

from mev.jobs.runners.base import RunnerError, RunPhase, RunResult, RunStatus, SubmitRequest, register_runner
from mev.jobs.runners.engines import (
    NO_RECORD_MESSAGE,
    EngineRunner,
    InputStager,
    bundle_workflow_files,
    engine_error,
    engine_setting,
    fetch_output,
    is_file_output,
    read_local_tail,
    release_inputs,
    submission_state,
    wall_seconds,
    within_grace,
)
from mev.jobs.runners.http import decode_json, json_setting

API_PATH = "api/workflows/v1"
LABEL_EXECUTION_ID = "mev-execution-id"

_PHASES = {
    "On Hold": RunPhase.SUBMITTED,
    "Submitted": RunPhase.SUBMITTED,
    "Running": RunPhase.RUNNING,
    "Aborting": RunPhase.RUNNING,
    "Succeeded": RunPhase.SUCCEEDED,
    "Failed": RunPhase.FAILED,
    "Aborted": RunPhase.CANCELED,
}


def cromwell_url() -> str:
    url = engine_setting("MEV_CROMWELL_URL") or ""
    if not url:
        raise RunnerError("No Cromwell server is configured (MEV_CROMWELL_URL).")
    return str(url).rstrip("/")


def failure_messages(failures: Any) -> list[str]:
    """Every `message` in Cromwell's failures tree (`causedBy` nested), de-duplicated, in order."""
    found: list[str] = []

    def walk(items: Any) -> None:
        if isinstance(items, dict):
            items = [items]
        if not isinstance(items, list):
            return
        for item in items:
            if not isinstance(item, dict):
                continue
            message = item.get("message")
            if isinstance(message, str) and message.strip() and message.strip() not in found:
                found.append(message.strip())
            walk(item.get("causedBy"))

    walk(failures)
    return found


def dependencies_zip(bundle: Path, main: str = "main.wdl") -> bytes | None:
    """The bundle's other .wdl files zipped with their relative paths, or None when there are none."""
    imports = [p for p in bundle_workflow_files(bundle, (".wdl",)) if p.as_posix() != main]
    if not imports:
        return None
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for relative in imports:
            archive.write(bundle / relative, relative.as_posix())
    return buffer.getvalue()


class CromwellRunner(EngineRunner):
    name = "cromwell"
    engine_label = "Cromwell"
    health_route = "engine/v1/version"

    def engine_url(self) -> str:
        return cromwell_url()

    # -- submit -----------------------------------------------------------------------------------

    def submit(self, request: SubmitRequest) -> str:
        bundle = Path(request.bundle_dir)
        main = bundle / "main.wdl"
        if not main.is_file():
            raise RunnerError("The operation has no main.wdl.")
        source = main.read_bytes()
        match = re.search(rb"^\s*version\s+([\w.-]+)", source, flags=re.MULTILINE)
        version = match.group(1).decode() if match else "1.0"

        stager = InputStager(execution_id=request.execution_id, workdir=request.workdir, bundle_dir=bundle)
        inputs = stager.convert(request.inputs, request.operation_spec.get("inputs") or {})
        files: list[tuple[str, tuple[str, bytes, str]]] = [
            ("workflowSource", ("main.wdl", source, "application/octet-stream")),
            ("workflowInputs", ("inputs.json", json.dumps(inputs).encode(), "application/json")),
        ]
        dependencies = dependencies_zip(bundle)
        if dependencies is not None:
            files.append(("workflowDependencies", ("dependencies.zip", dependencies, "application/zip")))
        options = json_setting("MEV_CROMWELL_OPTIONS", {}) or {}
        if options:
            files.append(("workflowOptions", ("options.json", json.dumps(options).encode(), "application/json")))
        data = {
            "workflowType": "WDL",
            "workflowTypeVersion": version,
            "labels": json.dumps({LABEL_EXECUTION_ID: request.execution_id}),
        }

        engine = self._engine()
        response = engine.post(API_PATH, data=data, files=files, idempotent=False)
        if not response.ok:
            raise engine_error(response, "Cromwell refused the workflow: ", transient_statuses=(429,))
        body = decode_json(response)
        workflow_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(workflow_id, str) or not workflow_id:
            raise RunnerError("Cromwell accepted the workflow but returned no id.")
        request.runner_state.update(submission_state(engine, stager, request, engine="cromwell",
                                                     workflow_id=workflow_id))
        return workflow_id

    # -- status -----------------------------------------------------------------------------------

    def _get(self, job_id: str, route: str, runner_state: dict[str, Any], **params: Any) -> Any | None:
        """GET a workflow route; None on 404 (unknown, or not yet recorded)."""
        response = self._engine(runner_state).get(f"{API_PATH}/{job_id}/{route}", params=params or None)
        if response.status_code == 404:
            return None
        if not response.ok:
            raise engine_error(response, "Cromwell: ")
        return decode_json(response)

    def poll(self, job_id: str, *, runner_state: dict[str, Any]) -> RunStatus:
        body = self._get(job_id, "status", runner_state)
        if body is None:
            return self.lost_or_waiting(runner_state)
        state = str(body.get("status", "")) if isinstance(body, dict) else ""
        phase = _PHASES.get(state)
        if phase is None:
            return RunStatus(RunPhase.FAILED, detail=state or "unknown", error_messages=[NO_RECORD_MESSAGE])
        if phase == RunPhase.FAILED:
            messages = []
            try:
                metadata = self._get(job_id, "metadata", runner_state, includeKey=["failures", "status"]) or {}
                messages = failure_messages(metadata.get("failures"))
            except RunnerError:
                pass
            return RunStatus(phase, detail=state, error_messages=messages or ["The workflow failed."])
        return RunStatus(phase, detail=state)

    # -- collect ----------------------------------------------------------------------------------

    def _metadata(self, job_id: str, runner_state: dict[str, Any]) -> dict[str, Any]:
        metadata = self._get(job_id, "metadata", runner_state, excludeKey=["submittedFiles", "inputs"])
        if metadata is None:
            raise RunnerError(NO_RECORD_MESSAGE, transient=within_grace(runner_state))
        return metadata if isinstance(metadata, dict) else {}

    @staticmethod
    def _call_logs(metadata: dict[str, Any], max_bytes: int) -> tuple[str, str]:
        stdout_parts, stderr_parts = [], []
        calls = metadata.get("calls") if isinstance(metadata.get("calls"), dict) else {}
        for call_name, attempts in sorted(calls.items()):
            for attempt in attempts if isinstance(attempts, list) else []:
                if not isinstance(attempt, dict):
                    continue
                label = f"== {call_name} (shard {attempt.get('shardIndex', -1)}, attempt {attempt.get('attempt', 1)})"
                for location, parts in ((attempt.get("stdout"), stdout_parts), (attempt.get("stderr"), stderr_parts)):
                    text = read_local_tail(location, max_bytes)
                    if text:
                        parts.append(f"{label}\n{text}")
        return ("\n".join(stdout_parts)[-max_bytes:], "\n".join(stderr_parts)[-max_bytes:])

    def logs(self, job_id: str, *, runner_state: dict[str, Any], max_bytes: int = 20000) -> tuple[str, str]:
        metadata = self._get(job_id, "metadata", runner_state, excludeKey=["submittedFiles", "inputs"])
        return self._call_logs(metadata or {}, max_bytes)

    def collect(self, job_id: str, *, runner_state: dict[str, Any], workdir: Path) -> RunResult:
        metadata = self._metadata(job_id, runner_state)
        succeeded = metadata.get("status") == "Succeeded"
        raw = self._get(job_id, "outputs", runner_state) if succeeded else None
        raw_outputs = (raw or {}).get("outputs") if isinstance(raw, dict) else None
        if raw_outputs is None:
            raw_outputs = metadata.get("outputs") if isinstance(metadata.get("outputs"), dict) else {}
        spec_outputs = runner_state.get("output_specs") or {}
        outputs: dict[str, Any] = {}
        for key, value in raw_outputs.items():
            definition = spec_outputs.get(key)
            if succeeded and definition is not None and is_file_output(definition):
                outputs[key] = _fetch_files(value, key=key, workdir=workdir)
            else:
                outputs[key] = value
        stdout, stderr = self._call_logs(metadata, 20000)
        metrics: dict[str, Any] = {}
        seconds = wall_seconds(metadata.get("start"), metadata.get("end"))
        if seconds is not None:
            metrics["wall_seconds"] = seconds
        codes = [a.get("returnCode") for attempts in (metadata.get("calls") or {}).values()
                 for a in (attempts if isinstance(attempts, list) else []) if isinstance(a, dict)]
        codes = [c for c in codes if isinstance(c, int)]
        if codes:
            metrics["exit_code"] = max(codes, key=abs)
        if metadata.get("status") in {"Succeeded", "Failed", "Aborted"}:
            release_inputs(runner_state)
        return RunResult(outputs=outputs, stdout_tail=stdout, stderr_tail=stderr, metrics=metrics)

    # -- cancel -----------------------------------------------------------------------------------

    def cancel(self, job_id: str, *, runner_state: dict[str, Any]) -> None:
        if not job_id:
            return
        # 404: already finished, or unknown
        self._cancel_run(f"{API_PATH}/{job_id}/abort", runner_state, gone_statuses=(404,),
                         error_prefix="Cromwell did not abort the workflow: ")

    # -- health -----------------------------------------------------------------------------------

    def version_of(self, body: Any) -> str:
        version = body.get("cromwell") if isinstance(body, dict) else None
        return f"cromwell {version}" if version else ""


def _fetch_files(value: Any, *, key: str, workdir: Path) -> Any:
    if isinstance(value, list):
        return [_fetch_files(v, key=key, workdir=workdir) for v in value]
    if isinstance(value, dict):  # a VariableDataResource struct {path, resource_type}
        return {k: (_fetch_files(v, key=key, workdir=workdir) if k == "path" else v) for k, v in value.items()}
    if isinstance(value, str):
        return fetch_output(value, workdir=workdir, key=key)
    return value


register_runner("cromwell", CromwellRunner)
