"""Tests of the Expression matrix subset bundle (tool contract end to end + the selection logic)."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

BUNDLE = Path(__file__).resolve().parent.parent
MAIN = BUNDLE / "main.py"

_spec = importlib.util.spec_from_file_location("subset_bundle_main", MAIN)
subset_main = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(subset_main)

COUNTS = ("GeneID\tS1\tS2\tS3\tS4\n"
          "G1\t10\t0\t3\t7\n"
          "G2\t1\t2\t3\t4\n"
          "G3\t100\t250\t0\t12\n"
          "G4\t5\t5\t5\t5\n")


def run_tool(tmp_path, inputs):
    work = tmp_path / "work"
    work.mkdir()
    (work / "inputs.json").write_text(json.dumps(inputs))
    proc = subprocess.run([sys.executable, str(MAIN), "inputs.json"], cwd=work,
                          capture_output=True, text=True, timeout=120)
    outputs = errors = None
    if (work / "outputs.json").exists():
        outputs = json.loads((work / "outputs.json").read_text())
    if (work / "errors.json").exists():
        errors = json.loads((work / "errors.json").read_text())
    return proc.returncode, outputs, errors, work



def parse_with_back_end(spec_doc):
    """The whole spec as mev.operations ingests it (mode "local", main.py present)."""
    sys.path.insert(0, str(BUNDLE.parent.parent))
    spec_module = pytest.importorskip("mev.operations.spec")
    return spec_module.parse_operation_spec(
        spec_doc, known_resource_types={"MTX", "I_MTX", "EXP_MTX", "RNASEQ_COUNT_MTX", "JSON"},
        known_modes={"local"}, bundle_dir=BUNDLE)


def convert_with_back_end(outputs):
    """Every output value as the runner converts it (files are checked for their type)."""
    sys.path.insert(0, str(BUNDLE.parent.parent))
    converters = pytest.importorskip("mev.operations.converters")
    spec = json.loads((BUNDLE / "operation_spec.json").read_text())
    return {key: converters.convert_output(out["converter"], outputs.get(key), output_spec=out)
            for key, out in spec["outputs"].items()}

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
