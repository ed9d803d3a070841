"""`manage.py upgrade_table_copies`: table copies stored by older releases rebuilt in today's format.

Old copies are made for real: a file is validated by today's code, then its Parquet copy is
replaced by the one the first table_store wrote (format version 1, 1,000-row groups, missing text
kept as written, no row file), stored under a fresh key as an older release would have left it.
The tests commit for real (transaction=True): old copies go only after the switch commits.
"""

from __future__ import annotations

import io
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from mev.resource_types import table_store
from mev.resources import storage
from mev.resources.management.commands import upgrade_table_copies as command
from mev.resources.models import Resource
from tests.resources.helpers import use_moto_s3
from tests.resources.validated_factory import make_resource

pytestmark = pytest.mark.django_db(transaction=True)

MATRIX = "gene\tS1\tS2\tS3\n" + "".join(
    f"G{i}\t{(i * 7) % 11}.5\t{'' if i % 9 == 4 else (i * 3) % 13}\t{-i / 4}\n" for i in range(40)
)
COUNTS = "gene\tA\tB\tC\tD\n" + "".join(f"ENSG{i:04d}\t{i * 3 % 17}\t{i}\t{1000 - i}\t{i % 2}\n" for i in range(60))
ANNOTATION = "sample\tcondition\tage\tbatch\nS1\ttreated\t43\tb1\nS2\tNA\t51\tb2\nS3\tcontrol\tNA\t\nS4\ttreated\t38\tb1\n"
BED = "chr1\t100\t200\tp1\t5\t+\nchr2\t50\t80\tp2\t0\t.\nchr1\t10\t20\tp3\t900\t-\n"

MATRIX_QUERIES = [
    "",
    "?page=1&page_size=5",
    "?page=3&page_size=10",
    "?sort_vals=[desc]:S2&page=1&page_size=7",
    "?S1=[gt]:5&sort_vals=[asc]:S3",
    "?__rowmean__=[gte]:2&sort_vals=[desc]:__rowmean__",
    "?__incl_rowmeans__&page=2&page_size=25",
    "?__rowname__=[in]:G3,G4,G13",
]
COUNT_QUERIES = [
    "?page=2&page_size=25",
    "?sort_vals=[desc]:A&page=1&page_size=10",
    "?B=[lt]:20&C=[gte]:990",
    "?__incl_rowmeans__&sort_vals=[asc]:__rowmean__&page=1&page_size=5",
]
ANNOTATION_QUERIES = ["", "?sort_vals=[asc]:condition", "?condition=[eq]:treated", "?age=[gt]:40"]
BED_QUERIES = ["", "?sort_vals=[desc]:score", "?chrom=[eq]:chr1"]


# --------------------------------------------------------------------------- helpers


def make_format_1(resource: Resource) -> Resource:
    """Replace the resource's copy by the one the first release stored, under a fresh key."""
    with storage.local_copy(resource.table_file) as path:
        current = pq.read_table(path)
        kind = table_store.read_info(pq.ParquetFile(path)).kind
    columns = []
    for field, column in zip(current.schema, current.columns, strict=True):
        if field.name != table_store.ROWNAME_COLUMN and pa.types.is_string(field.type):
            column = column.fill_null("NA")  # format 1 kept a missing text cell as it was written
        columns.append(column)
    description = {"format_version": 1, "kind": kind, "n_rows": current.num_rows, "row_group_size": 1000}
    old = pa.table(columns, names=current.column_names).replace_schema_metadata(
        {b"webmev.table": json.dumps(description).encode()}
    )
    key = storage.new_key(owner_id=resource.owner_id, resource_id=resource.pk, suffix=".parquet")
    Path(settings.FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.FILE_UPLOAD_TEMP_DIR) as work:
        pq.write_table(old, Path(work) / "old.parquet", row_group_size=1000)
        storage.save_path(key=key, path=Path(work) / "old.parquet")
    for stale in (resource.table_file, resource.table_rows_file):
        storage.delete(stale)
    Resource.objects.filter(pk=resource.pk).update(table_file=key, table_rows_file="")
    resource.refresh_from_db()
    assert stored_info(resource).format_version == 1
    return resource


