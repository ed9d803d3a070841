"""edgeR bundle tests: tool contract, validation, math units and agreement with R edgeR 3.40.2
(committed references; R not needed at test time)."""
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BUNDLE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BUNDLE.parent))
sys.path.insert(0, str(BUNDLE))
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
from edger_core import fit_oneway, maximize_interpolant, natural_spline_basis, nb_deviance  # noqa: E402

BASE, EXP = REFERENCE_BASE, REFERENCE_EXP
_set = sample_set


def _inputs(path, base=BASE, exp=EXP, **kw):
    return two_group_inputs(path, base, exp, **kw)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    run = run_bundle(BUNDLE, _inputs(REFERENCE_DIR / "counts_2group.tsv"),
                     tmp_path_factory.mktemp("edger"))
    assert run.returncode == 0, run.stderr
    return run


def test_output_format(reference_run):
    res = read_output_table(reference_run, "dge_results")
    assert list(res.columns) == ["log2FoldChange", "logCPM", "statistic", "pvalue",
                                 "padj"] + BASE + EXP
    assert res.shape[0] == 2000 and res.pvalue.is_monotonic_increasing
    norm = read_output_table(reference_run, "normalized_counts")
    assert list(norm.columns) == BASE + EXP
    assert np.allclose(norm.sum(axis=0), 1e6, rtol=0.2)


def test_agreement_with_R(reference_run):
    ours = read_output_table(reference_run, "dge_results")
    ref = pd.read_csv(REFERENCE_DIR / "edger_results.tsv.gz", sep="\t", index_col=0)
    ours = ours.loc[ref.index]
    agr = de_agreement(ours.log2FoldChange, ours.padj, ref.logFC, ref.FDR)
    print(agr)
    assert agr["r_lfc"] >= 0.999 and agr["call_agreement"] >= 0.995
    assert np.allclose(ours.logCPM, ref.logCPM, atol=1e-6)
    assert np.corrcoef(np.log10(ours.pvalue), np.log10(ref.PValue))[0, 1] > 0.9999
    common = float(open(REFERENCE_DIR / "edger_dispersion.txt").read().split()[1])
    assert "common dispersion" in reference_run.stdout
    ours_common = float(reference_run.stdout.split("common dispersion")[1].split(",")[0])
    assert abs(ours_common - common) / common < 1e-4


def test_oneway_fit_and_deviance():
    rng = np.random.default_rng(0)
    y = rng.negative_binomial(5, 5 / (5 + 40), size=(50, 6)).astype(float)
    y[0, 3:] = 0
    off = np.log(np.array([1.0, 1.2, 0.8, 1.1, 0.9, 1.0]))
    groups = np.array([0, 0, 0, 1, 1, 1])
    beta, mu = fit_oneway(y, off, groups, 0.2)
    score = ((y - mu) / (1 + 0.2 * mu))
    assert np.allclose(score[:, :3].sum(axis=1), 0, atol=1e-6)
    assert np.isneginf(beta[0, 1]) and np.all(mu[0, 3:] == 0)
    assert np.all(nb_deviance(y, mu, np.full(50, 0.2)) >= 0)
    # Poisson limit: deviance ~ Poisson deviance
    _, mu_p = fit_oneway(y, off, groups, 1e-10)
    assert np.allclose(mu_p[:, :3].sum(axis=1), y[:, :3].sum(axis=1))


def test_maximize_interpolant_and_spline():
    x = np.linspace(-10, 10, 21)
    ll = -(x[None, :] - np.array([[1.3], [-4.72]])) ** 2
    assert np.allclose(maximize_interpolant(x, ll), [1.3, -4.72], atol=1e-3)
    cov = np.linspace(0, 5, 100)
    B = natural_spline_basis(cov, 4)
    assert B.shape == (100, 4) and np.linalg.matrix_rank(B) == 4


@pytest.mark.parametrize("kwargs,needle", [
    (dict(base=BASE, exp=EXP + ["ctrl_2"]), "ctrl_2"),
    (dict(base=["ctrl_1"], exp=EXP), "at least 2 samples"),
    (dict(base=BASE, exp=EXP + ["ghost"]), "ghost"),
])
def test_set_errors(tmp_path, kwargs, needle):
    run = run_bundle(BUNDLE, _inputs(REFERENCE_DIR / "counts_2group.tsv", **kwargs), tmp_path)
    assert run.returncode != 0 and any(needle in m for m in run.errors), run.errors


def test_non_integer_rejected(tmp_path):
    df = pd.read_csv(REFERENCE_DIR / "counts_2group.tsv", sep="\t", index_col=0).astype(float)
    df.loc["GENE0100", "trt_3"] = 1.5
    p = tmp_path / "m.tsv"
    df.to_csv(p, sep="\t", index_label="gene")
    run = run_bundle(BUNDLE, _inputs(p), tmp_path / "w")
    assert run.returncode != 0
    assert any("GENE0100" in m and "trt_3" in m and "1.5" in m for m in run.errors), run.errors
