"""Background work on resources: validation (§3.2) and the clean-up of files nothing points to (§7.3.7)."""

from __future__ import annotations

import functools
import logging
import operator
import time
import uuid
from datetime import timedelta
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from mev.resources import storage, validation
from mev.resources.models import Resource, ResourceStatus
from mev.resources.tus import cleanup_stale_uploads  # noqa: F401  (registers the beat task with workers)

logger = logging.getLogger(__name__)

VALIDATION_MAX_RETRIES = 5


@shared_task(bind=True, acks_late=True, max_retries=VALIDATION_MAX_RETRIES)
def validate_resource(self, resource_id: str, resource_type: str | None, file_format: str | None) -> None:  # type: ignore[no-untyped-def]
    """Validate a resource (queued on commit by PATCH, bucket import, job finalization).

    Idempotent, so `acks_late` redelivery after a worker crash is safe. Only transient storage
    errors are retried (with backoff); when the retries run out the resource still ends active,
    with the unexpected-error status, never stuck in `Validating...`.

    A message whose type/format no longer match the request remembered on the row (a newer
    validation was begun since) is dropped. A matching one refreshes `validation_requested_at`,
    so the stuck-validation sweep measures silence from the last sign of life.
    """
    if not _still_wanted(resource_id, resource_type, file_format):
        return
    try:
        validation.resource_validate(
            resource_id=resource_id, resource_type=resource_type, file_format=file_format, raise_transient=True
        )
    except Resource.DoesNotExist:
        logger.info("Resource %s was deleted before its validation ran", resource_id)
    except Exception as exc:
        if not validation.is_transient_storage_error(exc):
            raise
        if self.request.retries >= self.max_retries:
            logger.exception("Giving up validating resource %s after %s retries", resource_id, self.request.retries)
            try:
                validation.resource_validation_give_up(resource_id=resource_id)
            except Resource.DoesNotExist:
                pass
            return
        raise self.retry(exc=exc, countdown=min(2 ** self.request.retries * 5, 300)) from exc


def _still_wanted(resource_id: str, resource_type: str | None, file_format: str | None) -> bool:
    stale = Resource.objects.filter(pk=resource_id, pending_resource_type__isnull=False).exclude(
        pending_resource_type=resource_type, pending_file_format=file_format
    )
    if stale.exists():
        logger.info("Dropping a stale validation message for resource %s (%s/%s)", resource_id, resource_type,
                    file_format)
        return False
    Resource.objects.filter(
        pk=resource_id, is_active=False, status=ResourceStatus.VALIDATING, pending_resource_type=resource_type,
        pending_file_format=file_format,
    ).update(validation_requested_at=timezone.now())
    return True


VALIDATION_MAX_REQUEUES = 3
STUCK_VALIDATION_BATCH = 500


