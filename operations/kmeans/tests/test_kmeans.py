"""Tests of the K-means bundle: against scikit-learn with the fixed seed, hand-made clusters,
and the tool contract end to end."""
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

km = load_bundle_main(BUNDLE, "kmeans_bundle_main")


# 3 genes x 6 samples: S1-S3 low, S4-S6 high
MATRIX = pd.DataFrame(
    {"S1": [1.0, 2.0, 1.0], "S2": [1.5, 2.5, 1.0], "S3": [0.5, 2.0, 1.5],
     "S4": [10.0, 12.0, 9.0], "S5": [11.0, 11.5, 10.0], "S6": [10.5, 12.5, 9.5]},
    index=["g1", "g2", "g3"])


@pytest.fixture
def matrix_path(tmp_path):
    path = tmp_path / "m.tsv"
    MATRIX.to_csv(path, sep="\t", index_label="gene")
    return str(path)


def test_spec():
    spec = json.loads((BUNDLE / "operation_spec.json").read_text())
    parse_with_back_end(spec)
    assert spec["name"] == "K-means"
    assert spec["mode"] == "local" and spec["workspace_operation"] is True
    # the custom form reads exactly these keys
    assert set(spec["inputs"]) == {"input_matrix", "num_clusters", "num_iter", "dimension",
                                   "samples", "features"}
    assert spec["inputs"]["dimension"]["spec"]["default"] == "Samples/observations"
    assert spec["inputs"]["num_iter"]["spec"]["default"] == 300
    assert spec["inputs"]["input_matrix"]["spec"]["many"] is False
    assert set(spec["outputs"]) == {"kmeans_results"}
    sys.path.insert(0, str(BUNDLE.parent.parent))
    converters = pytest.importorskip("mev.operations.converters")
    attribute_types = pytest.importorskip("mev.operations.attribute_types")
    for item in [*spec["inputs"].values(), *spec["outputs"].values()]:
        converters.canonical_converter_id(item["converter"])
        attribute_types.check_attribute_spec(
            item["spec"], known_resource_types={"MTX", "I_MTX", "EXP_MTX", "RNASEQ_COUNT_MTX", "JSON"})


def test_two_obvious_groups():
    result = km.kmeans(MATRIX, 2)
    by_id = {p["id"]: p["cluster_id"] for p in result["points"]}
    assert by_id["S1"] == by_id["S2"] == by_id["S3"]
    assert by_id["S4"] == by_id["S5"] == by_id["S6"]
    assert by_id["S1"] != by_id["S4"]
    assert sorted(c["cluster_id"] for c in result["centroids"]) == [0, 1]
    for item in result["points"] + result["centroids"]:
        assert isinstance(item["x"], float) and isinstance(item["y"], float)
        assert type(item["cluster_id"]) is int


def test_matches_scikit_learn_with_the_seed():
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    rng = np.random.default_rng(11)
    df = pd.DataFrame(rng.normal(size=(5, 30)), index=[f"g{i}" for i in range(5)],
                      columns=[f"s{i}" for i in range(30)])
    result = km.kmeans(df, 4, km.SAMPLES_MODE, max_iter=300)
    ref = KMeans(n_clusters=4, init="k-means++", n_init=10, max_iter=300,
                 random_state=km.RANDOM_STATE).fit(df.T.to_numpy())
    assert [p["cluster_id"] for p in result["points"]] == list(map(int, ref.labels_))
    xy = PCA(n_components=2).fit_transform(np.vstack([df.T.to_numpy(), ref.cluster_centers_]))
    ours = np.array([[p["x"], p["y"]] for p in result["points"]]
                    + [[c["x"], c["y"]] for c in result["centroids"]])
    for j in range(2):
        sign = np.sign(np.dot(ours[:, j], xy[:, j]))
        assert np.allclose(ours[:, j], sign * xy[:, j], atol=1e-10)
    # deterministic
    assert km.kmeans(df, 4) == km.kmeans(df, 4)


def test_centroid_is_mean_of_its_points():
    result = km.kmeans(MATRIX, 2)
    for c in result["centroids"]:
        members = [p for p in result["points"] if p["cluster_id"] == c["cluster_id"]]
        # PCA is affine, so the projected centroid is the mean of the projected points
        assert c["x"] == pytest.approx(np.mean([p["x"] for p in members]))
        assert c["y"] == pytest.approx(np.mean([p["y"] for p in members]))


def test_gene_mode_and_nan_handling():
    df = MATRIX.copy()
    df.loc["g_nan"] = [np.nan] * 6            # all-NaN row: dropped
    df.loc["g4"] = [np.nan, 1, 1, 10, 10, 10]  # NaN -> 0
    result = km.kmeans(df, 2, km.GENES_MODE)
    assert [p["id"] for p in result["points"]] == ["g1", "g2", "g3", "g4"]


def test_run_end_to_end(tmp_path, matrix_path):
    rc, outputs, errors, work = run_tool(tmp_path, {
        "input_matrix": matrix_path, "num_clusters": 2, "num_iter": 300.0,
        "dimension": "Samples/observations", "samples": None, "features": None,
        "job_name": "km"})
    assert rc == 0, errors
    convert_with_back_end(outputs)
    result = json.loads((work / outputs["kmeans_results"]).read_text())
    assert set(result) == {"centroids", "points"}
    assert len(result["points"]) == 6 and len(result["centroids"]) == 2
    assert set(result["points"][0]) == {"x", "y", "id", "cluster_id"}
    assert set(result["centroids"][0]) == {"cluster_id", "x", "y"}


def test_run_with_subsets_in_gene_mode(tmp_path, matrix_path):
    rc, outputs, errors, work = run_tool(tmp_path, {
        "input_matrix": matrix_path, "num_clusters": 2, "dimension": "Genes/features",
        "samples": {"elements": [{"id": "S1"}, {"id": "S4"}]},
        "features": {"elements": [{"id": "g1"}, {"id": "g3"}, {"id": "g2"}]}})
    assert rc == 0, errors
    result = json.loads((work / outputs["kmeans_results"]).read_text())
    assert [p["id"] for p in result["points"]] == ["g1", "g2", "g3"]


@pytest.mark.parametrize("inputs, needle", [
    ({"num_clusters": 7}, "only 6 samples"),
    ({"num_clusters": 4, "dimension": "Genes/features"}, "only 3 genes"),
    ({"num_clusters": 2, "samples": {"elements": [{"id": "S1"}, {"id": "S9"}]}}, "S9"),
    ({"num_clusters": 2, "features": {"elements": [{"id": "nope"}]}}, "nope"),
    ({"num_clusters": None}, "num_clusters"),
    ({"num_clusters": 2.5}, "integer"),
    ({"num_clusters": 2, "dimension": "rows"}, "rows"),
])
def test_user_errors(tmp_path, matrix_path, inputs, needle):
    rc, outputs, errors, _ = run_tool(tmp_path, {"input_matrix": matrix_path, **inputs})
    assert rc != 0 and outputs is None
    assert errors and any(needle in e for e in errors), errors


def test_fewer_distinct_points_than_clusters():
    df = pd.DataFrame({"A": [1.0, 1.0], "B": [1.0, 1.0], "C": [2.0, 2.0]}, index=["x", "y"])
    with pytest.raises(km.UserError, match="distinct"):
        km.kmeans(df, 3)
