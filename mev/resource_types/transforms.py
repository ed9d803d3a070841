"""Server-side transforms of stored tables for the heatmap and volcano viewers (api-contract §2.3)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from scipy.cluster.hierarchy import leaves_list, linkage

from mev.resource_types.query import (
    ROWNAME_COLUMN,
    QueryError,
    StoredTable,
    parse_query,
    render_value,
    select_rows,
)

__all__ = [
    "MAX_CLUSTERED_ROWS",
    "TRANSFORM_NAME_PARAM",
    "TransformError",
    "run_transform",
]

TRANSFORM_NAME_PARAM = "transform-name"

# Hierarchical clustering needs the full pairwise distance matrix: 5,000 rows is 12.5 million
# distances (100 MB) and a few seconds, which is already more than a heatmap can show.
MAX_CLUSTERED_ROWS = 5_000

LINKAGE_METHODS = ("single", "complete", "average", "weighted", "centroid", "median", "ward")
# scipy.spatial.distance metrics that make sense for real-valued expression data.
DISTANCE_METRICS = (
    "braycurtis",
    "canberra",
    "chebyshev",
    "cityblock",
    "correlation",
    "cosine",
    "euclidean",
    "jensenshannon",
    "mahalanobis",
    "minkowski",
    "seuclidean",
    "sqeuclidean",
)
# These need Euclidean distances between the observations themselves.
EUCLIDEAN_ONLY_METHODS = frozenset({"ward", "centroid", "median"})

HEATMAP_KINDS = frozenset({"matrix", "feature"})
VOLCANO_KINDS = frozenset({"feature"})
VOLCANO_PVALUE_COLUMN = "padj"
VOLCANO_LFC_COLUMN = "log2FoldChange"
VOLCANO_DEFAULT_FRACTION = 0.01
# Fixed so the same request always draws the same background points.
VOLCANO_SEED = 20_240_101


class TransformError(ValueError):
    """A transform cannot run; the view answers 400 ``{"error": message}``."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


def run_transform(path: Path, params: Sequence[tuple[str, str]], *, kind: str) -> list[dict[str, Any]]:
    """Run the transform named by the ``transform-name`` parameter on the stored table at ``path``.

    ``kind`` is the stored table's kind (``matrix``, ``annotation``, ``feature``, ``bed``).
    Returns table records (``{"rowname", "values"}``). Raises :class:`TransformError`.
    """
    params = list(params)
    name = _last(params, TRANSFORM_NAME_PARAM)
    if name is None or not name.strip():
        raise TransformError("The request must contain the 'transform-name' parameter.")
    name = name.strip()
    transform = TRANSFORMS.get(name)
    if transform is None:
        available = ", ".join(sorted(TRANSFORMS))
        raise TransformError(f'"{name}" is not a known transform. The available transforms are: {available}.')
    allowed_kinds = HEATMAP_KINDS if name.startswith("heatmap-") else VOLCANO_KINDS
    if kind not in allowed_kinds:
        raise TransformError(f'The "{name}" transform is not available for this type of resource.')
    with StoredTable(Path(path)) as table:
        return transform(table, params, kind)


# --------------------------------------------------------------------------- parameters


def _last(params: Sequence[tuple[str, str]], key: str) -> str | None:
    value = None
    for name, candidate in params:
        if name == key:
            value = candidate
    return value


def _positive_int(params: Sequence[tuple[str, str]], key: str, transform: str) -> int:
    raw = _last(params, key)
    if raw is None or not raw.strip():
        raise TransformError(f"The '{key}' parameter is required for the {transform} transform.")
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if value < 1:
        raise TransformError(f"The '{key}' parameter must be a positive integer; \"{raw}\" is not.")
    return value


def _number(
    params: Sequence[tuple[str, str]],
    key: str,
    transform: str,
    *,
    default: float | None,
    accept: Callable[[float], bool],
    rule: str,
) -> float:
    raw = _last(params, key)
    if raw is None or not raw.strip():
        if default is None:
            raise TransformError(f"The '{key}' parameter is required for the {transform} transform.")
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise TransformError(f"The '{key}' parameter must be {rule}; \"{raw}\" is not a number.") from None
    if not np.isfinite(value) or not accept(value):
        raise TransformError(f"The '{key}' parameter must be {rule}; got {raw}.")
    return value


