"""The fast count-table parse (``fastparse``) against the pyarrow read it stands in for.

For every input the fast parse either declines or gives the table pyarrow gives, and a whole
validation (status, messages, metadata, stored files) is the same with it on and off.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mev.resource_types import fastparse, table_store, tables
from mev.resource_types.outcome import ValidationFailure
from mev.resource_types.validation import validate_resource

# The one type whose parse asks for uint32 columns (non-negative integers), so the fast parse.
COUNTS = "RNASEQ_COUNT_MTX"


@pytest.fixture(autouse=True)
def _fast_parse_for_any_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small inputs take the fast parse too, cut into many parts so the splitting is exercised."""
    monkeypatch.setattr(tables, "FAST_PARSE", True)
    monkeypatch.setattr(tables, "FAST_PARSE_MIN_BYTES", 0)
    monkeypatch.setattr(fastparse, "MIN_PART_BYTES", 1)


def pyarrow_parse(data: bytes, file_format: str) -> tables.ParsedTable:
    saved = tables.FAST_PARSE
    tables.FAST_PARSE = False
    try:
        return tables.parse_text_table(data, file_format=file_format, expected_type=pa.uint32())
    finally:
        tables.FAST_PARSE = saved


def fast_body(data: bytes, file_format: str, threads: int) -> pa.Table | None:
    """What the fast parse makes of the body, or None when it declines (or pyarrow fails first)."""
    try:
        reference = pyarrow_parse(data, file_format)
    except ValidationFailure:
        return None
    assert reference.raw is not None
    n_fields = len(reference.internal_names)
    delimiter = "," if file_format == "csv" else "\t"
    result = fastparse.read_uint32_body(reference.raw, reference.body_start, n_fields, delimiter, threads=threads)
    if result is None:
        return None
    # The empty lines it skipped: what LineMap.has_blank_lines() counts from the text.
    reference.lines._blank = None
    assert (result.blank_lines > 0) == reference.lines.has_blank_lines()
    return pa.table([result.names, *result.columns], names=reference.internal_names)


def assert_same_parse(data: bytes, file_format: str) -> bool:
    """Parse with the fast path on and off; returns True when the fast path read the body."""
    try:
        expected = pyarrow_parse(data, file_format)
    except ValidationFailure as failure:
        with pytest.raises(ValidationFailure) as caught:
            tables.parse_text_table(data, file_format=file_format, expected_type=pa.uint32())
        assert caught.value.reason == failure.reason
        handled = False
    else:
        got = tables.parse_text_table(data, file_format=file_format, expected_type=pa.uint32())
        assert got.table.schema == expected.table.schema
        assert got.table.equals(expected.table)
        for name in ("header", "rowname_header", "header_line", "body_start", "warnings", "internal_names",
                     "rows_or_columns_dropped", "raw_is_source", "source_format"):  # fmt: skip
            assert getattr(got, name) == getattr(expected, name), name
        assert (got.lines.kept is None) == (expected.lines.kept is None)
        if got.lines.kept is not None:
            assert np.array_equal(got.lines.kept, expected.lines.kept)
        assert got.lines.has_blank_lines() == expected.lines.has_blank_lines()
        assert line_numbers(got) == line_numbers(expected)
        reads = [fast_body(data, file_format, threads) for threads in (1, 2, 3)]
        assert all(table is None for table in reads) or all(table is not None for table in reads), (
            "the fast parse declined with one thread count and not another"
        )
        handled = reads[0] is not None
        if handled:
            # The body as read, before empty rows/columns are dropped: compare with pyarrow's read.
            raw = pacsv_read(expected)
            for table in reads:
                assert table.schema == raw.schema
                assert table.equals(raw)
    return bool(handled)


def line_numbers(parsed: tables.ParsedTable) -> list[int] | str:
    """The row number shown for each row, or the error that finding them raises.

    A lone carriage return in a file of LF lines is a line break to pyarrow but not to LineMap,
    whose numbers then run out (IndexError) on either path; the fast parse declines such files.
    """
    try:
        return [parsed.lines.line(i) for i in range(parsed.table.num_rows)]
    except IndexError as error:
        return repr(error)


