"""Every write about executed operations: creation, the one state-transition function, submission,
the sweep's per-job step, finalization, cancellation and re-runs.

Settings (read with getattr, defaults here):
  MEV_MAX_CONCURRENT_JOBS_PER_USER  4       active (queued..finalizing) jobs a user may have
  MEV_SUBMIT_GRACE_SECONDS          5       a QUEUED job untouched this long is submitted by the sweep
  MEV_SUBMIT_CLAIM_SECONDS          120     a submission claim older than this is presumed dead
  MEV_QUEUED_TIMEOUT_SECONDS        3600    a job still QUEUED after this fails
  MEV_SUBMITTED_TIMEOUT_SECONDS     600     a job the engine never started fails after this
  MEV_JOB_TIMEOUT_SECONDS           86400   wall-clock limit of a run (the sweep adds a grace period)
  MEV_FINALIZE_RETRY_SECONDS        120     a finalization claim older than this is retried
  MEV_FINALIZE_TIMEOUT_SECONDS      1800    a job still FINALIZING after this fails
  MEV_RUNNER_ERROR_LIMIT            10      consecutive engine errors before a job fails
  MEV_DROPBOX_HOSTS                 dl.dropboxusercontent.com,www.dropbox.com,dropbox.com  import hosts
  MEV_DROPBOX_REQUIRE_HTTPS         True    https-only imports (False only in tests)
  MEV_DROPBOX_TIMEOUT_SECONDS       60      network timeout of an import download
  MEV_DROPBOX_MAX_FILES             20      files per import request, and active imports per user
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from mev.core.exceptions import ApplicationError
from mev.jobs.finalize import FinalizeFailure, finalize_outputs, remove_output_resources, validate_output_file
from mev.jobs.models import ACTIVE_STATES, TERMINAL_STATES, ExecutedOperation, ExecutionEvent, JobState
from mev.jobs.runners.base import RunnerError, RunPhase, SubmitRequest, get_runner
from mev.jobs.staging import stage_resource, workdir_for
from mev.operations.attribute_types import AttributeValueError
from mev.operations.converters import ConversionError, convert_input
from mev.operations.ingestion import load_runners
from mev.operations.models import Operation
from mev.operations.spec import parse_operation_spec, validate_inputs
from mev.users.models import User

logger = logging.getLogger("mev.jobs")
load_runners()  # every runner module present registers itself (local, and cromwell/wes when written)

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    JobState.QUEUED: frozenset({JobState.SUBMITTED, JobState.FAILED, JobState.CANCELED}),
    JobState.SUBMITTED: frozenset({JobState.RUNNING, JobState.FINALIZING, JobState.FAILED, JobState.CANCELED}),
    JobState.RUNNING: frozenset({JobState.FINALIZING, JobState.FAILED, JobState.CANCELED}),
    JobState.FINALIZING: frozenset({JobState.COMPLETED, JobState.FAILED}),
}
GENERIC_FAILURE = JobState.FAILED.label
CANCELED_MESSAGE = "The job was canceled at the user's request."
FINALIZE_CRASH_MESSAGE = ("An unexpected error occurred while collecting the job's outputs. "
                          "An administrator can find the details in the server logs.")
RESOURCE_INPUT_TYPES = frozenset({"DataResource", "VariableDataResource", "OperationDataResource"})


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


# --------------------------------------------------------------------------------------------------
# The one place where states change


def execution_transition(
    *, execution_id: uuid.UUID | str, to_state: str, detail: str = "", expect: frozenset[str] | None = None,
    runner_state_update: dict[str, Any] | None = None, **fields: Any,
) -> ExecutedOperation | None:
    """Move a job to `to_state` under a row lock, with an event row. None if the move is not allowed
    from the job's current state (someone else moved it first): callers treat that as "nothing to do".
    `runner_state_update` is merged into the locked row's runner_state in the same write."""
    with transaction.atomic():
        execution = ExecutedOperation.objects.select_for_update().get(pk=execution_id)
        current = execution.state
        if to_state not in ALLOWED_TRANSITIONS.get(current, frozenset()):
            return None
        if expect is not None and current not in expect:
            return None
        now = timezone.now()
        execution.state = to_state
        execution.status = fields.pop("status", None) or JobState(to_state).label
        execution.state_changed = now
        for name, value in fields.items():
            setattr(execution, name, value)
        if runner_state_update:
            execution.runner_state = {**(execution.runner_state or {}), **runner_state_update}
        if to_state in TERMINAL_STATES:
            execution.execution_stop_datetime = now
            if to_state != JobState.COMPLETED:
                execution.outputs = None
                if not execution.error_messages:
                    execution.error_messages = [GENERIC_FAILURE]
        execution.save()
        ExecutionEvent.objects.create(execution=execution, timestamp=now, from_state=current, to_state=to_state,
                                      detail=detail[:4000])
    if to_state in TERMINAL_STATES:
        # Staged inputs are copies of stored files: drop them once the job has stopped (logs stay).
        shutil.rmtree(workdir_for(execution.id) / "inputs", ignore_errors=True)
    return execution