def _clustering_options(params: Sequence[tuple[str, str]]) -> tuple[str, str]:
    metric = (_last(params, "metric") or "euclidean").strip() or "euclidean"
    method = (_last(params, "method") or "ward").strip() or "ward"
    if metric not in DISTANCE_METRICS:
        raise TransformError(
            f'"{metric}" is not a valid distance metric. Choose one of: {", ".join(DISTANCE_METRICS)}.'
        )
    if method not in LINKAGE_METHODS:
        raise TransformError(
            f'"{method}" is not a valid linkage method. Choose one of: {", ".join(LINKAGE_METHODS)}.'
        )
    if method in EUCLIDEAN_ONLY_METHODS and metric != "euclidean":
        raise TransformError(f'The "{method}" linkage method only works with the "euclidean" metric.')
    return metric, method


# --------------------------------------------------------------------------- data access


def _numeric_columns(table: StoredTable) -> list[str]:
    schema = table.file.schema_arrow
    names = []
    for name in table.columns:
        data_type = schema.field(name).type
        if pa.types.is_integer(data_type) or pa.types.is_floating(data_type):
            names.append(name)
    return names


def _group_matrix(table: StoredTable, group: int, columns: Sequence[str]) -> np.ndarray:
    data = table.file.read_row_group(group, columns=list(columns), use_threads=False)
    return _as_matrix(data, columns)


def _as_matrix(data: pa.Table, columns: Sequence[str]) -> np.ndarray:
    matrix = np.empty((data.num_rows, len(columns)), dtype=np.float64)
    for j, name in enumerate(columns):
        # Integer columns convert on assignment; missing cells come out as NaN.
        matrix[:, j] = data.column(name).to_numpy()
    return matrix


