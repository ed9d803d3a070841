"""Count-normalisation helpers shared by bundles (edgeR-compatible TMM, CPM, BH).

- ``tmm_norm_factors(counts, lib_size=None, logratio_trim=0.3, sum_trim=0.05, *,
  quantile_then_scale=False) -> ndarray``:
  edgeR ``calcNormFactors(method="TMM")`` (reference sample = the one whose upper quartile is
  closest to the mean upper quartile; precision-weighted trimmed mean of M values; factors scaled
  to a geometric mean of 1). Keyword ``quantile_then_scale=True`` takes each sample's upper
  quartile of the counts and then divides by its library size, as edgeR does since late 2020
  (3.40 made the committed references); the default (quartile of counts / library size, older
  edgeR) agrees with it up to rounding, which only matters when two samples are (nearly) tied
  for the reference.
- ``cpm(counts, lib_size, log=False, prior_count=2) -> ndarray``: counts per million on the
  effective library sizes (lib_size * norm factors). ``log=True`` follows edgeR ``cpm(log=TRUE)``.
- ``bh_adjust(p) -> ndarray``: Benjamini-Hochberg, NaN kept as NaN (R ``p.adjust(method="BH")``).
"""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def _tmm_factor(obs, ref, n_obs, n_ref, logratio_trim, sum_trim, acutoff=-1e10):
    with np.errstate(divide="ignore", invalid="ignore"):
        log_r = np.log2((obs / n_obs) / (ref / n_ref))
        abs_e = (np.log2(obs / n_obs) + np.log2(ref / n_ref)) / 2
        v = (n_obs - obs) / n_obs / obs + (n_ref - ref) / n_ref / ref
    fin = np.isfinite(log_r) & np.isfinite(abs_e) & (abs_e > acutoff)
    log_r, abs_e, v = log_r[fin], abs_e[fin], v[fin]
    if log_r.size == 0 or np.max(np.abs(log_r)) < 1e-6:
        return 1.0
    n = log_r.size
    lo_l = np.floor(n * logratio_trim) + 1
    hi_l = n + 1 - lo_l
    lo_s = np.floor(n * sum_trim) + 1
    hi_s = n + 1 - lo_s
    rl = rankdata(log_r)  # ties -> average, as R's rank()
    ra = rankdata(abs_e)
    keep = (rl >= lo_l) & (rl <= hi_l) & (ra >= lo_s) & (ra <= hi_s)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.nansum(log_r[keep] / v[keep]) / np.nansum(1 / v[keep])
    if not np.isfinite(f):
        f = 0.0
    return float(2.0 ** f)


def tmm_norm_factors(counts, lib_size=None, logratio_trim: float = 0.3,
                     sum_trim: float = 0.05, *, quantile_then_scale: bool = False) -> np.ndarray:
    x = np.asarray(counts, dtype=float)
    if lib_size is None:
        lib_size = x.sum(axis=0)
    lib_size = np.asarray(lib_size, dtype=float)
    x = x[(x > 0).any(axis=1)]  # drop rows that are zero in every sample
    if x.shape[0] == 0 or x.shape[1] < 2:
        return np.ones(x.shape[1])
    if quantile_then_scale:
        f75 = np.quantile(x, 0.75, axis=0) / lib_size  # R quantile type 7 = numpy 'linear'
    else:
        f75 = np.quantile(x / lib_size[None, :], 0.75, axis=0)
    if np.median(f75) < 1e-20:
        ref_col = int(np.argmax(np.sqrt(x).sum(axis=0)))
    else:
        ref_col = int(np.argmin(np.abs(f75 - f75.mean())))
    f = np.array([_tmm_factor(x[:, i], x[:, ref_col], lib_size[i], lib_size[ref_col],
                              logratio_trim, sum_trim) for i in range(x.shape[1])])
    return f / np.exp(np.mean(np.log(f)))


def cpm(counts, lib_size, log: bool = False, prior_count: float = 2.0) -> np.ndarray:
    x = np.asarray(counts, dtype=float)
    lib = np.asarray(lib_size, dtype=float)
    if not log:
        return x / lib[None, :] * 1e6
    # edgeR: prior scaled by library size relative to the mean, added to lib sizes twice
    pc = prior_count * lib / lib.mean()
    return np.log2((x + pc[None, :]) / (lib + 2 * pc)[None, :] * 1e6)


def bh_adjust(p) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    pv = p[ok]
    n = pv.size
    if n == 0:
        return out
    order = np.argsort(pv)[::-1]
    ranked = pv[order] * n / np.arange(n, 0, -1)
    adj = np.minimum.accumulate(ranked)
    res = np.empty(n)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out
