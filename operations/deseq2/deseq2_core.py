"""DESeq2 two-group Wald test on pydeseq2 (vectorised inference), with R ``results()`` defaults.

``run_deseq2(counts, base_ids, exp_ids, n_cpus) -> (results DataFrame, size factors, info)``
``counts`` is genes x samples (integers). Results columns: baseMean, log2FoldChange, lfcSE, stat,
pvalue, padj (index = genes, input order).
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

ALPHA = 0.1  # DESeq2 results() default (pydeseq2's default is 0.05)


def run_deseq2(counts: pd.DataFrame, base_ids: list[str], exp_ids: list[str], n_cpus: int = 1,
               inference=None):
    from _common.deseq2_inference import VectorizedDeseqDataSet, VectorizedInference
    from pydeseq2.ds import DeseqStats

    samples = list(base_ids) + list(exp_ids)
    X = counts[samples].T  # samples x genes
    # internal, formula-safe level names; the reference level is "base"
    meta = pd.DataFrame({"condition": ["base"] * len(base_ids) + ["exp"] * len(exp_ids)},
                        index=samples)
    # all genes at once with numpy (see _common/deseq2_inference.py); ~20x faster than
    # pydeseq2's per-gene DefaultInference, which callers may still pass for comparisons
    inference = inference or VectorizedInference(n_cpus=n_cpus)
    info = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dds = VectorizedDeseqDataSet(counts=X, metadata=meta, design="~condition",
                                     refit_cooks=True, inference=inference, quiet=True,
                                     n_cpus=n_cpus)
        info["dispersion_fallback"] = dds.fit_dispersions()
        dds.fit_LFC()
        dds.calculate_cooks()
        if dds.refit_cooks:
            dds.refit()
        stats = DeseqStats(dds, contrast=["condition", "exp", "base"], alpha=ALPHA,
                           cooks_filter=True, independent_filter=True, inference=inference,
                           quiet=True, n_cpus=n_cpus)
        stats.summary()
    res = stats.results_df.reindex(counts.index)
    res = res[["baseMean", "log2FoldChange", "lfcSE", "stat", "pvalue", "padj"]].astype(float)
    # all-zero genes: baseMean 0, everything else NA (as DESeq2)
    zero = counts.sum(axis=1) == 0
    res.loc[zero, "baseMean"] = 0.0
    res.loc[zero, ["log2FoldChange", "lfcSE", "stat", "pvalue", "padj"]] = np.nan
    size_factors = pd.Series(np.asarray(dds.obs["size_factors"], dtype=float), index=samples)
    info["dispersions"] = pd.Series(np.asarray(dds.var["dispersions"], dtype=float),
                                    index=counts.index)
    return res, size_factors, info
