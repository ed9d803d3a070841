"""Background work on resources: validation (§3.2) and the clean-up of files nothing points to (§7.3.7)."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.db import models

from mev.resources import storage, validation
from mev.resources.models import Resource
from mev.resources.tus import cleanup_stale_uploads  # noqa: F401  (registers the beat task with workers)

logger = logging.getLogger(__name__)

VALIDATION_MAX_RETRIES = 5


@shared_task(bind=True, acks_late=True, max_retries=VALIDATION_MAX_RETRIES)
def validate_resource(self, resource_id: str, resource_type: str | None, file_format: str | None) -> None:  # type: ignore[no-untyped-def]
    """Validate a resource (queued on commit by PATCH, bucket import, job finalization).

    Idempotent, so `acks_late` redelivery after a worker crash is safe. Only transient storage
    errors are retried (with backoff); when the retries run out the resource still ends active,
    with the unexpected-error status, never stuck in `Validating...`.
    """
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


@shared_task(acks_late=True)
def cleanup_orphaned_files(grace_seconds: int = ORPHAN_GRACE_SECONDS) -> int:
    """Delete stored files no resource points to (§7.3.7); returns how many were removed.

    Only files under the server's own key layout ``<owner uuid>/<resource uuid>/<name>`` are
    considered, and only once they are older than ``grace_seconds``: a file is stored a moment
    before the row that points to it is committed (upload, validation, job output), so a young
    unreferenced file may simply be in flight. Local storage only; on object storage a bucket
    lifecycle rule plays this part. Also prunes the local table cache.
    """
    removed = cleanup_table_cache()
    if storage.backend_name() != "local":
        return removed
    root = Path(settings.MEDIA_ROOT)
    if not root.is_dir():
        return removed
    cutoff = time.time() - grace_seconds
    for owner_dir in root.iterdir():
        if not (owner_dir.is_dir() and _is_uuid(owner_dir.name)):
            continue
        for resource_dir in owner_dir.iterdir():
            if not (resource_dir.is_dir() and _is_uuid(resource_dir.name)):
                continue
            referenced = {
                key
                for keys in Resource.objects.filter(pk=resource_dir.name).values_list(
                    "datafile", "standardized_file", "table_file"
                )
                for key in keys
                if key
            }
            for path in resource_dir.iterdir():
                key = f"{owner_dir.name}/{resource_dir.name}/{path.name}"
                try:
                    if not path.is_file() or key in referenced or path.stat().st_mtime > cutoff:
                        continue
                except FileNotFoundError:
                    continue
                # Re-check just before deleting: the row may have been committed meanwhile.
                if Resource.objects.filter(pk=resource_dir.name).filter(
                    models.Q(datafile=key) | models.Q(standardized_file=key) | models.Q(table_file=key)
                ).exists():
                    continue
                storage.delete(key)
                removed += 1
                logger.info("Deleted orphaned stored file %s", key)
    return removed


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
