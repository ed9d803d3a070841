"""Regenerate the malformed-file corpus and expected.json: ``python make_corpus.py``.

Each case is one failure mode: the file, the declared type and format, and fragments that the
failure reason must contain (they name the row, the column and the value).
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent

T = "\t"


def rows(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def tsv(*cells_rows: list[object]) -> bytes:
    return rows(*(T.join(str(c) for c in r) for r in cells_rows))


def counts(n: int = 4, header: tuple[str, ...] = ("", "S1", "S2", "S3")) -> list[list[object]]:
    return [list(header)] + [[f"G{i}", i, i + 1, i + 2] for i in range(1, n + 1)]


def with_cell(table: list[list[object]], row: int, col: int, value: object) -> list[list[object]]:
    """row = 1-based file line, col = 1-based column."""
    table = [list(r) for r in table]
    table[row - 1][col - 1] = value
    return table


CASES: list[tuple[str, bytes, str, str, list[str]]] = [
    ("empty.tsv", b"", "MTX", "tsv", ["The file is empty."]),
    ("whitespace_only.tsv", b"  \n\n\t\n", "MTX", "tsv", ["The file is empty."]),
    ("header_only.tsv", tsv(["", "S1", "S2"]), "MTX", "tsv", ["header row (row 1) but no data rows"]),
    ("only_label_column.tsv", rows("gene", "G1", "G2"), "MTX", "tsv", ["Only one column was found"]),
    (
        "tab_file_as_csv.csv",
        tsv(*counts()),
        "I_MTX",
        "csv",
        ["Only one column was found", "choose the tsv format instead of csv"],
    ),
    (
        "comma_file_as_tsv.tsv",
        rows(",S1,S2", "G1,1,2", "G2,3,4"),
        "MTX",
        "tsv",
        ["Only one column was found", "choose the csv format instead of tsv"],
    ),
    (
        "semicolon_separated.csv",
        rows(";S1;S2", "G1;1;2", "G2;3;4"),
        "MTX",
        "csv",
        ["Only one column was found", "separated by semicolons"],
    ),
    (
        "spaces_instead_of_tabs.tsv",
        rows("gene  S1  S2", "G1  1  2", "G2  3  4"),
        "MTX",
        "tsv",
        ["Only one column was found", "separated by spaces; a tsv file must use tab characters"],
    ),
    (
        "jagged_row.tsv",
        tsv(*counts()[:3], ["G3", 1, 2], *counts()[4:]),
        "MTX",
        "tsv",
        ["Row 4 has 3 fields but the header row has 4."],
    ),
    (
        "jagged_many.csv",
        rows(",S1,S2", "G1,1,2", "G2,1", "G3,1,2,3", "G4,5,6"),
        "MTX",
        "csv",
        ["2 rows do not", "Row 3 has 2 fields", "Row 4 has 4 fields"],
    ),
    (
        "numeric_header.tsv",
        tsv(["", 1, 2, 3], ["G1", 4, 5, 6], ["G2", 7, 8, 9]),
        "MTX",
        "tsv",
        ["Every column name in the header row (row 1) is a number", "header row is probably missing"],
    ),
    (
        "numeric_rownames.tsv",
        tsv(["", "S1", "S2"], [1, 4, 5], [2, 7, 8], [3, 1, 1]),
        "MTX",
        "tsv",
        ["Every row name (first column) is a number", '"1", "2", "3"'],
    ),
    (
        "excel_date_1_mar.tsv",
        tsv(*with_cell(counts(), 3, 1, "1-Mar")),
        "RNASEQ_COUNT_MTX",
        "tsv",
        ['Row 3 (gene "1-Mar") looks like a date', "MARCH1"],
    ),
    (
        "excel_date_2_sep.csv",
        rows(",S1,S2", "G1,1,2", "G2,1,2", "2-Sep,3,4"),
        "I_MTX",
        "csv",
        ['Row 4 (gene "2-Sep") looks like a date'],
    ),
    (
        "excel_date_mar_1.tsv",
        tsv(*with_cell(counts(), 2, 1, "MAR-1")),
        "MTX",
        "tsv",
        ['Row 2 (gene "MAR-1") looks like a date'],
    ),
    (
        "excel_date_iso.tsv",
        tsv(*with_cell(counts(), 5, 1, "2023-03-01")),
        "EXP_MTX",
        "tsv",
        ['Row 5 (gene "2023-03-01") looks like a date'],
    ),
    (
        "missing_rowname.tsv",
        tsv(*with_cell(counts(), 3, 1, "")),
        "MTX",
        "tsv",
        ["Row 3: the row name (first column) is empty."],
    ),
    (
        "duplicate_rownames.tsv",
        tsv(*with_cell(counts(5), 5, 1, "G1")),
        "MTX",
        "tsv",
        ['"G1" appears on rows 2, 5.', "1 name is repeated"],
    ),
    (
        "duplicate_colnames.tsv",
        tsv(*counts(header=("", "S1", "S2", "S1"))),
        "MTX",
        "tsv",
        ['Column name "S1" appears 2 times (columns 2, 4).'],
    ),
    (
        "duplicate_after_space_rule.csv",
        rows(",S 1,S_1", "G1,1,2"),
        "MTX",
        "csv",
        ['Column name "S_1" appears 2 times'],
    ),
    (
        "forbidden_colname.tsv",
        tsv(*counts(header=("", "S1", "S#2", "S3"))),
        "MTX",
        "tsv",
        ['Column 3 name "S#2" contains "#".'],
    ),
    (
        "forbidden_rowname.tsv",
        tsv(*with_cell(counts(), 4, 1, "G/3(x)")),
        "MTX",
        "tsv",
        ['Row 4: row name "G/3(x)" contains "(" ")" "/".'],
    ),
    (
        "too_long_rowname.tsv",
        tsv(*with_cell(counts(), 2, 1, "G" * 101)),
        "MTX",
        "tsv",
        ["Row 2: row name", "is 101 characters long"],
    ),
    (
        "too_long_colname.tsv",
        tsv(*counts(header=("", "S1", "S" * 120, "S3"))),
        "ANN",
        "tsv",
        ["Column 3 name", "is 120 characters long"],
    ),
    (
        "unnamed_column.tsv",
        tsv(*counts(header=("", "S1", "", "S3"))),
        "MTX",
        "tsv",
        ["Column 3 has no name in the header row (row 1)."],
    ),
    (
        "reserved_column.tsv",
        tsv(*counts(header=("", "S1", "__rowname__", "S3"))),
        "ANN",
        "tsv",
        ['"__rowname__" is reserved'],
    ),
    (
        "non_numeric_cell.tsv",
        tsv(*with_cell(counts(), 3, 3, "abc")),
        "MTX",
        "tsv",
        ['Row 3 (gene "G2"), column "S2": "abc" is not a number.', "1 cell is not"],
    ),
    (
        "decimal_comma.tsv",
        tsv(*with_cell(counts(), 4, 2, "1,5")),
        "EXP_MTX",
        "tsv",
        ['Row 4 (gene "G3"), column "S1": "1,5" is not a number.'],
    ),
    (
        "hash_is_data.tsv",
        tsv(*with_cell(counts(), 5, 4, "#7")),
        "MTX",
        "tsv",
        ['Row 5 (gene "G4"), column "S3": "#7" is not a number.'],
    ),
    (
        "boolean_cells.tsv",
        tsv(["", "S1", "S2"], ["G1", "TRUE", 1], ["G2", "FALSE", 2]),
        "NS",
        "tsv",
        ['Row 2 (node "G1"), column "S1": "TRUE" is not a number.'],
    ),
    (
        "date_cells.tsv",
        tsv(["", "S1", "S2"], ["G1", "2024-01-01", 1], ["G2", "2024-01-02", 2]),
        "MTX",
        "tsv",
        ['Row 2 (gene "G1"), column "S1": "2024-01-01" is not a number.'],
    ),
    (
        "non_integer.tsv",
        tsv(*with_cell(counts(7), 7, 4, "7.5")),
        "I_MTX",
        "tsv",
        ['Row 7 (gene "G6"), column "S3": "7.5" is not an integer.'],
    ),
    (
        "non_integer_2_07.csv",
        rows(",S1,S2", "G1,1,2", "G2,2.07,5.0"),
        "RNASEQ_COUNT_MTX",
        "csv",
        ['Row 3 (gene "G2"), column "S1": "2.07" is not an integer.', "1 cell is not"],
    ),
    (
        "negative_count.tsv",
        tsv(*with_cell(counts(), 3, 2, -3)),
        "RNASEQ_COUNT_MTX",
        "tsv",
        ['Row 3 (gene "G2"), column "S1": "-3" is negative'],
    ),
    # A missing value keeps the count parse on its fast path; the negative count sends it to the
    # precise one, which must still name the cell.
    (
        "negative_count_after_missing.tsv",
        tsv(*with_cell(with_cell(counts(), 2, 3, "NA"), 4, 4, -4)),
        "RNASEQ_COUNT_MTX",
        "tsv",
        ['Row 4 (gene "G3"), column "S3": "-4" is negative'],
    ),
    (
        "decimal_count_after_empty.csv",
        rows(*(",".join(str(c) for c in r) for r in with_cell(with_cell(counts(), 2, 2, ""), 3, 3, 2.5))),
        "RNASEQ_COUNT_MTX",
        "csv",
        ['Row 3 (gene "G2"), column "S2": "2.5" is not an integer.'],
    ),
    (
        "infinite_in_integer.tsv",
        tsv(*with_cell(counts(), 2, 3, "inf")),
        "I_MTX",
        "tsv",
        ['Row 2 (gene "G1"), column "S2": "inf" is infinite, not an integer.'],
    ),
    (
        "many_offenders.tsv",
        tsv(["", "S1", "S2"], *[[f"G{i}", f"x{i}", 1] for i in range(1, 13)]),
        "MTX",
        "tsv",
        [
            "12 cells are not",
            'Row 2 (gene "G1"), column "S1": "x1" is not a number.',
            'Row 6 (gene "G5"), column "S1": "x5"',
            "(and 7 more not shown)",
        ],
    ),
    (
        "blank_line_numbering.tsv",
        rows("\tS1\tS2", "G1\t1\t2", "", "G2\t1\t2", "G3\t1\tbad"),
        "MTX",
        "tsv",
        ['Row 5 (gene "G3"), column "S2": "bad" is not a number.'],
    ),
    ("ann_no_data_column.tsv", rows("sample", "S1", "S2"), "ANN", "tsv", ["Only one column was found"]),
    (
        "ft_no_data_column.csv",
        rows("gene,", "G1,", "G2,"),
        "FT",
        "csv",
        ["only the row-name column; at least one data column is needed"],
    ),
    (
        "latin1.tsv",
        "\tS1\nG1\t1\nGène\t2\n".encode("latin-1"),
        "MTX",
        "tsv",
        ["not valid UTF-8", "byte 0xe8 at byte offset 10 (line 3, character 2"],
    ),
    (
        "latin1_late.csv",
        (",S1\n" + "".join(f"G{i},{i}\n" for i in range(200)) + "Gx,\xb5\n").encode("latin-1"),
        "MTX",
        "csv",
        ["not valid UTF-8", "byte 0xb5", "line 202"],
    ),
    (
        "not_excel.xlsx",
        tsv(*counts()),
        "MTX",
        "xlsx",
        ["not an Excel workbook", "choose the csv or tsv format"],
    ),
    (
        "old_excel.xls",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504,
        "MTX",
        "xls",
        [".xls", "save it as .xlsx"],
    ),
    (
        "bed_track_line.bed",
        rows("track name=peaks description=x", "chr1\t10\t20"),
        "BED3",
        "tsv",
        [
            'Line 1 looks like a header, track or comment line ("track name=peaks',
            "BED files have no header line",
        ],
    ),
    (
        "bed_header.bed",
        rows("chrom\tstart\tend", "chr1\t10\t20"),
        "BED3",
        "tsv",
        ["Line 1 looks like a header", "BED files have no header line"],
    ),
    (
        "bed_hash_header.bed",
        rows("#chrom\tstart\tend", "chr1\t10\t20"),
        "BED3",
        "tsv",
        ["Line 1 looks like a header"],
    ),
    (
        "bed_empty_cell.bed",
        rows("chr1\t10\t20", "chr1\t\t40", "chr2\t5\t9"),
        "BED3",
        "tsv",
        ["Line 2, column 2 (start) is empty.", "spaces used instead of tabs", "BED files have no header"],
    ),
    (
        "bed_spaces.bed",
        rows("chr1 10 20", "chr1 30 40"),
        "BED3",
        "tsv",
        ["Line 1 has 1 column, but a BED3-format file has exactly 3", "separated by spaces"],
    ),
    (
        "bed_non_integer.bed",
        rows("chr1\t10\t20", "chr1\t30.5\t40"),
        "BED3",
        "tsv",
        ['Line 2, column 2 (start): "30.5" is not an integer.', "Columns are numbered from 1"],
    ),
    (
        "bed_start_after_stop.bed",
        rows("chr1\t10\t20", "chr1\t30\t40", "chr1\t500\t400"),
        "BED3",
        "tsv",
        ["Line 3: start 500 (column 2) is greater than stop 400 (column 3)."],
    ),
    ("bed_negative.bed", rows("chr1\t-5\t20"), "BED3", "tsv", ["Line 1, column 2 (start): -5 is negative"]),
    (
        "bed_wrong_count.bed",
        rows("chr1\t10\t20", "chr1\t30\t40"),
        "BED6",
        "tsv",
        ["Line 1 has 3 columns, but a BED6-format file has exactly 6"],
    ),
    (
        "bed_jagged.bed",
        rows("chr1\t10\t20", "chr1\t30\t40", "chr1\t50"),
        "BED3",
        "tsv",
        ["Line 3 has 2 columns.", "1 line does not"],
    ),
    (
        "bed6_score.bed",
        rows("chr1\t10\t20\tp1\t1200\t+", "chr1\t30\t40\tp2\t5\t-"),
        "BED6",
        "tsv",
        ["Line 1, column 5 (score): 1200 is outside 0 to 1000."],
    ),
    (
        "bed6_strand.bed",
        rows("chr1\t10\t20\tp1\t0\t+", "chr1\t30\t40\tp2\t5\t*"),
        "BED6",
        "tsv",
        ['Line 2, column 6 (strand): "*" must be one of'],
    ),
    (
        "bed6_score_text.bed",
        rows("chr1\t10\t20\tp1\thigh\t+"),
        "BED6",
        "tsv",
        ['Line 1, column 5 (score): "high" is not an integer.'],
    ),
    (
        "nrwpk_pval.bed",
        rows("chr1\t10\t20\tp1\t0\t+\t3.5\t-2\t1.0\t5"),
        "NRWPK",
        "tsv",
        ['Line 1, column 8 (pval): "-2" is negative; the only negative value allowed is -1'],
    ),
    (
        "nrwpk_peak.bed",
        rows("chr1\t10\t20\tp1\t0\t+\t3.5\t-1\t-1\t12.5"),
        "NRWPK",
        "tsv",
        ['Line 1, column 10 (peak): "12.5" is not an integer.'],
    ),
    (
        "nrwpk_signal.bed",
        rows("chr1\t10\t20\tp1\t0\t+\thigh\t1\t1\t5"),
        "NRWPK",
        "tsv",
        ['Line 1, column 7 (signal_value): "high" is not a number.'],
    ),
    (
        "bed_latin1.bed",
        "chr1\t10\t20\nchr\xe92\t1\t2\n".encode("latin-1"),
        "BED3",
        "tsv",
        ["not valid UTF-8", "line 2, character 4"],
    ),
    (
        "json_missing_comma.json",
        b'{\n  "a": 1\n  "b": 2\n}\n',
        "JSON",
        "json",
        [
            "There was an issue with the JSON formatting. The reported error was: Expecting ',' delimiter: "
            "line 3 column 3"
        ],
    ),
    (
        "json_trailing_comma.json",
        b"[1, 2, 3,]\n",
        "JSON",
        "json",
        ["The reported error was:", "line 1 column"],
    ),
    ("json_empty.json", b"", "JSON", "json", ["The reported error was: Expecting value: line 1 column 1"]),
    (
        "json_latin1.json",
        '{"name": "Gène"}'.encode("latin-1"),
        "JSON",
        "json",
        ["not valid UTF-8", "byte 0xe8"],
    ),
]


def main() -> None:
    expected = []
    for name, data, resource_type, file_format, fragments in CASES:
        (HERE / name).write_bytes(data)
        expected.append(
            {"file": name, "resource_type": resource_type, "file_format": file_format, "fragments": fragments}
        )
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(expected)} cases written")


if __name__ == "__main__":
    main()
