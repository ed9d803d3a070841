"""The contents query language (api-contract §2.3): parse it, run it on stored tables and JSON documents."""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import mmap
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from mev.resource_types.table_cache import CACHE, identify
from mev.resource_types.table_store import (
    ROWNAME_COLUMN,
    RowFileInfo,
    StoredTableInfo,
    TableStoreError,
    null_missing_text,
    read_info,
    read_rows_info,
    rows_path_for,
)
from mev.resource_types.table_store import row_means as _matrix_row_means

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_CELLS",
    "MAX_PAGE_SIZE",
    "MAX_UNPAGED_CELLS",
    "PageNotFound",
    "QueryError",
    "QueryPlan",
    "StoredTable",
    "parse_query",
    "preview_table",
    "query_json",
    "query_table",
    "render_value",
    "select_rows",
]

DEFAULT_PAGE_SIZE = 50
# The PCA, UMAP and doublet viewers fetch 10,000 rows in one page, so the cap cannot be lower.
# Larger requests are clamped to it rather than rejected: the client never sends more.
MAX_PAGE_SIZE = 10_000
# Cells (rows x value columns) one response may carry: a wide table's page_size is lowered to fit
# (10,000 rows of up to 50 columns, which covers the viewers that ask for 10,000 rows: PCA/UMAP
# outputs; 1,000 rows of a 500-sample matrix, ~27 ms, where 2,000 took ~53 ms), and a request
# without `page` that would return more than MAX_UNPAGED_CELLS is refused. Each cell costs ~100
# bytes of Python objects and JSON, so this bounds a request's memory whatever the table (a whole
# 60,000 x 500 matrix would be ~3 GB); the viewers that read unpaged lists ask for <= 500 rows.
MAX_PAGE_CELLS = 500_000
MAX_UNPAGED_CELLS = 2_000_000

PAGE = "page"
PAGE_SIZE = "page_size"
SORT = "sort_vals"
INCLUDE_ROWMEANS = "__incl_rowmeans__"
ROWMEAN = "__rowmean__"
COLNAME = "__colname__"
RESERVED_KEYS = frozenset({PAGE, PAGE_SIZE, SORT, INCLUDE_ROWMEANS, ROWMEAN, COLNAME, ROWNAME_COLUMN})

PARSE_ERROR_PREFIX = "There was a problem when parsing the request: "

# Spelling in the query string -> canonical operator.
OPERATORS = {
    "[lt]": "lt",
    "[lte]": "lte",
    "[gt]": "gt",
    "[gte]": "gte",
    "[absgt]": "absgt",
    "[abslt]": "abslt",
    "[eq]": "eq",
    "=": "eq",
    "==": "eq",
    "[case-ins-eq]": "case-ins-eq",
    "[startswith]": "startswith",
    "[in]": "in",
}
NUMERIC_OPERATORS = frozenset({"lt", "lte", "gt", "gte", "absgt", "abslt"})
# Sort keys are split only at commas that start a new key, so column names may contain commas.
_SORT_KEY_SEPARATOR = re.compile(r",(?=\s*\[[^\]]*\]:)")
_BRACKETED_OPERATOR = re.compile(r"^(\[[^\]]*\])(.*)$", re.DOTALL)

MATRIX_KIND = "matrix"
POSITIVE_INF = "++inf++"
NEGATIVE_INF = "--inf--"


