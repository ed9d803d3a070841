"""The contents query language (api-contract §2.3): parse it, run it on stored tables and JSON documents."""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mev.resource_types.table_store import ROWNAME_COLUMN, read_info

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
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
        data = pc.cast(data, pa.float64())
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
    if not np.isnan(stacked).any():
        return stacked.mean(axis=1)
    present = ~np.isnan(stacked)
    counts = present.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        totals = np.where(present, stacked, 0.0).sum(axis=1)
        return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)


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


# Reading the footer of a wide table (500 columns x 60 row groups) costs as much as reading a page,
# so footers are kept per process, keyed by what changes when the file is rewritten.
_FOOTER_CACHE_SIZE = 64
_footers: OrderedDict[tuple[str, int, int, int], pq.FileMetaData] = OrderedDict()
_footers_lock = threading.Lock()


def _footer(path: Path) -> pq.FileMetaData:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_ino, stat.st_mtime_ns, stat.st_size)
    with _footers_lock:
        cached = _footers.get(key)
        if cached is not None:
            _footers.move_to_end(key)
            return cached
    metadata = pq.read_metadata(path)
    with _footers_lock:
        _footers[key] = metadata
        while len(_footers) > _FOOTER_CACHE_SIZE:
            _footers.popitem(last=False)
    return metadata


# Below this many cells, the row groups a page touches are read in one call (narrow tables);
# above it, one group at a time so memory stays bounded by one group (wide matrices).
_SINGLE_READ_CELLS = 2_000_000


class StoredTable:
    """Reads from the Parquet copy only what a request needs."""

    def __init__(self, path: Path) -> None:
        # pre_buffer coalesces reads for remote storage; on a local file it only adds latency.
        self.file = pq.ParquetFile(path, memory_map=True, metadata=_footer(path), pre_buffer=False)
        self.info = read_info(self.file)
        self.columns = list(self.info.columns)
        self._column_set = set(self.columns)
        self._cache: dict[str, _Column] = {}
        sizes = [self.file.metadata.row_group(i).num_rows for i in range(self.file.num_row_groups)]
        self.offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])

    def __enter__(self) -> StoredTable:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.file.close()

    def is_column(self, name: str) -> bool:
        return name in self._column_set

    def column(self, name: str) -> _Column:
        if name not in self._cache:
            self._cache[name] = _Column(self.file.read(columns=[name], use_threads=False).column(0))
        return self._cache[name]

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

    def records(
        self,
        rows: np.ndarray,
        value_columns: Sequence[str],
        *,
        rowmeans: np.ndarray | None,
        compute_rowmeans: bool,
    ) -> list[dict[str, Any]]:
        """Records for ``rows`` in the given order, reading only the row groups they live in."""
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


def select_rows(
    table: StoredTable, plan: QueryPlan, *, needed: Callable[[int], int] | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Row numbers that pass the plan's filters, in the plan's order, with their row means if computed.

    Evaluation order (api-contract §2.3): column and row-name filters, row mean, sort.
    ``needed`` maps the number of matching rows to how many leading rows must be in order (the
    end of the requested page); the rows after that are returned unordered.
    """
    n_rows = table.info.n_rows
    candidates = np.arange(n_rows, dtype=np.int64)

    # 1. column and row-name filters, on whole columns
    mask: np.ndarray | None = None
    for flt in plan.filters:
        if flt.target == ROWMEAN:
            continue
        matched = table.column(flt.target).match(flt.operator, flt.value)
        mask = matched if mask is None else mask & matched
    if mask is not None:
        candidates = np.nonzero(mask)[0]

    # 2. row means, where they decide which rows or which order
    rowmeans: np.ndarray | None = None
    rowmean_filters = [f for f in plan.filters if f.target == ROWMEAN]
    needs_all_means = bool(rowmean_filters) or any(k.column == ROWMEAN for k in plan.sort_keys)
    if needs_all_means:
        rowmeans = table.row_means(candidates)
        if rowmean_filters:
            column = _Column(pa.array(rowmeans), numeric=True)
            keep = np.ones(len(candidates), dtype=bool)
            for flt in rowmean_filters:
                keep &= column.match(flt.operator, flt.value)
            candidates, rowmeans = candidates[keep], rowmeans[keep]

    # 3. sort
    if plan.sort_keys:
        keys = []
        for key in plan.sort_keys:
            if key.column == ROWMEAN and rowmeans is not None:
                keys.append(_Column(pa.array(rowmeans), numeric=True).sort_keys(key.descending))
            else:
                missing, values = table.column(key.column).sort_keys(key.descending)
                keys.append((missing[candidates], values[candidates]))
        head = needed(len(candidates)) if needed is not None else None
        positions = _order(np.arange(len(candidates)), keys, head=head)
        candidates = candidates[positions]
        if rowmeans is not None:
            rowmeans = rowmeans[positions]

    return candidates, rowmeans


def query_table(
    path: Path,
    params: Sequence[tuple[str, str]],
    *,
    kind: str,
    base_url: str,
) -> list[dict[str, Any]] | dict[str, Any]:
    """Run a contents request on the Parquet copy at ``path``.

    ``params`` are the URL-decoded query parameters in order; ``kind`` is the stored table's kind
    (``matrix``, ``annotation``, ``feature`` or ``bed``); ``base_url`` is the absolute URL of the
    contents endpoint, used for ``next``/``previous``. Returns a bare list of records without
    ``page`` and the paginated object with it.

    Raises :class:`QueryError` (400) and :class:`PageNotFound` (404).
    """
    params = list(params)
    with StoredTable(Path(path)) as table:
        return _query_stored(table, params, kind=kind, base_url=base_url)


def _query_stored(
    table: StoredTable, params: list[tuple[str, str]], *, kind: str, base_url: str
) -> list[dict[str, Any]] | dict[str, Any]:
    plan = parse_query(params, is_column=table.is_column, rowmeans_allowed=kind == MATRIX_KIND)
    candidates, rowmeans = select_rows(table, plan, needed=_page_end(plan))

    # 4. paginate, then read only the rows on the page
    value_columns = _projection(plan, table.columns)
    compute_page_means = plan.uses_rowmeans and rowmeans is None

    def fetch(start: int, stop: int) -> list[dict[str, Any]]:
        return table.records(
            candidates[start:stop],
            value_columns,
            rowmeans=None if rowmeans is None else rowmeans[start:stop],
            compute_rowmeans=compute_page_means,
        )

    if plan.page is None:
        return fetch(0, len(candidates))
    return _paginated(plan, len(candidates), params, base_url, fetch)


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


def preview_table(path: Path, *, n: int = 10) -> list[dict[str, Any]]:
    """The first ``n`` rows with every column, for the preview endpoint."""
    with StoredTable(Path(path)) as table:
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
