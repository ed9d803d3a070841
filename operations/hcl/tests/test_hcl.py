"""Tests of the HCL bundle: trees against scipy/scikit-learn and hand-made cases, the tool contract."""
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
P = "HierarchicalCluster."

hcl = load_bundle_main(BUNDLE, "hcl_bundle_main")


def leaves(tree):
    if "children" not in tree:
        return [tree["name"]]
    return [leaf for child in tree["children"] for leaf in leaves(child)]


def depth(tree):
    return 0 if "children" not in tree else 1 + max(depth(c) for c in tree["children"])


def groups(tree):
    """Every inner node's set of leaves (the topology, independent of left/right order)."""
    out = set()

    def walk(node):
        if "children" in node:
            out.add(frozenset(leaves(node)))
            for c in node["children"]:
                walk(c)
    walk(tree)
    return out


@pytest.fixture
def matrix(tmp_path):
    # samples A,B close together, C,D close together, E far away
    df = pd.DataFrame({"A": [0.0, 0.0, 1.0], "B": [0.0, 1.0, 1.0], "C": [5.0, 5.0, 0.0],
                       "D": [5.0, 6.0, 0.0], "E": [20.0, 0.0, 9.0]},
                      index=["g1", "g2", "g3"])
    path = tmp_path / "m.tsv"
    df.to_csv(path, sep="\t", index_label="gene")
    return df, str(path)


def test_spec():
    spec = json.loads((BUNDLE / "operation_spec.json").read_text())
    parse_with_back_end(spec)
    assert spec["name"] == "Hierarchical clustering (HCL)"
    assert spec["mode"] == "local" and spec["workspace_operation"] is True
    assert set(spec["inputs"]) == {P + k for k in ("input_matrix", "distance_metric",
                                                   "clustering_dimension", "linkage")}
    assert set(spec["outputs"]) == {P + "observation_clusters", P + "feature_clusters"}
    assert spec["inputs"][P + "input_matrix"]["spec"]["many"] is False
    sys.path.insert(0, str(BUNDLE.parent.parent))
    converters = pytest.importorskip("mev.operations.converters")
    attribute_types = pytest.importorskip("mev.operations.attribute_types")
    for item in [*spec["inputs"].values(), *spec["outputs"].values()]:
        converters.canonical_converter_id(item["converter"])
        attribute_types.check_attribute_spec(
            item["spec"], known_resource_types={"MTX", "I_MTX", "EXP_MTX", "RNASEQ_COUNT_MTX", "JSON"})


def test_points_on_a_line_by_hand():
    # 1-d points 0, 1, 5, 7, 20. Single linkage merges (0,1)@1, (5,7)@2, then @4, then @13.
    points = np.array([[0.0], [1.0], [5.0], [7.0], [20.0]])
    z = hcl.linkage_matrix(points, "euclidean", "single", "samples")
    assert list(z[:, 2]) == [1.0, 2.0, 4.0, 13.0]
    tree = hcl.tree_json(z, ["a", "b", "c", "d", "e"])
    assert groups(tree) == {frozenset("ab"), frozenset("cd"), frozenset("abcd"),
                            frozenset("abcde")}
    assert tree["name"] == "8"  # root id = 2n - 2
    assert sorted(leaves(tree)) == list("abcde")
    # complete linkage: (0,1)@1, (5,7)@2, {0,1}-{5,7}@7, then E@20
    z = hcl.linkage_matrix(points, "cityblock", "complete", "samples")
    assert list(z[:, 2]) == [1.0, 2.0, 7.0, 20.0]


@pytest.mark.parametrize("method", ["ward", "complete", "average", "single"])
@pytest.mark.parametrize("metric", ["euclidean", "cityblock", "correlation", "cosine"])
def test_matches_scipy_and_scikit_learn(method, metric):
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import pdist
    from sklearn.cluster import AgglomerativeClustering

    rng = np.random.default_rng(7)
    points = rng.normal(size=(9, 4))
    z = hcl.linkage_matrix(points, metric, method, "samples")
    ref = linkage(points, "ward") if method == "ward" else linkage(pdist(points, metric), method)
    assert np.allclose(z, ref)
    # scikit-learn (the original engine) merges at the same heights
    if method == "ward":
        model = AgglomerativeClustering(n_clusters=None, distance_threshold=0, linkage="ward",
                                        compute_full_tree=True)
        model.fit(points)
    else:
        from scipy.spatial.distance import squareform
        model = AgglomerativeClustering(n_clusters=None, distance_threshold=0, linkage=method,
                                        metric="precomputed", compute_full_tree=True)
        model.fit(squareform(pdist(points, metric)))
    assert np.allclose(np.sort(model.distances_), np.sort(z[:, 2]))


