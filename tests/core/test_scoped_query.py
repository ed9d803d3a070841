"""ScopedValues gives exactly the rows of the queryset it was built from, for any key."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mev.core.scoped_query import ScopedValues
from mev.resources.models import Resource
from mev.resources.serializers import RESOURCE_ROW_FIELDS
from mev.workspaces.models import Workspace, WorkspaceResource
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def owned(owner_id):
    return Resource.objects.filter(owner_id=owner_id).order_by("-created").values(*RESOURCE_ROW_FIELDS)


def memberships(owner_id):
    return (WorkspaceResource.objects.filter(resource__owner_id=owner_id).order_by("workspace__created", "resource_id")
            .values("resource_id", "workspace_id", "workspace__workspace_name", "workspace__owner__email",
                    "workspace__created"))


def shared_or_owned(user_id):
    # The key twice, and other parameters beside it.
    return (Resource.objects.filter(owner_id=user_id, is_active=True)
            | Resource.objects.filter(workspaces__owner_id=user_id, size__gte=5)).distinct().order_by("name").values(
        "id", "name", "size", "is_active")


@pytest.fixture
def people():
    alice, bob = UserFactory(), UserFactory()
    for owner in (alice, bob):
        for i in range(4):
            Resource.objects.create(owner=owner, name=f"{owner.pk.hex[:4]}-{i}.tsv", size=i * 3,
                                    resource_type="MTX" if i % 2 else None, is_active=i != 2)
        workspace = Workspace.objects.create(owner=owner, workspace_name=f"ws of {owner.email}")
        for resource in Resource.objects.filter(owner=owner)[:2]:
            WorkspaceResource.objects.create(workspace=workspace, resource=resource)
    return alice, bob


@pytest.mark.parametrize("build", [owned, memberships, shared_or_owned])
@pytest.mark.parametrize("prepared", [True, False])
def test_rows_are_the_querysets_for_every_key(people, build, prepared, settings) -> None:
    settings.MEV_DB_PREPARED_STATEMENTS = prepared
    scoped = ScopedValues(build)
    for key in [people[0].pk, people[1].pk, str(people[1].pk), uuid.uuid4()]:
        for _ in range(2):  # compiled on the first call, reused on the second
            assert scoped.rows(key) == list(build(key if isinstance(key, uuid.UUID) else uuid.UUID(key)))


def test_it_is_counted_as_one_query_per_call(people) -> None:
    scoped = ScopedValues(owned)
    scoped.rows(people[0].pk)
    with CaptureQueriesContext(connection) as queries:
        scoped.rows(people[0].pk)
    assert len(queries) == 1 and "resources_resource" in queries[0]["sql"]


def test_a_queryset_without_its_key_is_refused() -> None:
    with pytest.raises(ValueError, match="do not hold its key"):
        ScopedValues(lambda key: Resource.objects.filter(size=3).values("id")).rows(uuid.uuid4())
