"""GET /api/resources/<id>/contents/transform/?transform-name=pandasubset (contract §2.3)."""

from __future__ import annotations

import pytest

from mev.resources.models import Resource
from tests.resources.validated_factory import make_resource

pytestmark = pytest.mark.django_db

# A PANDA-style gene x TF weight matrix (an NS resource), with one missing weight.
NETWORK = (
    "gene\tT1\tT2\tT3\tT4\n"
    "g1\t0.9\t0.1\t0.5\t-2.0\n"
    "g2\t0.2\t0.8\t0.8\t0.3\n"
    "g3\t-1.0\t0.4\t0.7\t\n"
    "g4\t0.5\t0.5\t0.1\t0.6\n"
    "g5\t3.0\t-0.5\t0.2\t0.0\n"
)
FEATURES = "gene\tlog2FoldChange\tpadj\ng1\t2.5\t0.01\ng2\t-1.0\t0.2\n"


def transform_url(resource: Resource, query: str) -> str:
    return f"/api/resources/{resource.pk}/contents/transform/?transform-name=pandasubset&{query}"


@pytest.fixture
def network(user) -> Resource:
    return make_resource(user, NETWORK, resource_type="NS", file_format="tsv")


def test_the_viewer_request_returns_the_subnetwork(auth_client, network) -> None:
    response = auth_client.get(transform_url(network, "maxdepth=2&children=2&axis=0"))

    assert response.status_code == 200, response.content
    # Worked out by hand: g5 and g2 have the largest row totals (2.7, 2.1); each keeps its two
    # largest weights (T2 and T3 tie in g2: the first column wins); the new TFs follow in order.
    assert response.json() == {
        "initial_axis": 0,
        "nodes": [
            {"g5": {"axis": 0, "children": [{"T1": 3.0}, {"T3": 0.2}]}},
            {"g2": {"axis": 0, "children": [{"T2": 0.8}, {"T3": 0.8}]}},
            {"T1": {"axis": 1, "children": [{"g5": 3.0}, {"g1": 0.9}]}},
            {"T3": {"axis": 1, "children": [{"g2": 0.8}, {"g3": 0.7}]}},
            {"T2": {"axis": 1, "children": [{"g2": 0.8}, {"g4": 0.5}]}},
        ],
    }


def test_named_initial_nodes(auth_client, network) -> None:
    response = auth_client.get(transform_url(network, "maxdepth=1&children=10&axis=1&initial_nodes=T4"))

    assert response.status_code == 200, response.content
    # g3 has no T4 weight, so T4 has four children, not ten.
    assert response.json() == {
        "initial_axis": 1,
        "nodes": [{"T4": {"axis": 1, "children": [{"g4": 0.6}, {"g2": 0.3}, {"g5": 0.0}, {"g1": -2.0}]}}],
    }


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("children=3&axis=0", "The 'maxdepth' parameter is required for the pandasubset transform."),
        (
            "maxdepth=2&children=0&axis=0",
            "The 'children' parameter must be a positive integer; \"0\" is not.",
        ),
        (
            "maxdepth=2&children=3&axis=2",
            "The 'axis' parameter must be 0 (start from the rows, e.g. genes) or 1 (start from the "
            'columns, e.g. transcription factors); "2" is neither.',
        ),
        (
            "maxdepth=2&children=3&axis=0&initial_nodes=g1,BRCA1",
            "The 'initial_nodes' parameter names nodes that are not among the rows (axis=0) of this matrix: BRCA1.",
        ),
    ],
)
def test_bad_parameters_are_400_with_a_message_the_viewer_shows(auth_client, network, query, message) -> None:
    response = auth_client.get(transform_url(network, query))
    assert response.status_code == 400
    assert response.json() == {"error": message}


def test_not_available_for_a_feature_table(auth_client, user) -> None:
    features = make_resource(user, FEATURES, resource_type="FT", file_format="tsv")
    response = auth_client.get(transform_url(features, "maxdepth=2&children=3&axis=0"))
    assert response.status_code == 400
    assert response.json() == {
        "error": 'The "pandasubset" transform is not available for this type of resource.'
    }