def pacsv_read(reference: tables.ParsedTable) -> pa.Table:
    import pyarrow.csv as pacsv

    assert reference.raw is not None
    return pacsv.read_csv(
        pa.py_buffer(memoryview(reference.raw)[reference.body_start :]),
        read_options=pacsv.ReadOptions(column_names=reference.internal_names),
        parse_options=pacsv.ParseOptions(
            delimiter="," if reference.source_format == "csv" else "\t", quote_char=False
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={
                tables.ROWNAME: pa.string(),
                **{name: pa.uint32() for name in reference.internal_names[1:]},
            },
            null_values=list(tables.FAST_MISSING_TOKENS),
            strings_can_be_null=False,
        ),
    )


def stored_contents(outcome) -> dict:
    """Everything a later reader sees of a validation, with the random row-file id left out."""
    result = {
        name: getattr(outcome, name)
        for name in ("ok", "reason", "stage", "resource_type", "file_format", "observation_set",
                     "feature_set", "warnings", "n_rows", "n_cols")  # fmt: skip
    }
    if outcome.standardized_path is not None:
        result["tsv"] = outcome.standardized_path.read_bytes()
    if outcome.parquet_path is not None:
        parquet = pq.read_table(outcome.parquet_path)
        description = json.loads(parquet.schema.metadata[table_store.METADATA_KEY])
        description.pop("rows_file_id", None)
        result["parquet"] = parquet.replace_schema_metadata(None)
        result["parquet_description"] = description
        result["parquet_row_groups"] = pq.ParquetFile(outcome.parquet_path).metadata.num_row_groups
        rows = table_store.rows_path_for(outcome.parquet_path)
        if rows.exists():
            with ipc.open_file(rows) as reader:
                rows_table = reader.read_all()
                info = json.loads(reader.schema.metadata[table_store.ROWS_METADATA_KEY])
                info.pop("id")
                result["rows"] = rows_table.replace_schema_metadata(None)
                result["rows_description"] = info
                result["rows_batches"] = reader.num_record_batches
    return result


def assert_same_validation(tmp_path: Path, data: bytes, file_format: str, resource_type: str) -> None:
    src = tmp_path / f"input.{file_format}"
    src.write_bytes(data)
    outcomes = {}
    for fast in (True, False):
        tables.FAST_PARSE = fast
        out = tmp_path / f"out-{fast}"
        outcome = validate_resource(src_path=src, resource_type=resource_type, file_format=file_format, out_dir=out)
        outcomes[fast] = stored_contents(outcome)
    tables.FAST_PARSE = True
    fast, slow = outcomes[True], outcomes[False]
    assert fast.keys() == slow.keys()
    for key in fast:
        if isinstance(fast[key], pa.Table):
            assert fast[key].schema == slow[key].schema, key
            # repr: NaN (a missing cell in a float row file) equals itself there, not in equals().
            assert repr(fast[key].to_pydict()) == repr(slow[key].to_pydict()), key
        else:
            assert fast[key] == slow[key], key


# --------------------------------------------------------------------------- hand-picked inputs

