"""WebMEV operation `ComBat-seq`: negative-binomial batch correction of raw counts (local contract)."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import pandas as pd  # noqa: E402
from _common import (  # noqa: E402
    UserError,
    _listing,
    check_counts,
    get_string,
    load_inputs,
    read_annotations,
    read_matrix,
    require,
    run,
    write_outputs,
    write_table,
)


def covariate_names(value):
    """other_covariates arrives as a list, null, or (one numeric-looking name) a number."""
    if value is None:
        return []
    if not isinstance(value, list):
        value = [value]
    names = []
    for v in value:
        if v is None:
            continue
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        v = str(v).strip()
        if v and v not in names:
            names.append(v)
    return names


def main():
    inputs = load_inputs()
    require(inputs, "raw_counts", "annotations")
    batch_col = get_string(inputs, "batch_variable_choice", "batch")
    covs = covariate_names(inputs.get("other_covariates"))
    matrix = read_matrix(inputs["raw_counts"])
    ann = read_annotations(inputs["annotations"])

    errors = []
    only_ann = [s for s in ann.index if s not in set(matrix.columns)]
    only_mat = [s for s in matrix.columns if s not in set(ann.index)]
    if only_ann:
        errors.append(f"These annotated samples are not columns of the count matrix: {_listing(only_ann)}.")
    if only_mat:
        errors.append(f"These samples of the count matrix are not in the annotation file: {_listing(only_mat)}.")
    for col in [batch_col] + covs:
        if col not in ann.columns:
            errors.append(f"The column '{col}' is not in the annotation file (columns: {_listing(ann.columns)}).")
    if batch_col in covs:
        errors.append(f"The batch column '{batch_col}' cannot also be a covariate.")
    if errors:
        raise UserError(errors)
    for col in [batch_col] + covs:
        missing = list(ann.index[ann[col].isna()])
        if missing:
            errors.append(f"Column '{col}' has no value for samples: {_listing(missing)}.")
    n_batches = ann[batch_col].nunique()
    if not errors and n_batches < 2:
        errors.append(f"The batch column '{batch_col}' has a single value; nothing to correct.")
    if errors:
        raise UserError(errors)

    samples = list(ann.index)  # annotation order
    counts = check_counts(matrix[samples], "count matrix")
    from combatseq_core import ConfoundedError, combat_seq, covariate_matrix
    covar = covariate_matrix(ann.loc[samples, covs])[0] if covs else None
    try:
        adjusted = combat_seq(counts.to_numpy(), ann.loc[samples, batch_col].to_numpy(str), covar)
    except ConfoundedError as exc:
        raise UserError(str(exc)) from exc
    out = pd.DataFrame(adjusted, index=counts.index, columns=samples)
    write_outputs({"adjusted_counts": write_table(out, "combatseq_adjusted_counts.tsv")})


if __name__ == "__main__":
    run(main)
