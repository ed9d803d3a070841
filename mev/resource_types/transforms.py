"""Server-side transforms of stored tables for the heatmap, volcano and network viewers (api-contract §2.3)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
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
    "PANDA_MAX_DEPTH",
    "PANDA_MAX_EDGES",
    "PANDA_MAX_INITIAL_NODES",
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

# pandasubset walks a gene x TF weight matrix (PANDA, PUMA: NS, or any other numeric matrix).
PANDA_KINDS = frozenset({"matrix"})
PANDA_MAX_INITIAL_NODES = 20  # api-contract §2.3; the viewer's search sends at most 10
# The viewer offers 2-5 layers and 3-10 children and refuses to draw more than 1,000 nodes.
# Every layer can cost one full read of the matrix, so the depth is bounded; the walk also
# stops as soon as a layer brings no new node. The edge bound keeps the answer (and the
# Python objects behind it) to a few MB: 10,000 expanded nodes with 10 children each.
PANDA_MAX_DEPTH = 10
PANDA_MAX_EDGES = 100_000
# Column nodes are expanded from whole columns, read this many at a time: 20,000 genes x 64
# columns is 10 MB of float64, like one 1,000-row group of a 1,000-column matrix.
PANDA_COLUMN_CHUNK = 64


class TransformError(ValueError):
    """A transform cannot run; the view answers 400 ``{"error": message}``."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


def run_transform(path: Path, params: Sequence[tuple[str, str]], *, kind: str) -> Any:
    """Run the transform named by the ``transform-name`` parameter on the stored table at ``path``.

    ``kind`` is the stored table's kind (``matrix``, ``annotation``, ``feature``, ``bed``).
    Returns the JSON body: table records (``{"rowname", "values"}``) for the heatmap and volcano
    transforms, the ``{"initial_axis", "nodes"}`` object for ``pandasubset``.
    Raises :class:`TransformError`.
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
    if kind not in TRANSFORM_KINDS[name]:
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


# --------------------------------------------------------------------------- network subsetting
#
# pandasubset: a small sub-network of a gene x TF weight matrix for the PANDA and PUMA viewers.
#
# What follows the original WebMEV back end (mev-backend, api/data_transformations/
# network_transforms.py), so the viewers draw the same network:
# - ``axis`` 0 starts from rows (genes), 1 from columns (TFs). Without ``initial_nodes`` the
#   walk starts from the ``children`` nodes of that axis with the largest total weight (sum over
#   the other axis, missing cells skipped); with it, from the named nodes, in the order given.
# - Each expanded node keeps its ``children`` largest weights (signed values, not absolute
#   ones), largest first; missing cells are never children; equal weights keep matrix order
#   (the first row or column wins, as pandas' ``nlargest`` does).
# - The children of one layer are the nodes of the next, on the other axis; ``maxdepth``
#   counts the layers expanded. The children of the last layer are listed but not expanded.
# - A node is identified by its name *and* axis, so a gene and a TF with the same name are two
#   nodes. A node reached again is not listed twice.
# - Unknown initial nodes are an error naming them and the axis searched.
#
# Where this differs, and why:
# - A node already expanded is not expanded again. The original re-expanded it, which gives the
#   same children (the same row or column), so the answer is the same for less work; and the walk
#   stops as soon as a layer brings no new node, whatever ``maxdepth`` says.
# - The nodes of a layer come in a fixed order (parents in order, each parent's children by
#   rank) instead of Python set order, so the same request always gives the same answer.
# - Every bad parameter is a 400 naming it and the value sent; ``initial_nodes`` takes at most
#   20 names (api-contract §2.3), blank names are ignored (an empty ``initial_nodes=`` means "not
#   given"), and repeated names count once. ``maxdepth`` is at most PANDA_MAX_DEPTH and the
#   answer at most PANDA_MAX_EDGES edges, with a message saying what to lower.
# - Only numeric matrices (MTX, I_MTX, EXP_MTX, RNASEQ_COUNT_MTX, NS) are accepted; the original
#   tried any table. Weights from integer columns stay integers; +/-inf are rendered like cells.
#
# Memory: the matrix is never loaded whole. Row totals and row expansions read one row group at
# a time; column totals add up group by group; column expansions read PANDA_COLUMN_CHUNK columns
# at a time. Top-k selection is a partition per block, and Python objects are made only for the
# edges that are returned.

_NAN_KEY = np.iinfo(np.int64).min
_NEGATIVE_MAGNITUDE_BITS = np.int64(0x7FFF_FFFF_FFFF_FFFF)


def _ranking_keys(values: np.ndarray) -> np.ndarray:
    """Integers that sort like the float ``values``, with NaN below everything (even -inf).

    Equal weights must compare equal (ties are decided by position) and NaN must never be
    chosen, which a float partition cannot promise; the IEEE-754 bit pattern, with the
    magnitude bits of negative numbers flipped, orders exactly like the numbers.
    """
    normalized = np.asarray(values, dtype=np.float64) + 0.0  # -0.0 becomes 0.0, so the zeros tie
    bits = normalized.view(np.int64)
    keys = np.where(bits < 0, bits ^ _NEGATIVE_MAGNITUDE_BITS, bits)
    keys[np.isnan(normalized)] = _NAN_KEY
    return keys


def _top_k(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest non-missing entries of each row of the 2-D ``values``.

    Returns ``(rows, cols)`` of the chosen entries, grouped by row in increasing order and, within
    a row, by decreasing value, equal values in column order. Linear in the size of ``values``
    plus a sort of the chosen entries only.
    """
    n = values.shape[1]
    keys = _ranking_keys(values)
    chosen = keys != _NAN_KEY
    if k < n:
        threshold = np.partition(keys, n - k, axis=1)[:, n - k : n - k + 1]  # the k-th largest
        above = keys > threshold
        tied = keys == threshold
        room = k - above.sum(axis=1)
        # Where more entries equal the threshold than there is room for, the first ones win.
        # That is rare in real weights, so the running count is taken only for those rows.
        crowded = np.nonzero(tied.sum(axis=1) > room)[0]
        if len(crowded):
            ties = tied[crowded]
            tied[crowded] = ties & (np.cumsum(ties, axis=1) <= room[crowded, None])
        chosen &= above | tied
    rows, cols = np.nonzero(chosen)
    order = np.lexsort((cols, ~keys[rows, cols], rows))  # ~key: decreasing, without overflow
    return rows[order], cols[order]


