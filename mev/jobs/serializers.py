"""The executed-operation object (§5.3), built as plain dicts (listings stay cheap, §7.4.3)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mev.jobs.models import ExecutedOperation


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def execution_data(execution: ExecutedOperation, *, workspace_variant: bool = True) -> dict[str, Any]:
    operation = execution.operation
    categories = [c.category for c in operation.categories.all()]
    body: dict[str, Any] = {
        "id": str(execution.id),
        "owner": str(execution.owner_id),
        "operation": {
            "operation_id": str(operation.id),
            "operation_name": operation.name,
            "categories": categories,
        },
        "job_id": execution.job_id,
        "job_name": execution.job_name,
        "inputs": execution.inputs or {},
        "outputs": execution.outputs,
        "error_messages": execution.error_messages,
        "status": execution.status,
        "execution_start_datetime": iso(execution.execution_start_datetime),
        "execution_stop_datetime": iso(execution.execution_stop_datetime),
        "job_failed": execution.job_failed,
        "is_finalizing": execution.is_finalizing,
        "mode": execution.mode,
        "state": execution.state,
        "metrics": execution.metrics or {},
    }
    if workspace_variant:
        body["operation"]["inputs"] = operation.spec.get("inputs", {})
        body["operation"]["active"] = operation.active
        if execution.workspace_id:
            body["workspace"] = str(execution.workspace_id)
    return body
