"""Server-side transforms for the heatmap, volcano and network viewers (api-contract §2.3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.cluster.hierarchy import leaves_list, linkage

from mev.resource_types import table_store, transforms
from mev.resource_types.transforms import MAX_CLUSTERED_ROWS, TransformError, run_transform


@pytest.fixture
def expression(tmp_path: Path) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(11)
    spread = np.linspace(0.1, 10, 40)[:, None]
    data = rng.normal(size=(40, 6)) * spread
    data[0, 2] = np.nan  # a missing cell must not break clustering
    path = tmp_path / "mtx.parquet"
    table = pa.table({"gene": [f"g{i}" for i in range(40)], **{f"s{j}": data[:, j] for j in range(6)}})
    table_store.write_table(table, path, kind="matrix")
    return path, data


@pytest.fixture
def dge(tmp_path: Path) -> Path:
    n = 2000
    rng = np.random.default_rng(5)
    padj = rng.uniform(size=n)
    padj[:10] = 0.001
    padj[10] = np.nan
    lfc = rng.normal(size=n)
    lfc[:10] = [3, -3, 2, -2, 5, 0.1, 4, -4, 1.0, -1.0]
    path = tmp_path / "ft.parquet"
    table = pa.table(
        {
            "gene": [f"g{i}" for i in range(n)],
            "baseMean": rng.uniform(size=n),
            "log2FoldChange": lfc,
            "pvalue": padj / 2,
            "padj": padj,
            "symbol": ["S"] * n,
        }
    )
    table_store.write_table(table, path, kind="feature")
    return path


def names(records: list[dict]) -> list[str]:
    return [r["rowname"] for r in records]


def error(path: Path, params: list[tuple[str, str]], kind: str = "matrix") -> str:
    with pytest.raises(TransformError) as caught:
        run_transform(path, params, kind=kind)
    assert str(caught.value) == caught.value.message
    return caught.value.message


def test_heatmap_reduce_keeps_the_rows_with_highest_mad_clustered(
    expression: tuple[Path, np.ndarray],
) -> None:
    path, data = expression

    records = run_transform(path, [("transform-name", "heatmap-reduce"), ("mad_n", "5")], kind="matrix")

    medians = np.nanmedian(data, axis=1)
    mad = np.nanmedian(np.abs(data - medians[:, None]), axis=1)
    top = np.sort(np.argsort(-mad)[:5])
    assert sorted(names(records)) == sorted(f"g{i}" for i in top)
    rows = data[top]
    expected_rows = [f"g{top[i]}" for i in leaves_list(linkage(rows, method="ward", metric="euclidean"))]
    expected_cols = [f"s{j}" for j in leaves_list(linkage(rows.T, method="ward", metric="euclidean"))]
    assert names(records) == expected_rows
    assert all(list(r["values"]) == expected_cols for r in records)
    first = records[0]
    row = int(first["rowname"][1:])
    assert first["values"]["s3"] == pytest.approx(data[row, 3])


def test_heatmap_reduce_with_metric_and_method(expression: tuple[Path, np.ndarray]) -> None:
    path, _ = expression
    params = [
        ("transform-name", "heatmap-reduce"),
        ("mad_n", "8"),
        ("metric", "correlation"),
        ("method", "average"),
    ]
    records = run_transform(path, params, kind="matrix")
    assert len(records) == 8


def test_heatmap_reduce_with_more_rows_than_the_table(expression: tuple[Path, np.ndarray]) -> None:
    path, data = expression
    records = run_transform(path, [("transform-name", "heatmap-reduce"), ("mad_n", "1000")], kind="matrix")
    assert len(records) == len(data)
    assert records[-1]["values"] is not None
    missing = next(r for r in records if r["rowname"] == "g0")
    assert missing["values"]["s2"] is None


def test_heatmap_cluster_applies_contents_filters(expression: tuple[Path, np.ndarray]) -> None:
    path, data = expression
    params = [
        ("transform-name", "heatmap-cluster"),
        ("__rowname__", "[in]:g3,g30,g31,g39"),
        ("method", "complete"),
        ("_", "123"),
    ]

    records = run_transform(path, params, kind="matrix")

    rows = data[[3, 30, 31, 39]]
    order = leaves_list(linkage(rows, method="complete", metric="euclidean"))
    assert names(records) == [["g3", "g30", "g31", "g39"][i] for i in order]


def test_heatmap_cluster_single_row(expression: tuple[Path, np.ndarray]) -> None:
    path, _ = expression
    records = run_transform(
        path, [("transform-name", "heatmap-cluster"), ("__rowname__", "[eq]:g7")], kind="matrix"
    )
    assert names(records) == ["g7"]
    assert len(records[0]["values"]) == 6


def test_heatmap_cluster_refuses_too_many_rows(tmp_path: Path) -> None:
    n = MAX_CLUSTERED_ROWS + 1
    path = tmp_path / "m.parquet"
    table_store.write_table(
        pa.table({"g": [f"g{i}" for i in range(n)], "a": np.arange(n), "b": np.arange(n)}), path
    )
    assert "limit is 5,000" in error(path, [("transform-name", "heatmap-cluster")])


def test_volcano_subset_keeps_significant_rows_and_a_seeded_sample(dge: Path) -> None:
    params = [("transform-name", "volcano-subset"), ("pval", "0.01"), ("lfc", "2"), ("fraction", "0.01")]

    records = run_transform(dge, params, kind="feature")
    again = run_transform(dge, params, kind="feature")

    assert records == again
    chosen = names(records)
    assert {"g0", "g1", "g2", "g3", "g4", "g6", "g7"} <= set(chosen)
    stored = pq.read_table(dge)
    padj, lfc = stored.column("padj").to_numpy(), stored.column("log2FoldChange").to_numpy()
    n_significant = int(np.sum((padj <= 0.01) & (np.abs(lfc) >= 2)))
    assert len(chosen) == n_significant + round(0.01 * (2000 - n_significant))
    assert chosen == sorted(chosen, key=lambda name: int(name[1:]))
    assert set(records[0]["values"]) == {"baseMean", "log2FoldChange", "pvalue", "padj", "symbol"}


def test_volcano_subset_default_fraction(dge: Path) -> None:
    records = run_transform(
        dge, [("transform-name", "volcano-subset"), ("pval", "0"), ("lfc", "100")], kind="feature"
    )
    assert len(records) == round(0.01 * 2000)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ([], "The request must contain the 'transform-name' parameter."),
        ([("transform-name", "")], "The request must contain the 'transform-name' parameter."),
        (
            [("transform-name", "pca")],
            '"pca" is not a known transform. The available transforms are: '
            "heatmap-cluster, heatmap-reduce, pandasubset, volcano-subset.",
        ),
        (
            [("transform-name", "heatmap-reduce")],
            "The 'mad_n' parameter is required for the heatmap-reduce transform.",
        ),
        (
            [("transform-name", "heatmap-reduce"), ("mad_n", "-3")],
            "The 'mad_n' parameter must be a positive integer; \"-3\" is not.",
        ),
        (
            [("transform-name", "heatmap-reduce"), ("mad_n", "5"), ("metric", "hamming")],
            '"hamming" is not a valid distance metric.',
        ),
        (
            [("transform-name", "heatmap-reduce"), ("mad_n", "5"), ("method", "median-ish")],
            '"median-ish" is not a valid linkage method.',
        ),
        (
            [("transform-name", "heatmap-reduce"), ("mad_n", "5"), ("metric", "cosine")],
            'The "ward" linkage method only works with the "euclidean" metric.',
        ),
        (
            [("transform-name", "heatmap-reduce"), ("mad_n", "5001")],
            "The 'mad_n' parameter must be at most 5,000; got 5,001.",
        ),
        (
            [("transform-name", "heatmap-cluster"), ("s1", "[gt]:abc")],
            'There was a problem when parsing the request: Could not parse "abc" as a number.',
        ),
        (
            [("transform-name", "volcano-subset"), ("pval", "0.1"), ("lfc", "1")],
            'The "volcano-subset" transform is not available for this type of resource.',
        ),
    ],
)
def test_errors(expression: tuple[Path, np.ndarray], params: list[tuple[str, str]], message: str) -> None:
    path, _ = expression
    assert error(path, params).startswith(message)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ([("lfc", "1")], "The 'pval' parameter is required for the volcano-subset transform."),
        ([("pval", "1.5"), ("lfc", "1")], "The 'pval' parameter must be a number from 0 to 1; got 1.5."),
        (
            [("pval", "x"), ("lfc", "1")],
            "The 'pval' parameter must be a number from 0 to 1; \"x\" is not a number.",
        ),
        ([("pval", "0.1")], "The 'lfc' parameter is required for the volcano-subset transform."),
        ([("pval", "0.1"), ("lfc", "0")], "The 'lfc' parameter must be a number above 0; got 0."),
        (
            [("pval", "0.1"), ("lfc", "1"), ("fraction", "2")],
            "The 'fraction' parameter must be a number from 0 to 1; got 2.",
        ),
    ],
)
def test_volcano_errors(dge: Path, params: list[tuple[str, str]], message: str) -> None:
    assert error(dge, [("transform-name", "volcano-subset"), *params], kind="feature") == message


def test_volcano_needs_its_columns(tmp_path: Path) -> None:
    path = tmp_path / "ft.parquet"
    table_store.write_table(pa.table({"g": ["a"], "padj": [0.1]}), path, kind="feature")
    message = error(
        path, [("transform-name", "volcano-subset"), ("pval", "0.1"), ("lfc", "1")], kind="feature"
    )
    assert message == (
        "The volcano-subset transform needs the columns 'padj' and 'log2FoldChange'; this table has no 'log2FoldChange'."
    )


def test_heatmaps_are_not_available_for_annotations(expression: tuple[Path, np.ndarray]) -> None:
    path, _ = expression
    message = error(path, [("transform-name", "heatmap-reduce"), ("mad_n", "3")], kind="annotation")
    assert message == 'The "heatmap-reduce" transform is not available for this type of resource.'


# --------------------------------------------------------------------------- pandasubset

NAN = float("nan")

# A gene x TF weight matrix small enough to walk by hand.
#
#         T1     T2     T3     T4      row total (missing skipped)
#   g1   0.9    0.1    0.5   -2.0      -0.5
#   g2   0.2    0.8    0.8    0.3       2.1
#   g3  -1.0    0.4    0.7    (NaN)     0.1
#   g4   0.5    0.5    0.1    0.6       1.7
#   g5   3.0   -0.5    0.2    0.0       2.7
#   column total:  T1 3.6, T2 1.3, T3 2.3, T4 -1.1
NETWORK_COLUMNS = {
    "T1": [0.9, 0.2, -1.0, 0.5, 3.0],
    "T2": [0.1, 0.8, 0.4, 0.5, -0.5],
    "T3": [0.5, 0.8, 0.7, 0.1, 0.2],
    "T4": [-2.0, 0.3, NAN, 0.6, 0.0],
}


def node(name: str, axis: int, *children: tuple[str, float]) -> dict:
    return {name: {"axis": axis, "children": [{child: weight} for child, weight in children]}}


def panda(path: Path, kind: str = "matrix", **params: str) -> dict:
    return run_transform(path, [("transform-name", "pandasubset"), *params.items()], kind=kind)


def panda_error(path: Path, kind: str = "matrix", **params: str) -> str:
    return error(path, [("transform-name", "pandasubset"), *params.items()], kind=kind)


@pytest.fixture
def network(tmp_path: Path) -> Path:
    path = tmp_path / "ns.parquet"
    table_store.write_table(pa.table({"gene": ["g1", "g2", "g3", "g4", "g5"], **NETWORK_COLUMNS}), path)
    return path


# Integer weights with ties everywhere.
#
#        A  B  C    row total
#   r1   1  2  3    6
#   r2   3  3  0    6
#   r3   0  0  5    5
#   r4   2  2  2    6
#   column total: A 6, B 7, C 10
@pytest.fixture
def tied(tmp_path: Path) -> Path:
    path = tmp_path / "tied.parquet"
    table = pa.table({"g": ["r1", "r2", "r3", "r4"], "A": [1, 3, 0, 2], "B": [2, 3, 0, 2], "C": [3, 0, 5, 2]})
    table_store.write_table(table, path)
    return path


# Layers of the walk from the rows with 2 children, worked out from the table above.
ROWS_LAYER_1 = [
    node("g5", 0, ("T1", 3.0), ("T3", 0.2)),  # g5 and g2 have the largest row totals
    node("g2", 0, ("T2", 0.8), ("T3", 0.8)),  # T2 and T3 tie: the first column wins
]
ROWS_LAYER_2 = [  # new TFs in order of first appearance: T1, T3 (from g5), then T2 (from g2)
    node("T1", 1, ("g5", 3.0), ("g1", 0.9)),
    node("T3", 1, ("g2", 0.8), ("g3", 0.7)),
    node("T2", 1, ("g2", 0.8), ("g4", 0.5)),
]
ROWS_LAYER_3 = [  # g5 and g2 were already expanded
    node("g1", 0, ("T1", 0.9), ("T3", 0.5)),
    node("g3", 0, ("T3", 0.7), ("T2", 0.4)),  # its missing T4 is never a child
    node("g4", 0, ("T4", 0.6), ("T1", 0.5)),  # T1 and T2 tie at 0.5: T1 wins
]
ROWS_LAYER_4 = [node("T4", 1, ("g4", 0.6), ("g2", 0.3))]  # g3's missing weight is skipped


def test_pandasubset_from_the_rows_one_layer(network: Path) -> None:
    assert panda(network, maxdepth="1", children="2", axis="0") == {
        "initial_axis": 0,
        "nodes": ROWS_LAYER_1,
    }


def test_pandasubset_from_the_rows_two_layers(network: Path) -> None:
    result = panda(network, maxdepth="2", children="2", axis="0")
    assert result == {"initial_axis": 0, "nodes": ROWS_LAYER_1 + ROWS_LAYER_2}


def test_pandasubset_walk_stops_when_no_new_node_is_reached(network: Path) -> None:
    three = panda(network, maxdepth="3", children="2", axis="0")
    four = panda(network, maxdepth="4", children="2", axis="0")
    ten = panda(network, maxdepth="10", children="2", axis="0")

    assert three["nodes"] == ROWS_LAYER_1 + ROWS_LAYER_2 + ROWS_LAYER_3
    assert four["nodes"] == ROWS_LAYER_1 + ROWS_LAYER_2 + ROWS_LAYER_3 + ROWS_LAYER_4
    # T4's children g4 and g2 were expanded already: layer 5 would be empty.
    assert ten == four


def test_pandasubset_from_the_columns(network: Path) -> None:
    result = panda(network, maxdepth="1", children="3", axis="1")
    assert result == {
        "initial_axis": 1,
        "nodes": [  # T1, T3, T2 have the largest column totals
            node("T1", 1, ("g5", 3.0), ("g1", 0.9), ("g4", 0.5)),
            node("T3", 1, ("g2", 0.8), ("g3", 0.7), ("g1", 0.5)),
            node("T2", 1, ("g2", 0.8), ("g4", 0.5), ("g3", 0.4)),
        ],
    }


def test_pandasubset_from_the_columns_alternates_axes(network: Path) -> None:
    result = panda(network, maxdepth="3", children="1", axis="1")
    # T1 -> g5 -> T1 again, which is not expanded twice.
    assert result == {"initial_axis": 1, "nodes": [node("T1", 1, ("g5", 3.0)), node("g5", 0, ("T1", 3.0))]}


def test_pandasubset_from_named_rows(network: Path) -> None:
    result = panda(network, maxdepth="2", children="1", axis="0", initial_nodes="g3,g1")
    assert result == {
        "initial_axis": 0,
        "nodes": [
            node("g3", 0, ("T3", 0.7)),
            node("g1", 0, ("T1", 0.9)),
            node("T3", 1, ("g2", 0.8)),
            node("T1", 1, ("g5", 3.0)),
        ],
    }
    # Spaces, blank items and repeats do not change the walk.
    assert panda(network, maxdepth="2", children="1", axis="0", initial_nodes=" g3 ,, g1,g3") == result


def test_pandasubset_from_a_named_column_with_fewer_weights_than_children(network: Path) -> None:
    result = panda(network, maxdepth="1", children="10", axis="1", initial_nodes="T4")
    assert result == {
        "initial_axis": 1,
        "nodes": [node("T4", 1, ("g4", 0.6), ("g2", 0.3), ("g5", 0.0), ("g1", -2.0))],
    }


def test_pandasubset_empty_initial_nodes_means_not_given(network: Path) -> None:
    assert panda(network, maxdepth="1", children="2", axis="0", initial_nodes=" , ") == {
        "initial_axis": 0,
        "nodes": ROWS_LAYER_1,
    }


def test_pandasubset_ties_keep_matrix_order_and_integers_stay_integers(tied: Path) -> None:
    # r1, r2 and r4 all total 6: the first two rows win; in r2, A and B tie at 3.
    rows = panda(tied, maxdepth="1", children="2", axis="0")
    assert rows["nodes"] == [node("r1", 0, ("C", 3), ("B", 2)), node("r2", 0, ("A", 3), ("B", 3))]
    assert all(
        type(weight) is int
        for entry in rows["nodes"]
        for child in entry[next(iter(entry))]["children"]
        for weight in child.values()
    )
    # r4 is 2, 2, 2: A wins; column A is 1, 3, 0, 2: r2.
    named = panda(tied, maxdepth="2", children="1", axis="0", initial_nodes="r4")
    assert named["nodes"] == [node("r4", 0, ("A", 2)), node("A", 1, ("r2", 3))]
    # Columns C (10) and B (7); in B, r1 and r4 tie at 2 behind r2.
    columns = panda(tied, maxdepth="1", children="2", axis="1")
    assert columns["nodes"] == [node("C", 1, ("r3", 5), ("r1", 3)), node("B", 1, ("r2", 3), ("r1", 2))]


def test_pandasubset_rows_and_columns_with_the_same_name_are_different_nodes(tmp_path: Path) -> None:
    path = tmp_path / "square.parquet"
    table_store.write_table(pa.table({"node": ["a", "b"], "a": [0.0, 0.8], "b": [0.8, 0.0]}), path)
    result = panda(path, maxdepth="5", children="2", axis="0", initial_nodes="a")
    assert result["nodes"] == [
        node("a", 0, ("b", 0.8), ("a", 0.0)),
        node("b", 1, ("a", 0.8), ("b", 0.0)),
        node("a", 1, ("b", 0.8), ("a", 0.0)),
        node("b", 0, ("a", 0.8), ("b", 0.0)),
    ]


def test_pandasubset_renders_infinite_weights_like_cells(tmp_path: Path) -> None:
    path = tmp_path / "inf.parquet"
    table_store.write_table(pa.table({"g": ["x"], "p": [np.inf], "q": [1.0], "r": [2.0]}), path)
    result = panda(path, maxdepth="1", children="3", axis="0")
    assert result["nodes"] == [node("x", 0, ("p", "++inf++"), ("r", 2.0), ("q", 1.0))]


def _reference_walk(
    data: np.ndarray, rows: list[str], cols: list[str], axis: int, k: int, depth: int, start: list[str] | None
) -> list[dict]:
    """The walk's nodes, spelled out cell by cell in plain Python, to check the vectorised one."""
    names = [rows, cols]

    def weights(index: int, on: int) -> list[float]:
        return data[index, :].tolist() if on == 0 else data[:, index].tolist()

    def top(values: list[float]) -> list[int]:
        present = [(value, i) for i, value in enumerate(values) if not np.isnan(value)]
        return [i for _, i in sorted(present, key=lambda pair: (-pair[0], pair[1]))[:k]]

    if start is None:
        totals = [sum(v for v in weights(i, axis) if not np.isnan(v)) for i in range(len(names[axis]))]
        frontier = top(totals)
    else:
        frontier = [names[axis].index(name) for name in start]
    seen = [set(), set()]
    seen[axis].update(frontier)
    out = []
    for _ in range(depth):
        if not frontier:
            break
        following = []
        for index in frontier:
            values = weights(index, axis)
            chosen = top(values)
            out.append(node(names[axis][index], axis, *[(names[1 - axis][c], values[c]) for c in chosen]))
            for c in chosen:
                if c not in seen[1 - axis]:
                    seen[1 - axis].add(c)
                    following.append(c)
        frontier, axis = following, 1 - axis
    return out