HEADER = b"gene\tS1\tS2\n"
IRREGULAR = {
    "plain": HEADER + b"G1\t1\t2\nG2\t30\t400\n",
    "negative": HEADER + b"G1\t-1\t2\nG2\t3\t4\n",
    "plus sign": HEADER + b"G1\t+1\t2\nG2\t3\t4\n",
    "decimal": HEADER + b"G1\t1.5\t2\nG2\t3\t4\n",
    "whole decimal": HEADER + b"G1\t1.0\t2\nG2\t3\t4\n",
    "exponent": HEADER + b"G1\t1e3\t2\nG2\t3\t4\n",
    "uint32 max": HEADER + b"G1\t4294967295\t2\nG2\t3\t4\n",
    "uint32 max + 1": HEADER + b"G1\t4294967296\t2\nG2\t3\t4\n",
    "11 digits": HEADER + b"G1\t12345678901\t2\nG2\t3\t4\n",
    "10 digits": HEADER + b"G1\t1234567890\t2\nG2\t3\t4\n",
    "8 digits": HEADER + b"G1\t12345678\t87654321\nG2\t3\t4\n",
    "9 digits": HEADER + b"G1\t123456789\t2\nG2\t3\t999999999\n",
    "leading zeros": HEADER + b"G1\t0007\t00\nG2\t0000000003\t4\n",
    "many leading zeros": HEADER + b"G1\t000000000007\t2\nG2\t3\t4\n",
    "hex": HEADER + b"G1\t0x10\t2\nG2\t3\t4\n",
    "empty cell": HEADER + b"G1\t\t2\nG2\t3\t4\n",
    "NA": HEADER + b"G1\tNA\t2\nG2\t3\t4\n",
    "nan": HEADER + b"G1\tnan\t2\nG2\t3\t4\n",
    "-nan": HEADER + b"G1\t-nan\t2\nG2\t3\t4\n",
    "all NA column": HEADER + b"G1\tNA\t2\nG2\tNA\t4\n",
    "space in cell": HEADER + b"G1\t 1\t2\nG2\t3\t4 \n",
    "text cell": HEADER + b"G1\tabc\t2\nG2\t3\t4\n",
    "quoted cell": HEADER + b'G1\t"1"\t2\nG2\t3\t4\n',
    "quoted name": HEADER + b'"G1"\t1\t2\nG2\t3\t4\n',
    "quote in header": b'"gene"\t"S1"\tS2\nG1\t1\t2\nG2\t3\t4\n',
    "crlf": b"gene\tS1\tS2\r\nG1\t1\t2\r\nG2\t3\t4\r\n",
    "crlf without final": b"gene\tS1\tS2\r\nG1\t1\t2\r\nG2\t3\t4",
    "lone cr": HEADER + b"G1\t1\t2\rG2\t3\t4\n",
    "lone cr everywhere": b"gene\tS1\tS2\rG1\t1\t2\rG2\t3\t4\r",
    "cr in name": HEADER + b"G\r1\t1\t2\nG2\t3\t4\n",
    "cr before tab": HEADER + b"G1\t1\r\t2\nG2\t3\t4\n",
    "trailing tab": HEADER + b"G1\t1\t2\t\nG2\t3\t4\t\n",
    "trailing tab one row": HEADER + b"G1\t1\t2\t\nG2\t3\t4\n",
    "blank line": HEADER + b"G1\t1\t2\n\nG2\t3\t4\n",
    "blank crlf line": b"gene\tS1\tS2\r\nG1\t1\t2\r\n\r\nG2\t3\t4\r\n",
    "blank lines at end": HEADER + b"G1\t1\t2\nG2\t3\t4\n\n\n",
    "blank line first": HEADER + b"\nG1\t1\t2\nG2\t3\t4\n",
    "whitespace line": HEADER + b"G1\t1\t2\n  \nG2\t3\t4\n",
    "tab-only line": HEADER + b"G1\t1\t2\n\t\t\nG2\t3\t4\n",
    "no final newline": HEADER + b"G1\t1\t2\nG2\t3\t4",
    "no final newline long": HEADER + b"G1\t1\t2\nG2\t3\t123456789",
    "bom": tables.UTF8_BOM + HEADER + b"G1\t1\t2\nG2\t3\t4\n",
    "too few fields": HEADER + b"G1\t1\nG2\t3\t4\n",
    "too many fields": HEADER + b"G1\t1\t2\t3\nG2\t3\t4\n",
    "jagged last": HEADER + b"G1\t1\t2\nG2\t3",
    "name only": HEADER + b"G1\t1\t2\nG2\n",
    "duplicate names": HEADER + b"G1\t1\t2\nG1\t3\t4\n",
    "empty name": HEADER + b"\t1\t2\nG2\t3\t4\n",
    "space in name": HEADER + b"G 1\t1\t2\nG2\t3\t4\n",
    "numeric names": HEADER + b"1\t1\t2\n2\t3\t4\n",
    "date name": HEADER + b"1-Mar\t1\t2\nG2\t3\t4\n",
    "utf-8 name": HEADER + "Gé\t1\t2\nG2\t3\t4\n".encode(),
    "latin-1 name": HEADER + b"G\xe9\t1\t2\nG2\t3\t4\n",
    "latin-1 cell": HEADER + b"G1\t1\xe9\t2\nG2\t3\t4\n",
    "nul in name": HEADER + b"G\x001\t1\t2\nG2\t3\t4\n",
    "R header": b"S1\tS2\nG1\t1\t2\nG2\t3\t4\n",
    "empty header cell": b"\tS1\tS2\nG1\t1\t2\nG2\t3\t4\n",
    "empty column name": b"gene\tS1\t\nG1\t1\t2\nG2\t3\t4\n",
    "empty column": b"gene\tS1\t\nG1\t1\t\nG2\t3\t\n",
    "empty row": HEADER + b"G1\t1\t2\n\t\t\nG2\t3\t4\n",
    "duplicate columns": b"gene\tS1\tS1\nG1\t1\t2\nG2\t3\t4\n",
    "numeric header": b"gene\t1\t2\nG1\t1\t2\nG2\t3\t4\n",
    "one column": b"gene\tS1\nG1\t1\nG2\t3\n",
    "comma in tsv": HEADER + b"G1\t1,5\t2\nG2\t3\t4\n",
    "blank header lines": b"\n\n" + HEADER + b"G1\t1\t2\nG2\t3\t4\n",
    "header only": HEADER,
    "empty": b"",
}


