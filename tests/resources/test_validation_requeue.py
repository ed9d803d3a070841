"""Validation never stays in `Validating...` (§7.3.8): lost queue messages are re-sent or settled."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from mev.resource_types.validation import UNEXPECTED_ERROR_STATUS
from mev.resources.models import Resource, ResourceStatus
from mev.resources.tasks import (
    VALIDATION_MAX_REQUEUES,
    requeue_stuck_validations,
)
from mev.resources.tasks import validate_resource as validate_task
from mev.resources.validation import resource_begin_validation
from tests.resources.validated_factory import make_resource, store_resource

pytestmark = pytest.mark.django_db

MATRIX = "gene\tS1\tS2\nG1\t1.5\t2\nG2\t3\t4.25\n"
PENDING = ("pending_resource_type", "pending_file_format", "validation_requested_at")


def _age(resource: Resource, seconds: int = 3600) -> None:
    Resource.objects.filter(pk=resource.pk).update(
        validation_requested_at=timezone.now() - timedelta(seconds=seconds)
    )


def _sweep(capture) -> dict[str, int]:
    with capture(execute=True):
        return requeue_stuck_validations()


def _pending(resource: Resource) -> tuple:
    return tuple(getattr(resource, field) for field in PENDING)


def test_a_lost_patch_message_is_resent_and_the_resource_ends_validated(
    auth_client, user, django_capture_on_commit_callbacks
) -> None:
    resource = store_resource(user, MATRIX)
    with mock.patch("mev.resources.tasks.validate_resource.delay") as lost:
        with django_capture_on_commit_callbacks(execute=True):
            response = auth_client.patch(f"/api/resources/{resource.pk}/",
                                         {"resource_type": "MTX", "file_format": "tsv"}, format="json")
    assert response.status_code == 200, response.json()
    lost.assert_called_once_with(str(resource.pk), "MTX", "tsv")  # ... and the broker dropped it
    resource.refresh_from_db()
    assert (resource.is_active, resource.status) == (False, ResourceStatus.VALIDATING)
    assert (resource.pending_resource_type, resource.pending_file_format) == ("MTX", "tsv")
    assert resource.validation_requested_at is not None and resource.validation_requeues == 0

    # Not yet stuck: left alone.
    assert _sweep(django_capture_on_commit_callbacks)["requeued"] == 0
    resource.refresh_from_db()
    assert resource.status == ResourceStatus.VALIDATING

    _age(resource)
    counts = _sweep(django_capture_on_commit_callbacks)  # the task runs eagerly on commit
    assert counts["requeued"] == 1
    resource.refresh_from_db()
    assert (resource.is_active, resource.status) == (True, ResourceStatus.READY)
    assert (resource.resource_type, resource.file_format) == ("MTX", "tsv")
    assert _pending(resource) == (None, None, None) and resource.validation_requeues == 0


def test_threshold_setting_zero_resends_at_once(user, settings, django_capture_on_commit_callbacks) -> None:
    settings.MEV_VALIDATION_STUCK_SECONDS = 0
    resource = store_resource(user, MATRIX)
    resource_begin_validation(resource=resource, resource_type="EXP_MTX", file_format="tsv", enqueue=False)
    with mock.patch("mev.resources.tasks.validate_resource.delay") as delay:
        _sweep(django_capture_on_commit_callbacks)
    delay.assert_called_once_with(str(resource.pk), "EXP_MTX", "tsv")
    resource.refresh_from_db()
    assert resource.validation_requeues == 1 and resource.status == ResourceStatus.VALIDATING


def test_resending_restarts_the_clock(user, django_capture_on_commit_callbacks) -> None:
    resource = store_resource(user, MATRIX)
    resource_begin_validation(resource=resource, resource_type="MTX", file_format="tsv", enqueue=False)
    _age(resource)
    with mock.patch("mev.resources.tasks.validate_resource.delay") as delay:
        _sweep(django_capture_on_commit_callbacks)
        _sweep(django_capture_on_commit_callbacks)  # the next minute: the re-sent message is young
    assert delay.call_count == 1
    resource.refresh_from_db()
    assert resource.validation_requeues == 1
    assert timezone.now() - resource.validation_requested_at < timedelta(minutes=1)


def test_stuck_without_the_request_ends_readable(user, django_capture_on_commit_callbacks) -> None:
    resource = make_resource(user, MATRIX, resource_type="MTX", file_format="tsv")
    Resource.objects.filter(pk=resource.pk).update(
        is_active=False, status=ResourceStatus.VALIDATING,
        validation_requested_at=timezone.now() - timedelta(hours=1),
    )
    with mock.patch("mev.resources.tasks.validate_resource.delay") as delay:
        counts = _sweep(django_capture_on_commit_callbacks)
    delay.assert_not_called()
    assert counts["settled"] == 1
    resource.refresh_from_db()
    assert (resource.is_active, resource.status) == (True, UNEXPECTED_ERROR_STATUS)
    assert resource.resource_type == "MTX"  # the previous valid state is kept
    assert _pending(resource) == (None, None, None)


def test_a_row_from_before_the_request_fields_gets_one_threshold_of_grace(
    user, django_capture_on_commit_callbacks
) -> None:
    resource = store_resource(user, MATRIX)
    Resource.objects.filter(pk=resource.pk).update(is_active=False, status=ResourceStatus.VALIDATING)
    assert _sweep(django_capture_on_commit_callbacks)["stamped"] == 1
    resource.refresh_from_db()
    assert resource.status == ResourceStatus.VALIDATING and resource.validation_requested_at is not None
    _age(resource)
    assert _sweep(django_capture_on_commit_callbacks)["settled"] == 1
    resource.refresh_from_db()
    assert (resource.is_active, resource.status) == (True, UNEXPECTED_ERROR_STATUS)


def test_exhausted_requeues_end_readable(user, django_capture_on_commit_callbacks) -> None:
    resource = store_resource(user, MATRIX)
    resource_begin_validation(resource=resource, resource_type="MTX", file_format="tsv", enqueue=False)
    with mock.patch("mev.resources.tasks.validate_resource.delay") as delay:  # every message is lost
        for _ in range(VALIDATION_MAX_REQUEUES):
            _age(resource)
            assert _sweep(django_capture_on_commit_callbacks)["requeued"] == 1
        _age(resource)
        assert _sweep(django_capture_on_commit_callbacks)["settled"] == 1
    assert delay.call_count == VALIDATION_MAX_REQUEUES
    resource.refresh_from_db()
    assert (resource.is_active, resource.status) == (True, UNEXPECTED_ERROR_STATUS)
    assert resource.resource_type is None
    assert _pending(resource) == (None, None, None) and resource.validation_requeues == 0


def test_fresh_validations_are_left_alone(user, django_capture_on_commit_callbacks) -> None:
    resource = store_resource(user, MATRIX)
    resource_begin_validation(resource=resource, resource_type="MTX", file_format="tsv", enqueue=False)
    _age(resource, seconds=django_settings.MEV_VALIDATION_STUCK_SECONDS - 60)
    before = Resource.objects.get(pk=resource.pk)
    with mock.patch("mev.resources.tasks.validate_resource.delay") as delay:
        assert _sweep(django_capture_on_commit_callbacks) == {"requeued": 0, "settled": 0, "stamped": 0}
    delay.assert_not_called()
    after = Resource.objects.get(pk=resource.pk)
    assert _pending(after) == _pending(before) and after.validation_requeues == 0
    assert (after.is_active, after.status) == (False, ResourceStatus.VALIDATING)


def test_finished_rows_are_untouched(user, django_capture_on_commit_callbacks) -> None:
    done = make_resource(user, MATRIX, resource_type="MTX", file_format="tsv")
    failed = make_resource(user, "not a matrix\n\x00\x01", resource_type="MTX", file_format="tsv")
    plain = store_resource(user, MATRIX)
    ids = [done.pk, failed.pk, plain.pk]
    Resource.objects.filter(pk__in=ids).update(validation_requested_at=timezone.now() - timedelta(days=1))
    snapshot = {r.pk: (r.is_active, r.status, r.resource_type, r.validation_requeues)
                for r in Resource.objects.filter(pk__in=ids)}
    assert all(state[0] for state in snapshot.values())
    with mock.patch("mev.resources.tasks.validate_resource.delay") as delay:
        assert _sweep(django_capture_on_commit_callbacks) == {"requeued": 0, "settled": 0, "stamped": 0}
    delay.assert_not_called()
    assert snapshot == {r.pk: (r.is_active, r.status, r.resource_type, r.validation_requeues)
                        for r in Resource.objects.filter(pk__in=ids)}


def test_outcomes_clear_the_request(user) -> None:
    ok = make_resource(user, MATRIX, resource_type="MTX", file_format="tsv")
    bad = make_resource(user, "x\n", resource_type="MTX", file_format="tsv")
    for resource in (ok, bad):
        resource.refresh_from_db()
        assert resource.is_active and resource.status != ResourceStatus.VALIDATING
        assert _pending(resource) == (None, None, None)


def test_an_unexpected_error_clears_the_request(user, monkeypatch) -> None:
    from mev.resources import validation

    resource = store_resource(user, MATRIX)

    def broken(**kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(validation, "run_engine", broken)
    validation.resource_validate_now(resource=resource, resource_type="MTX", file_format="tsv")
    resource.refresh_from_db()
    assert (resource.is_active, resource.status) == (True, UNEXPECTED_ERROR_STATUS)
    assert _pending(resource) == (None, None, None)


def test_task_is_idempotent_and_drops_superseded_messages(user) -> None:
    resource = store_resource(user, MATRIX)
    resource_begin_validation(resource=resource, resource_type="MTX", file_format="tsv", enqueue=False)
    validate_task.delay(str(resource.pk), "MTX", "tsv")
    validate_task.delay(str(resource.pk), "MTX", "tsv")  # the original message, arriving late
    resource.refresh_from_db()
    assert (resource.is_active, resource.status, resource.resource_type) == (True, "", "MTX")

    # A newer request supersedes an older message still in the queue.
    resource_begin_validation(resource=resource, resource_type="EXP_MTX", file_format="tsv", enqueue=False)
    validate_task.delay(str(resource.pk), "I_MTX", "tsv")
    resource.refresh_from_db()
    assert (resource.is_active, resource.status, resource.resource_type) == (False, ResourceStatus.VALIDATING, "MTX")
    validate_task.delay(str(resource.pk), "EXP_MTX", "tsv")
    resource.refresh_from_db()
    assert (resource.is_active, resource.status, resource.resource_type) == (True, "", "EXP_MTX")


def test_beat_runs_the_sweep_every_minute() -> None:
    entry = django_settings.CELERY_BEAT_SCHEDULE["requeue-stuck-validations"]
    assert entry["task"] == "mev.resources.tasks.requeue_stuck_validations"
    assert entry["schedule"] == 60.0


@pytest.mark.django_db(transaction=True)
def test_a_row_locked_elsewhere_is_skipped(user) -> None:
    """SELECT ... FOR UPDATE SKIP LOCKED: a concurrent sweep (or writer) holding the row wins."""
    import threading

    from django.db import connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    resource = store_resource(user, MATRIX)
    resource_begin_validation(resource=resource, resource_type="MTX", file_format="tsv", enqueue=False)
    _age(resource)
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        try:
            with transaction.atomic():
                Resource.objects.select_for_update().get(pk=resource.pk)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        with mock.patch("mev.resources.tasks.validate_resource.delay") as delay:
            assert requeue_stuck_validations() == {"requeued": 0, "settled": 0, "stamped": 0}
    finally:
        release.set()
        holder.join()
    delay.assert_not_called()
    with mock.patch("mev.resources.tasks.validate_resource.delay") as delay:
        assert requeue_stuck_validations()["requeued"] == 1
    delay.assert_called_once_with(str(resource.pk), "MTX", "tsv")
