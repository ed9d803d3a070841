"""ComBat-seq (Zhang, Parmigiani & Johnson 2020): negative-binomial batch adjustment that keeps
integer counts. Re-implemented from the published algorithm (sva::ComBat_seq defaults:
full_mod=TRUE, shrink=FALSE): per-batch gene-wise dispersions (Cox-Reid), NB GLM with batch +
covariates, batch-free means, quantile matching between the fitted and batch-free NB laws.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy import optimize, stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common.edger_math import maximize_interpolant, nb_loglik  # noqa: E402


class ConfoundedError(ValueError):
    pass


# ------------------------------------------------------------------ NB GLM (general design)


def nb_glm_fit(y, X, offset, dispersion, maxit=200, tol=1e-9):
    """Gene-wise NB GLM with log link by Fisher scoring with step halving on the deviance.
    y genes x n; X n x p; offset genes x n (or n); dispersion genes x n (or genes).
    Returns (beta genes x p, mu genes x n)."""
    y = np.asarray(y, float)
    G, n = y.shape
    X = np.asarray(X, float)
    p = X.shape[1]
    off = np.broadcast_to(np.asarray(offset, float), (G, n))
    phi = np.asarray(dispersion, float)
    phi = np.broadcast_to(phi[:, None] if phi.ndim == 1 else phi, (G, n))
    # start: least squares on log((y+0.5)/exp(offset))
    z0 = np.log(y + 0.5) - off
    beta = np.linalg.lstsq(X, z0.T, rcond=None)[0].T
    ridge = 1e-10 * np.eye(p)

    def deviance(b):
        mu = np.exp(np.clip(b @ X.T + off, -700, 700))
        with np.errstate(divide="ignore", invalid="ignore"):
            ylogy = np.where(y > 0, y * np.log(y / mu), 0.0)
            d = 2 * (ylogy - (y + 1 / phi) * np.log((1 + phi * y) / (1 + phi * mu)))
        return d.sum(axis=1), mu

    dev, mu = deviance(beta)
    active = np.ones(G, bool)
    for _ in range(maxit):
        w = mu / (1 + phi * mu)
        z = (y - mu) / mu  # working residual (eta scale)
        xtwx = np.einsum("gi,ij,ik->gjk", w, X, X) + ridge
        xtwz = np.einsum("gi,ij,gi->gj", w, X, z)
        step = np.linalg.solve(xtwx, xtwz[..., None])[..., 0]
        step = np.where(active[:, None], step, 0)
        lam = np.ones(G)
        new_beta = beta + step
        new_dev, new_mu = deviance(new_beta)
        for _h in range(30):  # step halving where the deviance went up
            worse = active & (new_dev > dev + 1e-12 * (1 + np.abs(dev)))
            if not worse.any():
                break
            lam = np.where(worse, lam / 2, lam)
            new_beta = beta + lam[:, None] * step
            new_dev, new_mu = deviance(new_beta)
        converged = np.max(np.abs(lam[:, None] * step), axis=1) < tol
        beta, dev, mu = new_beta, new_dev, new_mu
        active &= ~converged
        if not active.any():
            break
    return beta, mu


def adjusted_profile_loglik(disp, y, X, offset):
    """Cox-Reid adjusted profile log-likelihood per gene (disp scalar or per gene)."""
    G = y.shape[0]
    d = np.broadcast_to(np.asarray(disp, float), (G,))
    _, mu = nb_glm_fit(y, X, offset, d)
    ll = nb_loglik(y, mu, d[:, None])
    w = mu / (1 + d[:, None] * mu)
    xtwx = np.einsum("gi,ij,ik->gjk", w, X, X)
    sign, logdet = np.linalg.slogdet(xtwx)
    logdet = np.where((sign > 0) & np.isfinite(logdet), logdet, X.shape[1] * np.log(1e-10))
    return ll - 0.5 * logdet


def common_dispersion(y, X, min_row_sum=5):
    """edgeR estimateGLMCommonDisp (Cox-Reid): maximise the summed APL over [0, 4]."""
    offset = np.log(y.sum(axis=0))
    keep = y.sum(axis=1) >= min_row_sum
    ys = y[keep]
    if ys.shape[0] == 0:
        return np.nan
    f = lambda par: -adjusted_profile_loglik(par ** 4, ys, X, offset).sum()  # noqa: E731
    res = optimize.minimize_scalar(f, bounds=(0.0, 4.0 ** 0.25), method="bounded",
                                   options={"xatol": 1e-7})
    return float(res.x ** 4)


def tagwise_dispersion(y, X, common, min_row_sum=5, grid_npts=11, grid_range=(-6, 6)):
    """edgeR estimateGLMTagwiseDisp(prior.df=0, trend=FALSE): APL on a grid common·2^k,
    k in [-6, 6] (11 points), maximiser of the natural-spline interpolant; genes with row sum
    < 5 keep the common value."""
    offset = np.log(y.sum(axis=0))
    out = np.full(y.shape[0], common)
    keep = y.sum(axis=1) >= min_row_sum
    if not keep.any():
        return out
    pts = np.linspace(grid_range[0], grid_range[1], grid_npts)
    apl = np.column_stack([adjusted_profile_loglik(common * 2 ** k, y[keep], X, offset) for k in pts])
    out[keep] = common * 2 ** maximize_interpolant(pts, apl)
    return out


# ------------------------------------------------------------------ ComBat-seq


def covariate_matrix(covariates):
    """Columns for a covariate table (samples x columns, strings): numeric columns as is,
    categorical ones as treatment-coded indicators (first level = reference)."""
    cols, names = [], []
    for name in covariates.columns:
        v = covariates[name]
        try:
            num = v.astype(float).to_numpy()
            cols.append(num)
            names.append(name)
        except ValueError:
            levels = sorted(v.unique(), key=lambda s: (s.lower(), s))
            for lv in levels[1:]:
                cols.append((v == lv).to_numpy(float))
                names.append(f"{name}{lv}")
    if not cols:
        return np.zeros((len(covariates), 0)), []
    return np.column_stack(cols), names


def combat_seq(counts, batch, covar=None):
    """counts genes x samples (ints), batch labels per sample, covar samples x k matrix or None.
    Returns adjusted integer counts (same shape)."""
    counts = np.asarray(counts, float)
    batch = np.asarray(batch).astype(str)
    levels = sorted(set(batch), key=lambda s: (s.lower(), s))
    n_batch = len(levels)
    ind = [np.nonzero(batch == b)[0] for b in levels]
    sizes = np.array([i.size for i in ind])
    small = [b for b, s in zip(levels, sizes, strict=True) if s <= 1]
    if small:
        raise ConfoundedError("ComBat-seq needs at least 2 samples in every batch; batch(es) "
                              f"with a single sample: {', '.join(small)}.")
    keep = np.all([(counts[:, i] != 0).any(axis=1) for i in ind], axis=0)
    y = counts[keep]
    n = counts.shape[1]

    batchmod = np.column_stack([(batch == b).astype(float) for b in levels])
    mod = np.ones((n, 1))
    if covar is not None and covar.shape[1] > 0:
        cv = covar[:, ~np.all(covar == 1, axis=0)]
        mod = np.column_stack([mod, cv])
    design = np.column_stack([batchmod, mod])
    design = design[:, ~np.all(design == 1, axis=0)]  # drop the intercept
    if np.linalg.matrix_rank(design) < design.shape[1]:
        if design.shape[1] == n_batch + 1:
            raise ConfoundedError("The covariate is confounded with batch. Remove the covariate "
                                  "and run ComBat-seq again.")
        rest = design[:, n_batch:]
        if np.linalg.matrix_rank(rest) < rest.shape[1]:
            raise ConfoundedError("The covariates are confounded with each other. Remove one or "
                                  "more covariates so that the design is not confounded.")
        raise ConfoundedError("At least one covariate is confounded with batch. Remove the "
                              "confounded covariate(s) and run ComBat-seq again.")

    # per-batch dispersions
    disp = []
    for i in ind:
        yi = y[:, i]
        mi = mod[i]
        enough = not (i.size <= design.shape[1] - n_batch + 1 or
                      np.linalg.matrix_rank(mi) < mi.shape[1])
        Xi = mi if enough else np.ones((i.size, 1))
        common = common_dispersion(yi, Xi)
        disp.append(tagwise_dispersion(yi, Xi, common) if enough else np.full(y.shape[0], common))
    phi_hat = np.column_stack(disp)                     # genes x batches
    phi_mat = np.empty_like(y)
    for k, i in enumerate(ind):
        phi_mat[:, i] = phi_hat[:, [k]]

    lib = y.sum(axis=0)
    log_lib = np.log(lib)
    pc = 1e-4 * lib / lib.mean()                         # glmFit(prior.count = 1e-4)
    beta1, _ = nb_glm_fit(y + pc, design, np.log(lib + 2 * pc), phi_mat)
    alpha_g = beta1[:, :n_batch] @ (sizes / n)
    new_off = log_lib[None, :] + alpha_g[:, None]
    _, mu_hat = nb_glm_fit(y, design, new_off, phi_mat)
    beta2, _ = nb_glm_fit(y + pc, design, np.log(np.exp(new_off) + 2 * pc), phi_mat)
    gamma_hat = beta2[:, :n_batch]

    mu_star = np.empty_like(mu_hat)
    for k, i in enumerate(ind):
        mu_star[:, i] = np.exp(np.log(mu_hat[:, i]) - gamma_hat[:, [k]])
    phi_star = phi_hat.mean(axis=1)

    adj = np.empty_like(y)
    for k, i in enumerate(ind):
        adj[:, i] = match_quantiles(y[:, i], mu_hat[:, i], phi_hat[:, k], mu_star[:, i], phi_star)
    out = counts.copy()
    out[keep] = adj
    return np.round(out).astype(np.int64)


def match_quantiles(y, old_mu, old_phi, new_mu, new_phi):
    """Map each count > 1 to the same quantile of the batch-free NB (counts <= 1, and counts
    in the extreme upper tail, are kept)."""
    out = y.copy()
    r_old = (1 / old_phi)[:, None] * np.ones_like(y)
    r_new = (1 / new_phi)[:, None] * np.ones_like(y)
    sel = y > 1
    p = stats.nbinom.cdf(y[sel] - 1, r_old[sel], r_old[sel] / (r_old[sel] + old_mu[sel]))
    q = 1 + stats.nbinom.ppf(p, r_new[sel], r_new[sel] / (r_new[sel] + new_mu[sel]))
    vals = np.where(np.abs(p - 1) < 1e-4, y[sel], q)
    out[sel] = vals
    return out
