"""RNA-Seq normalization (CSS, TSS, DESeq2, TMM, UQ) of a count matrix, optional log2(x + 1)."""
from __future__ import annotations

import os
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
from _common.rnaseq import tmm_norm_factors  # noqa: E402

METHODS = ("CSS", "TSS", "DESeq2", "TMM", "UQ")
MAX_LISTED = 10
DOUBLE_EPS = np.finfo(float).eps  # R's .Machine$double.eps


# ---------------------------------------------------------------------------------------------
# Per-method scaling. Each takes a genes x samples float array of non-negative counts.

def tss(counts: np.ndarray) -> np.ndarray:
    """Total sum scaling: each column divided by its total (proportions)."""
    return counts / counts.sum(axis=0)


def deseq2_size_factors(counts: np.ndarray) -> np.ndarray:
    """Median-of-ratios size factors (DESeq2 ``estimateSizeFactorsForMatrix``): for each sample
    the median over genes of count / geometric mean of the gene, using only genes with no zero."""
    with np.errstate(divide="ignore"):
        logs = np.log(counts)
    log_geo_means = logs.mean(axis=1)
    usable = np.isfinite(log_geo_means)
    if not usable.any():
        raise UserError("DESeq2 size factors cannot be computed: every gene has a zero count in "
                        "at least one sample. Remove samples with very low coverage, or choose "
                        "another method (e.g. TMM or UQ).")
    factors = np.empty(counts.shape[1])
    for j in range(counts.shape[1]):
        keep = usable & (counts[:, j] > 0)
        factors[j] = np.exp(np.median(logs[keep, j] - log_geo_means[keep]))
    return factors


def deseq2(counts: np.ndarray) -> np.ndarray:
    return counts / deseq2_size_factors(counts)


def tmm_factors(counts: np.ndarray) -> np.ndarray:
    """edgeR ``calcNormFactors(method="TMM")`` normalization factors (geometric mean 1)."""
    return tmm_norm_factors(counts, quantile_then_scale=True)


def tmm(counts: np.ndarray) -> np.ndarray:
    """Counts per million of the TMM-normalized library sizes (edgeR ``cpm``)."""
    eff_lib = counts.sum(axis=0) * tmm_factors(counts)
    return counts / eff_lib * 1e6


def uq(counts: np.ndarray) -> np.ndarray:
    """Each column divided by the 75th percentile (R type 7) of its non-zero counts."""
    scale = np.array([np.quantile(col[col > 0], 0.75) for col in counts.T])
    return counts / scale


