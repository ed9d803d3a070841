"""Tests of the Expression matrix subset bundle (tool contract end to end + the selection logic)."""
import json
import sys
from functools import partial
from pathlib import Path

import pandas as pd
import pytest

BUNDLE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BUNDLE.parent))
from _common.testing import (  # noqa: E402
    convert_outputs_with_back_end,
    load_bundle_main,
    parse_spec_with_back_end,
    tool_runner,
)

run_tool = tool_runner(BUNDLE)
parse_with_back_end = partial(parse_spec_with_back_end, BUNDLE)
convert_with_back_end = partial(convert_outputs_with_back_end, BUNDLE)

subset_main = load_bundle_main(BUNDLE, "subset_bundle_main")

COUNTS = ("GeneID\tS1\tS2\tS3\tS4\n"
          "G1\t10\t0\t3\t7\n"
          "G2\t1\t2\t3\t4\n"
          "G3\t100\t250\t0\t12\n"
          "G4\t5\t5\t5\t5\n")


@pytest.fixture
def counts(tmp_path):
    path = tmp_path / "counts.tsv"
    path.write_text(COUNTS)
    return str(path)


def sset(*ids):
    return {"name": "s", "type": "Observation set", "elements": [{"id": i} for i in ids]}


def test_spec():
    spec = json.loads((BUNDLE / "operation_spec.json").read_text())
    parse_with_back_end(spec)
    assert spec["name"] == "Expression matrix subset"
    assert spec["mode"] == "local" and spec["workspace_operation"] is True
    assert set(spec["inputs"]) == {"input_matrix", "samples", "features", "keepsamples",
                                   "keepfeatures"}
    assert spec["inputs"]["input_matrix"]["spec"]["many"] is False
    assert set(spec["outputs"]) == {"reduced_matrix"}
    sys.path.insert(0, str(BUNDLE.parent.parent))
    converters = pytest.importorskip("mev.operations.converters")
    attribute_types = pytest.importorskip("mev.operations.attribute_types")
    for item in [*spec["inputs"].values(), *spec["outputs"].values()]:
        converters.canonical_converter_id(item["converter"])
        attribute_types.check_attribute_spec(
            item["spec"], known_resource_types={"MTX", "I_MTX", "EXP_MTX", "RNASEQ_COUNT_MTX"})


def test_keep_samples_and_remove_features_keeps_order_and_text(tmp_path, counts):
    rc, outputs, errors, work = run_tool(tmp_path, {
        "input_matrix": f"{counts}:::RNASEQ_COUNT_MTX",
        "samples": sset("S3", "S1"), "keepsamples": True,
        "features": {"elements": [{"id": "G2"}]}, "keepfeatures": False,
        "job_name": "x"})
    assert rc == 0, errors
    convert_with_back_end(outputs)
    assert outputs == {"reduced_matrix": {"path": "reduced_matrix.tsv",
                                          "resource_type": "RNASEQ_COUNT_MTX"}}
    text = (work / "reduced_matrix.tsv").read_text()
    assert text == "GeneID\tS1\tS3\nG1\t10\t3\nG3\t100\t0\nG4\t5\t5\n"


def test_remove_samples_default(tmp_path, counts):
    rc, outputs, errors, work = run_tool(tmp_path, {
        "input_matrix": f"{counts}:::I_MTX", "samples": sset("S2"), "keepsamples": None,
        "features": None})
    assert rc == 0, errors
    df = pd.read_csv(work / "reduced_matrix.tsv", sep="\t", index_col=0)
    assert list(df.columns) == ["S1", "S3", "S4"]
    assert list(df.index) == ["G1", "G2", "G3", "G4"]
    assert outputs["reduced_matrix"]["resource_type"] == "I_MTX"


def test_no_selection_returns_the_matrix(tmp_path, counts):
    rc, outputs, errors, work = run_tool(tmp_path, {"input_matrix": f"{counts}:::MTX"})
    assert rc == 0, errors
    assert (work / "reduced_matrix.tsv").read_text() == COUNTS


def test_type_inferred_from_plain_path(tmp_path, counts):
    rc, outputs, errors, _ = run_tool(tmp_path, {"input_matrix": counts})
    assert rc == 0, errors
    assert outputs["reduced_matrix"]["resource_type"] == "I_MTX"


def test_float_values_and_missing_cells_are_kept_verbatim(tmp_path):
    path = tmp_path / "m.tsv"
    path.write_text("\tA\tB\tC\ng1\t1.50\t\t2e-3\ng2\t-0.25\t3\tNA\n")
    rc, outputs, errors, work = run_tool(tmp_path, {
        "input_matrix": f"{path}:::EXP_MTX", "samples": sset("B"), "keepsamples": False})
    assert rc == 0, errors
    assert (work / "reduced_matrix.tsv").read_text() == "gene\tA\tC\ng1\t1.50\t2e-3\ng2\t-0.25\tNA\n"


@pytest.mark.parametrize("inputs, needle", [
    ({"samples": sset("S1", "X9", "X8"), "keepsamples": True}, "X9, X8"),
    ({"features": {"elements": [{"id": "NOPE"}]}, "keepfeatures": True}, "NOPE"),
    ({"samples": sset("S1", "S2", "S3", "S4"), "keepsamples": False}, "no samples"),
    ({"features": {"elements": [{"id": "G9"}]}, "keepfeatures": False}, "G9"),
    ({"features": {"elements": [{"id": f"G{i}"} for i in range(1, 5)]}}, "no genes"),
    ({"samples": {"elements": []}}, "empty"),
])
def test_user_errors(tmp_path, counts, inputs, needle):
    rc, outputs, errors, _ = run_tool(tmp_path, {"input_matrix": f"{counts}:::I_MTX", **inputs})
    assert rc != 0 and outputs is None
    assert errors and any(needle in e for e in errors), errors


def test_missing_ids_listed_up_to_five(tmp_path, counts):
    rc, _, errors, _ = run_tool(tmp_path, {
        "input_matrix": counts, "samples": sset(*[f"Z{i}" for i in range(8)]),
        "keepsamples": True})
    assert rc != 0
    assert any("Z4" in e and "Z5" not in e and "3 more" in e for e in errors), errors


def test_non_numeric_column_rejected(tmp_path):
    path = tmp_path / "ann.tsv"
    path.write_text("id\tA\tgroup\ng1\t1\tctrl\ng2\t2\ttreated\n")
    rc, _, errors, _ = run_tool(tmp_path, {"input_matrix": f"{path}:::MTX"})
    assert rc != 0 and any("non-numeric" in e for e in errors), errors


def test_subset_function_directly():
    table = pd.DataFrame({"a": ["1", "2"], "b": ["3", "4"], "c": ["5", "6"]}, index=["r1", "r2"])
    out = subset_main.subset(table, sset("c", "a"), None, keep_samples=True)
    assert list(out.columns) == ["a", "c"]
    out = subset_main.subset(table, None, {"elements": [{"id": "r1"}]}, keep_features=True)
    assert list(out.index) == ["r1"] and list(out.columns) == ["a", "b", "c"]


@pytest.mark.parametrize("value, expected", [
    (True, True), (False, False), (None, False), (1, True), (0, False), ("true", True),
    ("False", False)])
def test_as_bool(value, expected):
    assert subset_main.as_bool(value) is expected
