"""The single entry point that validates a stored file as a resource type, and the §3.2 status texts."""

from __future__ import annotations

from pathlib import Path

from .formats import normalize_format
from .outcome import ValidationFailure, ValidationOutcome
from .registry import ValidationRequest, get_resource_type, title_for

VALIDATING_STATUS = "Validating..."
PROCESSING_STATUS = "Processing..."
READY_STATUS = ""
UNABLE_TO_VALIDATE_STATUS = "Could not validate the resource given the information provided."
UNEXPECTED_ERROR_STATUS = (
    "There was an unexpected error during validation. An administrator has been notified."
)


def unknown_type_status(resource_type: str) -> str:
    return f"The requested resource type of {resource_type} is not a known type."


def format_not_accepted_status(*, file_format: str, title: str, acceptable: list[str]) -> str:
    return (
        f'File format "{file_format}" is not consistent with the requested resource type ({title}). '
        f"Acceptable formats/extensions are: {', '.join(acceptable)}"
    )


def validate_resource(
    *, src_path: Path, resource_type: str | None, file_format: str | None, out_dir: Path
) -> ValidationOutcome:
    """Check ``src_path`` against ``resource_type`` declared as ``file_format`` (§3.2 steps 2-6).

    On success, tables get a standard TSV and every type with contents a Parquet copy, both
    written under ``out_dir``. Unexpected errors (I/O, bugs) propagate: the caller turns them into
    ``UNEXPECTED_ERROR_STATUS`` and notifies an administrator.
    """
    fmt = normalize_format(file_format)
    if not resource_type or not fmt:
        return ValidationOutcome.failure(
            reason=UNABLE_TO_VALIDATE_STATUS, stage="request", resource_type=resource_type, file_format=fmt
        )
    handler = get_resource_type(resource_type)
    if handler is None:
        return ValidationOutcome.failure(
            reason=unknown_type_status(resource_type),
            stage="request",
            resource_type=resource_type,
            file_format=fmt,
        )
    if not handler.accepts_format(fmt):
        return ValidationOutcome.failure(
            reason=format_not_accepted_status(
                file_format=file_format or fmt,
                title=handler.title,
                acceptable=list(handler.acceptable_formats),
            ),
            stage="request",
            resource_type=resource_type,
            file_format=fmt,
        )
    try:
        return handler.validate(
            ValidationRequest(src_path=Path(src_path), file_format=fmt, out_dir=Path(out_dir))
        )
    except ValidationFailure as failure:
        return ValidationOutcome.failure(
            reason=failure.reason, stage="contents", resource_type=resource_type, file_format=fmt
        )


def status_for_failure(*, outcome: ValidationOutcome, new_type: str, old_type: str | None) -> str:
    """The resource status after a failed validation (§3.2 steps 2-4 and 7).

    ``old_type`` is the code of the type the resource had validated as before, or None if it never
    validated. Types are shown by their titles.
    """
    if outcome.ok:
        raise ValueError("status_for_failure() needs a failed outcome")
    if outcome.stage == "request":
        return outcome.reason
    new_title = title_for(new_type) or new_type
    if old_type:
        old_title = title_for(old_type) or old_type
        return (
            f"Reverting back to the previously valid state of type: {old_title}. "
            f"Could not validate as {new_title} for the following reason: {outcome.reason}"
        )
    return f'Failed validation for resource type "{new_title}". {outcome.reason}'
