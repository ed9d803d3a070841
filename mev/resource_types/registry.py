"""The resource-type catalogue: one small class per type family, registered by code (§3.1)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from . import table_store
from .bed import BED3_COLUMNS, BED6_COLUMNS, NARROWPEAK_COLUMNS, BedChecker
from .formats import ANY_FORMAT, describe_format
from .metadata import annotation_observation_set, matrix_observation_set
from .outcome import ValidationFailure, ValidationOutcome
from .tables import (
    CheckedTable,
    TableChecker,
    ValueKind,
    annotation_header_warnings,
    parse_table,
    utf8_failure,
    write_standard_tsv,
)

TABLE_FORMATS = ("csv", "tsv", "xls", "xlsx")
STANDARD_TSV_NAME = "standardized.tsv"
PARQUET_NAME = "contents.parquet"


# Called with (phase, wall seconds, CPU seconds of the whole process) after each phase of a table
# validation; bench/bench_validation.py sets it to show where the time goes. None in production.
phase_listener: Callable[[str, float, float], None] | None = None


@contextmanager
def _phase(name: str) -> Iterator[None]:
    listener = phase_listener
    if listener is None:
        yield
        return
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    listener(name, time.perf_counter() - wall, time.process_time() - cpu)


@dataclass(frozen=True)
class ValidationRequest:
    src_path: Path
    file_format: str  # already normalised and accepted by the type
    out_dir: Path


class ResourceType:
    """One entry of the catalogue. Subclasses add the checks for their family."""

    code: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    acceptable_formats: ClassVar[tuple[str, ...]]
    standard_format: ClassVar[str]
    contents_available: ClassVar[bool] = False
    contents_paged: ClassVar[bool] = False
    example: ClassVar[list[dict[str, Any]] | None] = None

    def accepts_format(self, file_format: str) -> bool:
        return ANY_FORMAT in self.acceptable_formats or file_format in self.acceptable_formats

    def validate(self, request: ValidationRequest) -> ValidationOutcome:
        """Types that are not inspected: the file is accepted as it is."""
        return self._success(request)

    def _success(self, request: ValidationRequest, **fields: Any) -> ValidationOutcome:
        return ValidationOutcome(ok=True, resource_type=self.code, file_format=self.standard_format, **fields)

    def catalogue_entry(self) -> dict[str, Any]:
        if self.example is not None and not self.example:
            raise ValueError(f"{self.code}: an example must be null or non-empty")  # the dialog breaks on []
        return {
            "resource_type_key": self.code,
            "resource_type_title": self.title,
            "resource_type_description": self.description,
            "acceptable_formats": [
                {"key": key, "description": describe_format(key)} for key in self.acceptable_formats
            ],
            "example": self.example,
        }


def _records(columns: list[str], rows: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
    return [{"rowname": name, "values": dict(zip(columns, values, strict=True))} for name, values in rows]


class TableType(ResourceType):
    acceptable_formats = TABLE_FORMATS
    standard_format = "tsv"
    contents_available = True
    contents_paged = True
    value_kind: ClassVar[ValueKind] = "any"
    nonnegative: ClassVar[bool] = False
    row_noun: ClassVar[str] = "gene"
    store_kind: ClassVar[str] = "matrix"

    def checker(self) -> TableChecker:
        return TableChecker(
            value_kind=self.value_kind,
            nonnegative=self.nonnegative,
            row_noun=self.row_noun,
            type_title=self.title,
        )

    def validate(self, request: ValidationRequest) -> ValidationOutcome:
        with _phase("parse"):
            parsed = parse_table(
                request.src_path, file_format=request.file_format, expected_type=self.fast_type()
            )
        with _phase("checks"):
            checked = self.checker().check(parsed)
            warnings = checked.warnings + self.extra_warnings(checked)
        request.out_dir.mkdir(parents=True, exist_ok=True)
        tsv_path = _output_path(request, STANDARD_TSV_NAME)
        parquet_path = _output_path(request, PARQUET_NAME)
        with _phase("standard TSV"):
            write_standard_tsv(parsed, checked, tsv_path)
        with _phase("Parquet"):
            table_store.write_table(checked.table, parquet_path, kind=self.store_kind)
        with _phase("metadata"):
            observation_set, feature_set = self.metadata(checked)
        return self._success(
            request,
            standardized_path=tsv_path,
            parquet_path=parquet_path,
            observation_set=observation_set,
            feature_set=feature_set,
            warnings=warnings,
            n_rows=checked.table.num_rows,
            n_cols=len(checked.names),
        )

    def fast_type(self) -> pa.DataType | None:
        """The type tried first for every data column (see ``parse_text_table``).

        uint32 for counts: parsing it costs less than int64, and a sign or a value of 2**32 or
        more only sends the file down the precise path. The checker widens it to int64.
        """
        if self.value_kind != "integer":
            return None
        return pa.uint32() if self.nonnegative else pa.int64()

    def extra_warnings(self, checked: CheckedTable) -> list[str]:
        return []

    def metadata(self, checked: CheckedTable) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        return matrix_observation_set(checked.names), None


def _output_path(request: ValidationRequest, name: str) -> Path:
    path = request.out_dir / name
    if path.resolve() == request.src_path.resolve():
        path = request.out_dir / f"validated.{name}"
    return path


_MATRIX_EXAMPLE_COLUMNS = ["SampleA", "SampleB", "SampleC"]


class NumericMatrixType(TableType):
    value_kind = "numeric"


class IntegerMatrixType(TableType):
    value_kind = "integer"


class MTXType(NumericMatrixType):
    code = "MTX"
    title = "Numeric table"
    description = (
        "A table of numbers: row names (e.g. genes) in the first column, column names (e.g. samples) "
        "in the first row, and a number (integer or decimal) in every other cell. Missing values may be "
        "left empty."
    )
    example = _records(_MATRIX_EXAMPLE_COLUMNS, [("gA", [0.5, 1.2, -3.1]), ("gB", [2.0, 0.0, 4.4])])


class IntegerTableType(IntegerMatrixType):
    code = "I_MTX"
    title = "Integer table"
    description = (
        "A table of whole numbers (integers): row names in the first column, column names in the first "
        "row. Values such as 5.0 are accepted; 2.07 is not."
    )
    example = _records(_MATRIX_EXAMPLE_COLUMNS, [("gA", [0, 11, 25]), ("gB", [-3, 8, 1])])


class ExpressionMatrixType(NumericMatrixType):
    code = "EXP_MTX"
    title = "Expression matrix"
    description = (
        "Normalized or log-transformed expression values: genes in rows, samples in columns, numeric "
        "values (e.g. TPM, FPKM or microarray intensities)."
    )
    example = _records(_MATRIX_EXAMPLE_COLUMNS, [("gA", [1.25, 3.4, 0.7]), ("gB", [8.1, 7.9, 8.3])])


class RnaSeqCountMatrixType(IntegerMatrixType):
    code = "RNASEQ_COUNT_MTX"
    title = "RNA-seq count matrix"
    description = (
        "Raw RNA-seq read counts: genes in rows, samples in columns, and a non-negative whole number in "
        "every cell. Use this type for differential expression tools such as DESeq2."
    )
    nonnegative = True
    example = _records(_MATRIX_EXAMPLE_COLUMNS, [("gA", [0, 112, 45]), ("gB", [1520, 1398, 1701])])


class NetworkDescriptorType(NumericMatrixType):
    code = "NS"
    title = "Network descriptor"
    description = (
        "A numeric table describing a network, such as an adjacency or edge-weight matrix: node names in "
        "the first column and first row, numbers in the other cells."
    )
    row_noun = "node"
    example = _records(["nodeA", "nodeB"], [("nodeA", [0.0, 0.8]), ("nodeB", [0.8, 0.0])])


class AnnotationType(TableType):
    code = "ANN"
    title = "Annotation table"
    description = (
        "Attributes of samples: one sample per row (sample names in the first column) and one attribute "
        "per column (e.g. condition, age, batch). Values may be text or numbers."
    )
    row_noun = "sample"
    store_kind = "annotation"
    example = _records(
        ["condition", "age", "batch"],
        [("SampleA", ["treated", 43, "b1"]), ("SampleB", ["control", 51, "b2"])],
    )

    def extra_warnings(self, checked: CheckedTable) -> list[str]:
        return annotation_header_warnings(checked)

    def metadata(self, checked: CheckedTable) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        return annotation_observation_set(checked), None


class FeatureTableType(TableType):
    code = "FT"
    title = "Feature table"
    description = (
        "Information about features (e.g. genes): one feature per row, with its name in the first column, "
        "and any columns of text or numbers, such as the results of a differential expression analysis."
    )
    store_kind = "feature"
    example = _records(
        ["log2FoldChange", "pvalue", "symbol"],
        [("ENSG0001", [2.1, 0.0004, "TP53"]), ("ENSG0002", [-0.3, 0.61, "MYC"])],
    )

    def metadata(self, checked: CheckedTable) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        return None, None


class BedType(ResourceType):
    acceptable_formats = ("tsv",)
    standard_format = "tsv"
    contents_available = True
    contents_paged = True
    columns: ClassVar[tuple[str, ...]]

    def validate(self, request: ValidationRequest) -> ValidationOutcome:
        checked = BedChecker(columns=self.columns, type_title=self.title).check(request.src_path.read_bytes())
        request.out_dir.mkdir(parents=True, exist_ok=True)
        parquet_path = _output_path(request, PARQUET_NAME)
        table_store.write_table(checked.table, parquet_path, kind="bed")
        return self._success(
            request,
            parquet_path=parquet_path,
            warnings=checked.warnings,
            n_rows=checked.table.num_rows,
            n_cols=checked.table.num_columns,
        )


class Bed3Type(BedType):
    code = "BED3"
    title = "BED3-format file"
    description = (
        "Genomic intervals in BED format with three tab-separated columns: chromosome, start and stop "
        "(0-based, half-open). No header line."
    )
    columns = BED3_COLUMNS
    example = _records(list(BED3_COLUMNS), [("0", ["chr1", 11873, 14409]), ("1", ["chr2", 38814, 46870])])


class Bed6Type(BedType):
    code = "BED6"
    title = "BED6-format file"
    description = (
        "Genomic intervals in BED format with six tab-separated columns: chromosome, start, stop, name, "
        "score (0-1000) and strand (+, - or .). No header line."
    )
    columns = BED6_COLUMNS
    example = _records(
        list(BED6_COLUMNS),
        [("0", ["chr1", 11873, 14409, "peak1", 960, "+"]), ("1", ["chr2", 38814, 46870, "peak2", 0, "."])],
    )


class NarrowPeakType(BedType):
    code = "NRWPK"
    title = "NarrowPeak (BED6+4) format file"
    description = (
        "ENCODE narrowPeak peaks: the six BED6 columns plus signal value, p-value, q-value (-1 when "
        "unknown) and the peak offset from start (-1 when unknown). Tab-separated, no header line."
    )
    columns = NARROWPEAK_COLUMNS
    example = _records(
        list(NARROWPEAK_COLUMNS), [("0", ["chr1", 9980, 10480, "peak1", 1000, ".", 182.3, 5.2, 3.1, 250])]
    )


class JsonType(ResourceType):
    code = "JSON"
    title = "JSON-format file"
    description = "A JSON document. Arrays of records can be browsed, filtered, sorted and paged."
    acceptable_formats = ("json",)
    standard_format = "json"
    contents_available = True
    contents_paged = True  # arrays only

    def validate(self, request: ValidationRequest) -> ValidationOutcome:
        data = request.src_path.read_bytes()
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise utf8_failure(data, error) from None
        try:
            json.loads(text, parse_constant=_reject_non_standard_constant)
        except _NonStandardConstant as error:
            raise ValidationFailure(
                "There was an issue with the JSON formatting. The reported error was: "
                f"{error.args[0]} is not valid JSON (write null, or a number, instead)."
            ) from None
        except json.JSONDecodeError as error:
            raise ValidationFailure(
                f"There was an issue with the JSON formatting. The reported error was: {error}"
            ) from None
        except RecursionError:
            raise ValidationFailure(
                "There was an issue with the JSON formatting. The reported error was: the document is "
                "nested too deeply."
            ) from None
        return self._success(request)


class _NonStandardConstant(ValueError):
    pass


def _reject_non_standard_constant(name: str) -> Any:
    # Python's parser accepts NaN and Infinity, but no JSON client (nor our renderer) does.
    raise _NonStandardConstant(name)


class UninspectedType(ResourceType):
    """Types whose contents are not checked (sequence, alignment and track files)."""

    acceptable_formats = (ANY_FORMAT,)
    standard_format = ANY_FORMAT


class FastqType(UninspectedType):
    code = "FQ"
    title = "Fastq"
    description = "Sequencing reads with base qualities in FASTQ format, optionally gzip-compressed."
    acceptable_formats = ("fq",)
    standard_format = "fq"


class FastaType(UninspectedType):
    code = "FA"
    title = "Fasta"
    description = "Sequences in FASTA format (e.g. a genome or transcriptome), optionally gzip-compressed."
    acceptable_formats = ("fa",)
    standard_format = "fa"


class AlignmentType(UninspectedType):
    code = "ALN"
    title = "Alignment (SAM/BAM)"
    description = "Sequencing reads aligned to a reference genome, in BAM format."
    acceptable_formats = ("bam",)
    standard_format = "bam"


class BamIndexType(UninspectedType):
    code = "BAI"
    title = "BAM Index"
    description = "The index (.bai) of a coordinate-sorted BAM file; needed to view the alignment in IGV."


class WigType(UninspectedType):
    code = "WIG"
    title = "WIG (wiggle) format"
    description = "A wiggle track of continuous values (e.g. coverage) along the genome, for viewing in IGV."


class BigWigType(UninspectedType):
    code = "BIGWIG"
    title = "BigWIG (compressed wiggle) format"
    description = "The indexed, compressed binary form of a wiggle track, for viewing in IGV."


class BedGraphType(UninspectedType):
    code = "BEDGRAPH"
    title = "BedGraph format"
    description = "Values over genomic intervals (chromosome, start, end, value), for viewing in IGV."


class GeneralFileType(UninspectedType):
    code = ANY_FORMAT
    title = "General file"
    description = (
        "Any file. Its contents are not checked, and it can be passed to tools that accept any file."
    )


_REGISTRY: dict[str, ResourceType] = {}


def register(resource_type: ResourceType) -> ResourceType:
    if resource_type.code in _REGISTRY:
        raise ValueError(f"Resource type {resource_type.code!r} is already registered")
    _REGISTRY[resource_type.code] = resource_type
    return resource_type


# The original back end's order (§2.4); the client does not depend on it.
for _type in (
    FastqType,
    FastaType,
    AlignmentType,
    BamIndexType,
    FeatureTableType,
    MTXType,
    IntegerTableType,
    ExpressionMatrixType,
    RnaSeqCountMatrixType,
    NetworkDescriptorType,
    AnnotationType,
    Bed3Type,
    Bed6Type,
    NarrowPeakType,
    WigType,
    BigWigType,
    BedGraphType,
    JsonType,
    GeneralFileType,
):
    register(_type())


def get_resource_type(code: str | None) -> ResourceType | None:
    if code is None:
        return None
    return _REGISTRY.get(code)


def title_for(code: str | None) -> str | None:
    resource_type = get_resource_type(code)
    return resource_type.title if resource_type else None


def all_resource_types() -> list[ResourceType]:
    return list(_REGISTRY.values())


def resource_type_catalogue() -> list[dict[str, Any]]:
    """The body of ``GET /resource-types/`` (§2.4)."""
    return [resource_type.catalogue_entry() for resource_type in _REGISTRY.values()]
