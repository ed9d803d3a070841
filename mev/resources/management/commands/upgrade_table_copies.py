"""`manage.py upgrade_table_copies`: rebuild the table copies stored by older releases in today's format.

Tables validated before the current ``table_store.FORMAT_VERSION`` (or whose row file was never
recorded) are still served, but slower: a wide matrix without a row file decodes whole Parquet row
groups for every sorted or filtered page. This command rebuilds their copies the way validation
writes them today and switches the resource to them.

How each resource is handled, and why:

- **Rebuilt from what validation read**: the stored standardized TSV of a table (the user's upload
  may differ from it: CSV, Excel, quotes), the data file of a BED file (validation keeps no other
  copy). The validation engine runs on it again, so the copy is written by today's code path,
  parse and checks included; only its Parquet copy and row file are kept.
- **Checked before it is used**: the rebuilt copy must have the kind, the row labels (in order) and
  the columns of the stored one, or the resource is reported failed and left alone.
- **New keys, one switch, old keys last** (as validation does, see `mev.resources.validation`):
  the new files are stored under fresh keys, the resource's two fields are switched in one
  transaction that first checks nothing changed since the rebuild started (a validation or a
  deletion in between wins), and the old files are deleted only after that commit, and only after
  ``--grace-seconds``: a contents request that read the row just before the switch still finds
  the files it was told about. Any failure deletes the new keys and leaves the resource as it was.
- **Idempotent**: an up-to-date copy is only looked at (its footer), so a second run changes nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from mev.resource_types import table_store
from mev.resource_types.outcome import ValidationOutcome
from mev.resource_types.registry import (
    BedType,
    ResourceType,
    TableType,
    all_resource_types,
    get_resource_type,
)
from mev.resource_types.validation import validate_resource as run_engine
from mev.resources import storage
from mev.resources.models import Resource
from mev.resources.validation import _delete_keys as delete_keys
from mev.resources.validation import _store_derived as store_derived_copies

logger = logging.getLogger(__name__)

# store_derived_copies and delete_keys are validation's own storing and deleting of derived copies
# (keys beside the table key, clean-up of a half-stored set, best-effort delete): private there,
# reused here rather than copied, so an upgraded copy is stored exactly as a validated one.

# Seconds between a switch and the deletion of the old copies (see the module docstring).
DEFAULT_GRACE_SECONDS = 10.0
# The fields that hold a table copy; switched together in one UPDATE.
COPY_FIELDS = ("table_file", "table_rows_file")
# Read when an upgrade starts and compared, under a row lock, when it switches: any difference
# means someone else (a validation, a replaced file, another run of this command) got there first.
SNAPSHOT_FIELDS = (
    "datafile", "standardized_file", *COPY_FIELDS, "resource_type", "is_active", "validation_requested_at",
)

UPGRADED, WOULD_UPGRADE, CURRENT, SKIPPED, FAILED = "upgraded", "would upgrade", "current", "skipped", "failed"


def table_type_codes() -> list[str]:
    """Codes of the resource types validation stores a table copy for."""
    return [handler.code for handler in all_resource_types() if isinstance(handler, TableType | BedType)]


def upgrade_reason(info: table_store.StoredTableInfo, resource: Resource) -> str | None:
    """Why the stored copy described by ``info`` should be rebuilt, or None when it is current."""
    if info.format_version < table_store.FORMAT_VERSION:
        return f"format version {info.format_version} (current {table_store.FORMAT_VERSION})"
    if info.rows_file_id is not None and not resource.table_rows_file:
        return "its row file is not recorded on the resource"
    return None


@dataclasses.dataclass(frozen=True)
class Result:
    resource_id: uuid.UUID
    outcome: str  # one of UPGRADED, WOULD_UPGRADE, CURRENT, SKIPPED, FAILED
    detail: str = ""
    # Copies replaced by a committed switch, to delete once the grace period has passed.
    stale_keys: tuple[str, ...] = ()


class _Skip(Exception):
    """Not upgraded, and rightly so (not a table, being validated, changed meanwhile)."""


class _Fail(Exception):
    """Could not be upgraded; the message says why. The resource is left as it was."""


class _Changed(Exception):
    """The resource changed between the start of the rebuild and the switch."""


def _snapshot(resource: Resource) -> tuple[Any, ...]:
    return tuple(getattr(resource, name) for name in SNAPSHOT_FIELDS)


def _source_key(resource: Resource, handler: ResourceType) -> str:
    """The stored file validation read to write the copy (never the upload when they differ)."""
    if isinstance(handler, BedType):
        key = resource.datafile  # validated as it is: there is no standardized copy of a BED file
    else:
        key = resource.standardized_file
    if not key:
        what = "data file" if isinstance(handler, BedType) else "standardized file (its upload is not used)"
        raise _Fail(f"it has no stored {what} to rebuild from")
    return key


@contextmanager
def _local(key: str, what: str) -> Iterator[Path]:
    """A local path of the stored ``key``; a clear failure when the file is not in the storage."""
    if not storage.exists(key):
        raise _Fail(f"its {what} {key} is missing from the storage")
    with storage.local_copy(key) as path:
        yield Path(path)


def _labels(parquet: pq.ParquetFile) -> pa.Array:
    column = parquet.read(columns=[table_store.ROWNAME_COLUMN], use_threads=False).column(0)
    return column.cast(pa.string()).combine_chunks()


def _check_same_table(
    old: table_store.StoredTableInfo, old_labels: pa.Array, new: table_store.StoredTableInfo, new_labels: pa.Array
) -> None:
    """Refuse a rebuilt copy that does not hold the same table as the stored one."""
    if new.kind != old.kind:
        raise _Fail(f"the rebuilt copy is a {new.kind} table, the stored one a {old.kind} table")
    if new.columns != old.columns:
        raise _Fail("the rebuilt copy does not have the columns of the stored one")
    if new.n_rows != old.n_rows:
        raise _Fail(f"the rebuilt copy has {new.n_rows} rows, the stored one {old.n_rows}")
    if not new_labels.equals(old_labels):
        raise _Fail("the rebuilt copy does not have the row names of the stored one")
    if new.format_version != table_store.FORMAT_VERSION:  # pragma: no cover - table_store writes the current one
        raise _Fail(f"the rebuilt copy has format version {new.format_version}")


def _rebuild(resource: Resource, handler: ResourceType, source_key: str, work_dir: Path) -> Path:
    """Run validation on the stored source again; the path of the Parquet copy it wrote."""
    with _local(source_key, "stored source file") as src_path:
        outcome = run_engine(
            src_path=src_path, resource_type=resource.resource_type, file_format=handler.standard_format,
            out_dir=work_dir / "out",
        )
    if not outcome.ok:
        raise _Fail(f"its stored source no longer validates: {outcome.reason}")
    if outcome.parquet_path is None:  # pragma: no cover - every table type writes one
        raise _Fail("validation wrote no table copy")
    return Path(outcome.parquet_path)


def _store(resource: Resource, parquet_path: Path) -> dict[str, str]:
    """Store the Parquet copy and what table_store wrote beside it under fresh keys, by field name.

    Only the table copy goes in: the standardized file the copy was rebuilt from stays as it is.
    """
    keys = store_derived_copies(resource, ValidationOutcome(ok=True, resource_type=resource.resource_type,
                                                            file_format=resource.file_format,
                                                            parquet_path=parquet_path))
    unexpected = set(keys) - set(COPY_FIELDS)
    if unexpected:  # pragma: no cover - only the table copy was handed over
        delete_keys(keys.values())
        raise _Fail(f"storing the copy also stored {sorted(unexpected)}")
    return keys


@transaction.atomic
def _switch(resource_id: uuid.UUID, *, snapshot: tuple[Any, ...], new_keys: dict[str, str]) -> list[str]:
    """Point the resource at its new copies in one UPDATE; the keys it pointed to before."""
    locked = Resource.objects.select_for_update().filter(pk=resource_id).first()
    if locked is None or _snapshot(locked) != snapshot:
        raise _Changed
    old_keys = [getattr(locked, name) for name in COPY_FIELDS]
    locked.table_file = new_keys["table_file"]
    locked.table_rows_file = new_keys.get("table_rows_file", "")
    locked.save(update_fields=list(COPY_FIELDS))
    kept = set(new_keys.values())
    return [key for key in old_keys if key and key not in kept]


def upgrade_table_copy(*, resource_id: uuid.UUID, dry_run: bool = False) -> Result:
    """Bring one resource's table copy up to the current format (see the module docstring).

    Never raises for a resource that cannot be upgraded: the result says why. The old keys of an
    upgraded resource are returned in ``stale_keys``, for the caller to delete after commit.
    """
    try:
        return _upgrade(resource_id, dry_run=dry_run)
    except _Skip as skip:
        return Result(resource_id, SKIPPED, str(skip))
    except _Changed:
        return Result(resource_id, SKIPPED, "it changed during the upgrade (validated again or deleted); left as it is")
    except _Fail as failure:
        return Result(resource_id, FAILED, str(failure))
    except Exception as error:
        logger.exception("Could not upgrade the table copy of resource %s", resource_id)
        return Result(resource_id, FAILED, f"unexpected error: {type(error).__name__}: {error}")


def _upgrade(resource_id: uuid.UUID, *, dry_run: bool) -> Result:
    resource = Resource.objects.filter(pk=resource_id).first()
    if resource is None:
        raise _Skip("it was deleted")
    handler = get_resource_type(resource.resource_type)
    if not isinstance(handler, TableType | BedType):
        raise _Skip(f"its type {resource.resource_type or 'none'} has no table copy")
    if not resource.table_file:
        raise _Skip("it has no stored table copy")
    if not resource.is_active or resource.validation_requested_at is not None:
        raise _Skip("it is being validated; the validation writes a current copy")
    snapshot = _snapshot(resource)

    work_root = Path(settings.FILE_UPLOAD_TEMP_DIR)
    work_root.mkdir(parents=True, exist_ok=True)
    with _local(resource.table_file, "table copy") as old_path, pq.ParquetFile(old_path) as old_file:
        old_info = table_store.read_info(old_file)
        if old_info.format_version > table_store.FORMAT_VERSION:
            raise _Skip(f"its copy has format version {old_info.format_version}, newer than this release's")
        reason = upgrade_reason(old_info, resource)
        if reason is None:
            return Result(resource_id, CURRENT)
        source_key = _source_key(resource, handler)
        if dry_run:
            if not storage.exists(source_key):
                raise _Fail(f"its stored source file {source_key} is missing from the storage")
            return Result(resource_id, WOULD_UPGRADE, reason)
        old_labels = _labels(old_file)
        with tempfile.TemporaryDirectory(prefix="upgrade-table-", dir=work_root) as work_dir:
            parquet_path = _rebuild(resource, handler, source_key, Path(work_dir))
            with pq.ParquetFile(parquet_path) as new_file:
                _check_same_table(old_info, old_labels, table_store.read_info(new_file), _labels(new_file))
            new_keys = _store(resource, parquet_path)
    try:
        stale = _switch(resource.pk, snapshot=snapshot, new_keys=new_keys)
    except BaseException:
        delete_keys(new_keys.values())
        raise
    if old_info.rows_file_id is not None and not resource.table_rows_file:
        # The old copy's row file was stored beside it without being recorded (readers find it
        # there): it goes with the copy it belongs to.
        stale.append(storage.check_key(table_store.rows_path_for(Path(resource.table_file)).as_posix()))
    detail = reason + ("; row file written" if "table_rows_file" in new_keys else "")
    logger.info("Upgraded the table copy of resource %s (%s): %s -> %s", resource_id, detail,
                resource.table_file, new_keys["table_file"])
    return Result(resource_id, UPGRADED, detail, tuple(stale))


class _DeferredDeletion:
    """Old copies, deleted ``grace`` seconds after the switch that replaced them committed."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.pending: list[tuple[float, tuple[str, ...]]] = []

    def add(self, keys: tuple[str, ...]) -> None:
        self.pending.append((time.monotonic(), keys))

    def delete_due(self, *, wait: bool = False) -> None:
        while self.pending:
            committed, keys = self.pending[0]
            left = committed + self.grace - time.monotonic()
            if left > 0:
                if not wait:
                    return
                time.sleep(left)
            self.pending.pop(0)
            delete_keys(keys)


