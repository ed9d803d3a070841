"""Tests of the PCA bundle: the tool contract end to end, and the math against scikit-learn."""
import json
import sys
from functools import partial
from pathlib import Path

import numpy as np
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


pca_main = load_bundle_main(BUNDLE, "pca_bundle_main")


def write_matrix(path, df, index_label="gene"):
    df.to_csv(path, sep="\t", index_label=index_label)
    return str(path)


@pytest.fixture
def matrix(tmp_path):
    # 4 genes x 4 samples, hand-checkable
    df = pd.DataFrame(
        {"S1": [1.0, 2.0, 0.0, 5.0], "S2": [2.0, 4.0, 1.0, 3.0],
         "S3": [3.0, 6.0, 0.0, 1.0], "S4": [8.0, 1.0, 2.0, 0.0]},
        index=["G1", "G2", "G3", "G4"])
    return df, write_matrix(tmp_path / "m.tsv", df)


def test_spec_is_valid_for_the_client():
    spec = json.loads((BUNDLE / "operation_spec.json").read_text())
    parse_with_back_end(spec)
    assert spec["name"] == "Principal component analysis (PCA)"
    assert spec["mode"] == "local" and spec["workspace_operation"] is True
    assert spec["inputs"]["input_matrix"]["spec"]["many"] is False
    assert set(spec["inputs"]) == {"input_matrix", "samples"}
    assert set(spec["outputs"]) == {"pca_coordinates", "pc1_explained_variance",
                                    "pc2_explained_variance"}
    for inp in spec["inputs"].values():
        assert set(inp) == {"name", "description", "required", "converter", "spec"}
    for out in spec["outputs"].values():
        assert set(out) == {"required", "converter", "spec"}
    check_spec_against_back_end(spec)


def check_spec_against_back_end(spec):
    """Every converter id and attribute spec must be accepted by mev.operations."""
    sys.path.insert(0, str(BUNDLE.parent.parent))
    converters = pytest.importorskip("mev.operations.converters")
    attribute_types = pytest.importorskip("mev.operations.attribute_types")
    known = {"MTX", "I_MTX", "EXP_MTX", "RNASEQ_COUNT_MTX", "JSON"}
    for item in [*spec["inputs"].values(), *spec["outputs"].values()]:
        converters.canonical_converter_id(item["converter"])
        attribute_types.check_attribute_spec(item["spec"], known_resource_types=known)


def test_two_point_pca_by_hand():
    # Two samples: the only axis joins them; each sample sits at +-half their distance on pc1.
    df = pd.DataFrame({"A": [0.0, 0.0], "B": [3.0, 4.0]}, index=["g1", "g2"])
    coords, ratios = pca_main.compute_pca(df)
    assert abs(coords.loc["pc1", "A"]) == pytest.approx(2.5)
    assert coords.loc["pc1", "A"] == pytest.approx(-coords.loc["pc1", "B"])
    assert ratios[0] == pytest.approx(1.0)
    assert ratios[1] == pytest.approx(0.0, abs=1e-12)
    assert coords.loc["pc2"].abs().max() == pytest.approx(0.0, abs=1e-12)


def test_collinear_samples_by_hand():
    # Samples on a line x = t*(1,1): centred coordinates along pc1 are t*sqrt(2) - mean.
    df = pd.DataFrame({"A": [0.0, 0.0], "B": [1.0, 1.0], "C": [2.0, 2.0]}, index=["g1", "g2"])
    coords, ratios = pca_main.compute_pca(df)
    expected = np.array([-1.0, 0.0, 1.0]) * np.sqrt(2)
    pc1 = coords.loc["pc1"].to_numpy()
    assert np.allclose(pc1 * np.sign(pc1[2]), expected)
    assert ratios == pytest.approx([1.0, 0.0], abs=1e-12)


def test_matches_scikit_learn(matrix):
    from sklearn.decomposition import PCA
    df, _ = matrix
    coords, ratios = pca_main.compute_pca(df)
    ref = PCA(n_components=2).fit(df.T.to_numpy())
    ref_coords = ref.transform(df.T.to_numpy())
    for k in range(2):
        ours = coords.iloc[k].to_numpy()
        theirs = ref_coords[:, k]
        sign = np.sign(np.dot(ours, theirs))
        assert np.allclose(ours, sign * theirs, atol=1e-10)
    assert ratios == pytest.approx(list(ref.explained_variance_ratio_), rel=1e-12)
    # explained variance from first principles: eigenvalues of the sample covariance
    x = df.T.to_numpy() - df.T.to_numpy().mean(axis=0)
    eig = np.sort(np.linalg.eigvalsh(x.T @ x))[::-1]
    assert ratios == pytest.approx(list(eig[:2] / eig.sum()), rel=1e-10)


