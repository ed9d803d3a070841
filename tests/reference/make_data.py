"""Seeded synthetic RNA-seq count data for the R reference comparisons.

Run from anywhere:  /work/main/.venv/bin/python tests/reference/make_data.py
Writes (into this folder):
  counts_2group.tsv         2,000 genes x 8 samples (ctrl_1..4, trt_1..4), for DESeq2/limma/edgeR
  counts_3group.tsv + annotations_3group.tsv   2,000 genes x 9 samples, 3 groups, for the LRT
  counts_batch.tsv + annotations_batch.tsv     1,000 genes x 12 samples, 2 batches x 2 conditions,
                                               for ComBat-seq
"""
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def simulate_counts(rng, n_genes, group_of_sample, n_groups, de_frac=0.12, batch_of_sample=None,
                    batch_lfc_sd=0.0, batch_disp_mult=None, size_range=(0.6, 1.5)):
    """Negative-binomial counts: log-normal gene means, dispersion trend 0.04 + 1.5/mu with
    log-normal scatter, per-group log2 fold changes for a fraction of genes, optional batch
    effects (mean shift + dispersion inflation)."""
    n_samples = len(group_of_sample)
    base_mu = np.exp(rng.normal(np.log(150), 1.7, n_genes))
    disp = (0.04 + 1.5 / base_mu) * np.exp(rng.normal(0, 0.35, n_genes))
    lfc = np.zeros((n_genes, n_groups))
    is_de = rng.random(n_genes) < de_frac
    for g in range(1, n_groups):
        lfc[is_de, g] = rng.choice([-1, 1], is_de.sum()) * rng.uniform(0.4, 3.0, is_de.sum())
    size = rng.uniform(*size_range, n_samples)
    mu = base_mu[:, None] * size[None, :] * 2.0 ** lfc[:, group_of_sample]
    disp_mat = np.repeat(disp[:, None], n_samples, axis=1)
    if batch_of_sample is not None:
        n_b = batch_of_sample.max() + 1
        blfc = rng.normal(0, batch_lfc_sd, (n_genes, n_b))
        blfc[:, 0] = 0
        mu = mu * 2.0 ** blfc[:, batch_of_sample]
        if batch_disp_mult is not None:
            disp_mat = disp_mat * np.asarray(batch_disp_mult)[batch_of_sample][None, :]
    r = 1.0 / disp_mat
    p = r / (r + mu)
    counts = rng.negative_binomial(r, p)
    return counts, is_de


def main():
    rng = np.random.default_rng(20241129)
    genes = [f"GENE{i:04d}" for i in range(1, 2001)]

    # two groups
    groups = np.array([0] * 4 + [1] * 4)
    counts, _ = simulate_counts(rng, 2000, groups, 2)
    counts[:5, :] = 0                     # all-zero genes
    counts[5, 2] = counts[5].max() * 40 + 500   # a single-sample outlier (Cook's distance)
    counts[6, 6] = counts[6].max() * 40 + 500
    cols = [f"ctrl_{i}" for i in range(1, 5)] + [f"trt_{i}" for i in range(1, 5)]
    pd.DataFrame(counts, index=genes, columns=cols).to_csv(HERE / "counts_2group.tsv", sep="\t",
                                                           index_label="gene")

    # three groups for the LRT
    groups3 = np.repeat([0, 1, 2], 3)
    counts3, _ = simulate_counts(rng, 2000, groups3, 3)
    counts3[:3, :] = 0
    cols3 = [f"{g}_{i}" for g in ("A", "B", "C") for i in range(1, 4)]
    pd.DataFrame(counts3, index=genes, columns=cols3).to_csv(HERE / "counts_3group.tsv", sep="\t",
                                                             index_label="gene")
    pd.DataFrame({"group": np.array(["A", "B", "C"])[groups3]}, index=cols3).to_csv(
        HERE / "annotations_3group.tsv", sep="\t", index_label="sample")

    # batches for ComBat-seq
    cond = np.array([0, 0, 0, 1, 1, 1] * 2)
    batch = np.repeat([0, 1], 6)
    countsb, _ = simulate_counts(rng, 1000, cond, 2, batch_of_sample=batch, batch_lfc_sd=0.6,
                                 batch_disp_mult=[1.0, 2.0])
    colsb = [f"s{i:02d}" for i in range(1, 13)]
    pd.DataFrame(countsb, index=genes[:1000], columns=colsb).to_csv(
        HERE / "counts_batch.tsv", sep="\t", index_label="gene")
    pd.DataFrame({"batch": np.where(batch == 0, "b1", "b2"),
                  "condition": np.where(cond == 0, "ctrl", "trt")}, index=colsb).to_csv(
        HERE / "annotations_batch.tsv", sep="\t", index_label="sample")


if __name__ == "__main__":
    main()