class QueryError(ValueError):
    """The query string cannot be understood; the view answers 400 ``{"error": message}``."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        self.message = PARSE_ERROR_PREFIX + detail
        super().__init__(self.message)


class PageNotFound(LookupError):
    """The requested page does not exist; the view answers 404 ``{"detail": "Invalid page."}``."""

    default_detail = "Invalid page."

    def __init__(self, detail: str = default_detail) -> None:
        self.detail = detail
        super().__init__(detail)


@dataclass(frozen=True)
class Filter:
    target: str
    operator: str  # canonical name, see OPERATORS
    value: str


@dataclass(frozen=True)
class SortKey:
    column: str
    descending: bool


@dataclass
class QueryPlan:
    """What a contents request asks for, independent of where the rows live."""

    filters: list[Filter] = field(default_factory=list)
    sort_keys: list[SortKey] = field(default_factory=list)
    page: str | None = None  # raw value: a positive integer, "last", or garbage (-> PageNotFound)
    page_size: int = DEFAULT_PAGE_SIZE
    columns: list[str] | None = None  # projection from __colname__=[in]:...; None keeps all
    include_rowmeans: bool = False

    @property
    def uses_rowmeans(self) -> bool:
        return self.include_rowmeans or any(f.target == ROWMEAN for f in self.filters)


# --------------------------------------------------------------------------- parsing


def _valid_operators_text() -> str:
    return ", ".join(OPERATORS)


def _split_expression(target: str, expression: str) -> tuple[str, str, bool]:
    """Return (operator, value, explicit) for the right-hand side of ``target=expression``."""
    bracketed = _BRACKETED_OPERATOR.match(expression)
    if bracketed:
        spelling, rest = bracketed.groups()
        if spelling not in OPERATORS:
            raise QueryError(
                f'Unknown operator "{spelling}" in the filter on "{target}". '
                f"The valid operators are: {_valid_operators_text()}."
            )
        if not rest.startswith(":"):
            raise QueryError(
                f'The filter on "{target}" is malformed: write it as {target}={spelling}:<value>.'
            )
        return OPERATORS[spelling], rest[1:], True
    # "=" and "==" arrive after the first "=" of the pair, e.g. "col==:5" or "col===:5".
    for spelling in ("==", "="):
        if expression.startswith(spelling + ":"):
            return OPERATORS[spelling], expression[len(spelling) + 1 :], True
    return "eq", expression, False


def _parse_sort(raw: str, sortable: Callable[[str], bool], rowmeans_available: bool) -> list[SortKey]:
    keys: list[SortKey] = []
    for item in _SORT_KEY_SEPARATOR.split(raw):
        item = item.strip()
        if not item:
            continue
        order, sep, column = item.partition(":")
        if not sep:
            raise QueryError(
                f'The sort key "{item}" is malformed: write it as [asc]:<column> or [desc]:<column>.'
            )
        if order not in ("[asc]", "[desc]"):
            raise QueryError(f'The sort order "{order}" in "{item}" must be [asc] or [desc].')
        if column == ROWMEAN:
            if not rowmeans_available:
                raise QueryError(f"Sorting by {ROWMEAN} requires {INCLUDE_ROWMEANS} or a {ROWMEAN} filter.")
        elif not sortable(column):
            raise QueryError(f'Cannot sort on "{column}": there is no such column.')
        keys.append(SortKey(column=column, descending=order == "[desc]"))
    return keys


def parse_query(
    params: Iterable[tuple[str, str]],
    *,
    is_column: Callable[[str], bool],
    rowmeans_allowed: bool,
) -> QueryPlan:
    """Turn URL-decoded query parameters into a :class:`QueryPlan`.

    ``is_column`` says whether a key names a column; keys that are neither columns nor reserved
    (cache busters such as ``_=1711111111``, transform parameters) are ignored.
    """
    plan = QueryPlan()
    sort_values: list[str] = []
    for key, value in params:
        if key == PAGE:
            plan.page = value
        elif key == PAGE_SIZE:
            plan.page_size = _parse_page_size(value)
        elif key == SORT:
            sort_values.append(value)
        elif key == INCLUDE_ROWMEANS:
            if not rowmeans_allowed:
                raise QueryError(_rowmean_kind_detail())
            plan.include_rowmeans = True
        elif key == COLNAME:
            operator, items, explicit = _split_expression(key, value)
            if operator != "in" or not explicit:
                raise QueryError(f"{COLNAME} only supports the [in] operator, e.g. {COLNAME}=[in]:a,b.")
            plan.columns = [c.strip() for c in items.split(",") if c.strip()]
        elif key == ROWMEAN:
            if not rowmeans_allowed:
                raise QueryError(_rowmean_kind_detail())
            operator, operand, _ = _split_expression(key, value)
            if operator in NUMERIC_OPERATORS or operator == "eq":
                parse_number(operand)
            plan.filters.append(Filter(ROWMEAN, operator, operand))
        elif key == ROWNAME_COLUMN:
            operator, operand, explicit = _split_expression(key, value)
            if not explicit:
                raise QueryError(
                    f"A filter on {ROWNAME_COLUMN} needs an operator, e.g. {ROWNAME_COLUMN}=[in]:GENE1,GENE2."
                )
            plan.filters.append(Filter(ROWNAME_COLUMN, operator, operand))
        elif is_column(key):
            operator, operand, _ = _split_expression(key, value)
            if operator in NUMERIC_OPERATORS:
                parse_number(operand)
            plan.filters.append(Filter(key, operator, operand))
        # anything else is ignored on purpose (api-contract §7.2 item 8)
    rowmeans_available = plan.uses_rowmeans
    for raw in sort_values:
        plan.sort_keys.extend(
            _parse_sort(raw, lambda c: c == ROWNAME_COLUMN or is_column(c), rowmeans_available)
        )
    return plan


def _rowmean_kind_detail() -> str:
    return f"{ROWMEAN} and {INCLUDE_ROWMEANS} are only available for numeric matrices."


def _parse_page_size(raw: str) -> int:
    # Like DRF: a page_size that is not a positive integer falls back to the default.
    try:
        size = int(raw)
    except ValueError:
        return DEFAULT_PAGE_SIZE
    if size < 1:
        return DEFAULT_PAGE_SIZE
    return min(size, MAX_PAGE_SIZE)


def parse_number(raw: str) -> float:
    try:
        return float(raw.strip())
    except ValueError:
        raise QueryError(f'Could not parse "{raw}" as a number.') from None


# --------------------------------------------------------------------------- cell matching


class _Column:
    """One column seen both as numbers (NaN where not a number) and as text (null where missing)."""

    def __init__(self, data: pa.Array | pa.ChunkedArray, *, numeric: bool | None = None) -> None:
        if isinstance(data, pa.ChunkedArray):
            data = data.combine_chunks()
        self.data = data
        self.is_numeric = _is_numeric_type(data.type) if numeric is None else numeric
        self._numbers: np.ndarray | None = None
        self._text: pa.Array | None = None

    @classmethod
    def from_python(cls, values: Sequence[Any]) -> _Column:
        """Build from JSON values (mixed types, ``_MISSING`` for absent keys)."""
        present = [v for v in values if v is not _MISSING and v is not None]
        numeric = bool(present) and all(_is_json_number(v) for v in present)
        if numeric:
            numbers = np.array([float(v) if _is_json_number(v) else np.nan for v in values], dtype=np.float64)
            column = cls(pa.array(numbers, from_pandas=True), numeric=True)
            column._numbers = numbers
            return column
        text = pa.array([_json_text(v) for v in values], type=pa.string())
        return cls(text, numeric=False)

    @property
    def numbers(self) -> np.ndarray:
        if self._numbers is None:
            if self.is_numeric:
                self._numbers = _to_float(self.data)
            else:
                text = self.text.to_numpy(zero_copy_only=False)
                self._numbers = pd.to_numeric(pd.Series(text, dtype=object), errors="coerce").to_numpy(
                    dtype=np.float64, na_value=np.nan
                )
        return self._numbers

    def prepared(self) -> _Column:
        """Decode the numbers of a numeric column now, before the column is shared through the cache."""
        if self.is_numeric:
            self.numbers  # noqa: B018
        return self

    def values_at(self, rows: np.ndarray) -> list[Any]:
        """The rendered cells of ``rows`` (JSON-safe: NaN -> None, infinities as markers)."""
        data_type = self.data.type
        if pa.types.is_floating(data_type):
            numbers = self.numbers[rows]
            values = numbers.tolist()
            if not np.isfinite(numbers).all():
                values = [render_value(v) for v in values]
            return values
        if pa.types.is_integer(data_type) and self.data.null_count == 0:
            return self.data.to_numpy()[rows].tolist()  # type: ignore[no-any-return]
        return _column_values(self.data.take(pa.array(rows)))

    @property
    def nbytes(self) -> int:
        """Memory held: the data, its numbers once decoded, and room for a text copy if not text."""
        size = self.data.nbytes + (self._numbers.nbytes if self._numbers is not None else 0)
        if self.is_numeric:
            return size
        return size + len(self.data) * 8  # numbers of a text column, if a numeric filter asks

    @property
    def text(self) -> pa.Array:
        if self._text is None:
            if pa.types.is_string(self.data.type) or pa.types.is_large_string(self.data.type):
                self._text = self.data
            else:
                self._text = pc.cast(self.data, pa.string())
        return self._text

    def match(self, operator: str, value: str) -> np.ndarray:
        if operator in NUMERIC_OPERATORS:
            target = parse_number(value)
            numbers = self.numbers
            with np.errstate(invalid="ignore"):
                if operator == "lt":
                    return numbers < target
                if operator == "lte":
                    return numbers <= target
                if operator == "gt":
                    return numbers > target
                if operator == "gte":
                    return numbers >= target
                if operator == "absgt":
                    return np.abs(numbers) > target
                return np.abs(numbers) < target
        if operator == "eq":
            if self.is_numeric:
                return self.numbers == parse_number(value)
            return _mask(pc.equal(self.text, value))
        if operator == "case-ins-eq":
            return _mask(pc.equal(pc.utf8_lower(self.text), value.lower()))
        if operator == "startswith":
            return _mask(pc.starts_with(self.text, pattern=value, ignore_case=True))
        if operator == "in":
            items = [item.strip() for item in value.split(",")]
            if self.is_numeric:
                wanted = np.array([parse_number(item) for item in items], dtype=np.float64)
                return np.isin(self.numbers, wanted)
            return _mask(pc.is_in(self.text, value_set=pa.array(items, type=pa.string())))
        raise QueryError(
            f'Unknown operator "{operator}". The valid operators are: {_valid_operators_text()}.'
        )

    def sort_keys(self, descending: bool) -> tuple[np.ndarray, np.ndarray]:
        """(missing flag, value) arrays for ``np.lexsort``; missing rows go last in both orders."""
        if self.is_numeric:
            values = self.numbers
            missing = np.isnan(values)
            keyed = np.where(missing, 0.0, values)
        else:
            text = self.text
            missing = _mask(pc.is_null(text))
            keyed = pc.rank(text, sort_keys="ascending", tiebreaker="dense").to_numpy().astype(np.float64)
        return missing, (-keyed if descending else keyed)


_MISSING = object()


def _is_json_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_text(value: Any) -> str | None:
    if value is _MISSING or value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _is_numeric_type(data_type: pa.DataType) -> bool:
    return pa.types.is_integer(data_type) or pa.types.is_floating(data_type) or pa.types.is_decimal(data_type)


def _to_float(data: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if isinstance(data, pa.ChunkedArray):
        data = data.combine_chunks()
    if not pa.types.is_floating(data.type):
        # Unsafe: integers beyond 2**53 become the nearest float instead of failing the request.
        data = pc.cast(data, pa.float64(), safe=False)
    return np.asarray(data.to_numpy(zero_copy_only=False), dtype=np.float64)


def _mask(result: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(result.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _order(
    candidates: np.ndarray, keys: list[tuple[np.ndarray, np.ndarray]], *, head: int | None = None
) -> np.ndarray:
    """Stable multi-key ordering of ``candidates``; ``keys`` are aligned with ``candidates``.

    With ``head``, only the first ``head`` positions of the result are guaranteed to be in order
    (the rest are all there, in no particular order): enough to cut a page out of it.
    """
    if not keys:
        return candidates
    if len(keys) == 1:
        # One key (what the client sends). NaN sorts after every number, +inf included, so
        # missing rows go last in a plain stable argsort.
        missing, values = keys[0]
        keyed = np.where(missing, np.nan, values)
        if head is not None and 0 < head < len(keyed) // 8:
            return candidates[_head_first(keyed, head)]
        return candidates[np.argsort(keyed, kind="stable")]
    lex: list[np.ndarray] = []
    for missing, values in reversed(keys):  # np.lexsort treats its last key as the primary one
        lex.extend([values, missing])
    return candidates[np.lexsort(lex)]


def _head_first(keyed: np.ndarray, head: int) -> np.ndarray:
    """A permutation whose first ``head`` entries are those of a stable argsort of ``keyed``."""
    threshold = np.partition(keyed, head - 1)[head - 1]
    if np.isnan(threshold):  # the page reaches the missing rows: nothing to save
        return np.argsort(keyed, kind="stable")
    # Everything up to and including the threshold, ties too, in index order, then sorted stably.
    chosen = np.nonzero(keyed <= threshold)[0]
    chosen = chosen[np.argsort(keyed[chosen], kind="stable")]
    rest = np.ones(len(keyed), dtype=bool)
    rest[chosen] = False
    return np.concatenate([chosen, np.nonzero(rest)[0]])


# --------------------------------------------------------------------------- rendering


def render_value(value: Any) -> Any:
    """JSON-safe cell: NaN -> None, +inf -> "++inf++", -inf -> "--inf--"."""
    if isinstance(value, float) and not math.isfinite(value):
        if math.isnan(value):
            return None
        return POSITIVE_INF if value > 0 else NEGATIVE_INF
    return value


def _column_values(data: pa.Array | pa.ChunkedArray) -> list[Any]:
    if isinstance(data, pa.ChunkedArray):
        data = data.combine_chunks()
    data_type = data.type
    if pa.types.is_floating(data_type):
        numbers = data.to_numpy(zero_copy_only=False)
        values = numbers.tolist()
        if not np.isfinite(numbers).all():
            values = [render_value(v) for v in values]
        return values
    if pa.types.is_temporal(data_type):
        return pc.cast(data, pa.string()).to_pylist()
    if pa.types.is_decimal(data_type):
        return [render_value(float(v)) if v is not None else None for v in data.to_pylist()]
    return data.to_pylist()


def _records(
    rownames: list[str],
    table: pa.Table,
    value_columns: Sequence[str],
    rowmeans: np.ndarray | None,
) -> list[dict[str, Any]]:
    columns = [_column_values(table.column(name)) for name in value_columns]
    names = list(value_columns)
    if columns:
        rows: Iterable[tuple[Any, ...]] = zip(*columns, strict=True)
    else:
        rows = ((),) * len(rownames)
    records = [
        {"rowname": rowname, "values": dict(zip(names, row, strict=True))}
        for rowname, row in zip(rownames, rows, strict=True)
    ]
    if rowmeans is not None:
        for record, mean in zip(records, rowmeans.tolist(), strict=True):
            record[ROWMEAN] = render_value(mean)
    return records


def _row_means(table: pa.Table, data_columns: Sequence[str]) -> np.ndarray:
    """Mean of each row over every numeric data column, skipping missing cells."""
    numeric = [name for name in data_columns if _is_numeric_type(table.schema.field(name).type)]
    if not numeric:
        return np.full(table.num_rows, np.nan)
    stacked = np.empty((table.num_rows, len(numeric)), dtype=np.float64)
    for j, name in enumerate(numeric):
        stacked[:, j] = table.column(name).to_numpy()  # integers convert on assignment, nulls as NaN
    return _matrix_row_means(stacked)


# --------------------------------------------------------------------------- paging


@dataclass(frozen=True)
class _Page:
    number: int
    start: int
    stop: int
    has_next: bool


def _select_page(raw_page: str, count: int, page_size: int) -> _Page:
    last = max(1, math.ceil(count / page_size))
    if raw_page.strip() == "last":
        number = last
    else:
        try:
            number = int(raw_page)
        except ValueError:
            raise PageNotFound() from None
    if number < 1 or number > last:
        raise PageNotFound()
    start = (number - 1) * page_size
    return _Page(number=number, start=start, stop=min(start + page_size, count), has_next=number < last)


def _page_end(plan: QueryPlan) -> Callable[[int], int] | None:
    """How many leading rows the requested page needs in order, given the number of rows."""
    if plan.page is None:
        return None
    raw_page, page_size = plan.page, plan.page_size

    def end(count: int) -> int:
        try:
            return _select_page(raw_page, count, page_size).stop
        except PageNotFound:
            return 0  # raised again, with the same answer, when the page is cut

    return end


def _page_url(base_url: str, params: Sequence[tuple[str, str]], number: int) -> str:
    scheme, netloc, path, _query, _fragment = urlsplit(base_url)
    replaced = False
    pairs: list[tuple[str, str]] = []
    for key, value in params:
        if key == PAGE:
            if replaced:
                continue
            pairs.append((PAGE, str(number)))
            replaced = True
        else:
            pairs.append((key, value))
    if not replaced:
        pairs.append((PAGE, str(number)))
    return urlunsplit((scheme, netloc, path, urlencode(pairs), ""))


def _paginated(
    plan: QueryPlan,
    count: int,
    params: Sequence[tuple[str, str]],
    base_url: str,
    fetch: Callable[[int, int], list[Any]],
) -> dict[str, Any]:
    page = _select_page(plan.page if plan.page is not None else "1", count, plan.page_size)
    return {
        "count": count,
        "next": _page_url(base_url, params, page.number + 1) if page.has_next else None,
        "previous": _page_url(base_url, params, page.number - 1) if page.number > 1 else None,
        "results": fetch(page.start, page.stop),
    }


# --------------------------------------------------------------------------- tables

# A table that decodes to at most this many bytes has all its columns kept in the cache (a
# 60,000 x 6 DGE table is ~4 MB): its pages, filters and sorts never touch the file again.
WHOLE_TABLE_BYTES = 16 * 1024 * 1024
# A parsed Parquet footer takes ~15x its serialized size in memory (measured: the 1.8 MB footer
# of a 60,000 x 500 matrix in 1,000-row groups is 27 MB once parsed).
_FOOTER_MEMORY_FACTOR = 16
# Below this many cells, the row groups a page touches are read in one call (narrow tables);
# above it, one group at a time so memory stays bounded by one group (wide matrices).
_SINGLE_READ_CELLS = 2_000_000
_LEGACY_TEXT_KINDS = frozenset({"matrix", "annotation", "feature"})

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Layout:
    """What the footer of a stored table says, parsed once per file and kept in the cache."""

    footer: pq.FileMetaData
    info: StoredTableInfo
    schema: pa.Schema
    offsets: np.ndarray  # first row of each row group, then the row count
    column_set: frozenset[str]
    column_index: dict[str, int]  # position among the data columns
    integer_columns: np.ndarray  # bool per data column
    decoded_bytes: int  # estimate of the whole table in memory


def _read_layout(path: Path) -> tuple[_Layout, int]:
    footer = pq.read_metadata(path)
    info = read_info(footer)
    schema = footer.schema.to_arrow_schema()
    sizes = [footer.row_group(i).num_rows for i in range(footer.num_row_groups)]
    offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)
    layout = _Layout(
        footer=footer,
        info=info,
        schema=schema,
        offsets=offsets,
        column_set=frozenset(info.columns),
        column_index={name: j for j, name in enumerate(info.columns)},
        integer_columns=np.array([pa.types.is_integer(schema.field(name).type) for name in info.columns], dtype=bool),
        decoded_bytes=_decoded_bytes(footer, schema),
    )
    return layout, footer.serialized_size * _FOOTER_MEMORY_FACTOR + 200 * len(info.columns) + offsets.nbytes


def _decoded_bytes(footer: pq.FileMetaData, schema: pa.Schema) -> int:
    """About how much memory the whole table takes decoded (text: its uncompressed pages plus offsets)."""
    n_rows, n_columns = footer.num_rows, len(schema)
    if n_rows * n_columns * 4 > WHOLE_TABLE_BYTES:
        return n_rows * n_columns * 4  # clearly too big; no need to walk a wide footer
    total = 0
    for j, column_field in enumerate(schema):
        try:
            total += n_rows * max(column_field.type.bit_width, 8) // 8 + n_rows // 8
        except ValueError:  # not fixed-width: text (its pages are plain or dictionary-encoded)
            pages = sum(footer.row_group(i).column(j).total_uncompressed_size for i in range(footer.num_row_groups))
            total += pages + 8 * n_rows
    return total


@dataclass(frozen=True)
class _RowLayout:
    """Where each record batch of a row file keeps its buffers (file offsets), found once per file."""

    info: RowFileInfo
    row_bytes: int
    labels_offsets_at: np.ndarray  # int32 offsets of the labels
    labels_data_at: np.ndarray
    means_at: np.ndarray
    values_at: np.ndarray


def _read_row_layout(path: Path) -> tuple[_RowLayout, int]:
    """Walk the batches through a memory map, touching only their metadata, to find the buffers."""
    with open(path, "rb") as handle:
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        info, positions = _walk_row_batches(mapped)
    finally:
        with contextlib.suppress(BufferError):  # still referenced by a traceback: closed when collected
            mapped.close()
    layout = _RowLayout(
        info=info,
        row_bytes=info.n_columns * info.value_type.bit_width // 8,
        labels_offsets_at=positions[:, 0],
        labels_data_at=positions[:, 1],
        means_at=positions[:, 2],
        values_at=positions[:, 3],
    )
    return layout, positions.nbytes + 1024


def _walk_row_batches(mapped: mmap.mmap) -> tuple[RowFileInfo, np.ndarray]:
    whole = pa.py_buffer(mapped)
    reader = ipc.open_file(pa.BufferReader(whole))
    info = read_rows_info(reader)
    positions = np.zeros((reader.num_record_batches, 4), dtype=np.int64)
    for i in range(reader.num_record_batches):
        batch = reader.get_batch(i)
        labels, means, values = batch.column(0), batch.column(1), batch.column(2).flatten()
        if labels.offset or means.offset or values.offset or labels.null_count or values.null_count:
            raise TableStoreError("Unexpected layout of a row file batch.")
        buffers = (labels.buffers()[1], labels.buffers()[2], means.buffers()[1], values.buffers()[1])
        positions[i] = [buffer.address - whole.address if buffer is not None else 0 for buffer in buffers]
    return info, positions


class _RowFile:
    """The row file of a numeric matrix (see table_store), read a few rows at a time.

    Rows are read with ``pread`` at offsets found once per file (kept in the cache): a page of
    scattered rows costs a few system calls and only its own bytes. A memory map would be as fast
    but maps whole folios around every touched row (~0.75 MB each on this kernel), which shows up
    as tens of MB of resident memory per request.
    """

    def __init__(self, path: Path, info: StoredTableInfo) -> None:
        identity = identify(path)
        self.layout: _RowLayout = CACHE.get_or_make(identity, "row layout", lambda: _read_row_layout(path))
        found = self.layout.info
        if (found.id, found.n_rows, found.n_columns) != (info.rows_file_id, info.n_rows, len(info.columns)):
            raise TableStoreError(f"{path} is not the row file of this table.")
        self.dtype = np.dtype(found.value_type.to_pandas_dtype())
        self.is_integer = self.dtype.kind in "iu"
        self.fd = os.open(path, os.O_RDONLY)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _runs(self, rows: np.ndarray) -> Iterator[tuple[int, int, int, int]]:
        """``(start, stop, batch, first local row)``: runs of consecutive rows within one batch."""
        batch_rows = self.layout.info.batch_rows
        batches = rows // batch_rows
        breaks = np.flatnonzero((np.diff(rows) != 1) | (np.diff(batches) != 0)) + 1
        starts = np.concatenate([[0], breaks]).tolist()
        stops = [*starts[1:], len(rows)]
        for start, stop in zip(starts, stops, strict=True):
            batch = int(batches[start])
            yield start, stop, batch, int(rows[start]) - batch * batch_rows

    def _read(self, size: int, offset: int) -> bytes:
        data = os.pread(self.fd, size, offset)
        if len(data) != size:
            raise TableStoreError("The row file is shorter than its layout says.")
        return data

    def fetch(self, rows: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Labels and values of ``rows`` (in that order); values as stored (narrow ints or float64)."""
        layout, n_columns = self.layout, self.layout.info.n_columns
        values = np.empty((len(rows), n_columns), dtype=self.dtype)
        labels: list[str] = []
        if not len(rows):
            return labels, values
        for start, stop, batch, local in self._runs(rows):
            count = stop - start
            raw = self._read(count * layout.row_bytes, int(layout.values_at[batch]) + local * layout.row_bytes)
            values[start:stop] = np.frombuffer(raw, dtype=self.dtype).reshape(count, n_columns)
            offsets = np.frombuffer(
                self._read(4 * (count + 1), int(layout.labels_offsets_at[batch]) + 4 * local), dtype=np.int32
            ).tolist()
            text = self._read(offsets[-1] - offsets[0], int(layout.labels_data_at[batch]) + offsets[0])
            base = offsets[0]
            labels.extend(text[a - base : b - base].decode() for a, b in itertools.pairwise(offsets))
        return labels, values

    def means(self, rows: np.ndarray) -> np.ndarray:
        """The precomputed means of ``rows``."""
        out = np.empty(len(rows), dtype=np.float64)
        if len(rows):
            for start, stop, batch, local in self._runs(rows):
                raw = self._read(8 * (stop - start), int(self.layout.means_at[batch]) + 8 * local)
                out[start:stop] = np.frombuffer(raw, dtype=np.float64)
        return out

    def row_means(self) -> np.ndarray:
        """The precomputed mean of every row."""
        return self.means(np.arange(self.layout.info.n_rows, dtype=np.int64))


