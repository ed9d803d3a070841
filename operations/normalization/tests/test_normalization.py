"""Tests of the RNA-Seq normalization bundle: each method against hand-computed values and
reference values from R (edgeR 3.40.2, DESeq2 1.38.3, metagenomeSeq 1.40.0), and the tool
contract end to end. If Rscript with those packages is installed, a random matrix is also
compared with R directly (skipped otherwise)."""
import json
import shutil
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BUNDLE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BUNDLE.parent))
from _common.testing import (  # noqa: E402
    convert_outputs_with_back_end,
    load_bundle_main,
    parse_spec_with_back_end,
    tool_runner,
)

run_tool = tool_runner(BUNDLE)
parse_with_back_end = partial(parse_spec_with_back_end, BUNDLE)
convert_with_back_end = partial(convert_outputs_with_back_end, BUNDLE)

nm = load_bundle_main(BUNDLE, "normalization_bundle_main")

# 10 genes x 3 samples (columns as in R's matrix(c(...), ncol=3))
SMALL = np.array([[10, 0, 25, 3, 80, 7, 0, 14, 5, 31],
                  [22, 1, 40, 9, 60, 2, 3, 30, 6, 50],
                  [5, 4, 12, 0, 95, 11, 1, 9, 2, 18]], dtype=float).T
# edgeR::calcNormFactors(SMALL, method="TMM")
R_TMM = [1.05455886297689960, 1.38455801629459696, 0.68488556913994925]
# DESeq2::estimateSizeFactorsForMatrix(SMALL + 1)
R_SF = [1.02854711782082919, 1.66461817071434237, 0.60194343525097982]
# a matrix whose CSS percentile is data driven (> 0.5); genes x samples A, B, C
CSS_COUNTS = np.array([[10, 0, 0, 14, 0, 0, 26, 0],
                       [0, 1, 9, 2, 12, 600, 25, 23],
                       [22, 17, 6, 11, 7, 200, 0, 11]], dtype=float).T


def frame(values, cols=None):
    values = np.asarray(values, dtype=float)
    cols = cols or [f"S{j + 1}" for j in range(values.shape[1])]
    return pd.DataFrame(values, index=[f"g{i + 1}" for i in range(values.shape[0])], columns=cols)


def test_spec():
    spec = json.loads((BUNDLE / "operation_spec.json").read_text())
    parse_with_back_end(spec)
    assert spec["name"] == "RNA-Seq normalization"
    assert spec["mode"] == "local" and spec["workspace_operation"] is True
    assert set(spec["inputs"]) == {"raw_counts", "normalization_method", "log_transform"}
    assert spec["inputs"]["normalization_method"]["spec"]["options"] == ["CSS", "TSS", "DESeq2",
                                                                         "TMM", "UQ"]
    assert spec["inputs"]["raw_counts"]["spec"]["many"] is False
    assert spec["outputs"]["normalized_counts"]["spec"]["resource_type"] == "EXP_MTX"
    sys.path.insert(0, str(BUNDLE.parent.parent))
    converters = pytest.importorskip("mev.operations.converters")
    attribute_types = pytest.importorskip("mev.operations.attribute_types")
    for item in [*spec["inputs"].values(), *spec["outputs"].values()]:
        converters.canonical_converter_id(item["converter"])
        attribute_types.check_attribute_spec(
            item["spec"], known_resource_types={"MTX", "I_MTX", "EXP_MTX", "RNASEQ_COUNT_MTX"})


def test_tss_by_hand():
    out = nm.tss(np.array([[1.0, 3.0], [3.0, 1.0]]))
    assert np.allclose(out, [[0.25, 0.75], [0.75, 0.25]])


def test_deseq2_by_hand():
    # geometric means 4, 3, 20 (g4 has a zero and is ignored); ratios S1 .5,1,.5; S2 2,1,2
    counts = np.array([[2, 8], [3, 3], [10, 40], [0, 7]], dtype=float)
    sf = nm.deseq2_size_factors(counts)
    assert np.allclose(sf, [0.5, 2.0])
    assert np.allclose(nm.deseq2(counts), counts / [0.5, 2.0])


