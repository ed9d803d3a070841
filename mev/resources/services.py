"""Every write about resources: create from an uploaded file, rename / retype, delete."""

from __future__ import annotations

import logging
import unicodedata
import uuid
from pathlib import Path
from typing import Any

from django.db import transaction

from mev.core.exceptions import ApplicationError
from mev.resources import storage
from mev.resources.models import Resource, ResourceStatus
from mev.users.models import User

logger = logging.getLogger(__name__)

INACTIVE = "The resource is inactive."
IN_WORKSPACE = "This resource is used in one or more workspaces and cannot be removed. Remove it from them first."
NO_OWNER_CHANGE = "The owner of a resource cannot be changed."
NO_WORKSPACES_HERE = "Workspaces are changed through the workspace endpoints, not on the resource."
MAX_NAME = 255


def display_name(raw: str | None) -> str:
    """A harmless display name from a client-supplied file name.

    Path parts are stripped (``../../etc/passwd`` → ``passwd``), control and other non-printable
    characters removed, the result trimmed to 255 characters keeping the extension. The name is
    only ever displayed and sent back in Content-Disposition; it is never used to build a path.
    """
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    if name in ("", ".", ".."):
        name = "upload"
    if len(name) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            name = stem[: MAX_NAME - len(ext) - 1] + "." + ext
        else:
            name = name[:MAX_NAME]
    return name


def suggest_type(path: Path, original_name: str) -> tuple[str | None, str | None]:
    """The sniffer's (type, format) suggestion; never fatal, (None, None) on any failure."""
    try:
        from mev.resource_types.sniffing import suggest_type as sniff
    except ImportError:
        return None, None
    try:
        resource_type, file_format = sniff(path, original_name)
    except Exception:  # a suggestion must never break an upload
        logger.warning("type sniffing failed for %r", original_name, exc_info=True)
        return None, None
    return resource_type, file_format


@transaction.atomic
def resource_create_from_file(
    *, owner: User, name: str, path: Path, checksum: str | None = None, move: bool = True,
    status: str = ResourceStatus.READY, is_active: bool = True,
) -> Resource:
    """Store the local file `path` under a fresh server-chosen key and create its Resource.

    The resource is untyped (type and format null); the sniffer's suggestion goes into
    `suggested_*` only. `status` and `is_active` are stored as given (§7.2.13). With `move=True`
    the file at `path` is consumed. If the record cannot be created, the stored file is removed.
    """
    name = display_name(name)
    suggested_type, suggested_format = suggest_type(Path(path), name)
    resource_id = uuid.uuid4()
    key = storage.new_key(owner_id=owner.pk, resource_id=resource_id)
    size, sha256 = storage.save_path(key=key, path=Path(path), move=move, checksum=checksum)
    try:
        resource = Resource.objects.create(
            id=resource_id, owner=owner, name=name, datafile=key, size=size, checksum=sha256,
            resource_type=None, file_format=None, is_active=is_active, status=status,
            suggested_resource_type=suggested_type, suggested_file_format=suggested_format,
        )
    except BaseException:
        storage.delete(key)
        raise
    return resource


def _enqueue_validation(resource_id: str, resource_type: str, file_format: str) -> None:
    try:
        from mev.resources.tasks import validate_resource
    except ImportError as exc:  # the validation module is written separately
        raise ApplicationError(
            "Validation is not available on this server yet.", status_code=503
        ) from exc
    transaction.on_commit(lambda: validate_resource.delay(resource_id, resource_type, file_format))


_MISSING: Any = object()


@transaction.atomic
def resource_update(
    *, resource: Resource, name: str | None = None, resource_type: Any = _MISSING, file_format: Any = _MISSING,
    owner_email: Any = _MISSING, workspaces: Any = _MISSING,
) -> Resource:
    """Rename and/or retype a resource (contract §2.2 PATCH).

    - inactive → 400;
    - `owner_email` different from the owner's → 400 ``{"owner_email": ...}``; `workspaces` sent → 400;
    - a new `name` applies at once;
    - a non-null `resource_type`/`file_format` that differs from the current one makes the
      resource inactive with status ``Validating...`` and enqueues validation after commit with
      the requested type and format (a missing half is taken from the current value).
      Null or unchanged values mean "no change". The type itself is set only by validation.
    """
    resource = Resource.objects.select_for_update().get(pk=resource.pk)
    if not resource.is_active:
        raise ApplicationError(body={"detail": INACTIVE})
    if owner_email is not _MISSING and owner_email is not None and (
        str(owner_email).strip().lower() != resource.owner.email.lower()
    ):
        raise ApplicationError(body={"owner_email": NO_OWNER_CHANGE})
    if workspaces is not _MISSING:
        raise ApplicationError(body={"workspaces": NO_WORKSPACES_HERE})

    fields: list[str] = []
    if name is not None:
        new_name = display_name(name)
        if new_name != resource.name:
            resource.name = new_name
            fields.append("name")

    requested_type = None if resource_type is _MISSING else resource_type
    requested_format = None if file_format is _MISSING else file_format
    type_changes = requested_type is not None and requested_type != resource.resource_type
    format_changes = requested_format is not None and requested_format != resource.file_format
    if type_changes or format_changes:
        target_type = requested_type if requested_type is not None else resource.resource_type
        target_format = requested_format if requested_format is not None else resource.file_format
        if target_type is None:
            raise ApplicationError(body={"resource_type": "Give a resource type together with the format."})
        if target_format is None:
            raise ApplicationError(body={"file_format": "Give a file format together with the resource type."})
        from mev.resources.validation import PENDING_FIELDS, mark_validation_requested

        resource.is_active = False
        resource.status = ResourceStatus.VALIDATING
        mark_validation_requested(resource, resource_type=target_type, file_format=target_format)
        fields += ["is_active", "status", *PENDING_FIELDS]
        _enqueue_validation(str(resource.pk), target_type, target_format)
    if fields:
        resource.save(update_fields=fields)
    return resource


def stored_keys(resource: Resource) -> list[str]:
    """Every storage key a resource owns: the data file and the derived copies."""
    keys = (resource.datafile, resource.standardized_file, resource.table_file, resource.table_rows_file)
    return [k for k in keys if k]


def delete_files(keys: list[str]) -> None:
    for key in keys:
        try:
            storage.delete(key)
        except Exception:  # logged; the orphan sweep can retry
            logger.exception("could not delete stored file %s", key)


@transaction.atomic
def resource_delete(*, resource: Resource) -> None:
    """Delete a resource (§2.2): 403 if in any workspace, 400 if inactive.

    The record, its metadata and elements go in this transaction; the stored files are removed
    after commit (never before, so a rollback cannot leave a record without its file).
    """
    resource = Resource.objects.select_for_update().get(pk=resource.pk)
    if resource.workspaces.exists():
        raise ApplicationError(IN_WORKSPACE, status_code=403)
    if not resource.is_active:
        raise ApplicationError(body={"detail": INACTIVE})
    keys = stored_keys(resource)
    resource.delete()
    transaction.on_commit(lambda: delete_files(keys))