@pytest.mark.parametrize("name", sorted(IRREGULAR))
@pytest.mark.parametrize("file_format", ["tsv", "csv"])
def test_irregular_inputs_are_declined_or_read_alike(name: str, file_format: str) -> None:
    data = IRREGULAR[name]
    if file_format == "csv":
        data = data.replace(b",", b";").replace(b"\t", b",")
    handled = assert_same_parse(data, file_format)
    plain = {"plain", "crlf", "crlf without final", "no final newline", "no final newline long", "bom",
             "leading zeros", "uint32 max", "10 digits", "8 digits", "9 digits", "blank line",
             "blank crlf line", "blank lines at end", "blank line first", "duplicate names", "empty name",
             "space in name", "numeric names", "date name", "nul in name", "R header", "empty header cell",
             "duplicate columns", "numeric header", "one column", "blank header lines", "empty column name",
             "lone cr everywhere", "quote in header"}  # fmt: skip
    if name in plain:
        assert handled, "the fast parse should read this input"
    else:
        assert not handled, "the fast parse should decline this input"


@pytest.mark.parametrize("name", sorted(IRREGULAR))
def test_irregular_inputs_validate_alike(tmp_path: Path, name: str) -> None:
    assert_same_validation(tmp_path, IRREGULAR[name], "tsv", COUNTS)


def test_csv_input_validates_alike(tmp_path: Path) -> None:
    data = b",S1,S2\r\nG1,1,2\r\nG2,30,4000000000\r\n"
    assert assert_same_parse(data, "csv")
    assert_same_validation(tmp_path, data, "csv", COUNTS)


def test_a_large_matrix_is_read_by_the_fast_parse_in_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastparse, "MIN_PART_BYTES", 1 << 12)
    # Two threads whatever pyarrow found: OMP_NUM_THREADS=1, set in this process by an earlier test
    # (an operation's main module sets it on import), makes pyarrow's pool one thread.
    monkeypatch.setattr(pa, "cpu_count", lambda: 2)
    rng = np.random.default_rng(7)
    counts = rng.negative_binomial(1, 0.01, size=(3000, 40))
    counts[5, 3] = 4294967295
    counts[6, 4] = 123456789
    lines = ["\t".join(["", *(f"S{j}" for j in range(40))])]
    lines += ["\t".join([f"ENSG{i:08d}", *map(str, row)]) for i, row in enumerate(counts)]
    data = ("\n".join(lines) + "\n").encode()
    assert assert_same_parse(data, "tsv")
    parsed = tables.parse_text_table(data, file_format="tsv", expected_type=pa.uint32())
    assert parsed.table.column(1).num_chunks > 1
    assert parsed.table.column(4).to_numpy()[5] == 4294967295
    assert_same_validation(tmp_path, data, "tsv", COUNTS)


