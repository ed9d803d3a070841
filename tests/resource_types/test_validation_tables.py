"""Happy paths of the table types: standard TSV, Parquet copy and extracted metadata."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import openpyxl
import pyarrow.parquet as pq
import pytest

from mev.resource_types.validation import validate_resource


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def validate(path: Path, resource_type: str, file_format: str, out: Path):
    return validate_resource(src_path=path, resource_type=resource_type, file_format=file_format, out_dir=out)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


def test_integer_tsv_is_accepted_and_standardized(tmp_path: Path, out: Path) -> None:
    src = write(tmp_path / "m.tsv", "gene\tS1\tS2\nG1\t1\t2\nG2\t3\t4\n")
    outcome = validate(src, "I_MTX", "tsv", out)
    assert outcome.ok, outcome.reason
    assert outcome.resource_type == "I_MTX" and outcome.file_format == "tsv"
    assert outcome.standardized_path is not None
    assert outcome.standardized_path.read_text() == "\tS1\tS2\nG1\t1\t2\nG2\t3\t4\n"
    assert (outcome.n_rows, outcome.n_cols) == (2, 2)
    assert outcome.observation_set == {
        "elements": [{"id": "S1", "attributes": {}}, {"id": "S2", "attributes": {}}]
    }
    assert outcome.feature_set is None
    stored = pq.read_table(outcome.parquet_path)
    assert stored.column_names == ["__rowname__", "S1", "S2"]
    assert stored.column("__rowname__").to_pylist() == ["G1", "G2"]
    assert stored.column("S2").to_pylist() == [2, 4]


def test_csv_is_rewritten_as_tsv(tmp_path: Path, out: Path) -> None:
    src = write(tmp_path / "m.csv", ",S1,S2\r\nG1,1.5,2\r\nG2,3,NA\r\n")
    outcome = validate(src, "MTX", "CSV", out)
    assert outcome.ok, outcome.reason
    assert outcome.file_format == "tsv"
    lines = outcome.standardized_path.read_text().splitlines()
    assert lines[0] == "\tS1\tS2"
    assert lines[1].split("\t") == ["G1", "1.5", "2"]
    assert lines[2].split("\t")[0:2] == ["G2", "3"]
    assert "\r" not in outcome.standardized_path.read_text()
    assert pq.read_table(outcome.parquet_path).column("S2").to_pylist() == [2, None]


def test_csv_fast_path_output(tmp_path: Path, out: Path) -> None:
    src = write(tmp_path / "m.csv", ",S1,S2\nG1,1,2\nG2,3,4")
    outcome = validate(src, "RNASEQ_COUNT_MTX", "csv", out)
    assert outcome.ok, outcome.reason
    assert outcome.standardized_path.read_text() == "\tS1\tS2\nG1\t1\t2\nG2\t3\t4\n"


def test_quoted_csv_cells_are_unquoted(tmp_path: Path, out: Path) -> None:
    src = write(tmp_path / "a.csv", 'sample,condition,note\nS1,treated,"a, b"\nS2,control,"say ""hi"""\n')
    outcome = validate(src, "ANN", "csv", out)
    assert outcome.ok, outcome.reason
    note = {e["id"]: e["attributes"]["note"]["value"] for e in outcome.observation_set["elements"]}
    assert note == {"S1": "a, b", "S2": 'say "hi"'}
    text = outcome.standardized_path.read_text()
    assert text.splitlines()[0] == "\tcondition\tnote"


def test_whole_floats_pass_integer_check_and_are_stored_as_integers(tmp_path: Path, out: Path) -> None:
    src = write(tmp_path / "m.tsv", "\tS1\tS2\nG1\t5.0\t2\nG2\t\t4\nG3\t7\tNA\n")
    outcome = validate(src, "I_MTX", "tsv", out)
    assert outcome.ok, outcome.reason
    stored = pq.read_table(outcome.parquet_path)
    assert stored.column("S1").to_pylist() == [5, None, 7]
    assert str(stored.schema.field("S1").type) == "int64"


def test_r_style_header_without_row_name_cell(tmp_path: Path, out: Path) -> None:
    src = write(tmp_path / "m.tsv", "S1\tS2\nG1\t1\t2\nG2\t3\t4\n")
    outcome = validate(src, "MTX", "tsv", out)
    assert outcome.ok, outcome.reason
    assert outcome.standardized_path.read_text().splitlines()[0] == "\tS1\tS2"
    assert any("one name fewer" in w for w in outcome.warnings)


