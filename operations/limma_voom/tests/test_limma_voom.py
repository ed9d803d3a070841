"""Limma/voom bundle tests: tool contract, validation, math units and agreement with R
limma 3.54.1 / edgeR 3.40.2 (committed references; R not needed at test time)."""
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BUNDLE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BUNDLE.parent))
sys.path.insert(0, str(BUNDLE))
from _common.rnaseq import bh_adjust, tmm_norm_factors  # noqa: E402
from _common.testing import (  # noqa: E402
    REFERENCE_BASE,
    REFERENCE_DIR,
    REFERENCE_EXP,
    de_agreement,
    read_output_table,
    run_bundle,
    sample_set,
    two_group_inputs,
)
from limma_core import fit_f_dist, lm_fit, trigamma_inverse  # noqa: E402

BASE, EXP = REFERENCE_BASE, REFERENCE_EXP
_set = sample_set


def _inputs(path, base=BASE, exp=EXP, **kw):
    return two_group_inputs(path, base, exp, **kw)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    run = run_bundle(BUNDLE, _inputs(REFERENCE_DIR / "counts_2group.tsv"),
                     tmp_path_factory.mktemp("limma"))
    assert run.returncode == 0, run.stderr
    return run


def test_output_format(reference_run):
    res = read_output_table(reference_run, "dge_results")
    assert list(res.columns) == ["log2FoldChange", "overall_mean", "statistic", "pvalue", "padj",
                                 "B"] + BASE + EXP
    assert res.pvalue.is_monotonic_increasing
    norm = read_output_table(reference_run, "normalized_counts")
    assert list(norm.columns) == BASE + EXP
    assert np.allclose(res.loc[norm.index, BASE + EXP], norm)


def test_agreement_with_R(reference_run):
    ours = read_output_table(reference_run, "dge_results")
    ref = pd.read_csv(REFERENCE_DIR / "limma_results.tsv.gz", sep="\t", index_col=0)
    assert set(ours.index) == set(ref.index)  # same genes kept by the CPM filter
    ours = ours.loc[ref.index]
    agr = de_agreement(ours.log2FoldChange, ours.padj, ref.logFC, ref["adj.P.Val"])
    print(agr)
    assert agr["r_lfc"] >= 0.999 and agr["call_agreement"] >= 0.995
    for a, b in [("log2FoldChange", "logFC"), ("overall_mean", "AveExpr"), ("statistic", "t"),
                 ("B", "B")]:
        assert np.allclose(ours[a], ref[b], rtol=1e-5, atol=1e-6), a
    assert np.allclose(np.log10(ours.pvalue), np.log10(ref["P.Value"]), atol=1e-5)


def test_tmm_matches_edger():
    counts = pd.read_csv(REFERENCE_DIR / "counts_2group.tsv", sep="\t", index_col=0)
    ref = pd.read_csv(REFERENCE_DIR / "tmm_norm_factors.tsv", sep="\t", index_col=0)
    assert np.allclose(tmm_norm_factors(counts.values), ref["norm.factors"], rtol=1e-7)
    assert np.allclose(tmm_norm_factors(np.tile([[5.0], [7.0], [9.0]], (1, 3))), 1.0)


def test_math_units():
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.5])
    assert np.allclose(bh_adjust(p)[[0, 1, 2, 4]], [0.04, 0.16 / 3, 0.16 / 3, 0.5])
    assert np.isnan(bh_adjust(p)[3])
    from scipy.special import polygamma
    for x in (0.05, 1.0, 7.0):
        assert np.isclose(polygamma(1, trigamma_inverse(x)[0]), x)
    rng = np.random.default_rng(1)
    X = np.column_stack([np.ones(6), [0, 0, 0, 1, 1, 1]])
    y = rng.normal(size=(4, 6))
    f1 = lm_fit(y, X)
    f2 = lm_fit(y, X, np.ones_like(y))
    assert np.allclose(f1["coefficients"], f2["coefficients"])
    assert np.allclose(f1["sigma"], f2["sigma"])
    # prior estimated from scaled chi-square variances recovers s0^2 and d0 roughly
    d0, s0 = 8.0, 0.3
    sigma2 = s0 * d0 / rng.chisquare(d0, 20000)          # scaled inverse chi-square prior
    s2 = sigma2 * rng.chisquare(4, 20000) / 4
    s20, df0 = fit_f_dist(s2, np.full(20000, 4.0))
    assert abs(s20 - s0) < 0.03 and 6 < df0 < 11


def test_non_integer_allowed_negative_rejected(tmp_path):
    rng = np.random.default_rng(3)
    df = pd.DataFrame(rng.gamma(2, 50, (200, 8)), index=[f"g{i}" for i in range(200)],
                      columns=BASE + EXP)
    p = tmp_path / "m.tsv"
    df.to_csv(p, sep="\t", index_label="gene")
    run = run_bundle(BUNDLE, _inputs(p), tmp_path / "ok")
    assert run.returncode == 0, run.stderr
    df.iloc[3, 2] = -1
    df.to_csv(p, sep="\t", index_label="gene")
    run = run_bundle(BUNDLE, _inputs(p), tmp_path / "bad")
    assert run.returncode != 0 and any("negative" in m for m in run.errors)


@pytest.mark.parametrize("kwargs,needle", [
    (dict(base=BASE, exp=EXP + ["ctrl_1"]), "ctrl_1"),
    (dict(base=BASE, exp=["trt_1"]), "at least 2 samples"),
    (dict(base=BASE + ["ghost"], exp=EXP), "ghost"),
])
def test_set_errors(tmp_path, kwargs, needle):
    run = run_bundle(BUNDLE, _inputs(REFERENCE_DIR / "counts_2group.tsv", **kwargs), tmp_path)
    assert run.returncode != 0 and any(needle in m for m in run.errors), run.errors