class StoredTable:
    """Reads from the stored copies only what a request needs; what repeats is kept in the cache.

    ``path`` is the Parquet copy. ``rows_path`` is its row file (numeric matrices written by the
    current table_store); by default the one table_store left next to ``path``, if any.

    Where a page's cells come from:
    - narrow tables (decoded size up to WHOLE_TABLE_BYTES), with the cache on: every column is
      decoded once and kept, and pages are cut from the kept columns;
    - numeric matrices with a row file: its rows, a few system calls per page;
    - otherwise (the cache off, tables stored before row files existed): the Parquet row groups
      the page's rows live in.
    """

    def __init__(self, path: Path, *, rows_path: Path | None = None) -> None:
        self.path = Path(path)
        self.identity = identify(self.path)
        self.layout: _Layout = CACHE.get_or_make(self.identity, "layout", lambda: _read_layout(self.path))
        self.info = self.layout.info
        self.columns = list(self.info.columns)
        self.offsets = self.layout.offsets
        self._rows_path = rows_path
        self._file: pq.ParquetFile | None = None
        self._row_file: _RowFile | None | bool = None  # False: looked, there is none
        self._columns: dict[str, _Column] = {}
        self._narrow = (
            self.layout.decoded_bytes <= WHOLE_TABLE_BYTES
            and CACHE.enabled
            and CACHE.get(self.identity, "not narrow") is None
        )
        # Format 1 kept missing text cells as text ("NA", ""); they are read as nulls.
        self._legacy_text = self.info.format_version < 2 and self.info.kind in _LEGACY_TEXT_KINDS

    def __enter__(self) -> StoredTable:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if isinstance(self._row_file, _RowFile):
            self._row_file.close()
            self._row_file = False

    @property
    def file(self) -> pq.ParquetFile:
        """The Parquet copy, opened on first use (a page served from the cache never opens it)."""
        if self._file is None:
            # pre_buffer coalesces reads for remote storage; on a local file it only adds latency.
            self._file = pq.ParquetFile(self.path, memory_map=True, metadata=self.layout.footer, pre_buffer=False)
        return self._file

    def is_column(self, name: str) -> bool:
        return name in self.layout.column_set

    # ------------------------------------------------------------------ whole columns

    def _normalized(self, table: pa.Table) -> pa.Table:
        return null_missing_text(table) if self._legacy_text else table

    def column(self, name: str) -> _Column:
        """One whole column (``__rowname__`` included), as numbers and as text; kept in the cache."""
        column = self._columns.get(name)
        if column is not None:
            return column
        column = CACHE.get(self.identity, ("column", name))
        if column is None:
            if self._narrow:
                self._load_all_columns()
                return self._columns[name]
            data = self._normalized(self.file.read(columns=[name], use_threads=False)).column(0)
            column = _Column(data).prepared()
            CACHE.put(self.identity, ("column", name), column, column.nbytes)
        self._columns[name] = column
        return column

    def _load_all_columns(self) -> None:
        """A narrow table: every column in one read (not memory-mapped, since it is kept)."""
        with pq.ParquetFile(self.path, metadata=self.layout.footer) as plain:
            table = self._normalized(plain.read(use_threads=False))
        columns = {name: _Column(table.column(name)).prepared() for name in table.column_names}
        self._columns.update(columns)
        if sum(column.nbytes for column in columns.values()) > 2 * WHOLE_TABLE_BYTES:
            # Long repeated text decodes to much more than its pages said: not narrow after all.
            CACHE.put(self.identity, "not narrow", True, 1)
            return
        for name, column in columns.items():
            CACHE.put(self.identity, ("column", name), column, column.nbytes)

    def sort_order(self, name: str, descending: bool) -> np.ndarray | None:
        """Every row in the order of one sort key (stable, missing values last), or None.

        Kept in the cache, so only computed when the cache is on; then a sorted page costs a
        lookup. ``name`` may be ``__rowmean__`` when every row mean is known.
        """
        if not CACHE.enabled:
            return None
        item = ("order", name, descending)
        order = CACHE.get(self.identity, item)
        if order is None:
            if name == ROWMEAN:
                means = self.all_row_means(compute=False)
                if means is None:
                    return None
                missing, values = _Column(pa.array(means), numeric=True).sort_keys(descending)
            else:
                missing, values = self.column(name).sort_keys(descending)
            order = np.argsort(np.where(missing, np.nan, values), kind="stable")
            CACHE.put(self.identity, item, order, order.nbytes)
        return order  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ row means

    def row_file(self) -> _RowFile | None:
        """The row file, if this table has one and it is there; opened on first use."""
        if self._row_file is None:
            self._row_file = False
            if self.info.rows_file_id is not None:
                path = self._rows_path if self._rows_path is not None else rows_path_for(self.path)
                try:
                    self._row_file = _RowFile(Path(path), self.info)
                except FileNotFoundError:
                    if self._rows_path is not None:
                        logger.warning("The row file %s is missing; reading pages from %s", path, self.path)
                except (OSError, pa.ArrowException, TableStoreError, ValueError, KeyError) as error:
                    logger.warning("Ignoring the row file %s of %s: %s", path, self.path, error)
        return self._row_file if isinstance(self._row_file, _RowFile) else None

    def all_row_means(self, *, compute: bool = True) -> np.ndarray | None:
        """The mean of every row, or None if that would mean reading the whole table.

        Row files carry them. For tables without one they are computed from every row group
        when ``compute`` is true and the cache is on, then kept.
        """
        means = CACHE.get(self.identity, "rowmeans")
        if means is not None:
            return means  # type: ignore[no-any-return]
        row_file = self.row_file()
        if row_file is not None:
            means = row_file.row_means()
        elif compute and CACHE.enabled:
            means = self.row_means(np.arange(self.info.n_rows, dtype=np.int64))
        else:
            return None
        return CACHE.put(self.identity, "rowmeans", means, means.nbytes)

    def groups_of(self, rows: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.offsets, rows, side="right") - 1

    def row_means(self, rows: np.ndarray) -> np.ndarray:
        """Row means of ``rows`` (any order), reading one row group at a time."""
        means = np.empty(len(rows), dtype=np.float64)
        groups = self.groups_of(rows)
        for group in np.unique(groups):
            where = np.nonzero(groups == group)[0]
            table = self.file.read_row_group(int(group), columns=self.columns, use_threads=False)
            local = rows[where] - self.offsets[group]
            means[where] = _row_means(table.take(pa.array(local)), self.columns)
        return means

    def float_rows(self, rows: np.ndarray, columns: Sequence[str]) -> tuple[list[str], np.ndarray] | None:
        """Labels of ``rows`` and their ``columns`` as float64 (missing cells NaN), from the row file.

        None when the table has no row file: read its row groups instead. For whoever needs
        scattered rows as numbers (the transforms): a few system calls instead of decoding every
        row group the rows live in at full width.
        """
        row_file = self.row_file()
        if row_file is None:
            return None
        labels, values = row_file.fetch(rows)
        positions = [self.layout.column_index[name] for name in columns]
        return labels, values[:, positions].astype(np.float64)

    # ------------------------------------------------------------------ records

    def records(
        self,
        rows: np.ndarray,
        value_columns: Sequence[str],
        *,
        rowmeans: np.ndarray | None,
        compute_rowmeans: bool,
    ) -> list[dict[str, Any]]:
        """Records for ``rows`` in the given order, reading only what they need."""
        if self._narrow:
            return self._records_from_columns(rows, value_columns, rowmeans, compute_rowmeans)
        row_file = self.row_file()
        if row_file is not None:
            if rowmeans is None and compute_rowmeans:
                rowmeans = row_file.means(rows)
            return self._records_from_rows(row_file, rows, value_columns, rowmeans)
        return self._records_from_groups(rows, value_columns, rowmeans=rowmeans, compute_rowmeans=compute_rowmeans)

    def _records_from_columns(
        self, rows: np.ndarray, value_columns: Sequence[str], rowmeans: np.ndarray | None, compute_rowmeans: bool
    ) -> list[dict[str, Any]]:
        if rowmeans is None and compute_rowmeans:
            numeric = [self.column(name) for name in self.columns]
            numeric = [column for column in numeric if column.is_numeric]
            if numeric:
                rowmeans = _matrix_row_means(np.stack([column.numbers[rows] for column in numeric], axis=1))
            else:
                rowmeans = np.full(len(rows), np.nan)
        columns = [self.column(name).values_at(rows) for name in value_columns]
        return _assemble(self.column(ROWNAME_COLUMN).values_at(rows), list(value_columns), columns, rowmeans)

    def _records_from_rows(
        self, row_file: _RowFile, rows: np.ndarray, value_columns: Sequence[str], rowmeans: np.ndarray | None
    ) -> list[dict[str, Any]]:
        labels, values = row_file.fetch(rows)
        names = list(value_columns)
        if names != self.columns:
            positions = [self.layout.column_index[name] for name in names]
            values = values[:, positions]
            integer = self.layout.integer_columns[positions]
        else:
            integer = self.layout.integer_columns
        if row_file.is_integer or not integer.any():
            cells = _python_cells(values)
            if not row_file.is_integer:
                finite = np.isfinite(values).all(axis=1)
                if not finite.all():
                    for i in np.nonzero(~finite)[0].tolist():
                        cells[i] = [render_value(v) for v in cells[i]]
            records = [
                {"rowname": label, "values": dict(zip(names, row, strict=True))}
                for label, row in zip(labels, cells, strict=True)
            ]
            return _with_means(records, rowmeans)
        # Float storage with integer columns (they had missing cells): those render as integers.
        by_column = []
        for j in range(values.shape[1]):
            column = values[:, j].tolist()
            if integer[j]:
                by_column.append([None if v != v else int(v) for v in column])
            else:
                by_column.append([render_value(v) for v in column])
        return _assemble(labels, names, by_column, rowmeans)

    def _records_from_groups(
        self,
        rows: np.ndarray,
        value_columns: Sequence[str],
        *,
        rowmeans: np.ndarray | None,
        compute_rowmeans: bool,
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any] | None] = [None] * len(rows)
        groups = self.groups_of(rows)
        wanted = [ROWNAME_COLUMN, *(self.columns if compute_rowmeans else value_columns)]
        touched = np.unique(groups)
        sizes = self.offsets[touched + 1] - self.offsets[touched]
        if len(touched) > 1 and int(sizes.sum()) * len(wanted) <= _SINGLE_READ_CELLS:
            # One read; row numbers are re-based onto the concatenation of the touched groups.
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            rebased = starts[np.searchsorted(touched, groups)] + rows - self.offsets[groups]
            batches = [(np.arange(len(rows)), rebased, touched.tolist())]
        else:
            batches = []
            for group in touched:
                where = np.nonzero(groups == group)[0]
                batches.append((where, rows[where] - self.offsets[group], [int(group)]))
        for where, local, read_groups in batches:
            table = self.file.read_row_groups(read_groups, columns=wanted, use_threads=False)
            if len(local) != table.num_rows or not np.array_equal(local, np.arange(table.num_rows)):
                table = table.take(pa.array(local))
            table = self._normalized(table)
            if compute_rowmeans:
                means = _row_means(table, self.columns)
            elif rowmeans is not None:
                means = rowmeans[where]
            else:
                means = None
            rownames = table.column(ROWNAME_COLUMN).to_pylist()
            for position, record in zip(
                where.tolist(), _records(rownames, table, value_columns, means), strict=True
            ):
                out[position] = record
        return out  # type: ignore[return-value]


