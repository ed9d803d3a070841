"""The contents query language on stored tables (api-contract §2.3)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pyarrow as pa
import pytest
from django.test import override_settings

from mev.resource_types.query import (
    MAX_PAGE_SIZE,
    PARSE_ERROR_PREFIX,
    PageNotFound,
    QueryError,
    preview_table,
    query_table,
)
from mev.resource_types.table_store import ROW_GROUP_SIZE, write_table

BASE_URL = "http://testserver/api/resources/7/contents/"
NAN = float("nan")
INF = float("inf")


@pytest.fixture(autouse=True, params=[64, 0], ids=["cache", "no cache"])
def contents_cache(request: pytest.FixtureRequest) -> Any:
    """Every test twice: pages cut from columns kept in the cache, and read from the files."""
    with override_settings(MEV_CONTENTS_CACHE_MB=request.param):
        yield request.param


@pytest.fixture
def feature_table(tmp_path: Path) -> Path:
    """A DGE-like feature table with a text column, missing values and infinities."""
    path = tmp_path / "ft.parquet"
    write_table(
        pa.table(
            {
                "gene": ["TP53", "MYC", "BRCA1", "tp53b", "EGFR", "KRAS"],
                "log2FoldChange": [2.5, -3.0, 0.5, NAN, -0.1, INF],
                "padj": [0.01, 0.04, 0.5, None, 0.001, 0.2],
                "count": [10, 20, 30, 40, 50, 60],
                "symbol": ["a:b", "Myc", None, "x", "egfr", "MYC"],
            }
        ),
        path,
        kind="feature",
    )
    return path


@pytest.fixture
def matrix(tmp_path: Path) -> Path:
    path = tmp_path / "mtx.parquet"
    write_table(
        pa.table(
            {
                "gene": ["g1", "g2", "g3", "g4"],
                "s1": [1.0, 10.0, NAN, 4.0],
                "s2": [3.0, 20.0, 6.0, 4.0],
                "s3": [5.0, 30.0, NAN, 4.0],
            }
        ),
        path,
        kind="matrix",
    )
    return path


def run(path: Path, params: list[tuple[str, str]], kind: str = "feature") -> Any:
    return query_table(path, params, kind=kind, base_url=BASE_URL)


def rownames(result: Any) -> list[str]:
    records = result["results"] if isinstance(result, dict) else result
    return [r["rowname"] for r in records]


# --------------------------------------------------------------------------- shape and rendering


def test_without_page_returns_every_record_with_every_column(feature_table: Path) -> None:
    result = run(feature_table, [])

    assert isinstance(result, list)
    assert rownames(result) == ["TP53", "MYC", "BRCA1", "tp53b", "EGFR", "KRAS"]
    assert all(list(r["values"]) == ["log2FoldChange", "padj", "count", "symbol"] for r in result)
    assert result[0] == {
        "rowname": "TP53",
        "values": {"log2FoldChange": 2.5, "padj": 0.01, "count": 10, "symbol": "a:b"},
    }


def test_nan_and_infinities_are_rendered_for_json(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    write_table(
        pa.table({"g": ["a", "b", "c", "d"], "x": [NAN, INF, -INF, None], "n": [1, None, 3, 4]}), path
    )

    values = [r["values"] for r in run(path, [], kind="matrix")]

    assert values == [
        {"x": None, "n": 1},
        {"x": "++inf++", "n": None},
        {"x": "--inf--", "n": 3},
        {"x": None, "n": 4},
    ]


def test_preview_holds_the_first_rows_with_every_column(feature_table: Path) -> None:
    preview = preview_table(feature_table, n=2)

    assert rownames(preview) == ["TP53", "MYC"]
    assert set(preview[0]["values"]) == {"log2FoldChange", "padj", "count", "symbol"}
    assert rownames(preview_table(feature_table)) == rownames(run(feature_table, []))


def test_bed_files_page_and_filter_on_their_fixed_columns(tmp_path: Path) -> None:
    path = tmp_path / "bed.parquet"
    write_table(
        pa.table(
            {
                "chrom": ["chr1", "chr2", "chr1"],
                "start": [100, 5, 50],
                "stop": [200, 10, 60],
                "name": ["p1", "p2", "p3"],
                "score": [0, 500, 1000],
                "strand": ["+", "-", "."],
            }
        ),
        path,
        kind="bed",
    )

    result = run(path, [("chrom", "chr1"), ("sort_vals", "[asc]:start"), ("page", "1")], kind="bed")

    assert result["count"] == 2
    assert result["results"][0] == {
        "rowname": "2",
        "values": {"chrom": "chr1", "start": 50, "stop": 60, "name": "p3", "score": 1000, "strand": "."},
    }


# --------------------------------------------------------------------------- operators


@pytest.mark.parametrize(
    ("param", "expected"),
    [
        (("padj", "[lt]:0.04"), ["TP53", "EGFR"]),
        (("padj", "[lte]:0.04"), ["TP53", "MYC", "EGFR"]),
        (("padj", "[gt]:0.04"), ["BRCA1", "KRAS"]),
        (("padj", "[gte]:0.2"), ["BRCA1", "KRAS"]),
        (("log2FoldChange", "[absgt]:2"), ["TP53", "MYC", "KRAS"]),
        (("log2FoldChange", "[abslt]:0.5"), ["EGFR"]),
        (("log2FoldChange", "[gt]:1e300"), ["KRAS"]),
        (("count", "[eq]:30"), ["BRCA1"]),
        (("count", "=:30"), ["BRCA1"]),
        (("count", "==:30.0"), ["BRCA1"]),
        (("count", "30"), ["BRCA1"]),
        (("count", "[in]:10, 50 ,99"), ["TP53", "EGFR"]),
        (("symbol", "Myc"), ["MYC"]),
        (("symbol", "[eq]:myc"), []),
        (("symbol", "[case-ins-eq]:myc"), ["MYC", "KRAS"]),
        (("symbol", "[startswith]:EG"), ["EGFR"]),
        (("symbol", "[in]:x, egfr"), ["tp53b", "EGFR"]),
        (("symbol", "[startswith]:a:"), ["TP53"]),
        (("symbol", "a:b"), ["TP53"]),
        (("symbol", "[eq]:a:b"), ["TP53"]),
    ],
)
def test_every_operator(feature_table: Path, param: tuple[str, str], expected: list[str]) -> None:
    assert rownames(run(feature_table, [param])) == expected


def test_missing_and_nan_cells_never_match_a_comparison(feature_table: Path) -> None:
    assert "tp53b" not in rownames(run(feature_table, [("padj", "[gte]:0")]))
    assert "tp53b" not in rownames(run(feature_table, [("log2FoldChange", "[abslt]:1e308")]))


def test_text_cells_that_are_not_numbers_never_match_a_numeric_comparison(tmp_path: Path) -> None:
    path = tmp_path / "ann.parquet"
    write_table(
        pa.table({"s": ["A", "B", "C", "D"], "age": ["43", "unknown", "7.5", None]}), path, kind="annotation"
    )

    assert rownames(run(path, [("age", "[gt]:5")], kind="annotation")) == ["A", "C"]
    assert rownames(run(path, [("age", "43")], kind="annotation")) == ["A"]


def test_filters_combine_with_and(feature_table: Path) -> None:
    result = run(feature_table, [("padj", "[lt]:0.05"), ("log2FoldChange", "[absgt]:2.0")])
    assert rownames(result) == ["TP53", "MYC"]


def test_two_filters_on_one_column(feature_table: Path) -> None:
    assert rownames(run(feature_table, [("count", "[gt]:15"), ("count", "[lt]:45")])) == [
        "MYC",
        "BRCA1",
        "tp53b",
    ]


@pytest.mark.parametrize(
    ("param", "expected"),
    [
        (("__rowname__", "[in]:MYC,EGFR, nope"), ["MYC", "EGFR"]),
        (("__rowname__", "[eq]:MYC"), ["MYC"]),
        (("__rowname__", "[case-ins-eq]:tp53"), ["TP53"]),
        (("__rowname__", "[startswith]:tp53"), ["TP53", "tp53b"]),
    ],
)
def test_rowname_filters(feature_table: Path, param: tuple[str, str], expected: list[str]) -> None:
    assert rownames(run(feature_table, [param])) == expected


def test_unknown_parameters_are_ignored(feature_table: Path) -> None:
    result = run(feature_table, [("_", "1711111111"), ("transform-name", "x"), ("padj", "[lt]:0.02")])
    assert rownames(result) == ["TP53", "EGFR"]


def test_column_names_with_special_characters(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    write_table(pa.table({"g": ["a", "b"], "sample 1:x,y.z": [1, 2]}), path)

    result = run(path, [("sample 1:x,y.z", "[gt]:1"), ("sort_vals", "[desc]:sample 1:x,y.z")], kind="matrix")

    assert result == [{"rowname": "b", "values": {"sample 1:x,y.z": 2}}]


# --------------------------------------------------------------------------- projection


def test_colname_projection_keeps_only_listed_columns(feature_table: Path) -> None:
    result = run(feature_table, [("__colname__", "[in]:symbol, padj,unknown"), ("padj", "[lt]:0.02")])
    assert result == [
        {"rowname": "TP53", "values": {"symbol": "a:b", "padj": 0.01}},
        {"rowname": "EGFR", "values": {"symbol": "egfr", "padj": 0.001}},
    ]


def test_empty_colname_projection_answers_with_empty_values(feature_table: Path) -> None:
    result = run(feature_table, [("__colname__", "[in]:"), ("page", "1"), ("page_size", "2")])
    assert result["results"] == [{"rowname": "TP53", "values": {}}, {"rowname": "MYC", "values": {}}]


# --------------------------------------------------------------------------- sorting


def test_sort_ascending_and_descending_put_missing_values_last(feature_table: Path) -> None:
    assert rownames(run(feature_table, [("sort_vals", "[asc]:padj")])) == [
        "EGFR",
        "TP53",
        "MYC",
        "KRAS",
        "BRCA1",
        "tp53b",
    ]
    assert rownames(run(feature_table, [("sort_vals", "[desc]:padj")])) == [
        "BRCA1",
        "KRAS",
        "MYC",
        "TP53",
        "EGFR",
        "tp53b",
    ]
    # NaN is missing too, +inf is a value
    assert rownames(run(feature_table, [("sort_vals", "[desc]:log2FoldChange")]))[0] == "KRAS"
    assert rownames(run(feature_table, [("sort_vals", "[desc]:log2FoldChange")]))[-1] == "tp53b"
    # text sorts by code point: upper case first
    assert rownames(run(feature_table, [("sort_vals", "[asc]:symbol")])) == [
        "KRAS",
        "MYC",
        "TP53",
        "EGFR",
        "tp53b",
        "BRCA1",
    ]


def test_multi_key_sort_is_stable_with_missing_values(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    write_table(
        pa.table(
            {
                "g": ["a", "b", "c", "d", "e", "f"],
                "grp": ["x", None, "y", "x", "y", "x"],
                "v": [2.0, 1.0, None, 2.0, 5.0, 9.0],
            }
        ),
        path,
        kind="annotation",
    )

    result = run(path, [("sort_vals", "[asc]:grp,[desc]:v")], kind="annotation")
    assert rownames(result) == ["f", "a", "d", "e", "c", "b"]
    result = run(path, [("sort_vals", "[desc]:grp"), ("sort_vals", "[asc]:v")], kind="annotation")
    assert rownames(result) == ["e", "c", "a", "d", "f", "b"]


def test_sort_by_rowname(feature_table: Path) -> None:
    assert rownames(run(feature_table, [("sort_vals", "[asc]:__rowname__")]))[:2] == ["BRCA1", "EGFR"]


# --------------------------------------------------------------------------- row means


def test_incl_rowmeans_adds_a_sibling_key(matrix: Path) -> None:
    result = run(matrix, [("__incl_rowmeans__", "")], kind="matrix")
    assert [r["__rowmean__"] for r in result] == [3.0, 20.0, 6.0, 4.0]
    assert "__rowmean__" not in result[0]["values"]


def test_rowmean_filter_and_sort(matrix: Path) -> None:
    result = run(
        matrix,
        [("__rowmean__", "[gte]:4"), ("sort_vals", "[desc]:__rowmean__"), ("page", "1"), ("page_size", "2")],
        kind="matrix",
    )
    assert result["count"] == 3
    assert [(r["rowname"], r["__rowmean__"]) for r in result["results"]] == [("g2", 20.0), ("g3", 6.0)]


def test_rowmean_is_computed_after_column_filters(matrix: Path) -> None:
    result = run(matrix, [("s1", "[lt]:5"), ("__rowmean__", "[lt]:3.5")], kind="matrix")
    assert result == [{"rowname": "g1", "values": {"s1": 1.0, "s2": 3.0, "s3": 5.0}, "__rowmean__": 3.0}]


def test_rowmeans_span_row_groups_and_ignore_projection(tmp_path: Path) -> None:
    n = ROW_GROUP_SIZE + 120
    rng = np.random.default_rng(3)
    data = rng.normal(size=(n, 4))
    path = tmp_path / "big.parquet"
    write_table(pa.table({"g": [f"g{i}" for i in range(n)], **{f"s{j}": data[:, j] for j in range(4)}}), path)

    result = run(
        path,
        [("sort_vals", "[asc]:__rowmean__"), ("__incl_rowmeans__", "1"), ("__colname__", "[in]:s0")],
        kind="matrix",
    )

    means = data.mean(axis=1)
    assert rownames(result) == [f"g{i}" for i in np.argsort(means, kind="stable")]
    assert [r["__rowmean__"] for r in result] == pytest.approx(np.sort(means).tolist())
    assert set(result[0]["values"]) == {"s0"}


# --------------------------------------------------------------------------- paging


def test_page_shape_and_links(feature_table: Path) -> None:
    params = [("padj", "[lt]:1"), ("page", "2"), ("page_size", "2"), ("_", "1")]
    result = run(feature_table, params)

    assert result["count"] == 5
    assert rownames(result) == ["BRCA1", "EGFR"]
    for link, page in (("next", "3"), ("previous", "1")):
        parts = urlsplit(result[link])
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == BASE_URL
        assert parse_qsl(parts.query) == [("padj", "[lt]:1"), ("page", page), ("page_size", "2"), ("_", "1")]


def test_first_and_last_pages_have_no_previous_or_next(feature_table: Path) -> None:
    first = run(feature_table, [("page", "1"), ("page_size", "4")])
    last = run(feature_table, [("page", "last"), ("page_size", "4")])

    assert first["previous"] is None and first["next"] is not None
    assert last["next"] is None and "page=1" in last["previous"]
    assert rownames(last) == ["EGFR", "KRAS"]


def test_default_page_size_and_cap(tmp_path: Path) -> None:
    n = MAX_PAGE_SIZE + 5
    path = tmp_path / "t.parquet"
    write_table(pa.table({"g": [f"g{i}" for i in range(n)], "x": np.arange(n)}), path)

    assert len(run(path, [("page", "1")], kind="matrix")["results"]) == 50
    capped = run(path, [("page", "1"), ("page_size", "1000000")], kind="matrix")
    assert len(capped["results"]) == MAX_PAGE_SIZE
    assert rownames(run(path, [("page", "2"), ("page_size", "1000000")], kind="matrix")) == [
        f"g{i}" for i in range(MAX_PAGE_SIZE, n)
    ]
    assert len(run(path, [("page", "1"), ("page_size", "zero")], kind="matrix")["results"]) == 50


def test_wide_tables_get_smaller_pages_and_unpaged_requests_are_bounded(tmp_path: Path, monkeypatch) -> None:
    """A response carries at most MAX_PAGE_CELLS cells per page and MAX_UNPAGED_CELLS without `page`
    (limits lowered here so a small table shows it)."""
    from mev.resource_types import query

    monkeypatch.setattr(query, "MAX_PAGE_CELLS", 40)
    monkeypatch.setattr(query, "MAX_UNPAGED_CELLS", 100)
    n = 30
    path = tmp_path / "wide.parquet"
    write_table(pa.table({"g": [f"g{i}" for i in range(n)], **{f"s{j}": np.arange(n) + j for j in range(4)}}), path)

    page = run(path, [("page", "1"), ("page_size", "50")], kind="matrix")
    assert rownames(page) == [f"g{i}" for i in range(10)]  # 40 cells / 4 columns
    assert page["count"] == n and "page_size=50" in page["next"]  # the link keeps what was asked
    assert rownames(run(path, [("page", "3"), ("page_size", "50")], kind="matrix")) == [
        f"g{i}" for i in range(20, 30)
    ]
    assert len(run(path, [("s0", "[lt]:25")], kind="matrix")) == 25  # 100 cells: allowed unpaged
    with pytest.raises(QueryError) as refused:
        run(path, [], kind="matrix")
    assert "30 rows of 4 columns" in refused.value.message and "page=1" in refused.value.message


def test_page_spanning_row_groups_after_sort(tmp_path: Path) -> None:
    n = ROW_GROUP_SIZE * 3
    path = tmp_path / "t.parquet"
    values = np.arange(n)[::-1] % 1000  # many ties, spread over all groups
    write_table(pa.table({"g": [f"g{i}" for i in range(n)], "x": values}), path)

    result = run(path, [("sort_vals", "[asc]:x"), ("page", "2"), ("page_size", "5")], kind="matrix")

    expected = np.argsort(values, kind="stable")[5:10]
    assert rownames(result) == [f"g{i}" for i in expected]


@pytest.mark.parametrize("page", ["0", "4", "-1", "abc", ""])
def test_out_of_range_page(feature_table: Path, page: str) -> None:
    with pytest.raises(PageNotFound) as caught:
        run(feature_table, [("page", page), ("page_size", "2")])
    assert caught.value.detail == "Invalid page."


def test_page_one_of_an_empty_result_is_empty_not_missing(feature_table: Path) -> None:
    result = run(feature_table, [("padj", "[lt]:0"), ("page", "1")])
    assert result == {"count": 0, "next": None, "previous": None, "results": []}


# --------------------------------------------------------------------------- errors


def error_detail(path: Path, params: list[tuple[str, str]], kind: str = "feature") -> str:
    with pytest.raises(QueryError) as caught:
        run(path, params, kind=kind)
    message = caught.value.message
    assert message.startswith("There was a problem when parsing the request: ")
    assert str(caught.value) == message
    return message[len(PARSE_ERROR_PREFIX) :]


def test_unknown_operator_lists_the_valid_ones(feature_table: Path) -> None:
    detail = error_detail(feature_table, [("padj", "[foo]:1")])
    assert '"[foo]"' in detail
    for op in (
        "[lt]",
        "[lte]",
        "[gt]",
        "[gte]",
        "[absgt]",
        "[abslt]",
        "[eq]",
        "[case-ins-eq]",
        "[startswith]",
        "[in]",
    ):
        assert op in detail


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([("padj", "[lt]0.1")], "malformed"),
        ([("__rowname__", "TP53")], "needs an operator"),
        ([("sort_vals", "padj")], "malformed"),
        ([("sort_vals", "[up]:padj")], "must be [asc] or [desc]"),
        ([("sort_vals", "[asc]:nope")], 'Cannot sort on "nope"'),
        ([("sort_vals", "[asc]:__rowmean__")], "requires __incl_rowmeans__"),
        ([("padj", "[lt]:abc")], 'Could not parse "abc" as a number.'),
        ([("count", "abc")], 'Could not parse "abc" as a number.'),
        ([("count", "[in]:1,x")], 'Could not parse "x" as a number.'),
        ([("__rowmean__", "[gt]:1")], "only available for numeric matrices"),
        ([("__incl_rowmeans__", "")], "only available for numeric matrices"),
        ([("__colname__", "padj")], "[in]"),
    ],
)
def test_parse_errors(feature_table: Path, params: list[tuple[str, str]], expected: str) -> None:
    assert expected in error_detail(feature_table, params)


def test_non_numeric_rowmean_value(matrix: Path) -> None:
    assert error_detail(matrix, [("__rowmean__", "[gte]:high")], kind="matrix") == (
        'Could not parse "high" as a number.'
    )


def test_sort_by_rowmean_is_allowed_with_a_rowmean_filter(matrix: Path) -> None:
    result = run(matrix, [("sort_vals", "[asc]:__rowmean__"), ("__rowmean__", "[gt]:0")], kind="matrix")
    assert rownames(result) == ["g1", "g4", "g3", "g2"]
    assert not any(math.isnan(r["__rowmean__"]) for r in result)


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("page", ["1", "3", "last"])
def test_partial_sort_of_a_page_matches_a_full_stable_sort(
    tmp_path: Path, descending: bool, page: str
) -> None:
    n = 3000
    rng = np.random.default_rng(8)
    values = rng.integers(0, 40, n).astype(float)
    values[rng.uniform(size=n) < 0.2] = np.nan
    values[:3] = [INF, -INF, INF]
    path = tmp_path / "t.parquet"
    write_table(pa.table({"g": [f"g{i}" for i in range(n)], "x": values}), path)

    order = "[desc]" if descending else "[asc]"
    result = run(path, [("sort_vals", f"{order}:x"), ("page", page), ("page_size", "25")], kind="matrix")

    keyed = np.where(np.isnan(values), np.inf, -values if descending else values)
    present = np.argsort(keyed, kind="stable")
    present = present[~np.isnan(values[present])]
    expected = np.concatenate([present, np.nonzero(np.isnan(values))[0]])
    number = math.ceil(n / 25) if page == "last" else int(page)
    assert rownames(result) == [f"g{i}" for i in expected[(number - 1) * 25 : number * 25]]


def test_a_rewritten_table_is_read_afresh(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    write_table(pa.table({"g": ["a", "b"], "x": [1, 2]}), path)
    assert rownames(run(path, [], kind="matrix")) == ["a", "b"]

    write_table(pa.table({"g": ["c", "d", "e"], "y": [1, 2, 3]}), path)

    assert run(path, [("y", "[gt]:2")], kind="matrix") == [{"rowname": "e", "values": {"y": 3}}]


@pytest.mark.parametrize("density", [0.0, 0.0005, 0.05, 0.6, 1.0])
@pytest.mark.parametrize("wanted", [0, 1, 50, 4097, 30_000, 100_000])
def test_ordered_head_lists_the_first_matches_in_order(density, wanted) -> None:
    """Filtered pages list matches only up to the page's end, across chunks, in row order or a sort's."""
    from mev.resource_types.query import _ordered_head

    rng = np.random.default_rng(7)
    mask = rng.random(50_000) < density
    for order in (None, rng.permutation(50_000)):
        everything = np.flatnonzero(mask) if order is None else order[mask[order]]
        head = _ordered_head(order, mask, wanted)
        assert len(head) >= min(wanted, len(everything))
        assert np.array_equal(head, everything[: len(head)])
