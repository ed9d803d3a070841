"""Validating a stored resource as a declared type: the §3.2 pipeline around the pure engine.

The engine (`mev.resource_types.validation.validate_resource`) only reads a local file and
writes derived files into a directory. This module adds what touches the database and the
storage: fetching the stored file, keeping the derived copies under fresh server keys, writing
the metadata rows, and the exact status texts the client shows.

Three rules shape it:

- **Every run ends in a readable state** (§7.3.8): active, with `""`, a failure reason, or the
  unexpected-error text. A transient storage error is the only thing allowed to escape, and only
  when the caller (the Celery task) promised to retry and to settle the state if it gives up.
- **No row lock while parsing.** Parsing a large table takes seconds; the row is locked
  (`select_for_update`) only for the short transaction that applies the outcome.
- **No orphaned files, safe to retry.** Derived copies get new keys on every run (keys are
  never reused, §7.2.7); the previous copies are deleted only after the new state is committed,
  and the new copies are deleted if the commit does not happen. A rerun with the same inputs
  ends in the same state.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from mev.resource_types import table_store
from mev.resource_types.outcome import ValidationOutcome
from mev.resource_types.validation import (
    UNEXPECTED_ERROR_STATUS,
    status_for_failure,
)
from mev.resource_types.validation import validate_resource as run_engine
from mev.resources import storage
from mev.resources.models import ElementKind, Resource, ResourceElement, ResourceMetadata, ResourceStatus

logger = logging.getLogger(__name__)

STANDARDIZED_SUFFIX = ".tsv"
TABLE_SUFFIX = ".parquet"
# Every field holding a derived copy, in the order they are stored.
DERIVED_FIELDS = ("standardized_file", "table_file", "table_rows_file")

# Storage failures worth another try: the network or the object store hiccuped. Anything else
# (a missing object, a refused request, a bug) would fail the same way again.
TRANSIENT_STORAGE_ERRORS: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)
try:  # pragma: no cover - botocore comes with the S3 backend
    from botocore.exceptions import ClientError, ReadTimeoutError
    from botocore.exceptions import ConnectionError as BotoConnectionError

    TRANSIENT_STORAGE_ERRORS += (BotoConnectionError, ReadTimeoutError)
except ImportError:  # pragma: no cover
    ClientError = None  # type: ignore[assignment,misc]

_TRANSIENT_S3_CODES = frozenset({"SlowDown", "RequestTimeout", "Throttling", "ServiceUnavailable", "InternalError"})


def is_transient_storage_error(error: BaseException) -> bool:
    """True for storage errors that another attempt may not hit (network, throttling, 5xx)."""
    if isinstance(error, TRANSIENT_STORAGE_ERRORS):
        return True
    if ClientError is not None and isinstance(error, ClientError):
        details = error.response.get("Error", {})
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return details.get("Code") in _TRANSIENT_S3_CODES or int(status) >= 500
    return False


# --------------------------------------------------------------------------- starting

# The fields that remember a requested validation until its outcome is applied (§7.3.8).
PENDING_FIELDS = ("pending_resource_type", "pending_file_format", "validation_requested_at", "validation_requeues")


def mark_validation_requested(resource: Resource, *, resource_type: str | None, file_format: str | None) -> None:
    """Remember on the row what is to be validated (not saved): a lost queue message can be re-sent."""
    resource.pending_resource_type = resource_type
    resource.pending_file_format = file_format
    resource.validation_requested_at = timezone.now()
    resource.validation_requeues = 0


def clear_validation_request(resource: Resource) -> None:
    """Forget the pending request (not saved): called whenever an outcome is applied."""
    resource.pending_resource_type = None
    resource.pending_file_format = None
    resource.validation_requested_at = None
    resource.validation_requeues = 0



@transaction.atomic
def resource_begin_validation(
    *, resource: Resource, resource_type: str | None, file_format: str | None, enqueue: bool = True
) -> Resource:
    """Mark the resource as being validated (§3.2 step 1) and, by default, queue the work.

    The type and format are not written here: the resource keeps its previous valid state until
    the validation succeeds, so a failure can revert to it; the request is kept in the
    `pending_*` fields so a lost queue message can be re-sent (`requeue_stuck_validations`). The
    task is queued after commit, so the worker always sees the `Validating...` row.
    """
    locked = Resource.objects.select_for_update().get(pk=resource.pk)
    locked.is_active = False
    locked.status = ResourceStatus.VALIDATING
    mark_validation_requested(locked, resource_type=resource_type, file_format=file_format)
    locked.save(update_fields=["is_active", "status", *PENDING_FIELDS])
    if enqueue:
        from mev.resources.tasks import validate_resource as validate_task

        resource_id = str(locked.pk)
        transaction.on_commit(lambda: validate_task.delay(resource_id, resource_type, file_format))
    resource.is_active, resource.status = locked.is_active, locked.status
    return locked


def resource_validate_now(*, resource: Resource, resource_type: str | None, file_format: str | None) -> Resource:
    """Begin and run a validation in this process (job finalization, management commands, tests).

    Never raises for a bad file or an unexpected error: the outcome is in the returned
    resource's status.
    """
    resource_begin_validation(resource=resource, resource_type=resource_type, file_format=file_format,
                              enqueue=False)
    return resource_validate(resource_id=resource.pk, resource_type=resource_type, file_format=file_format)


# --------------------------------------------------------------------------- running


def resource_validate(
    *,
    resource_id: uuid.UUID | str,
    resource_type: str | None,
    file_format: str | None,
    raise_transient: bool = False,
) -> Resource:
    """Validate the stored file of a resource as ``resource_type`` / ``file_format`` (§3.2).

    Always leaves the resource active with a final status. With ``raise_transient`` a transient
    storage error is re-raised instead (the resource stays `Validating...`): the caller retries,
    and calls :func:`resource_validation_give_up` when it stops retrying.

    Raises ``Resource.DoesNotExist`` if the resource is gone.
    """
    resource = Resource.objects.get(pk=resource_id)
    try:
        return _validate(resource, resource_type=resource_type, file_format=file_format)
    except Resource.DoesNotExist:
        raise
    except _SourceChanged:
        # Replaced mid-run: whoever replaced the file queued a validation of the new one.
        logger.warning("Resource %s changed during validation; outcome discarded", resource_id)
        return Resource.objects.get(pk=resource_id)
    except Exception as error:
        if raise_transient and is_transient_storage_error(error):
            raise
        logger.exception(
            "Unexpected error while validating resource %s as %s/%s", resource_id, resource_type, file_format
        )
        return resource_validation_give_up(resource_id=resource_id)


@transaction.atomic
def resource_validation_give_up(*, resource_id: uuid.UUID | str) -> Resource:
    """End a validation that could not run: active, previous type kept, the §3.2 error text."""
    resource = Resource.objects.select_for_update().get(pk=resource_id)
    return settle_unexpected_error(resource)


def settle_unexpected_error(resource: Resource) -> Resource:
    """On a row locked by the caller's transaction: active, the unexpected-error text, admins told."""
    resource.is_active = True
    resource.status = UNEXPECTED_ERROR_STATUS
    clear_validation_request(resource)
    resource.save(update_fields=["is_active", "status", *PENDING_FIELDS])
    _notify_admins(resource)
    return resource