def validated(user: Any, content: str, resource_type: str, *, old: bool = True) -> Resource:
    file_format = "tsv"
    resource = make_resource(user, content, resource_type=resource_type, file_format=file_format)
    assert resource.status == "" and resource.resource_type == resource_type, resource.status
    return make_format_1(resource) if old else resource


def stored_info(resource: Resource) -> table_store.StoredTableInfo:
    with storage.local_copy(resource.table_file) as path:
        return table_store.read_info(pq.ParquetFile(path))


def pages(client: Any, resource: Resource, queries: list[str]) -> list[Any]:
    answers = []
    for query in queries:
        response = client.get(f"/api/resources/{resource.pk}/contents/{query}")
        assert response.status_code == 200, (query, response.content)
        answers.append(response.json())
    return answers


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("upgrade_table_copies", "--grace-seconds", "0", *args, stdout=out)
    return out.getvalue()


def run_failing(*args: str) -> tuple[str, str]:
    out = io.StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("upgrade_table_copies", "--grace-seconds", "0", *args, stdout=out)
    return out.getvalue(), str(failure.value)


def fields(resource: Resource) -> dict[str, Any]:
    fresh = Resource.objects.get(pk=resource.pk)
    return {name: getattr(fresh, name) for name in (
        "datafile", "standardized_file", "table_file", "table_rows_file", "resource_type", "file_format",
        "n_rows", "n_cols", "status", "is_active",
    )}


def local_files() -> set[str]:
    return {key for key, _ in storage.iter_keys()}


# --------------------------------------------------------------------------- upgrading


@pytest.mark.parametrize(
    ("content", "resource_type", "queries", "has_rows"),
    [
        (MATRIX, "MTX", MATRIX_QUERIES, True),
        (COUNTS, "RNASEQ_COUNT_MTX", COUNT_QUERIES, True),
        (ANNOTATION, "ANN", ANNOTATION_QUERIES, False),
        (BED, "BED6", BED_QUERIES, False),
    ],
    ids=["float matrix", "counts", "annotation", "bed"],
)
def test_old_copies_are_rebuilt_switched_and_removed(user, auth_client, content, resource_type, queries,
                                                     has_rows) -> None:
    resource = validated(user, content, resource_type)
    before = fields(resource)
    answers = pages(auth_client, resource, queries)

    output = run()

    after = fields(resource)
    assert f"upgraded: {resource.pk}: format version 1 (current {table_store.FORMAT_VERSION})" in output
    assert "Checked 1 table resource(s): 1 upgraded, 0 already current, 0 skipped, 0 failed." in output
    # Only the copy changed: the upload, the standardized file and everything else are as they were.
    assert {k: v for k, v in after.items() if k not in command.COPY_FIELDS} == {
        k: v for k, v in before.items() if k not in command.COPY_FIELDS
    }
    assert after["table_file"] != before["table_file"] and after["table_file"].endswith(".parquet")
    upgraded = Resource.objects.get(pk=resource.pk)
    info = stored_info(upgraded)
    assert info.format_version == table_store.FORMAT_VERSION
    if has_rows:
        assert after["table_rows_file"] == after["table_file"].removesuffix(".parquet") + ".rows.arrow"
        assert storage.exists(after["table_rows_file"]) and info.rows_file_id is not None
        with storage.local_copy(after["table_rows_file"]) as rows:
            assert table_store.read_rows_info(pa.ipc.open_file(rows)).id == info.rows_file_id
    else:
        assert after["table_rows_file"] == "" and info.rows_file_id is None
    assert not storage.exists(before["table_file"])
    assert local_files() == {after["datafile"], after["standardized_file"], after["table_file"],
                             after["table_rows_file"]} - {""}
    assert pages(auth_client, upgraded, queries) == answers


def test_a_second_run_changes_nothing(user, auth_client) -> None:
    resource = validated(user, COUNTS, "RNASEQ_COUNT_MTX")
    run()
    upgraded, files = fields(resource), local_files()

    output = run("--verbosity", "2")

    assert fields(resource) == upgraded and local_files() == files
    assert f"current: {resource.pk}" in output
    assert "Checked 1 table resource(s): 0 upgraded, 1 already current, 0 skipped, 0 failed." in output


