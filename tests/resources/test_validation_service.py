"""The validation service on real stored files: §3.2 states, derived files, metadata rows, retries."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from django.core import mail

from mev.celery import app as celery_app
from mev.resource_types import table_store
from mev.resource_types.query import query_table
from mev.resource_types.validation import UNABLE_TO_VALIDATE_STATUS, UNEXPECTED_ERROR_STATUS
from mev.resources import storage, validation
from mev.resources.models import Resource, ResourceElement, ResourceMetadata, ResourceStatus
from mev.resources.tasks import validate_resource as validate_task
from mev.resources.validation import (
    resource_begin_validation,
    resource_validate,
    resource_validate_now,
)
from tests.resources.validated_factory import make_resource, store_resource

pytestmark = pytest.mark.django_db

MATRIX = "gene\tS1\tS2\tS3\nG1\t1.5\t2\t3\nG2\t3\t4.25\t5\n"
INT_MATRIX_CSV = "gene,S1,S2\nG1,1,2\nG2,3,4\nG3,0,7\n"
ANNOTATION = "sample\tcondition\tage\nS1\ttreated\t43\nS2\tcontrol\t51\n"
NUMERIC_ANNOTATION = "sample\tx\ty\nS1\t1\t2\nS2\t3\t4\n"
FEATURES = "gene\tlog2FoldChange\tpadj\tsymbol\nG1\t2.5\t0.01\tTP53\nG2\t-0.3\t0.6\tMYC\n"
BED3 = "chr1\t10\t20\nchr2\t30\t40\n"
BED6 = "chr1\t10\t20\tp1\t0\t+\nchr2\t0\t5\tp2\t1000\t.\n"
NRWPK = "chr1\t10\t20\tp1\t0\t+\t3.5\t-1\t0.01\t-1\n"
JSON_ARRAY = '[{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]'


def _exists(key: str) -> bool:
    return bool(key) and storage.exists(key)


@pytest.mark.parametrize(
    ("resource_type", "file_format", "content", "shape", "standardized", "observations"),
    [
        ("MTX", "tsv", MATRIX, (2, 3), True, ["S1", "S2", "S3"]),
        ("I_MTX", "CSV", INT_MATRIX_CSV, (3, 2), True, ["S1", "S2"]),
        ("EXP_MTX", "tsv", MATRIX, (2, 3), True, ["S1", "S2", "S3"]),
        ("RNASEQ_COUNT_MTX", "csv", INT_MATRIX_CSV, (3, 2), True, ["S1", "S2"]),
        ("NS", "tsv", MATRIX, (2, 3), True, ["S1", "S2", "S3"]),
        ("ANN", "tsv", ANNOTATION, (2, 2), True, ["S1", "S2"]),
        ("FT", "tsv", FEATURES, (2, 3), True, None),
        ("BED3", "tsv", BED3, (2, 3), False, None),
        ("BED6", "tsv", BED6, (2, 6), False, None),
        ("NRWPK", "tsv", NRWPK, (1, 10), False, None),
    ],
)
def test_tables_validate_with_derived_files_and_metadata(
    user, resource_type, file_format, content, shape, standardized, observations
) -> None:
    resource = make_resource(user, content, resource_type=resource_type, file_format=file_format)

    resource.refresh_from_db()
    assert (resource.resource_type, resource.file_format) == (resource_type, "tsv")
    assert resource.status == ResourceStatus.READY and resource.is_active
    assert (resource.n_rows, resource.n_cols) == shape
    assert _exists(resource.table_file) and resource.table_file.endswith(".parquet")
    assert resource.table_file.startswith(f"{user.pk}/{resource.pk}/")
    assert pq.read_table(storage.local_path(resource.table_file)).num_rows == shape[0]
    assert _exists(resource.standardized_file) is standardized
    if standardized:
        assert resource.standardized_file.endswith(".tsv")
        assert storage.local_path(resource.standardized_file).read_text().count("\n") == shape[0] + 1

    metadata = ResourceMetadata.objects.get(resource=resource)
    assert metadata.feature_set is None
    rows = ResourceElement.objects.filter(resource=resource)
    if observations is None:
        assert metadata.observation_set is None and not rows.exists()
    else:
        assert [e["id"] for e in metadata.observation_set["elements"]] == observations
        assert sorted(rows.values_list("element_id", flat=True)) == observations
        assert set(rows.values_list("kind", flat=True)) == {"observation"}


def test_annotation_attributes_are_stored_as_rows(user) -> None:
    resource = make_resource(user, ANNOTATION, resource_type="ANN", file_format="tsv")
    row = ResourceElement.objects.get(resource=resource, element_id="S1")
    assert row.attributes == {
        "condition": {"attribute_type": "UnrestrictedString", "value": "treated"},
        "age": {"attribute_type": "Integer", "value": 43},
    }


@pytest.mark.parametrize(
    ("resource_type", "file_format", "content", "standard"),
    [
        ("JSON", "JSON", JSON_ARRAY, "json"),
        ("FQ", "fq", "@r1\nACGT\n+\nIIII\n", "fq"),
        ("ALN", "bam", b"BAM\x01binary", "bam"),
        ("*", "whatever", "anything at all", "*"),
        ("WIG", "wig", "fixedStep chrom=chr1 start=1 step=1\n1\n", "*"),
    ],
)
def test_types_without_table_copy(user, resource_type, file_format, content, standard) -> None:
    resource = make_resource(user, content, resource_type=resource_type, file_format=file_format)
    assert (resource.resource_type, resource.file_format, resource.status) == (resource_type, standard, "")
    assert resource.is_active
    assert resource.table_file == "" and resource.standardized_file == ""
    metadata = ResourceMetadata.objects.get(resource=resource)
    assert (metadata.observation_set, metadata.feature_set) == (None, None)


def test_failure_of_a_never_valid_resource(user) -> None:
    resource = make_resource(user, "gene\tS1\nG1\tabc\n", resource_type="MTX", file_format="tsv")
    assert resource.status.startswith('Failed validation for resource type "Numeric table". ')
    assert '"abc"' in resource.status
    assert resource.resource_type is None and resource.file_format is None
    assert resource.is_active
    assert resource.table_file == "" and resource.standardized_file == ""
    assert not ResourceMetadata.objects.filter(resource=resource).exists()


def test_json_failure_status(user) -> None:
    resource = make_resource(user, '{"a": 1,}', resource_type="JSON", file_format="json")
    assert resource.status.startswith(
        'Failed validation for resource type "JSON-format file". There was an issue with the JSON formatting. '
        "The reported error was: "
    )


def test_failure_keeps_the_previous_valid_state(user, django_capture_on_commit_callbacks) -> None:
    resource = make_resource(user, MATRIX, resource_type="MTX", file_format="tsv")
    before = Resource.objects.get(pk=resource.pk)
    elements_before = sorted(ResourceElement.objects.filter(resource=resource).values_list("element_id", flat=True))

    with django_capture_on_commit_callbacks(execute=True):
        after = resource_validate_now(resource=resource, resource_type="I_MTX", file_format="tsv")

    assert after.status.startswith(
        "Reverting back to the previously valid state of type: Numeric table. "
        "Could not validate as Integer table for the following reason: "
    )
    assert "1.5" in after.status
    after.refresh_from_db()
    assert after.is_active
    assert (after.resource_type, after.file_format) == ("MTX", "tsv")
    assert (after.table_file, after.standardized_file) == (before.table_file, before.standardized_file)
    assert _exists(after.table_file) and _exists(after.standardized_file)
    assert sorted(ResourceElement.objects.filter(resource=resource).values_list("element_id", flat=True)) == (
        elements_before
    )


@pytest.mark.parametrize(
    ("resource_type", "file_format", "status"),
    [
        (None, "tsv", UNABLE_TO_VALIDATE_STATUS),
        ("MTX", None, UNABLE_TO_VALIDATE_STATUS),
        ("NOPE", "tsv", "The requested resource type of NOPE is not a known type."),
        (
            "MTX",
            "json",
            'File format "json" is not consistent with the requested resource type (Numeric table). '
            "Acceptable formats/extensions are: csv, tsv, xls, xlsx",
        ),
    ],
)
def test_request_failures_have_the_exact_status(user, resource_type, file_format, status) -> None:
    resource = make_resource(user, MATRIX, resource_type="MTX", file_format="tsv")
    after = resource_validate_now(resource=resource, resource_type=resource_type, file_format=file_format)
    assert after.status == status
    assert after.is_active and after.resource_type == "MTX"


def test_unexpected_error_leaves_a_readable_state(
    user, monkeypatch, settings, django_capture_on_commit_callbacks
) -> None:
    settings.ADMINS = [("Admin", "admin@example.org")]
    resource = make_resource(user, MATRIX, resource_type="MTX", file_format="tsv")

    def broken(**kwargs):
        raise RuntimeError("engine bug")

    monkeypatch.setattr(validation, "run_engine", broken)
    with django_capture_on_commit_callbacks(execute=True):
        after = resource_validate_now(resource=resource, resource_type="ANN", file_format="tsv")

    after.refresh_from_db()
    assert after.status == UNEXPECTED_ERROR_STATUS
    assert after.is_active and after.resource_type == "MTX"
    assert _exists(after.table_file)
    assert any(str(resource.pk) in message.subject for message in mail.outbox)


def test_missing_stored_file_is_an_unexpected_error(user) -> None:
    resource = store_resource(user, MATRIX)
    storage.delete(resource.datafile)
    after = resource_validate_now(resource=resource, resource_type="MTX", file_format="tsv")
    assert after.status == UNEXPECTED_ERROR_STATUS and after.is_active


def test_rerun_is_idempotent_and_leaves_no_orphans(user, django_capture_on_commit_callbacks) -> None:
    resource = make_resource(user, ANNOTATION, resource_type="ANN", file_format="tsv")
    first = Resource.objects.get(pk=resource.pk)
    rows_first = list(ResourceElement.objects.filter(resource=resource).values_list("kind", "element_id", "attributes"))

    with django_capture_on_commit_callbacks(execute=True):
        second = resource_validate_now(resource=resource, resource_type="ANN", file_format="tsv")

    fields = ("resource_type", "file_format", "status", "is_active", "n_rows", "n_cols")
    assert [getattr(second, f) for f in fields] == [getattr(first, f) for f in fields]
    rows_second = list(ResourceElement.objects.filter(resource=resource).values_list("kind", "element_id", "attributes"))
    assert sorted(rows_second, key=str) == sorted(rows_first, key=str)
    # New keys; the previous derived copies are gone, the new ones exist.
    assert second.table_file != first.table_file and second.standardized_file != first.standardized_file
    assert not _exists(first.table_file) and not _exists(first.standardized_file)
    assert _exists(second.table_file) and _exists(second.standardized_file)
    owned = sorted(p.name for p in storage.local_path(resource.datafile).parent.iterdir())
    assert len(owned) == 3  # the upload, the standardized copy and the Parquet copy


def test_elements_are_replaced_when_the_type_changes(user, django_capture_on_commit_callbacks) -> None:
    resource = make_resource(user, NUMERIC_ANNOTATION, resource_type="ANN", file_format="tsv")
    assert sorted(ResourceElement.objects.filter(resource=resource).values_list("element_id", flat=True)) == [
        "S1", "S2"
    ]
    with django_capture_on_commit_callbacks(execute=True):
        resource_validate_now(resource=resource, resource_type="MTX", file_format="tsv")
    assert sorted(ResourceElement.objects.filter(resource=resource).values_list("element_id", flat=True)) == [
        "x", "y"
    ]


def test_derived_files_go_when_the_new_type_has_none(user, django_capture_on_commit_callbacks) -> None:
    resource = make_resource(user, MATRIX, resource_type="MTX", file_format="tsv")
    old = [resource.table_file, resource.standardized_file, resource.table_rows_file]
    assert all(old)
    with django_capture_on_commit_callbacks(execute=True):
        after = resource_validate_now(resource=resource, resource_type="*", file_format="*")
    assert (after.resource_type, after.table_file, after.standardized_file, after.n_rows) == ("*", "", "", None)
    assert after.table_rows_file == ""
    assert not any(_exists(key) for key in old)
    assert _exists(after.datafile)
    assert not ResourceElement.objects.filter(resource=resource).exists()


def test_failed_commit_removes_the_new_copies(user, monkeypatch) -> None:
    resource = store_resource(user, MATRIX)
    saved: list[str] = []
    real_save = storage.save_path

    def spy(*, key, path, **kwargs):
        saved.append(key)
        return real_save(key=key, path=path, **kwargs)

    def fail(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(storage, "save_path", spy)
    monkeypatch.setattr(validation, "_replace_metadata", fail)
    after = resource_validate_now(resource=resource, resource_type="MTX", file_format="tsv")
    assert after.status == UNEXPECTED_ERROR_STATUS
    # The standardized copy, the Parquet copy and the matrix's row file: all stored, all removed.
    assert len(saved) == 3 and not any(_exists(key) for key in saved)


def test_begin_marks_validating_and_queues_after_commit(user, django_capture_on_commit_callbacks) -> None:
    resource = store_resource(user, MATRIX)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        resource_begin_validation(resource=resource, resource_type="MTX", file_format="tsv")
    resource.refresh_from_db()
    assert (resource.is_active, resource.status) == (False, ResourceStatus.VALIDATING)
    assert resource.resource_type is None  # unchanged until validation succeeds
    assert len(callbacks) == 1
    callbacks[0]()  # the queued task, run eagerly
    resource.refresh_from_db()
    assert (resource.is_active, resource.status, resource.resource_type) == (True, "", "MTX")


def test_task_runs_the_service(user) -> None:
    resource = store_resource(user, MATRIX)
    validate_task.delay(str(resource.pk), "EXP_MTX", "tsv")
    resource.refresh_from_db()
    assert (resource.resource_type, resource.status, resource.is_active) == ("EXP_MTX", "", True)


def test_task_ignores_a_deleted_resource(user) -> None:
    resource = store_resource(user, MATRIX)
    resource_id = str(resource.pk)
    resource.delete()
    validate_task.delay(resource_id, "MTX", "tsv")  # no exception


@pytest.fixture
def retrying_eagerly(monkeypatch):
    """Eager `apply()` re-runs a retried task in place only when it does not propagate errors."""
    monkeypatch.setattr(celery_app.conf, "task_eager_propagates", False)


def test_task_retries_transient_storage_errors_then_settles(user, monkeypatch, retrying_eagerly) -> None:
    resource = store_resource(user, MATRIX)
    resource_begin_validation(resource=resource, resource_type="MTX", file_format="tsv", enqueue=False)
    calls = []

    def flaky(key):
        calls.append(key)
        raise ConnectionError("object store unreachable")

    monkeypatch.setattr(storage, "local_copy", flaky)
    validate_task.apply(args=(str(resource.pk), "MTX", "tsv"))
    resource.refresh_from_db()
    assert len(calls) == 1 + validate_task.max_retries
    assert (resource.status, resource.is_active) == (UNEXPECTED_ERROR_STATUS, True)


def test_task_recovers_when_a_retry_succeeds(user, monkeypatch, retrying_eagerly) -> None:
    resource = store_resource(user, MATRIX)
    real = storage.local_copy
    calls = []

    def flaky_once(key):
        calls.append(key)
        if len(calls) == 1:
            raise TimeoutError("slow object store")
        return real(key)

    monkeypatch.setattr(storage, "local_copy", flaky_once)
    validate_task.apply(args=(str(resource.pk), "MTX", "tsv"))
    resource.refresh_from_db()
    assert len(calls) == 2
    assert (resource.resource_type, resource.status) == ("MTX", "")


def test_service_without_retry_settles_transient_errors(user, monkeypatch) -> None:
    resource = store_resource(user, MATRIX)

    def down(key):
        raise ConnectionError("object store unreachable")

    monkeypatch.setattr(storage, "local_copy", down)
    after = resource_validate(resource_id=resource.pk, resource_type="MTX", file_format="tsv")
    assert (after.status, after.is_active) == (UNEXPECTED_ERROR_STATUS, True)


def test_xlsx_stored_under_a_key_without_extension(user, tmp_path) -> None:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in ([None, "S1", "S2"], ["G1", 1, 2], ["G2", 3, 4]):
        sheet.append(row)
    path = tmp_path / "m.xlsx"
    workbook.save(path)
    resource = make_resource(user, path.read_bytes(), resource_type="I_MTX", file_format="xlsx", name="m.xlsx")
    assert "." not in resource.datafile.rsplit("/", 1)[-1]
    assert (resource.resource_type, resource.file_format, resource.status) == ("I_MTX", "tsv", "")
    assert storage.local_path(resource.standardized_file).read_text() == "\tS1\tS2\nG1\t1\t2\nG2\t3\t4\n"


def test_which_storage_errors_are_transient() -> None:
    from botocore.exceptions import ClientError, EndpointConnectionError

    def client_error(code: str, status: int) -> ClientError:
        return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")

    assert validation.is_transient_storage_error(ConnectionError())
    assert validation.is_transient_storage_error(EndpointConnectionError(endpoint_url="http://s3"))
    assert validation.is_transient_storage_error(client_error("SlowDown", 503))
    assert validation.is_transient_storage_error(client_error("InternalError", 500))
    assert not validation.is_transient_storage_error(client_error("NoSuchKey", 404))
    assert not validation.is_transient_storage_error(FileNotFoundError("gone"))
    assert not validation.is_transient_storage_error(RuntimeError("bug"))


@pytest.mark.parametrize(
    ("resource_type", "content", "has_rows"),
    [
        ("MTX", MATRIX, True),
        ("RNASEQ_COUNT_MTX", INT_MATRIX_CSV.replace(",", "\t"), True),
        ("ANN", ANNOTATION, False),
        ("FT", FEATURES, False),
        ("BED3", BED3, False),
    ],
)
def test_numeric_matrices_get_a_row_file_beside_the_table(user, settings, resource_type, content, has_rows) -> None:
    settings.MEV_CONTENTS_CACHE_MB = 0  # pages from the row file, not from columns kept in the cache
    resource = make_resource(user, content, resource_type=resource_type, file_format="tsv")
    resource.refresh_from_db()

    if not has_rows:
        assert resource.table_rows_file == ""
        return
    # A fresh key named like the table key, so a reader handed the table finds it beside it.
    assert resource.table_rows_file == resource.table_file.removesuffix(".parquet") + table_store.ROWS_SUFFIX
    assert _exists(resource.table_rows_file)
    table_path = storage.local_path(resource.table_file)
    assert table_store.rows_path_for(table_path) == storage.local_path(resource.table_rows_file)
    first = query_table(table_path, [("page", "1")], kind="matrix", base_url="http://t/")
    from_groups = query_table(table_path, [("page", "1")], kind="matrix", base_url="http://t/",
                              rows_path=table_path.with_name("missing.rows.arrow"))
    assert first == from_groups and first["count"] == resource.n_rows


def test_a_new_validation_replaces_the_row_file(user, django_capture_on_commit_callbacks) -> None:
    resource = make_resource(user, MATRIX, resource_type="MTX", file_format="tsv")
    first = Resource.objects.get(pk=resource.pk)
    with django_capture_on_commit_callbacks(execute=True):
        second = resource_validate_now(resource=resource, resource_type="MTX", file_format="tsv")
    assert second.table_rows_file and second.table_rows_file != first.table_rows_file
    assert not _exists(first.table_rows_file) and _exists(second.table_rows_file)
    owned = sorted(p.name for p in storage.local_path(resource.datafile).parent.iterdir())
    assert len(owned) == 4  # the upload, the standardized copy, the Parquet copy and its row file

    with django_capture_on_commit_callbacks(execute=True):
        third = resource_validate_now(resource=resource, resource_type="ANN", file_format="tsv")
    assert third.table_rows_file == "" and not _exists(second.table_rows_file)


@pytest.mark.parametrize(
    ("resource_type", "content"),
    [
        ("ANN", "sample\tcondition\tbatch\nS1\ttreated\tNA\nS2\t\tb2\nS3\tN/A\t b3 \n"),
        ("FT", "gene\tsymbol\tpadj\nG1\tTP53\t0.01\nG2\tNA\tNA\nG3\t\t0.5\n"),
    ],
)
def test_missing_text_cells_read_as_null_in_contents_as_in_metadata(user, resource_type, content) -> None:
    resource = make_resource(user, content, resource_type=resource_type, file_format="tsv")
    resource.refresh_from_db()

    records = query_table(storage.local_path(resource.table_file), [], kind="annotation" if resource_type == "ANN"
                          else "feature", base_url="http://t/")

    missing = {(r["rowname"], column) for r in records for column, value in r["values"].items() if value is None}
    if resource_type == "ANN":
        assert missing == {("S1", "batch"), ("S2", "condition"), ("S3", "condition")}
        metadata = ResourceMetadata.objects.get(resource=resource).observation_set["elements"]
        in_metadata = {(e["id"], name) for e in metadata for name, a in e["attributes"].items() if a["value"] is None}
        assert missing == in_metadata
        assert records[2]["values"]["batch"] == " b3 "
    else:
        assert missing == {("G2", "symbol"), ("G2", "padj"), ("G3", "symbol")}