def test_a_decline_late_in_a_large_file_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastparse, "MIN_PART_BYTES", 1 << 12)
    lines = ["gene\tS1\tS2"] + [f"G{i}\t{i}\t{2 * i}" for i in range(5000)]
    lines[4000] = "G3999\t-1\t5"
    data = ("\n".join(lines) + "\n").encode()
    assert not assert_same_parse(data, "tsv")
    assert_same_validation(tmp_path, data, "tsv", COUNTS)


def test_the_threshold_keeps_small_files_on_pyarrow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tables, "FAST_PARSE_MIN_BYTES", 1 << 20)

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("fast parse used")

    monkeypatch.setattr(fastparse, "read_uint32_body", fail)
    parsed = tables.parse_text_table(IRREGULAR["plain"], file_format="tsv", expected_type=pa.uint32())
    assert parsed.table.column(1).to_pylist() == [1, 30]


# --------------------------------------------------------------------------- generated inputs

_NAME = st.text(alphabet="ACGTXabz019._:-", min_size=1, max_size=12)
_ODD_CELLS = ["", "NA", "-1", "+2", "1.5", "2.0", " 3", "4 ", "4294967296", "99999999999", "1e2", "x",
              '"5"', "0x1f", "nan", "N/A", "\xe9"]  # fmt: skip


@st.composite
def count_tables(draw: st.DrawFn) -> tuple[bytes, str]:
    n_cols = draw(st.integers(1, 5))
    n_rows = draw(st.integers(1, 6))
    irregular = draw(st.booleans())
    delimiter = draw(st.sampled_from(["\t", ","]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    number = st.one_of(
        st.integers(0, 20).map(str),
        st.integers(0, 2**32 - 1).map(str),
        st.integers(0, 10**6).map(lambda v: f"{v:09d}"),
        st.integers(0, 2**33).map(str),
    )
    cell = st.one_of(number, st.sampled_from(_ODD_CELLS)) if irregular else number
    header = [draw(st.sampled_from(["", "gene"]))] + [f"S{j}" for j in range(n_cols)]
    lines = [delimiter.join(header)]
    for _ in range(n_rows):
        row = [draw(_NAME)] + [draw(cell) for _ in range(n_cols)]
        if irregular and draw(st.integers(0, 9)) == 0:
            row = row[: draw(st.integers(1, len(row)))] if draw(st.booleans()) else [*row, ""]
        lines.append(delimiter.join(row))
        if irregular and draw(st.integers(0, 9)) == 0:
            lines.append("")
    text = newline.join(lines) + (newline if draw(st.booleans()) else "")
    return text.encode(), "csv" if delimiter == "," else "tsv"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=count_tables())
def test_generated_tables_parse_alike(case: tuple[bytes, str]) -> None:
    data, file_format = case
    assert_same_parse(data, file_format)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=count_tables())
def test_generated_tables_validate_alike(tmp_path_factory: pytest.TempPathFactory, case: tuple[bytes, str]) -> None:
    data, file_format = case
    assert_same_validation(tmp_path_factory.mktemp("v"), data, file_format, COUNTS)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=80), threads=st.integers(1, 3))
def test_arbitrary_bytes_never_break_the_fast_parse(data: bytes, threads: int) -> None:
    """Junk is declined or read as pyarrow reads it, never a crash or a read past the buffer."""
    body = b"gene\tS1\n" + data
    result = fastparse.read_uint32_body(body, 8, 2, "\t", threads=threads)
    if result is not None:
        assert_same_parse(body, "tsv")


# --------------------------------------------------------------------------- the compiled code


def _cache_impl(caching):  # the class that picks a cache locator
    return getattr(caching, "CacheImpl", None) or caching._CacheImpl


