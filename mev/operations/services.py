"""Every write about operations: ingestion (folder or git), (de)activation, categories."""

from __future__ import annotations

import logging
import shutil
import uuid
from pathlib import Path

from django.db import transaction

from mev.core.exceptions import ApplicationError
from mev.operations import ingestion
from mev.operations.models import IngestionRecord, Operation, OperationCategory, OperationResource
from mev.operations.spec import to_stored_document
from mev.users.models import User

logger = logging.getLogger("mev.operations")


def _create_operation(
    *, bundle: ingestion.Bundle, operation_id: uuid.UUID, git_hash: str, repository_url: str,
    repository_name: str, categories: list[str],
) -> Operation:
    bundle_dir = ingestion.copy_bundle(bundle, operation_id)
    document = to_stored_document(
        bundle.spec, id=str(operation_id), git_hash=git_hash, repository_url=repository_url,
        repository_name=repository_name,
    )
    # A new version replaces the previous ones of the same source in listings; they stay resolvable.
    same_source = Operation.objects.filter(active=True, repository_url=repository_url,
                                           repository_name=repository_name)
    if not repository_url:
        same_source = same_source.filter(name=bundle.spec.name)
    same_source.update(active=False)
    operation = Operation.objects.create(
        id=operation_id, name=bundle.spec.name, description=bundle.spec.description, mode=bundle.spec.mode,
        workspace_operation=bundle.spec.workspace_operation, repository_url=repository_url,
        repository_name=repository_name, git_hash=git_hash, spec=document, bundle_dir=str(bundle_dir), active=True,
    )
    OperationCategory.objects.bulk_create(OperationCategory(operation=operation, category=c) for c in categories)
    _store_operation_resources(operation=operation, bundle=bundle, bundle_dir=bundle_dir)
    return operation


def _store_operation_resources(*, operation: Operation, bundle: ingestion.Bundle, bundle_dir: Path) -> None:
    """Store each file of `operation_resources.json` (from the immutable bundle copy) and record it."""
    from mev.jobs.staging import delete_key, store_file

    stored: list[str] = []
    try:
        for item in bundle.operation_resources:
            resource_id = uuid.uuid4()
            key, size, digest = store_file(path=bundle_dir / item.path, owner_id="operations",
                                           resource_id=operation.id, name=Path(item.path).name)
            stored.append(key)
            OperationResource.objects.create(id=resource_id, operation=operation, input_key=item.input_key,
                                             name=item.name, resource_type=item.resource_type, datafile=key,
                                             bundle_path=item.path, size=size, checksum=digest)
    except BaseException:
        for key in stored:
            delete_key(key)
        raise


def _restore_operation_resources(*, operation: Operation) -> None:
    """After the bundle copy was restored (a new data directory), store again the bundled files the
    storage no longer has; their ids stay, so past executions still name them."""
    from mev.jobs.staging import store_file
    from mev.resources import storage

    for item in OperationResource.objects.filter(operation=operation):
        if item.datafile and storage.exists(item.datafile):
            continue
        key, size, digest = store_file(path=Path(operation.bundle_dir) / item.bundle_path, owner_id="operations",
                                       resource_id=operation.id, name=Path(item.bundle_path).name)
        item.datafile, item.size, item.checksum = key, size, digest
        item.save(update_fields=["datafile", "size", "checksum"])


@transaction.atomic
def operation_ingest_folder(*, folder: Path, categories_file: Path | None = None) -> tuple[Operation, bool]:
    """Ingest a built-in bundle. Same content hash as an existing version: no new version.

    Built-ins are identified by `repository_name` = the folder name; `git_hash` holds the content hash.
    """
    folder = Path(folder).resolve()
    bundle = ingestion.read_bundle(folder, with_common=True)
    existing = Operation.objects.filter(repository_url="", repository_name=folder.name,
                                        git_hash=bundle.content_hash).order_by("-created").first()
    if existing is not None:
        if not Path(existing.bundle_dir).is_dir():
            # Same content, but its copy is gone (a new data directory): restore it.
            existing.bundle_dir = str(ingestion.copy_bundle(bundle, existing.id))
            existing.save(update_fields=["bundle_dir"])
            _restore_operation_resources(operation=existing)
        if not existing.active and not Operation.objects.filter(
            active=True, repository_url="", repository_name=folder.name
        ).exists():
            existing.active = True
            existing.save(update_fields=["active"])
        return existing, False
    categories = ingestion.categories_for(bundle.spec.name, categories_file=categories_file)
    operation = _create_operation(
        bundle=bundle, operation_id=uuid.uuid4(), git_hash=bundle.content_hash, repository_url="",
        repository_name=folder.name, categories=categories,
    )
    return operation, True


@transaction.atomic
def operation_ingestion_request(*, requested_by: User, repository_url: str, commit_id: str = "") -> IngestionRecord:
    """Record the request and enqueue the clone; the record id becomes the new operation's id."""
    try:
        url = ingestion.check_repository_url(repository_url)
    except ingestion.IngestionError as exc:
        raise ApplicationError(body={"repository_url": exc.messages}) from exc
    commit_id = (commit_id or "").strip()
    if commit_id and not ingestion._COMMIT_PATTERN.fullmatch(commit_id):
        raise ApplicationError(body={"commit_id": ["The commit must be a hexadecimal git commit hash."]})
    record = IngestionRecord.objects.create(repository_url=url, commit=commit_id, requested_by=requested_by)
    from mev.operations.tasks import ingest_repository

    transaction.on_commit(lambda: ingest_repository.delay(ingestion_id=str(record.id)))
    return record


def operation_ingest_repository(*, ingestion_id: uuid.UUID | str) -> IngestionRecord:
    """Clone, pin the commit, check the spec and the mode's files, register. Failures are recorded."""
    record = IngestionRecord.objects.get(pk=ingestion_id)
    if record.state != IngestionRecord.State.RUNNING:
        return record
    tmp = None
    try:
        tmp, checkout, full_hash = ingestion.with_clone(record.repository_url, record.commit or None)
        bundle = ingestion.read_bundle(checkout, with_common=False)
        with transaction.atomic():
            operation = _create_operation(
                bundle=bundle, operation_id=record.id, git_hash=full_hash, repository_url=record.repository_url,
                repository_name=ingestion.repository_name(record.repository_url),
                categories=ingestion.categories_for(bundle.spec.name),
            )
            record.state = IngestionRecord.State.SUCCEEDED
            record.commit = full_hash
            record.operation = operation
            record.message = ""
            record.save()
    except ingestion.IngestionError as exc:
        record.state = IngestionRecord.State.FAILED
        record.message = "\n".join(exc.messages)
        record.save(update_fields=["state", "message"])
    except Exception as exc:  # noqa: BLE001  (every failure must be visible to staff, §7.3.11)
        logger.exception("Ingestion %s failed", record.id)
        record.state = IngestionRecord.State.FAILED
        record.message = f"Unexpected error: {exc}"
        record.save(update_fields=["state", "message"])
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return record


@transaction.atomic
def operation_update(*, operation: Operation, active: bool) -> Operation:
    operation.active = active
    operation.save(update_fields=["active"])
    return operation


@transaction.atomic
def operation_category_add(*, operation: Operation, category: str) -> OperationCategory:
    item, _ = OperationCategory.objects.get_or_create(operation=operation, category=category.strip())
    return item
