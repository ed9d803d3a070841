"""Another user's executed operation is 404 on every route (§7.1.17)."""

from __future__ import annotations

import pytest

from mev.jobs.models import ExecutedOperation, JobState
from mev.workspaces.models import Workspace
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def foreign(operation) -> ExecutedOperation:
    other = UserFactory()
    workspace = Workspace.objects.create(owner=other, workspace_name="theirs")
    return ExecutedOperation.objects.create(owner=other, operation=operation, workspace=workspace, job_name="theirs",
                                            mode="local", runner="local", state=JobState.COMPLETED, outputs={})


def test_every_route_is_404(auth_client, foreign):
    base = f"/api/executed-operations/{foreign.id}"
    message = {"message": f"No executed operation found by ID: {foreign.id}"}
    for method, url in [("get", f"{base}/"), ("get", base), ("post", f"{base}/cancel/"), ("post", f"{base}/rerun/"),
                        ("get", f"{base}/logs/"), ("get", f"{base}/results-query/?transform-name=networksubset")]:
        response = getattr(auth_client, method)(url)
        assert response.status_code == 404, url
        assert response.json() == message, url
    assert auth_client.get("/api/executed-operations/").json() == []
    assert auth_client.get("/api/non-workspace-executed-operations/").json() == []
    response = auth_client.get(f"/api/executed-operations/workspace/{foreign.workspace_id}/")
    assert response.status_code == 404
    assert response.json() == {"message": f"No workspace found by ID: {foreign.workspace_id}"}
    assert auth_client.get(f"/api/executed-operations/workspace/{foreign.workspace_id}/tree/").status_code == 403
    assert auth_client.get(f"/api/executed-operations/workspace/{foreign.workspace_id}/tree/save").status_code == 403
    foreign.refresh_from_db()
    assert foreign.state == JobState.COMPLETED


def test_anonymous_is_401(api_client, foreign):
    assert api_client.get(f"/api/executed-operations/{foreign.id}/").status_code == 401
    assert api_client.post("/api/operations/run/", {}, format="json").status_code == 401
