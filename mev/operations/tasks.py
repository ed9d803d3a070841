"""Thin tasks: ingestion from git runs in a worker (cloning can be slow)."""

from __future__ import annotations

from celery import shared_task


@shared_task
def ingest_repository(*, ingestion_id: str) -> None:
    from mev.operations.services import operation_ingest_repository

    operation_ingest_repository(ingestion_id=ingestion_id)
