"""Every read about operations. Listings read the stored specs only, never the disk (§7.4.3)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from django.db.models import Prefetch, QuerySet

from mev.core.exceptions import ApplicationError
from mev.operations.models import Operation, OperationCategory, OperationResource


def _with_categories(queryset: QuerySet[Operation]) -> QuerySet[Operation]:
    return queryset.prefetch_related(Prefetch("categories", queryset=OperationCategory.objects.order_by("category")))


def operation_list() -> QuerySet[Operation]:
    return _with_categories(Operation.objects.filter(active=True))


def operation_get(*, operation_id: uuid.UUID | str, active_only: bool = True) -> Operation:
    queryset = Operation.objects.filter(active=True) if active_only else Operation.objects.all()
    operation = queryset.filter(pk=operation_id).first()
    if operation is None:
        raise ApplicationError("Not found.", status_code=404)
    return operation


def category_names(operation: Operation) -> list[str]:
    return [c.category for c in operation.categories.all()]


def category_tree() -> list[dict[str, Any]]:
    """[{name, children: [stored spec, ...]}] for active workspace operations; no empty category."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for operation in operation_list().filter(workspace_operation=True):
        for name in category_names(operation):
            groups[name].append(operation.spec)
    return [{"name": name, "children": groups[name]} for name in sorted(groups)]


def category_operations(*, category: str) -> list[dict[str, Any]]:
    return [op.spec for op in operation_list().filter(categories__category=category).distinct()]


def operation_resource_list(*, operation: Operation, input_key: str | None = None) -> QuerySet[OperationResource]:
    """Files bundled with `operation`, optionally for one input key (404 if the key is not an input)."""
    if input_key is not None and input_key not in operation.spec.get("inputs", {}):
        raise ApplicationError("Not found.", status_code=404)
    queryset = OperationResource.objects.filter(operation=operation)
    return queryset.filter(input_key=input_key) if input_key is not None else queryset


def operation_resource_data(item: OperationResource) -> dict[str, Any]:
    """The listing shape (§2.8): no storage key, so no download link."""
    from mev.resource_types.registry import get_resource_type

    kind = get_resource_type(item.resource_type)
    return {
        "id": str(item.id), "name": item.name, "resource_type": item.resource_type,
        "readable_resource_type": kind.title if kind is not None else item.resource_type,
        "input_key": item.input_key, "input_field": item.input_key, "operation": str(item.operation_id),
        "size": item.size,
    }
