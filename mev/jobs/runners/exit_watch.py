"""Waits for processes to end and calls back once for each, so a finished local run is acted on at once
instead of on the next sweep.

One daemon thread per process blocks in epoll on Linux process file descriptors (pidfds): a pidfd
becomes readable when its process exits, whoever its parent is, so the detached wrapper of a local run
can be watched from the worker that started it. No polling, no timer.

Best effort by design; the sweep stays the safety net. A process that cannot be watched (no pidfd on
this system, too many open files) is left to the sweep; a watch dies with its process (a restarted
worker), and the sweep notices the end instead. Callbacks always run on the watcher thread (at once
when the process had already ended): they must be quick, the jobs app only enqueues a task.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import threading
from collections.abc import Callable

logger = logging.getLogger("mev.jobs")

Callback = Callable[[], None]


def _run_callback(callback: Callback) -> None:
    try:
        callback()
    except Exception:  # noqa: BLE001  (a failed notification only delays the job to the next sweep)
        logger.exception("A process-exit callback failed")


class ProcessExitWatcher:
    """Calls a callback once when a watched process ends. Safe to use from any thread, and across fork."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._selector: selectors.BaseSelector | None = None
        self._wake: tuple[int, int] | None = None  # (read end, write end) of the pipe that wakes the thread
        # (pidfd, callback) for the thread to register; no pidfd: the process has already ended.
        self._pending: list[tuple[int | None, Callback]] = []
        self._thread: threading.Thread | None = None
        os.register_at_fork(after_in_child=self._after_fork)

    def watch(self, pid: int, callback: Callback, *, still_running: Callable[[], bool]) -> bool:
        """Call `callback` once, when process `pid` ends. `still_running` says whether `pid` still names
        the process meant (pids are reused); it is checked after the pidfd is open, so a process that
        ended before the watch began is reported at once. False if the process cannot be watched."""
        pidfd_open = getattr(os, "pidfd_open", None)
        if pidfd_open is None:
            return False
        pidfd: int | None
        try:
            pidfd = pidfd_open(pid)
        except ProcessLookupError:
            pidfd = None  # already gone (and reaped): reported at once
        except OSError:
            logger.warning("Cannot watch process %s; the sweep will notice its end", pid, exc_info=True)
            return False
        if pidfd is not None and not still_running():
            os.close(pidfd)  # it ended before the watch began (its pid may even name another process now)
            pidfd = None
        try:
            with self._lock:
                wake = self._start()
                self._pending.append((pidfd, callback))
                with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending anyway
                    os.write(wake, b"\0")
        except OSError:
            if pidfd is not None:
                os.close(pidfd)
            logger.warning("Cannot watch process %s; the sweep will notice its end", pid, exc_info=True)
            return False
        return True

    def watching(self) -> int:
        """How many processes are being waited for (pending registrations included)."""
        with self._lock:
            registered = len(self._selector.get_map()) - 1 if self._selector is not None else 0
            return registered + sum(1 for pidfd, _ in self._pending if pidfd is not None)

    # -- the thread ---------------------------------------------------------------------------------

    def _start(self) -> int:
        """Under the lock: the selector, the wake-up pipe and the thread, once per process. Returns the
        pipe's write end."""
        if self._wake is not None:
            return self._wake[1]
        selector = selectors.DefaultSelector()
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        os.set_blocking(write_end, False)
        selector.register(read_end, selectors.EVENT_READ)
        self._selector, self._wake = selector, (read_end, write_end)
        self._thread = threading.Thread(target=self._run, args=(selector, read_end), name="mev-exit-watch",
                                        daemon=True)
        self._thread.start()
        return write_end

    def _run(self, selector: selectors.BaseSelector, wake: int) -> None:
        while True:
            for key, _ in selector.select():
                if key.fd == wake:
                    self._register_pending(selector, wake)
                    continue
                selector.unregister(key.fd)
                os.close(key.fd)
                _run_callback(key.data)

    def _register_pending(self, selector: selectors.BaseSelector, wake: int) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(wake, 4096):
                pass
        with self._lock:
            pending, self._pending = self._pending, []
        for pidfd, callback in pending:
            if pidfd is None:
                _run_callback(callback)
                continue
            try:
                # Level-triggered: a process that ended before this line is reported by the next select().
                selector.register(pidfd, selectors.EVENT_READ, callback)
            except (OSError, ValueError):
                os.close(pidfd)
                logger.warning("Cannot watch a process; the sweep will notice its end", exc_info=True)

    def _after_fork(self) -> None:
        """In a forked child the thread is gone and the descriptors are the parent's: start afresh."""
        self._lock = threading.Lock()
        if self._selector is not None:
            for key in list(self._selector.get_map().values()):
                os.close(key.fd)
            self._selector.close()
        if self._wake is not None:
            os.close(self._wake[1])
        for pidfd, _ in self._pending:
            if pidfd is not None:
                os.close(pidfd)
        self._selector, self._wake, self._pending, self._thread = None, None, [], None


exit_watcher = ProcessExitWatcher()
