"""What the remote runners (Cromwell, WES) share: data in and out of the engine, and health checks.

Data in. The jobs app stages every input resource into `<workdir>/inputs/<resource id>/<name>`
before `submit`. A remote engine cannot read our work directory, so each staged path is given a
location the engine can read:

- with `MEV_ENGINE_S3_PREFIX` set (storage on S3), the resource's storage key under that prefix, as
  an `s3://` URI: nothing is copied;
- otherwise a path under `MEV_ENGINE_SHARED_DIR/<execution id>/inputs/` (a hard link, or a copy when
  the link is impossible); a path already inside the shared directory is passed as it is;
- with no shared directory configured, the engine is taken to see our file system (same machine).

Data out. An engine reports where its outputs are (a path, `file://`, `s3://` or http(s) URL).
`fetch_output` brings each into `<workdir>/outputs/<output key>/` (a hard link when possible); a file
already inside the work directory is recorded where it is, never copied twice, and a repeated collect
reuses what it fetched. Local paths are read only under `MEV_ENGINE_OUTPUT_ROOTS` (default: the
shared directory), so a workflow cannot make a server file the user's output.

Runners. `EngineRunner` is what the Cromwell and WES runners share: one `EngineClient` (injected, or
built from the run's recorded base URL, else the configured one), the answer to a 404 for a run
(`lost_or_waiting`), what a submission records in `runner_state` (`submission_state`), the error
for an engine's refusal (`engine_error`) and the health probe.

Health. `check_engines` asks each configured engine for its version with a short timeout; it backs
the admin status endpoint and a start-up system check that warns (never fails) when an engine
configured in settings cannot be reached.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from django.conf import settings
from django.core import checks

from mev.jobs.runners.base import Runner, RunnerError, RunPhase, RunStatus, SubmitRequest
from mev.jobs.runners.http import EngineClient, error_text

FILE_INPUT_CONVERTERS = frozenset({"resource.single", "resource.list"})
RESOURCE_ATTRIBUTE_TYPES = frozenset({"DataResource", "VariableDataResource", "OperationDataResource"})
_UUID_DIR = re.compile(r"^[0-9a-fA-F-]{32,36}$")


def engine_setting(name: str, default: Any = None) -> Any:
    return getattr(settings, name, default)


def submit_grace_seconds() -> float:
    return float(engine_setting("MEV_ENGINE_SUBMIT_GRACE_SECONDS", 60))


def within_grace(runner_state: dict[str, Any]) -> bool:
    """Whether a 404 for this run can still be the engine's delay in recording a fresh submission."""
    submitted = runner_state.get("submitted_at")
    if submitted is None:
        return True
    return time.time() - float(submitted) < submit_grace_seconds()


NO_RECORD_MESSAGE = "The engine has no record of this run."
RETRYABLE_STATUSES = (408, 429)


def engine_error(response: Any, prefix: str = "", *,
                 transient_statuses: tuple[int, ...] = RETRYABLE_STATUSES) -> RunnerError:
    """`<prefix><the engine's error text> (HTTP <status>)`, transient for the given statuses."""
    return RunnerError(f"{prefix}{error_text(response)} (HTTP {response.status_code})",
                       transient=response.status_code in transient_statuses)


def submission_state(client: EngineClient, stager: InputStager, request: SubmitRequest, /,
                     **fields: Any) -> dict[str, Any]:
    """What a remote runner records in `runner_state` at submission (`fields`: engine and run id)."""
    return {
        **fields, "base_url": client.base_url, "submitted_at": time.time(), "staged_inputs": stager.mapped,
        "shared_inputs_dir": str(stager.target) if stager.target and stager.mapped else None,
        "output_specs": request.operation_spec.get("outputs") or {},
    }


