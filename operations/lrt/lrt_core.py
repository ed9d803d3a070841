"""DESeq2-style likelihood ratio test (~group vs ~1) on top of pydeseq2's size factors and
dispersions, with DESeq2's results() independent filtering (cooksCutoff off, as upstream)."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import special, stats
from statsmodels.nonparametric.smoothers_lowess import lowess

MIN_MU = 0.5      # DESeq2 fitNbinomGLMs clamps fitted means at minmu = 0.5
ALPHA = 0.1


def group_mle(y, size_factors, groups, dispersion, maxit=100, tol=1e-10):
    """Per-group NB MLE of the mean with log link and size factors (one-way layout).
    Returns mu (genes x samples); groups with all-zero counts get mu = 0 (clamped later)."""
    y = np.asarray(y, float)
    sf = np.asarray(size_factors, float)
    phi = np.asarray(dispersion, float)[:, None]
    mu = np.zeros_like(y)
    for g in np.unique(groups):
        cols = groups == g
        yg, sg = y[:, cols], sf[cols]
        tot = yg.sum(axis=1)
        active = tot > 0
        b = np.log(np.maximum(tot, 1e-300) / sg.sum())
        for _ in range(maxit):
            m = np.exp(b[:, None]) * sg[None, :]
            den = 1 + phi * m
            score = ((yg - m) / den).sum(axis=1)
            info = ((yg * phi + 1) * m / den ** 2).sum(axis=1)
            step = np.where(active, score / np.maximum(info, 1e-300), 0)
            b += np.clip(step, -5, 5)
            if np.all(np.abs(step) < tol):
                break
        mu[:, cols] = np.where(active[:, None], np.exp(b[:, None]) * sg[None, :], 0.0)
    return mu


def nb_loglik(y, mu, dispersion):
    r = 1.0 / np.asarray(dispersion, float)[:, None]
    mu = np.maximum(mu, MIN_MU)
    return (special.gammaln(y + r) - special.gammaln(r) - special.gammaln(y + 1)
            + r * np.log(r / (r + mu)) + y * np.log(mu / (r + mu))).sum(axis=1)


def _bh(p):
    p = np.asarray(p, float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    n = ok.sum()
    if n:
        pv = p[ok]
        o = np.argsort(pv)[::-1]
        adj = np.minimum.accumulate(pv[o] * n / np.arange(n, 0, -1))
        res = np.empty(n)
        res[o] = np.minimum(adj, 1)
        out[ok] = res
    return out


def independent_filtering(base_mean, pvalue, alpha=ALPHA):
    """DESeq2 results(): choose the baseMean quantile threshold maximising rejections
    (lowess-smoothed), genes below it get padj = NA."""
    filt = np.asarray(base_mean, float)
    p = np.asarray(pvalue, float)
    lower = np.mean(filt == 0)
    upper = 0.95 if lower < 0.95 else 1.0
    theta = np.linspace(lower, upper, 50)
    cutoffs = np.quantile(filt, theta)
    padj_mat = np.full((p.size, theta.size), np.nan)
    for i, c in enumerate(cutoffs):
        use = filt >= c
        padj_mat[use, i] = _bh(p[use])
    num_rej = np.nansum(padj_mat < alpha, axis=0)
    if num_rej.max() <= 10:
        j = 0
    else:
        fit = lowess(num_rej, theta, frac=1 / 5, it=3, delta=0.01 * (theta.max() - theta.min()),
                     return_sorted=False)
        pos = num_rej > 0
        resid = num_rej[pos] - fit[pos]
        thresh = fit.max() - np.sqrt(np.mean(resid ** 2))
        above = np.nonzero(num_rej > thresh)[0]
        j = int(above[0]) if above.size else 0
    return padj_mat[:, j]


def run_lrt(counts: pd.DataFrame, groups: np.ndarray, levels: list[str], n_cpus: int = 1,
            inference=None):
    """counts genes x samples (ints), groups: level label per sample, levels: ordered levels
    (reference first). Returns (results DataFrame, normalized counts, info)."""
    from _common.deseq2_inference import VectorizedDeseqDataSet, VectorizedInference

    codes = np.array([levels.index(g) for g in groups])
    # formula-safe internal labels; L00 is the reference level
    meta = pd.DataFrame({"group": [f"L{c:02d}" for c in codes]}, index=counts.columns)
    # all genes at once with numpy (see _common/deseq2_inference.py); ~20x faster than
    # pydeseq2's per-gene DefaultInference, which callers may still pass for comparisons
    inference = inference or VectorizedInference(n_cpus=n_cpus)
    info = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dds = VectorizedDeseqDataSet(counts=counts.T, metadata=meta, design="~group",
                                     refit_cooks=True, inference=inference, quiet=True,
                                     n_cpus=n_cpus)
        info["dispersion_fallback"] = dds.fit_dispersions()
        dds.fit_LFC()
    sf = np.asarray(dds.obs["size_factors"], float)
    disp = np.asarray(dds.var["dispersions"], float)
    y = counts.to_numpy(float)
    norm = y / sf[None, :]
    base_mean = norm.mean(axis=1)
    nz = y.sum(axis=1) > 0
    stat = np.full(y.shape[0], np.nan)
    yz, dz = y[nz], disp[nz]
    mu_full = group_mle(yz, sf, codes, dz)
    mu_red = group_mle(yz, sf, np.zeros_like(codes), dz)
    stat[nz] = np.maximum(2 * (nb_loglik(yz, mu_full, dz) - nb_loglik(yz, mu_red, dz)), 0)
    df = len(levels) - 1
    pvalue = stats.chi2.sf(stat, df)
    padj = independent_filtering(base_mean, pvalue)
    # reported log2 fold change: last level vs reference (DESeq2's last coefficient, MLE)
    lfc_cols = [c for c in dds.varm["LFC"].columns if c != "Intercept"]
    tag = f"L{len(levels) - 1:02d}"
    last = [c for c in lfc_cols if c.rstrip("]").endswith(tag)][0]
    lfc = np.asarray(dds.varm["LFC"][last], float) / np.log(2)
    lfc[~nz] = np.nan
    res = pd.DataFrame({"baseMean": base_mean, "log2FoldChange": lfc, "statistic": stat,
                        "pvalue": pvalue, "padj": padj}, index=counts.index)
    normalized = pd.DataFrame(norm, index=counts.index, columns=counts.columns)
    return res, normalized, info
