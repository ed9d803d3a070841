"""`.values()` queries scoped to one key (a user's id), compiled once and run as prepared statements.

The resource list (`GET /api/resources/`) is the read every client page polls while anything
validates. Its two queries cost, per request (PostgreSQL 15 on loopback, 50 rows, measured with
timeit): ~0.87 ms each through the ORM, of which ~0.22 ms is compiling the queryset to SQL, ~0.2 ms
PostgreSQL planning the statement anew, and the rest psycopg loading 550 values as text. Compiled
once, prepared once per connection and read in psycopg's binary format, the same query takes ~0.28
ms. `ScopedValues` does that for a queryset that depends on one key only:

- the queryset is built once with a sentinel key and compiled; the positions where the sentinel
  appears among the parameters are where each call's key goes (a queryset whose parameters do not
  hold the sentinel is refused at once);
- the statement runs through Django's cursor machinery (`connection._prepare_cursor`), so it is
  logged and counted like any other query (`CaptureQueriesContext`), with a psycopg cursor that
  prepares it (`prepare=True`) and asks for binary results; Django's converters then apply as in
  `QuerySet.values()`;
- other databases (SQLite in `make run`), or `MEV_DB_PREPARED_STATEMENTS=false` (a pooler that
  cannot keep prepared statements), run the compiled SQL through Django's ordinary cursor.

`tests/core/test_scoped_query.py` compares every result with the ORM's.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from django.conf import settings
from django.db import connections, router
from django.db.models import QuerySet


class _PreparingCursor(psycopg.Cursor):
    """psycopg's server-side-binding cursor, preparing each statement and reading binary results."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        return super().execute(query, params, prepare=True, binary=True, **kwargs)


@dataclass(frozen=True)
class _Statement:
    sql: str
    params: tuple[Any, ...]
    # (position, how the key is written there: "uuid", "hex" or "str")
    key_positions: tuple[tuple[int, str], ...]
    names: tuple[str, ...]
    # Django's converters per column position, as SQLCompiler.get_converters gives them.
    converters: tuple[tuple[int, list[Any], Any], ...]


def _as(form: str, key: uuid.UUID) -> Any:
    return key if form == "uuid" else key.hex if form == "hex" else str(key)


class ScopedValues:
    """``build(key)`` — a `.values(...)` queryset whose only varying parameter is the UUID ``key`` — run
    for any key without compiling it again."""

    def __init__(self, build: Callable[[uuid.UUID], QuerySet[Any]]) -> None:
        self.build = build
        self._statements: dict[str, _Statement] = {}

    def rows(self, key: uuid.UUID | str) -> list[dict[str, Any]]:
        key = key if isinstance(key, uuid.UUID) else uuid.UUID(str(key))
        alias = router.db_for_read(self._model())
        statement = self._statements.get(alias) or self._compile(alias)
        connection = connections[alias]
        params = list(statement.params)
        for position, form in statement.key_positions:
            params[position] = _as(form, key)
        if connection.vendor == "postgresql" and settings.MEV_DB_PREPARED_STATEMENTS:
            connection.ensure_connection()
            cursor = connection._prepare_cursor(_PreparingCursor(connection.connection))
        else:
            cursor = connection.cursor()
        with cursor:
            cursor.execute(statement.sql, params)
            rows = cursor.fetchall()
        if statement.converters:
            rows = [list(row) for row in rows]
            for row in rows:
                for position, converters, column in statement.converters:
                    for convert in converters:
                        row[position] = convert(row[position], column, connection)
        names = statement.names
        return [dict(zip(names, row, strict=True)) for row in rows]

    def _model(self) -> Any:
        model = getattr(self, "_model_class", None)
        if model is None:
            model = self._model_class = self.build(uuid.uuid4()).model
        return model

    def _compile(self, alias: str) -> _Statement:
        sentinel = uuid.uuid4()
        queryset = self.build(sentinel)
        query = queryset.query
        compiler = query.get_compiler(alias)
        sql, params = compiler.as_sql()
        forms = {sentinel: "uuid", sentinel.hex: "hex", str(sentinel): "str"}
        positions = tuple(
            (i, forms[value]) for i, value in enumerate(params) if isinstance(value, uuid.UUID | str) and value in forms
        )
        if not positions:
            raise ValueError(f"{queryset.model.__name__}: the queryset's parameters do not hold its key: {params!r}")
        columns = [column for column, _, _ in compiler.select[: compiler.col_count]]
        statement = _Statement(
            sql=sql,
            params=tuple(params),
            key_positions=positions,
            names=(*query.extra_select, *query.values_select, *query.annotation_select),
            converters=tuple(
                (position, converters, column)
                for position, (converters, column) in compiler.get_converters(columns).items()
            ),
        )
        self._statements[alias] = statement
        return statement