def _notify_admins(resource: Resource) -> None:
    from mev.users.tasks import send_admin_email

    subject = f"Validation of resource {resource.pk} failed unexpectedly"
    body = (
        f"Resource {resource.pk} ({resource.name!r}, owner {resource.owner_id}) could not be validated. "
        "See the worker log for the traceback."
    )

    def send() -> None:
        try:
            send_admin_email.delay(subject=subject, body=body)
        except Exception:  # the broker may be the very thing that failed; the log has the error
            logger.exception("Could not queue the admin alert for resource %s", resource.pk)

    transaction.on_commit(send)


def _validate(resource: Resource, *, resource_type: str | None, file_format: str | None) -> Resource:
    source_key = resource.datafile
    work_root = Path(settings.FILE_UPLOAD_TEMP_DIR)
    work_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="validate-", dir=work_root) as work_dir:
        out_dir = Path(work_dir) / "out"
        if not source_key:
            raise ValueError(f"Resource {resource.pk} has no stored file")
        with storage.local_copy(source_key) as src_path:
            outcome = run_engine(
                src_path=Path(src_path), resource_type=resource_type, file_format=file_format, out_dir=out_dir
            )
        if not outcome.ok:
            return _apply_failure(resource.pk, outcome=outcome, resource_type=resource_type, source_key=source_key)
        new_keys = _store_derived(resource, outcome)
    try:
        return _apply_success(resource.pk, outcome=outcome, new_keys=new_keys, source_key=source_key)
    except BaseException:
        _delete_keys(new_keys.values())
        raise


def _store_derived(resource: Resource, outcome: ValidationOutcome) -> dict[str, str]:
    """Upload the engine's derived files under fresh keys; on any failure remove what was stored.

    The files table_store writes next to the Parquet copy (the row file of a numeric matrix) are
    stored next to it too: their keys are the table key with their own suffix, so they are as
    fresh as it is, and a reader given the table file finds them beside it.
    """
    keys: dict[str, str] = {}
    wanted: list[tuple[str, Path | None, str | None]] = [
        ("standardized_file", outcome.standardized_path, STANDARDIZED_SUFFIX),
        ("table_file", outcome.parquet_path, TABLE_SUFFIX),
    ]
    if outcome.parquet_path is not None:
        wanted += [(field, path, None) for field, path in table_store.derived_paths(outcome.parquet_path).items()]
    try:
        for field, path, suffix in wanted:
            if path is None:
                continue
            if suffix is None:
                key = _beside_table_key(keys["table_file"], table_parquet=Path(outcome.parquet_path), path=Path(path))
            else:
                key = storage.new_key(owner_id=resource.owner_id, resource_id=resource.pk, suffix=suffix)
            keys[field] = key
            # move=True: on local storage the temp file becomes the stored file without a copy.
            storage.save_path(key=key, path=Path(path), move=True, checksum=storage.SKIP_CHECKSUM)
    except BaseException:
        _delete_keys(keys.values())
        raise
    return keys


