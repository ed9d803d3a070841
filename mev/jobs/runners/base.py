"""The one interface every runner implements (local subprocess, Cromwell, GA4GH WES).

The jobs app drives runners only through this interface and the registry below: adding an engine
is adding one module and one `register_runner` line. Runners never touch the database state machine
themselves; they report, and `mev.jobs.services` decides the transitions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class RunPhase(StrEnum):
    SUBMITTED = "submitted"  # the engine knows the run but has not started it
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


@dataclass
class RunStatus:
    phase: RunPhase
    detail: str = ""  # human-readable, e.g. the engine's own state text
    error_messages: list[str] = field(default_factory=list)  # user-facing, when FAILED


@dataclass
class RunResult:
    """What a finished run produced, in engine-neutral form."""

    # output key -> raw value as the tool/engine reported it (paths are local Paths once fetched)
    outputs: dict[str, Any]
    stdout_tail: str = ""
    stderr_tail: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)  # wall_seconds, cpu_seconds, max_rss_bytes, exit_code


@dataclass
class SubmitRequest:
    execution_id: str
    operation_spec: dict[str, Any]  # the stored 10-key document
    bundle_dir: Path  # where the operation's files are
    inputs: dict[str, Any]  # converted inputs: what the engine sees
    workdir: Path  # a fresh directory owned by this execution
    limits: dict[str, Any] = field(default_factory=dict)  # wall_seconds, memory_bytes, cpus
    # Filled in by `submit` with what later calls need (pid, start time, engine URLs...); the jobs app
    # stores it as ExecutedOperation.runner_state and passes it back to poll/collect/cancel/logs.
    runner_state: dict[str, Any] = field(default_factory=dict)


class RunnerError(Exception):
    """A failure to talk to the engine; `transient` ones are retried with backoff."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class Runner(ABC):
    name: str
    # Whether data-resource inputs are staged as local paths (local) or storage URIs (remote).
    stages_local_paths: bool = True

    @abstractmethod
    def submit(self, request: SubmitRequest) -> str:
        """Start the run; return the engine's handle (stored as ExecutedOperation.job_id)."""

    @abstractmethod
    def poll(self, job_id: str, *, runner_state: dict[str, Any]) -> RunStatus:
        """Where the run stands. Must be cheap and never block for long."""

    @abstractmethod
    def collect(self, job_id: str, *, runner_state: dict[str, Any], workdir: Path) -> RunResult:
        """Outputs, logs and metrics of a finished run (files copied into `workdir` when remote)."""

    @abstractmethod
    def cancel(self, job_id: str, *, runner_state: dict[str, Any]) -> None:
        """Ask the engine to stop the run (idempotent)."""

    def watch(self, job_id: str, *, runner_state: dict[str, Any], on_end: Callable[[], None]) -> bool:
        """Call `on_end` once (from another thread, or at once) when the run ends, so the jobs app can act
        on the end without waiting for the sweep. Best effort: the sweep stays the safety net. Engines
        that cannot tell return False, the default."""
        return False

    def logs(self, job_id: str, *, runner_state: dict[str, Any], max_bytes: int = 20000) -> tuple[str, str]:
        """(stdout tail, stderr tail) of a run, live or finished; engines without logs return empties."""
        return "", ""

    def health(self) -> dict[str, Any]:
        """A short description of the engine's reachability, for the admin status endpoint."""
        return {"ok": True}


_RUNNERS: dict[str, type[Runner]] = {}


def register_runner(mode: str, runner: type[Runner]) -> None:
    _RUNNERS[mode] = runner


def get_runner(mode: str) -> Runner:
    try:
        return _RUNNERS[mode]()
    except KeyError as exc:
        raise RunnerError(f"No runner is configured for mode {mode!r}.") from exc


def known_modes() -> frozenset[str]:
    return frozenset(_RUNNERS)
