"""WebMEV operation `DESeq2`: two-group differential expression (local tool contract)."""
import os
import sys
from pathlib import Path

# The vectorised engine (_common.deseq2_inference) runs gene chunks on MEV_N_CPUS threads; BLAS
# threads on top of that oversubscribe the cores, and its batched p x p solves gain nothing from them.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from _common import UserError, load_inputs, n_cpus, run, write_outputs, write_table  # noqa: E402
from _common.de import read_two_group_inputs  # noqa: E402

RESULT_COLUMNS = ("overall_mean", "log2FoldChange", "lfcSE", "statistic", "pvalue", "padj")


def main():
    inputs = load_inputs()
    grp = read_two_group_inputs(inputs, integer_counts=True, reserved_columns=RESULT_COLUMNS)
    from deseq2_core import run_deseq2
    res, size_factors, info = run_deseq2(grp.counts, grp.base_ids, grp.exp_ids, n_cpus())
    if res["pvalue"].notna().sum() == 0:
        raise UserError("DESeq2 could not test any gene (all genes are zero or were filtered).")
    normalized = grp.counts.div(size_factors[grp.counts.columns], axis=1)
    table = res.rename(columns={"baseMean": "overall_mean", "stat": "statistic"})
    table.insert(1, grp.base_name, normalized[grp.base_ids].mean(axis=1))
    table.insert(2, grp.exp_name, normalized[grp.exp_ids].mean(axis=1))
    table = table.join(normalized)
    table = table.sort_values(["padj", "pvalue"], na_position="last", kind="mergesort")
    write_outputs({
        "dge_results": write_table(table, "deseq2_results.tsv"),
        "normalized_counts": write_table(normalized, "deseq2_normalized_counts.tsv"),
    })
    if info["dispersion_fallback"]:
        print("Note: gene-wise dispersions were used (trend fit failed).")


if __name__ == "__main__":
    run(main)
