"""GET /api/resources/<id>/metadata/... (contract §2.5), access-checked unlike the original (§7.1.1)."""

from __future__ import annotations

import uuid

import pytest

from mev.resources.models import Resource
from mev.workspaces.models import ShareRole, Workspace, WorkspaceResource, WorkspaceShare
from tests.factories import UserFactory
from tests.resources.validated_factory import make_resource, store_resource

pytestmark = pytest.mark.django_db

ANNOTATION = "sample\tcondition\tage\nS1\ttreated\t43\nS2\tcontrol\t\n"
MATRIX = "gene\tS1\tS2\nG1\t1\t2\n"


@pytest.fixture
def annotation(user) -> Resource:
    return make_resource(user, ANNOTATION, resource_type="ANN", file_format="tsv")


def test_full_metadata(auth_client, annotation) -> None:
    response = auth_client.get(f"/api/resources/{annotation.pk}/metadata/")
    assert response.status_code == 200
    body = response.json()
    assert body["resource"] == str(annotation.pk)
    assert body["parent_operation"] is None and body["feature_set"] is None
    assert body["observation_set"]["elements"][0] == {
        "id": "S1",
        "attributes": {
            "condition": {"attribute_type": "UnrestrictedString", "value": "treated"},
            "age": {"attribute_type": "Integer", "value": 43},
        },
    }
    assert body["observation_set"]["elements"][1]["attributes"]["age"]["value"] is None


@pytest.mark.parametrize(
    ("suffix", "key"), [("observations", "observation_set"), ("features", "feature_set"), ("parent", "parent_operation")]
)
def test_parts(auth_client, annotation, suffix, key) -> None:
    for path in (f"/api/resources/{annotation.pk}/metadata/{suffix}/", f"/api/resources/{annotation.pk}/metadata/{suffix}"):
        response = auth_client.get(path)
        assert response.status_code == 200
        assert list(response.json()) == [key]


def test_matrix_observations_are_columns(auth_client, user) -> None:
    resource = make_resource(user, MATRIX, resource_type="MTX", file_format="tsv")
    body = auth_client.get(f"/api/resources/{resource.pk}/metadata/observations/").json()
    assert body == {"observation_set": {"elements": [{"id": "S1", "attributes": {}}, {"id": "S2", "attributes": {}}]}}


def test_other_types_have_an_empty_skeleton(auth_client, user) -> None:
    resource = make_resource(user, "chr1\t1\t2\n", resource_type="BED3", file_format="tsv")
    body = auth_client.get(f"/api/resources/{resource.pk}/metadata/").json()
    assert (body["observation_set"], body["feature_set"]) == (None, None)


def test_unknown_inactive_and_unvalidated_are_404(auth_client, user, annotation) -> None:
    assert auth_client.get(f"/api/resources/{uuid.uuid4()}/metadata/").status_code == 404
    untyped = store_resource(user, MATRIX)
    assert auth_client.get(f"/api/resources/{untyped.pk}/metadata/").status_code == 404
    Resource.objects.filter(pk=annotation.pk).update(is_active=False)
    assert auth_client.get(f"/api/resources/{annotation.pk}/metadata/observations/").status_code == 404


def test_strangers_are_refused_and_shared_readers_allowed(user, annotation, make_client, api_client) -> None:
    stranger = make_client(UserFactory())
    assert stranger.get(f"/api/resources/{annotation.pk}/metadata/").status_code == 404
    assert api_client.get(f"/api/resources/{annotation.pk}/metadata/").status_code == 401

    reader = UserFactory()
    workspace = Workspace.objects.create(owner=user, workspace_name="w")
    WorkspaceResource.objects.create(workspace=workspace, resource=annotation)
    WorkspaceShare.objects.create(workspace=workspace, user=reader, role=ShareRole.READER)
    assert make_client(reader).get(f"/api/resources/{annotation.pk}/metadata/").status_code == 200