def _sorted_quantiles(sorted_values: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """R's type-7 quantiles of already sorted values, vectorised over many probabilities
    (``np.quantile`` is slow for tens of thousands of probabilities)."""
    n = sorted_values.size
    index = (n - 1) * probs
    lo = np.floor(index).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    h = index - lo
    return (1 - h) * sorted_values[lo] + h * sorted_values[hi]


def css_percentile(counts: np.ndarray, rel: float = 0.1) -> float:
    """metagenomeSeq ``cumNormStatFast``: the data-driven quantile for CSS."""
    nonzero = [np.sort(col[col > 0]) for col in counts.T]  # ascending
    lengths = [len(c) for c in nonzero]
    if any(n <= 1 for n in lengths):
        bad = [str(i) for i, n in enumerate(lengths) if n <= 1]
        raise UserError("CSS needs at least 2 non-zero counts in every sample "
                        f"(sample positions {', '.join(bad[:MAX_LISTED])} have fewer).")
    leng = max(lengths)
    # each sample's sorted non-zero counts, bottom-aligned in a leng-row table (zeros on top)
    padded = np.zeros((leng, len(nonzero)))
    quantiles = np.empty((leng, len(nonzero)))
    probs = np.linspace(0, 1, leng)
    for j, col in enumerate(nonzero):
        padded[leng - len(col):, j] = col
        quantiles[:, j] = _sorted_quantiles(col, probs)
    reference = padded.mean(axis=1)
    diffr1 = np.median(np.abs(reference[:, None] - quantiles), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_change = np.abs(np.diff(diffr1)) / diffr1[1:]
    above = np.nonzero(rel_change > rel)[0]
    # R: which(...)[1] / length(diffr1), with a 0.5 floor (also used when nothing qualifies)
    x = (above[0] + 1) / len(diffr1) if above.size else 0.5
    return max(float(x), 0.5)


def css_factors(counts: np.ndarray, p: float) -> np.ndarray:
    """metagenomeSeq ``cumNorm``: per sample, the sum of the counts up to its p-th quantile of
    non-zero counts."""
    factors = np.empty(counts.shape[1])
    for j, col in enumerate(counts.T):
        q = np.quantile(col[col > 0], p)
        shifted = col - DOUBLE_EPS
        factors[j] = shifted[shifted <= q].sum()
    return factors


def css(counts: np.ndarray) -> np.ndarray:
    """CSS-normalized counts rescaled by the median factor (``MRcounts(norm=TRUE,
    sl=median(normFactors))``)."""
    factors = css_factors(counts, css_percentile(counts))
    return counts / (factors / np.median(factors))


NORMALIZERS = {"CSS": css, "TSS": tss, "DESeq2": deseq2, "TMM": tmm, "UQ": uq}


# ---------------------------------------------------------------------------------------------

def _listing(items) -> str:
    items = [str(i) for i in items]
    more = f" (and {len(items) - MAX_LISTED} more)" if len(items) > MAX_LISTED else ""
    return ", ".join(items[:MAX_LISTED]) + more


def check_counts(df: pd.DataFrame) -> np.ndarray:
    values = df.to_numpy(dtype=float)
    for mask, what in ((np.isnan(values), "missing values"), (np.isinf(values), "infinite values"),
                       (values < 0, "negative values")):
        if mask.any():
            r, c = np.argwhere(mask)[0]
            raise UserError(f"The count matrix has {what} ({int(mask.sum())} in total; the first "
                            f"at row '{df.index[r]}', column '{df.columns[c]}'). Normalization needs "
                            "non-negative raw counts.")
    zero = [c for c, total in zip(df.columns, values.sum(axis=0), strict=True) if total == 0]
    if zero:
        raise UserError(f"These samples have only zero counts and cannot be normalized: "
                        f"{_listing(zero)}. Remove them (e.g. with Expression matrix subset).")
    return values


def parse_method(value: str | None) -> str:
    by_lower = {m.lower(): m for m in METHODS}
    if value is None or value.lower() not in by_lower:
        raise UserError(f"Choose a normalization method: one of {', '.join(METHODS)}"
                        + (f" ('{value}' is not one)." if value else "."))
    return by_lower[value.lower()]


def as_bool(value) -> bool:
    if value is None or value == "":
        return False
    if isinstance(value, str):
        if value.strip().lower() in ("true", "1", "yes"):
            return True
        if value.strip().lower() in ("false", "0", "no"):
            return False
        raise UserError(f"Could not understand {value!r} as true/false for the log2 transform.")
    return bool(value)


def normalize(df: pd.DataFrame, method: str, log_transform: bool = False) -> pd.DataFrame:
    values = check_counts(df)
    if method == "CSS":
        sparse = [c for c, n in zip(df.columns, (values > 0).sum(axis=0), strict=True) if n < 2]
        if sparse:
            raise UserError("CSS needs at least 2 non-zero counts in every sample; these samples "
                            f"have fewer: {_listing(sparse)}.")
    out = NORMALIZERS[method](values)
    if log_transform:
        out = np.log2(out + 1)
    if not np.all(np.isfinite(out)):  # every cell must be a number for the viewer
        raise UserError("The normalization produced undefined values; check the count matrix.")
    return pd.DataFrame(out, index=df.index, columns=df.columns)


def index_label(path: str) -> str:
    """The first header field of the input (kept in the output), 'gene' if empty."""
    with open(path) as fh:
        first = fh.readline().rstrip("\r\n")
    sep = "," if path.lower().endswith(".csv") else "\t"
    label = first.split(sep)[0].strip() if first else ""
    return label or "gene"


def main() -> None:
    inputs = load_inputs()
    require(inputs, "raw_counts", "normalization_method")
    method = parse_method(get_string(inputs, "normalization_method"))
    log_transform = as_bool(inputs.get("log_transform"))
    path = str(inputs["raw_counts"])
    df = read_matrix(path)
    result = normalize(df, method, log_transform)
    name = f"normalized_counts.{method}{'.log_transformed' if log_transform else ''}.tsv"
    result.to_csv(name, sep="\t", index_label=index_label(path), float_format="%.10g")
    write_outputs({"normalized_counts": os.path.basename(name)})


if __name__ == "__main__":
    run(main)