def _axis_param(params: Sequence[tuple[str, str]]) -> int:
    raw = _last(params, "axis")
    if raw is None or not raw.strip():
        raise TransformError("The 'axis' parameter is required for the pandasubset transform.")
    if raw.strip() not in ("0", "1"):
        raise TransformError(
            f"The 'axis' parameter must be 0 (start from the rows, e.g. genes) or 1 (start from the "
            f'columns, e.g. transcription factors); "{raw}" is neither.'
        )
    return int(raw.strip())


def _initial_nodes_param(params: Sequence[tuple[str, str]]) -> list[str] | None:
    raw = _last(params, "initial_nodes")
    if raw is None:
        return None
    names = list(dict.fromkeys(name.strip() for name in raw.split(",") if name.strip()))
    if not names:
        return None
    if len(names) > PANDA_MAX_INITIAL_NODES:
        raise TransformError(
            f"The 'initial_nodes' parameter may name at most {PANDA_MAX_INITIAL_NODES} nodes; "
            f"it names {len(names)}."
        )
    return names


class _WeightMatrix:
    """Blocks of a stored numeric matrix as float64, read a row group or a few columns at a time."""

    def __init__(self, table: StoredTable) -> None:
        self.file = table.file
        self.columns = list(table.columns)
        schema = self.file.schema_arrow
        types = [schema.field(name).type for name in self.columns]
        for name, data_type in zip(self.columns, types, strict=True):
            if not (
                pa.types.is_integer(data_type)
                or pa.types.is_floating(data_type)
                or pa.types.is_null(data_type)
            ):
                raise TransformError(
                    f"The pandasubset transform needs a matrix of numbers; the column '{name}' is not numeric."
                )
        self.integer_columns = np.array([pa.types.is_integer(t) for t in types], dtype=bool)
        self.row_names: list[str] = (
            self.file.read(columns=[ROWNAME_COLUMN], use_threads=False).column(0).to_pylist()
        )
        sizes = [self.file.metadata.row_group(i).num_rows for i in range(self.file.num_row_groups)]
        self.offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])

    def names(self, axis: int) -> list[str]:
        return self.row_names if axis == 0 else self.columns

    def size(self, axis: int) -> int:
        return len(self.names(axis))

    @staticmethod
    def _floats(data: pa.Table) -> np.ndarray:
        block = np.empty((data.num_rows, data.num_columns), dtype=np.float64)
        for j, column in enumerate(data.columns):
            # Missing cells become NaN; int64 beyond 2**53 may round, which only affects ranking.
            if pa.types.is_null(column.type):  # a column with no value at all
                column = column.cast(pa.float64())
            block[:, j] = column.to_numpy()
        return block

    def row_groups(self) -> Iterator[np.ndarray]:
        for group in range(self.file.num_row_groups):
            yield self._floats(self.file.read_row_group(group, columns=self.columns, use_threads=False))

    def rows(self, rows: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(positions, block)``: the rows ``rows[positions]``, one row group at a time."""
        groups = np.searchsorted(self.offsets, rows, side="right") - 1
        for group in np.unique(groups):
            positions = np.nonzero(groups == group)[0]
            data = self.file.read_row_group(int(group), columns=self.columns, use_threads=False)
            yield positions, self._floats(data.take(pa.array(rows[positions] - self.offsets[group])))

    def columns_of(self, cols: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(positions, block)``: the columns ``cols[positions]`` as rows of ``block``."""
        for start in range(0, len(cols), PANDA_COLUMN_CHUNK):
            positions = np.arange(start, min(start + PANDA_COLUMN_CHUNK, len(cols)))
            names = [self.columns[j] for j in cols[positions]]
            yield positions, self._floats(self.file.read(columns=names, use_threads=False)).T

    def totals(self, axis: int) -> np.ndarray:
        """Sum of each row (axis 0) or column (axis 1), missing cells skipped."""
        if axis == 0:
            return np.concatenate([np.nansum(block, axis=1) for block in self.row_groups()] or [np.empty(0)])
        totals = np.zeros(len(self.columns))
        for block in self.row_groups():
            totals += np.nansum(block, axis=0)
        return totals

    def lookup(self, names: Sequence[str], axis: int) -> np.ndarray:
        index: dict[str, int] = {}
        for position, name in enumerate(self.names(axis)):
            index.setdefault(name, position)
        unknown = [name for name in names if name not in index]
        if unknown:
            where = "rows (axis=0)" if axis == 0 else "columns (axis=1)"
            raise TransformError(
                f"The 'initial_nodes' parameter names nodes that are not among the {where} of this "
                f"matrix: {', '.join(unknown)}."
            )
        return np.array([index[name] for name in names], dtype=np.int64)


def _render_weight(value: float, integer: bool) -> Any:
    return int(value) if integer else render_value(value)


def pandasubset(table: StoredTable, params: Sequence[tuple[str, str]], kind: str) -> dict[str, Any]:
    """The ``maxdepth``-layer sub-network around the strongest (or the named) nodes of one axis."""
    max_depth = _positive_int(params, "maxdepth", "pandasubset")
    if max_depth > PANDA_MAX_DEPTH:
        raise TransformError(f"The 'maxdepth' parameter must be at most {PANDA_MAX_DEPTH}; got {max_depth}.")
    n_children = _positive_int(params, "children", "pandasubset")
    initial_axis = _axis_param(params)
    requested = _initial_nodes_param(params)

    matrix = _WeightMatrix(table)
    if requested is not None:
        frontier = matrix.lookup(requested, initial_axis)
    else:
        totals = matrix.totals(initial_axis)
        frontier = _top_k(totals[None, :], n_children)[1]

    seen = [np.zeros(matrix.size(0), dtype=bool), np.zeros(matrix.size(1), dtype=bool)]
    seen[initial_axis][frontier] = True
    nodes: list[dict[str, Any]] = []
    n_edges = 0
    axis = initial_axis
    for _ in range(max_depth):
        if not len(frontier):
            break
        child_axis = 1 - axis
        parent_names, child_names = matrix.names(axis), matrix.names(child_axis)
        # Children of each frontier node, by its position in the frontier.
        children: list[tuple[np.ndarray, list[Any]]] = [(np.empty(0, dtype=np.int64), [])] * len(frontier)
        blocks = matrix.rows(frontier) if axis == 0 else matrix.columns_of(frontier)
        for positions, block in blocks:
            rows, cols = _top_k(block, n_children)
            n_edges += len(cols)
            if n_edges > PANDA_MAX_EDGES:
                raise TransformError(
                    f"The network would have more than {PANDA_MAX_EDGES:,} edges; "
                    "lower 'maxdepth' or 'children', or start from fewer 'initial_nodes'."
                )
            weights = block[rows, cols].tolist()
            if axis == 0:
                integer = matrix.integer_columns[cols].tolist()
            else:
                integer = matrix.integer_columns[frontier[positions][rows]].tolist()
            rendered = [_render_weight(w, i) for w, i in zip(weights, integer, strict=True)]
            bounds = np.searchsorted(rows, np.arange(len(positions) + 1))
            for local, position in enumerate(positions.tolist()):
                start, stop = int(bounds[local]), int(bounds[local + 1])
                children[position] = (cols[start:stop], rendered[start:stop])
        for node, (child_ids, child_weights) in zip(frontier.tolist(), children, strict=True):
            nodes.append(
                {
                    parent_names[node]: {
                        "axis": axis,
                        "children": [
                            {child_names[c]: w}
                            for c, w in zip(child_ids.tolist(), child_weights, strict=True)
                        ],
                    }
                }
            )
        # The next layer: children not seen yet on their axis, in order of first appearance.
        reached = np.concatenate([ids for ids, _ in children] or [np.empty(0, dtype=np.int64)])
        reached = reached[~seen[child_axis][reached]]
        _, first = np.unique(reached, return_index=True)
        frontier = reached[np.sort(first)]
        seen[child_axis][frontier] = True
        axis = child_axis
    return {"initial_axis": initial_axis, "nodes": nodes}


TRANSFORMS: dict[str, Callable[[StoredTable, Sequence[tuple[str, str]], str], Any]] = {
    "heatmap-reduce": heatmap_reduce,
    "heatmap-cluster": heatmap_cluster,
    "volcano-subset": volcano_subset,
    "pandasubset": pandasubset,
}

# The stored-table kinds each transform accepts; any other resource gets "not available".
TRANSFORM_KINDS: dict[str, frozenset[str]] = {
    "heatmap-reduce": HEATMAP_KINDS,
    "heatmap-cluster": HEATMAP_KINDS,
    "volcano-subset": VOLCANO_KINDS,
    "pandasubset": PANDA_KINDS,
}
