"""The GA4GH WES 1.0 runner (mode `wes`): Toil's WES server, or Cromwell's WES API (Cromwell >= 84).

Submission is multipart only (Toil answers a JSON body with 415): the bundle's workflow files as
`workflow_attachment`, `workflow_url` naming the main one (Toil requires it), `workflow_params` (the
converted inputs; CWL File inputs as File objects with engine-readable locations), `workflow_type`
and version, `workflow_engine_parameters` (`MEV_WES_WORKFLOW_ENGINE_PARAMETERS`) and `tags` carrying
our execution id. Cromwell's WES takes only the first attachment and refuses `workflow_url` next to
an attachment: `MEV_WES_FLAVOR = "cromwell"` sends `main.wdl` alone, without `workflow_url`.

`MEV_WES_WORKFLOW_ENGINE_PARAMETERS` is either one object of options for every run, or an object
keyed by workflow type (`{"CWL": {"--no-container": null}, "WDL": {}}`): Toil's runners refuse each
other's options (toil-wdl-runner exits on `--no-container`), so one server taking both languages
needs options per language.

WDL on Toil: Toil's WES lists only the files of its output directory as a run's `outputs` (named by
file, no scalar values), while toil-wdl-runner prints the real outputs document (`{"Wf.out": value}`,
or miniwdl's `{"dir", "outputs"}` dialect) on its stdout, which the run log serves; that document is
what is collected. A WDL failure is reported by Toil between lines of three 🚨, the user's message.
Toil 9.6's WES server itself cannot start a WDL run as released (it passes the CWL option `--outdir`,
which toil-wdl-runner refuses); tests/integration/test_toil_wes_wdl.py shows the failure and the
wrapper a Toil server for WDL needs.

States map to RunPhase (api-contract §6.2); a 404 within `MEV_ENGINE_SUBMIT_GRACE_SECONDS` of the
submission is the engine not having recorded the run yet, after it the run is lost.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

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
    release_inputs,
    submission_state,
    tail_text,
    wall_seconds,
    within_grace,
)
from mev.jobs.runners.http import decode_json, json_setting

DEFAULT_BASE_PATH = "/ga4gh/wes/v1"
WORKFLOW_SUFFIXES = (".cwl", ".wdl", ".yml", ".yaml", ".js")
TAG_EXECUTION_ID = "mev_execution_id"

_PHASES = {
    "QUEUED": RunPhase.SUBMITTED,
    "INITIALIZING": RunPhase.SUBMITTED,
    "PAUSED": RunPhase.SUBMITTED,
    "RUNNING": RunPhase.RUNNING,
    "CANCELING": RunPhase.RUNNING,
    "COMPLETE": RunPhase.SUCCEEDED,
    "EXECUTOR_ERROR": RunPhase.FAILED,
    "SYSTEM_ERROR": RunPhase.FAILED,
    "CANCELED": RunPhase.CANCELED,
}

WORKFLOW_TYPES = ("CWL", "WDL")
WDL_ERROR_FENCE = "\U0001f6a8" * 3  # how Toil's WDL runner frames the error meant for the user
OUTPUTS_DOCUMENT_MAX_BYTES = 8 << 20

_FAILURE_TEXT = {
    "EXECUTOR_ERROR": "The workflow failed.",
    "SYSTEM_ERROR": "The workflow engine had a system error while running the workflow.",
}


def wes_base_url() -> str:
    url = engine_setting("MEV_WES_URL") or ""
    if not url:
        raise RunnerError("No WES engine is configured (MEV_WES_URL).")
    base_path = engine_setting("MEV_WES_BASE_PATH", DEFAULT_BASE_PATH) or ""
    return str(url).rstrip("/") + "/" + str(base_path).strip("/")


def _version_line(text: str, pattern: str, default: str) -> str:
    match = re.search(pattern, text, flags=re.MULTILINE)
    return match.group(1) if match else default


def engine_parameters(workflow_type: str) -> dict[str, Any]:
    """The `workflow_engine_parameters` for a run of `workflow_type` (see the module doc)."""
    configured = json_setting("MEV_WES_WORKFLOW_ENGINE_PARAMETERS", {})
    if configured is None:
        return {}
    if not isinstance(configured, dict):
        raise RunnerError("The setting MEV_WES_WORKFLOW_ENGINE_PARAMETERS must be a JSON object.")
    per_type = {str(key).upper(): value for key, value in configured.items()}
    if configured and set(per_type) <= set(WORKFLOW_TYPES):
        chosen = per_type.get(workflow_type) or {}
        if not isinstance(chosen, dict):
            raise RunnerError(f"MEV_WES_WORKFLOW_ENGINE_PARAMETERS[{workflow_type!r}] must be a JSON object.")
        return chosen
    return configured


def error_lines_from_log(stderr: str, limit: int = 5) -> list[str]:
    """User-facing lines from an engine's stderr: the failed command's own stderr when Toil quotes
    it, else the WDL errors Toil frames between 🚨 lines, otherwise the last few non-empty lines."""
    lines = [line.rstrip() for line in (stderr or "").splitlines()]
    picked: list[str] = []
    for index, line in enumerate(lines):
        if "Failed command standard error:" in line:
            for follow in lines[index + 1:index + 1 + limit]:
                text = follow.strip()
                if not text or text.startswith("[20"):
                    break
                picked.append(text)
    if not picked:
        picked = _fenced_lines(lines)
    if not picked:
        picked = [line.strip() for line in lines if line.strip()][-limit:]
    unique: list[str] = []
    for line in picked:
        if line not in unique:
            unique.append(line[:500])
    return unique[:limit]


def _fenced_lines(lines: list[str]) -> list[str]:
    """The non-empty lines between each pair of WDL error fences (worker logs quoted by the leader
    are indented, hence the strip)."""
    picked: list[str] = []
    inside = False
    for line in lines:
        text = line.strip()
        if text == WDL_ERROR_FENCE:
            inside = not inside
        elif inside and text:
            picked.append(text)
    return picked


def outputs_document(stdout: str) -> dict[str, Any] | None:
    """The outputs object toil-wdl-runner printed (its whole stdout, or failing that its last line
    that is a JSON object), unwrapped from miniwdl's `{"dir", "outputs"}` dialect; None if absent."""
    text = (stdout or "").strip()
    candidates = [text] + [line.strip() for line in reversed(text.splitlines()) if line.strip().startswith("{")]
    for candidate in candidates:
        try:
            document = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(document, dict):
            if set(document) == {"dir", "outputs"} and isinstance(document["outputs"], dict):
                return document["outputs"]
            return document
    return None