def test_copies_validated_today_are_left_alone(user) -> None:
    resource = validated(user, MATRIX, "MTX", old=False)
    before, files = fields(resource), local_files()
    assert "0 upgraded, 1 already current" in run()
    assert fields(resource) == before and local_files() == files


def test_dry_run_lists_and_changes_nothing(user) -> None:
    old = validated(user, MATRIX, "EXP_MTX")
    current = validated(user, ANNOTATION, "ANN", old=False)
    before, files = [fields(old), fields(current)], local_files()

    output = run("--dry-run")

    assert f"would upgrade: {old.pk}: format version 1" in output
    assert str(current.pk) not in output
    assert "2 table resource(s): 1 would be upgraded (dry run: nothing changed), 1 already current" in output
    assert [fields(old), fields(current)] == before and local_files() == files


def test_a_recorded_row_file_that_is_missing_from_the_resource_is_restored(user, auth_client) -> None:
    resource = validated(user, MATRIX, "MTX", old=False)
    answers = pages(auth_client, resource, MATRIX_QUERIES)
    lost = resource.table_rows_file
    Resource.objects.filter(pk=resource.pk).update(table_rows_file="")

    output = run()

    after = fields(resource)
    assert "its row file is not recorded on the resource; row file written" in output
    assert after["table_rows_file"] and after["table_rows_file"] != lost
    assert not storage.exists(lost)  # it was beside the old table key, which is gone too
    assert pages(auth_client, resource, MATRIX_QUERIES) == answers


def test_the_copy_is_rebuilt_from_the_standardized_file_never_the_upload(user, auth_client) -> None:
    # A CSV upload with quotes: the standardized TSV differs from it, and the upload is not read.
    csv = "gene,S1,S2\n" + "".join(f'"G{i}",{i},{i * 2}.25\n' for i in range(30))
    resource = make_resource(user, csv, resource_type="MTX", file_format="csv")
    assert resource.status == ""
    resource = make_format_1(resource)
    answers = pages(auth_client, resource, MATRIX_QUERIES[:4])
    storage.delete(resource.datafile)

    assert "1 upgraded" in run()

    assert stored_info(fields_resource(resource)).format_version == table_store.FORMAT_VERSION
    assert pages(auth_client, resource, MATRIX_QUERIES[:4]) == answers


# --------------------------------------------------------------------------- failures and skips


def test_a_missing_source_fails_that_resource_only_and_leaves_it_untouched(user, auth_client) -> None:
    broken = validated(user, MATRIX, "MTX")
    fine = validated(user, COUNTS, "I_MTX")
    storage.delete(broken.standardized_file)
    before = fields(broken)
    answers = pages(auth_client, broken, ["?page=1&page_size=5"])
    files = local_files()

    output, error = run_failing()

    assert f"failed: {broken.pk}: its stored source file {broken.standardized_file} is missing" in output
    assert "1 upgraded, 0 already current, 0 skipped, 1 failed." in output
    assert "1 resource(s) could not be upgraded" in error
    assert fields(broken) == before
    assert stored_info(fields_resource(broken)).format_version == 1
    assert pages(auth_client, broken, ["?page=1&page_size=5"]) == answers
    # The other resource was upgraded; the failed one left no new file behind.
    assert fields(fine)["table_rows_file"]
    assert {key for key in local_files() - files if str(broken.pk) in key} == set()


def test_a_table_without_a_standardized_file_is_not_rebuilt_from_its_upload(user) -> None:
    resource = validated(user, MATRIX, "MTX")
    Resource.objects.filter(pk=resource.pk).update(standardized_file="")
    before, files = fields(resource), local_files()

    output, _ = run_failing()

    assert f"failed: {resource.pk}: it has no stored standardized file (its upload is not used)" in output
    assert fields(resource) == before and local_files() == files


def fields_resource(resource: Resource) -> Resource:
    return Resource.objects.get(pk=resource.pk)


