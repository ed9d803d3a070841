"""BED family, JSON and the uninspected types; the §3.2 status strings."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mev.resource_types.outcome import ValidationOutcome
from mev.resource_types.validation import (
    UNABLE_TO_VALIDATE_STATUS,
    UNEXPECTED_ERROR_STATUS,
    status_for_failure,
    validate_resource,
)


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def validate(path: Path, resource_type: str | None, file_format: str | None, out: Path) -> ValidationOutcome:
    return validate_resource(src_path=path, resource_type=resource_type, file_format=file_format, out_dir=out)


@pytest.mark.parametrize(
    ("resource_type", "text", "columns"),
    [
        ("BED3", "chr1\t10\t20\nchr2\t0\t5\n", ["chrom", "start", "stop"]),
        (
            "BED6",
            "chr1\t10\t20\tp1\t0\t+\nchr2\t0\t5\tp2\t1000\t.\n",
            ["chrom", "start", "stop", "name", "score", "strand"],
        ),
        (
            "NRWPK",
            "chr1\t10\t20\tp1\t0\t+\t3.5\t-1\t0.01\t-1\nchr2\t0\t5\tp2\t1000\t-\t1e3\t4\t-1\t2\n",
            ["chrom", "start", "stop", "name", "score", "strand", "signal_value", "pval", "qval", "peak"],
        ),
    ],
)
def test_bed_files_are_accepted_and_stored(
    tmp_path: Path, resource_type: str, text: str, columns: list[str]
) -> None:
    src = write(tmp_path / "x.bed", text)
    outcome = validate(src, resource_type, "tsv", tmp_path / "out")
    assert outcome.ok, outcome.reason
    assert outcome.file_format == "tsv"
    assert outcome.standardized_path is None  # BED files are kept as they are
    assert outcome.observation_set is None and outcome.feature_set is None
    assert (outcome.n_rows, outcome.n_cols) == (2, len(columns))
    stored = pq.read_table(outcome.parquet_path)
    assert stored.column_names == ["__rowname__", *columns]
    assert stored.column("__rowname__").to_pylist() == ["0", "1"]
    assert stored.column("start").to_pylist() == [10, 0]


def test_bed_with_blank_line_reports_file_line_numbers(tmp_path: Path) -> None:
    src = write(tmp_path / "x.bed", "chr1\t10\t20\n\nchr1\t50\t40\n")
    outcome = validate(src, "BED3", "tsv", tmp_path / "out")
    assert not outcome.ok
    assert "Line 3: start 50 (column 2) is greater than stop 40 (column 3)." in outcome.reason


def test_json_document_is_accepted(tmp_path: Path) -> None:
    src = write(tmp_path / "x.json", '[{"a": 1}, {"a": 2}]')
    outcome = validate(src, "JSON", "JSON", tmp_path / "out")
    assert outcome.ok, outcome.reason
    assert outcome.file_format == "json"
    assert outcome.parquet_path is None and outcome.observation_set is None


@pytest.mark.parametrize(
    ("resource_type", "file_format", "standard"),
    [
        ("FQ", "fq", "fq"),
        ("FA", "FA", "fa"),
        ("ALN", "bam", "bam"),
        ("BAI", "bai", "*"),
        ("WIG", "wig", "*"),
        ("BIGWIG", "bw", "*"),
        ("BEDGRAPH", "bg", "*"),
        ("*", "anything", "*"),
    ],
)
def test_uninspected_types_are_accepted_as_they_are(
    tmp_path: Path, resource_type: str, file_format: str, standard: str
) -> None:
    src = write(tmp_path / "x.bin", b"\x00\x01 whatever")
    outcome = validate(src, resource_type, file_format, tmp_path / "out")
    assert outcome.ok
    assert outcome.file_format == standard
    assert outcome.standardized_path is None and outcome.parquet_path is None


# -- §3.2 statuses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource_type", "file_format"), [(None, "tsv"), ("MTX", None), ("", ""), (None, None)]
)
def test_missing_type_or_format(tmp_path: Path, resource_type: str | None, file_format: str | None) -> None:
    outcome = validate(tmp_path / "nope", resource_type, file_format, tmp_path)
    assert not outcome.ok
    assert status_for_failure(outcome=outcome, new_type=resource_type or "", old_type="MTX") == (
        "Could not validate the resource given the information provided."
    )
    assert UNABLE_TO_VALIDATE_STATUS == "Could not validate the resource given the information provided."


def test_unknown_type(tmp_path: Path) -> None:
    outcome = validate(tmp_path / "nope", "FOO", "tsv", tmp_path)
    assert status_for_failure(outcome=outcome, new_type="FOO", old_type=None) == (
        "The requested resource type of FOO is not a known type."
    )


def test_format_not_accepted(tmp_path: Path) -> None:
    outcome = validate(tmp_path / "nope", "MTX", "json", tmp_path)
    assert status_for_failure(outcome=outcome, new_type="MTX", old_type=None) == (
        'File format "json" is not consistent with the requested resource type (Numeric table). '
        "Acceptable formats/extensions are: csv, tsv, xls, xlsx"
    )


def test_failed_validation_of_a_never_valid_resource(tmp_path: Path) -> None:
    src = write(tmp_path / "m.tsv", "\tS1\nG1\t2.07\n")
    outcome = validate(src, "I_MTX", "tsv", tmp_path / "out")
    status = status_for_failure(outcome=outcome, new_type="I_MTX", old_type=None)
    assert status == f'Failed validation for resource type "Integer table". {outcome.reason}'
    assert status.startswith(
        'Failed validation for resource type "Integer table". Values in a "Integer table"'
    )


def test_failed_validation_of_a_previously_valid_resource(tmp_path: Path) -> None:
    src = write(tmp_path / "m.tsv", "\tS1\nG1\t2.07\n")
    outcome = validate(src, "RNASEQ_COUNT_MTX", "tsv", tmp_path / "out")
    status = status_for_failure(outcome=outcome, new_type="RNASEQ_COUNT_MTX", old_type="MTX")
    assert status == (
        "Reverting back to the previously valid state of type: Numeric table. Could not validate as "
        f"RNA-seq count matrix for the following reason: {outcome.reason}"
    )


def test_status_helper_refuses_success() -> None:
    with pytest.raises(ValueError):
        status_for_failure(
            outcome=ValidationOutcome(ok=True, resource_type="MTX", file_format="tsv"),
            new_type="MTX",
            old_type=None,
        )


def test_unexpected_error_status_text() -> None:
    assert UNEXPECTED_ERROR_STATUS == (
        "There was an unexpected error during validation. An administrator has been notified."
    )


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_with_non_standard_constants_is_refused(tmp_path, constant):
    from mev.resource_types.validation import validate_resource

    src = tmp_path / "doc.json"
    src.write_text(f'[{{"a": 1}}, {{"a": {constant}}}]')
    outcome = validate_resource(src_path=src, resource_type="JSON", file_format="json", out_dir=tmp_path / "out")
    assert not outcome.ok
    assert constant.lstrip("-") in outcome.reason and "not valid JSON" in outcome.reason