class WesRunner(EngineRunner):
    name = "wes"
    health_route = "service-info"

    # -- plumbing ---------------------------------------------------------------------------------

    def engine_url(self) -> str:
        return wes_base_url()

    @staticmethod
    def _flavor() -> str:
        return str(engine_setting("MEV_WES_FLAVOR", "toil") or "toil").lower()

    # -- submit -----------------------------------------------------------------------------------

    def submit(self, request: SubmitRequest) -> str:
        bundle = Path(request.bundle_dir)
        if (bundle / "main.cwl").is_file():
            main, workflow_type = "main.cwl", "CWL"
            version = _version_line((bundle / main).read_text(), r"^\s*cwlVersion:\s*['\"]?([\w.]+)", "v1.2")
        elif (bundle / "main.wdl").is_file():
            main, workflow_type = "main.wdl", "WDL"
            version = _version_line((bundle / main).read_text(), r"^\s*version\s+([\w.-]+)", "1.0")
        else:
            raise RunnerError("The operation has neither main.cwl nor main.wdl.")

        stager = InputStager(execution_id=request.execution_id, workdir=request.workdir, bundle_dir=bundle)
        file_object = (lambda location: _cwl_file(location)) if workflow_type == "CWL" else None
        params = stager.convert(request.inputs, request.operation_spec.get("inputs") or {},
                                file_object=file_object)

        cromwell = self._flavor() == "cromwell"
        attachments = [Path(main)] if cromwell else [Path(main)] + [
            p for p in bundle_workflow_files(bundle, WORKFLOW_SUFFIXES) if p != Path(main)]
        files = [("workflow_attachment", (p.as_posix(), (bundle / p).read_bytes(), "application/octet-stream"))
                 for p in attachments]
        data = {
            "workflow_params": json.dumps(params),
            "workflow_type": workflow_type,
            "workflow_type_version": version,
            "workflow_engine_parameters": json.dumps(engine_parameters(workflow_type)),
            "tags": json.dumps({TAG_EXECUTION_ID: request.execution_id}),
        }
        if not cromwell:
            data["workflow_url"] = main

        engine = self._engine()
        response = engine.post("runs", data=data, files=files, idempotent=False)
        if not response.ok:
            raise engine_error(response, "The engine refused the workflow: ", transient_statuses=(429,))
        body = decode_json(response)
        run_id = body.get("run_id") if isinstance(body, dict) else None
        if not isinstance(run_id, str) or not run_id:
            raise RunnerError("The engine accepted the workflow but returned no run id.")
        request.runner_state.update(submission_state(engine, stager, request, engine="wes", run_id=run_id,
                                                     workflow_type=workflow_type))
        return run_id

    # -- status -----------------------------------------------------------------------------------

    def poll(self, job_id: str, *, runner_state: dict[str, Any]) -> RunStatus:
        response = self._engine(runner_state).get(f"runs/{job_id}/status")
        if response.status_code == 404:
            return self.lost_or_waiting(runner_state)
        if not response.ok:
            raise engine_error(response)
        body = decode_json(response)
        state = str(body.get("state", "UNKNOWN")) if isinstance(body, dict) else "UNKNOWN"
        phase = _PHASES.get(state)
        if phase is None:  # UNKNOWN, or a state this client does not know
            return RunStatus(RunPhase.FAILED, detail=state, error_messages=[NO_RECORD_MESSAGE])
        if phase == RunPhase.FAILED:
            return RunStatus(phase, detail=state, error_messages=self._failure_messages(job_id, state, runner_state))
        return RunStatus(phase, detail=state)

    def _failure_messages(self, job_id: str, state: str, runner_state: dict[str, Any]) -> list[str]:
        messages = [_FAILURE_TEXT.get(state, "The workflow failed.")]
        try:
            _, stderr = self.logs(job_id, runner_state=runner_state, max_bytes=20000)
        except RunnerError:
            stderr = ""
        for line in error_lines_from_log(stderr):
            if line not in messages:
                messages.append(line)
        return messages

    def _run_log(self, job_id: str, runner_state: dict[str, Any]) -> dict[str, Any]:
        response = self._engine(runner_state).get(f"runs/{job_id}")
        if response.status_code == 404:
            raise RunnerError(NO_RECORD_MESSAGE, transient=within_grace(runner_state))
        if not response.ok:
            raise engine_error(response)
        body = decode_json(response)
        return body if isinstance(body, dict) else {}

    def _log_text(self, job_id: str, value: Any, runner_state: dict[str, Any], max_bytes: int) -> str:
        """A run-log stdout/stderr field: the text itself, or (Toil) a URL relative to the run."""
        if not isinstance(value, str) or not value:
            return ""
        looks_like_url = "\n" not in value and (value.startswith(("http://", "https://", "/", "../")))
        if not looks_like_url:
            return tail_text(value, max_bytes)
        engine = self._engine(runner_state)
        url = urljoin(engine.url(f"runs/{job_id}"), value)
        if urlparse(url).netloc != urlparse(engine.base_url).netloc:
            return ""  # only follow logs served by the engine itself
        response = engine.get(url)
        return tail_text(response.text, max_bytes) if response.ok else ""

    def logs(self, job_id: str, *, runner_state: dict[str, Any], max_bytes: int = 20000) -> tuple[str, str]:
        run_log = (self._run_log(job_id, runner_state).get("run_log") or {})
        return (self._log_text(job_id, run_log.get("stdout"), runner_state, max_bytes),
                self._log_text(job_id, run_log.get("stderr"), runner_state, max_bytes))

    # -- collect ----------------------------------------------------------------------------------

    def collect(self, job_id: str, *, runner_state: dict[str, Any], workdir: Path) -> RunResult:
        document = self._run_log(job_id, runner_state)
        run_log = document.get("run_log") or {}
        raw_outputs = self._reported_outputs(job_id, document, runner_state)
        spec_outputs = (runner_state.get("output_specs") or {})
        outputs: dict[str, Any] = {}
        engine = self._engine(runner_state)

        def download(url: str, target: Path) -> None:
            response = engine.get(url, stream=True)
            if not response.ok:
                raise RunnerError(f"Could not fetch {url}: HTTP {response.status_code}", transient=True)
            with open(target, "wb") as handle:
                for chunk in response.iter_content(1 << 20):
                    handle.write(chunk)

        succeeded = document.get("state") == "COMPLETE"
        for key, value in raw_outputs.items():
            definition = spec_outputs.get(key)
            file_expected = is_file_output(definition) if definition is not None else None
            if succeeded:
                outputs[key] = _local_outputs(value, key=key, workdir=workdir, download=download,
                                              strings_are_files=bool(file_expected))
            else:
                outputs[key] = value  # a failed run's outputs are not fetched
        stdout = self._log_text(job_id, run_log.get("stdout"), runner_state, 20000)
        stderr = self._log_text(job_id, run_log.get("stderr"), runner_state, 20000)
        metrics: dict[str, Any] = {}
        if run_log.get("exit_code") is not None:
            metrics["exit_code"] = run_log["exit_code"]
        seconds = wall_seconds(run_log.get("start_time"), run_log.get("end_time"))
        if seconds is not None:
            metrics["wall_seconds"] = seconds
        if document.get("state") in {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"}:
            release_inputs(runner_state)
        return RunResult(outputs=outputs, stdout_tail=stdout, stderr_tail=stderr, metrics=metrics)

    def _reported_outputs(self, job_id: str, document: dict[str, Any], runner_state: dict[str, Any]) -> dict[str, Any]:
        """The run's outputs keyed by the workflow's output names (see the module doc for WDL on Toil)."""
        listed = document.get("outputs") or {}
        if not isinstance(listed, dict):
            listed = {}
        toil_wdl = runner_state.get("workflow_type") == "WDL" and self._flavor() != "cromwell"
        if not toil_wdl or document.get("state") != "COMPLETE":
            return listed
        stdout = self._log_text(job_id, (document.get("run_log") or {}).get("stdout"), runner_state,
                                OUTPUTS_DOCUMENT_MAX_BYTES)
        printed = outputs_document(stdout)
        if printed is None:
            raise RunnerError("The WDL run completed but the engine's outputs document could not be read "
                              "from the run's standard output.")
        return printed

    # -- cancel -----------------------------------------------------------------------------------

    def cancel(self, job_id: str, *, runner_state: dict[str, Any]) -> None:
        if not job_id:
            return
        # 404: unknown or no longer in progress; 403: its state does not allow it (Cromwell) -- either
        # way there is nothing left to stop.
        self._cancel_run(f"runs/{job_id}/cancel", runner_state, gone_statuses=(403, 404),
                         error_prefix="The engine did not cancel the run: ")

    # -- health -----------------------------------------------------------------------------------

    def version_of(self, body: Any) -> str:
        if not isinstance(body, dict):
            return ""
        versions = body.get("workflow_engine_versions")
        if isinstance(versions, dict) and versions:
            return ", ".join(f"{name} {number}" for name, number in versions.items())
        return str(body.get("version", ""))


def _cwl_file(location: str) -> dict[str, str]:
    if "://" in location:
        return {"class": "File", "location": location}
    return {"class": "File", "path": location}


def _local_outputs(value: Any, *, key: str, workdir: Path, download: Any, strings_are_files: bool) -> Any:
    """CWL File objects (and, for file outputs, bare paths as Cromwell's WES reports them) become
    local paths inside `workdir`; records and lists are walked; other values stay as they are."""
    if isinstance(value, list):
        return [_local_outputs(v, key=key, workdir=workdir, download=download, strings_are_files=strings_are_files)
                for v in value]
    if isinstance(value, dict):
        if value.get("class") == "File":
            location = value.get("path") or value.get("location")
            return fetch_output(location, workdir=workdir, key=key, download=download)
        if value.get("class") == "Directory":
            raise RunnerError(f"The output {key} is a directory; only files can be stored.")
        return {k: _local_outputs(v, key=key, workdir=workdir, download=download,
                                  strings_are_files=strings_are_files or k == "path")
                if k != "resource_type" else v for k, v in value.items()}
    if isinstance(value, str) and strings_are_files:
        return fetch_output(value, workdir=workdir, key=key, download=download)
    return value


register_runner("wes", WesRunner)
