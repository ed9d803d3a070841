"""Guess a resource type and format from a file's name and its first kilobytes (a suggestion only)."""

from __future__ import annotations

import csv
import io
import json
import re
import zlib
from pathlib import Path

from .tables import DATE_PATTERN, NUMBER_PATTERN

SNIFF_BYTES = 4096
_INTEGER = re.compile(r"^[+-]?\d+$")
_NUMBER = re.compile(NUMBER_PATTERN, re.IGNORECASE)
_DATE = re.compile(DATE_PATTERN, re.IGNORECASE)
_BIGWIG_MAGIC = (b"\x26\xfc\x8f\x88", b"\x88\x8f\xfc\x26")

# Extensions that decide on their own, before the contents are looked at.
_BY_EXTENSION: dict[str, tuple[str, str]] = {
    "bam": ("ALN", "bam"),
    "bai": ("BAI", "*"),
    "wig": ("WIG", "wig"),
    "bw": ("BIGWIG", "bw"),
    "bigwig": ("BIGWIG", "bw"),
    "bg": ("BEDGRAPH", "bg"),
    "bedgraph": ("BEDGRAPH", "bg"),
    "fa": ("FA", "fa"),
    "fasta": ("FA", "fa"),
    "fna": ("FA", "fa"),
    "fq": ("FQ", "fq"),
    "fastq": ("FQ", "fq"),
    "narrowpeak": ("NRWPK", "tsv"),
    "json": ("JSON", "json"),
}


def _extensions(name: str) -> list[str]:
    parts = name.lower().split(".")[1:]
    return [p for p in parts if p not in ("gz", "bgz", "gzip")]


def _head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(SNIFF_BYTES)


def _gunzip_head(head: bytes) -> bytes:
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, SNIFF_BYTES)
    except zlib.error:
        return b""


def suggest_type(path: Path, original_name: str) -> tuple[str | None, str | None]:
    """Return ``(resource_type, file_format)`` that probably fit, or ``(None, None)``.

    Binary magic numbers win over extensions; text is classified from its first rows.
    """
    head = _head(path)
    extensions = _extensions(original_name)
    last = extensions[-1] if extensions else ""

    if head[:4] in _BIGWIG_MAGIC:
        return "BIGWIG", "bw"
    if head.startswith(b"BAI\x01"):
        return "BAI", "*"
    if head.startswith(b"\x1f\x8b"):
        inner = _gunzip_head(head)
        if inner.startswith(b"BAM\x01"):
            return "ALN", "bam"
        if inner.startswith(b"BAI\x01"):
            return "BAI", "*"
        head = inner
    if head.startswith(b"PK") and last in ("xlsx", "xls", ""):
        return _sniff_xlsx(path)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "MTX", "xls"
    if last in _BY_EXTENSION:
        return _BY_EXTENSION[last]

    text = head.decode("utf-8", errors="replace")
    stripped = text.lstrip()
    if not stripped:
        return None, None
    if stripped.startswith(">"):
        return "FA", "fa"
    lines = text.splitlines()
    if stripped.startswith("@") and len(lines) >= 3 and lines[2].startswith("+"):
        return "FQ", "fq"
    if stripped[0] in "[{":
        if _looks_like_json(path, stripped):
            return "JSON", "json"
    if text.startswith(("track", "variableStep", "fixedStep")):
        return (
            ("WIG", "wig")
            if "Step" in text.split("\n", 1)[0] or "wiggle" in text[:200]
            else ("BEDGRAPH", "bg")
        )
    complete = lines[:-1] if len(head) == SNIFF_BYTES else lines
    return _sniff_table([line for line in complete if line.strip()], last)


def _looks_like_json(path: Path, stripped: str) -> bool:
    if path.stat().st_size <= SNIFF_BYTES:
        try:
            json.loads(path.read_bytes())
        except (ValueError, UnicodeDecodeError):
            return False
        return True
    return bool(re.match(r'^(\{\s*"|\[\s*[\[{"\d\-tfn\]])', stripped))


def _sniff_xlsx(path: Path) -> tuple[str | None, str | None]:
    try:
        import openpyxl

        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            sheet = workbook.worksheets[0]
            rows = []
            for number, row in enumerate(sheet.iter_rows(values_only=True)):
                if number >= 30:
                    break
                rows.append("\t".join("" if v is None else str(v) for v in row))
        finally:
            workbook.close()
    except Exception:  # any unreadable workbook just gets no suggestion
        return None, None
    resource_type, _ = _sniff_table([r for r in rows if r.strip()], "tsv")
    if resource_type in (None, "BED3", "BED6", "NRWPK"):
        return None, None
    return resource_type, "xlsx"


def _split(lines: list[str], delimiter: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))


def _sniff_table(lines: list[str], extension: str) -> tuple[str | None, str | None]:
    if len(lines) < 2:
        return None, None
    best: tuple[str, list[list[str]]] | None = None
    for delimiter, fmt in (("\t", "tsv"), (",", "csv")):
        rows = _split(lines, delimiter)
        widths = {len(r) for r in rows[1:]}
        if len(widths) == 1 and widths.pop() >= 2 and len(rows[0]) >= len(rows[1]) - 1:
            best = (fmt, rows)
            break
    if best is None:
        return None, None
    fmt, rows = best

    bed = _sniff_bed(rows) if fmt == "tsv" else None
    if bed:
        return bed, "tsv"

    body = rows[1:]
    cells = [c.strip() for r in body for c in r[1:]]
    present = [c for c in cells if c not in ("", "NA", "NaN", "nan")]
    if not present:
        return None, None
    if all(_INTEGER.match(c) for c in present):
        if all(not c.startswith("-") for c in present) and len(rows[0]) >= 3:
            return "RNASEQ_COUNT_MTX", fmt
        return "I_MTX", fmt
    if all(_NUMBER.match(c) for c in present):
        return "MTX", fmt
    columns = list(zip(*[r[1:] for r in body], strict=False))
    numeric_columns = sum(all(_NUMBER.match(c.strip()) or not c.strip() for c in col) for col in columns)
    if columns and numeric_columns >= len(columns) / 2 and not any(_DATE.match(r[0]) for r in body):
        return "FT", fmt
    return "ANN", fmt


def _sniff_bed(rows: list[list[str]]) -> str | None:
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        return None
    width = widths.pop()
    if not all(_INTEGER.match(r[1]) and _INTEGER.match(r[2]) for r in rows if len(r) >= 3):
        return None
    if width == 3:
        return "BED3"
    if width == 6 and all(r[5] in (".", "+", "-") for r in rows):
        return "BED6"
    if width == 10 and all(r[5] in (".", "+", "-") for r in rows):
        return "NRWPK"
    return None
