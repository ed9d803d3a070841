"""GET /api/admin/engines/ (staff only) and the start-up system check, against the fake engines of
test_cromwell.py and test_wes.py (a real Toil server answers the same way in the integration test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mev.jobs.runners.engines import engines_reachable_check
from tests.factories import UserFactory
from tests.jobs.test_cromwell import FakeCromwell
from tests.jobs.test_wes import FakeWes

pytestmark = pytest.mark.django_db
URL = "/api/admin/engines/"


@pytest.fixture
def engines(settings, tmp_path: Path):
    with FakeCromwell(tmp_path) as cromwell, FakeWes(tmp_path, "toil") as wes:
        settings.MEV_CROMWELL_URL = cromwell.url
        settings.MEV_WES_URL = wes.url
        settings.MEV_WES_BASE_PATH = wes.base
        yield cromwell, wes


def test_staff_see_each_engine(engines, make_client):
    cromwell, wes = engines
    response = make_client(UserFactory(is_staff=True)).get(URL)
    assert response.status_code == 200
    body = response.json()
    assert [(e["engine"], e["url"], e["ok"], e["version"]) for e in body] == [
        ("cromwell", cromwell.url, True, "cromwell 87"), ("wes", wes.url, True, "toil 9.6.0")]
    assert all(e["checked_at"].endswith("Z") and "error" not in e for e in body)
    assert make_client(UserFactory(is_staff=True)).get(URL.rstrip("/")).status_code == 200


def test_an_unreachable_engine_is_reported_not_raised(engines, settings, make_client):
    settings.MEV_CROMWELL_URL = "http://127.0.0.1:9"
    body = make_client(UserFactory(is_staff=True)).get(URL).json()
    down = next(e for e in body if e["engine"] == "cromwell")
    assert down["ok"] is False and "could not connect" in down["error"] and "version" not in down
    assert next(e for e in body if e["engine"] == "wes")["ok"] is True


def test_a_5xx_engine_is_reported(engines, settings, make_client):
    cromwell, _ = engines
    cromwell.fail_next = [503, 503]
    body = make_client(UserFactory(is_staff=True)).get(URL).json()
    assert body[0]["ok"] is False and "503" in body[0]["error"]


def test_unconfigured_engines_are_not_listed(settings, make_client):
    settings.MEV_CROMWELL_URL = ""
    settings.MEV_WES_URL = None
    assert make_client(UserFactory(is_staff=True)).get(URL).json() == []


def test_non_staff_get_403(auth_client):
    response = auth_client.get(URL)
    assert response.status_code == 403 and "detail" in response.json()


def test_anonymous_get_401(api_client):
    assert api_client.get(URL).status_code == 401


def test_system_check_warns_when_an_engine_is_down(engines, settings):
    assert engines_reachable_check() == []
    settings.MEV_WES_URL = "http://127.0.0.1:9"
    warnings = engines_reachable_check()
    assert [w.id for w in warnings] == ["mev.jobs.W001"] and "wes" in warnings[0].msg
    settings.MEV_ENGINE_STARTUP_CHECK = False
    assert engines_reachable_check() == []