def _beside_table_key(table_key: str, *, table_parquet: Path, path: Path) -> str:
    """The key of a file written beside the Parquet copy: the table key, renamed like the file."""
    stem = table_parquet.name.removesuffix(table_parquet.suffix)
    if not path.name.startswith(stem):  # pragma: no cover - table_store names them after the table
        raise ValueError(f"{path.name} was not written beside {table_parquet.name}")
    return storage.check_key(table_key.removesuffix(TABLE_SUFFIX) + path.name[len(stem):])


class _SourceChanged(Exception):
    """The stored file was replaced while we validated it; this outcome is about the old file."""


@transaction.atomic
def _apply_success(
    resource_id: uuid.UUID, *, outcome: ValidationOutcome, new_keys: dict[str, str], source_key: str
) -> Resource:
    resource = Resource.objects.select_for_update().get(pk=resource_id)
    if resource.datafile != source_key:
        raise _SourceChanged(f"resource {resource_id}: stored file changed during validation")
    old_keys = [key for key in (getattr(resource, field) for field in DERIVED_FIELDS) if key]

    resource.resource_type = outcome.resource_type
    resource.file_format = outcome.file_format
    for field in DERIVED_FIELDS:
        setattr(resource, field, new_keys.get(field, ""))
    resource.n_rows = outcome.n_rows
    resource.n_cols = outcome.n_cols
    resource.status = ResourceStatus.READY
    resource.is_active = True
    clear_validation_request(resource)
    resource.save(update_fields=[
        "resource_type", "file_format", *DERIVED_FIELDS, "n_rows", "n_cols", "status", "is_active",
        *PENDING_FIELDS,
    ])
    _replace_metadata(resource, observation_set=outcome.observation_set, feature_set=outcome.feature_set)

    kept = set(new_keys.values())
    stale = [key for key in old_keys if key not in kept]
    transaction.on_commit(lambda: _delete_keys(stale))
    if outcome.warnings:
        logger.info("Resource %s validated as %s with warnings: %s", resource_id, outcome.resource_type,
                    " | ".join(outcome.warnings))
    return resource


@transaction.atomic
def _apply_failure(
    resource_id: uuid.UUID, *, outcome: ValidationOutcome, resource_type: str | None, source_key: str
) -> Resource:
    """Keep the previous valid type, format, derived files and metadata; explain the failure."""
    resource = Resource.objects.select_for_update().get(pk=resource_id)
    if resource.datafile != source_key:
        raise _SourceChanged(f"resource {resource_id}: stored file changed during validation")
    resource.status = status_for_failure(
        outcome=outcome, new_type=resource_type or "", old_type=resource.resource_type
    )
    resource.is_active = True
    clear_validation_request(resource)
    resource.save(update_fields=["status", "is_active", *PENDING_FIELDS])
    return resource


def _replace_metadata(
    resource: Resource, *, observation_set: dict[str, Any] | None, feature_set: dict[str, Any] | None
) -> None:
    ResourceMetadata.objects.update_or_create(
        resource=resource, defaults={"observation_set": observation_set, "feature_set": feature_set}
    )
    ResourceElement.objects.filter(resource=resource).delete()
    rows = [
        *_element_rows(resource, ElementKind.OBSERVATION, observation_set),
        *_element_rows(resource, ElementKind.FEATURE, feature_set),
    ]
    ResourceElement.objects.bulk_create(rows, batch_size=2000)


def _element_rows(resource: Resource, kind: str, element_set: dict[str, Any] | None) -> Iterable[ResourceElement]:
    if not element_set:
        return []
    seen: set[str] = set()
    rows = []
    for element in element_set.get("elements") or []:
        element_id = str(element["id"])
        if element_id in seen:  # the engine rejects duplicates; never let one break the commit
            continue
        seen.add(element_id)
        rows.append(ResourceElement(resource=resource, kind=kind, element_id=element_id,
                                    attributes=element.get("attributes") or {}))
    return rows


def _delete_keys(keys: Iterable[str], *, delete: Callable[[str], Any] | None = None) -> None:
    """Best-effort removal of derived copies; a failure leaves a file for the periodic cleanup."""
    for key in list(keys):
        try:
            (delete or storage.delete)(key)
        except Exception:
            logger.exception("Could not delete stored file %s; the orphan cleanup will retry", key)