def test_a_missing_table_copy_is_reported_failed(user) -> None:
    resource = validated(user, MATRIX, "MTX")
    storage.delete(resource.table_file)
    before = fields(resource)
    output, _ = run_failing("--dry-run")
    assert f"failed: {resource.pk}: its table copy {resource.table_file} is missing from the storage" in output
    assert fields(resource) == before


def test_a_source_that_no_longer_validates_is_not_used(user) -> None:
    resource = validated(user, MATRIX, "MTX")
    # A standardized file that says something else than the copy: refused, never switched to.
    key = storage.new_key(owner_id=user.pk, resource_id=resource.pk, suffix=".tsv")
    storage.save_stream(key=key, fileobj=io.BytesIO(b"\tS1\nG1\toops\n"))
    Resource.objects.filter(pk=resource.pk).update(standardized_file=key)
    before, files = fields(resource), local_files()

    output, _ = run_failing()

    assert f"failed: {resource.pk}: its stored source no longer validates:" in output
    assert fields(resource) == before and local_files() == files


def test_a_rebuilt_copy_that_differs_from_the_stored_one_is_refused(user) -> None:
    resource = validated(user, MATRIX, "MTX")
    # Same columns, other genes: the stored copy and its source no longer agree.
    key = storage.new_key(owner_id=user.pk, resource_id=resource.pk, suffix=".tsv")
    storage.save_stream(key=key, fileobj=io.BytesIO(MATRIX.replace("G1\t", "X1\t").encode()))
    Resource.objects.filter(pk=resource.pk).update(standardized_file=key)
    before, files = fields(resource), local_files()

    output, _ = run_failing()

    assert f"failed: {resource.pk}: the rebuilt copy does not have the row names of the stored one" in output
    assert fields(resource) == before and local_files() == files


def test_resources_being_validated_or_without_a_copy_are_skipped(user) -> None:
    validating = validated(user, MATRIX, "MTX")
    Resource.objects.filter(pk=validating.pk).update(is_active=False, status="Validating...")
    json_resource = make_resource(user, '{"a": 1}', resource_type="JSON", file_format="json")
    before = fields(validating)

    output = run("--resource", str(validating.pk), "--resource", str(json_resource.pk))

    assert f"skipped: {validating.pk}: it is being validated" in output
    assert f"skipped: {json_resource.pk}: its type JSON has no table copy" in output
    assert "0 upgraded, 0 already current, 2 skipped, 0 failed." in output
    assert fields(validating) == before


def test_a_resource_changed_during_the_upgrade_keeps_the_change(user, monkeypatch) -> None:
    resource = validated(user, MATRIX, "MTX")
    files = local_files()
    real_store = command._store
    seen: dict[str, Any] = {}

    def revalidated_meanwhile(res: Resource, path: Path) -> dict[str, str]:
        keys = real_store(res, path)
        seen["keys"] = keys
        # A validation commits its own copy between our rebuild and our switch.
        Resource.objects.filter(pk=res.pk).update(table_file="someone/else.parquet")
        return keys

    monkeypatch.setattr(command, "_store", revalidated_meanwhile)
    output = run()

    assert f"skipped: {resource.pk}: it changed during the upgrade" in output
    assert fields(resource)["table_file"] == "someone/else.parquet"
    assert all(not storage.exists(key) for key in seen["keys"].values())  # ours removed again
    assert local_files() == files


def test_a_failing_switch_removes_the_new_copies(user, monkeypatch) -> None:
    resource = validated(user, MATRIX, "MTX")
    before, files = fields(resource), local_files()

    def broken_switch(*args: Any, **kwargs: Any) -> list[str]:
        raise RuntimeError("database went away")

    monkeypatch.setattr(command, "_switch", broken_switch)
    output, _ = run_failing()

    assert f"failed: {resource.pk}: unexpected error: RuntimeError: database went away" in output
    assert fields(resource) == before and local_files() == files


# --------------------------------------------------------------------------- options


