"""The file-format keys users can declare, each with the description shown by the type dialogs."""

from __future__ import annotations

ANY_FORMAT = "*"

FORMAT_DESCRIPTIONS: dict[str, str] = {
    "csv": "Comma-separated values: one record per line, fields separated by commas.",
    "tsv": "Tab-separated values: one record per line, fields separated by tab characters.",
    "xls": "Microsoft Excel 97-2003 workbook (.xls). Only the first sheet is read.",
    "xlsx": "Microsoft Excel workbook (.xlsx). Only the first sheet is read.",
    "json": "JSON document (JavaScript Object Notation).",
    "fa": "FASTA sequence file (.fa, .fasta), optionally gzip-compressed.",
    "fq": "FASTQ sequencing reads (.fq, .fastq), optionally gzip-compressed.",
    "bam": "Binary Alignment Map (BAM), the compressed form of SAM.",
    "wig": "Wiggle track (.wig) of continuous values along the genome.",
    "bw": "BigWig track (.bw, .bigwig), the indexed binary form of wiggle.",
    "bg": "BedGraph track (.bg, .bedgraph) of values over genomic intervals.",
    ANY_FORMAT: "Any file format; the contents are not inspected.",
}


def normalize_format(file_format: str | None) -> str | None:
    """Formats match case-insensitively (the tutorial sends "TSV"); a leading dot is tolerated."""
    if file_format is None:
        return None
    key = file_format.strip().lower().lstrip(".")
    return key or None


def describe_format(key: str) -> str:
    return FORMAT_DESCRIPTIONS.get(key, f"{key} file")