def _fail(execution_id: Any, messages: list[str], *, detail: str = "", expect: frozenset[str] | None = None,
          **fields: Any) -> ExecutedOperation | None:
    messages = [m for m in messages if m] or [GENERIC_FAILURE]
    return execution_transition(execution_id=execution_id, to_state=JobState.FAILED, error_messages=messages,
                                detail=detail or messages[0], expect=expect, **fields)


# --------------------------------------------------------------------------------------------------
# Creating a job (POST /operations/run/)


def _resource_checker(*, user: User, workspace: Any, operation: Operation):
    from mev.operations.models import OperationResource
    from mev.resources.models import Resource
    from mev.workspaces.access import workspaces_editable_by
    from mev.workspaces.models import WorkspaceResource

    usable = Resource.objects.filter(
        Q(owner=user) | Q(workspaces__in=workspaces_editable_by(user).values("id"))
    ).distinct()

    def check(resource_id: str, definition: dict[str, Any]) -> str | None:
        spec = definition["spec"]
        if spec.get("attribute_type") == "OperationDataResource":
            # Matched by the input KEY, never by its display label (§4.5.5, §7.2.5).
            if OperationResource.objects.filter(operation=operation, input_key=definition["key"],
                                                pk=resource_id).exists():
                return None
            return f"No file bundled with this operation for the input {definition['key']} has the ID {resource_id}."
        resource = usable.filter(pk=resource_id).first()
        if resource is None:
            return f"The file {resource_id} was not found, or you do not have access to it."
        if workspace is not None and not WorkspaceResource.objects.filter(
            workspace=workspace, resource=resource
        ).exists():
            return f"The file {resource.name} is not in this workspace."
        if not resource.is_active:
            return f"The file {resource.name} is not ready yet (it may still be validating)."
        allowed = spec.get("resource_types") if "resource_types" in spec else [spec.get("resource_type")]
        if "*" not in allowed and resource.resource_type not in allowed:
            return (f"The file {resource.name} has the type {resource.resource_type or 'unset'}, but this input "
                    f"accepts {', '.join(str(a) for a in allowed)}.")
        return None

    return check


