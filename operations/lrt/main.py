"""WebMEV operation `Likelihood ratio test`: DESeq2 LRT of ~group against ~1 (local contract)."""
import os
import sys
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # parallelism is over gene chunks (threads); see deseq2/README.md

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


from _common import (  # noqa: E402
    UserError,
    _listing,
    check_counts,
    get_string,
    load_inputs,
    n_cpus,
    read_annotations,
    read_matrix,
    require,
    run,
    write_outputs,
    write_table,
)

MIN_LEVELS, MAX_LEVELS = 2, 10
RESERVED = ("Gene", "baseMean", "log2FoldChange", "statistic", "pvalue", "padj")


def order_levels(values):
    """Factor level order as R's factor(): numeric order if every value is numeric, else
    alphabetical (case-insensitive first, like R's usual locale collation)."""
    uniq = sorted(set(values))
    try:
        nums = {v: float(v) for v in uniq}
        return sorted(uniq, key=lambda v: nums[v])
    except ValueError:
        return sorted(uniq, key=lambda v: (v.lower(), v))


def main():
    inputs = load_inputs()
    require(inputs, "raw_counts", "annotations", "covariate")
    covariate = get_string(inputs, "covariate")
    matrix = read_matrix(inputs["raw_counts"])
    ann = read_annotations(inputs["annotations"])
    if covariate not in ann.columns:
        raise UserError(f"The column '{covariate}' is not in the annotation file (columns: "
                        f"{_listing(ann.columns)}).")
    common = [s for s in matrix.columns if s in set(ann.index)]
    if not common:
        raise UserError("No sample of the count matrix is listed in the annotation file.")
    labels = ann.loc[common, covariate]
    unlabeled = list(labels.index[labels.isna()])
    if unlabeled:
        print(f"Samples without a value for '{covariate}' are left out: {_listing(unlabeled)}")
    labels = labels.dropna()
    samples = list(labels.index)
    levels = order_levels(labels.tolist())
    errors = []
    if not (MIN_LEVELS <= len(levels) <= MAX_LEVELS):
        errors.append(f"The column '{covariate}' has {len(levels)} distinct value(s) among the "
                      f"matrix samples; the test needs between {MIN_LEVELS} and {MAX_LEVELS} groups.")
    small = [f"{lv} ({int((labels == lv).sum())})" for lv in levels if (labels == lv).sum() < 2]
    if small:
        errors.append(f"Every group needs at least 2 samples; too few in: {', '.join(small)}.")
    clash = [s for s in samples if s in RESERVED]
    if clash:
        errors.append(f"Sample names clash with result column names: {_listing(clash)}.")
    if errors:
        raise UserError(errors)
    counts = check_counts(matrix[samples], "count matrix")
    if (counts.sum(axis=1) == 0).all():
        raise UserError("Every gene has zero counts in the selected samples; nothing to test.")

    from lrt_core import run_lrt
    res, normalized, info = run_lrt(counts, labels.to_numpy(str), levels, n_cpus())
    table = res.join(normalized).sort_values("pvalue", na_position="last", kind="mergesort")
    mapping = {lv: [s for s in samples if labels[s] == lv] for lv in levels}
    write_outputs({
        "dge_results": write_table(table, "lrt_results.tsv", index_label="Gene"),
        "normalized_counts": write_table(normalized, "lrt_normalized_counts.tsv"),
        "sample_to_group_mapping": mapping,
        "lfc_comparison": f"{levels[-1]} vs {levels[0]}",
    })


if __name__ == "__main__":
    run(main)