def test_depth_is_capped_and_every_leaf_kept():
    # positions 2^i give a caterpillar tree 29 levels deep with single linkage
    n = 30
    points = np.array([[2.0 ** i] for i in range(n)])
    labels = [f"s{i}" for i in range(n)]
    z = hcl.linkage_matrix(points, "euclidean", "single", "samples")
    tree = hcl.tree_json(z, labels)
    assert depth(tree) == hcl.MAX_DEPTH + 1
    assert sorted(leaves(tree)) == sorted(labels)
    node = tree
    for _ in range(hcl.MAX_DEPTH):  # follow the deep branch down to the cap
        node = max(node["children"], key=lambda c: len(leaves(c)))
    assert "children" in node and all("children" not in c for c in node["children"])
    assert len(node["children"]) == n - hcl.MAX_DEPTH
    full = hcl.tree_json(z, labels, max_depth=100)
    assert depth(full) == n - 1


def test_run_both_dimensions(tmp_path, matrix):
    df, path = matrix
    rc, outputs, errors, work = run_tool(tmp_path, {
        P + "input_matrix": path, P + "clustering_dimension": "both",
        P + "linkage": "average", P + "distance_metric": "euclidean", "job_name": 7})
    assert rc == 0, errors
    convert_with_back_end(outputs)
    obs = json.loads((work / outputs[P + "observation_clusters"]).read_text())
    feat = json.loads((work / outputs[P + "feature_clusters"]).read_text())
    assert sorted(leaves(obs)) == ["A", "B", "C", "D", "E"]
    assert frozenset("AB") in groups(obs) and frozenset("CD") in groups(obs)
    assert sorted(leaves(feat)) == ["g1", "g2", "g3"]
    assert isinstance(obs["name"], str)


def test_run_defaults_cluster_observations_only(tmp_path, matrix):
    _, path = matrix
    rc, outputs, errors, work = run_tool(tmp_path, {
        P + "input_matrix": path, P + "clustering_dimension": None, P + "linkage": None,
        P + "distance_metric": None})
    assert rc == 0, errors
    assert set(outputs) == {P + "observation_clusters", P + "feature_clusters"}
    obs = json.loads((work / outputs[P + "observation_clusters"]).read_text())
    assert sorted(leaves(obs)) == ["A", "B", "C", "D", "E"]
    assert json.loads((work / outputs[P + "feature_clusters"]).read_text()) == {}


def test_run_features_only(tmp_path, matrix):
    _, path = matrix
    rc, outputs, errors, work = run_tool(tmp_path, {
        P + "input_matrix": path, P + "clustering_dimension": "features"})
    assert rc == 0, errors
    assert json.loads((work / outputs[P + "observation_clusters"]).read_text()) == {}
    feat = json.loads((work / outputs[P + "feature_clusters"]).read_text())
    assert sorted(leaves(feat)) == ["g1", "g2", "g3"]


def test_nan_is_zero():
    df = pd.DataFrame({"A": [np.nan, 1.0], "B": [0.0, 1.0], "C": [4.0, 4.0]}, index=["x", "y"])
    a = hcl.cluster(df.fillna(0.0), "observations", "euclidean", "single")
    assert frozenset("AB") in groups(a)


@pytest.mark.parametrize("text, inputs, needle", [
    ("gene\tA\tB\nx\t0\t0\ny\t0\t0\nz\t1\t2\n",
     {P + "distance_metric": "correlation", P + "linkage": "average",
      P + "clustering_dimension": "features"}, "undefined"),
    ("gene\tA\tB\tC\nx\t1\t2\t3\ny\t4\t5\t7\nz\t0\t1\t1\n",
     {P + "distance_metric": "mahalanobis", P + "linkage": "complete"}, "mahalanobis"),
    ("gene\tA\nx\t1\ny\t2\n", {}, "at least 2"),
    ("gene\tA\tB\nx\t1\tfoo\n", {}, "foo"),
    ("gene\tA\tB\nx\t1\t2\n", {P + "linkage": "centroid"}, "centroid"),
])
def test_user_errors(tmp_path, text, inputs, needle):
    path = tmp_path / "m.tsv"
    path.write_text(text)
    rc, outputs, errors, _ = run_tool(tmp_path, {P + "input_matrix": str(path), **inputs})
    assert rc != 0 and outputs is None
    assert errors and any(needle in e for e in errors), errors


def test_mahalanobis_works_when_defined():
    rng = np.random.default_rng(3)
    points = rng.normal(size=(8, 3))
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import pdist
    z = hcl.linkage_matrix(points, "mahalanobis", "average", "samples")
    assert np.allclose(z, linkage(pdist(points, "mahalanobis"), "average"))


def test_too_many_items_for_memory(monkeypatch):
    monkeypatch.setattr(hcl, "_available_memory", lambda: 10 * 2**20)
    points = np.zeros((2000, 2))
    with pytest.raises(hcl.UserError, match="GB of memory"):
        hcl.linkage_matrix(points, "euclidean", "ward", "features")
