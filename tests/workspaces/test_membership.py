"""Membership: add, list and remove resources (contract §2.6)."""

from __future__ import annotations

import uuid

import pytest

from mev.jobs.models import JobState
from mev.resources.models import Resource
from mev.workspaces.models import WorkspaceResource
from mev.workspaces.services import NOT_ATTACHED, USED_IN_ANALYSIS
from tests.workspaces.factories import ExecutedOperationFactory, ResourceFactory, WorkspaceFactory, attach

pytestmark = pytest.mark.django_db


def add(client, ws, resource_id):
    return client.post(f"/api/workspaces/{ws.pk}/resources/add/", {"resource_uuid": str(resource_id)}, format="json")


def test_add_then_list(world):
    new = ResourceFactory(owner=world.owner, name="second.tsv")
    response = add(world.clients["owner"], world.ws, new.pk)
    assert response.status_code == 201
    body = response.json()
    assert body["id"] == str(new.pk) and body["name"] == "second.tsv"
    assert [w["id"] for w in body["workspaces"]] == [str(world.ws.pk)]

    listed = world.clients["owner"].get(f"/api/workspaces/{world.ws.pk}/resources/")
    assert listed.status_code == 200
    rows = listed.json()
    assert isinstance(rows, list) and {r["id"] for r in rows} == {str(world.res.pk), str(new.pk)}
    for row in rows:
        assert isinstance(row["created"], str)
        assert {"id", "name", "resource_type", "readable_resource_type", "file_format", "owner_email",
                "is_active", "status", "workspaces", "size"} <= set(row)
        assert isinstance(row["workspaces"], list)


def test_add_twice_is_204(world):
    assert add(world.clients["owner"], world.ws, world.res.pk).status_code == 204
    assert WorkspaceResource.objects.filter(workspace=world.ws, resource=world.res).count() == 1


def test_a_resource_may_belong_to_several_workspaces(world):
    other = WorkspaceFactory(owner=world.owner)
    assert add(world.clients["owner"], other, world.res.pk).status_code == 201
    rows = world.clients["owner"].get(f"/api/workspaces/{other.pk}/resources").json()
    assert {w["id"] for w in rows[0]["workspaces"]} == {str(world.ws.pk), str(other.pk)}


@pytest.mark.parametrize(
    "fields",
    [{"is_active": False}, {"resource_type": None, "file_format": None}],
    ids=["inactive", "untyped"],
)
def test_add_refuses_inactive_or_unvalidated(world, fields):
    resource = ResourceFactory(owner=world.owner, **fields)
    response = add(world.clients["owner"], world.ws, resource.pk)
    assert response.status_code == 400 and "resource_uuid" in response.json()
    assert not WorkspaceResource.objects.filter(resource=resource).exists()


def test_add_refuses_other_users_and_unknown_resources(world):
    theirs = ResourceFactory()
    for resource_id in (theirs.pk, uuid.uuid4()):
        response = add(world.clients["owner"], world.ws, resource_id)
        assert response.status_code == 400
        assert response.json() == {"resource_uuid": "There is no resource with this id."}
    assert add(world.clients["owner"], world.ws, "not-a-uuid").status_code == 400
    assert world.clients["owner"].post(f"/api/workspaces/{world.ws.pk}/resources/add/", {}, format="json").json() \
        .keys() == {"resource_uuid"}


def test_editor_adds_only_own_resources(world):
    # A resource the editor can read through another share is still not theirs to add.
    third = WorkspaceFactory()
    theirs = ResourceFactory(owner=third.owner)
    attach(third, theirs)
    from tests.workspaces.factories import share
    share(third, world.editor, "reader")
    response = add(world.clients["editor"], world.ws, theirs.pk)
    assert response.status_code == 400
    assert response.json() == {"resource_uuid": "You can only add resources that you own."}

    own = ResourceFactory(owner=world.editor)
    assert add(world.clients["editor"], world.ws, own.pk).status_code == 201


def test_reader_cannot_add(world):
    own = ResourceFactory(owner=world.reader)
    response = add(world.clients["reader"], world.ws, own.pk)
    assert response.status_code == 403
    assert not WorkspaceResource.objects.filter(resource=own).exists()


