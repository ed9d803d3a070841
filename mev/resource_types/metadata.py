"""Observation and feature sets extracted from validated tables (§3.6)."""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa

from .tables import MISSING_TOKENS, CheckedTable

POSITIVE_INFINITY = "++inf++"
NEGATIVE_INFINITY = "--inf--"
_MISSING = frozenset(MISSING_TOKENS)


def matrix_observation_set(names: list[str]) -> dict[str, Any]:
    """Matrix family: one observation per column (sample), without attributes."""
    return {"elements": [{"id": name, "attributes": {}} for name in names]}


def _attribute_type(kind: pa.DataType) -> str:
    if pa.types.is_integer(kind):
        return "Integer"
    if pa.types.is_floating(kind):
        return "Float"
    return "UnrestrictedString"


def _attribute_value(value: Any) -> Any:
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return POSITIVE_INFINITY if value > 0 else NEGATIVE_INFINITY
    if isinstance(value, str) and value.strip() in _MISSING:
        return None
    return value


def annotation_observation_set(checked: CheckedTable) -> dict[str, Any]:
    """ANN: one observation per row (id = row name); each column is a typed attribute."""
    table = checked.table
    ids = table.column(0).to_pylist()
    columns = []
    for name in checked.names:
        column = table.column(name)
        columns.append((name, _attribute_type(column.type), column.to_pylist()))
    elements = []
    for row, identifier in enumerate(ids):
        attributes = {
            name: {"attribute_type": kind, "value": _attribute_value(values[row])}
            for name, kind, values in columns
        }
        elements.append({"id": identifier, "attributes": attributes})
    return {"elements": elements}