def test_pandasubset_matches_a_cell_by_cell_walk_on_a_larger_matrix(tmp_path: Path) -> None:
    # Several row groups (1,000 rows each) and more columns than one column chunk, small integer
    # weights so that ties are everywhere, and some missing cells.
    rng = np.random.default_rng(7)
    data = rng.integers(0, 6, size=(2_300, 75)).astype(float)
    data[rng.uniform(size=data.shape) < 0.05] = np.nan
    rows = [f"G{i}" for i in range(data.shape[0])]
    cols = [f"TF{j}" for j in range(data.shape[1])]
    path = tmp_path / "big.parquet"
    table_store.write_table(pa.table({"gene": rows, **{c: data[:, j] for j, c in enumerate(cols)}}), path)

    cases = [
        (0, 3, 3, None),
        (1, 4, 4, None),
        (0, 2, 4, ["G2299", "G0", "G1500"]),
        (1, 3, 2, ["TF74", "TF3"]),
    ]
    for axis, k, depth, start in cases:
        params = {"maxdepth": str(depth), "children": str(k), "axis": str(axis)}
        if start is not None:
            params["initial_nodes"] = ",".join(start)
        result = panda(path, **params)
        assert result["initial_axis"] == axis
        assert result["nodes"] == _reference_walk(data, rows, cols, axis, k, depth, start), params


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"children": "2", "axis": "0"},
            "The 'maxdepth' parameter is required for the pandasubset transform.",
        ),
        ({"maxdepth": "", "children": "2", "axis": "0"}, "The 'maxdepth' parameter is required"),
        (
            {"maxdepth": "0", "children": "2", "axis": "0"},
            "The 'maxdepth' parameter must be a positive integer; \"0\" is not.",
        ),
        (
            {"maxdepth": "-2", "children": "2", "axis": "0"},
            "The 'maxdepth' parameter must be a positive integer; \"-2\" is not.",
        ),
        (
            {"maxdepth": "two", "children": "2", "axis": "0"},
            "The 'maxdepth' parameter must be a positive integer; \"two\" is not.",
        ),
        (
            {"maxdepth": "11", "children": "2", "axis": "0"},
            "The 'maxdepth' parameter must be at most 10; got 11.",
        ),
        (
            {"maxdepth": "2", "axis": "0"},
            "The 'children' parameter is required for the pandasubset transform.",
        ),
        (
            {"maxdepth": "2", "children": "0", "axis": "0"},
            "The 'children' parameter must be a positive integer; \"0\" is not.",
        ),
        (
            {"maxdepth": "2", "children": "-1", "axis": "0"},
            "The 'children' parameter must be a positive integer; \"-1\" is not.",
        ),
        (
            {"maxdepth": "2", "children": "2.5", "axis": "0"},
            "The 'children' parameter must be a positive integer; \"2.5\" is not.",
        ),
        (
            {"maxdepth": "2", "children": "2"},
            "The 'axis' parameter is required for the pandasubset transform.",
        ),
        (
            {"maxdepth": "2", "children": "2", "axis": "2"},
            "The 'axis' parameter must be 0 (start from the rows, e.g. genes) or 1 (start from the "
            'columns, e.g. transcription factors); "2" is neither.',
        ),
        ({"maxdepth": "2", "children": "2", "axis": "-1"}, "The 'axis' parameter must be 0 "),
        ({"maxdepth": "2", "children": "2", "axis": "rows"}, "The 'axis' parameter must be 0 "),
        (
            {
                "maxdepth": "2",
                "children": "2",
                "axis": "0",
                "initial_nodes": ",".join(f"n{i}" for i in range(21)),
            },
            "The 'initial_nodes' parameter may name at most 20 nodes; it names 21.",
        ),
        (
            {"maxdepth": "2", "children": "2", "axis": "0", "initial_nodes": "g1,gX,T1"},
            "The 'initial_nodes' parameter names nodes that are not among the rows (axis=0) of this matrix: gX, T1.",
        ),
        (
            {"maxdepth": "2", "children": "2", "axis": "1", "initial_nodes": "g1"},
            "The 'initial_nodes' parameter names nodes that are not among the columns (axis=1) of this matrix: g1.",
        ),
    ],
)
def test_pandasubset_errors(network: Path, params: dict[str, str], message: str) -> None:
    assert panda_error(network, **params).startswith(message)