# Python int objects for every 8- and 16-bit value (~3.5 MB, made on the first large page), shared
# by the cells of large pages: picking them from an object array instead of creating one per cell
# halves the cost of the cells of a 10,000 x 500 page of counts (~200 -> ~100 ms) and cuts them
# from ~180 to ~40 MB. Client pages (50 rows) gain nothing measurable.
_SMALL_INT_OFFSET = 2**15
_small_ints: np.ndarray | None = None


def _python_cells(values: np.ndarray) -> list[list[Any]]:
    """``values.tolist()``; for 8- and 16-bit integers, with shared int objects."""
    global _small_ints
    if values.dtype.kind not in "iu" or values.dtype.itemsize > 2 or values.size < 100_000:
        return values.tolist()  # type: ignore[no-any-return]
    if _small_ints is None:
        _small_ints = np.array(list(range(-_SMALL_INT_OFFSET, 2**16)), dtype=object)
    return _small_ints[values.astype(np.int32) + _SMALL_INT_OFFSET].tolist()  # type: ignore[no-any-return]


def _assemble(
    labels: list[Any], names: list[str], columns: list[list[Any]], rowmeans: np.ndarray | None
) -> list[dict[str, Any]]:
    rows: Iterable[tuple[Any, ...]] = zip(*columns, strict=True) if columns else ((),) * len(labels)
    records = [
        {"rowname": label, "values": dict(zip(names, row, strict=True))}
        for label, row in zip(labels, rows, strict=True)
    ]
    return _with_means(records, rowmeans)