def test_compiled_code_is_cached_elsewhere_when_numba_has_no_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only package and no writable home: the cache goes under MEV_DATA_DIR."""
    from numba.core import caching

    monkeypatch.setattr(_cache_impl(caching), "_locator_classes", [caching.UserProvidedCacheLocator])
    monkeypatch.setattr(caching.config, "CACHE_DIR", "")
    monkeypatch.setenv("MEV_DATA_DIR", str(tmp_path / "data"))
    kernel = fastparse._build_kernel()
    assert caching.config.CACHE_DIR == ""  # put back
    sample = b"g1\t12\n"
    values = np.empty((1, 4), dtype=np.uint32)
    rows = kernel(np.frombuffer(sample, dtype=np.uint8), 0, len(sample), 9, values,
                  np.empty(8, dtype=np.uint8), np.zeros(5, dtype=np.int32), np.zeros(1, dtype=np.uint8), np.zeros(1, dtype=np.int64))  # fmt: skip
    assert rows == 1 and values[0, 0] == 12
    cached = list((tmp_path / "data" / "cache" / "numba").rglob("*.nbi"))
    assert cached, "nothing was cached"


def test_no_cache_at_all_still_compiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from numba.core import caching

    monkeypatch.setattr(_cache_impl(caching), "_locator_classes", [])
    monkeypatch.setattr(fastparse, "cache_directories", lambda: [tmp_path / "nope"])
    kernel = fastparse._build_kernel()
    sample = b"g1\t7\n"
    values = np.empty((1, 4), dtype=np.uint32)
    rows = kernel(np.frombuffer(sample, dtype=np.uint8), 0, len(sample), 9, values,
                  np.empty(8, dtype=np.uint8), np.zeros(5, dtype=np.int32), np.zeros(1, dtype=np.uint8), np.zeros(1, dtype=np.int64))  # fmt: skip
    assert rows == 1 and values[0, 0] == 7


def test_a_shared_directory_is_not_used_for_the_cache(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    assert not fastparse._private_directory(shared)
    assert fastparse._private_directory(tmp_path / "mine")


def test_without_numba_the_fast_parse_declines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastparse, "_kernel", None)
    monkeypatch.setattr(fastparse, "_unavailable", False)
    monkeypatch.setattr(fastparse, "numba", None)
    assert fastparse.read_uint32_body(IRREGULAR["plain"], len(HEADER), 3, "\t") is None
    parsed = tables.parse_text_table(IRREGULAR["plain"], file_format="tsv", expected_type=pa.uint32())
    assert parsed.table.column(2).to_pylist() == [2, 400]


def test_a_kernel_that_misreads_its_sample_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(buf, start, end, delim, values, names, offsets, stop, blank):
        return 0

    monkeypatch.setattr(fastparse, "_kernel", None)
    monkeypatch.setattr(fastparse, "_unavailable", False)
    monkeypatch.setattr(fastparse, "_build_kernel", lambda: broken)
    assert fastparse.read_uint32_body(IRREGULAR["plain"], len(HEADER), 3, "\t") is None
    assert fastparse._unavailable
    parsed = tables.parse_text_table(IRREGULAR["plain"], file_format="tsv", expected_type=pa.uint32())
    assert parsed.table.column(1).to_pylist() == [1, 30]


@pytest.mark.parametrize("name", sorted(IRREGULAR))
def test_widening_on_two_threads_checks_alike(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large count tables are widened to int64 on two threads; the outcome is the column-by-column one."""
    from mev.resource_types.registry import get_resource_type

    checker = get_resource_type(COUNTS).checker()
    outcomes = []
    for cells in (0, 1 << 62):
        monkeypatch.setattr(tables, "WIDEN_IN_THREADS_CELLS", cells)
        try:
            parsed = tables.parse_text_table(IRREGULAR[name], file_format="tsv", expected_type=pa.uint32())
            checked = checker.check(parsed)
        except ValidationFailure as failure:
            outcomes.append(failure.reason)
        else:
            outcomes.append((checked.table, checked.names, checked.warnings, checked.values_rewritten))
    threaded, serial = outcomes
    if isinstance(serial, str):
        assert threaded == serial
    else:
        assert threaded[0].schema == serial[0].schema and threaded[0].equals(serial[0])
        assert threaded[1:] == serial[1:]
