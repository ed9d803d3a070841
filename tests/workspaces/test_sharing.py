"""Sharing: the owner shares as reader or editor; the audit trail; the full access matrix."""

from __future__ import annotations

import uuid

import pytest

from mev.resources.access import resources_readable_by
from mev.workspaces.models import ShareEvent, ShareRole, Workspace, WorkspaceShare
from tests.factories import UserFactory
from tests.workspaces.factories import ResourceFactory, WorkspaceFactory, add_observations, attach

pytestmark = pytest.mark.django_db


def shares_url(ws, user_id=None):
    base = f"/api/workspaces/{ws.pk}/shares/"
    return f"{base}{user_id}/" if user_id else base


def test_owner_shares_lists_changes_and_revokes_with_an_audit_trail(world):
    client = world.clients["owner"]
    guest = UserFactory(email="guest@example.org")

    created = client.post(shares_url(world.ws), {"email": "GUEST@example.org", "role": "reader"}, format="json")
    assert created.status_code == 201
    assert created.json()["user_id"] == str(guest.pk)
    assert created.json()["email"] == "guest@example.org" and created.json()["role"] == "reader"

    listed = client.get(shares_url(world.ws)).json()
    assert {(s["email"], s["role"]) for s in listed} == {
        (world.editor.email, "editor"), (world.reader.email, "reader"), ("guest@example.org", "reader")
    }

    changed = client.patch(shares_url(world.ws, guest.pk), {"role": "editor"}, format="json")
    assert changed.status_code == 200 and changed.json()["role"] == "editor"
    same = client.patch(shares_url(world.ws, guest.pk), {"role": "editor"}, format="json")
    assert same.status_code == 200  # no change, no event

    assert client.delete(shares_url(world.ws, guest.pk)).status_code == 204
    assert not WorkspaceShare.objects.filter(workspace=world.ws, user=guest).exists()
    assert client.delete(shares_url(world.ws, guest.pk)).status_code == 404

    events = client.get(f"/api/workspaces/{world.ws.pk}/shares/events/").json()
    assert [(e["action"], e["role"], e["user_email"], e["actor_email"]) for e in events] == [
        ("granted", "reader", "guest@example.org", world.owner.email),
        ("changed", "editor", "guest@example.org", world.owner.email),
        ("revoked", "editor", "guest@example.org", world.owner.email),
    ]
    assert all(isinstance(e["timestamp"], str) for e in events)


def test_revoked_user_loses_access_at_once(world):
    world.clients["owner"].delete(shares_url(world.ws, world.reader.pk))
    assert world.clients["reader"].get(f"/api/workspaces/{world.ws.pk}/").status_code == 404
    assert world.clients["reader"].get("/api/workspaces/").json() == []


def test_downgraded_editor_becomes_read_only(world):
    world.clients["owner"].patch(shares_url(world.ws, world.editor.pk), {"role": "reader"}, format="json")
    own = ResourceFactory(owner=world.editor)
    response = world.clients["editor"].post(
        f"/api/workspaces/{world.ws.pk}/resources/add/", {"resource_uuid": str(own.pk)}, format="json"
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        ({"email": "nobody@example.org", "role": "reader"}, "email"),
        ({"email": "{owner}", "role": "reader"}, "email"),
        ({"email": "{reader}", "role": "editor"}, "email"),
        ({"email": "{stranger}", "role": "admin"}, "role"),
        ({"role": "reader"}, "email"),
    ],
    ids=["unknown-email", "self", "already-shared", "bad-role", "no-email"],
)
def test_share_errors_are_400_with_a_clear_message(world, payload, key):
    payload = {
        k: v.format(owner=world.owner.email, reader=world.reader.email, stranger=world.stranger.email)
        for k, v in payload.items()
    }
    before = ShareEvent.objects.count()
    response = world.clients["owner"].post(shares_url(world.ws), payload, format="json")
    assert response.status_code == 400
    assert key in response.json()
    assert ShareEvent.objects.count() == before


def test_share_of_unknown_user_id_is_404(world):
    assert world.clients["owner"].patch(shares_url(world.ws, uuid.uuid4()), {"role": "reader"}, format="json") \
        .status_code == 404


def test_sharing_reveals_nothing_outside_the_workspace(world):
    private_ws = WorkspaceFactory(owner=world.owner)
    private_res = ResourceFactory(owner=world.owner)
    attach(private_ws, private_res)
    loose = ResourceFactory(owner=world.owner)
    add_observations(private_res, {"secret": {}})

    readable = set(resources_readable_by(world.reader).values_list("pk", flat=True))
    assert readable == {world.res.pk}
    reader = world.clients["reader"]
    assert {w["id"] for w in reader.get("/api/workspaces/").json()} == {str(world.ws.pk)}
    for path in (f"/api/workspaces/{private_ws.pk}/", f"/api/workspaces/{private_ws.pk}/resources/",
                 f"/api/workspaces/{private_ws.pk}/metadata/observations/"):
        assert reader.get(path).status_code == 404
    assert loose.pk not in readable
    assert set(resources_readable_by(world.stranger).values_list("pk", flat=True)) == set()


# --- The matrix: owner / editor / reader / stranger × every workspace endpoint -------------------

ROLES = ("owner", "editor", "reader", "stranger")


