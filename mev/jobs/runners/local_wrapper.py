"""Runs one local tool and records how it ended. Standard library only: started as a plain script,
with `python -I -S` (no site-packages, no PYTHON* variables) for a quick start.

    python -I -S local_wrapper.py --detach --workdir W --timeout S --memory B [--sandboxed] -- <argv of the tool>

With --detach it forks, prints the pid of the detached child (a new session, reparented away from
the caller) and returns at once. The child starts the tool in its own process group with stdout and
stderr to files in the working directory, an address-space limit (RLIMIT_AS) and a wall-clock limit,
waits for it, and writes `status.json` atomically: exit code, signal, CPU seconds, peak RSS, wall time.
No status.json means the wrapper itself was killed.

With --sandboxed the argv starts with bubblewrap, which reports a tool killed by signal N as exit code
128 + N (as shells do); that is turned back into the signal, so status.json reads the same either way.
The limits hold inside the sandbox: RLIMIT_AS is inherited, and killing bubblewrap's process group (the
timeout here, a cancel from the runner) kills the sandbox (bubblewrap's --die-with-parent and its own
PID namespace).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

STATUS_FILE = "status.json"
TOOL_PID_FILE = "tool.pid"
STDOUT_FILE = "stdout.txt"
STDERR_FILE = "stderr.txt"


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _limit_memory(memory_bytes: int):
    def apply() -> None:
        if memory_bytes > 0:
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

    return apply


def _become_subreaper() -> bool:
    """Adopt orphaned descendants (prctl PR_SET_CHILD_SUBREAPER). bubblewrap's outer process exits
    without reaping the sandbox's init, which reaped the tool: adopted and reaped here, their CPU time and
    peak memory reach this process's children usage."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _reap_adopted(deadline: float) -> None:
    """Reap the sandbox's init once it has gone (it dies with bubblewrap); never wait past `deadline`."""
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.005)


def _exit_code(wait_status: int, sandboxed: bool) -> int:
    exit_code = os.waitstatus_to_exitcode(wait_status)
    if sandboxed and 128 < exit_code < 128 + signal.NSIG:
        return -(exit_code - 128)
    return exit_code


def supervise(workdir: Path, timeout: float, memory_bytes: int, argv: list[str], sandboxed: bool = False) -> int:
    started = time.monotonic()
    adopting = sandboxed and _become_subreaper()
    with open(workdir / STDOUT_FILE, "wb") as out, open(workdir / STDERR_FILE, "wb") as err:
        tool = subprocess.Popen(  # noqa: S603  (argv from the runner, no shell)
            argv, cwd=workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            preexec_fn=_limit_memory(memory_bytes), process_group=0, close_fds=True,
        )
    (workdir / TOOL_PID_FILE).write_text(str(tool.pid))
    timed_out = threading.Event()

    def on_timeout() -> None:
        timed_out.set()
        try:
            os.killpg(tool.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, on_timeout) if timeout > 0 else None
    if timer:
        timer.daemon = True
        timer.start()
    while True:
        try:
            _, wait_status, usage = os.wait4(tool.pid, 0)
            break
        except InterruptedError:
            continue
    if timer:
        timer.cancel()
    tool.returncode = 0  # reaped above; keep Popen from waiting again
    wall = time.monotonic() - started
    exit_code = _exit_code(wait_status, sandboxed)
    if adopting:
        _reap_adopted(time.monotonic() + 5)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the tool, bubblewrap and the sandbox's init
        if children.ru_maxrss > usage.ru_maxrss:
            usage = children
    status = {
        "exit_code": exit_code,
        "signal": -exit_code if exit_code < 0 else None,
        "timed_out": timed_out.is_set(),
        "timeout_seconds": timeout,
        "memory_limit_bytes": memory_bytes,
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
        "max_rss_bytes": usage.ru_maxrss * 1024,
        "wall_seconds": round(wall, 3),
    }
    _write_json_atomic(workdir / STATUS_FILE, status)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--detach", action="store_true")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--timeout", type=float, default=0)
    parser.add_argument("--memory", type=int, default=0)
    parser.add_argument("--sandboxed", action="store_true")
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    workdir = Path(args.workdir)
    if args.detach:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid > 0:
            os.close(write_end)
            with os.fdopen(read_end) as ready:
                ready.read()  # the child closes its end once it has its own session
            sys.stdout.write(f"{pid}\n")
            sys.stdout.flush()
            return 0
        os.close(read_end)
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        log = os.open(workdir / "wrapper.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        for fd, target in ((0, devnull), (1, devnull), (2, log)):
            os.dup2(target, fd)
        os.close(write_end)
    return supervise(workdir, args.timeout, args.memory, argv, args.sandboxed)


if __name__ == "__main__":
    sys.exit(main())
