"""The local runner (docs/tool-contract.md): `<python> <bundle>/main.py inputs.json` in the job's directory.

The tool runs in a bubblewrap sandbox (`sandbox.py`, MEV_LOCAL_SANDBOX): it sees its job, its bundle and
the system, never the other users' files, the server's secrets or, unless its spec asks, the network.
Sandboxed or not, its environment is built from scratch (`_environment`): a tool never needs the web's
database URL, keys or cloud credentials.

The tool runs under `local_wrapper.py`, detached (its own session), so the Celery task that submits
returns at once and the run survives a worker restart. `poll` is cheap: it reads status.json or checks
that the recorded pid is still the same process (start time from /proc/<pid>/stat). `watch` waits for
the wrapper to exit (it writes status.json first), so the end of a run is acted on at once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings

from mev.jobs.runners import local_wrapper, sandbox
from mev.jobs.runners.base import (
    Runner,
    RunnerError,
    RunPhase,
    RunResult,
    RunStatus,
    SubmitRequest,
    register_runner,
)
from mev.jobs.runners.exit_watch import exit_watcher

WRAPPER = Path(local_wrapper.__file__).resolve()
INPUTS_FILE = "inputs.json"
OUTPUTS_FILE = "outputs.json"
ERRORS_FILE = "errors.json"
_RUN_FILES = (local_wrapper.STATUS_FILE, local_wrapper.TOOL_PID_FILE, local_wrapper.STDOUT_FILE,
              local_wrapper.STDERR_FILE, OUTPUTS_FILE, ERRORS_FILE, "wrapper.log")
KILLED_MESSAGE = ("The process was killed before it finished (no exit status was recorded). It may have been "
                  "stopped by an administrator or by the system, for example for lack of memory.")
_ENV_PASSTHROUGH = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")


def proc_start_time(pid: int) -> int | None:
    """The start time (clock ticks since boot) of a live, non-zombie process, else None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = raw[raw.rfind(")") + 2:].split()
    if not fields or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _tail(path: Path, max_bytes: int) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            return handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunnerError(f"{path.name} written by the tool is not valid JSON: {exc}") from exc


