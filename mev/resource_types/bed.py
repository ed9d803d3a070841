"""Checks for the BED family (BED3, BED6, narrowPeak): tab-separated, no header line (§3.4).

Rows are the file's 1-based line numbers; columns are given by their 1-based index and BED name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .messages import MAX_LISTED, listing, plural, quote
from .outcome import ValidationFailure
from .tables import NUMBER_PATTERN, UTF8_BOM, check_utf8

BED3_COLUMNS = ("chrom", "start", "stop")
BED6_COLUMNS = (*BED3_COLUMNS, "name", "score", "strand")
NARROWPEAK_COLUMNS = (*BED6_COLUMNS, "signal_value", "pval", "qval", "peak")

INTEGER_PATTERN = r"^[+-]?\d+$"
INTEGER_COLUMNS = frozenset({"start", "stop", "score", "peak"})
FLOAT_COLUMNS = frozenset({"signal_value", "pval", "qval"})
Render = Callable[[int], str]
NO_HEADER_REMINDER = "(Columns are numbered from 1. BED files have no header line.)"
_NON_SPACE = re.compile(rb"\S")


@dataclass
class CheckedBed:
    table: pa.Table  # typed columns under the BED names, no row-label column
    warnings: list[str]


class _Offenders:
    def __init__(self) -> None:
        self.items: list[tuple[int, int, str]] = []
        self.total = 0

    def add(self, rows: np.ndarray, column: int, sentence: Render) -> None:
        self.total += len(rows)
        for row in rows[:MAX_LISTED]:
            self.items.append((int(row), column, sentence(int(row))))

    def raise_if_any(self, lead: str) -> None:
        if self.total:
            self.items.sort()
            sentences = [s for _, _, s in self.items]
            raise ValidationFailure(f"{lead} {listing(sentences, self.total)} {NO_HEADER_REMINDER}")


class _LineNumbers:
    """Row index -> 1-based file line; only scans the file when blank lines shift the two apart."""

    def __init__(self, data: bytes, n_rows: int) -> None:
        newlines = data.count(b"\n")
        self._data = data
        self._simple = newlines + int(bool(data) and not data.endswith(b"\n")) == n_rows
        self._numbers: list[int] | None = None

    def __getitem__(self, row: int) -> int:
        if self._simple:
            return row + 1
        if self._numbers is None:
            lines = self._data.split(b"\n")
            self._numbers = [n for n, line in enumerate(lines, start=1) if line.rstrip(b"\r")]
        return self._numbers[row]


def _indices(mask: pa.ChunkedArray | pa.Array) -> np.ndarray:
    filled = pc.fill_null(mask, False)
    if isinstance(filled, pa.ChunkedArray):
        filled = filled.combine_chunks()
    return np.flatnonzero(filled.to_numpy(zero_copy_only=False))


class BedChecker:
    def __init__(self, *, columns: tuple[str, ...], type_title: str) -> None:
        self.columns = columns
        self.type_title = type_title

    def check(self, data: bytes) -> CheckedBed:
        if data.startswith(UTF8_BOM):
            data = data[len(UTF8_BOM) :]
        if _NON_SPACE.search(data) is None:
            raise ValidationFailure("The file is empty.")
        check_utf8(data)
        expected = len(self.columns)
        table = self._read(data, expected)
        lines = _LineNumbers(data, table.num_rows)

        def where(row: int, position: int) -> str:
            return f"Line {lines[row]}, column {position + 1} ({self.columns[position]})"

        def about(position: int, values: pa.ChunkedArray, problem: str, *, quoted: bool = True) -> Render:
            """Sentence for one bad cell: where it is, its value, what is wrong."""

            def render(row: int) -> str:
                value = values[row].as_py()
                return f"{where(row, position)}: {quote(value) if quoted else value} {problem}"

            return render

        def is_empty(position: int) -> Render:
            def render(row: int) -> str:
                return f"{where(row, position)} is empty."

            return render

        cells = {name: pc.utf8_trim_whitespace(table.column(name)) for name in self.columns}
        self._check_header(table, cells, lines)

        empty = _Offenders()
        for position, name in enumerate(self.columns):
            rows = _indices(pc.equal(cells[name], ""))
            empty.add(rows, position, is_empty(position))
        empty.raise_if_any(
            "BED files may not have empty cells; they are typically blanks, or spaces used instead of tabs."
        )

        problems = _Offenders()
        for position, name in enumerate(self.columns):
            if name in INTEGER_COLUMNS:
                ok = pc.match_substring_regex(cells[name], INTEGER_PATTERN)
                problems.add(
                    _indices(pc.invert(ok)), position, about(position, cells[name], "is not an integer.")
                )
            elif name in FLOAT_COLUMNS:
                ok = pc.match_substring_regex(cells[name], NUMBER_PATTERN, ignore_case=True)
                problems.add(
                    _indices(pc.invert(ok)), position, about(position, cells[name], "is not a number.")
                )
        problems.raise_if_any(f"Some cells of this {self.type_title} do not hold the expected numbers.")

        typed: dict[str, pa.ChunkedArray] = {}
        for name in self.columns:
            if name in INTEGER_COLUMNS:
                typed[name] = pc.cast(cells[name], pa.int64())
            elif name in FLOAT_COLUMNS:
                typed[name] = pc.cast(cells[name], pa.float64())
            else:
                typed[name] = table.column(name)

        ranges = _Offenders()
        for name in ("start", "stop"):
            position = self.columns.index(name)
            rows = _indices(pc.less(typed[name], 0))
            ranges.add(
                rows,
                position,
                about(position, typed[name], "is negative; coordinates start at 0.", quoted=False),
            )
        start, stop = typed["start"], typed["stop"]

        def start_after_stop(row: int) -> str:
            return (
                f"Line {lines[row]}: start {start[row].as_py()} (column 2) is greater than stop "
                f"{stop[row].as_py()} (column 3)."
            )

        ranges.add(_indices(pc.greater(start, stop)), 1, start_after_stop)
        if "score" in typed:
            score = typed["score"]
            rows = _indices(pc.or_(pc.less(score, 0), pc.greater(score, 1000)))
            ranges.add(rows, 4, about(4, score, "is outside 0 to 1000.", quoted=False))
            strand = cells["strand"]
            rows = _indices(pc.invert(pc.is_in(strand, value_set=pa.array([".", "+", "-"]))))
            ranges.add(rows, 5, about(5, strand, 'must be one of ".", "+" or "-".'))
        for name in ("pval", "qval", "peak"):
            if name not in typed:
                continue
            position = self.columns.index(name)
            values = typed[name]
            rows = _indices(pc.and_(pc.less(values, 0), pc.not_equal(values, -1)))
            problem = "is negative; the only negative value allowed is -1 (unknown)."
            ranges.add(rows, position, about(position, cells[name], problem))
        ranges.raise_if_any(f"Some values are out of range for a {self.type_title}.")

        ordered = pa.table([typed[name] for name in self.columns], names=list(self.columns))
        return CheckedBed(table=ordered, warnings=[])

    def _read(self, data: bytes, expected: int) -> pa.Table:
        first_line_end = data.find(b"\n")
        first = data[: first_line_end if first_line_end != -1 else len(data)].rstrip(b"\r\n")
        if first.lower().startswith((b"track", b"browser", b"#")):
            raise ValidationFailure(
                f"Line 1 looks like a header, track or comment line ({quote(first.decode('utf-8', 'replace'))}). "
                "BED files have no header line; remove it and upload the file again."
            )
        found = len(first.split(b"\t"))
        if found != expected:
            hint = ""
            if found == 1 and b" " in first.strip():
                hint = " The columns seem to be separated by spaces; BED files must use tab characters."
            raise ValidationFailure(
                f"Line 1 has {plural(found, 'column')}, but a {self.type_title} has exactly {expected}: "
                f"{', '.join(self.columns)}.{hint} {NO_HEADER_REMINDER}"
            )
        try:
            return pacsv.read_csv(
                pa.py_buffer(data),
                read_options=pacsv.ReadOptions(column_names=list(self.columns), block_size=1 << 24),
                parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False),
                convert_options=pacsv.ConvertOptions(
                    column_types={name: pa.string() for name in self.columns}, strings_can_be_null=False
                ),
            )
        except pa.ArrowInvalid as error:
            raise self._jagged(data, expected) or ValidationFailure(
                f"The file could not be read as a tab-separated BED file: {error}"
            ) from None

    def _jagged(self, data: bytes, expected: int) -> ValidationFailure | None:
        items: list[str] = []
        total = 0
        for number, line in enumerate(data.split(b"\n"), start=1):
            line = line.rstrip(b"\r")
            if not line:
                continue
            found = line.count(b"\t") + 1
            if found != expected:
                total += 1
                if len(items) < MAX_LISTED:
                    items.append(f"Line {number} has {plural(found, 'column')}.")
        if not total:
            return None
        return ValidationFailure(
            f"Every line of a {self.type_title} must have {expected} tab-separated columns "
            f"({', '.join(self.columns)}); {plural(total, 'line does', 'lines do')} not. "
            f"{listing(items, total)} {NO_HEADER_REMINDER}"
        )

    def _check_header(self, table: pa.Table, cells: dict[str, pa.ChunkedArray], lines: _LineNumbers) -> None:
        if not table.num_rows:
            return
        first = [cells[name][0].as_py() for name in self.columns]
        chrom = first[0].lower()
        integral = all(re.fullmatch(INTEGER_PATTERN, first[i]) for i in (1, 2))
        if chrom.startswith(("track", "browser", "#")) or not integral:
            shown = quote("\t".join(first).replace("\t", " "), limit=60)
            raise ValidationFailure(
                f"Line {lines[0]} looks like a header or comment line ({shown}): its start and stop "
                "(columns 2 and 3) are not integers. BED files have no header line; remove it and "
                "upload the file again."
                if not integral
                else f"Line {lines[0]} looks like a header line ({shown}). BED files have no header "
                "line; remove it and upload the file again."
            )