def test_resource_option_upgrades_only_the_given_ones(user) -> None:
    first, second, third = (validated(user, MATRIX, "MTX") for _ in range(3))
    output = run("--resource", str(second.pk), "--resource", str(first.pk), "--resource", str(second.pk))
    assert "Checked 2 table resource(s): 2 upgraded" in output
    assert stored_info(fields_resource(first)).format_version == table_store.FORMAT_VERSION
    assert stored_info(fields_resource(third)).format_version == 1


def test_limit_stops_after_n_upgrades_and_the_next_run_goes_on(user) -> None:
    current = validated(user, MATRIX, "MTX", old=False)
    first, second = validated(user, MATRIX, "MTX"), validated(user, ANNOTATION, "ANN")

    output = run("--limit", "1")

    assert "Checked 2 table resource(s): 1 upgraded, 1 already current" in output  # oldest first
    assert "Stopped at --limit 1: 1 resource(s) not checked" in output
    assert [stored_info(fields_resource(r)).format_version for r in (first, second)] == [2, 1]
    assert "Checked 3 table resource(s): 1 upgraded, 2 already current" in run("--limit", "1")
    assert stored_info(fields_resource(second)).format_version == 2
    assert stored_info(fields_resource(current)).format_version == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--resource", "not-a-uuid"], "'not-a-uuid' is not a resource id"),
        (["--limit", "0"], "'0' is not a positive whole number"),
        (["--grace-seconds", "-1"], "'-1' is not a number of seconds"),
    ],
)
def test_bad_options_are_refused(args, message) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("upgrade_table_copies", *args, stdout=io.StringIO())


def test_an_unknown_resource_id_changes_nothing(user) -> None:
    resource = validated(user, MATRIX, "MTX")
    before = fields(resource)
    unknown = uuid.uuid4()
    with pytest.raises(CommandError, match=f"No resource with id {unknown}; nothing was changed"):
        call_command("upgrade_table_copies", "--resource", str(resource.pk), "--resource", str(unknown),
                     stdout=io.StringIO())
    assert fields(resource) == before


def test_old_copies_outlive_the_switch_by_the_grace_period(user, auth_client, monkeypatch) -> None:
    """A request that read the row just before the switch still finds the old files."""
    resource = validated(user, MATRIX, "MTX")
    old_key = resource.table_file
    answer = pages(auth_client, resource, ["?page=1&page_size=5"])
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        # The switch is committed, the old copy still there and still readable.
        waits.append(seconds)
        assert fields(resource)["table_file"] != old_key and storage.exists(old_key)
        assert pages(auth_client, resource, ["?page=1&page_size=5"]) == answer

    monkeypatch.setattr(time, "sleep", sleep)
    call_command("upgrade_table_copies", "--grace-seconds", "30", stdout=io.StringIO())

    assert len(waits) == 1 and 25 < waits[0] <= 30
    assert not storage.exists(old_key)


# --------------------------------------------------------------------------- object storage


def test_upgrade_on_object_storage(user, auth_client, settings, moto_endpoint, monkeypatch, tmp_path) -> None:
    settings.DATA_DIR = tmp_path / "data"
    bucket = "mev-upgrade-test"
    prefix = f"upgrade-{uuid.uuid4().hex[:8]}"
    client = use_moto_s3(settings, monkeypatch, moto_endpoint, bucket=bucket, prefix=prefix)
    assert storage.backend_name() == "s3"

    def objects() -> set[str]:
        listing = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/").get("Contents", [])
        return {item["Key"].removeprefix(f"{prefix}/") for item in listing}

    resource = validated(user, MATRIX, "MTX")
    before = fields(resource)
    answers = pages(auth_client, resource, MATRIX_QUERIES)
    assert before["table_file"] in objects() and not before["table_rows_file"]

    assert "1 upgraded" in run()

    after = fields(resource)
    assert after["table_rows_file"] and stored_info(fields_resource(resource)).format_version == 2
    assert objects() == {after["datafile"], after["standardized_file"], after["table_file"],
                         after["table_rows_file"]}
    assert pages(auth_client, resource, MATRIX_QUERIES) == answers
    assert "0 upgraded, 1 already current" in run()
    assert fields(resource) == after
