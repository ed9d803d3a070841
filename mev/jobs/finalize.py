"""Finalization: a finished run's outputs become stored values and validated Resources.

Idempotent: each attempt first removes what an earlier, interrupted attempt created (records and
files), so it can be retried safely (§7.3.3). A failed required output fails the job and removes
every resource already created for it, files included (§5.3).
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction

from mev.jobs.models import ExecutedOperation
from mev.jobs.runners.base import RunResult
from mev.jobs.staging import delete_key, store_file
from mev.operations.converters import ConversionError, OutputFile, convert_output

logger = logging.getLogger("mev.jobs")
# Built-in bundles whose output resources are named by the file alone, not `<job name>.<file>`.
FILE_NAMED_BUNDLES = frozenset({"dropbox_import"})


class FinalizeFailure(Exception):
    def __init__(self, messages: list[str]):
        self.messages = messages
        super().__init__("; ".join(messages))


@dataclass
class Finalized:
    outputs: dict[str, Any]
    resource_ids: list[str] = field(default_factory=list)


def remove_output_resources(execution: ExecutedOperation, only: list[str] | None = None) -> None:
    from mev.resources.models import Resource
    from mev.resources.services import stored_keys

    queryset = Resource.objects.filter(parent_operation=execution)
    if only is not None:
        queryset = queryset.filter(pk__in=only)
    for resource in queryset:
        for key in stored_keys(resource):
            delete_key(key)
        resource.delete()


def _resolve_inside(workdir: Path, path: str) -> Path:
    candidate = Path(path)
    resolved = (candidate if candidate.is_absolute() else workdir / candidate).resolve()
    root = workdir.resolve()
    if root not in resolved.parents or not resolved.is_file():
        raise ConversionError(f"The output file {path} was not found in the job's working directory.")
    return resolved


def _file_format(path: Path, resource_type: str) -> str:
    from mev.resource_types.formats import ANY_FORMAT, normalize_format

    if resource_type == ANY_FORMAT:
        return ANY_FORMAT
    file_format = normalize_format(path.suffix) or "tsv"
    return "tsv" if file_format == "txt" else file_format


def validate_output_file(resource: Any, path: Path, resource_type: str) -> str | None:
    """Validate the (saved, stored) resource as its declared type through the resources app's
    synchronous validation; None on success (the instance is refreshed), else the reason."""
    file_format = _file_format(path, resource_type)
    try:
        from mev.resources.validation import resource_validate_now
    except ImportError:
        resource_validate_now = None
    if resource_validate_now is not None:
        resource.save()
        validated = resource_validate_now(resource=resource, resource_type=resource_type, file_format=file_format)
        resource.refresh_from_db()
        if validated.status == "" and validated.resource_type == resource_type:
            return None
        return validated.status or "The file did not pass validation."
    return _validate_in_place(resource, path, resource_type, file_format)


def _validate_in_place(resource: Any, path: Path, resource_type: str, file_format: str) -> str | None:
    """Fallback while the resources app has no validation service: the pure validation engine."""
    from mev.resource_types.validation import validate_resource

    with tempfile.TemporaryDirectory(prefix="mev-validate-") as out:
        outcome = validate_resource(src_path=path, resource_type=resource_type, file_format=file_format,
                                    out_dir=Path(out))
        if not outcome.ok:
            return outcome.reason or "The file did not pass validation."
        resource.resource_type = outcome.resource_type or resource_type
        resource.file_format = outcome.file_format or file_format
        resource.n_rows, resource.n_cols = outcome.n_rows, outcome.n_cols
        for attribute, produced in (("standardized_file", outcome.standardized_path),
                                    ("table_file", outcome.parquet_path)):
            if produced is not None and Path(produced).is_file():
                key, _, _ = store_file(path=Path(produced), owner_id=resource.owner_id, resource_id=resource.id,
                                       name=Path(produced).name)
                setattr(resource, attribute, key)
    return None


def _create_resource(execution: ExecutedOperation, output: OutputFile, path: Path) -> tuple[Any, str | None]:
    from mev.resources.models import Resource

    resource_id = uuid.uuid4()
    operation = execution.operation
    if operation.repository_url == "" and operation.repository_name in FILE_NAMED_BUNDLES:
        name = path.name[:255]  # an import: the file keeps the (sanitised) name the user gave
    else:
        name = f"{execution.job_name}.{path.name}"[:255]
    key, size, digest = store_file(path=path, owner_id=execution.owner_id, resource_id=resource_id, name=path.name)
    resource = Resource(id=resource_id, owner_id=execution.owner_id, name=name, datafile=key, size=size,
                        checksum=digest, parent_operation=execution, is_active=True, status="")
    resource.save()
    problem = validate_output_file(resource, path, output.resource_type)
    if problem is None:
        resource.save()
        if execution.workspace_id:
            from mev.workspaces.models import WorkspaceResource

            WorkspaceResource.objects.get_or_create(workspace_id=execution.workspace_id, resource=resource)
    return resource, problem


def finalize_outputs(execution: ExecutedOperation, result: RunResult, workdir: Path) -> Finalized:
    """Convert every spec output; raise FinalizeFailure (after cleaning up) if a required one fails."""
    remove_output_resources(execution)
    outputs: dict[str, Any] = {}
    errors: list[str] = []
    created: list[str] = []
    spec_outputs: dict[str, Any] = execution.operation.spec.get("outputs", {})
    try:
        for key, definition in spec_outputs.items():
            required = definition.get("required") is True
            key_created: list[str] = []
            try:
                converted = convert_output(definition["converter"], result.outputs.get(key), output_spec=definition)
                if not converted.files:
                    outputs[key] = converted.value
                    continue
                ids = []
                for output_file in converted.files:
                    path = _resolve_inside(workdir, output_file.path)
                    with transaction.atomic():
                        resource, problem = _create_resource(execution, output_file, path)
                    created.append(str(resource.id))
                    key_created.append(str(resource.id))
                    if problem:
                        raise ConversionError(f"The file {path.name} is not a valid {output_file.resource_type}: "
                                              f"{problem}")
                    ids.append(str(resource.id))
                outputs[key] = ids if converted.many else ids[0]
            except ConversionError as exc:
                if required:
                    errors.append(f"Output {key}: {exc.message}")
                else:
                    remove_output_resources(execution, only=key_created)
                    outputs[key] = None
    except Exception:
        remove_output_resources(execution)
        raise
    if errors:
        remove_output_resources(execution)
        raise FinalizeFailure(errors)
    return Finalized(outputs=outputs, resource_ids=created)