class EngineRunner(Runner):
    """A runner that hands the run to a remote engine over HTTP (see the module doc)."""

    stages_local_paths = False
    engine_label = "the engine"  # in RunStatus details: "not yet recorded by <label>"
    health_route = ""

    def __init__(self, client: EngineClient | None = None) -> None:
        self._client = client

    def engine_url(self) -> str:
        """The configured engine's base URL (RunnerError when none is configured)."""
        raise NotImplementedError

    def _engine(self, runner_state: dict[str, Any] | None = None) -> EngineClient:
        if self._client is not None:
            return self._client
        self._client = EngineClient((runner_state or {}).get("base_url") or self.engine_url())
        return self._client

    def lost_or_waiting(self, runner_state: dict[str, Any]) -> RunStatus:
        """The status of a run the engine does not know (yet)."""
        if within_grace(runner_state):
            return RunStatus(RunPhase.SUBMITTED, detail=f"not yet recorded by {self.engine_label}")
        return RunStatus(RunPhase.FAILED, detail=f"unknown to {self.engine_label}",
                         error_messages=[NO_RECORD_MESSAGE])

    def _cancel_run(self, route: str, runner_state: dict[str, Any], *, gone_statuses: tuple[int, ...],
                    error_prefix: str) -> None:
        """POST the engine's cancel `route`; `gone_statuses` mean there is nothing left to stop."""
        response = self._engine(runner_state).post(route)
        if response.ok or response.status_code in gone_statuses:
            return
        raise engine_error(response, error_prefix)

    def version_of(self, body: Any) -> str:
        """The version text from the engine's answer on `health_route`."""
        raise NotImplementedError

    def health(self, *, timeout: float = 5.0, tries: int = 2) -> dict[str, Any]:
        client = self._client or EngineClient(self.engine_url(), timeout=timeout, tries=tries)
        try:
            body = client.get_json(self.health_route)
        except RunnerError as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": True, "version": self.version_of(body)}


# --------------------------------------------------------------------------------------------------
# Data in


def _canonical_converter(converter_id: Any) -> str:
    try:
        from mev.operations.converters import canonical_converter_id

        return canonical_converter_id(converter_id)
    except Exception:  # noqa: BLE001  (an unknown id is the spec's problem, reported at ingestion)
        return str(converter_id)


def is_file_input(definition: dict[str, Any]) -> bool:
    """Inputs whose converted value is a path, or a list of paths (not joined strings)."""
    spec = definition.get("spec") or {}
    return (spec.get("attribute_type") in RESOURCE_ATTRIBUTE_TYPES
            and _canonical_converter(definition.get("converter")) in FILE_INPUT_CONVERTERS)


def is_file_output(definition: dict[str, Any]) -> bool:
    spec = definition.get("spec") or {}
    return spec.get("attribute_type") in RESOURCE_ATTRIBUTE_TYPES


class InputStager:
    """Gives each locally staged input file a location the engine can read (see the module doc)."""

    def __init__(self, *, execution_id: str, workdir: Path, bundle_dir: Path | None = None,
                 resource_key: Callable[[str], str | None] | None = None) -> None:
        self.workdir = Path(workdir)
        self.local_inputs = (self.workdir / "inputs").resolve()
        self.bundle_dir = Path(bundle_dir).resolve() if bundle_dir else None
        shared = engine_setting("MEV_ENGINE_SHARED_DIR") or ""
        self.shared_root = Path(shared).resolve() if shared else None
        self.target = (self.shared_root / execution_id / "inputs") if self.shared_root else None
        self.s3_prefix = (engine_setting("MEV_ENGINE_S3_PREFIX") or "").rstrip("/")
        self._resource_key = resource_key or _resource_storage_key
        self.mapped: dict[str, str] = {}

    def _local_file(self, value: str) -> Path | None:
        if not value or not os.path.isabs(value):
            return None
        path = Path(value).resolve()
        roots = [r for r in (self.local_inputs, self.bundle_dir) if r is not None]
        if any(root == path or root in path.parents for root in roots) and path.is_file():
            return path
        return None

    def location(self, value: str) -> str:
        """The engine's location for a staged path; other strings come back unchanged."""
        if value in self.mapped:
            return self.mapped[value]
        path = self._local_file(value)
        if path is None:
            return value
        located = self._s3_uri(path) or self._shared_path(path)
        self.mapped[value] = located
        return located

    def _s3_uri(self, path: Path) -> str | None:
        if not self.s3_prefix or self.local_inputs not in path.parents:
            return None
        resource_dir = path.relative_to(self.local_inputs).parts[0]
        if not _UUID_DIR.match(resource_dir):
            return None
        key = self._resource_key(resource_dir)
        return f"{self.s3_prefix}/{key.lstrip('/')}" if key else None

    def _shared_path(self, path: Path) -> str:
        if self.shared_root is None or self.target is None:
            return str(path)  # the engine shares our file system
        if self.shared_root in path.parents:
            return str(path)
        if self.local_inputs in path.parents:
            relative = path.relative_to(self.local_inputs)
        else:
            relative = Path("bundle") / path.relative_to(self.bundle_dir or path.parent)
        target = self.target / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if not (target.exists() and target.stat().st_size == path.stat().st_size):
            link_or_copy(path, target)
        return str(target)

    def convert(self, inputs: dict[str, Any], input_specs: dict[str, Any], *,
                file_object: Callable[[str], Any] | None = None) -> dict[str, Any]:
        """The inputs with every staged path replaced by its engine location.

        `file_object` turns the location of a file input into what the language wants (a CWL File
        object); without it locations stay strings (WDL). Joined strings (csv/space converters) get
        their paths replaced inside the text.
        """
        converted: dict[str, Any] = {}
        for key, value in inputs.items():
            definition = input_specs.get(key) or {}
            if is_file_input(definition):
                if isinstance(value, list):
                    converted[key] = [self._file_value(v, file_object) for v in value]
                else:
                    converted[key] = self._file_value(value, file_object)
            else:
                converted[key] = self._replace_in(value)
        return converted

    def _file_value(self, value: Any, file_object: Callable[[str], Any] | None) -> Any:
        if not isinstance(value, str):
            return self._replace_in(value)
        located = self.location(value)
        return file_object(located) if file_object else located

    def _replace_in(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self._replace_in(v) for v in value]
        if isinstance(value, dict):
            return {k: self._replace_in(v) for k, v in value.items()}
        if not isinstance(value, str):
            return value
        if self._local_file(value) is not None:
            return self.location(value)
        # Paths joined into one string (resource.csv / resource.space / resource.single_with_type).
        for token in sorted(set(re.split(r"[,\s]|:::", value)), key=len, reverse=True):
            if token and self._local_file(token) is not None:
                value = value.replace(token, self.location(token))
        return value