def _with_means(records: list[dict[str, Any]], rowmeans: np.ndarray | None) -> list[dict[str, Any]]:
    if rowmeans is not None:
        for record, mean in zip(records, rowmeans.tolist(), strict=True):
            record[ROWMEAN] = render_value(mean)
    return records


# --------------------------------------------------------------------------- selecting rows


@dataclass
class _Selection:
    """The rows a request matches, in order; ``rows`` may hold only the first of them (a page's worth)."""

    rows: np.ndarray
    count: int
    means: np.ndarray | None = None  # aligned with ``rows``
    all_means: np.ndarray | None = None  # or: every row's mean, by row number

    def page(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        rows = self.rows[start:stop]
        if self.means is not None:
            return rows, self.means[start:stop]
        if self.all_means is not None:
            return rows, self.all_means[rows]
        return rows, None


def _ordered_head(order: np.ndarray | None, keep: np.ndarray, wanted: int) -> np.ndarray:
    """The first ``wanted`` (or more) entries of ``order`` whose row is kept, walking ``order`` in chunks;
    ``order=None`` is row-number order. A first page needs 50 rows, not all 60,000 (``flatnonzero`` of
    the whole mask, or ``order[keep[order]]``)."""
    found: list[np.ndarray] = []
    total, start, chunk = 0, 0, 4096
    size = len(keep) if order is None else len(order)
    while start < size and total < wanted:
        if order is None:
            hits = np.flatnonzero(keep[start : start + chunk]) + start
        else:
            piece = order[start : start + chunk]
            hits = piece[keep[piece]]
        found.append(hits)
        total += len(hits)
        start += chunk
        chunk *= 2  # few matches: look further at each step
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def _select(table: StoredTable, plan: QueryPlan, *, needed: Callable[[int], int] | None) -> _Selection:
    """Evaluation order (api-contract §2.3): column and row-name filters, row mean, sort."""
    n_rows = table.info.n_rows

    # 1. column and row-name filters, on whole columns
    mask: np.ndarray | None = None
    for flt in plan.filters:
        if flt.target == ROWMEAN:
            continue
        matched = table.column(flt.target).match(flt.operator, flt.value)
        mask = matched if mask is None else mask & matched

    # 2. row means, where they decide which rows or which order
    rowmean_filters = [f for f in plan.filters if f.target == ROWMEAN]
    all_means: np.ndarray | None = None
    if rowmean_filters or any(k.column == ROWMEAN for k in plan.sort_keys):
        # Computing every mean of a table without a row file reads all of it: only worth it (once,
        # then cached) when no column filter has already narrowed the rows.
        all_means = table.all_row_means(compute=mask is None)
        if all_means is None:
            return _select_by_candidates(table, plan, mask, needed)
        if rowmean_filters:
            column = _Column(pa.array(all_means), numeric=True)
            for flt in rowmean_filters:
                matched = column.match(flt.operator, flt.value)
                mask = matched if mask is None else mask & matched

    # 3. sort, with the cached order of every row when there is one
    order = None
    if len(plan.sort_keys) == 1:
        order = table.sort_order(plan.sort_keys[0].column, plan.sort_keys[0].descending)
    if order is not None:
        if mask is None:
            return _Selection(order, n_rows, all_means=all_means)
        count = int(np.count_nonzero(mask))
        if needed is not None:
            return _Selection(_ordered_head(order, mask, needed(count)), count, all_means=all_means)
        return _Selection(order[mask[order]], count, all_means=all_means)
    if mask is not None and not plan.sort_keys and needed is not None:
        # Filtered, unsorted, one page: count the matches, but list only the rows up to the page's end.
        count = int(np.count_nonzero(mask))
        return _Selection(_ordered_head(None, mask, needed(count)), count, all_means=all_means)
    candidates = np.arange(n_rows, dtype=np.int64) if mask is None else np.flatnonzero(mask)
    if plan.sort_keys:
        keys = []
        for key in plan.sort_keys:
            if key.column == ROWMEAN and all_means is not None:
                values = all_means[candidates]
                keys.append(_Column(pa.array(values), numeric=True).sort_keys(key.descending))
            else:
                missing, keyed = table.column(key.column).sort_keys(key.descending)
                keys.append((missing[candidates], keyed[candidates]))
        head = needed(len(candidates)) if needed is not None else None
        candidates = candidates[_order(np.arange(len(candidates)), keys, head=head)]
    return _Selection(candidates, len(candidates), all_means=all_means)


def _select_by_candidates(
    table: StoredTable, plan: QueryPlan, mask: np.ndarray | None, needed: Callable[[int], int] | None
) -> _Selection:
    """Row means of only the rows left by the column filters (tables without a row file)."""
    candidates = np.arange(table.info.n_rows, dtype=np.int64) if mask is None else np.flatnonzero(mask)
    rowmeans = table.row_means(candidates)
    rowmean_filters = [f for f in plan.filters if f.target == ROWMEAN]
    if rowmean_filters:
        column = _Column(pa.array(rowmeans), numeric=True)
        keep = np.ones(len(candidates), dtype=bool)
        for flt in rowmean_filters:
            keep &= column.match(flt.operator, flt.value)
        candidates, rowmeans = candidates[keep], rowmeans[keep]
    if plan.sort_keys:
        keys = []
        for key in plan.sort_keys:
            if key.column == ROWMEAN:
                keys.append(_Column(pa.array(rowmeans), numeric=True).sort_keys(key.descending))
            else:
                missing, values = table.column(key.column).sort_keys(key.descending)
                keys.append((missing[candidates], values[candidates]))
        head = needed(len(candidates)) if needed is not None else None
        positions = _order(np.arange(len(candidates)), keys, head=head)
        candidates, rowmeans = candidates[positions], rowmeans[positions]
    return _Selection(candidates, len(candidates), means=rowmeans)


def select_rows(
    table: StoredTable, plan: QueryPlan, *, needed: Callable[[int], int] | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Row numbers that pass the plan's filters, in the plan's order, with their row means if computed.

    Evaluation order (api-contract §2.3): column and row-name filters, row mean, sort.
    ``needed`` maps the number of matching rows to how many leading rows must be in order (the
    end of the requested page); the rows after that are returned unordered.
    """
    selection = _select(table, plan, needed=None)
    return selection.page(0, selection.count)


def query_table(
    path: Path,
    params: Sequence[tuple[str, str]],
    *,
    kind: str,
    base_url: str,
    rows_path: Path | None = None,
) -> list[dict[str, Any]] | dict[str, Any]:
    """Run a contents request on the Parquet copy at ``path``.

    ``params`` are the URL-decoded query parameters in order; ``kind`` is the stored table's kind
    (``matrix``, ``annotation``, ``feature`` or ``bed``); ``base_url`` is the absolute URL of the
    contents endpoint, used for ``next``/``previous``; ``rows_path`` is the table's row file
    (``Resource.table_rows_file``), by default the one next to ``path``. Returns a bare list of
    records without ``page`` and the paginated object with it.

    Raises :class:`QueryError` (400) and :class:`PageNotFound` (404).
    """
    params = list(params)
    with StoredTable(Path(path), rows_path=rows_path) as table:
        return _query_stored(table, params, kind=kind, base_url=base_url)


def _query_stored(
    table: StoredTable, params: list[tuple[str, str]], *, kind: str, base_url: str
) -> list[dict[str, Any]] | dict[str, Any]:
    plan = parse_query(params, is_column=table.is_column, rowmeans_allowed=kind == MATRIX_KIND)
    value_columns = _projection(plan, table.columns)
    width = max(1, len(value_columns))
    plan.page_size = max(1, min(plan.page_size, MAX_PAGE_CELLS // width))
    selection = _select(table, plan, needed=_page_end(plan))
    if plan.page is None and selection.count * width > MAX_UNPAGED_CELLS:
        raise QueryError(
            f"This request would return {selection.count:,} rows of {width:,} columns, more than the "
            f"{MAX_UNPAGED_CELLS:,} values a request may carry without paging. Add page=1 (and "
            "page_size) to read it page by page, or narrow the rows with a filter."
        )

    # 4. paginate, then read only the rows on the page
    computed_means = selection.means is not None or selection.all_means is not None
    compute_page_means = plan.uses_rowmeans and not computed_means

    def fetch(start: int, stop: int) -> list[dict[str, Any]]:
        rows, means = selection.page(start, stop)
        return table.records(
            rows,
            value_columns,
            rowmeans=means if plan.uses_rowmeans else None,
            compute_rowmeans=compute_page_means,
        )

    if plan.page is None:
        return fetch(0, selection.count)
    return _paginated(plan, selection.count, params, base_url, fetch)


def _projection(plan: QueryPlan, columns: Sequence[str]) -> list[str]:
    if plan.columns is None:
        return list(columns)
    known = set(columns)
    seen: set[str] = set()
    projected = []
    for name in plan.columns:
        if name in known and name not in seen:
            projected.append(name)
            seen.add(name)
    return projected


def preview_table(path: Path, *, n: int = 10, rows_path: Path | None = None) -> list[dict[str, Any]]:
    """The first ``n`` rows with every column, for the preview endpoint."""
    with StoredTable(Path(path), rows_path=rows_path) as table:
        rows = np.arange(min(n, table.info.n_rows), dtype=np.int64)
        return table.records(rows, table.columns, rowmeans=None, compute_rowmeans=False)


# --------------------------------------------------------------------------- JSON documents


def query_json(
    doc: Any, params: Sequence[tuple[str, str]], *, base_url: str
) -> list[Any] | dict[str, Any] | Any:
    """Run a contents request on a parsed JSON document.

    An array is filtered, sorted and paged like a table, with its items' keys as columns and
    the items themselves as records. Anything else (an object) is returned unchanged: filters
    are ignored, ``page=1`` (or ``last``) returns it whole and any other page raises
    :class:`PageNotFound`.
    """
    params = list(params)
    if not isinstance(doc, list):
        raw_page = next((value for key, value in params if key == PAGE), None)
        if raw_page is not None and raw_page.strip() != "last":
            _select_page(raw_page, 1, 1)  # only page 1 exists
        return doc

    keys: dict[str, None] = {}
    for item in doc:
        if isinstance(item, dict):
            keys.update(dict.fromkeys(item))
    plan = parse_query(params, is_column=lambda name: name in keys, rowmeans_allowed=False)

    cache: dict[str, _Column] = {}

    def column(name: str) -> _Column:
        if name not in cache:
            cache[name] = _Column.from_python(
                [item.get(name, _MISSING) if isinstance(item, dict) else _MISSING for item in doc]
            )
        return cache[name]

    candidates = np.arange(len(doc), dtype=np.int64)
    mask: np.ndarray | None = None
    for flt in plan.filters:
        if flt.target == ROWNAME_COLUMN:
            continue  # JSON items have no row names
        matched = column(flt.target).match(flt.operator, flt.value)
        mask = matched if mask is None else mask & matched
    if mask is not None:
        candidates = np.nonzero(mask)[0]
    sort_keys = [k for k in plan.sort_keys if k.column != ROWNAME_COLUMN]
    if sort_keys:
        keyed = []
        for key in sort_keys:
            missing, values = column(key.column).sort_keys(key.descending)
            keyed.append((missing[candidates], values[candidates]))
        candidates = _order(candidates, keyed)

    def fetch(start: int, stop: int) -> list[Any]:
        return [doc[i] for i in candidates[start:stop].tolist()]

    if plan.page is None:
        return fetch(0, len(candidates))
    return _paginated(plan, len(candidates), params, base_url, fetch)
