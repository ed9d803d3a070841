"""iso_timestamp renders exactly what DRF's DateTimeField renders."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.utils import timezone
from rest_framework import serializers

from mev.core.timestamps import iso_timestamp

DRF = serializers.DateTimeField()
UTC = dt.UTC
VALUES = [
    dt.datetime(2026, 11, 29, 5, 32, 49, 760410, tzinfo=UTC),
    dt.datetime(2026, 11, 29, 5, 32, 49, tzinfo=UTC),  # no microseconds
    dt.datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=zoneinfo.ZoneInfo("UTC")),
    dt.datetime(2026, 7, 1, 12, 0, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
    dt.datetime(2026, 1, 1, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    dt.datetime(2026, 3, 29, 1, 30, tzinfo=zoneinfo.ZoneInfo("Europe/London")),  # GMT, offset 0 in winter
    dt.datetime(2026, 6, 29, 1, 30, tzinfo=zoneinfo.ZoneInfo("Europe/London")),  # BST, +01:00
    dt.datetime(2026, 11, 29, 5, 32, 49),  # naive
    "2026-11-29T05:32:49Z",
    None,
    "",
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
@pytest.mark.parametrize("zone", [None, "Europe/Paris", "UTC", "Europe/London"])
def test_the_same_text_as_drf(value, zone) -> None:
    if zone is None:
        assert iso_timestamp(value) == DRF.to_representation(value)
    else:
        with timezone.override(zoneinfo.ZoneInfo(zone)):
            assert iso_timestamp(value) == DRF.to_representation(value)


def test_a_stored_timestamp_is_written_with_z() -> None:
    assert iso_timestamp(VALUES[0]) == "2026-11-29T05:32:49.760410Z"
