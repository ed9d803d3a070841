"""Hierarchical clustering (HCL) of samples and/or features; writes D3-style tree JSON."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import (  # noqa: E402
    UserError,
    get_string,
    load_inputs,
    read_matrix,
    require,
    run,
    write_outputs,
)

PREFIX = "HierarchicalCluster."
METRICS = ("euclidean", "cityblock", "correlation", "cosine", "mahalanobis")
DIMENSIONS = ("both", "observations", "features")
LINKAGES = ("ward", "complete", "average", "single")
MAX_DEPTH = 20  # deeper subtrees are flattened into one node listing their leaves
OBSERVATION_FILE = "observation_clusters.json"
FEATURE_FILE = "feature_clusters.json"


def _option(inputs: dict, key: str, options: tuple[str, ...], default: str) -> str:
    value = get_string(inputs, PREFIX + key, default)
    if value not in options:
        raise UserError(f"'{value}' is not a valid choice for {key.replace('_', ' ')}; "
                        f"choose one of: {', '.join(options)}.")
    return value


def _check_mahalanobis(points: np.ndarray, what: str) -> None:
    n, m = points.shape
    if n <= m or np.linalg.matrix_rank(np.cov(points.T)) < m:
        measured = "samples" if what == "features" else "features"
        raise UserError(
            f"The mahalanobis distance between {what} needs an invertible covariance matrix, i.e. "
            f"more {what} ({n}) than {measured} ({m}) and no redundant {measured}. "
            "Choose another distance metric.")


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _check_memory(n: int, what: str) -> None:
    """Fail clearly up front instead of being killed by the OS: the pairwise distances take
    n(n-1)/2 doubles, and linkage works on a copy of them."""
    needed = 2.5 * 8 * n * (n - 1) / 2
    available = _available_memory()
    if available is not None and needed > available:
        raise UserError(
            f"Clustering {n} {what} needs about {needed / 2**30:.1f} GB of memory, more than the "
            f"{available / 2**30:.1f} GB available. Subset the matrix first (e.g. keep the most "
            "variable genes with Expression matrix subset).")


def linkage_matrix(points: np.ndarray, metric: str, method: str, what: str) -> np.ndarray:
    """scipy linkage of the rows of ``points`` (n items x m measurements)."""
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import pdist

    n = points.shape[0]
    if n < 2:
        raise UserError(f"Clustering the {what} needs at least 2 of them; the matrix has {n}.")
    _check_memory(n, what)
    try:
        if method == "ward":
            # Ward's criterion is defined for euclidean distances only; the metric is ignored.
            return linkage(points, method="ward", metric="euclidean")
        if metric == "mahalanobis":
            _check_mahalanobis(points, what)
        with np.errstate(all="ignore"):
            distances = pdist(points, metric=metric)
    except MemoryError:
        raise UserError(f"There are too many {what} ({n}) to cluster in the available memory. "
                        "Subset the matrix first (e.g. keep the most variable genes).") from None
    except (np.linalg.LinAlgError, ValueError) as exc:
        if metric == "mahalanobis":
            raise UserError(
                f"The mahalanobis distance could not be computed for the {what} ({exc}). It needs "
                f"more {what} than measurements per {what[:-1]} and an invertible covariance "
                "matrix; choose another distance metric.") from exc
        raise UserError(f"The {metric} distance could not be computed for the {what}: {exc}.") from exc
    if not np.all(np.isfinite(distances)):
        raise UserError(
            f"With the {metric} distance some distances between {what} are undefined. This "
            "typically happens when rows or columns are constant (e.g. all zeros) with the "
            "correlation or cosine metric; remove them or choose another distance metric.")
    return linkage(distances, method=method)


def tree_json(z: np.ndarray, labels: list[str], max_depth: int = MAX_DEPTH) -> dict:
    """Nested {"name", "children"} tree from a linkage matrix. Leaves are {"name": label};
    inner nodes are named by their scipy node id. A node at depth ``max_depth`` (root = 0)
    that is not a leaf is flattened: its children become all its leaves, left to right."""
    from scipy.cluster.hierarchy import to_tree

    def build(node, depth):
        if node.is_leaf():
            return {"name": labels[node.id]}
        if depth >= max_depth:
            return {"name": str(node.id),
                    "children": [{"name": labels[i]} for i in node.pre_order()]}
        return {"name": str(node.id),
                "children": [build(node.get_left(), depth + 1),
                             build(node.get_right(), depth + 1)]}

    return build(to_tree(z), 0)


def cluster(df: pd.DataFrame, dimension: str, metric: str, method: str) -> dict:
    """Tree of the columns (``observations``) or rows (``features``) of ``df``."""
    if dimension == "observations":
        points, labels, what = df.T.to_numpy(dtype=float), list(df.columns), "samples"
    else:
        points, labels, what = df.to_numpy(dtype=float), list(df.index), "features"
    return tree_json(linkage_matrix(points, metric, method, what), [str(x) for x in labels])


def main() -> None:
    inputs = load_inputs()
    require(inputs, PREFIX + "input_matrix")
    metric = _option(inputs, "distance_metric", METRICS, "euclidean")
    dimension = _option(inputs, "clustering_dimension", DIMENSIONS, "observations")
    method = _option(inputs, "linkage", LINKAGES, "ward")
    df = read_matrix(inputs[PREFIX + "input_matrix"])
    if np.isinf(df.to_numpy()).any():
        raise UserError("The matrix contains infinite values, which cannot be clustered.")
    df = df.fillna(0.0)
    trees = {"observations": {}, "features": {}}
    for dim in ("observations", "features"):
        if dimension in (dim, "both"):
            trees[dim] = cluster(df, dim, metric, method)
    # Both files always exist (the viewer requests both); the one not computed holds {}.
    for name, tree in ((OBSERVATION_FILE, trees["observations"]), (FEATURE_FILE, trees["features"])):
        with open(name, "w") as fh:
            json.dump(tree, fh)
    write_outputs({PREFIX + "observation_clusters": OBSERVATION_FILE,
                   PREFIX + "feature_clusters": FEATURE_FILE})


if __name__ == "__main__":
    run(main)
