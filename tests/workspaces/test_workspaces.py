"""Workspaces as the web client uses them: list, create, detail, rename, delete (contract §2.6)."""

from __future__ import annotations

import uuid

import pytest

from mev.jobs.models import ExecutedOperation, JobState
from mev.resources.models import Resource, ResourceElement, ResourceMetadata
from mev.workspaces.models import Workspace, WorkspaceResource
from mev.workspaces.services import DUPLICATE_NAME
from tests.factories import UserFactory
from tests.workspaces.factories import (
    ExecutedOperationFactory,
    ResourceFactory,
    WorkspaceFactory,
    add_observations,
    attach,
)

pytestmark = pytest.mark.django_db

WORKSPACE_KEYS = {"url", "id", "workspace_name", "owner_email", "created"}


def test_create_returns_the_workspace_object(auth_client, user):
    response = auth_client.post("/api/workspaces/", {"workspace_name": "Tumour study"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert WORKSPACE_KEYS <= set(body)
    assert body["workspace_name"] == "Tumour study"
    assert body["owner_email"] == user.email
    assert isinstance(body["created"], str) and body["created"].endswith("Z")
    assert body["url"] == f"http://testserver/api/workspaces/{body['id']}/"
    assert body["id"] == str(uuid.UUID(body["id"]))
    assert body["role"] == "owner" and body["shared"] is False


@pytest.mark.parametrize("payload", [{"workspace_name": ""}, {}, {"workspace_name": "   "}])
def test_empty_name_gets_the_uuid(auth_client, payload):
    response = auth_client.post("/api/workspaces/", payload, format="json")
    assert response.status_code == 201
    assert response.json()["workspace_name"] == response.json()["id"]


def test_duplicate_name_for_same_owner_is_400_keyed_workspace_name(auth_client):
    assert auth_client.post("/api/workspaces/", {"workspace_name": "A"}, format="json").status_code == 201
    response = auth_client.post("/api/workspaces/", {"workspace_name": "A"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"workspace_name": DUPLICATE_NAME}


def test_same_name_for_another_owner_is_fine(auth_client):
    WorkspaceFactory(workspace_name="A")
    assert auth_client.post("/api/workspaces/", {"workspace_name": "A"}, format="json").status_code == 201


def test_owner_email_must_be_the_callers(auth_client, user):
    other = UserFactory()
    ok = auth_client.post("/api/workspaces/", {"workspace_name": "x", "owner_email": user.email}, format="json")
    assert ok.status_code == 201
    theirs = auth_client.post("/api/workspaces/", {"workspace_name": "y", "owner_email": other.email}, format="json")
    assert theirs.status_code == 403
    unknown = auth_client.post("/api/workspaces/", {"workspace_name": "z", "owner_email": "no@x.org"}, format="json")
    assert unknown.status_code == 400 and "owner_email" in unknown.json()
    assert Workspace.objects.filter(owner=other).count() == 0


def test_list_is_a_bare_array_of_own_and_shared(world):
    WorkspaceFactory()  # someone else's
    mine = WorkspaceFactory(owner=world.reader, workspace_name="reader's own")
    body = world.clients["reader"].get("/api/workspaces/").json()
    assert isinstance(body, list)
    by_id = {w["id"]: w for w in body}
    assert set(by_id) == {str(world.ws.pk), str(mine.pk)}
    assert by_id[str(world.ws.pk)]["role"] == "reader" and by_id[str(world.ws.pk)]["shared"] is True
    assert by_id[str(mine.pk)]["role"] == "owner" and by_id[str(mine.pk)]["shared"] is False
    assert world.clients["stranger"].get("/api/workspaces/").json() == []


def test_list_requires_authentication(api_client):
    assert api_client.get("/api/workspaces/").status_code == 401


@pytest.mark.parametrize("path", ["/api/workspaces/{id}/", "/api/workspaces/{id}"])
def test_detail_with_and_without_slash(world, path):
    response = world.clients["owner"].get(path.format(id=world.ws.pk))
    assert response.status_code == 200
    assert response.json()["workspace_name"] == "My workspace"


def test_detail_unknown_and_strangers_are_404(world):
    assert world.clients["owner"].get(f"/api/workspaces/{uuid.uuid4()}/").status_code == 404
    response = world.clients["stranger"].get(f"/api/workspaces/{world.ws.pk}/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_staff_get_nothing_extra(world, make_client):
    staff = UserFactory(is_staff=True, is_superuser=True)
    assert make_client(staff).get(f"/api/workspaces/{world.ws.pk}/").status_code == 404


def test_rename(world):
    client = world.clients["owner"]
    response = client.patch(
        f"/api/workspaces/{world.ws.pk}/", {"id": str(world.ws.pk), "workspace_name": "Renamed"}, format="json"
    )
    assert response.status_code == 200 and response.json()["workspace_name"] == "Renamed"
    put = client.put(f"/api/workspaces/{world.ws.pk}/", {"workspace_name": "Again"}, format="json")
    assert put.status_code == 200 and put.json()["workspace_name"] == "Again"


def test_rename_to_a_duplicate_is_400(world):
    WorkspaceFactory(owner=world.owner, workspace_name="Taken")
    response = world.clients["owner"].patch(
        f"/api/workspaces/{world.ws.pk}/", {"workspace_name": "Taken"}, format="json"
    )
    assert response.status_code == 400 and response.json() == {"workspace_name": DUPLICATE_NAME}


def test_rename_cannot_change_owner(world):
    response = world.clients["owner"].patch(
        f"/api/workspaces/{world.ws.pk}/",
        {"workspace_name": "x", "owner_email": world.reader.email},
        format="json",
    )
    assert response.status_code == 400 and "owner_email" in response.json()
    world.ws.refresh_from_db()
    assert world.ws.owner == world.owner and world.ws.workspace_name == "My workspace"


def test_delete_keeps_resources_metadata_and_results(world):
    ResourceMetadata.objects.create(resource=world.res, observation_set={"elements": []})
    add_observations(world.res, {"s1": {"group": "a"}})
    job = ExecutedOperationFactory(owner=world.owner, workspace=world.ws, inputs={"x": str(world.res.pk)})
    output = ResourceFactory(owner=world.owner, parent_operation=job)
    attach(world.ws, output)

    response = world.clients["owner"].delete(f"/api/workspaces/{world.ws.pk}/")
    assert response.status_code == 204
    assert not Workspace.objects.filter(pk=world.ws.pk).exists()
    assert not WorkspaceResource.objects.filter(workspace_id=world.ws.pk).exists()
    assert Resource.objects.filter(pk__in=[world.res.pk, output.pk]).count() == 2
    assert ResourceMetadata.objects.filter(resource=world.res).exists()
    assert ResourceElement.objects.filter(resource=world.res).count() == 1
    job.refresh_from_db()
    assert job.workspace is None and job.state == JobState.COMPLETED
    output.refresh_from_db()
    assert output.parent_operation_id == job.pk


@pytest.mark.parametrize("state", [JobState.QUEUED, JobState.SUBMITTED, JobState.RUNNING, JobState.FINALIZING])
def test_delete_refused_while_a_job_is_active(world, state):
    ExecutedOperationFactory(owner=world.owner, workspace=world.ws, state=state)
    response = world.clients["owner"].delete(f"/api/workspaces/{world.ws.pk}/")
    assert response.status_code == 409
    assert "still running" in response.json()["detail"]
    assert Workspace.objects.filter(pk=world.ws.pk).exists()


def test_delete_allowed_after_failed_or_canceled_jobs(world):
    ExecutedOperationFactory(owner=world.owner, workspace=world.ws, state=JobState.FAILED)
    ExecutedOperationFactory(owner=world.owner, workspace=world.ws, state=JobState.CANCELED)
    assert world.clients["owner"].delete(f"/api/workspaces/{world.ws.pk}").status_code == 204
    assert ExecutedOperation.objects.filter(workspace__isnull=True).count() == 2


@pytest.mark.parametrize(
    "path",
    [
        "/api/workspaces",
        "/api/workspaces/{ws}",
        "/api/workspaces/{ws}/resources",
        "/api/workspaces/{ws}/metadata/observations",
        "/api/workspaces/{ws}/metadata/features",
        "/api/workspaces/{ws}/shares",
        "/api/workspaces/{ws}/shares/events",
        "/api/workspaces/{ws}/shares/{reader}",
    ],
)
def test_every_get_route_answers_without_the_final_slash(world, path):
    url = path.format(ws=world.ws.pk, reader=world.reader.pk)
    client = world.clients["owner"]
    without, with_slash = client.get(url), client.get(url + "/")
    assert without.status_code == with_slash.status_code == 200
    assert without.json() == with_slash.json()