def test_entirely_empty_rows_and_columns_are_dropped(tmp_path: Path, out: Path) -> None:
    src = write(tmp_path / "m.csv", ",S1,S2,\nG1,1,2,\n,,,\nG2,3,4,\nG3,5,x,\n")
    outcome = validate(src, "MTX", "csv", out)
    assert not outcome.ok
    # Row numbers still count the dropped line.
    assert 'Row 5 (gene "G3"), column "S2": "x" is not a number.' in outcome.reason
    src = write(tmp_path / "m2.csv", ",S1,S2,\nG1,1,2,\n,,,\nG2,3,4,\n")
    outcome = validate(src, "MTX", "csv", out)
    assert outcome.ok, outcome.reason
    assert outcome.standardized_path.read_text() == "\tS1\tS2\nG1\t1\t2\nG2\t3\t4\n"


def test_identifiers_are_trimmed_and_spaces_become_underscores(tmp_path: Path, out: Path) -> None:
    src = write(tmp_path / "m.tsv", "\t Sample 1 \tS2\n gene A\t1\t2\nG:2.x-y_z\t3\t4\n")
    outcome = validate(src, "MTX", "tsv", out)
    assert outcome.ok, outcome.reason
    assert outcome.standardized_path.read_text() == "\tSample_1\tS2\ngene_A\t1\t2\nG:2.x-y_z\t3\t4\n"
    assert [e["id"] for e in outcome.observation_set["elements"]] == ["Sample_1", "S2"]


def test_utf8_bom_is_ignored(tmp_path: Path, out: Path) -> None:
    src = write(tmp_path / "m.tsv", b"\xef\xbb\xbf\tS1\nG1\t1\n")
    outcome = validate(src, "MTX", "tsv", out)
    assert outcome.ok, outcome.reason
    assert outcome.standardized_path.read_text() == "\tS1\nG1\t1\n"


def test_infinite_values_are_allowed_in_numeric_tables_with_a_warning(tmp_path: Path, out: Path) -> None:
    src = write(tmp_path / "m.tsv", "\tS1\tS2\nG1\tinf\t2\nG2\t-inf\tNaN\n")
    outcome = validate(src, "EXP_MTX", "tsv", out)
    assert outcome.ok, outcome.reason
    assert any("2 infinite values" in w for w in outcome.warnings)
    values = pq.read_table(outcome.parquet_path).column("S1").to_pylist()
    assert values == [math.inf, -math.inf]


def test_network_descriptor_accepts_numbers(tmp_path: Path, out: Path) -> None:
    src = write(tmp_path / "n.tsv", "\tA\tB\nA\t0\t0.5\nB\t0.5\t0\n")
    outcome = validate(src, "NS", "tsv", out)
    assert outcome.ok, outcome.reason
    assert [e["id"] for e in outcome.observation_set["elements"]] == ["A", "B"]


def test_annotation_metadata_is_typed(tmp_path: Path, out: Path) -> None:
    src = write(
        tmp_path / "ann.tsv",
        "sample\tage\tscore\tgroup\tvisit\tid\n"
        "S1\t43\t1.5\t#1\t2024-01-02\t7\n"
        "S2\t\tinf\tB\t2024-02-03\t8\n"
        "S3\t51\tNA\t\t2024-03-04\t9\n"
        "S4\t60\t-inf\tA\t2024-04-05\t10\n",
    )
    outcome = validate(src, "ANN", "tsv", out)
    assert outcome.ok, outcome.reason
    assert outcome.feature_set is None
    elements = outcome.observation_set["elements"]
    assert [e["id"] for e in elements] == ["S1", "S2", "S3", "S4"]
    first = elements[0]["attributes"]
    assert first["age"] == {"attribute_type": "Integer", "value": 43}
    assert first["score"] == {"attribute_type": "Float", "value": 1.5}
    assert first["group"] == {"attribute_type": "UnrestrictedString", "value": "#1"}
    assert first["visit"] == {"attribute_type": "UnrestrictedString", "value": "2024-01-02"}
    assert elements[1]["attributes"]["age"] == {"attribute_type": "Integer", "value": None}
    assert elements[1]["attributes"]["score"]["value"] == "++inf++"
    assert elements[3]["attributes"]["score"]["value"] == "--inf--"
    assert elements[2]["attributes"]["score"]["value"] is None
    assert elements[2]["attributes"]["group"]["value"] is None
    stored = pq.read_table(outcome.parquet_path)
    assert stored.column_names == ["__rowname__", "age", "score", "group", "visit", "id"]
    assert stored.column("visit").to_pylist()[0] == "2024-01-02"
    assert "2024-01-02" in outcome.standardized_path.read_text()


