"""The end of a local run is acted on at once (the worker that started it watches the process and sends
`advance_execution`), the sweep still completes a job whose notification was lost, and racing
notifications and sweeps finalize a job exactly once."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import pytest
from celery.signals import task_postrun
from django.db import connection

from mev.jobs import services
from mev.jobs.models import ExecutedOperation, ExecutionEvent, JobState
from mev.jobs.runners.exit_watch import ProcessExitWatcher
from mev.jobs.runners.local import LocalRunner
from mev.jobs.tasks import advance_execution, watch_runs_in_workers
from mev.resources.models import Resource

WAIT = 30  # seconds: only ever reached when something is broken


def _python(code: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], **kwargs)


# --------------------------------------------------------------------------------------------------
# The watcher itself (no database)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.event = threading.Event()

    def __call__(self) -> None:
        self.calls.append(threading.current_thread().name)
        self.event.set()


def test_watcher_calls_back_once_on_its_thread_when_the_process_ends():
    watcher = ProcessExitWatcher()
    process = _python("import sys; sys.stdin.read()", stdin=subprocess.PIPE)
    ended = Recorder()
    assert watcher.watch(process.pid, ended, still_running=lambda: process.poll() is None)
    assert watcher.watching() == 1 and not ended.event.is_set()  # blocked on its stdin: still running

    process.stdin.close()
    assert ended.event.wait(WAIT)
    process.wait(timeout=WAIT)
    assert ended.calls == ["mev-exit-watch"]
    assert watcher.watching() == 0


def test_watcher_reports_each_of_several_processes_once():
    watcher = ProcessExitWatcher()
    processes = [_python("import sys; sys.stdin.read()", stdin=subprocess.PIPE) for _ in range(4)]
    recorders = [Recorder() for _ in processes]
    for process, recorder in zip(processes, recorders, strict=True):
        assert watcher.watch(process.pid, recorder, still_running=lambda p=process: p.poll() is None)
    for index in (2, 0, 3, 1):
        processes[index].stdin.close()
        assert recorders[index].event.wait(WAIT)
        processes[index].wait(timeout=WAIT)
    assert [len(r.calls) for r in recorders] == [1, 1, 1, 1]
    assert watcher.watching() == 0


def test_a_process_that_ended_before_the_watch_is_reported_at_once():
    watcher = ProcessExitWatcher()
    gone = _python("pass")
    gone.wait(timeout=WAIT)  # reaped: its pid names nothing (or something else) now
    ended = Recorder()
    assert watcher.watch(gone.pid, ended, still_running=lambda: False)
    assert ended.event.wait(WAIT) and ended.calls == ["mev-exit-watch"]


def test_a_reused_pid_is_not_mistaken_for_the_run():
    """The pid names a live process, but not the one started (another start time): the run has ended."""
    watcher = ProcessExitWatcher()
    stranger = _python("import sys; sys.stdin.read()", stdin=subprocess.PIPE)
    try:
        ended = Recorder()
        assert watcher.watch(stranger.pid, ended, still_running=lambda: False)
        assert ended.event.wait(WAIT)
        assert watcher.watching() == 0 and stranger.poll() is None
    finally:
        stranger.stdin.close()
        stranger.wait(timeout=WAIT)


def test_a_failing_callback_does_not_stop_the_watcher(caplog):
    watcher = ProcessExitWatcher()
    first = _python("pass")
    assert watcher.watch(first.pid, mock.Mock(side_effect=RuntimeError("broker down")),
                         still_running=lambda: first.poll() is None)
    first.wait(timeout=WAIT)
    second = _python("pass")
    ended = Recorder()
    assert watcher.watch(second.pid, ended, still_running=lambda: second.poll() is None)
    assert ended.event.wait(WAIT)
    second.wait(timeout=WAIT)
    assert "A process-exit callback failed" in caplog.text


def test_a_forked_child_watches_with_its_own_thread():
    """What the parent was watching is not the child's; the child's own watches still work."""
    watcher = ProcessExitWatcher()
    parents = _python("import sys; sys.stdin.read()", stdin=subprocess.PIPE)
    parent_ended = Recorder()
    assert watcher.watch(parents.pid, parent_ended, still_running=lambda: parents.poll() is None)
    child = os.fork()
    if child == 0:  # pragma: no cover  (runs in the child; its exit code is the verdict)
        code = 1
        try:
            ok = watcher.watching() == 0
            short = _python("pass")
            ended = Recorder()
            ok = ok and watcher.watch(short.pid, ended, still_running=lambda: short.poll() is None)
            ok = ok and ended.event.wait(WAIT) and ended.calls == ["mev-exit-watch"]
            code = 0 if ok and not parent_ended.calls else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert watcher.watching() == 1  # the parent's watch is untouched
    parents.stdin.close()
    assert parent_ended.event.wait(WAIT)
    parents.wait(timeout=WAIT)


def test_the_local_runner_cannot_watch_a_run_it_has_no_pid_for():
    assert LocalRunner().watch("", runner_state={}, on_end=mock.Mock()) is False


# --------------------------------------------------------------------------------------------------
# Through the jobs app (real local runs; committed rows, since the watcher thread has its own connection)


@pytest.fixture
def notifications() -> Iterator[None]:
    services.execution_exit_notifications(enabled=True)
    yield
    services.execution_exit_notifications(enabled=False)


@pytest.fixture
def advances() -> Iterator[queue.Queue]:
    """(execution id, thread name) of every advance_execution task run (eagerly, on the watcher thread)."""
    seen: queue.Queue = queue.Queue()

    def record(sender=None, kwargs=None, **_) -> None:
        if sender.name == advance_execution.name:
            seen.put((str(kwargs["execution_id"]), threading.current_thread().name))

    task_postrun.connect(record, weak=False)
    yield seen
    task_postrun.disconnect(record)


def _start(user, operation, workspace, **inputs) -> ExecutedOperation:
    # Committed (transactional test): the submission runs eagerly, right after the commit.
    execution, _ = services.execution_create(user=user, operation_id=operation.id, workspace_id=workspace.id,
                                             inputs={"number": 21, **inputs})
    execution.refresh_from_db()
    assert execution.state in (JobState.SUBMITTED, JobState.RUNNING), execution.error_messages
    return execution


def _await_process_end(execution: ExecutedOperation) -> None:
    ended = threading.Event()
    runner_state = execution.runner_state
    assert LocalRunner().watch(execution.job_id, runner_state=runner_state, on_end=ended.set)
    assert ended.wait(WAIT), "the run's process did not end"
    assert (Path(runner_state["workdir"]) / "status.json").is_file()


def _states(execution: ExecutedOperation) -> list[str]:
    return list(ExecutionEvent.objects.filter(execution=execution).values_list("to_state", flat=True))


@pytest.mark.django_db(transaction=True)
def test_the_end_of_a_run_completes_the_job_without_a_sweep(operation, workspace, user, notifications, advances):
    execution = _start(user, operation, workspace)  # no beat here: nothing runs a sweep
    execution_id, thread = advances.get(timeout=WAIT)
    assert (execution_id, thread) == (str(execution.id), "mev-exit-watch")
    done = ExecutedOperation.objects.get(pk=execution.id)
    assert done.state == JobState.COMPLETED, done.error_messages
    assert done.outputs["doubled"] == 42 and done.metrics["exit_code"] == 0
    assert Resource.objects.get(pk=done.outputs["report"]).is_active
    assert _states(done)[-2:] == [JobState.FINALIZING, JobState.COMPLETED]
    assert advances.empty()  # one notification for one run


@pytest.mark.django_db(transaction=True)
def test_a_failed_run_is_failed_at_once(operation, workspace, user, notifications, advances):
    execution = _start(user, operation, workspace, behavior="fail")
    assert advances.get(timeout=WAIT)[0] == str(execution.id)
    done = ExecutedOperation.objects.get(pk=execution.id)
    assert done.state == JobState.FAILED
    assert done.error_messages == ["The chosen samples are not in the matrix.", "Choose at least 2 samples."]


@pytest.mark.django_db(transaction=True)
def test_a_canceled_run_stays_canceled_when_its_end_is_notified(operation, workspace, user, notifications,
                                                                 advances):
    execution = _start(user, operation, workspace, behavior="sleep", seconds=60)
    services.execution_cancel(execution=ExecutedOperation.objects.get(pk=execution.id))
    assert advances.get(timeout=WAIT)[0] == str(execution.id)  # the killed process was noticed too
    done = ExecutedOperation.objects.get(pk=execution.id)
    assert done.state == JobState.CANCELED
    assert _states(done).count(JobState.CANCELED) == 1 and JobState.FINALIZING not in _states(done)


@pytest.mark.parametrize("loss", ["dropped by the broker", "broker down"])
@pytest.mark.django_db(transaction=True)
def test_a_lost_notification_is_covered_by_the_sweep(operation, workspace, user, notifications, drive, loss):
    sent: queue.Queue = queue.Queue()

    def lose(**kwargs) -> None:
        sent.put(kwargs["execution_id"])
        if loss == "broker down":
            raise ConnectionError("broker down")

    with mock.patch.object(advance_execution, "delay", side_effect=lose):
        execution = _start(user, operation, workspace)
        assert sent.get(timeout=WAIT) == str(execution.id)
    _await_process_end(execution)
    left = ExecutedOperation.objects.get(pk=execution.id)
    assert left.state in (JobState.SUBMITTED, JobState.RUNNING)  # nothing else acted on the end
    done = drive(execution.id)
    assert done.state == JobState.COMPLETED and done.outputs["doubled"] == 42


def _in_thread(target: Callable[[], object], done: queue.Queue, barrier: threading.Barrier) -> threading.Thread:
    def run() -> None:
        try:
            barrier.wait(timeout=WAIT)
            target()
            done.put(None)
        except BaseException as exc:  # noqa: BLE001  (reported to the test thread)
            done.put(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_two_notifications_and_a_sweep_at_once_finalize_once(operation, workspace, user):
    execution = _start(user, operation, workspace)  # notifications off: nothing acts on the end by itself
    _await_process_end(execution)

    calls = []
    release = threading.Event()
    real_finalize_outputs = services.finalize_outputs

    def finalize_outputs(*args, **kwargs):
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            # Hold the first finalizer so the others run their whole attempt while it is in progress.
            assert release.wait(WAIT)
        return real_finalize_outputs(*args, **kwargs)

    done: queue.Queue = queue.Queue()
    barrier = threading.Barrier(3)
    with mock.patch.object(services, "finalize_outputs", side_effect=finalize_outputs):
        threads = [
            _in_thread(lambda: advance_execution.apply(kwargs={"execution_id": str(execution.id)}, throw=True),
                       done, barrier),
            _in_thread(lambda: advance_execution.apply(kwargs={"execution_id": str(execution.id)}, throw=True),
                       done, barrier),
            _in_thread(services.jobs_sweep, done, barrier),
        ]
        outcomes = [done.get(timeout=WAIT), done.get(timeout=WAIT)]  # the two that did not finalize
        release.set()
        outcomes.append(done.get(timeout=WAIT))
        for thread in threads:
            thread.join(timeout=WAIT)
    assert outcomes == [None, None, None]
    assert len(calls) == 1
    finished = ExecutedOperation.objects.get(pk=execution.id)
    assert finished.state == JobState.COMPLETED, finished.error_messages
    states = _states(finished)
    assert states.count(JobState.FINALIZING) == 1 and states.count(JobState.COMPLETED) == 1
    assert Resource.objects.filter(parent_operation=finished).count() == 1


@pytest.mark.django_db(transaction=True)
def test_only_worker_processes_watch_runs(operation, workspace, user):
    with mock.patch.object(LocalRunner, "watch", autospec=True) as watch:
        _start(user, operation, workspace)  # as in the web process, running the task eagerly
        assert not watch.called
        try:
            watch_runs_in_workers()  # what a starting Celery worker runs (worker_init)
            _start(user, operation, workspace)
        finally:
            services.execution_exit_notifications(enabled=False)
        assert watch.call_count == 1
