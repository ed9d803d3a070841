"""Principal component analysis (PCA) of the samples of an expression matrix (local tool contract)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import (  # noqa: E402
    UserError,
    check_samples_present,
    load_inputs,
    read_matrix,
    require,
    run,
    sample_ids,
    write_outputs,
    write_table,
)

N_COMPONENTS = 2
OUTPUT_FILE = "pca_coordinates.tsv"


def select_samples(df: pd.DataFrame, set_obj) -> pd.DataFrame:
    """Keep the columns named in the optional ObservationSet (matrix order kept)."""
    if set_obj is None:
        return df
    ids = sample_ids(set_obj)
    if not ids:
        raise UserError("The chosen sample set is empty. Choose at least 2 samples, "
                        "or leave the sample set blank to use every sample.")
    check_samples_present(df, ids, "the chosen sample set")
    wanted = set(ids)
    return df[[c for c in df.columns if c in wanted]]


def compute_pca(df: pd.DataFrame, n_components: int = N_COMPONENTS):
    """PCA of the samples (columns of ``df``) with the genes (rows) as variables.

    Missing values become 0; the data are centred (by the PCA) but neither scaled nor
    log-transformed. Returns (coordinates: DataFrame pcK x samples, explained variance ratios).
    """
    from sklearn.decomposition import PCA

    n_genes, n_samples = df.shape
    if n_samples < 2:
        raise UserError(f"PCA needs at least 2 samples; the selection has {n_samples}.")
    if n_genes < 2:
        raise UserError(f"PCA needs at least 2 genes/features (rows); the matrix has {n_genes}.")
    values = df.to_numpy(dtype=float)
    if np.isinf(values).any():
        raise UserError("The matrix contains infinite values; PCA cannot use them.")
    x = np.nan_to_num(values, nan=0.0).T  # samples x genes
    if np.allclose(x, x[0], rtol=0, atol=0):
        raise UserError("All selected samples have identical values, so there is no variation "
                        "for a PCA to describe.")
    # "full" instead of sklearn's "auto": deterministic (no randomized SVD on wide matrices).
    pca = PCA(n_components=n_components, svd_solver="full")
    coords = pca.fit_transform(x)
    ratios = [float(r) for r in pca.explained_variance_ratio_]
    ratios = [min(1.0, max(0.0, r)) for r in ratios]  # guard tiny round-off outside [0, 1]
    if not all(np.isfinite(ratios)):
        raise UserError("The explained variance could not be computed (no variation in the data).")
    out = pd.DataFrame(coords.T, index=[f"pc{i + 1}" for i in range(n_components)],
                       columns=df.columns)
    return out, ratios


def main() -> None:
    inputs = load_inputs()
    require(inputs, "input_matrix")
    df = read_matrix(inputs["input_matrix"])
    df = select_samples(df, inputs.get("samples"))
    coords, ratios = compute_pca(df)
    write_table(coords, OUTPUT_FILE, index_label="component")
    outputs = {"pca_coordinates": OUTPUT_FILE}
    for i, r in enumerate(ratios):
        outputs[f"pc{i + 1}_explained_variance"] = r
    write_outputs(outputs)


if __name__ == "__main__":
    run(main)