def _resource_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a resource id (a UUID)") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
    return value


class Command(BaseCommand):
    help = (
        "Rebuild the table copies (Parquet + row file) of resources validated by older releases in the "
        "current format, so their contents are served fast. Safe to run again and while the site serves."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="list what would be upgraded; change nothing")
        parser.add_argument("--resource", action="append", type=_resource_id, default=[], metavar="UUID",
                            help="only this resource (repeatable); default: every table resource")
        parser.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                            help="stop after N resources that need an upgrade (upgraded or failed)")
        parser.add_argument("--grace-seconds", type=_seconds, default=DEFAULT_GRACE_SECONDS, metavar="S",
                            help="keep replaced copies this long after the switch, for requests in flight "
                                 f"(default {DEFAULT_GRACE_SECONDS:g})")

    def handle(self, *args: Any, dry_run: bool, resource: list[uuid.UUID], limit: int | None,
               grace_seconds: float, **options: Any) -> None:
        verbosity = int(options.get("verbosity", 1))
        ids = self._resource_ids(resource)
        deletion = _DeferredDeletion(grace_seconds)
        results: list[Result] = []
        attempted = 0
        try:
            for resource_id in ids:
                if limit is not None and attempted >= limit:
                    break
                result = upgrade_table_copy(resource_id=resource_id, dry_run=dry_run)
                results.append(result)
                if result.outcome in (UPGRADED, WOULD_UPGRADE, FAILED):
                    attempted += 1
                if result.stale_keys:
                    # After commit: inside a caller's transaction the old keys stay (the orphan
                    # sweep has them) rather than go before the switch is durable.
                    transaction.on_commit(lambda keys=result.stale_keys: deletion.add(keys))
                if verbosity >= 1 and (result.outcome != CURRENT or verbosity >= 2):
                    self.stdout.write(self._line(result))
                deletion.delete_due()
        finally:
            deletion.delete_due(wait=True)
        self._summary(results, total=len(ids), dry_run=dry_run, limit=limit)
        failed = sum(result.outcome == FAILED for result in results)
        if failed:
            raise CommandError(f"{failed} resource(s) could not be upgraded; each is left as it was (see above).")

    def _resource_ids(self, requested: list[uuid.UUID]) -> list[uuid.UUID]:
        if not requested:
            return list(
                Resource.objects.filter(resource_type__in=table_type_codes())
                .exclude(table_file="")
                .order_by("created", "pk")
                .values_list("pk", flat=True)
            )
        wanted = list(dict.fromkeys(requested))
        found = set(Resource.objects.filter(pk__in=wanted).values_list("pk", flat=True))
        unknown = [str(resource_id) for resource_id in wanted if resource_id not in found]
        if unknown:
            raise CommandError(f"No resource with id {', '.join(unknown)}; nothing was changed.")
        return wanted

    @staticmethod
    def _line(result: Result) -> str:
        text = f"{result.outcome}: {result.resource_id}"
        return f"{text}: {result.detail}" if result.detail else text

    def _summary(self, results: list[Result], *, total: int, dry_run: bool, limit: int | None) -> None:
        counts = {outcome: sum(r.outcome == outcome for r in results)
                  for outcome in (UPGRADED, WOULD_UPGRADE, CURRENT, SKIPPED, FAILED)}
        changed = (f"{counts[WOULD_UPGRADE]} would be upgraded (dry run: nothing changed)" if dry_run
                   else f"{counts[UPGRADED]} upgraded")
        self.stdout.write(
            f"Checked {len(results)} table resource(s): {changed}, {counts[CURRENT]} already current, "
            f"{counts[SKIPPED]} skipped, {counts[FAILED]} failed."
        )
        if len(results) < total:
            self.stdout.write(f"Stopped at --limit {limit}: {total - len(results)} resource(s) not checked; "
                              "run the command again for them.")
