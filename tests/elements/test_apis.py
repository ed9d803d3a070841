"""The set-operation endpoints (contract §2.7): intersect, union, set-difference."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mev.elements.algebra import DIFFERENCE_SETS_MESSAGE, MIN_SETS_MESSAGE

pytestmark = pytest.mark.django_db

INTERSECT, UNION, DIFFERENCE = "/api/metadata/intersect/", "/api/metadata/union/", "/api/metadata/set-difference/"


def obs(element_id, **attrs):
    return {"id": element_id, "attributes": {k: {"attribute_type": "String", "value": v} for k, v in attrs.items()}}


def body(sets, set_type="observation_set", **extra):
    return {"sets": [{"elements": s} for s in sets], "set_type": set_type, **extra}


def post(client, url, payload):
    return client.post(url, payload, format="json")


def test_intersection_as_the_client_sends_it(auth_client):
    a = [obs("s1", g="x"), obs("s2")]
    b = [obs("s2", g="y"), obs("s3")]
    response = post(auth_client, INTERSECT, body([a, b], ignore_attributes=True))
    assert response.status_code == 200
    assert [e["id"] for e in response.json()["elements"]] == ["s2"]


def test_union_and_difference_of_feature_sets_without_attributes(auth_client):
    a, b = [{"id": "TP53"}, {"id": "BRCA1"}], [{"id": "EGFR"}, {"id": "TP53"}]
    union = post(auth_client, UNION, body([a, b], "feature_set", ignore_attributes=True)).json()["elements"]
    assert [e["id"] for e in union] == ["BRCA1", "EGFR", "TP53"]
    difference = post(auth_client, DIFFERENCE, body([a, b], "feature_set")).json()["elements"]
    assert difference == [{"id": "BRCA1", "attributes": {}}]


@pytest.mark.parametrize("url", [INTERSECT, UNION, DIFFERENCE, INTERSECT.rstrip("/")])
def test_fewer_than_two_sets_is_400(auth_client, url):
    response = post(auth_client, url, body([[obs("s1")]]))
    assert response.status_code == 400 and response.json() == {"sets": MIN_SETS_MESSAGE}


def test_difference_takes_exactly_two(auth_client):
    response = post(auth_client, DIFFERENCE, body([[obs("a")], [obs("b")], [obs("c")]]))
    assert response.status_code == 400 and response.json() == {"sets": DIFFERENCE_SETS_MESSAGE}


def test_conflicting_attributes_are_400_error_unless_ignored(auth_client):
    sets = [[obs("s1", g="x")], [obs("s1", g="y")]]
    response = post(auth_client, INTERSECT, body(sets))
    assert response.status_code == 400 and "s1" in response.json()["error"]
    assert post(auth_client, INTERSECT, body(sets, ignore_attributes=True)).status_code == 200


def test_mixed_set_types_are_400(auth_client):
    payload = body([[obs("s1")], [obs("s1")]])
    payload["sets"][1]["set_type"] = "feature_set"
    response = post(auth_client, UNION, payload)
    assert response.status_code == 400 and "set_type" in response.json()


@pytest.mark.parametrize("set_type", [None, "gene_set", ""])
def test_set_type_is_required_and_checked(auth_client, set_type):
    payload = body([[obs("s1")], [obs("s1")]])
    if set_type is None:
        del payload["set_type"]
    else:
        payload["set_type"] = set_type
    response = post(auth_client, UNION, payload)
    assert response.status_code == 400 and "set_type" in response.json()


@pytest.mark.parametrize(
    "sets",
    ["nope", [{"elements": "x"}, {"elements": []}], [{"elements": [{"no": "id"}]}, {"elements": []}]],
)
def test_malformed_sets_are_400_objects(auth_client, sets):
    response = post(auth_client, UNION, {"sets": sets, "set_type": "feature_set"})
    assert response.status_code == 400 and isinstance(response.json(), dict)


def test_needs_authentication(api_client):
    assert post(api_client, UNION, body([[], []])).status_code == 401


# --- Properties, through the HTTP layer ----------------------------------------------------------

ids = st.sampled_from([f"g{i}" for i in range(12)])
id_sets = st.lists(st.frozensets(ids, max_size=8), min_size=2, max_size=4)
HYP = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _payload(id_lists):
    return body([[{"id": i} for i in sorted(s)] for s in id_lists], "feature_set", ignore_attributes=True)


def _ids(response):
    assert response.status_code == 200, response.content
    return [e["id"] for e in response.json()["elements"]]


@HYP
@given(id_sets)
def test_union_and_intersection_match_python_sets(auth_client, sets):
    union = _ids(post(auth_client, UNION, _payload(sets)))
    intersection = _ids(post(auth_client, INTERSECT, _payload(sets)))
    assert union == sorted(frozenset().union(*sets))
    assert intersection == sorted(sets[0].intersection(*sets[1:]))
    assert set(intersection) <= set(union)


@HYP
@given(st.frozensets(ids, max_size=8), st.frozensets(ids, max_size=8))
def test_difference_partitions_the_first_set(auth_client, a, b):
    minus = _ids(post(auth_client, DIFFERENCE, _payload([a, b])))
    common = _ids(post(auth_client, INTERSECT, _payload([a, b])))
    assert minus == sorted(a - b)
    assert set(minus).isdisjoint(common) and set(minus) | set(common) == set(a)


@HYP
@given(id_sets)
def test_order_of_sets_does_not_matter_for_union_and_intersection(auth_client, sets):
    for url in (UNION, INTERSECT):
        assert _ids(post(auth_client, url, _payload(sets))) == _ids(post(auth_client, url, _payload(sets[::-1])))