def test_annotation_warns_when_header_probably_missing(tmp_path: Path, out: Path) -> None:
    src = write(tmp_path / "ann.tsv", "S1\ttreated\tb1\nS2\tcontrol\tb2\nS3\ttreated\tb1\n")
    outcome = validate(src, "ANN", "tsv", out)
    assert outcome.ok, outcome.reason
    assert any("header row may be missing" in w and '"treated"' in w for w in outcome.warnings)


def test_feature_table_has_no_metadata(tmp_path: Path, out: Path) -> None:
    src = write(tmp_path / "ft.csv", "gene,log2FC,padj,symbol\nENSG1,1.5,0.01,TP53\nENSG2,-0.2,0.9,MYC\n")
    outcome = validate(src, "FT", "csv", out)
    assert outcome.ok, outcome.reason
    assert outcome.observation_set is None and outcome.feature_set is None
    assert pq.read_table(outcome.parquet_path).column("symbol").to_pylist() == ["TP53", "MYC"]


def test_hash_lines_are_data_not_comments(tmp_path: Path, out: Path) -> None:
    src = write(tmp_path / "ann.tsv", "sample\tnote\nS1\t# not a comment\nS2\tok\n")
    outcome = validate(src, "ANN", "tsv", out)
    assert outcome.ok, outcome.reason
    assert outcome.n_rows == 2
    assert outcome.observation_set["elements"][0]["attributes"]["note"]["value"] == "# not a comment"


# -- Excel ------------------------------------------------------------------------------------


def make_xlsx(path: Path, rows: list[list[object]], *, extra_sheet: bool = True) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    if extra_sheet:
        other = workbook.create_sheet("ignored")
        other.append(["not", "read"])
    workbook.save(path)
    return path


def test_xlsx_first_sheet_is_read(tmp_path: Path, out: Path) -> None:
    src = make_xlsx(tmp_path / "m.xlsx", [[None, "S1", "S2"], ["G1", 1, 2], ["G2", 3, 4.0]])
    outcome = validate(src, "I_MTX", "xlsx", out)
    assert outcome.ok, outcome.reason
    assert outcome.file_format == "tsv"
    assert outcome.standardized_path.read_text() == "\tS1\tS2\nG1\t1\t2\nG2\t3\t4\n"


def test_xlsx_failures_use_sheet_row_numbers(tmp_path: Path, out: Path) -> None:
    src = make_xlsx(tmp_path / "m.xlsx", [[], [None, "S1", "S2"], ["G1", 1, 2], ["G2", 3, 2.07]])
    outcome = validate(src, "I_MTX", "xlsx", out)
    assert not outcome.ok
    assert 'Row 4 (gene "G2"), column "S2": "2.07" is not an integer.' in outcome.reason


def test_xlsx_gene_names_turned_into_dates_are_reported(tmp_path: Path, out: Path) -> None:
    src = make_xlsx(
        tmp_path / "m.xlsx", [[None, "S1"], ["TP53", 1], [dt.datetime(2024, 3, 1), 2], ["MYC", 3]]
    )
    outcome = validate(src, "RNASEQ_COUNT_MTX", "xlsx", out)
    assert not outcome.ok
    assert 'Row 3 (gene "2024-03-01") looks like a date' in outcome.reason


def test_xlsx_annotation(tmp_path: Path, out: Path) -> None:
    src = make_xlsx(tmp_path / "a.xlsx", [["sample", "age", "group"], ["S1", 30, "A"], ["S2", 41.5, "B"]])
    outcome = validate(src, "ANN", "xlsx", out)
    assert outcome.ok, outcome.reason
    attributes = outcome.observation_set["elements"][1]["attributes"]
    assert attributes["age"] == {"attribute_type": "Float", "value": 41.5}
    assert attributes["group"] == {"attribute_type": "UnrestrictedString", "value": "B"}


def test_xlsx_content_declared_as_xls_is_still_read(tmp_path: Path, out: Path) -> None:
    src = make_xlsx(tmp_path / "m.xls", [[None, "S1"], ["G1", 1]])
    outcome = validate(src, "MTX", "xls", out)
    assert outcome.ok, outcome.reason


