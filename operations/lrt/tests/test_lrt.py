"""Likelihood ratio test bundle: tool contract, validation, units, agreement with R DESeq2
1.38.3 LRT (committed reference; R not needed at test time)."""
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BUNDLE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BUNDLE.parent))
sys.path.insert(0, str(BUNDLE))
from _common.testing import (  # noqa: E402
    REFERENCE_DIR,
    de_agreement,
    load_bundle_main,  # noqa: E402
    read_output_table,
    run_bundle,
)
from lrt_core import group_mle, independent_filtering  # noqa: E402

order_levels = load_bundle_main(BUNDLE, "lrt_main").order_levels

COUNTS = REFERENCE_DIR / "counts_3group.tsv"
ANN = REFERENCE_DIR / "annotations_3group.tsv"


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    run = run_bundle(BUNDLE, {"raw_counts": str(COUNTS), "annotations": str(ANN),
                              "covariate": "group", "job_name": "x"},
                     tmp_path_factory.mktemp("lrt"))
    assert run.returncode == 0, run.stderr
    return run


def test_outputs(reference_run):
    out = reference_run.outputs
    assert out["lfc_comparison"] == "C vs A"
    assert out["sample_to_group_mapping"] == {g: [f"{g}_{i}" for i in (1, 2, 3)] for g in "ABC"}
    res = read_output_table(reference_run, "dge_results")
    header = (reference_run.workdir / out["dge_results"]).read_text().split("\t")[0]
    assert header == "Gene"
    samples = [f"{g}_{i}" for g in "ABC" for i in (1, 2, 3)]
    assert list(res.columns) == ["baseMean", "log2FoldChange", "statistic", "pvalue", "padj"] + samples
    p = res.pvalue.dropna()
    assert p.is_monotonic_increasing and res.pvalue.isna().sum() == 3  # all-zero genes last


def test_agreement_with_R(reference_run):
    ours = read_output_table(reference_run, "dge_results")
    ref = pd.read_csv(REFERENCE_DIR / "lrt_results.tsv.gz", sep="\t", index_col=0)
    ours = ours.loc[ref.index]
    agr = de_agreement(ours.log2FoldChange, ours.padj, ref.log2FoldChange, ref.padj)
    print(agr)
    # measured: r = 0.9999999915, calls 218/218 identical; margins for platform rounding
    assert agr["r_lfc"] >= 0.9999999 and agr["call_agreement"] >= 0.999
    assert np.allclose(ours.baseMean, ref.baseMean, rtol=1e-6)
    m = ours.statistic.notna() & ref.stat.notna()
    assert np.corrcoef(ours.statistic[m], ref.stat[m])[0, 1] > 0.995
    # independent filtering removes the same low-count genes
    assert (ours.padj.isna() == ref.padj.isna()).mean() >= 0.995


def test_units():
    assert order_levels(["b", "A", "c"]) == ["A", "b", "c"]
    assert order_levels(["10", "9", "2"]) == ["2", "9", "10"]
    rng = np.random.default_rng(0)
    y = rng.poisson(20, (30, 6)).astype(float)
    sf = np.array([1, 1.2, 0.8, 1, 1.1, 0.9])
    mu = group_mle(y, sf, np.array([0, 0, 0, 1, 1, 1]), np.full(30, 1e-8))
    assert np.allclose(mu[:, :3].sum(1), y[:, :3].sum(1), rtol=1e-6)
    p = np.r_[rng.uniform(size=900), rng.uniform(0, 1e-4, 100)]
    bm = np.r_[rng.uniform(0, 5, 900), rng.uniform(50, 100, 100)]
    padj = independent_filtering(bm, p)
    assert np.isnan(padj).sum() > 0 and (padj[-100:] < 0.1).all()


def _write(tmp_path, ann_rows, counts=None):
    c = pd.read_csv(COUNTS, sep="\t", index_col=0) if counts is None else counts
    cp = tmp_path / "c.tsv"
    c.to_csv(cp, sep="\t", index_label="gene")
    ap = tmp_path / "a.tsv"
    pd.DataFrame(ann_rows, columns=["sample", "group"]).to_csv(ap, sep="\t", index=False)
    return cp, ap


def test_errors(tmp_path):
    samples = [f"{g}_{i}" for g in "ABC" for i in (1, 2, 3)]
    cp, ap = _write(tmp_path, [(s, "X" if s != "A_1" else "Y") for s in samples])
    run = run_bundle(BUNDLE, {"raw_counts": str(cp), "annotations": str(ap), "covariate": "group"},
                     tmp_path / "w1")
    assert run.returncode != 0 and any("Y (1)" in m for m in run.errors), run.errors
    run = run_bundle(BUNDLE, {"raw_counts": str(cp), "annotations": str(ap), "covariate": "nope"},
                     tmp_path / "w2")
    assert run.returncode != 0 and any("'nope'" in m for m in run.errors)
    run = run_bundle(BUNDLE, {"raw_counts": str(cp), "annotations": str(ap), "covariate": None},
                     tmp_path / "w3")
    assert run.returncode != 0 and any("covariate" in m for m in run.errors)
    cp, ap = _write(tmp_path, [(s, "same") for s in samples])
    run = run_bundle(BUNDLE, {"raw_counts": str(cp), "annotations": str(ap), "covariate": "group"},
                     tmp_path / "w4")
    assert run.returncode != 0 and any("between 2 and 10 groups" in m for m in run.errors)
