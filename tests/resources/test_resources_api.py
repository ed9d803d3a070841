"""List, detail, rename/retype and delete of resources (contract §2.2), and their isolation."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mev.resources import storage
from mev.resources.models import Resource, ResourceMetadata, ResourceStatus
from mev.workspaces.models import ShareRole, WorkspaceShare
from tests.factories import UserFactory
from tests.resources.helpers import RESOURCE_FIELDS, stored_resource, workspace_with

pytestmark = pytest.mark.django_db


@pytest.fixture
def other(db):
    return UserFactory()


def test_list_is_a_bare_array_of_own_resources_including_inactive(auth_client, user, other):
    mine = stored_resource(user, name="a.tsv")
    inactive = stored_resource(user, name="b.tsv", is_active=False, status=ResourceStatus.VALIDATING)
    stored_resource(other, name="theirs.tsv")
    response = auth_client.get("/api/resources/?page=2")
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, list)
    assert {r["id"] for r in body} == {str(mine.pk), str(inactive.pk)}
    assert all(set(r) == RESOURCE_FIELDS for r in body)


def test_resource_object_shape(auth_client, user):
    resource = stored_resource(user, name="x.tsv", resource_type="MTX", file_format="tsv")
    ws = workspace_with(user, resource, name="My ws")
    body = auth_client.get(f"/api/resources/{resource.pk}").json()  # slash-less form
    assert body["id"] == str(resource.pk)
    assert body["readable_resource_type"] == "Numeric table"
    assert body["owner_email"] == user.email
    assert body["status"] == ""
    assert isinstance(body["created"], str) and body["created"].endswith("Z")
    assert body["size"] == resource.size
    assert body["workspaces"][0]["id"] == str(ws.pk)
    assert body["workspaces"][0]["workspace_name"] == "My ws"
    assert set(body["workspaces"][0]) == {"url", "id", "workspace_name", "owner_email", "created"}
    # datafile is the authenticated download route, never a storage link (§7.1.16)
    assert body["datafile"].endswith(f"/api/resources/download/{resource.pk}/")
    assert resource.datafile not in body["datafile"]


def test_untyped_resource_has_null_readable_type_and_empty_workspaces(auth_client, user):
    resource = stored_resource(user)
    body = auth_client.get(f"/api/resources/{resource.pk}/").json()
    assert body["resource_type"] is None and body["readable_resource_type"] is None
    assert body["workspaces"] == []


def test_list_makes_a_constant_number_of_queries(auth_client, user):
    for i in range(3):
        workspace_with(user, stored_resource(user, name=f"{i}.tsv"), name=f"ws{i}")
    with CaptureQueriesContext(connection) as few:
        auth_client.get("/api/resources/")
    for i in range(3, 10):
        workspace_with(user, stored_resource(user, name=f"{i}.tsv"), name=f"ws{i}")
    with CaptureQueriesContext(connection) as many:
        assert len(auth_client.get("/api/resources/").json()) == 10
    assert len(many) == len(few)


def test_detail_unknown_and_other_users_are_both_404(auth_client, other, make_client):
    theirs = stored_resource(other)
    assert auth_client.get("/api/resources/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert auth_client.get(f"/api/resources/{theirs.pk}/").status_code == 404
    assert auth_client.get(f"/api/resources/{theirs.pk}").status_code == 404


def test_shared_workspace_reader_can_read_not_change(user, other, make_client):
    theirs = stored_resource(other, resource_type="MTX", file_format="tsv")
    ws = workspace_with(other, theirs)
    WorkspaceShare.objects.create(workspace=ws, user=user, role=ShareRole.READER)
    client = make_client(user)
    assert client.get(f"/api/resources/{theirs.pk}/").status_code == 200
    assert client.patch(f"/api/resources/{theirs.pk}/", {"name": "x"}, format="json").status_code == 403
    assert client.delete(f"/api/resources/{theirs.pk}/").status_code == 403
    # ... but it is not in their own list
    assert client.get("/api/resources/").json() == []


def test_rename_applies_at_once_and_starts_no_validation(auth_client, user):
    resource = stored_resource(user, resource_type="MTX", file_format="tsv")
    with mock.patch("mev.resources.tasks.validate_resource.delay") as delay:
        response = auth_client.patch(
            f"/api/resources/{resource.pk}/",
            {"id": "ignored", "name": "new name.tsv", "resource_type": "MTX", "file_format": None},
            format="json",
        )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["name"] == "new name.tsv" and body["is_active"] is True and body["status"] == ""
    delay.assert_not_called()


def test_null_type_and_format_mean_no_change(auth_client, user):
    resource = stored_resource(user)
    with mock.patch("mev.resources.tasks.validate_resource.delay") as delay:
        response = auth_client.patch(f"/api/resources/{resource.pk}/",
                                     {"id": str(resource.pk), "resource_type": None, "file_format": None},
                                     format="json")
    assert response.status_code == 200
    assert response.json()["is_active"] is True
    delay.assert_not_called()


def test_type_change_goes_inactive_and_enqueues_validation_on_commit(auth_client, user, django_capture_on_commit_callbacks):
    resource = stored_resource(user)
    with mock.patch("mev.resources.tasks.validate_resource.delay") as delay:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = auth_client.patch(f"/api/resources/{resource.pk}/",
                                         {"id": str(resource.pk), "resource_type": "MTX", "file_format": "tsv"},
                                         format="json")
        assert response.status_code == 200
        body = response.json()
        assert body["is_active"] is False and body["status"] == "Validating..."
        assert body["resource_type"] is None  # set only by validation
        delay.assert_not_called()  # not before commit
        for callback in callbacks:
            callback()
    delay.assert_called_once_with(str(resource.pk), "MTX", "tsv")


def test_patch_refusals(auth_client, user, other):
    resource = stored_resource(user)
    url = f"/api/resources/{resource.pk}/"
    r = auth_client.patch(url, {"owner_email": other.email}, format="json")
    assert r.status_code == 400 and "owner_email" in r.json()
    assert auth_client.patch(url, {"owner_email": user.email}, format="json").status_code == 200
    r = auth_client.patch(url, {"workspaces": []}, format="json")
    assert r.status_code == 400 and "workspaces" in r.json()
    # read-only fields are ignored
    r = auth_client.patch(url, {"is_active": False, "is_public": True, "status": "x", "size": 1}, format="json")
    assert r.status_code == 200
    assert r.json()["is_active"] is True and r.json()["is_public"] is False and r.json()["size"] != 1
    Resource.objects.filter(pk=resource.pk).update(is_active=False)
    assert auth_client.patch(url, {"name": "z"}, format="json").status_code == 400
    assert auth_client.put(url, {"name": "z"}, format="json").status_code == 400


def test_patch_isolation(auth_client, other):
    theirs = stored_resource(other)
    assert auth_client.patch(f"/api/resources/{theirs.pk}/", {"name": "x"}, format="json").status_code == 404
    assert auth_client.patch("/api/resources/00000000-0000-0000-0000-000000000000/", {"name": "x"},
                             format="json").status_code == 404
    theirs.refresh_from_db()
    assert theirs.name != "x"


def test_delete_removes_record_metadata_and_files_after_commit(auth_client, user, django_capture_on_commit_callbacks):
    resource = stored_resource(user)
    extra = storage.new_key(owner_id=user.pk, resource_id=resource.pk, suffix=".parquet")
    storage.save_stream(key=extra, fileobj=__import__("io").BytesIO(b"x"))
    Resource.objects.filter(pk=resource.pk).update(table_file=extra)
    ResourceMetadata.objects.create(resource=resource, observation_set={"elements": []})
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client.delete(f"/api/resources/{resource.pk}/")
    assert response.status_code == 200
    assert response.content == b""
    assert not Resource.objects.filter(pk=resource.pk).exists()
    assert not ResourceMetadata.objects.filter(resource_id=resource.pk).exists()
    assert not storage.exists(resource.datafile) and not storage.exists(extra)


def test_delete_refusals(auth_client, user, other):
    in_ws = stored_resource(user)
    workspace_with(user, in_ws)
    assert auth_client.delete(f"/api/resources/{in_ws.pk}/").status_code == 403
    inactive = stored_resource(user, is_active=False)
    assert auth_client.delete(f"/api/resources/{inactive.pk}/").status_code == 400
    theirs = stored_resource(other)
    assert auth_client.delete(f"/api/resources/{theirs.pk}/").status_code == 404
    assert auth_client.delete("/api/resources/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert Resource.objects.filter(pk__in=[in_ws.pk, inactive.pk, theirs.pk]).count() == 3
    assert storage.exists(theirs.datafile)


def test_anonymous_gets_401(api_client, user):
    resource = stored_resource(user)
    assert api_client.get("/api/resources/").status_code == 401
    assert api_client.get(f"/api/resources/{resource.pk}/").status_code == 401
    assert api_client.get(f"/api/resources/download/{resource.pk}/").status_code == 401