def test_empty_xlsx_sheet(tmp_path: Path, out: Path) -> None:
    src = make_xlsx(tmp_path / "e.xlsx", [], extra_sheet=False)
    outcome = validate(src, "MTX", "xlsx", out)
    assert not outcome.ok
    assert "The file is empty" in outcome.reason


def test_column_numbers_count_dropped_empty_columns(tmp_path: Path, out: Path) -> None:
    src = write(tmp_path / "m.csv", ",,S1,S#2\nG1,,1,2\n")
    outcome = validate(src, "MTX", "csv", out)
    assert not outcome.ok
    assert 'Column 4 name "S#2" contains "#".' in outcome.reason


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("resource_type", "file_format"), [("MTX", "tsv"), ("I_MTX", "csv"), ("ANN", "csv")])
def test_standard_tsv_round_trips_through_pandas(
    tmp_path: Path, out: Path, seed: int, resource_type: str, file_format: str
) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_rows, n_cols = int(rng.integers(1, 40)), int(rng.integers(1, 12))
    values = rng.integers(-50, 50, size=(n_rows, n_cols)).astype(float)
    if resource_type == "MTX":
        values = values / 7
    values[rng.random(values.shape) < 0.1] = np.nan
    frame = pd.DataFrame(
        values,
        index=[f"gene_{i}" for i in range(n_rows)],
        columns=[f"S{j}.x" for j in range(n_cols)],
    )
    if resource_type == "ANN":
        frame["group"] = rng.choice(["a b", "c,d", "e"], size=n_rows)
    src = tmp_path / f"in.{file_format}"
    frame.to_csv(src, sep="\t" if file_format == "tsv" else ",")
    outcome = validate(src, resource_type, file_format, out)
    assert outcome.ok, outcome.reason
    again = pd.read_csv(outcome.standardized_path, sep="\t", index_col=0)
    pd.testing.assert_frame_equal(again, frame, check_dtype=False, check_exact=False, rtol=1e-12)
    stored = pq.read_table(outcome.parquet_path).to_pandas().set_index("__rowname__")
    stored.index.name = None
    pd.testing.assert_frame_equal(stored, frame, check_dtype=False, check_exact=False, rtol=1e-12)


def test_r_write_csv_output_with_quotes_and_crlf(tmp_path: Path, out: Path) -> None:
    src = write(tmp_path / "r.csv", '"","S1","S2"\r\n"G1",1,2\r\n"G2",3,"4"\r\n')
    outcome = validate(src, "RNASEQ_COUNT_MTX", "csv", out)
    assert outcome.ok, outcome.reason
    assert outcome.standardized_path.read_bytes() == b"\tS1\tS2\nG1\t1\t2\nG2\t3\t4\n"


def test_lone_carriage_returns_are_not_copied(tmp_path: Path, out: Path) -> None:
    src = write(tmp_path / "mac.tsv", "\tS1\rG1\t1\rG2\t2\r")
    outcome = validate(src, "MTX", "tsv", out)
    assert outcome.ok, outcome.reason
    assert outcome.standardized_path.read_bytes() == b"\tS1\nG1\t1\nG2\t2\n"


# -- Large-file fast paths (parse_text_table's fast attempt, write_standard_tsv's byte copies) ----


def test_counts_with_missing_cells_and_large_values_are_stored_exactly(tmp_path: Path, out: Path) -> None:
    # NA and empty cells stay on the fast (uint32) parse; 2**32 and more go down the precise one.
    src = write(tmp_path / "m.tsv", "\tS1\tS2\tS3\nG1\t1\tNA\t4294967295\nG2\t\t5\t4294967296\nG3\t2\t3\t7\n")
    outcome = validate(src, "RNASEQ_COUNT_MTX", "tsv", out)
    assert outcome.ok, outcome.reason
    stored = pq.read_table(outcome.parquet_path)
    assert [str(t) for t in stored.schema.types] == ["string", "int64", "int64", "int64"]
    assert stored.column("S1").to_pylist() == [1, None, 2]
    assert stored.column("S2").to_pylist() == [None, 5, 3]
    assert stored.column("S3").to_pylist() == [4294967295, 4294967296, 7]
    src = write(tmp_path / "m2.tsv", "\tS1\tS2\nG1\t1\tnull\nG2\t#N/A\t5\n")
    outcome = validate(src, "RNASEQ_COUNT_MTX", "tsv", out)
    assert outcome.ok, outcome.reason
    assert pq.read_table(outcome.parquet_path).column("S2").to_pylist() == [None, 5]


