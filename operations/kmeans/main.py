"""K-means clustering of samples or genes, with a 2-D PCA projection for the viewer."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import (  # noqa: E402
    UserError,
    check_samples_present,
    get_number,
    get_string,
    load_inputs,
    read_matrix,
    require,
    run,
    sample_ids,
    write_outputs,
)

SAMPLES_MODE = "Samples/observations"
GENES_MODE = "Genes/features"
DEFAULT_ITER = 300
N_INIT = 10
RANDOM_STATE = 0  # fixed seed: identical inputs give identical clusters
OUTPUT_FILE = "kmeans_results.json"
MAX_LISTED = 10


def parse_dimension(value: str | None) -> str:
    if value is None:
        return SAMPLES_MODE
    text = value.strip().lower()
    if text == SAMPLES_MODE.lower() or text in ("samples", "observations"):
        return SAMPLES_MODE
    if text == GENES_MODE.lower() or text in ("genes", "features"):
        return GENES_MODE
    raise UserError(f"'{value}' is not a valid clustering dimension; choose "
                    f"'{SAMPLES_MODE}' or '{GENES_MODE}'.")


def select(df: pd.DataFrame, sample_set, feature_set) -> pd.DataFrame:
    if sample_set is not None:
        ids = sample_ids(sample_set)
        if not ids:
            raise UserError("The chosen sample set is empty; leave it blank to use every sample.")
        check_samples_present(df, ids, "the chosen sample set")
        wanted = set(ids)
        df = df[[c for c in df.columns if c in wanted]]
    if feature_set is not None:
        ids = sample_ids(feature_set)
        if not ids:
            raise UserError("The chosen gene/feature set is empty; leave it blank to use every gene.")
        present = set(df.index)
        missing = [i for i in ids if i not in present]
        if missing:
            more = f" (and {len(missing) - MAX_LISTED} more)" if len(missing) > MAX_LISTED else ""
            raise UserError("These genes/features of the chosen set are not rows of the matrix: "
                            f"{', '.join(missing[:MAX_LISTED])}{more}.")
        wanted = set(ids)
        df = df.loc[[r in wanted for r in df.index]]
    return df


def kmeans(df: pd.DataFrame, k: int, dimension: str = SAMPLES_MODE,
           max_iter: int = DEFAULT_ITER, random_state: int = RANDOM_STATE) -> dict:
    """Cluster the columns (samples mode) or rows (genes mode) of ``df`` (genes x samples).

    All-NaN rows are dropped, other NaN become 0. Returns the viewer's JSON object:
    {"centroids": [{cluster_id, x, y}], "points": [{x, y, id, cluster_id}]}, with x/y the first
    two principal components of the points and centroids taken together.
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    df = df.dropna(how="all").fillna(0.0)
    if np.isinf(df.to_numpy()).any():
        raise UserError("The matrix contains infinite values, which cannot be clustered.")
    if dimension == SAMPLES_MODE:
        points, ids, what, other = df.T.to_numpy(dtype=float), list(df.columns), "samples", "genes"
    else:
        points, ids, what, other = df.to_numpy(dtype=float), list(df.index), "genes", "samples"
    n, m = points.shape
    if m == 0 or n == 0:
        raise UserError(f"No {other if m == 0 else what} are left to cluster (after removing "
                        "rows with only missing values).")
    if k < 1:
        raise UserError("The number of clusters must be at least 1.")
    if k > n:
        raise UserError(f"You asked for {k} clusters but there are only {n} {what} to cluster. "
                        f"Choose at most {n} clusters.")
    n_distinct = len(np.unique(points, axis=0))
    if k > n_distinct:
        raise UserError(f"You asked for {k} clusters but only {n_distinct} of the {n} {what} "
                        f"have distinct values. Choose at most {n_distinct} clusters.")
    model = KMeans(n_clusters=k, init="k-means++", n_init=N_INIT, max_iter=max_iter,
                   random_state=random_state)
    labels = model.fit_predict(points)
    centroids = model.cluster_centers_
    stacked = np.vstack([points, centroids])
    n_comp = min(2, stacked.shape[0], m)
    xy = np.zeros((stacked.shape[0], 2))
    if n_comp >= 1 and not np.allclose(stacked, stacked[0]):
        xy[:, :n_comp] = PCA(n_components=n_comp, svd_solver="full").fit_transform(stacked)
    point_xy, centroid_xy = xy[:n], xy[n:]
    return {
        "centroids": [{"cluster_id": int(i), "x": float(x), "y": float(y)}
                      for i, (x, y) in enumerate(centroid_xy)],
        "points": [{"x": float(x), "y": float(y), "id": str(ident), "cluster_id": int(lab)}
                   for ident, (x, y), lab in zip(ids, point_xy, labels, strict=True)],
    }


def main() -> None:
    inputs = load_inputs()
    require(inputs, "input_matrix", "num_clusters")
    dimension = parse_dimension(get_string(inputs, "dimension", SAMPLES_MODE))
    k = get_number(inputs, "num_clusters", integer=True)
    max_iter = get_number(inputs, "num_iter", DEFAULT_ITER, integer=True)
    if max_iter < 1:
        raise UserError("The number of iterations must be a positive integer.")
    df = read_matrix(inputs["input_matrix"])
    df = select(df, inputs.get("samples"), inputs.get("features"))
    result = kmeans(df, k, dimension, max_iter)
    with open(OUTPUT_FILE, "w") as fh:
        json.dump(result, fh)
    write_outputs({"kmeans_results": OUTPUT_FILE})


if __name__ == "__main__":
    run(main)