def test_nan_becomes_zero():
    df = pd.DataFrame({"A": [1.0, np.nan, 3.0], "B": [2.0, 5.0, 1.0], "C": [0.0, 1.0, 4.0]},
                      index=["g1", "g2", "g3"])
    c1, r1 = pca_main.compute_pca(df)
    c2, r2 = pca_main.compute_pca(df.fillna(0.0))
    assert np.allclose(c1.to_numpy(), c2.to_numpy())
    assert r1 == r2


def test_run_end_to_end(tmp_path, matrix):
    df, path = matrix
    rc, outputs, errors, work = run_tool(tmp_path, {"input_matrix": path, "samples": None,
                                                    "job_name": 2024})
    assert rc == 0, errors
    convert_with_back_end(outputs)
    assert errors is None
    assert set(outputs) == {"pca_coordinates", "pc1_explained_variance", "pc2_explained_variance"}
    assert isinstance(outputs["pc1_explained_variance"], float)
    assert 0 <= outputs["pc2_explained_variance"] <= outputs["pc1_explained_variance"] <= 1
    out = pd.read_csv(work / outputs["pca_coordinates"], sep="\t", index_col=0)
    assert list(out.index) == ["pc1", "pc2"]
    assert list(out.columns) == ["S1", "S2", "S3", "S4"]
    coords, ratios = pca_main.compute_pca(df)
    assert np.allclose(out.to_numpy(), coords.to_numpy())
    assert outputs["pc1_explained_variance"] == pytest.approx(ratios[0])


def test_run_with_sample_subset(tmp_path, matrix):
    df, path = matrix
    samples = {"name": "three", "type": "Observation set",
               "elements": [{"id": "S4"}, {"id": "S1"}, {"id": "S2"}]}
    rc, outputs, errors, work = run_tool(tmp_path, {"input_matrix": path, "samples": samples})
    assert rc == 0, errors
    out = pd.read_csv(work / outputs["pca_coordinates"], sep="\t", index_col=0)
    assert list(out.columns) == ["S1", "S2", "S4"]
    coords, _ = pca_main.compute_pca(df[["S1", "S2", "S4"]])
    assert np.allclose(out.to_numpy(), coords.to_numpy())


def test_sample_names_are_never_renamed(tmp_path):
    df = pd.DataFrame({"1": [1.0, 2.0, 4.0], "X-b.2": [0.0, 3.0, 1.0], "a:c": [5.0, 1.0, 2.0]},
                      index=["g1", "g2", "g3"])
    path = write_matrix(tmp_path / "m.tsv", df)
    rc, outputs, errors, work = run_tool(tmp_path, {"input_matrix": path})
    assert rc == 0, errors
    header = (work / outputs["pca_coordinates"]).read_text().splitlines()[0].split("\t")
    assert header[1:] == ["1", "X-b.2", "a:c"]


@pytest.mark.parametrize("inputs_update, needle", [
    ({"samples": {"elements": [{"id": "S1"}, {"id": "NOPE"}]}}, "NOPE"),
    ({"samples": {"elements": [{"id": "S1"}]}}, "at least 2 samples"),
    ({"samples": {"elements": []}}, "empty"),
    ({"input_matrix": None}, "input_matrix"),
])
def test_user_errors(tmp_path, matrix, inputs_update, needle):
    _, path = matrix
    inputs = {"input_matrix": path, **inputs_update}
    rc, outputs, errors, _ = run_tool(tmp_path, inputs)
    assert rc != 0
    assert outputs is None
    assert errors and any(needle in e for e in errors), errors


def test_non_numeric_cell(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("gene\tA\tB\tC\ng1\t1\t2\t3\ng2\t4\tfoo\t6\n")
    rc, _, errors, _ = run_tool(tmp_path, {"input_matrix": str(path)})
    assert rc != 0
    assert any("foo" in e for e in errors), errors


def test_one_gene_and_identical_samples(tmp_path):
    one = write_matrix(tmp_path / "one.tsv", pd.DataFrame({"A": [1.0], "B": [2.0]}, index=["g"]))
    rc, _, errors, _ = run_tool(tmp_path, {"input_matrix": one})
    assert rc != 0 and any("at least 2 genes" in e for e in errors)
    (tmp_path / "work").rename(tmp_path / "work1")
    same = write_matrix(tmp_path / "same.tsv",
                        pd.DataFrame({"A": [1.0, 2.0], "B": [1.0, 2.0]}, index=["g1", "g2"]))
    rc, _, errors, _ = run_tool(tmp_path, {"input_matrix": same})
    assert rc != 0 and any("identical" in e for e in errors)
