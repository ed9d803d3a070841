"""The Parquet copy written at validation: layout, metadata and row groups."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mev.resource_types import table_store
from mev.resource_types.table_store import (
    FORMAT_VERSION,
    MATRIX_GROUP_CELLS,
    METADATA_KEY,
    ROW_GROUP_SIZE,
    ROWNAME_COLUMN,
    TableStoreError,
    derived_paths,
    read_info,
    rows_path_for,
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
    # Tables whose pages are read from the Parquet file (all but numeric matrices).
    n = ROW_GROUP_SIZE * 2 + 7
    path = tmp_path / "t.parquet"
    write_table(pa.table({"g": [f"g{i}" for i in range(n)], "x": np.arange(n)}), path, kind="feature")

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


def test_metadata_records_the_format_version(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    write_table(pa.table({"g": ["a"], "x": ["u"]}), path, kind="annotation")

    info = read_info(pq.ParquetFile(path))
    assert info.format_version == FORMAT_VERSION == 2
    assert info.rows_file_id is None  # only numeric matrices have a row file
    assert derived_paths(path) == {}


@pytest.mark.parametrize("kind", ["annotation", "feature", "matrix"])
def test_missing_text_cells_are_stored_as_nulls(tmp_path: Path, kind: str) -> None:
    # The same cells the metadata gives as null: empty, NA, NaN, N/A, ... after trimming.
    cells = ["x", "", "NA", " NA ", "NaN", "n/a", "null", "None", "#N/A", "NAN ", None, " y "]
    path = tmp_path / "t.parquet"
    write_table(pa.table({"g": [f"r{i}" for i in range(len(cells))], "t": cells}), path, kind=kind)

    assert pq.read_table(path).column("t").to_pylist() == [
        "x", None, None, None, None, None, None, None, None, "NAN ", None, " y ",
    ]  # fmt: skip


def test_bed_text_is_kept_as_written(tmp_path: Path) -> None:
    path = tmp_path / "b.parquet"
    write_table(pa.table({"chrom": ["chr1", "chr2"], "start": [1, 5], "stop": [3, 9], "name": ["NA", ""]}), path,
                kind="bed")

    assert pq.read_table(path).column("name").to_pylist() == ["NA", ""]


def test_a_numeric_matrix_gets_a_row_file_and_bigger_row_groups(tmp_path: Path) -> None:
    n = 2600
    path = tmp_path / "m.parquet"
    values = np.arange(3 * n).reshape(n, 3) % 250
    values[5] = [7, 8, 9]
    write_table(pa.table({"g": [f"g{i}" for i in range(n)], **{f"s{j}": values[:, j] for j in range(3)}}), path)

    info = read_info(pq.ParquetFile(path))
    assert pq.ParquetFile(path).num_row_groups == 1  # pages come from the row file
    assert info.row_group_size * 3 <= MATRIX_GROUP_CELLS and info.row_group_size % ROW_GROUP_SIZE == 0
    rows = derived_paths(path)["table_rows_file"]
    assert rows == rows_path_for(path) == tmp_path / "m.rows.arrow"

    with pa.ipc.open_file(rows) as reader:
        assert reader.schema.names == [ROWNAME_COLUMN, "__rowmean__", "__row__"]
        assert json.loads(reader.schema.metadata[b"webmev.rows"])["id"] == info.rows_file_id
        stored = reader.read_all()
    assert stored.column(ROWNAME_COLUMN).to_pylist()[5] == "g5"
    assert stored.column("__row__").to_pylist()[5] == [7, 8, 9]
    assert stored.column("__rowmean__").to_pylist() == pytest.approx(values.mean(axis=1).tolist())
    assert stored.schema.field("__row__").type.value_type == pa.uint8()


def test_a_failed_row_file_leaves_neither_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "out" / "m.parquet"

    def broken(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(table_store, "_write_rows", broken)
    with pytest.raises(OSError, match="disk full"):
        write_table(pa.table({"g": ["a"], "x": [1]}), path)
    assert list(path.parent.iterdir()) == []
