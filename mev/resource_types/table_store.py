"""Columnar (Parquet) copy of a validated table, written once so contents requests never re-parse it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROWNAME_COLUMN = "__rowname__"

# Key under which our own description of the file sits in the Parquet key-value metadata.
METADATA_KEY = b"webmev.table"
FORMAT_VERSION = 1

# The client pages with 1, 5, 10, 25 or 50 rows. With a multiple of 50 an unfiltered page never
# straddles two row groups, so it costs one row-group read. 1,000 rows of a 500-column int64 matrix
# is ~4 MB decoded: small enough to read per request, large enough to keep the footer short
# (60 groups for 60,000 rows). See bench/bench_contents.py for the measurements.
ROW_GROUP_SIZE = 1000

# Measured for a width-dependent size (bench/bench_contents.py data, 60,000 x 500 int64): writing
# costs ~15 µs of CPU per column chunk whatever its size, so 2,000-row groups write ~20% faster
# (0.90 -> 0.72 s CPU) and halve the footer (1.6 -> 0.9 MB), but every page reads twice the data:
# first/middle page ~22 -> ~30 ms CPU, too close to the 50 ms page budget on a busy host. Narrow
# tables gain nothing from bigger groups (60,000 x 6: first page 0.75 ms at 1,000 rows, 1.3 ms at
# 10,000, 4.8 ms at 60,000; a sorted page ~9 ms at every size). So one size for every table.

KINDS = frozenset({"matrix", "annotation", "feature", "bed"})


class TableStoreError(ValueError):
    """The table cannot be stored (unknown kind, missing row labels, reserved column name)."""


@dataclass(frozen=True)
class StoredTableInfo:
    """What the reader needs to know about a stored table before touching its data."""

    kind: str
    n_rows: int
    columns: tuple[str, ...]
    row_group_size: int


def write_table(table: pa.Table, path: Path, *, kind: str = "matrix") -> None:
    """Write ``table`` as the Parquet copy queried by the contents endpoint.

    The first column of ``table`` holds the row labels (whatever its header is called); it is
    stored as the string column ``__rowname__``. The other columns are stored under their
    original names and in their original order. For ``kind="bed"`` files have no row labels:
    every column is data and the labels are the 0-based line indices, unless the first column is
    already named ``__rowname__``.

    ``kind`` is one of ``matrix`` (MTX, I_MTX, EXP_MTX, RNASEQ_COUNT_MTX, NS), ``annotation``
    (ANN), ``feature`` (FT) or ``bed`` (BED3, BED6, NRWPK).

    The file is written next to ``path`` and renamed into place, so a reader never sees half a file.
    """
    if kind not in KINDS:
        raise TableStoreError(f"Unknown table kind {kind!r}; expected one of {sorted(KINDS)}.")
    names = list(table.column_names)
    if kind == "bed" and (not names or names[0] != ROWNAME_COLUMN):
        labels = pa.array([str(i) for i in range(table.num_rows)], type=pa.string())
        data = table
    else:
        if not names:
            raise TableStoreError("The table has no row-label column.")
        labels = table.column(0).cast(pa.string())
        data = table.remove_column(0)
    if ROWNAME_COLUMN in data.column_names:
        raise TableStoreError(f"A data column may not be called {ROWNAME_COLUMN!r}.")

    stored = data.add_column(0, pa.field(ROWNAME_COLUMN, pa.string()), labels)
    description = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "n_rows": stored.num_rows,
        "row_group_size": ROW_GROUP_SIZE,
    }
    metadata = dict(stored.schema.metadata or {})
    metadata.pop(b"pandas", None)  # pandas index hints would only confuse later readers
    metadata[METADATA_KEY] = json.dumps(description).encode()
    stored = stored.replace_schema_metadata(metadata)

    integers = set(_integer_columns(stored.schema))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(
            stored,
            tmp_path,
            row_group_size=ROW_GROUP_SIZE,
            use_dictionary=_dictionary_columns(stored.schema),
            column_encoding=dict.fromkeys(integers, "DELTA_BINARY_PACKED") or None,
            compression={name: "none" if name in integers else "snappy" for name in stored.column_names},
            write_statistics=False,  # never used by the reader, and they bloat the footer of wide tables
        )
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _integer_columns(schema: pa.Schema) -> list[str]:
    """Integer data columns (counts): stored DELTA_BINARY_PACKED and not compressed again.

    Measured on 60,000 x 500 int64 counts against dictionary + snappy (the previous format),
    same run: writing 1.18 -> 0.82 s CPU for small counts (file 34 -> 32 MB) and 1.51 -> 0.79 s
    for counts in the hundreds (88 -> 46 MB); a page reads as fast or faster (17-21 ms -> 15-21 ms).
    Plain + snappy wrote faster than dictionary but doubled the file of small counts; snappy on
    top of the bit-packed deltas saves ~2% of the size for ~5-10% more write time.
    """
    return [field.name for field in schema if field.name != ROWNAME_COLUMN and pa.types.is_integer(field.type)]


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    """Columns worth dictionary-encoding: repeated text (categories), not unique labels or numbers.

    Row labels and continuous floats are all distinct, so a dictionary only overflows and makes
    every read slower (measured: reading a 60,000-row feature table went from ~16 ms to ~6 ms).
    Integer counts were dictionary-encoded too; delta encoding is cheaper and smaller (see above).
    """
    return [
        field.name
        for field in schema
        if field.name != ROWNAME_COLUMN
        and (pa.types.is_string(field.type) or pa.types.is_large_string(field.type) or pa.types.is_boolean(field.type))
    ]


def read_info(parquet_file: pq.ParquetFile) -> StoredTableInfo:
    """Describe a stored table from its footer alone."""
    raw = (parquet_file.schema_arrow.metadata or {}).get(METADATA_KEY)
    description = json.loads(raw) if raw else {}
    names = parquet_file.schema_arrow.names
    if not names or names[0] != ROWNAME_COLUMN:
        raise TableStoreError("Not a stored WebMEV table: the first column is not __rowname__.")
    return StoredTableInfo(
        kind=description.get("kind", "matrix"),
        n_rows=parquet_file.metadata.num_rows,
        columns=tuple(names[1:]),
        row_group_size=int(description.get("row_group_size", ROW_GROUP_SIZE)),
    )
