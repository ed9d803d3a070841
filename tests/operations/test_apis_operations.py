"""Operations and categories over HTTP (§2.8)."""

from __future__ import annotations

import uuid
from pathlib import Path
from unittest import mock

import pytest

from mev.operations.models import IngestionRecord, Operation
from mev.operations.services import operation_ingest_folder
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
BUNDLES = Path(__file__).resolve().parents[1] / "jobs" / "bundles"


@pytest.fixture(autouse=True)
def _ops_dir(settings, tmp_path):
    settings.MEV_OPERATIONS_DIR = tmp_path / "ops"


@pytest.fixture
def ops(db):
    return (operation_ingest_folder(folder=BUNDLES / "testop")[0],
            operation_ingest_folder(folder=BUNDLES / "testop_nows")[0])


@pytest.fixture
def staff_client(make_client):
    return make_client(UserFactory(is_staff=True))


def test_list_and_detail(auth_client, ops):
    ws_op, nows_op = ops
    body = auth_client.get("/api/operations").json()
    assert {o["id"] for o in body} == {str(ws_op.id), str(nows_op.id)}
    detail = auth_client.get(f"/api/operations/{ws_op.id}").json()
    assert detail == ws_op.spec and detail["workspace_operation"] is True
    ws_op.active = False
    ws_op.save()
    assert auth_client.get(f"/api/operations/{ws_op.id}/").status_code == 404
    assert auth_client.get(f"/api/operations/{uuid.uuid4()}/").status_code == 404
    assert [o["id"] for o in auth_client.get("/api/operations/").json()] == [str(nows_op.id)]


def test_categories(auth_client, ops, staff_client):
    ws_op, nows_op = ops
    tree = auth_client.get("/api/operation-categories/").json()
    assert tree == [{"name": "Utilities", "children": [ws_op.spec]}]  # non-workspace operations left out
    detail = auth_client.get("/api/operation-categories/Utilities").json()
    assert sorted(o["id"] for o in detail) == sorted([str(ws_op.id), str(nows_op.id)])
    response = staff_client.post("/api/operation-categories-add/", {"operation_id": str(ws_op.id),
                                                                    "category": "Clustering"}, format="json")
    assert response.status_code == 201
    names = [c["name"] for c in auth_client.get("/api/operation-categories/").json()]
    assert names == ["Clustering", "Utilities"]
    assert staff_client.post("/api/operation-categories-add/", {"operation_id": str(uuid.uuid4()),
                                                                "category": "X"}, format="json").status_code == 400
    ws_op.active = False
    ws_op.save()
    assert auth_client.get("/api/operation-categories/").json() == []
    assert auth_client.get("/api/operation-categories/Clustering/").json() == []


def test_update_is_staff_only(auth_client, staff_client, ops):
    ws_op, _ = ops
    url = f"/api/operations/{ws_op.id}/update/"
    assert auth_client.patch(url, {"active": False}, format="json").status_code == 403
    response = staff_client.patch(url, {"active": False}, format="json")
    assert response.status_code == 200 and response.json() == {}
    ws_op.refresh_from_db()
    assert ws_op.active is False
    assert staff_client.patch(url, {"name": "x"}, format="json").status_code == 400
    assert staff_client.patch(f"/api/operations/{uuid.uuid4()}/update/", {"active": True},
                              format="json").status_code == 404


def test_add_is_staff_only_and_async(auth_client, staff_client, django_capture_on_commit_callbacks):
    assert auth_client.post("/api/operations/add/", {"repository_url": "https://github.com/a/b"},
                            format="json").status_code == 403
    response = staff_client.post("/api/operations/add/", {"repository_url": "https://gitlab.com/a/b"}, format="json")
    assert response.status_code == 400 and "repository_url" in response.json()
    with mock.patch("mev.operations.tasks.ingest_repository.delay") as delay, \
            django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post("/api/operations/add/", {"repository_url": "https://github.com/a/b",
                                                              "commit_id": "abc1234"}, format="json")
    assert response.status_code == 200
    operation_uuid = response.json()["operation_uuid"]
    record = IngestionRecord.objects.get(pk=operation_uuid)
    assert record.commit == "abc1234" and record.state == "running"
    delay.assert_called_once_with(ingestion_id=operation_uuid)
    assert not Operation.objects.filter(pk=operation_uuid).exists()


def test_operation_resources_are_empty(auth_client, ops):
    ws_op, _ = ops
    assert auth_client.get(f"/api/operation-resources/{ws_op.id}/").json() == []
    assert auth_client.get(f"/api/operation-resources/{ws_op.id}/matrix").json() == []
    assert auth_client.get(f"/api/operation-resources/{ws_op.id}/nope/").status_code == 404
    assert auth_client.get(f"/api/operation-resources/{uuid.uuid4()}/").status_code == 404
