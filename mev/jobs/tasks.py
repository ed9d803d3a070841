"""Thin tasks: load by id, call a service. Job progress is driven by the periodic `sweep_jobs`
(Celery beat, every MEV_SWEEP_SECONDS), never by self-re-scheduling chains (§7.3.2)."""

from __future__ import annotations

from celery import shared_task

SWEEP_TASK = "mev.jobs.tasks.sweep_jobs"


@shared_task(name="mev.jobs.tasks.submit_execution", acks_late=False)
def submit_execution(*, execution_id: str) -> None:
    from mev.jobs.services import execution_submit

    execution_submit(execution_id=execution_id)


@shared_task(name="mev.jobs.tasks.finalize_execution", acks_late=False)
def finalize_execution(*, execution_id: str) -> None:
    from mev.jobs.services import execution_finalize

    execution_finalize(execution_id=execution_id)


@shared_task(name=SWEEP_TASK, acks_late=False, ignore_result=True)
def sweep_jobs() -> dict[str, int]:
    from mev.jobs.services import jobs_sweep

    return jobs_sweep()
