"""Primary-key reads whose SQL is compiled once per process, for the lookups made on every request.

Compiling a queryset costs the ORM 150-300 µs of CPU per evaluation, several times what PostgreSQL
needs to answer a primary-key lookup (about 20 µs). The authenticated user is read on every API
request and the resource on every contents request, so for those two reads `PkLookup` asks the ORM
for the statement once, then runs it through Django's cursor (logged and counted like any other
query) and builds the instance the way the ORM does: its converters, then `Model.from_db`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import connections, router
from django.db.models import Model

ModelT = TypeVar("ModelT", bound=Model)


@dataclass(frozen=True)
class _Statement:
    sql: str
    attnames: tuple[str, ...]
    # (column position, converter functions, column expression), as SQLCompiler.get_converters gives them.
    converters: tuple[tuple[int, list[Any], Any], ...]


class PkLookup(Generic[ModelT]):
    """`model._default_manager.filter(pk=pk).only(*fields).first()`, without compiling it each time.

    `fields` are model field names (default: every field); the others are deferred, so touching
    one costs a query: read only what was asked for.
    """

    def __init__(self, model: type[ModelT], fields: Sequence[str] | None = None) -> None:
        self.model = model
        self.fields = tuple(fields or ())
        self._statements: dict[str, _Statement] = {}

    def get(self, pk: Any) -> ModelT | None:
        alias = router.db_for_read(self.model)
        connection = connections[alias]
        statement = self._statements.get(alias) or self._compile(alias, pk)
        with connection.cursor() as cursor:
            cursor.execute(statement.sql, [self.model._meta.pk.get_db_prep_value(pk, connection)])
            row = cursor.fetchone()
        if row is None:
            return None
        if statement.converters:
            row = list(row)
            for position, converters, column in statement.converters:
                for convert in converters:
                    row[position] = convert(row[position], column, connection)
        return self.model.from_db(alias, statement.attnames, row)

    def _compile(self, alias: str, pk: Any) -> _Statement:
        queryset = self.model._default_manager.using(alias).filter(pk=pk).order_by()
        if self.fields:
            queryset = queryset.only(*self.fields)
        compiler = queryset.query.get_compiler(alias)
        sql, params = compiler.as_sql()
        # The statement is reused with other keys: it must take the key as its only parameter.
        if len(params) != 1:
            raise ValueError(f"{self.model.__name__}: expected one parameter, the primary key; got {params!r}")
        columns = [column for column, _, _ in compiler.select]
        statement = _Statement(
            sql=sql,
            attnames=tuple(column.target.attname for column in columns),
            converters=tuple(
                (position, converters, column)
                for position, (converters, column) in compiler.get_converters(columns).items()
            ),
        )
        self._statements[alias] = statement
        return statement
