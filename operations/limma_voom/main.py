"""WebMEV operation `Limma/voom`: TMM + voom + lmFit/eBayes/topTable (local tool contract)."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _common import UserError, load_inputs, run, write_outputs, write_table  # noqa: E402
from _common.de import read_two_group_inputs  # noqa: E402
from _common.rnaseq import bh_adjust, cpm, tmm_norm_factors  # noqa: E402

RESULT_COLUMNS = ("log2FoldChange", "overall_mean", "statistic", "pvalue", "padj", "B")
MIN_MAX_CPM = 1.0  # genes whose largest CPM is below this are dropped (upstream, hard-coded)


def limma_voom(counts: pd.DataFrame, n_base: int):
    """Returns (topTable-like DataFrame sorted by p-value, CPM DataFrame of the kept genes)."""
    from limma_core import ebayes_coef, lm_fit, voom
    x = counts.to_numpy(float)
    lib = x.sum(axis=0)
    nf = tmm_norm_factors(x, lib)
    eff = lib * nf
    cpm_all = cpm(x, eff)
    keep = cpm_all.max(axis=1) >= MIN_MAX_CPM
    if keep.sum() < 2:
        raise UserError(f"Only {int(keep.sum())} gene(s) have a CPM of at least {MIN_MAX_CPM:g} "
                        "in some sample; too few to run limma-voom.")
    design = np.column_stack([np.ones(x.shape[1]),
                              np.r_[np.zeros(n_base), np.ones(x.shape[1] - n_base)]])
    E, w = voom(x[keep], design, eff)
    fit = lm_fit(E, design, w)
    eb = ebayes_coef(fit, 1)
    genes = counts.index[keep]
    table = pd.DataFrame({"log2FoldChange": eb["logFC"], "overall_mean": fit["Amean"],
                          "statistic": eb["t"], "pvalue": eb["P.Value"],
                          "padj": bh_adjust(eb["P.Value"]), "B": eb["B"]}, index=genes)
    table = table.sort_values("pvalue", kind="mergesort")
    cpm_df = pd.DataFrame(cpm_all[keep], index=genes, columns=counts.columns)
    return table, cpm_df


def main():
    inputs = load_inputs()
    grp = read_two_group_inputs(inputs, integer_counts=False, reserved_columns=RESULT_COLUMNS)
    table, cpm_df = limma_voom(grp.counts, len(grp.base_ids))
    table = table.join(cpm_df)
    write_outputs({
        "dge_results": write_table(table, "limma_voom_results.tsv"),
        "normalized_counts": write_table(cpm_df, "limma_voom_normalized_counts.tsv"),
    })


if __name__ == "__main__":
    run(main)
