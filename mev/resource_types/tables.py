"""Parse csv/tsv/xls/xlsx tables once with pyarrow and check them for the table resource types.

Row numbers in messages follow the convention of ``messages.py``: 1-based, as a spreadsheet
shows the file (header = row 1, first data row = row 2, blank lines counted).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .messages import MAX_LISTED, listing, plural, quote
from .outcome import ValidationFailure

if TYPE_CHECKING:
    from .fastparse import FastBody

ROWNAME = "__rowname__"
MAX_IDENTIFIER_LENGTH = 100
UTF8_BOM = b"\xef\xbb\xbf"

# Cells that mean "missing" (pyarrow's own list for numeric columns; we apply it to text columns too).
MISSING_TOKENS = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip
# The missing-value cells of the fast integer parse: those a number cannot start with, so a
# number is told apart at its first character (the whole list costs ~15% more parse time).
# The others ("-nan", "1.#IND", ...) make the fast parse fail and the precise one read them.
FAST_MISSING_TOKENS = tuple(t for t in MISSING_TOKENS if t[:1] not in (*"0123456789", "+", "-", "."))
NUMBER_PATTERN = r"^[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|inf|infinity|nan)$"
IDENTIFIER_PATTERN = r"^[A-Za-z0-9._:\-]+$"
_MONTH = "(jan|feb|mar|apr|may|jun|jul|aug|sept?|oct|nov|dec)"
# What spreadsheet programs make of gene names such as MARCH1, SEPT2 or DEC1.
DATE_PATTERN = (
    rf"^(\d{{1,2}}-{_MONTH}(-\d{{2,4}})?|{_MONTH}-\d{{1,2}}(-\d{{2,4}})?"
    r"|\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2})?)?|\d{1,2}/\d{1,2}/\d{2,4})$"
)
_NUMBER_RE = re.compile(NUMBER_PATTERN, re.IGNORECASE)
_NON_SPACE = re.compile(rb"\S")
_FORBIDDEN_CHARS = re.compile(r"[^A-Za-z0-9._:\-]")

ValueKind = Literal["numeric", "integer", "any"]

# pyarrow's CSV block size. 1-16 MB all cost about the same (bench/bench_validation.py data);
# smaller blocks multiply the chunks (one per block and column), larger ones use fewer threads.
PARSE_BLOCK_SIZE = 1 << 22
# Threads halve the wall time of a large parse on two cores for ~10% more CPU time in all.
PARSE_USE_THREADS = True
# Count tables (uint32 columns) are read by ``fastparse`` first: a numba tokenizer for the common
# file whose every cell is a plain whole number, ~5x less CPU than pyarrow's read. It declines
# anything else, and pyarrow reads the file as before. Bodies below FAST_PARSE_MIN_BYTES are left
# to pyarrow: it reads them in milliseconds, and the first fast parse of a process pays for
# importing numba and loading the compiled tokenizer (see bench/bench_validation.py).
FAST_PARSE = True
FAST_PARSE_MIN_BYTES = 1 << 20


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


@dataclass
class LineMap:
    """Maps 0-based data-row indices of the parsed table to the row numbers a user sees."""

    first_data_line: int
    body: bytes | None = None
    body_start: int = 0
    explicit: list[int] | None = None
    kept: np.ndarray | None = None  # indices that survived dropping entirely empty rows
    n_parsed_rows: int = 0
    _lines: list[int] | None = field(default=None, repr=False)
    _blank: bool | None = field(default=None, repr=False)

    def has_blank_lines(self) -> bool:
        """True when the body has empty lines, which pyarrow skips (so rows and lines drift apart)."""
        if self.explicit is not None or self.body is None:
            return False
        if self._blank is None:
            body = self.body
            newlines = count_byte(body, b"\n", self.body_start)
            last_open = len(body) > self.body_start and body[-1:] != b"\n"
            self._blank = newlines + int(last_open) != self.n_parsed_rows
        return self._blank

    def line(self, index: int) -> int:
        if self.kept is not None:
            index = int(self.kept[index])
        if self.explicit is not None:
            return self.explicit[index]
        if not self.has_blank_lines():
            return self.first_data_line + index
        if self._lines is None:
            assert self.body is not None
            chunk = self.body[self.body_start :]
            self._lines = [
                self.first_data_line + number
                for number, text in enumerate(chunk.split(b"\n"))
                if text.rstrip(b"\r")
            ]
        return self._lines[index]


@dataclass
class ParsedTable:
    """A table as read from the file: label column first, data columns named c1..cN internally."""

    table: pa.Table  # numeric tables: only the row names once checked (see TableChecker._check_values)
    header: list[str]  # header cells of the data columns, as written in the file
    rowname_header: str
    lines: LineMap
    source_format: str
    header_line: int = 1
    # Raw text the table came from; lets the standard TSV be produced by a byte rewrite.
    raw: bytes | None = None
    body_start: int = 0
    rows_or_columns_dropped: bool = False
    warnings: list[str] = field(default_factory=list)
    internal_names: list[str] = field(default_factory=list)
    source_path: Path | None = None  # the file ``raw`` was read from, when unchanged on disk
    source_offset: int = 0  # bytes dropped from the start of the file (a BOM)
    raw_is_source: bool = False  # ``raw`` holds the file's bytes unchanged (apart from a BOM)


def count_byte(data: bytes, byte: bytes, start: int = 0) -> int:
    """``data.count(byte, start)`` for one byte, about three times faster on large data."""
    if len(data) - start < 1 << 16:
        return data.count(byte, start)
    view = np.frombuffer(data, dtype=np.uint8, offset=start)
    step = 1 << 24  # bounds the temporary mask
    return sum(int(np.count_nonzero(view[i : i + step] == byte[0])) for i in range(0, len(view), step))


def utf8_failure(data: bytes, error: UnicodeDecodeError, *, base_offset: int = 0) -> ValidationFailure:
    offset = base_offset + error.start
    line = data.count(b"\n", 0, offset) + 1
    line_start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", errors="replace")) + 1
    byte = data[offset]
    near = data[max(line_start, offset - 20) : offset].decode("utf-8", errors="replace")
    return ValidationFailure(
        f"The file is not valid UTF-8 text: byte 0x{byte:02x} at byte offset {offset} "
        f"(line {line}, character {column}, after {quote(near)}) cannot be decoded. "
        "Save the file with the UTF-8 encoding and upload it again."
    )


def check_utf8(data: bytes) -> None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise utf8_failure(data, error) from None


def _decode(data: bytes, start: int, end: int) -> str:
    try:
        return data[start:end].decode("utf-8")
    except UnicodeDecodeError as error:
        raise utf8_failure(data, error, base_offset=start) from None


def _split_line(text: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([text], delimiter=delimiter), [])
    except csv.Error as error:
        raise ValidationFailure(f"A line could not be split into fields ({error}): {quote(text)}") from None


def _line_end(data: bytes, start: int) -> int:
    end = data.find(b"\n", start)
    return len(data) if end == -1 else end


def _other_delimiter_hint(line: str, file_format: str) -> str:
    if file_format == "csv" and "\t" in line:
        return " The file looks tab-delimited: choose the tsv format instead of csv."
    if file_format == "tsv" and "," in line:
        return " The file looks comma-delimited: choose the csv format instead of tsv."
    if ";" in line:
        return " The columns seem to be separated by semicolons; save the file as csv (commas) or tsv (tabs)."
    if file_format == "tsv" and "  " in line:
        return " The columns seem to be separated by spaces; a tsv file must use tab characters."
    return ""


def parse_text_table(
    data: bytes,
    *,
    file_format: str,
    explicit_lines: list[int] | None = None,
    expected_type: pa.DataType | None = None,
) -> ParsedTable:
    """Parse csv/tsv bytes. ``explicit_lines`` gives sheet row numbers when the text came from Excel.

    ``expected_type`` (uint32 for count tables, int64 for other integer tables) is tried first for
    every data column: it skips type inference, and an unsigned type needs no test for negative
    numbers. Only ``FAST_MISSING_TOKENS`` are missing values there, which keeps the lookup cheap.
    If any cell does not convert (a sign, text, a decimal, a number too large, a rarer missing
    token), the table is parsed again with inference so the checks can name every bad cell with
    its row, column and value, exactly as without the fast attempt.
    """
    delimiter = "," if file_format == "csv" else "\t"
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
    if _NON_SPACE.search(data) is None:
        raise ValidationFailure("The file is empty.")
    converted = False
    if data.find(b"\n") == -1 and data.find(b"\r") != -1:
        data = data.replace(b"\r", b"\n")  # classic Mac OS line endings
        converted = True

    # Skip blank lines before the header; a spreadsheet export sometimes starts with one.
    pos, header_line = 0, 1
    while not data[pos : _line_end(data, pos)].strip():
        pos = _line_end(data, pos) + 1
        header_line += 1
    header_end = _line_end(data, pos)
    header_text = _decode(data, pos, header_end).rstrip("\r")
    header = _split_line(header_text, delimiter)
    body_start = min(header_end + 1, len(data))
    if explicit_lines is not None:
        header_line = explicit_lines[0]

    first = _NON_SPACE.search(data, body_start)
    if first is None:
        raise ValidationFailure(
            f"The table has a header row (row {header_line}) but no data rows."
            + _other_delimiter_hint(header_text, file_format)
        )
    first_start = data.rfind(b"\n", 0, first.start()) + 1
    first_line_text = _decode(data, first_start, _line_end(data, first_start)).rstrip("\r")
    n_first = len(_split_line(first_line_text, delimiter))

    warnings: list[str] = []
    if len(header) == n_first - 1:
        # Written by R's write.table: the row-name column has no header cell.
        header = ["", *header]
        warnings.append(
            "The header row has one name fewer than the data rows; the first column was taken "
            "as the row names."
        )
    if len(header) <= 1 and n_first <= 1:
        raise ValidationFailure(
            "Only one column was found, but a table needs the row names in the first column and at "
            "least one data column." + _other_delimiter_hint(header_text + first_line_text, file_format)
        )

    internal = [ROWNAME] + [f"c{i}" for i in range(1, len(header))]
    # No quote in the body: the tokenizer need not look for quoted fields (~5% of the parse).
    quote_char: str | bool = '"' if data.find(b'"', body_start) != -1 else False

    def read(column_types: dict[str, pa.DataType], **missing: list[str]) -> pa.Table:
        return pacsv.read_csv(
            pa.py_buffer(memoryview(data)[body_start:]),
            read_options=pacsv.ReadOptions(
                column_names=internal, block_size=PARSE_BLOCK_SIZE, use_threads=PARSE_USE_THREADS
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, quote_char=quote_char, newlines_in_values=False
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=column_types,
                true_values=[],
                false_values=[],
                strings_can_be_null=False,
                **missing,
            ),
        )

    try:
        table = None
        fast = None
        if expected_type is not None and pa.types.is_uint32(expected_type) and quote_char is False:
            fast = _fast_uint32_read(data, body_start, len(internal), delimiter)
            if fast is not None:
                table = pa.table([fast.names, *fast.columns], names=internal)
        if expected_type is not None and table is None:
            try:
                table = read(
                    {ROWNAME: pa.string(), **{name: expected_type for name in internal[1:]}},
                    null_values=list(FAST_MISSING_TOKENS),
                )
            except pa.ArrowInvalid as error:
                if "conversion error" not in str(error):
                    raise
        if table is None:
            table = read({ROWNAME: pa.string()})
    except pa.ArrowInvalid as error:
        message = str(error)
        if "UTF8" in message or "utf8" in message.lower():
            check_utf8(data)
        if "Expected" in message and "columns" in message:
            raise _jagged_failure(
                data, body_start, delimiter, len(header), header_line, file_format, explicit_lines
            ) from None
        raise ValidationFailure(f"The file could not be read as {file_format.upper()}: {message}") from None

    if any(pa.types.is_binary(kind) or pa.types.is_large_binary(kind) for kind in table.schema.types):
        check_utf8(data)  # pyarrow keeps undecodable columns as bytes; say where the bad byte is
    lines = LineMap(
        first_data_line=header_line + 1,
        body=data if explicit_lines is None else None,
        body_start=body_start,
        explicit=explicit_lines[1:] if explicit_lines is not None else None,
        n_parsed_rows=table.num_rows,
    )
    if fast is not None and explicit_lines is None:
        lines._blank = fast.blank_lines > 0  # what has_blank_lines() would count again
    parsed = ParsedTable(
        table=table,
        header=header[1:],
        rowname_header=header[0],
        lines=lines,
        source_format=file_format,
        header_line=header_line,
        raw=data if explicit_lines is None else None,
        body_start=body_start,
        warnings=warnings,
        internal_names=internal,
        raw_is_source=not converted and explicit_lines is None,
    )
    _drop_empty(parsed)
    return parsed


def _fast_uint32_read(data: bytes, body_start: int, n_fields: int, delimiter: str) -> FastBody | None:
    """The columns pyarrow's uint32 read gives, from ``fastparse`` (several times faster); None
    when the fast parse is off, the body is small, or it declines (any cell that is not a plain
    count, see ``fastparse.read_uint32_body``): then pyarrow reads the file as before."""
    if not FAST_PARSE or len(data) - body_start < FAST_PARSE_MIN_BYTES:
        return None
    from . import fastparse  # imports numba: only once a large count table comes

    return fastparse.read_uint32_body(
        data, body_start, n_fields, delimiter, threads=pa.cpu_count() if PARSE_USE_THREADS else 1
    )


def _jagged_failure(
    data: bytes,
    body_start: int,
    delimiter: str,
    expected: int,
    header_line: int,
    file_format: str,
    explicit_lines: list[int] | None,
) -> ValidationFailure:
    text = data[body_start:].decode("utf-8", errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    offenders: list[str] = []
    total = 0
    hint = ""
    data_row = 0
    for row in reader:
        if not row:
            continue
        data_row += 1
        if len(row) != expected:
            total += 1
            if len(offenders) < MAX_LISTED:
                if explicit_lines is not None:
                    line = explicit_lines[data_row]
                else:
                    line = header_line + reader.line_num
                offenders.append(
                    f"Row {line} has {plural(len(row), 'field')} but the header row has {expected}."
                )
                if not hint and len(row) == 1:
                    hint = _other_delimiter_hint(row[0], file_format)
    if not offenders:
        return ValidationFailure(
            f"The file could not be read as {file_format.upper()}: the rows do not all have the same "
            "number of fields. Check for stray quote characters or cells outside the table."
        )
    lead = (
        f"Every row must have as many fields as the header row ({expected}); "
        f"{plural(total, 'row does', 'rows do')} not."
    )
    return ValidationFailure(f"{lead} {listing(offenders, total)}{hint}")


def _drop_empty(parsed: ParsedTable) -> None:
    """Drop rows and columns that are entirely empty (§3.3), remembering original row numbers."""
    table = parsed.table
    empty_header = [i for i, name in enumerate(parsed.header) if not name.strip()]
    drop_columns = []
    for i in empty_header:
        column = table.column(i + 1)
        if column.null_count == len(column) or (
            pa.types.is_string(column.type) and pc.all(pc.equal(pc.utf8_trim_whitespace(column), "")).as_py()
        ):
            drop_columns.append(i)
    if drop_columns:
        keep = [i for i in range(len(parsed.header)) if i not in drop_columns]
        table = table.select([0] + [i + 1 for i in keep])
        parsed.header = [parsed.header[i] for i in keep]
        parsed.rows_or_columns_dropped = True

    blank_names = pc.equal(pc.utf8_trim_whitespace(table.column(0)), "")
    if table.num_rows and pc.any(blank_names).as_py():
        empty = blank_names
        for i in range(1, table.num_columns):
            column = table.column(i)
            if pa.types.is_string(column.type):
                cell_empty = pc.equal(pc.utf8_trim_whitespace(column), "")
            else:
                cell_empty = pc.is_null(column)
            empty = pc.and_(empty, cell_empty)
        if pc.any(empty).as_py():
            keep_mask = pc.invert(empty)
            parsed.lines.kept = np.flatnonzero(keep_mask.to_numpy(zero_copy_only=False))
            table = table.filter(keep_mask)
            parsed.rows_or_columns_dropped = True
    parsed.table = table


# --------------------------------------------------------------------------------------------
# Excel
# --------------------------------------------------------------------------------------------


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _rows_to_text(rows: Sequence[tuple[int, Sequence[object]]]) -> tuple[bytes, list[int]]:
    width = 0
    for _, values in rows:
        for i in range(len(values) - 1, -1, -1):
            if values[i] is not None and str(values[i]).strip() != "":
                width = max(width, i + 1)
                break
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    numbers = []
    for number, values in rows:
        cells = [_cell_text(v) for v in values[:width]]
        if not any(cell.strip() for cell in cells):
            continue
        cells += [""] * (width - len(cells))
        writer.writerow(cells)
        numbers.append(number)
    return buffer.getvalue().encode("utf-8"), numbers


def parse_excel_table(path: Path, *, file_format: str) -> ParsedTable:
    """Read the first sheet of an xlsx (openpyxl) or xls (xlrd, when installed) workbook."""
    with path.open("rb") as handle:
        magic = handle.read(8)
    if not magic:
        raise ValidationFailure("The file is empty.")
    if magic.startswith(b"PK"):
        rows = _read_xlsx(path)
    elif magic.startswith(b"\xd0\xcf\x11\xe0"):
        rows = _read_xls(path)
    else:
        raise ValidationFailure(
            f"The file is not an Excel workbook, although the {file_format} format was chosen. If it "
            "is a text table, choose the csv or tsv format."
        )
    if not rows:
        raise ValidationFailure("The file is empty: the first sheet of the workbook has no cells.")
    text, numbers = _rows_to_text(rows)
    if not numbers:
        raise ValidationFailure("The file is empty: the first sheet of the workbook has no cells.")
    parsed = parse_text_table(text, file_format="tsv", explicit_lines=numbers)
    parsed.source_format = file_format
    return parsed


def _read_xlsx(path: Path) -> list[tuple[int, Sequence[object]]]:
    import openpyxl

    # A file handle, not the path: openpyxl refuses paths whose extension is not .xlsx, and an
    # xlsx workbook is often declared (or named) xls.
    with path.open("rb") as handle:
        try:
            workbook = openpyxl.load_workbook(handle, read_only=True, data_only=True)
        except Exception as error:  # zipfile, XML and openpyxl errors on a damaged workbook
            raise ValidationFailure(f"The Excel workbook could not be opened: {error}") from None
        try:
            if not workbook.worksheets:
                return []
            sheet = workbook.worksheets[0]
            return [(number, row) for number, row in enumerate(sheet.iter_rows(values_only=True), start=1)]
        finally:
            workbook.close()


def _read_xls(path: Path) -> list[tuple[int, Sequence[object]]]:
    try:
        import xlrd  # type: ignore[import-not-found]
    except ImportError:
        raise ValidationFailure(
            "Old-style Excel 97-2003 (.xls) workbooks cannot be read here. Open the file in your "
            "spreadsheet program and save it as .xlsx (or export the first sheet as csv/tsv), then "
            "upload it again."
        ) from None
    try:
        book = xlrd.open_workbook(str(path))
    except Exception as error:  # xlrd raises its own hierarchy, plus struct/IndexError on junk
        raise ValidationFailure(f"The Excel workbook could not be opened: {error}") from None
    sheet = book.sheet_by_index(0)
    rows: list[tuple[int, Sequence[object]]] = []
    for r in range(sheet.nrows):
        values: list[object] = []
        for c in range(sheet.ncols):
            cell = sheet.cell(r, c)
            if cell.ctype == xlrd.XL_CELL_DATE:
                values.append(xlrd.xldate.xldate_as_datetime(cell.value, book.datemode))
            elif cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
                values.append(None)
            else:
                values.append(cell.value)
        rows.append((r + 1, values))
    return rows


def parse_table(path: Path, *, file_format: str, expected_type: pa.DataType | None = None) -> ParsedTable:
    if file_format in ("xls", "xlsx"):
        return parse_excel_table(path, file_format=file_format)
    data = path.read_bytes()
    parsed = parse_text_table(data, file_format=file_format, expected_type=expected_type)
    if parsed.raw_is_source:
        parsed.source_path = path
    parsed.source_offset = len(UTF8_BOM) if data.startswith(UTF8_BOM) else 0
    return parsed


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def normalize_identifiers(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """The identifier rule of §3.3: trim, then spaces become underscores."""
    return pc.replace_substring(pc.utf8_trim_whitespace(values), " ", "_")


def normalize_identifier(value: str) -> str:
    return value.strip().replace(" ", "_")


def _mask_indices(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    filled = pc.fill_null(mask, False)
    if isinstance(filled, pa.ChunkedArray):
        filled = filled.combine_chunks()
    return np.flatnonzero(filled.to_numpy(zero_copy_only=False))


def _forbidden(identifier: str) -> str:
    chars = sorted(set(_FORBIDDEN_CHARS.findall(identifier)))
    return " ".join(quote(c) for c in chars)


@dataclass
class CheckedTable:
    """A table that passed its checks, ready to be written in standard form."""

    table: pa.Table  # __rowname__ (normalized) + data columns under their normalized names
    names: list[str]
    warnings: list[str]
    values_rewritten: bool  # some text cells were converted, so a byte copy would not be standard
    numeric_only: bool = False  # every data column holds numbers


class TableChecker:
    """Runs the §3.3 checks; parameterised by each table type family."""

    def __init__(self, *, value_kind: ValueKind, nonnegative: bool, row_noun: str, type_title: str) -> None:
        self.value_kind = value_kind
        self.nonnegative = nonnegative
        self.row_noun = row_noun
        self.type_title = type_title

    def row_label(self, parsed: ParsedTable, index: int, name: str | None = None) -> str:
        label = f"Row {parsed.lines.line(index)}"
        if name is None:
            name = parsed.table.column(0)[index].as_py()
        return f"{label} ({self.row_noun} {quote(name)})" if name else label

    def check(self, parsed: ParsedTable) -> CheckedTable:
        warnings = list(parsed.warnings)
        if not parsed.header:
            raise ValidationFailure(
                "The table has only the row-name column; at least one data column is needed."
            )
        names = self._check_column_names(parsed)
        rownames = self._check_row_names(parsed)
        columns, rewritten = self._check_values(parsed, names, warnings)
        table = pa.table([rownames, *columns], names=[ROWNAME, *names])
        return CheckedTable(
            table=table,
            names=names,
            warnings=warnings,
            values_rewritten=rewritten,
            numeric_only=self.value_kind != "any",
        )

    # -- header -------------------------------------------------------------------------------

    def _check_column_names(self, parsed: ParsedTable) -> list[str]:
        names = [normalize_identifier(h) for h in parsed.header]
        row = parsed.header_line
        # 1-based column numbers in the file, still right after empty columns were dropped.
        position = [int(name[1:]) + 1 for name in parsed.table.column_names[1:]]
        unnamed = [i for i, name in enumerate(names) if not name]
        if unnamed:
            items = [f"Column {position[i]} has no name in the header row (row {row})." for i in unnamed]
            raise ValidationFailure(
                "Every data column needs a name in the header row. " + listing(items, len(unnamed))
            )
        seen: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            seen.setdefault(name, []).append(position[i])
        duplicates = {name: positions for name, positions in seen.items() if len(positions) > 1}
        if duplicates:
            items = [
                f"Column name {quote(name)} appears {len(pos)} times (columns {', '.join(map(str, pos))})."
                for name, pos in duplicates.items()
            ]
            raise ValidationFailure("Column names must be unique. " + listing(items, len(duplicates)))
        if all(_NUMBER_RE.match(name) for name in names):
            shown = ", ".join(quote(n) for n in names[:MAX_LISTED])
            raise ValidationFailure(
                f"Every column name in the header row (row {row}) is a number ({shown}"
                f"{', …' if len(names) > MAX_LISTED else ''}). The header row is probably missing: "
                "the first row must hold the column names."
            )
        if ROWNAME in names:
            raise ValidationFailure(f"The column name {quote(ROWNAME)} is reserved; rename that column.")
        bad = []
        for i, name in enumerate(names):
            if len(name) > MAX_IDENTIFIER_LENGTH:
                bad.append(
                    f"Column {position[i]} name {quote(name)} is {len(name)} characters long "
                    f"(at most {MAX_IDENTIFIER_LENGTH})."
                )
            elif not re.fullmatch(IDENTIFIER_PATTERN, name):
                bad.append(f"Column {position[i]} name {quote(name)} contains {_forbidden(name)}.")
        if bad:
            raise ValidationFailure(
                "Column names may contain only letters, digits and the characters . - _ : "
                f"(spaces become _), and at most {MAX_IDENTIFIER_LENGTH} characters. "
                + listing(bad, len(bad))
            )
        return names

    # -- row names ----------------------------------------------------------------------------

    def _check_row_names(self, parsed: ParsedTable) -> pa.ChunkedArray:
        original = parsed.table.column(0)
        rownames = normalize_identifiers(original)
        n = len(rownames)

        missing = _mask_indices(pc.equal(rownames, ""))
        if len(missing):
            items = [
                f"Row {parsed.lines.line(int(i))}: the row name (first column) is empty."
                for i in missing[:MAX_LISTED]
            ]
            raise ValidationFailure(
                "Every row needs a name in the first column. " + listing(items, len(missing))
            )

        dates = _mask_indices(pc.match_substring_regex(rownames, DATE_PATTERN, ignore_case=True))
        if len(dates):
            items = [f"{self.row_label(parsed, int(i))} looks like a date." for i in dates[:MAX_LISTED]]
            raise ValidationFailure(
                "Some row names look like dates: spreadsheet programs turn gene names such as MARCH1, "
                "SEPT2 or DEC1 into dates (1-Mar, 2-Sep, 2023-12-01). Re-create the file from the "
                "original data, or import the name column as text. " + listing(items, len(dates))
            )

        if pc.count_distinct(rownames).as_py() != n:
            positions: dict[str, list[int]] = {}
            for i, name in enumerate(rownames.to_pylist()):
                positions.setdefault(name, []).append(i)
            duplicates = {name: rows for name, rows in positions.items() if len(rows) > 1}
            items = []
            for name, rows in list(duplicates.items())[:MAX_LISTED]:
                where = ", ".join(str(parsed.lines.line(r)) for r in rows[:MAX_LISTED])
                more = f" and {len(rows) - MAX_LISTED} more" if len(rows) > MAX_LISTED else ""
                items.append(f"{quote(name)} appears on rows {where}{more}.")
            raise ValidationFailure(
                f"Row names must be unique; {plural(len(duplicates), 'name is', 'names are')} repeated. "
                + listing(items, len(duplicates))
            )

        numeric = pc.match_substring_regex(rownames, NUMBER_PATTERN, ignore_case=True)
        if pc.all(numeric).as_py():
            shown = ", ".join(quote(v) for v in rownames.slice(0, MAX_LISTED).to_pylist())
            raise ValidationFailure(
                f"Every row name (first column) is a number ({shown}"
                f"{', …' if n > MAX_LISTED else ''}). The first column must hold the row names "
                "(e.g. gene or sample identifiers), not data."
            )

        too_long = pc.greater(pc.utf8_length(rownames), MAX_IDENTIFIER_LENGTH)
        invalid = pc.invert(pc.match_substring_regex(rownames, IDENTIFIER_PATTERN))
        bad = _mask_indices(pc.or_(too_long, invalid))
        if len(bad):
            items = []
            for i in bad[:MAX_LISTED]:
                name = rownames[int(i)].as_py()
                where = f"Row {parsed.lines.line(int(i))}"
                if len(name) > MAX_IDENTIFIER_LENGTH:
                    items.append(f"{where}: row name {quote(name)} is {len(name)} characters long.")
                else:
                    items.append(f"{where}: row name {quote(name)} contains {_forbidden(name)}.")
            raise ValidationFailure(
                "Row names may contain only letters, digits and the characters . - _ : (spaces "
                f"become _), and at most {MAX_IDENTIFIER_LENGTH} characters. " + listing(items, len(bad))
            )
        return rownames

    # -- values -------------------------------------------------------------------------------

    def _check_values(
        self, parsed: ParsedTable, names: list[str], warnings: list[str]
    ) -> tuple[list[pa.ChunkedArray], bool]:
        parsed_columns: list[pa.ChunkedArray | None] = list(parsed.table.columns)
        if self.value_kind != "any":
            # Each parsed column is dropped once checked (and widened from the uint32 fast parse):
            # the values are held once, not twice. Only the row names stay in the parsed table.
            parsed.table = parsed.table.select([0])
            if _widen_in_threads(parsed_columns):
                # Counts from the uint32 parse, already int64: whole and non-negative by construction.
                return [column for column in parsed_columns[1:] if column is not None], False
        columns: list[pa.ChunkedArray] = []
        offenders: list[tuple[int, int, str]] = []  # (row index, column position, sentence)
        total = 0
        rewritten = False
        infinite = 0
        for position in range(1, len(parsed_columns)):
            column = parsed_columns[position]
            parsed_columns[position] = None
            assert column is not None
            name = names[position - 1]
            if self.value_kind == "any":
                if not (
                    pa.types.is_integer(column.type)
                    or pa.types.is_floating(column.type)
                    or pa.types.is_string(column.type)
                    or pa.types.is_null(column.type)
                ):
                    column = _reread_as_text(parsed, position)
                    rewritten = True
                columns.append(column)
                continue
            column, problems, count, changed = self._numeric_column(column)
            rewritten |= changed
            total += count
            for index, sentence in problems:
                offenders.append(
                    (index, position, f'{self.row_label(parsed, index)}, column "{name}": {sentence}')
                )
            if pa.types.is_floating(column.type):
                infinite += pc.sum(pc.cast(pc.is_inf(column), pa.int64())).as_py() or 0
            columns.append(column)
        if total:
            offenders.sort()
            items = [sentence for _, _, sentence in offenders]
            raise ValidationFailure(f"{self._values_lead(total)} {listing(items, total)}")
        if infinite:
            warnings.append(f"The table contains {plural(infinite, 'infinite value')}.")
        return columns, rewritten

    def _values_lead(self, total: int) -> str:
        if self.value_kind == "integer":
            kind = "non-negative whole numbers (counts)" if self.nonnegative else "whole numbers (integers)"
        else:
            kind = "numbers"
        return (
            f"Values in a {quote(self.type_title)} must be {kind}; missing values may be left empty or "
            f"written NA. {plural(total, 'cell is', 'cells are')} not:"
        )

    def _numeric_column(
        self, column: pa.ChunkedArray
    ) -> tuple[pa.ChunkedArray, list[tuple[int, str]], int, bool]:
        """Return the column converted to a number type, its first offenders, their count, and
        whether text had to be converted."""
        changed = False
        kind = column.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            trimmed = pc.utf8_trim_whitespace(column)
            missing = pc.is_in(trimmed, value_set=pa.array(MISSING_TOKENS))
            numeric = pc.match_substring_regex(trimmed, NUMBER_PATTERN, ignore_case=True)
            bad = pc.invert(pc.or_(missing, numeric))
            indices = _mask_indices(bad)
            if len(indices):
                problems = [
                    (int(i), f"{quote(column[int(i)].as_py())} is not a number.")
                    for i in indices[:MAX_LISTED]
                ]
                return column, problems, len(indices), False
            cleaned = pc.if_else(missing, pa.scalar(None, pa.string()), trimmed)
            try:
                column = pc.cast(cleaned, pa.int64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                column = pc.cast(cleaned, pa.float64())
            changed = True
            kind = column.type
        elif not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind)):
            indices = _mask_indices(pc.is_valid(column))
            problems = [
                (int(i), f"{quote(str(column[int(i)].as_py()))} is not a number.")
                for i in indices[:MAX_LISTED]
            ]
            return column, problems, len(indices), False

        if pa.types.is_null(kind):
            return (
                pc.cast(column, pa.int64() if self.value_kind == "integer" else pa.float64()),
                [],
                0,
                changed,
            )
        if pa.types.is_unsigned_integer(kind):
            # The fast parse (uint32, see parse_text_table): whole and non-negative by construction.
            return pc.cast(column, pa.int64()), [], 0, changed

        problems_mask = None
        if self.value_kind == "integer" and pa.types.is_floating(kind):
            not_nan = pc.invert(pc.fill_null(pc.is_nan(column), False))
            fractional = pc.and_(not_nan, pc.or_(pc.is_inf(column), pc.not_equal(column, pc.floor(column))))
            problems_mask = fractional
        if self.nonnegative and (pc.min(column).as_py() or 0) < 0:
            negative = pc.less(column, 0)
            problems_mask = negative if problems_mask is None else pc.or_(problems_mask, negative)
        if problems_mask is not None:
            indices = _mask_indices(problems_mask)
            if len(indices):
                problems = []
                for i in indices[:MAX_LISTED]:
                    value = column[int(i)].as_py()
                    problems.append((int(i), self._value_problem(value)))
                return column, problems, len(indices), changed
        if self.value_kind == "integer" and pa.types.is_floating(kind):
            # Whole numbers written as 5.0: store them as integers.
            nan_free = pc.if_else(pc.fill_null(pc.is_nan(column), False), pa.scalar(None, kind), column)
            try:
                column = pc.cast(nan_free, pa.int64())
            except pa.ArrowInvalid:
                pass
        return column, [], 0, changed

    def _value_problem(self, value: float | int) -> str:
        if isinstance(value, float) and value in (float("inf"), float("-inf")):
            return f"{quote(value)} is infinite, not an integer."
        if self.value_kind == "integer" and isinstance(value, float) and not value.is_integer():
            return f"{quote(value)} is not an integer."
        return f"{quote(value)} is negative; counts cannot be negative."


# A uint32 table of at least this many cells is widened to int64 on two threads (the widening of
# 30 million cells costs ~0.03 s, mostly writing 240 MB of fresh memory).
WIDEN_IN_THREADS_CELLS = 1 << 22


def _widen_in_threads(columns: list[pa.ChunkedArray | None]) -> bool:
    """Widen the uint32 data columns of a large count table to int64 in place, on two threads.

    ``columns[0]`` is the row names. True when done; False (nothing changed) when a data column
    is not uint32, the table is small or threads are off: the checks then go column by column.
    """
    data = columns[1:]
    if (
        not PARSE_USE_THREADS
        or pa.cpu_count() < 2
        or not data
        or any(column is None or not pa.types.is_uint32(column.type) for column in data)
        or len(data) * len(data[0]) < WIDEN_IN_THREADS_CELLS
    ):
        return False

    def widen(positions: range) -> None:
        for position in positions:
            column = columns[position]
            assert column is not None
            columns[position] = pc.cast(column, pa.int64())  # the uint32 column is released here

    middle = 1 + len(data) // 2
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="widen") as pool:
        other = pool.submit(widen, range(middle, len(columns)))
        widen(range(1, middle))
        other.result()
    return True


def _reread_as_text(parsed: ParsedTable, position: int) -> pa.ChunkedArray:
    """pyarrow turned a text column into dates or times; take its cells again as plain text."""
    if parsed.raw is None:
        column = parsed.table.column(position)
        return pc.cast(column, pa.string())
    delimiter = "," if parsed.source_format == "csv" else "\t"
    internal = parsed.internal_names
    name = parsed.table.column_names[position]
    table = pacsv.read_csv(
        pa.py_buffer(memoryview(parsed.raw)[parsed.body_start :]),
        read_options=pacsv.ReadOptions(column_names=internal, block_size=1 << 22),
        parse_options=pacsv.ParseOptions(delimiter=delimiter),
        convert_options=pacsv.ConvertOptions(
            include_columns=[name], column_types={name: pa.string()}, strings_can_be_null=False
        ),
    )
    column = table.column(0)
    if parsed.lines.kept is not None:
        column = column.take(pa.array(parsed.lines.kept))
    return column


def annotation_header_warnings(checked: CheckedTable) -> list[str]:
    """ANN: a column whose own name is one of its values suggests the header row was missing."""
    suspicious = []
    for name in checked.names:
        column = checked.table.column(name)
        if pa.types.is_string(column.type):
            hit = pc.any(pc.equal(column, name)).as_py()
        else:
            hit = False
        if hit:
            suspicious.append(quote(name))
    if not suspicious:
        return []
    return [
        "The header row may be missing: the column name(s) "
        + ", ".join(suspicious[:MAX_LISTED])
        + " also appear as values in their own column."
    ]


# --------------------------------------------------------------------------------------------
# Writing the standard TSV
# --------------------------------------------------------------------------------------------


def write_standard_tsv(parsed: ParsedTable, checked: CheckedTable, path: Path) -> None:
    """Tab-separated, header row whose first cell is empty, row names in the first column.

    When the source text is already clean, the body is rewritten at the byte level in one
    ``bytes.translate`` pass (commas become tabs, CRLF becomes LF, and for all-numeric tables
    quotes are dropped) or copied as is: several times faster than formatting 30 million numbers
    again. A source file that is already standard TSV byte for byte (header included) is hard
    linked: no copy, no second 75 MB on disk. That is safe because stored files are write-once
    (storage publishes new files by linking and deletes by unlinking; nothing rewrites a file in
    place). Otherwise the parsed table is written out by pyarrow.
    """
    header = ("\t".join(["", *checked.names]) + "\n").encode("utf-8")
    # Never write into an existing file: it may be a hard link to a source (a second validation
    # into the same directory), which must not change.
    path.unlink(missing_ok=True)
    raw = parsed.raw
    plan = _byte_rewrite_plan(parsed, checked) if raw is not None else None
    if raw is not None and plan is not None:
        edits = any(plan.values())
        start = parsed.body_start
        ends_cleanly = raw[-1:] == b"\n" or len(raw) <= start
        if (
            not edits
            and ends_cleanly
            and parsed.source_path is not None
            and parsed.source_offset == 0
            and raw[:start] == header
            and _link(parsed.source_path, path)
        ):
            return
        with path.open("wb") as handle:
            handle.write(header)
            if not edits and parsed.source_path is not None:
                copied = _copy_range(parsed.source_path, start + parsed.source_offset, handle)
            else:
                copied = False
            if not copied and not edits:
                handle.write(memoryview(raw)[start:])
            elif not copied:
                table = _COMMA_TO_TAB if plan["commas"] else None
                # Every \r is followed by \n (see _byte_rewrite_plan), so dropping it is CRLF -> LF.
                delete = (b'"' if plan["quotes"] else b"") + (b"\r" if plan["crlf"] else b"")
                # In pieces: no second copy of the file in memory.
                for piece in range(start, len(raw), REWRITE_PIECE_SIZE):
                    handle.write(raw[piece : piece + REWRITE_PIECE_SIZE].translate(table, delete))
            if not ends_cleanly:
                handle.write(b"\n")
        return
    with path.open("wb") as handle:
        handle.write(header)
        try:
            pacsv.write_csv(
                checked.table,
                handle,
                write_options=pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none"),
            )
        except pa.ArrowInvalid:
            handle.seek(len(header))
            handle.truncate()
            pacsv.write_csv(
                checked.table,
                handle,
                write_options=pacsv.WriteOptions(
                    include_header=False, delimiter="\t", quoting_style="needed"
                ),
            )


_COMMA_TO_TAB = bytes.maketrans(b",", b"\t")
REWRITE_PIECE_SIZE = 1 << 22


def _link(source: Path, path: Path) -> bool:
    """Make ``path`` a hard link to ``source``; False when the file system refuses (then copy)."""
    try:
        os.link(source, path)
    except OSError:
        return False
    return True


def _copy_range(source: Path, offset: int, handle: io.BufferedWriter) -> bool:
    """Copy the source file from ``offset`` inside the kernel (no trip through Python memory)."""
    copy = getattr(os, "copy_file_range", None)
    if copy is None:
        return False
    handle.flush()
    try:
        with source.open("rb") as src:
            remaining = os.fstat(src.fileno()).st_size - offset
            position = offset
            while remaining > 0:
                done = copy(src.fileno(), handle.fileno(), remaining, position)
                if done == 0:
                    break
                position += done
                remaining -= done
    except OSError:
        return False
    handle.seek(0, os.SEEK_END)
    return remaining <= 0


def _byte_rewrite_plan(parsed: ParsedTable, checked: CheckedTable) -> dict[str, bool] | None:
    """Which byte-level edits turn the source body into standard TSV, or None if none can.

    Quotes may only be dropped when every data column is numeric: then no quoted field can hide a
    delimiter, a quote or a line break (row names passed the identifier rule).
    """
    raw = parsed.raw
    assert raw is not None
    start = parsed.body_start
    if parsed.rows_or_columns_dropped or checked.values_rewritten or parsed.lines.has_blank_lines():
        return None
    quotes = raw.find(b'"', start) != -1
    if quotes and not checked.numeric_only:
        return None
    crlf = False
    if raw.find(b"\r", start) != -1:
        if raw.count(b"\r", start) != raw.count(b"\r\n", start):
            return None  # lone carriage returns: let pyarrow's reading decide
        crlf = True
    commas = parsed.source_format == "csv"
    if commas and raw.find(b"\t", start) != -1:
        return None
    original = parsed.table.column(0)
    if not pc.all(pc.equal(original, checked.table.column(0))).as_py():
        return None
    return {"quotes": quotes, "crlf": crlf, "commas": commas}