def _kill_group(pid: int | None, sig: int) -> None:
    if not pid:
        return
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class LocalRunner(Runner):
    name = "local"
    stages_local_paths = True

    # -- submit -------------------------------------------------------------------------------------

    def _environment(self, workdir: Path, cpus: int, *, sandboxed: bool = False) -> dict[str, str]:
        env = {k: os.environ[k] for k in _ENV_PASSTHROUGH if k in os.environ}
        env.update({"HOME": str(workdir), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
                    "MEV_N_CPUS": str(cpus)})
        if sandboxed:
            env["TMPDIR"] = "/tmp"  # noqa: S108  (the sandbox's private /tmp, a folder of the job)
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
            env[name] = str(cpus)
        return env

    def submit(self, request: SubmitRequest) -> str:
        workdir = Path(request.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        # A resubmission (the first attempt's worker died): stop whatever that attempt started.
        previous = request.runner_state or {}
        if previous.get("pid"):
            self.cancel(str(previous["pid"]), runner_state=previous)
        for name in _RUN_FILES:
            (workdir / name).unlink(missing_ok=True)
        (workdir / INPUTS_FILE).write_text(json.dumps(request.inputs))
        main = Path(request.bundle_dir) / "main.py"
        if not main.is_file():
            raise RunnerError(f"The operation bundle has no main.py ({request.bundle_dir}).")
        wall = float(request.limits.get("wall_seconds") or getattr(settings, "MEV_JOB_TIMEOUT_SECONDS", 24 * 3600))
        memory = int(request.limits.get("memory_bytes") or getattr(settings, "MEV_JOB_MEMORY_BYTES", 8 * 1024**3))
        cpus = int(request.limits.get("cpus") or getattr(settings, "MEV_JOB_CPUS", 1))
        network = sandbox.operation_wants_network(Path(request.bundle_dir))
        try:
            sandboxed = sandbox.use_bwrap()
            confine = sandbox.bwrap_argv(workdir=workdir, bundle_dir=Path(request.bundle_dir),
                                         network=network) if sandboxed else []
        except sandbox.SandboxUnavailable as exc:
            raise RunnerError(str(exc)) from exc
        # -I -S: the wrapper needs only the standard library; skipping site-packages (and their .pth
        # import hooks) and the environment halves Python's start-up, which the submission waits for.
        argv = [sys.executable, "-I", "-S", str(WRAPPER), "--detach", "--workdir", str(workdir),
                "--timeout", str(wall), "--memory", str(memory), *(["--sandboxed"] if sandboxed else []),
                "--", *confine, sys.executable, str(main), INPUTS_FILE]
        try:
            started = subprocess.run(  # noqa: S603  (fixed argv, no shell)
                argv, cwd=workdir, env=self._environment(workdir, cpus, sandboxed=sandboxed), capture_output=True,
                text=True, timeout=30, check=False,
            )
            pid = int(started.stdout.strip())
        except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
            raise RunnerError(f"The local process could not be started: {exc}", transient=True) from exc
        request.runner_state.clear()
        request.runner_state.update({
            "pid": pid, "start_time": proc_start_time(pid), "workdir": str(workdir),
            "wall_seconds": wall, "memory_bytes": memory, "submitted_at": time.time(),
            "sandbox": "bwrap" if sandboxed else "none", "network": network,
        })
        return str(pid)

    # -- poll ---------------------------------------------------------------------------------------

    def _status(self, runner_state: dict[str, Any]) -> dict[str, Any] | None:
        status = _read_json(Path(runner_state["workdir"]) / local_wrapper.STATUS_FILE)
        return status if isinstance(status, dict) else None

    def _alive(self, runner_state: dict[str, Any]) -> bool:
        pid = runner_state.get("pid")
        if not pid:
            return False
        start = proc_start_time(int(pid))
        return start is not None and (runner_state.get("start_time") in (None, start))

    def _failure_messages(self, status: dict[str, Any], workdir: Path) -> list[str]:
        try:
            errors = _read_json(workdir / ERRORS_FILE)
        except RunnerError:
            errors = None
        if isinstance(errors, list) and errors:
            return [str(e) for e in errors]
        if isinstance(errors, str) and errors.strip():
            return [errors.strip()]
        stderr = _tail(workdir / local_wrapper.STDERR_FILE, 4000).strip()
        if status.get("timed_out"):
            return [f"The job exceeded its time limit of {status.get('timeout_seconds'):g} seconds and was stopped."]
        limit = status.get("memory_limit_bytes") or 0
        if "MemoryError" in stderr or "Unable to allocate" in stderr or "Cannot allocate memory" in stderr:
            return [f"The process ran out of memory (limit: {limit / 1024**2:.0f} MiB)."]
        if status.get("signal"):
            try:
                name = signal.Signals(status["signal"]).name
            except ValueError:
                name = str(status["signal"])
            return [f"The process was killed by signal {name}." + (f" Last output: {stderr[-1500:]}" if stderr else "")]
        lines = stderr.splitlines()[-20:]
        tail = "\n".join(lines)[-2000:]
        if tail:
            return [f"The tool failed (exit code {status.get('exit_code')}):\n{tail}"]
        return [f"The tool failed with exit code {status.get('exit_code')} and wrote no error message."]

    def poll(self, job_id: str, *, runner_state: dict[str, Any]) -> RunStatus:
        if not runner_state.get("workdir"):
            return RunStatus(RunPhase.FAILED, "no record of the process", [KILLED_MESSAGE])
        workdir = Path(runner_state["workdir"])
        status = self._status(runner_state)
        if status is None:
            if self._alive(runner_state):
                return RunStatus(RunPhase.RUNNING, "Running.")
            status = self._status(runner_state)  # it may have finished between the two checks
            if status is None:
                return RunStatus(RunPhase.FAILED, "killed", [KILLED_MESSAGE])
        if status.get("exit_code") == 0 and not status.get("timed_out"):
            return RunStatus(RunPhase.SUCCEEDED, "Completed.")
        return RunStatus(RunPhase.FAILED, f"exit code {status.get('exit_code')}",
                         self._failure_messages(status, workdir))

    def watch(self, job_id: str, *, runner_state: dict[str, Any], on_end: Callable[[], None]) -> bool:
        pid = runner_state.get("pid")
        if not pid:
            return False
        return exit_watcher.watch(int(pid), on_end, still_running=lambda: self._alive(runner_state))

    # -- collect / logs / cancel --------------------------------------------------------------------

    def collect(self, job_id: str, *, runner_state: dict[str, Any], workdir: Path) -> RunResult:
        rundir = Path(runner_state.get("workdir") or workdir)
        status = self._status(runner_state) or {}
        stdout, stderr = self.logs(job_id, runner_state=runner_state)
        metrics = {key: status.get(key) for key in ("wall_seconds", "cpu_seconds", "max_rss_bytes", "exit_code")}
        outputs = _read_json(rundir / OUTPUTS_FILE) if status.get("exit_code") == 0 else None
        if outputs is not None and not isinstance(outputs, dict):
            raise RunnerError(f"{OUTPUTS_FILE} must be a JSON object mapping output keys to values.")
        return RunResult(outputs=outputs or {}, stdout_tail=stdout, stderr_tail=stderr,
                         metrics={k: v for k, v in metrics.items() if v is not None})

    def logs(self, job_id: str, *, runner_state: dict[str, Any], max_bytes: int = 20000) -> tuple[str, str]:
        if not runner_state.get("workdir"):
            return "", ""
        workdir = Path(runner_state["workdir"])
        return (_tail(workdir / local_wrapper.STDOUT_FILE, max_bytes),
                _tail(workdir / local_wrapper.STDERR_FILE, max_bytes))

    def cancel(self, job_id: str, *, runner_state: dict[str, Any]) -> None:
        workdir = Path(runner_state["workdir"]) if runner_state.get("workdir") else None
        tool_pid = None
        if workdir is not None:
            try:
                tool_pid = int((workdir / local_wrapper.TOOL_PID_FILE).read_text().strip())
            except (FileNotFoundError, ValueError):
                tool_pid = None
        wrapper_pid = int(runner_state["pid"]) if self._alive(runner_state) else None
        for sig in (signal.SIGTERM, signal.SIGKILL):
            _kill_group(tool_pid, sig)
            _kill_group(wrapper_pid, sig)
            if sig == signal.SIGTERM:
                deadline = time.monotonic() + 1.0
                while time.monotonic() < deadline and (
                    (tool_pid and proc_start_time(tool_pid)) or (wrapper_pid and proc_start_time(wrapper_pid))
                ):
                    time.sleep(0.05)


register_runner("local", LocalRunner)