@pytest.mark.parametrize(
    ("cell", "fragment"),
    [
        ("-3", '"-3" is negative; counts cannot be negative.'),
        ("2.5", '"2.5" is not an integer.'),
        ("x7", '"x7" is not a number.'),
    ],
)
def test_counts_that_fail_the_fast_parse_are_named(
    tmp_path: Path, out: Path, cell: str, fragment: str
) -> None:
    rows = "".join(f"G{i}\t{i}\t{i + 1}\n" for i in range(3000))  # > 64 KB: the large-file paths
    src = write(tmp_path / "m.tsv", f"\tS1\tS2\n{rows}G3000\t1\t{cell}\n")
    outcome = validate(src, "RNASEQ_COUNT_MTX", "tsv", out)
    assert not outcome.ok
    assert f'Row 3002 (gene "G3000"), column "S2": {fragment}' in outcome.reason


def test_blank_lines_in_a_large_file_keep_row_numbers(tmp_path: Path, out: Path) -> None:
    rows = "".join(f"G{i}\t{i}\n" for i in range(10000))
    src = write(tmp_path / "m.tsv", f"\tS1\n{rows}\n\nG10000\t-1\n")
    outcome = validate(src, "RNASEQ_COUNT_MTX", "tsv", out)
    assert not outcome.ok
    assert 'Row 10004 (gene "G10000"), column "S1": "-1" is negative' in outcome.reason


def test_a_standard_source_is_linked_not_copied(tmp_path: Path, out: Path) -> None:
    text = b"\tS1\tS2\nG1\t1\t2\nG2\t3\t4\n"
    src = write(tmp_path / "m.tsv", text)
    outcome = validate(src, "RNASEQ_COUNT_MTX", "tsv", out)
    assert outcome.ok, outcome.reason
    assert outcome.standardized_path.read_bytes() == text
    assert outcome.standardized_path.stat().st_ino == src.stat().st_ino
    # Validating another file into the same directory replaces the link, never writes through it.
    other = write(tmp_path / "o.tsv", "gene\tS1\nG1\t5\n")
    outcome = validate(other, "RNASEQ_COUNT_MTX", "tsv", out)
    assert outcome.ok, outcome.reason
    assert outcome.standardized_path.read_bytes() == b"\tS1\nG1\t5\n"
    assert src.read_bytes() == text


def test_a_source_that_cannot_be_linked_is_copied(
    tmp_path: Path, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", refuse)
    text = b"\tS1\tS2\nG1\t1\t2\nG2\t3\t4\n"
    src = write(tmp_path / "m.tsv", text)
    outcome = validate(src, "RNASEQ_COUNT_MTX", "tsv", out)
    assert outcome.ok, outcome.reason
    assert outcome.standardized_path.read_bytes() == text
    assert outcome.standardized_path.stat().st_ino != src.stat().st_ino


def test_quoted_crlf_csv_is_rewritten_in_pieces(
    tmp_path: Path, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mev.resource_types import tables

    monkeypatch.setattr(tables, "REWRITE_PIECE_SIZE", 7)  # pieces split quotes, CR and LF apart
    rows = "".join(f'"G{i}",{i},"{i % 7}"\r\n' for i in range(300))
    src = write(tmp_path / "r.csv", f'"","S1","S2"\r\n{rows}')
    outcome = validate(src, "RNASEQ_COUNT_MTX", "csv", out)
    assert outcome.ok, outcome.reason
    expected = "\tS1\tS2\n" + "".join(f"G{i}\t{i}\t{i % 7}\n" for i in range(300))
    assert outcome.standardized_path.read_bytes() == expected.encode()


def test_phase_listener_sees_every_phase(tmp_path: Path, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mev.resource_types import registry

    seen: list[str] = []
    monkeypatch.setattr(registry, "phase_listener", lambda phase, wall, cpu: seen.append(phase))
    src = write(tmp_path / "m.tsv", "\tS1\nG1\t1\n")
    assert validate(src, "RNASEQ_COUNT_MTX", "tsv", out).ok
    assert seen == ["parse", "checks", "standard TSV", "Parquet", "metadata"]