def _call(world, role, action):
    client = world.clients[role]
    ws = world.ws
    base = f"/api/workspaces/{ws.pk}"
    if action == "list":
        return client.get("/api/workspaces/")
    if action == "detail":
        return client.get(f"{base}/")
    if action == "rename":
        return client.patch(f"{base}/", {"workspace_name": f"new name {role}"}, format="json")
    if action == "delete":
        return client.delete(f"{base}/")
    if action == "resources":
        return client.get(f"{base}/resources/")
    if action == "add":
        mine = ResourceFactory(owner=getattr(world, role))
        return client.post(f"{base}/resources/add/", {"resource_uuid": str(mine.pk)}, format="json")
    if action == "remove-get":
        return client.get(f"{base}/resources/{world.res.pk}/remove/")
    if action == "remove-delete":
        return client.delete(f"{base}/resources/{world.res.pk}/")
    if action == "observations":
        return client.get(f"{base}/metadata/observations/?page_size=500")
    if action == "features":
        return client.get(f"{base}/metadata/features/")
    if action == "shares":
        return client.get(f"{base}/shares/")
    if action == "share-add":
        return client.post(f"{base}/shares/", {"email": UserFactory().email, "role": "reader"}, format="json")
    if action == "share-change":
        return client.patch(f"{base}/shares/{world.reader.pk}/", {"role": "editor"}, format="json")
    if action == "share-revoke":
        return client.delete(f"{base}/shares/{world.reader.pk}/")
    if action == "share-events":
        return client.get(f"{base}/shares/events/")
    raise AssertionError(action)


MATRIX = {
    #                owner editor reader stranger
    "list":          (200, 200, 200, 200),
    "detail":        (200, 200, 200, 404),
    "rename":        (200, 403, 403, 404),
    "delete":        (204, 403, 403, 404),
    "resources":     (200, 200, 200, 404),
    "add":           (201, 201, 403, 404),
    "remove-get":    (200, 200, 403, 404),
    "remove-delete": (204, 204, 403, 404),
    "observations":  (200, 200, 200, 404),
    "features":      (200, 200, 200, 404),
    "shares":        (200, 403, 403, 404),
    "share-add":     (201, 403, 403, 404),
    "share-change":  (200, 403, 403, 404),
    "share-revoke":  (204, 403, 403, 404),
    "share-events":  (200, 403, 403, 404),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(MATRIX))
def test_access_matrix(world, role, action):
    expected = MATRIX[action][ROLES.index(role)]
    before = (Workspace.objects.count(), WorkspaceShare.objects.count(), ShareEvent.objects.count())
    response = _call(world, role, action)
    assert response.status_code == expected, response.content
    if expected == 404:
        assert response.json() == {"detail": "Not found."}
    if expected in (403, 404):
        # A refused request changes nothing.
        assert (Workspace.objects.count(), WorkspaceShare.objects.count(), ShareEvent.objects.count()) == before
        world.ws.refresh_from_db()
        assert world.ws.workspace_name == "My workspace"
        assert world.ws.resources.filter(pk=world.res.pk).exists()


@pytest.mark.parametrize("role", ROLES)
def test_resource_visibility_matrix(world, role):
    """Resource reads follow the workspace: members read its resources; a stranger reads none."""
    user = getattr(world, role)
    visible = resources_readable_by(user).filter(pk=world.res.pk).exists()
    assert visible is (role != "stranger")


def test_share_role_values():
    assert set(ShareRole.values) == {"reader", "editor"}


def test_audit_trail_outlives_the_workspace(world):
    ws_id, name = world.ws.pk, world.ws.workspace_name
    world.clients["owner"].post(shares_url(world.ws), {"email": world.stranger.email, "role": "reader"}, format="json")
    assert world.clients["owner"].delete(f"/api/workspaces/{ws_id}/").status_code == 204
    events = ShareEvent.objects.filter(workspace_uuid=ws_id).order_by("timestamp", "id")
    assert [e.action for e in events] == ["granted", "revoked", "revoked", "revoked"]
    assert {e.user_email for e in events if e.action == "revoked"} == {
        world.editor.email, world.reader.email, world.stranger.email
    }
    assert all(e.workspace_id is None and e.workspace_name == name for e in events)
    assert all(e.actor_email == world.owner.email for e in events)


def test_audit_rows_keep_emails_after_user_deletion(world):
    world.clients["owner"].delete(shares_url(world.ws, world.reader.pk))
    email = world.reader.email
    world.reader.delete()
    events = world.clients["owner"].get(f"/api/workspaces/{world.ws.pk}/shares/events/").json()
    assert events[-1]["action"] == "revoked" and events[-1]["user_email"] == email and events[-1]["user_id"] is None


# --- Resource routes of a shared workspace (served by the resources app) ------------------------

RESOURCE_MATRIX = {
    #           owner editor reader
    "detail": (200, 200, 200),
    "rename": (200, 403, 403),
    "delete": (403, 403, 403),  # 403 for the owner too: the resource is in a workspace (§2.2)
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(RESOURCE_MATRIX))
def test_resource_route_matrix(world, role, action):
    client = world.clients[role]
    url = f"/api/resources/{world.res.pk}/"
    response = {
        "detail": lambda: client.get(url),
        "rename": lambda: client.patch(url, {"id": str(world.res.pk), "name": "renamed.tsv"}, format="json"),
        "delete": lambda: client.delete(url),
    }[action]()
    if role == "stranger":
        # Never visible: the same 404 as an unknown id.
        assert response.status_code == 404
        assert "owner.tsv" not in response.content.decode()
    else:
        assert response.status_code == RESOURCE_MATRIX[action][ROLES.index(role)], response.content
    world.res.refresh_from_db()
    assert world.res.name == ("renamed.tsv" if (role, action) == ("owner", "rename") else "owner.tsv")


def test_owner_reads_a_resource_an_editor_added(world):
    added = ResourceFactory(owner=world.editor)
    attach(world.ws, added)
    assert world.clients["owner"].get(f"/api/resources/{added.pk}/").status_code == 200
