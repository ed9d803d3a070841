"""Workspace metadata: the union of observations / features across the workspace's resources."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.workspaces.factories import (
    ResourceFactory,
    WorkspaceFactory,
    add_features,
    add_observations,
    attach,
    attr,
)

pytestmark = pytest.mark.django_db


def obs(client, ws, query=""):
    return client.get(f"/api/workspaces/{ws.pk}/metadata/observations/{query}")


def test_union_of_observations_sorted_and_paginated(world):
    add_observations(world.res, {"s2": {"group": "b"}, "s1": {"group": "a"}})
    second = ResourceFactory(owner=world.owner)
    add_observations(second, {"s3": {}, "s1": {"batch": "x"}})
    attach(world.ws, second)
    outside = ResourceFactory(owner=world.owner)  # not in the workspace
    add_observations(outside, {"zzz": {}})

    response = obs(world.clients["owner"], world.ws, "?page_size=500")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3 and body["next"] is None and body["previous"] is None
    assert body["results"] == [
        {"id": "s1", "attributes": {"batch": attr("x"), "group": attr("a")}},
        {"id": "s2", "attributes": {"group": attr("b")}},
        {"id": "s3", "attributes": {}},
    ]


def test_always_paginated_even_without_params(world):
    body = obs(world.clients["owner"], world.ws).json()
    assert body == {"count": 0, "next": None, "previous": None, "results": []}


def test_features_are_separate(world):
    add_observations(world.res, {"s1": {}})
    add_features(world.res, {"TP53": {}, "BRCA1": {}})
    body = world.clients["owner"].get(f"/api/workspaces/{world.ws.pk}/metadata/features").json()
    assert body["count"] == 2 and [e["id"] for e in body["results"]] == ["BRCA1", "TP53"]


def test_page_size_default_max_and_last_page(world):
    add_observations(world.res, {f"s{i:04d}": {} for i in range(1200)})
    client = world.clients["owner"]
    default = obs(client, world.ws).json()
    assert default["count"] == 1200 and len(default["results"]) == 50
    assert "page=2" in default["next"]
    assert len(obs(client, world.ws, "?page_size=500").json()["results"]) == 500
    capped = obs(client, world.ws, "?page_size=5000").json()
    assert len(capped["results"]) == 1000
    last = obs(client, world.ws, "?page_size=500&page=last").json()
    assert [e["id"] for e in last["results"]][0] == "s1000" and len(last["results"]) == 200
    assert last["next"] is None and "page=2" in last["previous"]


def test_out_of_range_page_is_404(world):
    add_observations(world.res, {"s1": {}})
    response = obs(world.clients["owner"], world.ws, "?page=3")
    assert response.status_code == 404 and response.json() == {"detail": "Invalid page."}


def test_query_count_does_not_grow_with_resources(world):
    for n in range(6):
        resource = ResourceFactory(owner=world.owner)
        add_observations(resource, {f"s{i}": {"r": n % 2} for i in range(40)})
        attach(world.ws, resource)
    with CaptureQueriesContext(connection) as queries:
        assert obs(world.clients["owner"], world.ws, "?page_size=500").status_code == 200
    assert len(queries) <= 8


def test_conflicting_attributes_are_reported_not_an_error(world):
    """The documented rule: a disagreeing key leaves `attributes` and is listed under `conflicts`."""
    add_observations(world.res, {"s1": {"group": "tumour", "sex": "F"}, "s2": {"group": "normal"}})
    second = ResourceFactory(owner=world.owner, name="other.tsv")
    add_observations(second, {"s1": {"group": "normal", "sex": "F", "age": 40}})
    attach(world.ws, second)

    response = obs(world.clients["owner"], world.ws)
    assert response.status_code == 200
    s1, s2 = response.json()["results"]
    assert s1["attributes"] == {"sex": attr("F"), "age": attr(40)}
    expected = sorted(
        [
            {"resource": str(world.res.pk), "resource_name": "owner.tsv", "value": attr("tumour")},
            {"resource": str(second.pk), "resource_name": "other.tsv", "value": attr("normal")},
        ],
        key=lambda c: c["resource"],
    )
    assert s1["conflicts"] == {"group": expected}
    assert s2 == {"id": "s2", "attributes": {"group": attr("normal")}}


def test_answer_does_not_depend_on_the_order_resources_were_added(db, make_client):
    answers = []
    for order in ((0, 1), (1, 0)):
        ws = WorkspaceFactory()
        resources = [ResourceFactory(owner=ws.owner, name=f"r{i}") for i in range(2)]
        add_observations(resources[0], {"s1": {"g": "a"}})
        add_observations(resources[1], {"s1": {"g": "b"}})
        attach(ws, *(resources[i] for i in order))
        body = obs(make_client(ws.owner), ws).json()
        answers.append([(e["id"], e["attributes"], sorted(c["value"]["value"] for c in e["conflicts"]["g"]))
                        for e in body["results"]])
    assert answers[0] == answers[1] == [("s1", {}, ["a", "b"])]


@pytest.mark.parametrize("role", ["owner", "editor", "reader"])
def test_members_read_metadata(world, role):
    add_observations(world.res, {"s1": {}})
    assert obs(world.clients[role], world.ws).json()["count"] == 1


def test_stranger_gets_404(world):
    response = obs(world.clients["stranger"], world.ws)
    assert response.status_code == 404


# --- Property: the merge rule, over random resources ---------------------------------------------

element_maps = st.dictionaries(
    st.sampled_from(["s1", "s2", "s3", "s4"]),
    st.dictionaries(st.sampled_from(["g", "h"]), st.sampled_from(["a", "b"]), max_size=2),
    max_size=4,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(element_maps, min_size=1, max_size=3))
def test_merge_rule_property(make_client, db, resources_elements):
    ws = WorkspaceFactory()
    for elements in resources_elements:
        resource = ResourceFactory(owner=ws.owner)
        add_observations(resource, elements)
        attach(ws, resource)
    results = obs(make_client(ws.owner), ws, "?page_size=1000").json()["results"]

    expected_ids = sorted(set().union(*resources_elements))
    assert [e["id"] for e in results] == expected_ids
    for element in results:
        versions = [r[element["id"]] for r in resources_elements if element["id"] in r]
        for key in {k for v in versions for k in v}:
            values = {v[key] for v in versions if key in v}
            if len(values) == 1:
                assert element["attributes"][key] == attr(values.pop())
                assert key not in element.get("conflicts", {})
            else:
                assert key not in element["attributes"]
                assert {c["value"]["value"] for c in element["conflicts"][key]} == values