def test_pandasubset_twenty_initial_nodes_are_allowed(tmp_path: Path) -> None:
    path = tmp_path / "wide.parquet"
    table_store.write_table(pa.table({"g": [f"n{i}" for i in range(25)], "tf": np.arange(25.0)}), path)
    names = ",".join(f"n{i}" for i in range(20))
    result = panda(path, maxdepth="1", children="1", axis="0", initial_nodes=names)
    assert [next(iter(entry)) for entry in result["nodes"]] == [f"n{i}" for i in range(20)]


def test_pandasubset_refuses_too_large_a_network(network: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transforms, "PANDA_MAX_EDGES", 5)
    assert panda(network, maxdepth="1", children="2", axis="0")["nodes"] == ROWS_LAYER_1  # 4 edges
    assert panda_error(network, maxdepth="2", children="2", axis="0") == (
        "The network would have more than 5 edges; lower 'maxdepth' or 'children', "
        "or start from fewer 'initial_nodes'."
    )


@pytest.mark.parametrize("kind", ["feature", "annotation", "bed"])
def test_pandasubset_is_only_for_matrices(network: Path, kind: str) -> None:
    assert panda_error(network, kind=kind, maxdepth="1", children="2", axis="0") == (
        'The "pandasubset" transform is not available for this type of resource.'
    )


def test_pandasubset_needs_numbers(tmp_path: Path) -> None:
    path = tmp_path / "text.parquet"
    table_store.write_table(pa.table({"g": ["a"], "x": [1.0], "label": ["high"]}), path)
    assert panda_error(path, maxdepth="1", children="2", axis="0") == (
        "The pandasubset transform needs a matrix of numbers; the column 'label' is not numeric."
    )