@pytest.mark.parametrize("method", ["get", "post", "delete"])
@pytest.mark.parametrize("slash", ["/", ""])
def test_remove_with_get_exactly_as_the_client(world, method, slash):
    response = getattr(world.clients["owner"], method)(
        f"/api/workspaces/{world.ws.pk}/resources/{world.res.pk}/remove{slash}"
    )
    assert response.status_code == 200
    assert not WorkspaceResource.objects.filter(workspace=world.ws).exists()
    assert Resource.objects.filter(pk=world.res.pk).exists()


def test_remove_with_delete_for_api_users(world):
    response = world.clients["owner"].delete(f"/api/workspaces/{world.ws.pk}/resources/{world.res.pk}/")
    assert response.status_code == 204
    assert not WorkspaceResource.objects.filter(workspace=world.ws).exists()


def test_remove_not_attached_is_400_message(world):
    loose = ResourceFactory(owner=world.owner)
    for rid in (loose.pk, uuid.uuid4()):
        response = world.clients["owner"].get(f"/api/workspaces/{world.ws.pk}/resources/{rid}/remove/")
        assert response.status_code == 400 and response.json() == {"message": NOT_ATTACHED}


@pytest.mark.parametrize("state", [JobState.COMPLETED, JobState.RUNNING, JobState.QUEUED])
@pytest.mark.parametrize(
    "inputs",
    [lambda r: {"counts": str(r.pk)}, lambda r: {"many": ["x", str(r.pk)]}, lambda r: {"n": 3, "f": str(r.pk).upper()}],
    ids=["single", "list", "upper"],
)
def test_remove_refused_when_used_as_input(world, state, inputs):
    ExecutedOperationFactory(owner=world.owner, workspace=world.ws, state=state, inputs=inputs(world.res))
    response = world.clients["owner"].get(f"/api/workspaces/{world.ws.pk}/resources/{world.res.pk}/remove/")
    assert response.status_code == 400
    assert response.json() == {"message": USED_IN_ANALYSIS}
    assert WorkspaceResource.objects.filter(workspace=world.ws, resource=world.res).exists()


def test_remove_refused_when_produced_here(world):
    job = ExecutedOperationFactory(owner=world.owner, workspace=world.ws)
    output = ResourceFactory(owner=world.owner, parent_operation=job)
    attach(world.ws, output)
    response = world.clients["owner"].delete(f"/api/workspaces/{world.ws.pk}/resources/{output.pk}/")
    assert response.status_code == 400 and response.json() == {"message": USED_IN_ANALYSIS}


@pytest.mark.parametrize("state", [JobState.FAILED, JobState.CANCELED])
def test_remove_allowed_when_only_failed_jobs_used_it(world, state):
    ExecutedOperationFactory(owner=world.owner, workspace=world.ws, state=state, inputs={"c": str(world.res.pk)})
    response = world.clients["owner"].get(f"/api/workspaces/{world.ws.pk}/resources/{world.res.pk}/remove/")
    assert response.status_code == 200


def test_remove_allowed_when_used_in_another_workspace(world):
    other = WorkspaceFactory(owner=world.owner)
    attach(other, world.res)
    ExecutedOperationFactory(owner=world.owner, workspace=other, inputs={"c": str(world.res.pk)})
    response = world.clients["owner"].get(f"/api/workspaces/{world.ws.pk}/resources/{world.res.pk}/remove/")
    assert response.status_code == 200
    assert WorkspaceResource.objects.filter(workspace=other, resource=world.res).exists()


def test_reader_sees_only_the_shared_workspace_in_resource_workspaces(world):
    private = WorkspaceFactory(owner=world.owner, workspace_name="private plans")
    attach(private, world.res)
    rows = world.clients["reader"].get(f"/api/workspaces/{world.ws.pk}/resources/").json()
    assert [w["id"] for w in rows[0]["workspaces"]] == [str(world.ws.pk)]
    owner_rows = world.clients["owner"].get(f"/api/workspaces/{world.ws.pk}/resources/").json()
    assert {w["id"] for w in owner_rows[0]["workspaces"]} == {str(world.ws.pk), str(private.pk)}


def test_unknown_workspace_resources_is_404(auth_client):
    assert auth_client.get(f"/api/workspaces/{uuid.uuid4()}/resources/").status_code == 404
