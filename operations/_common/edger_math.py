"""Negative-binomial helpers shared by the edgeR-style bundles (edgeR, ComBat-seq).

- ``nb_loglik(y, mu, dispersion) -> ndarray``: NB log-likelihood summed over samples, per gene
  (``dispersion`` scalar, per gene as a column, or genes x samples).
- ``maximize_interpolant(x, ll) -> ndarray``: row-wise maximiser of a natural cubic spline
  through ``(x, ll[i, :])`` (edgeR ``maximizeInterpolant``).
"""
from __future__ import annotations

import numpy as np
from scipy import special
from scipy.interpolate import CubicSpline


def nb_loglik(y, mu, dispersion):
    r = 1.0 / dispersion
    with np.errstate(divide="ignore", invalid="ignore"):
        ll = (special.gammaln(y + r) - special.gammaln(r) - special.gammaln(y + 1)
              + r * np.log(r / (r + mu)) + np.where(y > 0, y * np.log(mu / (r + mu)), 0.0))
    return ll.sum(axis=1)


def maximize_interpolant(x, ll):
    """Row-wise maximiser of a natural cubic spline through (x, ll[i, :]) (edgeR
    maximizeInterpolant): searches the two spline pieces next to the best grid point."""
    x = np.asarray(x, float)
    ll = np.atleast_2d(np.asarray(ll, float))
    G, K = ll.shape
    cs = CubicSpline(x, ll.T, bc_type="natural", axis=0)
    c = cs.c  # (4, K-1, G): c0*(t)^3 + c1*t^2 + c2*t + c3, t = x - x[i]
    imax = np.argmax(ll, axis=1)
    best_x = x[imax].copy()
    best_y = ll[np.arange(G), imax].copy()
    for side in (-1, 0):
        seg = imax + side
        ok = (seg >= 0) & (seg < K - 1)
        segc = np.clip(seg, 0, K - 2)
        a, b, cc, d = (c[k, segc, np.arange(G)] for k in range(4))
        h = x[segc + 1] - x[segc]
        # derivative 3a t^2 + 2b t + cc = 0
        disc = (2 * b) ** 2 - 12 * a * cc
        for sgn in (-1.0, 1.0):
            with np.errstate(divide="ignore", invalid="ignore"):
                t = np.where(np.abs(a) > 1e-300, (-2 * b + sgn * np.sqrt(np.maximum(disc, 0)))
                             / (6 * a), -cc / (2 * b))
            valid = ok & (disc >= 0) & np.isfinite(t) & (t >= 0) & (t <= h)
            val = ((a * t + b) * t + cc) * t + d
            better = valid & (val > best_y)
            best_x = np.where(better, x[segc] + t, best_x)
            best_y = np.where(better, val, best_y)
    return best_x
