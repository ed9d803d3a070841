"""The result of validating one file against one resource type, and the failure raised inside checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

# "request": the type/format pair was rejected before the file was opened (§3.2 steps 2-4); the
# reason is then the complete status text. "contents": a type-specific check failed (§3.2 step 7);
# the caller prefixes the reason with 'Failed validation…' or 'Reverting back…'.
FailureStage = Literal["request", "contents"]


class ValidationFailure(Exception):
    """A check found the file unacceptable; ``reason`` is the sentence shown to the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class ValidationOutcome:
    ok: bool
    resource_type: str | None
    file_format: str | None
    reason: str = ""
    stage: FailureStage | None = None
    standardized_path: Path | None = None
    parquet_path: Path | None = None
    observation_set: dict[str, Any] | None = None
    feature_set: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    n_rows: int | None = None
    n_cols: int | None = None

    @classmethod
    def failure(
        cls, *, reason: str, stage: FailureStage, resource_type: str | None, file_format: str | None
    ) -> ValidationOutcome:
        return cls(ok=False, resource_type=resource_type, file_format=file_format, reason=reason, stage=stage)
