"""Pages of numeric matrices from their row file, and tables stored before row files existed.

Every page has three possible sources (columns kept in the cache, the row file, the Parquet row
groups); the answers must not depend on which one served them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.test import override_settings

from mev.resource_types import table_store
from mev.resource_types.query import StoredTable, parse_query, query_table, select_rows
from mev.resource_types.table_store import ROWNAME_COLUMN, derived_paths, rows_path_for, write_table

BASE_URL = "http://testserver/api/resources/7/contents/"
NAN, INF = float("nan"), float("inf")

QUERIES: list[list[tuple[str, str]]] = [
    [],
    [("page", "1"), ("page_size", "7")],
    [("page", "3"), ("page_size", "7")],
    [("page", "last"), ("page_size", "7")],
    [("sort_vals", "[asc]:b"), ("page", "1"), ("page_size", "10")],
    [("sort_vals", "[desc]:b"), ("page", "2"), ("page_size", "10")],
    [("sort_vals", "[asc]:a,[desc]:c"), ("page", "2"), ("page_size", "5")],
    [("a", "[gte]:3"), ("page", "1"), ("page_size", "6")],
    [("a", "[gte]:3"), ("sort_vals", "[desc]:c"), ("page", "2"), ("page_size", "4")],
    [("__incl_rowmeans__", ""), ("page", "2"), ("page_size", "9")],
    [("__rowmean__", "[gte]:2"), ("sort_vals", "[desc]:__rowmean__"), ("page", "1"), ("page_size", "8")],
    [("b", "[lt]:5"), ("__rowmean__", "[lt]:4"), ("sort_vals", "[asc]:__rowmean__")],
    [("__rowname__", "[in]:r3,r17,r29,r2"), ("__incl_rowmeans__", "")],
    [("__colname__", "[in]:c,a"), ("sort_vals", "[asc]:c"), ("page", "1"), ("page_size", "6")],
]


def _matrices() -> dict[str, pa.Table]:
    rng = np.random.default_rng(3)
    n = 37
    rows = [f"r{i}" for i in range(n)]
    small = {name: pa.array(rng.integers(0, 9, n)) for name in "abc"}
    floats = rng.integers(-4, 9, (3, n)).astype(float) / 2
    floats[0, ::5], floats[1, 3] = NAN, INF
    floats[2, 7] = -INF
    with_nulls = rng.integers(0, 9, n).tolist()
    with_nulls[4] = None
    return {
        "uint8": pa.table({"g": rows, **small}),
        "int16": pa.table({"g": rows, "a": rng.integers(-300, 300, n), "b": rng.integers(0, 9, n),
                           "c": rng.integers(0, 9, n)}),
        "uint32": pa.table({"g": rows, "a": rng.integers(0, 9, n), "b": rng.integers(0, 2**31, n),
                            "c": rng.integers(0, 9, n)}),
        "float64": pa.table({"g": rows, "a": floats[0], "b": floats[1], "c": floats[2]}),
        # an integer column with a missing cell and a float column share float64 rows
        "mixed": pa.table({"g": rows, "a": pa.array(with_nulls, type=pa.int64()), "b": floats[1],
                           "c": rng.integers(0, 9, n)}),
        "all missing column": pa.table({"g": rows, "a": small["a"], "b": floats[1],
                                        "c": pa.nulls(n, type=pa.null())}),
    }


def _answers(path: Path, *, rows_path: Path | None = None) -> list[Any]:
    return [query_table(path, q, kind="matrix", base_url=BASE_URL, rows_path=rows_path) for q in QUERIES]


@pytest.mark.parametrize("name", list(_matrices()))
def test_row_file_cached_columns_and_row_groups_agree(tmp_path: Path, name: str, monkeypatch) -> None:
    monkeypatch.setattr(table_store, "ROWS_BATCH_CELLS", 3 * 4)  # 4 rows per batch: pages span batches
    monkeypatch.setattr(table_store, "MATRIX_GROUP_CELLS", 3 * 1)  # -> 1,000-row groups (the minimum)
    path = tmp_path / "m.parquet"
    write_table(_matrices()[name], path, kind="matrix")
    assert set(derived_paths(path)) == {"table_rows_file"}

    with override_settings(MEV_CONTENTS_CACHE_MB=64):
        cached = _answers(path)
        again = _answers(path)
    with override_settings(MEV_CONTENTS_CACHE_MB=0):
        from_rows = _answers(path)
        rows_path_for(path).rename(tmp_path / "elsewhere.arrow")
        from_groups = _answers(path)
        from_named_rows = _answers(path, rows_path=tmp_path / "elsewhere.arrow")

    assert cached == again == from_rows == from_groups == from_named_rows


def test_rendering_from_the_row_file(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    write_table(_matrices()["mixed"], path, kind="matrix")
    with override_settings(MEV_CONTENTS_CACHE_MB=0):
        records = query_table(path, [("__incl_rowmeans__", "")], kind="matrix", base_url=BASE_URL)
        with StoredTable(path) as table:
            assert table.row_file() is not None and not table.row_file().is_integer

    source = _matrices()["mixed"]
    for i, record in enumerate(records):
        a, b, c = (source.column(x)[i].as_py() for x in "abc")
        assert record["rowname"] == f"r{i}"
        rendered_b = "++inf++" if b == INF else (None if b != b else b)
        assert record["values"] == {"a": a, "b": rendered_b, "c": c}
        assert type(record["values"]["c"]) is int and (a is None or type(record["values"]["a"]) is int)
        present = [float(v) for v in (a, b, c) if v is not None and v == v]
        expected_mean = sum(present) / len(present)
        assert record["__rowmean__"] == ("++inf++" if math.isinf(expected_mean) else pytest.approx(expected_mean))


def test_row_values_are_stored_in_the_narrowest_type(tmp_path: Path) -> None:
    expected = {"uint8": pa.uint8(), "int16": pa.int16(), "uint32": pa.uint32(), "float64": pa.float64(),
                "mixed": pa.float64(), "all missing column": pa.float64()}
    for name, table in _matrices().items():
        path = tmp_path / f"{name}.parquet"
        write_table(table, path, kind="matrix")
        with pa.ipc.open_file(rows_path_for(path)) as reader:
            assert reader.schema.field("__row__").type.value_type == expected[name], name


def test_matrices_with_text_or_huge_mixed_integers_have_no_row_file(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    write_table(pa.table({"g": ["a", "b"], "x": [1, 2]}), path, kind="matrix")
    assert derived_paths(path)
    write_table(pa.table({"g": ["a", "b"], "x": [1, 2], "t": ["u", "v"]}), path, kind="matrix")
    assert derived_paths(path) == {}  # the stale row file of the first write is gone
    assert table_store.read_info(pq.ParquetFile(path)).rows_file_id is None

    write_table(pa.table({"g": ["a", "b"], "x": [2**60, None], "y": [0.5, 1.0]}), path, kind="matrix")
    assert derived_paths(path) == {}
    assert query_table(path, [], kind="matrix", base_url=BASE_URL)[0]["values"] == {"x": 2**60, "y": 0.5}


def test_a_row_file_of_another_table_is_ignored(tmp_path: Path, caplog) -> None:
    first, second = tmp_path / "first.parquet", tmp_path / "second.parquet"
    write_table(pa.table({"g": ["a", "b"], "x": [1, 2]}), first, kind="matrix")
    write_table(pa.table({"g": ["c", "d"], "x": [3, 4]}), second, kind="matrix")

    with override_settings(MEV_CONTENTS_CACHE_MB=0):
        result = query_table(first, [], kind="matrix", base_url=BASE_URL, rows_path=rows_path_for(second))

    assert [r["rowname"] for r in result] == ["a", "b"]
    assert "is not the row file of this table" in caplog.text


def test_page_size_ten_thousand_reads_one_run_of_rows(tmp_path: Path) -> None:
    n = 25_000
    path = tmp_path / "m.parquet"
    write_table(pa.table({"g": [f"r{i}" for i in range(n)], "a": np.arange(n), "b": np.arange(n) % 7}), path,
                kind="matrix")
    with override_settings(MEV_CONTENTS_CACHE_MB=0):
        page = query_table(path, [("page", "2"), ("page_size", "10000")], kind="matrix", base_url=BASE_URL)
    assert page["count"] == n and len(page["results"]) == 10_000
    assert page["results"][0] == {"rowname": "r10000", "values": {"a": 10000, "b": 10000 % 7}}
    assert page["results"][-1]["rowname"] == "r19999"


def test_select_rows_returns_every_matching_row_in_order(tmp_path: Path) -> None:
    # The transforms take every row from select_rows, never only a page's worth.
    n = 9000
    path = tmp_path / "m.parquet"
    values = (np.arange(n) * 7919) % 1000
    write_table(pa.table({"g": [f"r{i}" for i in range(n)], "a": values}), path, kind="matrix")
    for budget in (0, 64):
        with override_settings(MEV_CONTENTS_CACHE_MB=budget), StoredTable(path) as table:
            plan = parse_query([("a", "[lt]:500"), ("sort_vals", "[desc]:a")], is_column=table.is_column,
                               rowmeans_allowed=True)
            rows, means = select_rows(table, plan)
        expected = np.nonzero(values < 500)[0]
        expected = expected[np.argsort(-values[expected], kind="stable")]
        assert rows.tolist() == expected.tolist() and means is None


# --------------------------------------------------------------------------- stored before this format


def _write_format_1(table: pa.Table, path: Path, kind: str) -> None:
    """A Parquet copy as the first table_store wrote it: 1,000-row groups, text kept as written."""
    stored = table.rename_columns([ROWNAME_COLUMN, *table.column_names[1:]])
    description = {"format_version": 1, "kind": kind, "n_rows": stored.num_rows, "row_group_size": 1000}
    stored = stored.replace_schema_metadata({b"webmev.table": json.dumps(description).encode()})
    pq.write_table(stored, path, row_group_size=1000)


@pytest.mark.parametrize("budget", [0, 64])
def test_missing_text_of_old_tables_is_read_as_null(tmp_path: Path, budget: int) -> None:
    path = tmp_path / "ann.parquet"
    _write_format_1(pa.table({"s": ["S1", "S2", "S3", "NA"], "group": ["a", "NA", "", " b "],
                              "age": [1.5, None, 3.0, 4.0]}), path, "annotation")
    with override_settings(MEV_CONTENTS_CACHE_MB=budget):
        records = query_table(path, [("sort_vals", "[asc]:group")], kind="annotation", base_url=BASE_URL)
        preview = query_table(path, [("group", "[eq]:NA")], kind="annotation", base_url=BASE_URL)

    assert [(r["rowname"], r["values"]["group"]) for r in records] == [
        ("NA", " b "), ("S1", "a"), ("S2", None), ("S3", None)  # a row may be called NA
    ]
    assert preview == []  # a missing cell matches nothing, "NA" included


def test_old_wide_matrices_are_still_read_from_their_row_groups(tmp_path: Path) -> None:
    n = 2600
    rng = np.random.default_rng(5)
    data = {f"s{j}": rng.integers(0, 50, n) for j in range(4)}
    old, new = tmp_path / "old.parquet", tmp_path / "new.parquet"
    source = pa.table({"g": [f"r{i}" for i in range(n)], **data})
    _write_format_1(source, old, "matrix")
    write_table(source, new, kind="matrix")
    queries = [
        [("sort_vals", "[desc]:s2"), ("page", "3")],
        [("s1", "[gt]:40"), ("__incl_rowmeans__", ""), ("page", "2"), ("page_size", "25")],
        [("__rowmean__", "[gte]:30"), ("sort_vals", "[desc]:__rowmean__"), ("page", "1")],
    ]
    for budget in (0, 64):
        with override_settings(MEV_CONTENTS_CACHE_MB=budget):
            for q in queries:
                assert query_table(old, q, kind="matrix", base_url=BASE_URL) == query_table(
                    new, q, kind="matrix", base_url=BASE_URL
                ), (budget, q)


def test_float_rows_reads_scattered_rows_as_numbers(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    write_table(_matrices()["mixed"], path, kind="matrix")
    with StoredTable(path) as table:
        labels, values = table.float_rows(np.array([9, 4, 3]), ["c", "a"])
    source = _matrices()["mixed"]
    assert labels == ["r9", "r4", "r3"]
    expected = [[source.column(c)[i].as_py() for c in "ca"] for i in (9, 4, 3)]
    assert values.dtype == np.float64
    assert np.array_equal(values, np.array(expected, dtype=float), equal_nan=True)  # r4's "a" is missing

    feature = tmp_path / "ft.parquet"
    write_table(_matrices()["mixed"], feature, kind="feature")
    with StoredTable(feature) as table:
        assert table.float_rows(np.array([1]), ["a"]) is None


@pytest.mark.parametrize("low", [0, -300])
def test_large_pages_of_small_integers_render_exact_ints(tmp_path: Path, low: int) -> None:
    n, width = 10_000, 12  # 120,000 cells: the shared int objects are used
    rng = np.random.default_rng(9)
    values = rng.integers(low, 30_000, (n, width))
    path = tmp_path / "m.parquet"
    write_table(pa.table({"g": [f"r{i}" for i in range(n)], **{f"c{j}": values[:, j] for j in range(width)}}),
                path, kind="matrix")
    with override_settings(MEV_CONTENTS_CACHE_MB=0):
        page = query_table(path, [("page", "1"), ("page_size", "10000")], kind="matrix", base_url=BASE_URL)
    cells = [[record["values"][f"c{j}"] for j in range(width)] for record in page["results"]]
    assert cells == values.tolist()
    assert all(type(v) is int for v in cells[17])
