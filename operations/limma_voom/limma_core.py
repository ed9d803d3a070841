"""voom + lmFit + eBayes + topTable (limma's published algorithms, re-implemented in numpy).

References: Law et al. 2014 (voom), Smyth 2004 (moderated t / eBayes), limma's fitFDist,
tmixture and B-statistic definitions.
"""
from __future__ import annotations

import numpy as np
from scipy import special, stats
from statsmodels.nonparametric.smoothers_lowess import lowess


def r_lowess(x, y, f=2 / 3, iters=3):
    """R's ``lowess`` (sorted x, fitted y) via statsmodels with R's defaults for delta."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    delta = 0.01 * (x.max() - x.min())
    out = lowess(y, x, frac=f, it=iters, delta=delta, return_sorted=True)
    return out[:, 0], out[:, 1]


def _approxfun(xs, ys):
    """R ``approxfun(rule=2, ties=mean)``: linear interpolation, constant outside the range."""
    ux, inv = np.unique(xs, return_inverse=True)
    uy = np.bincount(inv, weights=ys) / np.bincount(inv)
    return lambda z: np.interp(z, ux, uy)


def lm_fit(y, design, weights=None):
    """Gene-wise (weighted) least squares. Returns coefficients, stdev_unscaled, sigma, df."""
    y = np.asarray(y, float)
    X = np.asarray(design, float)
    n, p = X.shape
    G = y.shape[0]
    if weights is None:
        xtx_inv = np.linalg.inv(X.T @ X)
        coef = y @ X @ xtx_inv.T
        resid = y - coef @ X.T
        sigma2 = (resid ** 2).sum(axis=1) / (n - p)
        stdev_unscaled = np.tile(np.sqrt(np.diag(xtx_inv)), (G, 1))
    else:
        w = np.asarray(weights, float)
        xtwx = np.einsum("gi,ij,ik->gjk", w, X, X)
        xtwx_inv = np.linalg.inv(xtwx)
        xtwy = np.einsum("gi,ij,gi->gj", w, X, y)
        coef = np.einsum("gjk,gk->gj", xtwx_inv, xtwy)
        resid = y - coef @ X.T
        sigma2 = (w * resid ** 2).sum(axis=1) / (n - p)
        stdev_unscaled = np.sqrt(np.einsum("gjj->gj", xtwx_inv))
    return {"coefficients": coef, "stdev_unscaled": stdev_unscaled, "sigma": np.sqrt(sigma2),
            "df_residual": np.full(G, float(n - p)), "Amean": y.mean(axis=1)}


def voom(counts, design, lib_size, span=0.5):
    """log2-CPM with 0.5 offsets and precision weights from the mean-variance lowess trend."""
    counts = np.asarray(counts, float)
    lib = np.asarray(lib_size, float)
    E = np.log2((counts + 0.5) / (lib[None, :] + 1) * 1e6)
    fit = lm_fit(E, design)
    sx = fit["Amean"] + np.mean(np.log2(lib + 1)) - np.log2(1e6)
    sy = np.sqrt(fit["sigma"])
    nonzero = counts.sum(axis=1) > 0
    lx, ly = r_lowess(sx[nonzero], sy[nonzero], f=span)
    trend = _approxfun(lx, ly)
    fitted_cpm = 2.0 ** (fit["coefficients"] @ np.asarray(design, float).T)
    fitted_count = 1e-6 * fitted_cpm * (lib[None, :] + 1)
    weights = 1.0 / trend(np.log2(fitted_count)) ** 4
    return E, weights


def trigamma_inverse(x):
    """Solve trigamma(y) = x by Newton's method (limma's trigammaInverse)."""
    x = np.atleast_1d(np.asarray(x, float))
    y = np.where(x > 1e7, 1 / np.sqrt(np.maximum(x, 1e-300)), 0.5 + 1 / x)
    y = np.where(x < 1e-6, 1 / x, y)
    todo = (x <= 1e7) & (x >= 1e-6)
    for _ in range(50):
        tri = special.polygamma(1, y)
        dif = tri * (1 - tri / x) / special.polygamma(2, y)
        y = np.where(todo, y + dif, y)
        if np.max(np.where(todo, -dif / y, 0)) < 1e-8:
            break
    return y


def fit_f_dist(s2, df1):
    """Moment estimation of the scaled-F prior (limma fitFDist, no covariate)."""
    x = np.maximum(np.asarray(s2, float), 0)
    df1 = np.asarray(df1, float)
    ok = np.isfinite(x) & np.isfinite(df1) & (df1 > 1e-15)
    x, d = x[ok], df1[ok]
    m = np.median(x)
    if m == 0:
        m = 1.0
    x = np.maximum(x, 1e-5 * m)
    z = np.log(x)
    e = z - special.digamma(d / 2) + np.log(d / 2)
    emean = e.mean()
    evar = np.sum((e - emean) ** 2) / (e.size - 1) - np.mean(special.polygamma(1, d / 2))
    if evar > 0:
        df2 = 2 * trigamma_inverse(evar)[0]
        s20 = np.exp(emean + special.digamma(df2 / 2) - np.log(df2 / 2))
    else:
        df2 = np.inf
        s20 = np.exp(emean)
    return s20, df2


def _tmixture(tstat, stdev_unscaled, df, proportion, v0lim):
    tstat = np.abs(np.asarray(tstat, float))
    ngenes = tstat.size
    ntarget = int(np.ceil(proportion / 2 * ngenes))
    if ntarget < 1:
        return np.nan
    p = max(ntarget / ngenes, proportion)
    df = np.asarray(df, float).copy()
    max_df = df.max()
    big = df > max_df
    if big.any():
        tail = stats.t.logsf(tstat[big], df[big])
        tstat[big] = stats.t.isf(np.exp(tail), max_df)
    o = np.argsort(-tstat, kind="stable")[:ntarget]
    t = tstat[o]
    v1 = stdev_unscaled[o] ** 2
    r = np.arange(1, ntarget + 1)
    p0 = 2 * stats.t.sf(t, max_df)
    ptarget = ((r - 0.5) / ngenes - (1 - p) * p0) / p
    v0 = np.zeros(ntarget)
    pos = ptarget > p0
    if pos.any():
        qtarget = stats.t.isf(ptarget[pos] / 2, max_df)
        v0[pos] = v1[pos] * ((t[pos] / qtarget) ** 2 - 1)
    v0 = np.clip(v0, v0lim[0], v0lim[1])
    return v0.mean()


def ebayes_coef(fit, j, proportion=0.01, stdev_coef_lim=(0.1, 4.0)):
    """Moderated t, p-value and B statistic for coefficient ``j``."""
    s2 = fit["sigma"] ** 2
    df = fit["df_residual"]
    s20, df0 = fit_f_dist(s2, df)
    if np.isinf(df0):
        s2_post = np.full_like(s2, s20)
    else:
        s2_post = (df * s2 + df0 * s20) / (df + df0)
    coef = fit["coefficients"][:, j]
    su = fit["stdev_unscaled"][:, j]
    t = coef / su / np.sqrt(s2_post)
    df_total = np.minimum(df + df0, df.sum())
    p = 2 * stats.t.sf(np.abs(t), df_total)
    v0lim = np.asarray(stdev_coef_lim) ** 2 / s20
    var_prior = _tmixture(t, su, df_total, proportion, v0lim)
    if not np.isfinite(var_prior):
        var_prior = 1 / s20
    r = (su ** 2 + var_prior) / su ** 2
    t2 = t ** 2
    if df0 > 1e6:
        kernel = t2 * (1 - 1 / r) / 2
    else:
        kernel = (1 + df_total) / 2 * np.log((t2 + df_total) / (t2 / r + df_total))
    B = np.log(proportion / (1 - proportion)) - np.log(r) / 2 + kernel
    return {"logFC": coef, "t": t, "P.Value": p, "B": B, "s2_prior": s20, "df_prior": df0}