def _cache_key(operation: Operation, inputs: dict[str, Any]) -> str:
    from mev.resources.models import Resource

    resource_ids: set[str] = set()
    for key, value in inputs.items():
        definition = operation.spec["inputs"].get(key, {})
        if definition.get("spec", {}).get("attribute_type") in RESOURCE_INPUT_TYPES:
            resource_ids.update(value if isinstance(value, list) else [value])
    checksums = dict(Resource.objects.filter(pk__in=resource_ids).values_list("id", "checksum"))
    checksums = {str(k): v for k, v in checksums.items()}

    def canonical(key: str, value: Any) -> Any:
        definition = operation.spec["inputs"].get(key, {})
        if definition.get("spec", {}).get("attribute_type") in RESOURCE_INPUT_TYPES:
            ids = value if isinstance(value, list) else [value]
            digests = [f"sha256:{checksums[i]}" if checksums.get(i) else f"id:{i}" for i in ids]
            return digests if isinstance(value, list) else digests[0]
        return value

    payload = {"operation": str(operation.id), "inputs": {k: canonical(k, v) for k, v in sorted(inputs.items())}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _job_name(raw: Any, fallback: str) -> str:
    if raw is None:
        return fallback
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    text = str(raw).strip()
    return text[:255] if text else fallback


@transaction.atomic
def execution_create(
    *, user: User, operation_id: Any, workspace_id: Any = None, job_name: Any = None, inputs: Any,
    reuse: bool = False,
) -> tuple[ExecutedOperation, bool]:
    """Check everything, then create the QUEUED job and enqueue its submission after the commit.

    Returns (job, reused): with `reuse`, an identical COMPLETED job of the caller is returned instead.
    """
    from mev.workspaces.access import workspaces_editable_by, workspaces_readable_by

    try:
        operation_uuid = uuid.UUID(str(operation_id))
    except ValueError:
        raise ApplicationError(body={"operation_id": f"{operation_id} could not be cast as a valid UUID"}) from None
    operation = Operation.objects.filter(pk=operation_uuid, active=True).first()
    if operation is None:
        raise ApplicationError(status_code=404,
                               body={"operation_id": f"Operation {operation_uuid} did not match any known operations"})
    workspace = None
    if operation.workspace_operation:
        if workspace_id in (None, ""):
            raise ApplicationError(body={"workspace_id": "This operation runs in a workspace: send workspace_id."})
        try:
            workspace_uuid = uuid.UUID(str(workspace_id))
        except ValueError:
            raise ApplicationError(status_code=404, body={"workspace_id": f"No workspace found by ID: {workspace_id}"})\
                from None
        workspace = workspaces_editable_by(user).filter(pk=workspace_uuid).first()
        if workspace is None:
            if workspaces_readable_by(user).filter(pk=workspace_uuid).exists():
                raise ApplicationError(status_code=403,
                                       body={"workspace_id": "You have read-only access to this workspace."})
            raise ApplicationError(status_code=404, body={"workspace_id": f"No workspace found by ID: {workspace_id}"})
    if not isinstance(inputs, dict):
        raise ApplicationError(body={"inputs": 'The "inputs" key must be a JSON object.'})
    modes = load_runners()
    if operation.mode not in modes:
        raise ApplicationError(body={"inputs": f"This operation cannot run here: no runner for mode {operation.mode}."})
    spec = parse_operation_spec(operation.spec, known_resource_types=lambda code: True, known_modes=modes,
                                bundle_dir=None)
    try:
        cleaned, errors = validate_inputs(
            spec, inputs, resource_check=_resource_checker(user=user, workspace=workspace, operation=operation)
        )
    except AttributeValueError as exc:
        raise ApplicationError(body={"inputs": exc.message}) from None
    if errors:
        raise ApplicationError(body={"inputs": errors})
    if is_dropbox_import(operation):
        cleaned = _dropbox_inputs(cleaned)

    cache_key = _cache_key(operation, cleaned)
    if reuse:
        previous = ExecutedOperation.objects.filter(
            owner=user, operation=operation, workspace=workspace, cache_key=cache_key, state=JobState.COMPLETED
        ).order_by("-execution_start_datetime").first()
        if previous is not None:
            return previous, True

    # Imports (one job per file, sent in batches by the client) have their own quota, so a batch of
    # files neither hits nor uses up the analysis quota.
    imports = Q(operation__repository_url="", operation__repository_name=DROPBOX_BUNDLE)
    if is_dropbox_import(operation):
        limit = int(_setting("MEV_DROPBOX_MAX_FILES", 20))
        counted = ExecutedOperation.objects.filter(imports)
    else:
        limit = int(_setting("MEV_MAX_CONCURRENT_JOBS_PER_USER", 4))
        counted = ExecutedOperation.objects.exclude(imports)
    # Serialise a user's concurrent run requests so the quota check cannot be raced.
    User.objects.select_for_update().filter(pk=user.pk).first()
    active = counted.filter(owner=user, state__in=ACTIVE_STATES).count()
    if active >= limit:
        raise ApplicationError(
            status_code=429,
            body={"message": f"You already have {active} jobs running (the limit is {limit}). "
                             "Wait for one to finish, or cancel one, and try again."},
        )
    execution_id = uuid.uuid4()
    execution = ExecutedOperation.objects.create(
        id=execution_id, owner=user, operation=operation, workspace=workspace,
        job_name=_job_name(job_name, str(execution_id)), mode=operation.mode, runner=operation.mode,
        state=JobState.QUEUED, status=JobState.QUEUED.label, inputs=cleaned, cache_key=cache_key,
    )
    ExecutionEvent.objects.create(execution=execution, from_state="", to_state=JobState.QUEUED, detail="created")
    _enqueue_submit(execution.id)
    return execution, False


# --------------------------------------------------------------------------------------------------
# Dropbox imports (POST /resources/dropbox-upload/): one non-workspace job of the built-in bundle
# `operations/dropbox_import` per file. The allow-list is checked here and again by the tool itself.

DROPBOX_BUNDLE = "dropbox_import"


def is_dropbox_import(operation: Operation) -> bool:
    return operation.repository_url == "" and operation.repository_name == DROPBOX_BUNDLE


def dropbox_hosts() -> list[str]:
    hosts = _setting("MEV_DROPBOX_HOSTS", ["dl.dropboxusercontent.com", "www.dropbox.com", "dropbox.com"])
    return [str(h).strip().lower() for h in hosts if str(h).strip()]


def dropbox_link_problem(link: Any) -> str | None:
    """None if `link` is an https link on an allow-listed host (`host`, or `host:port`), else why not."""
    from urllib.parse import urlsplit

    if not isinstance(link, str) or not link.strip():
        return "A download link is required."
    if len(link) > 1000 or any(ord(c) < 33 for c in link):
        return "The link is not a valid URL."
    try:
        parsed = urlsplit(link)
        port = parsed.port
    except ValueError:
        return "The link is not a valid URL."
    schemes = ("https",) if _setting("MEV_DROPBOX_REQUIRE_HTTPS", True) else ("https", "http")
    if parsed.scheme not in schemes:
        return "Only https links can be imported."
    if parsed.username or parsed.password:
        return "Links with credentials are not accepted."
    host = (parsed.hostname or "").lower()
    hosts = dropbox_hosts()
    default_port = port is None or port == {"https": 443, "http": 80}[parsed.scheme]
    if not ((host in hosts and default_port) or f"{host}:{port}" in hosts):
        return f"The host {host or '(none)'} is not an allowed Dropbox host."
    return None


def _dropbox_inputs(cleaned: dict[str, Any]) -> dict[str, Any]:
    """Re-check the link (also for direct /operations/run/ calls) and impose the server's limits."""
    from mev.jobs.staging import safe_name

    problem = dropbox_link_problem(cleaned.get("download_link"))
    if problem:
        raise ApplicationError(body={"inputs": {"download_link": problem}})
    return {
        "download_link": cleaned["download_link"], "filename": safe_name(str(cleaned.get("filename") or "")),
        "max_bytes": int(_setting("MEV_MAX_UPLOAD_BYTES", 2 * 1024**3)), "allowed_hosts": ",".join(dropbox_hosts()),
        "require_https": bool(_setting("MEV_DROPBOX_REQUIRE_HTTPS", True)),
        "timeout_seconds": int(_setting("MEV_DROPBOX_TIMEOUT_SECONDS", 60)),
    }


def _dropbox_items(items: Any) -> list[tuple[str, str]]:
    """Check the request body; ApplicationError(400) with per-field messages naming the item."""
    from mev.jobs.staging import safe_name

    if not isinstance(items, list) or not items:
        raise ApplicationError(body={"non_field_errors": [
            'The body must be a non-empty array of {"download_link": ..., "filename": ...} objects.']})
    limit = int(_setting("MEV_DROPBOX_MAX_FILES", 20))
    if len(items) > limit:
        raise ApplicationError(body={"non_field_errors": [f"At most {limit} files can be imported at once."]})
    errors: dict[str, list[str]] = {}
    cleaned: list[tuple[str, str]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            errors.setdefault("non_field_errors", []).append(f"Item {index}: must be an object.")
            continue
        link, filename = item.get("download_link"), item.get("filename")
        if link in (None, ""):
            errors.setdefault("download_link", []).append(f"Item {index}: This field is required.")
        elif problem := dropbox_link_problem(link):
            errors.setdefault("download_link", []).append(f"Item {index}: {problem}")
        if filename in (None, "") or not isinstance(filename, str) or not filename.strip():
            errors.setdefault("filename", []).append(f"Item {index}: This field is required.")
        elif len(filename) > 1000:
            errors.setdefault("filename", []).append(f"Item {index}: The file name is too long.")
        if not errors:
            cleaned.append((link, safe_name(filename)))
    if errors:
        raise ApplicationError(body=errors)
    return cleaned


@transaction.atomic
def dropbox_import_create(*, user: User, items: Any) -> list[ExecutedOperation]:
    """One non-workspace job per file, through the same path as /operations/run/; all or none."""
    files = _dropbox_items(items)
    operation = Operation.objects.filter(active=True, repository_url="", repository_name=DROPBOX_BUNDLE) \
        .order_by("-created").first()
    if operation is None:
        raise ApplicationError(status_code=503, body={"message": "Dropbox import is not installed on this server."})
    return [
        execution_create(user=user, operation_id=operation.id, job_name=filename,
                         inputs={"download_link": link, "filename": filename})[0]
        for link, filename in files
    ]


def _enqueue_submit(execution_id: uuid.UUID) -> None:
    from mev.jobs.tasks import submit_execution

    def send() -> None:
        try:
            submit_execution.delay(execution_id=str(execution_id))
        except Exception:  # noqa: BLE001  (broker down: the sweep submits it later, §7.3.1)
            logger.exception("Could not enqueue the submission of %s; the sweep will retry", execution_id)

    transaction.on_commit(send)


# --------------------------------------------------------------------------------------------------
# Submission


def _converted_inputs(execution: ExecutedOperation, workdir: Path) -> dict[str, Any]:
    from mev.operations.models import OperationResource
    from mev.resources.models import Resource

    operation = execution.operation
    bundle_dir = Path(operation.bundle_dir)
    bundled = OperationResource.objects.filter(operation=operation)

    def find(resource_id: str) -> Any:
        # Files bundled with this operation (validated per input key at creation), else user files.
        return bundled.filter(pk=resource_id).first() or Resource.objects.filter(pk=resource_id).first()

    def stage(resource_id: str) -> str:
        resource = find(resource_id)
        if resource is None:
            raise ConversionError(f"The input file {resource_id} no longer exists.")
        try:
            return stage_resource(resource, workdir)
        except FileNotFoundError as exc:
            raise ConversionError(f"The input file {resource.name} could not be read: {exc}") from exc

    def resource_type_of(resource_id: str) -> str:
        resource = find(resource_id)
        return (resource.resource_type or "") if resource is not None else ""

    converted: dict[str, Any] = {}
    for key, definition in operation.spec.get("inputs", {}).items():
        if key not in execution.inputs:
            continue
        try:
            converted[key] = convert_input(definition["converter"], execution.inputs[key], stage=stage,
                                           resource_type_of=resource_type_of, bundle_dir=bundle_dir)
        except ConversionError as exc:
            raise ConversionError(f"{definition.get('name') or key} {exc.message}") from exc
    return converted


LIMITS_FILE = "limits.json"


def _limits(bundle_dir: Path) -> dict[str, Any]:
    """Settings give the limits; a bundle's optional limits.json may lower the time and memory limits
    and ask for up to MEV_JOB_MAX_CPUS cores."""
    limits: dict[str, Any] = {
        "wall_seconds": float(_setting("MEV_JOB_TIMEOUT_SECONDS", 24 * 3600)),
        "memory_bytes": int(_setting("MEV_JOB_MEMORY_BYTES", 8 * 1024**3)),
        "cpus": int(_setting("MEV_JOB_CPUS", 1)),
    }
    try:
        requested = json.loads((bundle_dir / LIMITS_FILE).read_text())
    except (OSError, ValueError):
        return limits
    if not isinstance(requested, dict):
        return limits
    for key in ("wall_seconds", "memory_bytes"):
        value = requested.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            limits[key] = type(limits[key])(min(value, limits[key]))
    cpus = requested.get("cpus")
    if isinstance(cpus, int) and not isinstance(cpus, bool) and cpus > 0:
        limits["cpus"] = min(cpus, int(_setting("MEV_JOB_MAX_CPUS", os.cpu_count() or 1)))
    return limits


def execution_submit(*, execution_id: uuid.UUID | str) -> ExecutedOperation | None:
    """Stage inputs and start the run. A claim in runner_state keeps two submitters apart; a claim
    whose submitter died expires and the sweep submits again (the runner stops the first attempt)."""
    claim_seconds = float(_setting("MEV_SUBMIT_CLAIM_SECONDS", 120))
    with transaction.atomic():
        execution = ExecutedOperation.objects.select_for_update().select_related("operation").filter(
            pk=execution_id).first()
        if execution is None or execution.state != JobState.QUEUED or execution.cancel_requested:
            return execution
        state = dict(execution.runner_state or {})
        claimed = state.get("claimed_at")
        if claimed and time.time() - float(claimed) < claim_seconds:
            return execution
        state["claimed_at"] = time.time()
        state["submit_attempts"] = int(state.get("submit_attempts", 0)) + 1
        execution.runner_state = state
        execution.save(update_fields=["runner_state"])

    request = None
    try:
        runner = get_runner(execution.runner)
        workdir = workdir_for(execution.id)
        workdir.mkdir(parents=True, exist_ok=True)
        request = SubmitRequest(
            execution_id=str(execution.id), operation_spec=execution.operation.spec,
            bundle_dir=Path(execution.operation.bundle_dir), inputs=_converted_inputs(execution, workdir),
            workdir=workdir, limits=_limits(Path(execution.operation.bundle_dir)), runner_state=dict(state),
        )
        job_id = runner.submit(request)
    except RunnerError as exc:
        if exc.transient and state["submit_attempts"] < 5:
            ExecutedOperation.objects.filter(pk=execution.id).update(
                runner_state={**state, "claimed_at": None, "last_error": str(exc)})
            return execution
        return _fail(execution.id, [f"The job could not be submitted: {exc}"], expect=frozenset({JobState.QUEUED}))
    except ConversionError as exc:
        return _fail(execution.id, [exc.message], expect=frozenset({JobState.QUEUED}))
    except Exception as exc:  # noqa: BLE001  (a failed submission is a failed job, §7.3.9)
        logger.exception("Submission of %s failed", execution.id)
        return _fail(execution.id, [f"The job could not be submitted: {exc}"], expect=frozenset({JobState.QUEUED}))

    runner_state = {**request.runner_state, "submit_attempts": state["submit_attempts"]}
    submitted = execution_transition(execution_id=execution.id, to_state=JobState.SUBMITTED, job_id=job_id,
                                     runner_state=runner_state, detail=f"{runner.name} handle {job_id}",
                                     expect=frozenset({JobState.QUEUED}))
    if submitted is None:  # canceled while we were submitting
        runner.cancel(job_id, runner_state=runner_state)
        return ExecutedOperation.objects.get(pk=execution.id)
    # A cheap first look, so a started job shows RUNNING without waiting for the sweep.
    started = None
    try:
        if runner.poll(job_id, runner_state=runner_state).phase == RunPhase.RUNNING:
            started = execution_transition(execution_id=execution.id, to_state=JobState.RUNNING,
                                           expect=frozenset({JobState.SUBMITTED}), detail="started")
    except RunnerError:
        pass
    _watch_for_end(runner, execution.id, job_id, runner_state)
    return started or submitted


# --------------------------------------------------------------------------------------------------
# Acting on the end of a run at once: the runner calls back when the run ends (the local runner waits
# for the process to exit) and `advance_execution` is sent. A one-shot nudge, not a chain: the sweep
# stays the one supervisor, and a lost nudge only leaves the job to the next sweep. The state guards
# (`expect=`) and the finalization claim keep a nudge racing the sweep, or another nudge, to one
# finalization.

_exit_notifications = False


def execution_exit_notifications(*, enabled: bool) -> None:
    """Switch the nudges on in Celery worker processes (mev.jobs.tasks does, at worker start). Elsewhere
    (the web process running tasks eagerly, scripts) no watcher thread is started."""
    global _exit_notifications
    _exit_notifications = enabled


def _watch_for_end(runner: Any, execution_id: uuid.UUID, job_id: str, runner_state: dict[str, Any]) -> None:
    if not _exit_notifications:
        return

    def watch() -> None:
        try:
            runner.watch(job_id, runner_state=runner_state, on_end=lambda: _enqueue_advance(execution_id))
        except Exception:  # noqa: BLE001  (the sweep notices the end anyway)
            logger.warning("Could not watch the run of %s; the sweep will notice its end", execution_id,
                           exc_info=True)

    transaction.on_commit(watch)


def _enqueue_advance(execution_id: uuid.UUID) -> None:
    """On the runner's watcher thread, when a run has ended."""
    from django.db import connections

    from mev.jobs.tasks import advance_execution

    try:
        advance_execution.delay(execution_id=str(execution_id))
    except Exception:  # noqa: BLE001  (broker down: the sweep notices the end)
        logger.exception("Could not enqueue the advance of %s; the sweep will notice its end", execution_id)
    finally:
        # A task run eagerly (MEV_CELERY_EAGER) used this thread's own connection: do not leave it open.
        connections.close_all()


# --------------------------------------------------------------------------------------------------
# The sweep's step for one job


def _age(execution: ExecutedOperation) -> float:
    return (timezone.now() - execution.state_changed).total_seconds()


def _record_runner_error(execution: ExecutedOperation, exc: RunnerError) -> None:
    errors = int(execution.runner_state.get("poll_errors", 0)) + 1
    if errors >= int(_setting("MEV_RUNNER_ERROR_LIMIT", 10)) or not exc.transient:
        _fail(execution.id, [f"The job's engine could not be reached: {exc}"],
              expect=frozenset({JobState.SUBMITTED, JobState.RUNNING}))
        return
    ExecutedOperation.objects.filter(pk=execution.id).update(runner_state={**execution.runner_state,
                                                                          "poll_errors": errors})


def _finish_failed_run(execution: ExecutedOperation, messages: list[str], detail: str) -> None:
    metrics: dict[str, Any] = {}
    try:
        result = get_runner(execution.runner).collect(execution.job_id, runner_state=execution.runner_state,
                                                      workdir=workdir_for(execution.id))
        metrics = result.metrics
    except Exception:  # noqa: BLE001  (metrics are a bonus; the failure must still be recorded)
        logger.warning("No metrics for failed job %s", execution.id, exc_info=True)
    _fail(execution.id, messages, detail=detail, metrics=metrics,
          expect=frozenset({JobState.SUBMITTED, JobState.RUNNING}))


def execution_advance(*, execution_id: uuid.UUID | str, finalize_now: bool = False) -> None:
    """Look at one active job once and move it on: submit, poll, time out, finalize. With `finalize_now`
    (a run's end was just notified) a finished run is finalized here, not in a task of its own."""
    execution = ExecutedOperation.objects.select_related("operation").filter(pk=execution_id).first()
    if execution is None or execution.state not in ACTIVE_STATES:
        return
    if execution.state == JobState.QUEUED:
        if _age(execution) > float(_setting("MEV_QUEUED_TIMEOUT_SECONDS", 3600)):
            _fail(execution.id, ["The job could not be submitted in time. Please try again later."],
                  expect=frozenset({JobState.QUEUED}))
        elif _age(execution) > float(_setting("MEV_SUBMIT_GRACE_SECONDS", 5)):
            execution_submit(execution_id=execution.id)
        return
    if execution.state == JobState.FINALIZING:
        _advance_finalizing(execution)
        return

    runner = get_runner(execution.runner)
    try:
        status = runner.poll(execution.job_id, runner_state=execution.runner_state)
    except RunnerError as exc:
        _record_runner_error(execution, exc)
        return
    limit = float(execution.runner_state.get("wall_seconds") or _setting("MEV_JOB_TIMEOUT_SECONDS", 24 * 3600))
    if status.phase in (RunPhase.FAILED, RunPhase.CANCELED) and execution.cancel_requested:
        # Stopped by the user's cancel: its end can be noticed before execution_cancel records it.
        _record_cancel(execution.id)
    elif status.phase == RunPhase.SUBMITTED:
        if _age(execution) > float(_setting("MEV_SUBMITTED_TIMEOUT_SECONDS", 600)):
            runner.cancel(execution.job_id, runner_state=execution.runner_state)
            _fail(execution.id, ["The job was submitted but never started."], expect=frozenset({JobState.SUBMITTED}))
    elif status.phase == RunPhase.RUNNING:
        if execution.state == JobState.SUBMITTED:
            execution_transition(execution_id=execution.id, to_state=JobState.RUNNING, detail=status.detail,
                                 expect=frozenset({JobState.SUBMITTED}))
        elif _age(execution) > limit + 60:
            runner.cancel(execution.job_id, runner_state=execution.runner_state)
            _fail(execution.id, [f"The job exceeded its time limit of {limit:g} seconds and was stopped."],
                  expect=frozenset({JobState.RUNNING}))
    elif status.phase == RunPhase.SUCCEEDED:
        if execution.state == JobState.SUBMITTED:
            execution_transition(execution_id=execution.id, to_state=JobState.RUNNING, detail="started",
                                 expect=frozenset({JobState.SUBMITTED}))
        # Finalizing here: the claim is taken with the move, so no sweep can start a second finalization.
        claim = {"finalize_claimed_at": time.time(), "finalize_attempts": 1} if finalize_now else None
        moved = execution_transition(execution_id=execution.id, to_state=JobState.FINALIZING, detail=status.detail,
                                     expect=frozenset({JobState.RUNNING}), runner_state_update=claim)
        if moved is not None:
            if finalize_now:
                _finalize_claimed(moved, attempts=1)
            else:
                _enqueue_finalize(execution.id)
    elif status.phase == RunPhase.FAILED:
        _finish_failed_run(execution, status.error_messages, status.detail)
    elif status.phase == RunPhase.CANCELED:
        execution_transition(execution_id=execution.id, to_state=JobState.CANCELED, detail=status.detail,
                             error_messages=["The job was canceled by its engine."],
                             expect=frozenset({JobState.SUBMITTED, JobState.RUNNING}))


def _enqueue_finalize(execution_id: uuid.UUID) -> None:
    from mev.jobs.tasks import finalize_execution

    def send() -> None:
        try:
            finalize_execution.delay(execution_id=str(execution_id))
        except Exception:  # noqa: BLE001  (the sweep retries stale finalizations)
            logger.exception("Could not enqueue the finalization of %s", execution_id)

    transaction.on_commit(send)


def _advance_finalizing(execution: ExecutedOperation) -> None:
    if _age(execution) > float(_setting("MEV_FINALIZE_TIMEOUT_SECONDS", 1800)):
        remove_output_resources(execution)
        _fail(execution.id, ["Collecting the job's outputs did not finish in time."],
              expect=frozenset({JobState.FINALIZING}))
        return
    claimed = execution.runner_state.get("finalize_claimed_at")
    retry = float(_setting("MEV_FINALIZE_RETRY_SECONDS", 120))
    if not claimed or time.time() - float(claimed) > retry:
        # Never started, or its worker died: finalization is idempotent, so run it again.
        execution_finalize(execution_id=execution.id)


# --------------------------------------------------------------------------------------------------
# Finalization


def execution_finalize(*, execution_id: uuid.UUID | str) -> ExecutedOperation | None:
    """Every path ends COMPLETED or FAILED (§7.3.3); after 3 interrupted attempts the job fails."""
    retry = float(_setting("MEV_FINALIZE_RETRY_SECONDS", 120))
    with transaction.atomic():
        execution = ExecutedOperation.objects.select_for_update().select_related("operation").filter(
            pk=execution_id).first()
        if execution is None or execution.state != JobState.FINALIZING:
            return execution
        state = dict(execution.runner_state or {})
        claimed = state.get("finalize_claimed_at")
        if claimed and time.time() - float(claimed) < retry:
            return execution
        attempts = int(state.get("finalize_attempts", 0)) + 1
        state.update(finalize_claimed_at=time.time(), finalize_attempts=attempts)
        execution.runner_state = state
        execution.save(update_fields=["runner_state"])
    return _finalize_claimed(execution, attempts=attempts)


def _finalize_claimed(execution: ExecutedOperation, *, attempts: int) -> ExecutedOperation | None:
    if attempts > 3:
        remove_output_resources(execution)
        return _fail(execution.id, [FINALIZE_CRASH_MESSAGE], detail="finalization attempts exhausted",
                     expect=frozenset({JobState.FINALIZING}))
    metrics: dict[str, Any] = {}
    try:
        workdir = workdir_for(execution.id)
        result = get_runner(execution.runner).collect(execution.job_id, runner_state=execution.runner_state,
                                                      workdir=workdir)
        metrics = result.metrics
        done = finalize_outputs(execution, result, Path(execution.runner_state.get("workdir") or workdir))
    except FinalizeFailure as exc:
        return _fail(execution.id, exc.messages, metrics=metrics, expect=frozenset({JobState.FINALIZING}))
    except (RunnerError, ConversionError) as exc:
        remove_output_resources(execution)
        return _fail(execution.id, [str(exc)], metrics=metrics, expect=frozenset({JobState.FINALIZING}))
    except Exception as exc:  # noqa: BLE001
        logger.exception("Finalization of %s failed", execution.id)
        remove_output_resources(execution)
        return _fail(execution.id, [FINALIZE_CRASH_MESSAGE], detail=f"finalization error: {exc!r}", metrics=metrics,
                     expect=frozenset({JobState.FINALIZING}))
    completed = execution_transition(execution_id=execution.id, to_state=JobState.COMPLETED, outputs=done.outputs,
                                     error_messages=None, metrics=metrics, expect=frozenset({JobState.FINALIZING}))
    if completed is None:
        remove_output_resources(execution)
    return completed


# --------------------------------------------------------------------------------------------------
# User actions


def execution_cancel(*, execution: ExecutedOperation) -> ExecutedOperation:
    if execution.state in TERMINAL_STATES:
        raise ApplicationError(body={"message": "This job has already finished."})
    if execution.state == JobState.FINALIZING:
        raise ApplicationError(status_code=409,
                               body={"message": "This job has finished running and its outputs are being collected; "
                                                "it can no longer be canceled."})
    ExecutedOperation.objects.filter(pk=execution.id).update(cancel_requested=True)
    execution.refresh_from_db()
    if execution.job_id:
        try:
            get_runner(execution.runner).cancel(execution.job_id, runner_state=execution.runner_state)
        except RunnerError:
            logger.warning("Engine cancel of %s failed", execution.id, exc_info=True)
    canceled = _record_cancel(execution.id)
    return canceled or ExecutedOperation.objects.get(pk=execution.id)


def _record_cancel(execution_id: Any) -> ExecutedOperation | None:
    return execution_transition(
        execution_id=execution_id, to_state=JobState.CANCELED, status="Canceled by the user.",
        error_messages=[CANCELED_MESSAGE], detail="canceled by the user", cancel_requested=True,
        expect=frozenset({JobState.QUEUED, JobState.SUBMITTED, JobState.RUNNING}),
    )


def execution_rerun(*, user: User, execution: ExecutedOperation) -> ExecutedOperation:
    rerun, _ = execution_create(user=user, operation_id=execution.operation_id, workspace_id=execution.workspace_id,
                                job_name=execution.job_name, inputs=execution.inputs, reuse=False)
    return rerun


# --------------------------------------------------------------------------------------------------
# The periodic sweep


_SWEEP_LOCK_KEY = 0x6D65765F7377  # "mev_sw": one sweep at a time across every worker (PostgreSQL)


@contextlib.contextmanager
def _sweep_lock() -> Iterator[bool]:
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_SWEEP_LOCK_KEY])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [_SWEEP_LOCK_KEY])