def release_inputs(runner_state: dict[str, Any]) -> None:
    """Remove the inputs a finished run had in the shared directory (links or copies made for it)."""
    directory = runner_state.get("shared_inputs_dir")
    shared = engine_setting("MEV_ENGINE_SHARED_DIR") or ""
    if not directory or not shared:
        return
    path, root = Path(directory).resolve(), Path(shared).resolve()
    if root in path.parents and path.name == "inputs":
        shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # the execution's folder, when nothing else is in it


def _resource_storage_key(resource_id: str) -> str | None:
    from mev.resources.models import Resource

    row = Resource.objects.filter(pk=resource_id).values("standardized_file", "datafile").first()
    if row is None:
        return None
    return row["standardized_file"] or row["datafile"] or None


def link_or_copy(source: Path, target: Path) -> None:
    """A hard link when both sit on one file system (no data copied), else a copy."""
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def bundle_workflow_files(bundle_dir: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """The bundle's workflow files (relative paths, sorted), skipping hidden parts and tests."""
    found = []
    for path in sorted(Path(bundle_dir).rglob("*")):
        relative = path.relative_to(bundle_dir)
        if any(part.startswith(".") or part in {"tests", "__pycache__"} for part in relative.parts):
            continue
        if path.is_file() and path.suffix.lower() in suffixes:
            found.append(relative)
    return found


# --------------------------------------------------------------------------------------------------
# Data out


def _local_path_of(location: str) -> Path | None:
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" and os.path.isabs(location):
        return Path(location)
    return None


def output_roots() -> list[Path] | None:
    """Directories from which engine-reported local paths may be read: `MEV_ENGINE_OUTPUT_ROOTS`
    (a list, or a comma-separated string), else the shared directory; None (no limit) when neither
    is set, i.e. an engine on this very machine."""
    configured = engine_setting("MEV_ENGINE_OUTPUT_ROOTS")
    if isinstance(configured, str):
        configured = [part.strip() for part in configured.split(",") if part.strip()]
    if not configured:
        shared = engine_setting("MEV_ENGINE_SHARED_DIR") or ""
        configured = [shared] if shared else []
    return [Path(p).resolve() for p in configured] or None


def fetch_output(location: str, *, workdir: Path, key: str,
                 download: Callable[[str, Path], None] | None = None) -> str:
    """Bring one engine output into `<workdir>/outputs/<key>/`; return the local path (see module doc)."""
    if not isinstance(location, str) or not location:
        raise RunnerError(f"The engine reported no location for the output {key}.")
    workdir = Path(workdir)
    root = workdir.resolve()
    safe_key = re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("._") or "output"
    source = _local_path_of(location)
    if source is not None:
        resolved = source.resolve()
        if root in resolved.parents:
            return str(resolved)  # already ours: record it where it is
        roots = output_roots()
        if roots is not None and not any(r in resolved.parents for r in roots):
            raise RunnerError(f"The output {key} ({location}) is outside the directories engines may write to.")
        if not resolved.is_file():
            raise RunnerError(f"The output {key} ({location}) is not readable from this server.")
        target = workdir / "outputs" / safe_key / resolved.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not (target.exists() and target.stat().st_size == resolved.stat().st_size):
            link_or_copy(resolved, target)
        return str(target)
    name = os.path.basename(urlparse(location).path) or "output"
    target = workdir / "outputs" / safe_key / name
    if target.exists():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    scheme = urlparse(location).scheme
    if scheme == "s3":
        _download_s3(location, target)
    elif scheme in {"http", "https"} and download is not None:
        download(location, target)
    else:
        raise RunnerError(f"The output {key} is at {location}, which this server cannot fetch.")
    return str(target)


def _download_s3(uri: str, target: Path) -> None:
    try:
        import boto3
    except ImportError as exc:  # pragma: no cover
        raise RunnerError("Fetching s3:// outputs needs boto3.") from exc
    parsed = urlparse(uri)
    tmp = target.with_name(f".{target.name}.part")
    try:
        boto3.client("s3").download_file(parsed.netloc, parsed.path.lstrip("/"), str(tmp))
    except Exception as exc:  # noqa: BLE001  (botocore raises many kinds; all mean "try again later")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise RunnerError(f"Could not fetch {uri}: {exc}", transient=True) from exc
    os.replace(tmp, target)


def tail_text(text: str, max_bytes: int) -> str:
    data = (text or "").encode("utf-8", "replace")
    return data[-max_bytes:].decode("utf-8", "replace") if len(data) > max_bytes else (text or "")


def read_local_tail(location: Any, max_bytes: int = 20000) -> str:
    """The end of a log file the engine reported by path, when this server can read it."""
    if not isinstance(location, str):
        return ""
    path = _local_path_of(location)
    if path is None or not path.is_file():
        return ""
    with open(path, "rb") as handle:
        size = path.stat().st_size
        handle.seek(max(0, size - max_bytes))
        return handle.read().decode("utf-8", "replace")


def wall_seconds(start: Any, end: Any) -> float | None:
    def parse(value: Any) -> datetime | None:
        if not isinstance(value, str) or not value:
            return None
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    started, ended = parse(start), parse(end)
    if started is None or ended is None:
        return None
    return max(0.0, (ended - started).total_seconds())


# --------------------------------------------------------------------------------------------------
# Health


def configured_engines() -> list[tuple[str, str]]:
    """(mode, url) of each remote engine configured in settings."""
    engines = []
    if engine_setting("MEV_CROMWELL_URL"):
        engines.append(("cromwell", str(engine_setting("MEV_CROMWELL_URL"))))
    if engine_setting("MEV_WES_URL"):
        engines.append(("wes", str(engine_setting("MEV_WES_URL"))))
    return engines


def check_engines(*, timeout: float = 5.0, tries: int = 2) -> list[dict[str, Any]]:
    """[{engine, url, ok, version|error, checked_at}] for every configured remote engine."""
    from mev.jobs.runners.cromwell import CromwellRunner
    from mev.jobs.runners.wes import WesRunner

    factories = {"cromwell": CromwellRunner, "wes": WesRunner}
    report = []
    for mode, url in configured_engines():
        entry: dict[str, Any] = {"engine": mode, "url": url}
        try:
            health = factories[mode]().health(timeout=timeout, tries=tries)
        except Exception as exc:  # noqa: BLE001  (a status page reports every failure)
            health = {"ok": False, "error": str(exc)}
        entry.update(health)
        entry["checked_at"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        report.append(entry)
    return report


@checks.register("mev_engines")
def engines_reachable_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """A warning (never an error) for each configured engine that does not answer."""
    if not engine_setting("MEV_ENGINE_STARTUP_CHECK", True) or not configured_engines():
        return []
    warnings = []
    for entry in check_engines(timeout=2.0, tries=1):
        if not entry.get("ok"):
            warnings.append(checks.Warning(
                f"The {entry['engine']} engine at {entry['url']} is not reachable: {entry.get('error')}",
                hint="Jobs for this mode will wait and retry; check the engine or the MEV_*_URL setting.",
                id="mev.jobs.W001",
            ))
    return warnings
