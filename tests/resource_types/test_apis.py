"""GET /api/resource-types/ (contract §2.4)."""

from __future__ import annotations

import pytest

from mev.resource_types.registry import resource_type_catalogue

EXPECTED_ORDER = [
    "FQ", "FA", "ALN", "BAI", "FT", "MTX", "I_MTX", "EXP_MTX", "RNASEQ_COUNT_MTX", "NS", "ANN", "BED3", "BED6",
    "NRWPK", "WIG", "BIGWIG", "BEDGRAPH", "JSON", "*",
]


@pytest.mark.parametrize("path", ["/api/resource-types/", "/api/resource-types"])
def test_catalogue_is_a_bare_array(api_client, path) -> None:
    response = api_client.get(path)
    assert response.status_code == 200
    body = response.json()
    assert body == resource_type_catalogue()
    assert [entry["resource_type_key"] for entry in body] == EXPECTED_ORDER
    for entry in body:
        assert set(entry) == {
            "resource_type_key", "resource_type_title", "resource_type_description", "acceptable_formats", "example"
        }
        assert entry["example"] is None or (entry["example"] and "values" in entry["example"][0])
        assert all(set(fmt) == {"key", "description"} for fmt in entry["acceptable_formats"])


@pytest.mark.django_db
def test_logged_in_and_stale_tokens_both_work(auth_client, api_client) -> None:
    assert auth_client.get("/api/resource-types/").status_code == 200
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert api_client.get("/api/resource-types/").status_code == 200


def test_titles_the_client_matches(api_client) -> None:
    titles = {e["resource_type_key"]: e["resource_type_title"] for e in api_client.get("/api/resource-types/").json()}
    assert titles["ALN"] == "Alignment (SAM/BAM)" and titles["BAI"] == "BAM Index"
    assert titles["BED3"] == "BED3-format file" and titles["BED6"] == "BED6-format file"
    assert titles["WIG"] == "WIG (wiggle) format" and titles["BEDGRAPH"] == "BedGraph format"
    assert titles["BIGWIG"] == "BigWIG (compressed wiggle) format"
