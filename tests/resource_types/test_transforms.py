"""Server-side transforms for the heatmap and volcano viewers (api-contract §2.3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.cluster.hierarchy import leaves_list, linkage

from mev.resource_types import table_store
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
            "heatmap-cluster, heatmap-reduce, volcano-subset.",
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