def _rows(table: StoredTable, rows: np.ndarray, columns: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Row names and a float matrix for ``rows`` (in that order), one row group at a time."""
    names: list[str] = [""] * len(rows)
    matrix = np.empty((len(rows), len(columns)), dtype=np.float64)
    groups = table.groups_of(rows)
    for group in np.unique(groups):
        where = np.nonzero(groups == group)[0]
        data = table.file.read_row_group(int(group), columns=[ROWNAME_COLUMN, *columns], use_threads=False)
        data = data.take(pa.array(rows[where] - table.offsets[group]))
        matrix[where] = _as_matrix(data, columns)
        for position, name in zip(where.tolist(), data.column(ROWNAME_COLUMN).to_pylist(), strict=True):
            names[position] = name
    return names, matrix


def _records(names: Sequence[str], matrix: np.ndarray, columns: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {"rowname": name, "values": {column: render_value(v) for column, v in zip(columns, row, strict=True)}}
        for name, row in zip(names, matrix.tolist(), strict=True)
    ]


def _all_records(table: StoredTable, rows: np.ndarray) -> list[dict[str, Any]]:
    return table.records(rows, table.columns, rowmeans=None, compute_rowmeans=False)


# --------------------------------------------------------------------------- clustering


def _leaf_order(matrix: np.ndarray, metric: str, method: str) -> np.ndarray:
    """Order of the rows of ``matrix`` given by hierarchical clustering."""
    if matrix.shape[0] < 2:
        return np.arange(matrix.shape[0])
    # Distances cannot use missing cells; stand in each row's mean (0 if the row has none) so
    # the row keeps its place, while the records still show the missing values.
    finite = np.isfinite(matrix)
    if not finite.all():
        counts = finite.sum(axis=1)
        sums = np.where(finite, matrix, 0.0).sum(axis=1)
        means = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
        matrix = np.where(finite, matrix, means[:, None])
    try:
        tree = linkage(matrix, method=method, metric=metric)
    except (ValueError, FloatingPointError) as error:
        raise TransformError(f"The clustering failed: {error}") from None
    return leaves_list(tree)


def _cluster_records(
    names: list[str], matrix: np.ndarray, columns: list[str], metric: str, method: str
) -> list[dict[str, Any]]:
    if len(names) > MAX_CLUSTERED_ROWS:
        raise TransformError(
            f"There are {len(names):,} rows to cluster; the limit is {MAX_CLUSTERED_ROWS:,}. "
            "Filter the rows first, for example with a feature set."
        )
    row_order = _leaf_order(matrix, metric, method)
    column_order = _leaf_order(matrix.T, metric, method) if len(names) else np.arange(len(columns))
    ordered = matrix[np.ix_(row_order, column_order)]
    return _records([names[i] for i in row_order], ordered, [columns[j] for j in column_order])


def _median_absolute_deviation(matrix: np.ndarray) -> np.ndarray:
    if not np.isnan(matrix).any():  # np.median is several times faster than np.nanmedian
        deviations = np.abs(matrix - np.median(matrix, axis=1)[:, None])
        return np.median(deviations, axis=1)
    # nanmedian warns on all-missing rows; those rows simply get NaN and are ranked last.
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        medians = np.nanmedian(matrix, axis=1)
        return np.nanmedian(np.abs(matrix - medians[:, None]), axis=1)


def heatmap_reduce(table: StoredTable, params: Sequence[tuple[str, str]], kind: str) -> list[dict[str, Any]]:
    """The ``mad_n`` rows with the highest median absolute deviation, clustered on both axes."""
    mad_n = _positive_int(params, "mad_n", "heatmap-reduce")
    metric, method = _clustering_options(params)
    columns = _numeric_columns(table)
    if not columns:
        raise TransformError("The heatmap-reduce transform needs at least one numeric column.")
    if mad_n > MAX_CLUSTERED_ROWS:
        raise TransformError(f"The 'mad_n' parameter must be at most {MAX_CLUSTERED_ROWS:,}; got {mad_n:,}.")
    # One row group at a time keeps memory bounded on a wide matrix.
    deviations = np.concatenate(
        [
            _median_absolute_deviation(_group_matrix(table, group, columns))
            for group in range(table.file.num_row_groups)
        ]
        or [np.empty(0)]
    )
    ranked = np.lexsort((-np.nan_to_num(deviations, nan=-np.inf), np.isnan(deviations)))
    chosen = np.sort(ranked[:mad_n])
    names, matrix = _rows(table, chosen, columns)
    return _cluster_records(names, matrix, columns, metric, method)


def heatmap_cluster(table: StoredTable, params: Sequence[tuple[str, str]], kind: str) -> list[dict[str, Any]]:
    """The rows that pass the contents filters, clustered on both axes."""
    metric, method = _clustering_options(params)
    columns = _numeric_columns(table)
    if not columns:
        raise TransformError("The heatmap-cluster transform needs at least one numeric column.")
    try:
        plan = parse_query(params, is_column=table.is_column, rowmeans_allowed=kind == "matrix")
        plan.sort_keys = []  # clustering decides the order
        rows, _ = select_rows(table, plan)
    except QueryError as error:
        raise TransformError(error.message) from None
    rows = np.sort(rows)
    if len(rows) > MAX_CLUSTERED_ROWS:
        raise TransformError(
            f"There are {len(rows):,} rows to cluster; the limit is {MAX_CLUSTERED_ROWS:,}. "
            "Filter the rows first, for example with a feature set."
        )
    names, matrix = _rows(table, rows, columns)
    return _cluster_records(names, matrix, columns, metric, method)


def volcano_subset(table: StoredTable, params: Sequence[tuple[str, str]], kind: str) -> list[dict[str, Any]]:
    """Significant rows plus a seeded random ``fraction`` of the others, in table order."""
    pval = _number(
        params,
        "pval",
        "volcano-subset",
        default=None,
        accept=lambda v: 0 <= v <= 1,
        rule="a number from 0 to 1",
    )
    lfc = _number(
        params, "lfc", "volcano-subset", default=None, accept=lambda v: v > 0, rule="a number above 0"
    )
    fraction = _number(
        params,
        "fraction",
        "volcano-subset",
        default=VOLCANO_DEFAULT_FRACTION,
        accept=lambda v: 0 <= v <= 1,
        rule="a number from 0 to 1",
    )
    missing = [c for c in (VOLCANO_PVALUE_COLUMN, VOLCANO_LFC_COLUMN) if not table.is_column(c)]
    if missing:
        raise TransformError(
            "The volcano-subset transform needs the columns "
            f"'{VOLCANO_PVALUE_COLUMN}' and '{VOLCANO_LFC_COLUMN}'; this table has no "
            + " or ".join(f"'{c}'" for c in missing)
            + "."
        )
    padj = table.column(VOLCANO_PVALUE_COLUMN).numbers
    log_fold = table.column(VOLCANO_LFC_COLUMN).numbers
    with np.errstate(invalid="ignore"):
        significant = (padj <= pval) & (np.abs(log_fold) >= lfc)
    others = np.nonzero(~significant)[0]
    rng = np.random.default_rng(VOLCANO_SEED)
    sampled = rng.choice(others, size=int(round(fraction * len(others))), replace=False)
    keep = np.zeros(len(padj), dtype=bool)
    keep[significant] = True
    keep[sampled] = True
    return _all_records(table, np.nonzero(keep)[0])


TRANSFORMS: dict[str, Callable[[StoredTable, Sequence[tuple[str, str]], str], list[dict[str, Any]]]] = {
    "heatmap-reduce": heatmap_reduce,
    "heatmap-cluster": heatmap_cluster,
    "volcano-subset": volcano_subset,
}