def jobs_sweep() -> dict[str, int]:
    """Advance every active job once; overlapping sweeps skip. Errors in one job never stop the others."""
    with _sweep_lock() as acquired:
        if not acquired:
            return {"seen": 0, "errors": 0, "skipped": 1}
        return _sweep()


def _sweep() -> dict[str, int]:
    batch = int(_setting("MEV_SWEEP_BATCH", 500))
    ids = list(ExecutedOperation.objects.filter(state__in=ACTIVE_STATES).order_by("state_changed")
               .values_list("id", flat=True)[:batch])
    failures = 0
    for execution_id in ids:
        try:
            execution_advance(execution_id=execution_id)
        except Exception:  # noqa: BLE001
            failures += 1
            logger.exception("Sweep step for %s failed", execution_id)
    return {"seen": len(ids), "errors": failures}


@transaction.atomic
def execution_tree_save(*, user: User, workspace_id: uuid.UUID | str, tree: list[dict[str, Any]]) -> Any:
    """Store the tree as a validated JSON resource in the workspace (§2.9)."""
    import tempfile

    from mev.jobs.staging import store_file
    from mev.resources.models import Resource
    from mev.workspaces.access import workspaces_editable_by
    from mev.workspaces.models import WorkspaceResource

    workspace = workspaces_editable_by(user).filter(pk=workspace_id).first()
    if workspace is None:
        raise ApplicationError(status_code=403, body={"workspace_uuid": "You have read-only access to this workspace."})
    name = f"workspace_export.{workspace_id}.{timezone.now().strftime('%m-%d-%Y-%H-%M-%S')}.json"
    resource_id = uuid.uuid4()
    with tempfile.TemporaryDirectory(prefix="mev-tree-") as tmp:
        path = Path(tmp) / "tree.json"
        path.write_text(json.dumps(tree))
        key, size, digest = store_file(path=path, owner_id=user.pk, resource_id=resource_id, name="tree.json")
        resource = Resource.objects.create(id=resource_id, owner=user, name=name, datafile=key, size=size,
                                           checksum=digest, is_active=True, status="")
        problem = validate_output_file(resource, path, "JSON")
        if problem:
            raise ApplicationError(status_code=500, body={"error": f"The tree could not be stored: {problem}"})
        resource.save()
    WorkspaceResource.objects.create(workspace=workspace, resource=resource)
    return resource
