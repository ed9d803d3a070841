"""Thin tasks: load by id, call a service. Job progress is supervised by the periodic `sweep_jobs`
(Celery beat, every MEV_SWEEP_SECONDS), never by self-re-scheduling chains (§7.3.2). The end of a run is
also acted on at once: the worker that started it watches it and sends `advance_execution` once; that
nudge is only an early sweep step for one job, and losing it only leaves the job to the next sweep."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.signals import worker_init

SWEEP_TASK = "mev.jobs.tasks.sweep_jobs"


@shared_task(name="mev.jobs.tasks.submit_execution", acks_late=False)
def submit_execution(*, execution_id: str) -> None:
    from mev.jobs.services import execution_submit

    execution_submit(execution_id=execution_id)


@shared_task(name="mev.jobs.tasks.advance_execution", acks_late=False)
def advance_execution(*, execution_id: str) -> None:
    """Sent when a run has ended: poll it and, if it succeeded, finalize it right here."""
    from mev.jobs.services import execution_advance

    execution_advance(execution_id=execution_id, finalize_now=True)


@shared_task(name="mev.jobs.tasks.finalize_execution", acks_late=False)
def finalize_execution(*, execution_id: str) -> None:
    from mev.jobs.services import execution_finalize

    execution_finalize(execution_id=execution_id)


@shared_task(name=SWEEP_TASK, acks_late=False, ignore_result=True)
def sweep_jobs() -> dict[str, int]:
    from mev.jobs.services import jobs_sweep

    return jobs_sweep()


@worker_init.connect
def watch_runs_in_workers(**_: Any) -> None:
    """Only worker processes watch the runs they start (prefork children inherit the switch); web
    processes never start a watcher thread."""
    from mev.jobs.services import execution_exit_notifications

    execution_exit_notifications(enabled=True)