def test_deseq2_matches_r():
    assert np.allclose(nm.deseq2_size_factors(SMALL + 1), R_SF, rtol=1e-13)


def test_tmm_matches_edger():
    assert np.allclose(nm.tmm_factors(SMALL), R_TMM, rtol=1e-13)
    lib = SMALL.sum(axis=0) * np.array(R_TMM)
    assert np.allclose(nm.tmm(SMALL), SMALL / lib * 1e6, rtol=1e-13)


def test_tmm_identical_samples_have_factor_one():
    counts = np.column_stack([SMALL[:, 0], SMALL[:, 0] * 3])  # same composition, 3x depth
    assert np.allclose(nm.tmm_factors(counts), [1.0, 1.0])
    cpm = nm.tmm(counts)
    assert np.allclose(cpm[:, 0], cpm[:, 1])
    assert np.allclose(cpm.sum(axis=0), 1e6)


def test_uq_by_hand():
    # non-zero counts of S1: 1,2,3,4 -> 75th percentile (R type 7) = 3.25; S2: 2,4,6,8 -> 6.5
    counts = np.array([[0, 2], [1, 4], [2, 0], [3, 6], [4, 8]], dtype=float)
    assert np.allclose(nm.uq(counts), counts / [3.25, 6.5])


def test_css_by_hand_and_against_metagenomeseq():
    # cumNormStatFast = 4/7; per-sample sums of non-zero counts up to that quantile: 24, 24, 35
    assert nm.css_percentile(CSS_COUNTS) == pytest.approx(4 / 7)
    factors = nm.css_factors(CSS_COUNTS, 4 / 7)
    assert np.allclose(factors, [24, 24, 35])
    out = nm.css(CSS_COUNTS)
    assert np.allclose(out[:, :2], CSS_COUNTS[:, :2])
    assert np.allclose(out[:, 2], CSS_COUNTS[:, 2] * 24 / 35)
    # values printed by metagenomeSeq 1.40 MRcounts(norm=TRUE, sl=median(normFactors))
    assert out[0, 2] == pytest.approx(15.0857142857142872, rel=1e-14)
    assert out[5, 2] == pytest.approx(137.1428571428571388, rel=1e-14)


def test_css_default_percentile_is_half():
    rng = np.random.default_rng(0)
    counts = rng.poisson(50, size=(40, 4)).astype(float)
    assert nm.css_percentile(counts) == 0.5


def test_log_transform():
    df = frame([[1.0, 3.0], [3.0, 1.0]])
    out = nm.normalize(df, "TSS", log_transform=True)
    assert np.allclose(out.to_numpy(), np.log2(np.array([[0.25, 0.75], [0.75, 0.25]]) + 1))


@pytest.mark.parametrize("method", ["CSS", "TSS", "DESeq2", "TMM", "UQ"])
def test_run_end_to_end(tmp_path, method):
    df = frame(SMALL + 1, cols=["ctrl_1", "ctrl-2", "trt.1"])
    path = tmp_path / "counts.tsv"
    df.astype(int).to_csv(path, sep="\t", index_label="GeneSymbol")
    rc, outputs, errors, work = run_tool(tmp_path, {
        "raw_counts": str(path), "normalization_method": method, "log_transform": True,
        "job_name": "n"})
    assert rc == 0, errors
    convert_with_back_end(outputs)
    name = outputs["normalized_counts"]
    assert name == f"normalized_counts.{method}.log_transformed.tsv"
    out = pd.read_csv(work / name, sep="\t", index_col=0)
    assert out.index.name == "GeneSymbol"
    assert list(out.columns) == ["ctrl_1", "ctrl-2", "trt.1"]
    expected = nm.normalize(df, method, log_transform=True)
    assert np.allclose(out.to_numpy(), expected.to_numpy(), rtol=1e-9)
    assert np.isfinite(out.to_numpy()).all()


