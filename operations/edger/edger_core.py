"""edgeR-style two-group analysis: TMM, estimateDisp (Cox-Reid adjusted profile likelihood on a
dispersion grid, weighted-likelihood empirical Bayes with a local-constant trend), NB GLM fit and
likelihood-ratio test. Re-implemented from the published algorithms (McCarthy, Chen & Smyth 2012;
Chen, Lun & Smyth 2014) for one-way layouts (a group factor), which is all WebMEV's edgeR and
limma bundles need.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy import special, stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common.edger_math import maximize_interpolant, nb_loglik  # noqa: E402

# ---------------------------------------------------------------- NB GLM for one-way layouts


def fit_oneway(y, offset, groups, dispersion, maxit=100, tol=1e-10):
    """MLE of per-group log means for an NB model with log link: mu_ij = exp(b_ig + o_ij).
    y: genes x samples; offset: samples (or genes x samples); groups: int labels per sample;
    dispersion: scalar or per gene. Returns (beta genes x groups, mu genes x samples);
    a group whose counts are all zero gets beta = -inf and mu = 0."""
    y = np.asarray(y, float)
    G, n = y.shape
    off = np.broadcast_to(np.asarray(offset, float), (G, n))
    phi = np.broadcast_to(np.asarray(dispersion, float).reshape(-1, 1) if np.ndim(dispersion)
                          else np.asarray(dispersion, float), (G, 1))
    groups = np.asarray(groups)
    levels = np.unique(groups)
    beta = np.empty((G, levels.size))
    mu = np.zeros((G, n))
    for k, g in enumerate(levels):
        cols = groups == g
        yg, og = y[:, cols], off[:, cols]
        tot = yg.sum(axis=1)
        b = np.log(np.maximum(tot, 1e-300) / np.exp(og).sum(axis=1))
        active = tot > 0
        for _ in range(maxit):
            m = np.exp(b[:, None] + og)
            denom = 1 + phi * m
            score = ((yg - m) / denom).sum(axis=1)
            # observed information of the NB log-likelihood in b (concave)
            info = ((yg * phi + 1) * m / denom ** 2).sum(axis=1)
            step = np.where(active, score / np.maximum(info, 1e-300), 0.0)
            b = b + np.clip(step, -5, 5)
            if np.all(np.abs(step) < tol):
                break
        b = np.where(active, b, -np.inf)
        beta[:, k] = b
        mu[:, cols] = np.where(active[:, None], np.exp(b[:, None] + og), 0.0)
    return beta, mu


def nb_deviance(y, mu, dispersion):
    """Total NB deviance per gene (edgeR nbinomDeviance; Poisson limit for tiny dispersion)."""
    y = np.asarray(y, float)
    mu = np.asarray(mu, float)
    phi = np.broadcast_to(np.asarray(dispersion, float).reshape(-1, 1), y.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        ylogy = np.where(y > 0, y * np.log(y / np.maximum(mu, 1e-300)), 0.0)
        nb = 2 * (ylogy - (y + 1 / phi) * np.log((1 + phi * y) / (1 + phi * mu)))
        pois = 2 * (ylogy - (y - mu))
    unit = np.where(phi < 1e-8, pois, nb)
    unit = np.where((y == 0) & (mu == 0), 0.0, unit)
    return np.maximum(unit, 0).sum(axis=1)


def add_prior_count(y, lib_size, prior_count):
    """edgeR addPriorCount: prior scaled to library size; returns (y + pc, log(lib + 2 pc))."""
    lib = np.asarray(lib_size, float)
    pc = prior_count * lib / lib.mean()
    return np.asarray(y, float) + pc[None, :], np.log(lib + 2 * pc)


def ave_log_cpm(y, lib_size, dispersion, prior_count=2.0):
    """edgeR aveLogCPM: intercept-only NB fit on prior-augmented counts, log2 CPM."""
    yp, off = add_prior_count(y, lib_size, prior_count)
    beta, _ = fit_oneway(yp, off, np.zeros(yp.shape[1], int), dispersion)
    return (beta[:, 0] + np.log(1e6)) / np.log(2)


# ---------------------------------------------------------------- smoothing helpers


def local_constant_smooth(ll, covariate, span, chunk=512):
    """Degree-0 local regression of every column of ``ll`` on ``covariate`` with a tricube
    kernel and nearest-neighbour bandwidth covering a fraction ``span`` of the points (what
    edgeR's locfitByCol(degree=0) computes, evaluated directly at each point)."""
    x = np.asarray(covariate, float)
    n = x.size
    if span * n < 2 or n <= 1:
        return ll.copy()
    k = max(int(np.floor(span * n)), 2)
    xs = np.sort(x)
    out = np.empty_like(ll, dtype=float)
    for start in range(0, n, chunk):
        x0 = x[start:start + chunk]
        d = np.abs(x[None, :] - x0[:, None])
        # bandwidth: distance to the k-th nearest neighbour
        h = np.partition(d, k - 1, axis=1)[:, k - 1]
        h = np.where(h > 0, h, (xs[-1] - xs[0]) * 1e-10 + 1e-300)
        u = np.clip(d / h[:, None], 0, 1)
        w = (1 - u ** 3) ** 3
        out[start:start + chunk] = (w @ ll) / w.sum(axis=1, keepdims=True)
    return out


def natural_spline_basis(x, df):
    """A basis of natural cubic splines with ``df`` dimensions (intercept included), knots at
    the boundary and at equally spaced quantiles, spanning the same space as R's
    ``splines::ns(x, df=df, intercept=TRUE)``."""
    x = np.asarray(x, float)
    n_inner = df - 2
    probs = np.linspace(0, 1, n_inner + 2)[1:-1]
    knots = np.r_[x.min(), np.quantile(x, probs), x.max()]
    K = knots.size

    def dk(k):
        return (np.maximum(x - knots[k], 0) ** 3 - np.maximum(x - knots[-1], 0) ** 3) / (knots[-1] - knots[k])
    cols = [np.ones_like(x), x]
    for k in range(K - 2):
        cols.append(dk(k) - dk(K - 2))
    return np.column_stack(cols)


def trigamma_inverse(x):
    y = 0.5 + 1 / x
    if x > 1e7:
        return 1 / np.sqrt(x)
    if x < 1e-6:
        return 1 / x
    for _ in range(50):
        tri = special.polygamma(1, y)
        dif = tri * (1 - tri / x) / special.polygamma(2, y)
        y = y + dif
        if -dif / y < 1e-8:
            break
    return float(y)


def prior_df_from_variances(s2, df, covariate):
    """limma fitFDist(covariate=...) df2 only: spline trend in log(s2) (df 1-4 by sample size)."""
    s2 = np.asarray(s2, float)
    df = np.asarray(df, float)
    ok = np.isfinite(df) & (df > 1e-15) & np.isfinite(s2) & (s2 > -1e-15)
    x, d, cov = np.maximum(s2[ok], 0), df[ok], np.asarray(covariate, float)[ok]
    m = np.median(x)
    if m == 0:
        m = 1.0
    x = np.maximum(x, 1e-5 * m)
    e = np.log(x) - special.digamma(d / 2) + np.log(d / 2)
    nok = e.size
    splinedf = 1 + (nok >= 3) + (nok >= 6) + (nok >= 30)
    splinedf = min(splinedf, np.unique(cov).size)
    if splinedf < 2:
        X = np.ones((nok, 1))
    else:
        X = natural_spline_basis(cov, splinedf)
    coef, *_ = np.linalg.lstsq(X, e, rcond=None)
    rank = np.linalg.matrix_rank(X)
    evar = np.sum((e - X @ coef) ** 2) / (nok - rank) - np.mean(special.polygamma(1, d / 2))
    if evar > 0:
        return 2 * trigamma_inverse(evar)
    return np.inf


# ---------------------------------------------------------------- estimateDisp


def _design(groups):
    levels = np.unique(groups)
    return np.column_stack([np.ones(groups.size)] + [(groups == g).astype(float) for g in levels[1:]])


def adjusted_profile_loglik(y, offset, groups, dispersion):
    """Cox-Reid adjusted profile log-likelihood per gene at one dispersion value (samples
    whose fitted value and count are both zero must already be removed by the caller)."""
    _, mu = fit_oneway(y, offset, groups, dispersion)
    ll = nb_loglik(y, mu, dispersion)
    X = _design(groups)
    W = mu / (1 + dispersion * mu)
    xtwx = np.einsum("gi,ij,ik->gjk", W, X, X)
    sign, logdet = np.linalg.slogdet(xtwx)
    logdet = np.where(sign > 0, logdet, np.log(1e-10) * X.shape[1])
    return ll - 0.5 * logdet


def estimate_disp(y, lib_size, groups, min_row_sum=5, grid_length=21, grid_range=(-10, 10)):
    """edgeR estimateDisp(y, design=~group) with trend.method='locfit', tagwise=TRUE,
    robust=FALSE. Returns dict(common, trended, tagwise, prior_df, ave_log_cpm)."""
    y = np.asarray(y, float)
    G, n = y.shape
    groups = np.asarray(groups)
    offset = np.log(np.asarray(lib_size, float))
    n_coef = np.unique(groups).size
    sel = y.sum(axis=1) >= min_row_sum
    ys = y[sel]
    spline_pts = np.linspace(grid_range[0], grid_range[1], grid_length)
    spline_disp = 0.1 * 2.0 ** spline_pts
    l0 = np.zeros((ys.shape[0], grid_length))
    # observations with zero fitted value and zero count are dropped gene by gene (zero groups)
    _, mu0 = fit_oneway(ys, offset, groups, 0.05)
    zerofit = (mu0 < 1e-4) & (ys < 1e-4)
    patterns, inverse = np.unique(zerofit, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    for p_idx, pattern in enumerate(patterns):
        rows = inverse == p_idx
        keep = ~pattern
        if not keep.any():
            continue
        sub_groups = groups[keep]
        if keep.sum() <= np.unique(sub_groups).size:
            continue  # saturated: no information on the dispersion
        for i, disp in enumerate(spline_disp):
            l0[rows, i] = adjusted_profile_loglik(ys[rows][:, keep], offset[keep], sub_groups, disp)
    common = 0.1 * 2 ** maximize_interpolant(spline_pts, l0.sum(axis=0)[None, :])[0]

    alc = ave_log_cpm(y, np.exp(offset), common)
    n_sel = ys.shape[0]
    span = 1.0 if n_sel <= 50 else 0.25 + 0.75 * (50 / n_sel) ** 0.5
    m0 = local_constant_smooth(l0, alc[sel], span)
    disp_trend = 0.1 * 2 ** maximize_interpolant(spline_pts, m0)
    trended = np.full(G, disp_trend[np.argmin(alc[sel])])
    trended[sel] = disp_trend

    # prior df from the residual deviances at the trended dispersion
    _, mu = fit_oneway(ys, offset, groups, disp_trend)
    dev = nb_deviance(ys, mu, disp_trend)
    zero = (ys < 1e-4) & (mu < 1e-4)
    df_res = np.empty(n_sel)
    for pattern in np.unique(zero, axis=0):
        rows = (zero == pattern).all(axis=1)
        keep = ~pattern
        df_res[rows] = max(keep.sum() - np.unique(groups[keep]).size, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = np.where(df_res > 0, dev / df_res, 0.0)
    prior_df = prior_df_from_variances(np.maximum(s2, 0), df_res, alc[sel])
    prior_n = prior_df / (n - n_coef)
    tagwise = trended.copy()
    if prior_n <= 1e6:
        tagwise[sel] = 0.1 * 2 ** maximize_interpolant(spline_pts, l0 + prior_n * m0)
    return {"common": common, "trended": trended, "tagwise": tagwise, "prior_df": prior_df,
            "ave_log_cpm": alc}


# ---------------------------------------------------------------- test


def glm_lrt_two_group(y, lib_size, groups, dispersion, prior_count=0.125):
    """glmFit(~group) + glmLRT(coef=2): returns logFC (prior-count shrunk, as edgeR), LR, p."""
    offset = np.log(np.asarray(lib_size, float))
    _, mu1 = fit_oneway(y, offset, groups, dispersion)
    _, mu0 = fit_oneway(y, offset, np.zeros_like(groups), dispersion)
    lr = np.maximum(nb_deviance(y, mu0, dispersion) - nb_deviance(y, mu1, dispersion), 0)
    p = stats.chi2.sf(lr, 1)
    yp, offp = add_prior_count(y, lib_size, prior_count)
    beta, _ = fit_oneway(yp, offp, groups, dispersion)
    logfc = (beta[:, 1] - beta[:, 0]) / np.log(2)
    return logfc, lr, p
