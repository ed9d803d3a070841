"""WebMEV operation `edgeR`: TMM + estimateDisp + glmFit/glmLRT (local tool contract)."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _common import load_inputs, run, write_outputs, write_table  # noqa: E402
from _common.de import read_two_group_inputs  # noqa: E402
from _common.rnaseq import bh_adjust, cpm, tmm_norm_factors  # noqa: E402

RESULT_COLUMNS = ("log2FoldChange", "logCPM", "statistic", "pvalue", "padj")


def edger_two_group(counts: pd.DataFrame, n_base: int):
    from edger_core import estimate_disp, glm_lrt_two_group
    x = counts.to_numpy(float)
    lib = x.sum(axis=0)
    eff = lib * tmm_norm_factors(x, lib)
    groups = np.r_[np.zeros(n_base, int), np.ones(x.shape[1] - n_base, int)]
    disp = estimate_disp(x, eff, groups)
    logfc, lr, p = glm_lrt_two_group(x, eff, groups, disp["tagwise"])
    table = pd.DataFrame({"log2FoldChange": logfc, "logCPM": disp["ave_log_cpm"],
                          "statistic": lr, "pvalue": p, "padj": bh_adjust(p)}, index=counts.index)
    table = table.sort_values("pvalue", kind="mergesort")
    cpm_df = pd.DataFrame(cpm(x, eff), index=counts.index, columns=counts.columns)
    print(f"common dispersion {disp['common']:.5g}, prior df {disp['prior_df']:.4g}")
    return table, cpm_df


def main():
    inputs = load_inputs()
    grp = read_two_group_inputs(inputs, integer_counts=True, reserved_columns=RESULT_COLUMNS)
    table, cpm_df = edger_two_group(grp.counts, len(grp.base_ids))
    write_outputs({
        "dge_results": write_table(table.join(cpm_df), "edger_results.tsv"),
        "normalized_counts": write_table(cpm_df, "edger_normalized_counts.tsv"),
    })


if __name__ == "__main__":
    run(main)