def test_run_without_log(tmp_path):
    path = tmp_path / "counts.tsv"
    frame([[1, 3], [3, 1]]).astype(int).to_csv(path, sep="\t")
    rc, outputs, errors, work = run_tool(tmp_path, {
        "raw_counts": str(path), "normalization_method": "TSS", "log_transform": None})
    assert rc == 0, errors
    assert outputs["normalized_counts"] == "normalized_counts.TSS.tsv"
    out = pd.read_csv(work / outputs["normalized_counts"], sep="\t", index_col=0)
    assert np.allclose(out.to_numpy(), [[0.25, 0.75], [0.75, 0.25]])


@pytest.mark.parametrize("text, method, needle", [
    ("gene\tA\tB\tC\ng1\t1\t0\t3\ng2\t4\t0\t6\n", "TSS", "cannot be normalized: B"),
    ("gene\tA\tB\ng1\t1\t-2\ng2\t4\t5\n", "UQ", "negative"),
    ("gene\tA\tB\ng1\t1\t\ng2\t4\t5\n", "TMM", "missing"),
    ("gene\tA\tB\ng1\t1\tx\ng2\t4\t5\n", "TMM", "'x'"),
    ("gene\tA\tB\ng1\t0\t2\ng2\t4\t0\n", "DESeq2", "every gene has a zero"),
    ("gene\tA\tB\ng1\t0\t2\ng2\t4\t3\ng3\t0\t1\n", "CSS", "fewer: A"),
    ("gene\tA\tB\ng1\t1\t2\n", "quantile", "CSS, TSS"),
    ("gene\tA\tB\ng1\t1\t2\n", None, "normalization_method"),
])
def test_user_errors(tmp_path, text, method, needle):
    path = tmp_path / "c.tsv"
    path.write_text(text)
    rc, outputs, errors, _ = run_tool(tmp_path, {"raw_counts": str(path),
                                                 "normalization_method": method})
    assert rc != 0 and outputs is None
    assert errors and any(needle in e for e in errors), errors


R_SCRIPT = r"""
suppressMessages({library(edgeR); library(DESeq2); library(metagenomeSeq); library(matrixStats)})
counts <- read.table('c.tsv', sep='\t', header=TRUE, row.names=1, check.names=FALSE)
obj <- cumNorm(newMRexperiment(counts), p=suppressMessages(cumNormStatFast(newMRexperiment(counts))))
write.table(MRcounts(obj, log=FALSE, norm=TRUE, sl=median(normFactors(obj))), 'CSS.tsv', sep='\t', quote=FALSE)
write.table(sweep(counts, 2, estimateSizeFactorsForMatrix(as.matrix(counts)), '/'), 'DESeq2.tsv', sep='\t', quote=FALSE)
d <- edgeR::calcNormFactors(DGEList(counts, lib.size=colSums(counts)), method='TMM')
write.table(edgeR::cpm(d, normalized.lib.sizes=TRUE), 'TMM.tsv', sep='\t', quote=FALSE)
y <- as.matrix(counts); y[y == 0] <- NA
write.table(sweep(counts, 2, colQuantiles(y, p=0.75, na.rm=TRUE), '/'), 'UQ.tsv', sep='\t', quote=FALSE)
write.table(sweep(counts, 2, colSums(counts), '/'), 'TSS.tsv', sep='\t', quote=FALSE)
"""


def _r_available():
    if not shutil.which("Rscript"):
        return False
    probe = subprocess.run(["Rscript", "-e", "library(edgeR); library(DESeq2); library(metagenomeSeq)"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _r_available(), reason="Rscript with edgeR, DESeq2, metagenomeSeq not installed")
def test_against_r_on_random_counts(tmp_path):
    rng = np.random.default_rng(42)
    counts = rng.negative_binomial(3, 0.02, size=(300, 6))
    counts[:30, 1] = 0
    counts[50:60, :] = 0
    df = frame(counts)
    df.astype(int).to_csv(tmp_path / "c.tsv", sep="\t")
    (tmp_path / "ref.R").write_text(R_SCRIPT)
    subprocess.run(["Rscript", "ref.R"], cwd=tmp_path, check=True, capture_output=True)
    for method in nm.METHODS:
        ref = pd.read_csv(tmp_path / f"{method}.tsv", sep="\t", index_col=0)
        ours = nm.normalize(df, method)
        assert np.allclose(ours.to_numpy(), ref.to_numpy(), rtol=1e-12), method
