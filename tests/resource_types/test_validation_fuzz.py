"""Arbitrary input never escapes as an exception: it is accepted or gets a reason."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from mev.resource_types.validation import validate_resource

ALPHABET = [
    "\t",
    ",",
    "\n",
    "\r\n",
    "\r",
    '"',
    " ",
    "#",
    "1",
    "2.5",
    "-3",
    "NA",
    "G",
    "inf",
    "é",
    "\x00",
    ";",
]
TYPES = [("MTX", "tsv"), ("I_MTX", "csv"), ("RNASEQ_COUNT_MTX", "tsv"), ("ANN", "csv"), ("FT", "tsv"),
         ("BED3", "tsv"), ("BED6", "tsv"), ("NRWPK", "tsv"), ("JSON", "json"), ("MTX", "xlsx"), ("ANN", "xls")]  # fmt: skip


@pytest.mark.parametrize("seed", range(60))
def test_random_input_gives_an_outcome(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 80)))
    data = text.encode("utf-8") if rng.random() < 0.8 else bytes(rng.randrange(256) for _ in range(60))
    src = tmp_path / "input"
    src.write_bytes(data)
    for resource_type, file_format in TYPES:
        outcome = validate_resource(
            src_path=src, resource_type=resource_type, file_format=file_format, out_dir=tmp_path / "out"
        )
        assert outcome.ok or outcome.reason