@shared_task(acks_late=True)
def requeue_stuck_validations(batch: int = STUCK_VALIDATION_BATCH) -> dict[str, int]:
    """Never leave a resource in `Validating...` (§7.3.8); beat runs this every minute.

    A resource inactive in `Validating...` whose request is older than
    ``MEV_VALIDATION_STUCK_SECONDS`` has most likely lost its queue message (broker restart,
    worker killed before the ack). If the requested type/format are remembered on the row, the
    validation is queued again (at most ``VALIDATION_MAX_REQUEUES`` times, each restarting the
    clock); otherwise, or once the attempts are spent, the resource ends active with the
    unexpected-error status and the administrators are told. A row with no request time (in
    `Validating...` since before these fields existed) is stamped on first sight and handled one
    threshold later, so a message still in flight gets its chance.

    Rows are claimed with ``SELECT ... FOR UPDATE SKIP LOCKED``: two overlapping runs never
    handle the same row, and a row being written (PATCH, an outcome being applied) is skipped
    until the next run. The validation task is idempotent, so a message that was only slow and
    then arrives next to its re-sent copy does no harm.
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.MEV_VALIDATION_STUCK_SECONDS)
    counts = {"requeued": 0, "settled": 0, "stamped": 0}
    to_send: list[tuple[str, str | None, str | None]] = []
    with transaction.atomic():
        rows = list(
            Resource.objects.select_for_update(skip_locked=True)
            .filter(is_active=False, status=ResourceStatus.VALIDATING)
            .filter(models.Q(validation_requested_at__isnull=True) | models.Q(validation_requested_at__lte=cutoff))
            .order_by(models.F("validation_requested_at").asc(nulls_first=True))[:batch]
        )
        for resource in rows:
            if resource.validation_requested_at is None:
                resource.validation_requested_at = now
                resource.save(update_fields=["validation_requested_at"])
                counts["stamped"] += 1
            elif resource.pending_resource_type is None or resource.validation_requeues >= VALIDATION_MAX_REQUEUES:
                logger.error(
                    "Resource %s stuck in validation (request %s/%s, %s re-sends); ending it with an error",
                    resource.pk, resource.pending_resource_type, resource.pending_file_format,
                    resource.validation_requeues,
                )
                validation.settle_unexpected_error(resource)
                counts["settled"] += 1
            else:
                resource.validation_requeues += 1
                resource.validation_requested_at = now
                resource.save(update_fields=["validation_requeues", "validation_requested_at"])
                to_send.append((str(resource.pk), resource.pending_resource_type, resource.pending_file_format))
                counts["requeued"] += 1
        transaction.on_commit(lambda: _send_validations(to_send))
    return counts


def _send_validations(messages: list[tuple[str, str | None, str | None]]) -> None:
    for resource_id, resource_type, file_format in messages:
        logger.warning("Re-sending the validation of resource %s as %s/%s", resource_id, resource_type, file_format)
        try:
            validate_resource.delay(resource_id, resource_type, file_format)
        except Exception:  # the broker is down: the row keeps its request, the next sweep tries again
            logger.exception("Could not queue the validation of resource %s", resource_id)


TABLE_CACHE_MAX_IDLE_SECONDS = 7 * 24 * 3600


@shared_task(acks_late=True)
def cleanup_table_cache(max_idle_seconds: int = TABLE_CACHE_MAX_IDLE_SECONDS) -> int:
    """Remove local copies of Parquet tables not read for a while (S3 mode, see contents_apis).

    Cached copies are named after immutable storage keys, so removing one only costs a download
    on the next request. Returns the number of files removed.
    """
    root = Path(settings.DATA_DIR) / "cache" / "tables"
    if not root.is_dir():
        return 0
    cutoff = time.time() - max_idle_seconds
    removed = 0
    for path in root.iterdir():
        try:
            stat = path.stat()
            if max(stat.st_atime, stat.st_mtime) < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


ORPHAN_GRACE_SECONDS = 24 * 3600
# The Resource fields that hold storage keys: a file named by one of them is not an orphan.
STORED_KEY_FIELDS = ("datafile", "standardized_file", "table_file", "table_rows_file")


@shared_task(acks_late=True)
def cleanup_orphaned_files(grace_seconds: int = ORPHAN_GRACE_SECONDS) -> int:
    """Delete stored files no resource points to (§7.3.7); returns how many were removed.

    Works on either backend through `storage.iter_keys()` (a directory walk, or S3's listing).
    Only keys in the server's own layout ``<owner uuid>/<resource uuid>/<name>`` are considered
    (bundled operation files live under ``operations/`` and are never touched), and only once they
    are older than ``grace_seconds``: a file is stored a moment before the row that points to it is
    committed (upload, validation, job output), so a young unreferenced file may be in flight.
    Each candidate is checked again just before it is deleted. Also prunes the local table cache.
    """
    removed = cleanup_table_cache()
    cutoff = time.time() - grace_seconds
    candidates: dict[str, list[str]] = {}  # resource id -> old keys under it
    for key, modified in storage.iter_keys():
        parts = key.split("/")
        if len(parts) == 3 and modified < cutoff and _is_uuid(parts[0]) and _is_uuid(parts[1]):
            candidates.setdefault(parts[1], []).append(key)
    ids = list(candidates)
    for start in range(0, len(ids), 500):
        batch = ids[start:start + 500]
        referenced = {
            key
            for keys in Resource.objects.filter(pk__in=batch).values_list(*STORED_KEY_FIELDS)
            for key in keys
            if key
        }
        for resource_id in batch:
            for key in candidates[resource_id]:
                if key in referenced or _referenced(resource_id, key):
                    continue
                storage.delete(key)
                removed += 1
                logger.info("Deleted orphaned stored file %s", key)
    return removed


def _referenced(resource_id: str, key: str) -> bool:
    """Whether a row points to `key` now: it may have been committed since the batch was read."""
    return Resource.objects.filter(pk=resource_id).filter(
        functools.reduce(operator.or_, (models.Q(**{field: key}) for field in STORED_KEY_FIELDS))
    ).exists()


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
