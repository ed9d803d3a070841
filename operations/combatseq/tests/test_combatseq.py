"""ComBat-seq bundle tests: tool contract, validation, units and agreement with R sva 3.46
ComBat_seq (committed references; R not needed at test time)."""
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
    load_bundle_main,  # noqa: E402
    read_output_table,
    run_bundle,
)
from combatseq_core import match_quantiles, nb_glm_fit  # noqa: E402

covariate_names = load_bundle_main(BUNDLE, "combatseq_main").covariate_names

COUNTS = REFERENCE_DIR / "counts_batch.tsv"
ANN = REFERENCE_DIR / "annotations_batch.tsv"


def _agreement(ours, ref):
    ours = ours.loc[ref.index, ref.columns].to_numpy(float).ravel()
    ref = ref.to_numpy(float).ravel()
    return np.corrcoef(ours, ref)[0, 1], np.corrcoef(np.log1p(ours), np.log1p(ref))[0, 1], \
        float(np.mean(np.abs(ours - ref) <= 1))


@pytest.mark.parametrize("covs,ref_name", [(None, "combatseq_adjusted.tsv.gz"),
                                            (["condition"], "combatseq_adjusted_covar.tsv.gz")])
def test_agreement_with_R(tmp_path, covs, ref_name):
    run = run_bundle(BUNDLE, {"raw_counts": str(COUNTS), "annotations": str(ANN),
                              "batch_variable_choice": "batch", "other_covariates": covs},
                     tmp_path)
    assert run.returncode == 0, run.stderr
    ours = read_output_table(run, "adjusted_counts")
    ref = pd.read_csv(REFERENCE_DIR / ref_name, sep="\t", index_col=0)
    assert list(ours.columns) == list(ref.columns) and ours.shape == ref.shape
    assert (ours.to_numpy() == np.round(ours.to_numpy())).all() and (ours.to_numpy() >= 0).all()
    r, rlog, within1 = _agreement(ours, ref)
    print(ref_name, r, rlog, within1)
    assert r >= 0.999 and rlog >= 0.999 and within1 >= 0.9


def test_column_order_follows_annotations(tmp_path):
    c = pd.read_csv(COUNTS, sep="\t", index_col=0)
    c = c[c.columns[::-1]]
    p = tmp_path / "c.tsv"
    c.to_csv(p, sep="\t", index_label="gene")
    run = run_bundle(BUNDLE, {"raw_counts": str(p), "annotations": str(ANN)}, tmp_path / "w")
    assert run.returncode == 0, run.stderr
    ours = read_output_table(run, "adjusted_counts")
    assert list(ours.columns) == list(pd.read_csv(ANN, sep="\t", index_col=0).index)


def test_errors(tmp_path):
    ann = pd.read_csv(ANN, sep="\t", index_col=0)
    a2 = ann.drop(index="s03")
    p = tmp_path / "a.tsv"
    a2.to_csv(p, sep="\t", index_label="sample")
    run = run_bundle(BUNDLE, {"raw_counts": str(COUNTS), "annotations": str(p)}, tmp_path / "w1")
    assert run.returncode != 0 and any("s03" in m for m in run.errors), run.errors
    # condition confounded with batch
    a3 = ann.copy()
    a3["cond2"] = a3["batch"] + "_x"
    a3.to_csv(p, sep="\t", index_label="sample")
    run = run_bundle(BUNDLE, {"raw_counts": str(COUNTS), "annotations": str(p),
                              "other_covariates": "cond2"}, tmp_path / "w2")
    assert run.returncode != 0 and any("confounded" in m for m in run.errors), run.errors
    run = run_bundle(BUNDLE, {"raw_counts": str(COUNTS), "annotations": str(ANN),
                              "batch_variable_choice": "lane"}, tmp_path / "w3")
    assert run.returncode != 0 and any("'lane'" in m for m in run.errors)
    a4 = ann.copy()
    a4.loc["s01", "batch"] = "b3"
    a4.to_csv(p, sep="\t", index_label="sample")
    run = run_bundle(BUNDLE, {"raw_counts": str(COUNTS), "annotations": str(p)}, tmp_path / "w4")
    assert run.returncode != 0 and any("single sample" in m for m in run.errors), run.errors


def test_units():
    assert covariate_names(None) == [] and covariate_names(3) == ["3"]
    assert covariate_names(["a", "b", "a"]) == ["a", "b"]
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(8), np.r_[np.zeros(4), np.ones(4)]])
    mu_true = np.exp(np.log(50) + 0.7 * X[:, 1])
    y = rng.negative_binomial(10, 10 / (10 + mu_true), size=(20, 8)).astype(float)
    beta, mu = nb_glm_fit(y, X, np.zeros(8), np.full(20, 0.1))
    # score equations of the NB GLM are zero at the MLE
    w = (y - mu) / (1 + 0.1 * mu)
    assert np.allclose(w @ X, 0, atol=1e-6)
    # identical old and new laws leave counts unchanged
    same = match_quantiles(y, mu, np.full(20, 0.1), mu, np.full(20, 0.1))
    assert np.array_equal(same, y)
