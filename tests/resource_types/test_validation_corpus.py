"""Every malformed file of the corpus fails with a reason that names the row, column and value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mev.resource_types.validation import validate_resource

CORPUS = Path(__file__).parent / "corpus"
CASES = json.loads((CORPUS / "expected.json").read_text())


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[case["file"] for case in CASES])
def test_malformed_file_fails_with_helpful_reason(case: dict, tmp_path: Path) -> None:
    outcome = validate_resource(
        src_path=CORPUS / case["file"],
        resource_type=case["resource_type"],
        file_format=case["file_format"],
        out_dir=tmp_path,
    )
    assert not outcome.ok
    assert outcome.stage == "contents"
    for fragment in case["fragments"]:
        assert fragment in outcome.reason, f"{fragment!r} not in {outcome.reason!r}"
    assert outcome.standardized_path is None and outcome.parquet_path is None
