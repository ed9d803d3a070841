"""The resource-type catalogue (§2.4, §3.1) and type suggestion."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import openpyxl
import pytest

from mev.resource_types.formats import FORMAT_DESCRIPTIONS
from mev.resource_types.registry import get_resource_type, resource_type_catalogue, title_for
from mev.resource_types.sniffing import suggest_type

EXPECTED = {
    "MTX": ("Numeric table", ["csv", "tsv", "xls", "xlsx"], "tsv", True),
    "I_MTX": ("Integer table", ["csv", "tsv", "xls", "xlsx"], "tsv", True),
    "EXP_MTX": ("Expression matrix", ["csv", "tsv", "xls", "xlsx"], "tsv", True),
    "RNASEQ_COUNT_MTX": ("RNA-seq count matrix", ["csv", "tsv", "xls", "xlsx"], "tsv", True),
    "NS": ("Network descriptor", ["csv", "tsv", "xls", "xlsx"], "tsv", True),
    "ANN": ("Annotation table", ["csv", "tsv", "xls", "xlsx"], "tsv", True),
    "FT": ("Feature table", ["csv", "tsv", "xls", "xlsx"], "tsv", True),
    "BED3": ("BED3-format file", ["tsv"], "tsv", True),
    "BED6": ("BED6-format file", ["tsv"], "tsv", True),
    "NRWPK": ("NarrowPeak (BED6+4) format file", ["tsv"], "tsv", True),
    "JSON": ("JSON-format file", ["json"], "json", True),
    "FQ": ("Fastq", ["fq"], "fq", False),
    "FA": ("Fasta", ["fa"], "fa", False),
    "ALN": ("Alignment (SAM/BAM)", ["bam"], "bam", False),
    "BAI": ("BAM Index", ["*"], "*", False),
    "WIG": ("WIG (wiggle) format", ["*"], "*", False),
    "BIGWIG": ("BigWIG (compressed wiggle) format", ["*"], "*", False),
    "BEDGRAPH": ("BedGraph format", ["*"], "*", False),
    "*": ("General file", ["*"], "*", False),
}


def test_catalogue_shape() -> None:
    catalogue = resource_type_catalogue()
    assert [entry["resource_type_key"] for entry in catalogue] == [
        "FQ",
        "FA",
        "ALN",
        "BAI",
        "FT",
        "MTX",
        "I_MTX",
        "EXP_MTX",
        "RNASEQ_COUNT_MTX",
        "NS",
        "ANN",
        "BED3",
        "BED6",
        "NRWPK",
        "WIG",
        "BIGWIG",
        "BEDGRAPH",
        "JSON",
        "*",
    ]
    for entry in catalogue:
        assert set(entry) == {
            "resource_type_key",
            "resource_type_title",
            "resource_type_description",
            "acceptable_formats",
            "example",
        }
        title, formats, standard, contents = EXPECTED[entry["resource_type_key"]]
        assert entry["resource_type_title"] == title
        assert entry["resource_type_description"]
        assert [f["key"] for f in entry["acceptable_formats"]] == formats
        assert all(f["description"] == FORMAT_DESCRIPTIONS[f["key"]] for f in entry["acceptable_formats"])
        example = entry["example"]
        assert example is None or (isinstance(example, list) and example)
        if example:
            assert all(set(record) == {"rowname", "values"} for record in example)
            assert isinstance(example[0]["values"], dict) and example[0]["values"]
        resource_type = get_resource_type(entry["resource_type_key"])
        assert resource_type is not None
        assert resource_type.standard_format == standard
        assert resource_type.contents_available is contents
    json.dumps(catalogue)  # serialisable as is


def test_every_known_format_has_a_description() -> None:
    assert set(FORMAT_DESCRIPTIONS) == {
        "csv",
        "tsv",
        "xls",
        "xlsx",
        "json",
        "fa",
        "fq",
        "bam",
        "wig",
        "bw",
        "bg",
        "*",
    }


def test_igv_titles_are_exact() -> None:
    titles = {title_for(code) for code in ("ALN", "BAI", "WIG", "BIGWIG", "BEDGRAPH", "BED3", "BED6")}
    assert titles == {
        "Alignment (SAM/BAM)",
        "BAM Index",
        "WIG (wiggle) format",
        "BigWIG (compressed wiggle) format",
        "BedGraph format",
        "BED3-format file",
        "BED6-format file",
    }


def test_title_for_unknown() -> None:
    assert title_for(None) is None
    assert title_for("NOPE") is None
    assert get_resource_type("NOPE") is None


def test_formats_match_case_insensitively() -> None:
    mtx = get_resource_type("MTX")
    assert mtx is not None and mtx.accepts_format("tsv") and not mtx.accepts_format("json")
    general = get_resource_type("*")
    assert general is not None and general.accepts_format("whatever")


# -- suggestion -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("counts.tsv", b"\tS1\tS2\nG1\t1\t2\nG2\t3\t40\n", ("RNASEQ_COUNT_MTX", "tsv")),
        ("ints.csv", b",S1,S2\nG1,1,-2\nG2,3,40\n", ("I_MTX", "csv")),
        ("expr.tsv", b"\tS1\tS2\nG1\t1.5\t2\nG2\t3\t4e-3\n", ("MTX", "tsv")),
        ("ann.csv", b"sample,condition,batch\nS1,treated,b1\nS2,control,b2\n", ("ANN", "csv")),
        ("dge.tsv", b"gene\tlog2FC\tpadj\tsymbol\nG1\t1.5\t0.01\tTP53\nG2\t-1\t0.2\tMYC\n", ("FT", "tsv")),
        ("peaks.bed", b"chr1\t10\t20\nchr2\t30\t40\n", ("BED3", "tsv")),
        ("peaks6.txt", b"chr1\t10\t20\tp1\t0\t+\nchr2\t30\t40\tp2\t5\t-\n", ("BED6", "tsv")),
        ("x.narrowPeak", b"chr1\t10\t20\tp\t0\t.\t1\t-1\t-1\t5\n", ("NRWPK", "tsv")),
        ("genome.txt", b">chr1\nACGT\n", ("FA", "fa")),
        ("reads.txt", b"@r1\nACGT\n+\nIIII\n", ("FQ", "fq")),
        ("data.txt", b'{"a": [1, 2]}', ("JSON", "json")),
        ("track.bw", b"\x26\xfc\x8f\x88" + b"\0" * 60, ("BIGWIG", "bw")),
        ("x.bai", b"BAI\x01" + b"\0" * 10, ("BAI", "*")),
        ("cov.wig", b"variableStep chrom=chr1\n1 2\n", ("WIG", "wig")),
        ("empty.txt", b"", (None, None)),
        ("blob.bin", b"\x00\x01\x02 random", (None, None)),
    ],
)
def test_suggest_type(
    tmp_path: Path, name: str, content: bytes, expected: tuple[str | None, str | None]
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert suggest_type(path, name) == expected


def test_suggest_type_for_gzipped_bam_and_fastq(tmp_path: Path) -> None:
    bam = tmp_path / "a.bam"
    bam.write_bytes(gzip.compress(b"BAM\x01" + b"\0" * 100))
    assert suggest_type(bam, "upload.dat") == ("ALN", "bam")
    fastq = tmp_path / "r.fq.gz"
    fastq.write_bytes(gzip.compress(b"@r1\nACGT\n+\nIIII\n"))
    assert suggest_type(fastq, "r.fq.gz") == ("FQ", "fq")


def test_suggest_type_for_xlsx(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    for row in ([None, "S1", "S2"], ["G1", 1, 2], ["G2", 3, 4]):
        workbook.active.append(row)
    path = tmp_path / "m.xlsx"
    workbook.save(path)
    assert suggest_type(path, "m.xlsx") == ("RNASEQ_COUNT_MTX", "xlsx")
