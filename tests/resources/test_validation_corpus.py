"""The malformed-file corpus through the service: the status names the row, column and value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mev.resource_types.registry import title_for
from tests.resources.validated_factory import make_resource

CORPUS = Path(__file__).parents[1] / "resource_types" / "corpus"
CASES = json.loads((CORPUS / "expected.json").read_text())


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=[case["file"] for case in CASES])
def test_corpus_file_fails_with_a_status_that_points_at_the_problem(user, case: dict) -> None:
    content = (CORPUS / case["file"]).read_bytes()
    resource = make_resource(
        user, content, resource_type=case["resource_type"], file_format=case["file_format"], name=case["file"]
    )
    prefix = f'Failed validation for resource type "{title_for(case["resource_type"])}". '
    assert resource.status.startswith(prefix), resource.status
    for fragment in case["fragments"]:
        assert fragment in resource.status, f"{fragment!r} not in {resource.status!r}"
    assert resource.is_active
    assert resource.resource_type is None and resource.table_file == ""
