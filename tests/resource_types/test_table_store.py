"""The Parquet copy written at validation: layout, metadata and row groups."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mev.resource_types.table_store import (
    METADATA_KEY,
    ROW_GROUP_SIZE,
    ROWNAME_COLUMN,
    TableStoreError,
    read_info,
    write_table,
)


def test_first_column_becomes_string_rownames_and_columns_keep_names_and_order(tmp_path: Path) -> None:
    table = pa.table({"gene": [1, 2], "z col": [1.5, None], "a:b,c.d": ["x", "y"], "é": [True, False]})
    path = tmp_path / "t.parquet"

    write_table(table, path)

    stored = pq.read_table(path)
    assert stored.column_names == [ROWNAME_COLUMN, "z col", "a:b,c.d", "é"]
    assert stored.schema.field(ROWNAME_COLUMN).type == pa.string()
    assert stored.column(ROWNAME_COLUMN).to_pylist() == ["1", "2"]
    assert stored.column("z col").to_pylist() == [1.5, None]


def test_metadata_records_kind_and_row_count(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    write_table(pa.table({"__rowname__": ["a", "b", "c"], "x": [1, 2, 3]}), path, kind="annotation")

    file = pq.ParquetFile(path)
    description = json.loads(file.schema_arrow.metadata[METADATA_KEY])
    assert description["kind"] == "annotation"
    assert description["n_rows"] == 3
    info = read_info(file)
    assert (info.kind, info.n_rows, info.columns) == ("annotation", 3, ("x",))


def test_row_groups_are_a_multiple_of_the_largest_client_page(tmp_path: Path) -> None:
    n = ROW_GROUP_SIZE * 2 + 7
    path = tmp_path / "t.parquet"
    write_table(pa.table({"g": [f"g{i}" for i in range(n)], "x": np.arange(n)}), path)

    file = pq.ParquetFile(path)
    assert ROW_GROUP_SIZE % 50 == 0
    assert [file.metadata.row_group(i).num_rows for i in range(file.num_row_groups)] == [
        ROW_GROUP_SIZE,
        ROW_GROUP_SIZE,
        7,
    ]


def test_bed_rows_are_labelled_by_zero_based_line_index(tmp_path: Path) -> None:
    path = tmp_path / "b.parquet"
    write_table(pa.table({"chrom": ["chr1", "chr2"], "start": [1, 5], "stop": [3, 9]}), path, kind="bed")

    stored = pq.read_table(path)
    assert stored.column_names == [ROWNAME_COLUMN, "chrom", "start", "stop"]
    assert stored.column(ROWNAME_COLUMN).to_pylist() == ["0", "1"]
    assert read_info(pq.ParquetFile(path)).kind == "bed"


def test_rewrite_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    write_table(pa.table({"g": ["a"], "x": [1]}), path)
    write_table(pa.table({"g": ["a", "b"], "x": [1, 2]}), path)

    assert pq.read_table(path).num_rows == 2
    assert [p.name for p in tmp_path.glob("*t.parquet*")] == ["t.parquet"]


@pytest.mark.parametrize(
    ("table", "kind"),
    [
        (pa.table({"g": ["a"], "x": [1]}), "spreadsheet"),
        (pa.table({"g": ["a"], "__rowname__": [1]}), "matrix"),
    ],
)
def test_rejects_unknown_kind_and_reserved_column(tmp_path: Path, table: pa.Table, kind: str) -> None:
    with pytest.raises(TableStoreError):
        write_table(table, tmp_path / "t.parquet", kind=kind)
