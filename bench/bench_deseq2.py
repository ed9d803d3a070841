#!/usr/bin/env python
"""Benchmark of the DESeq2 bundle, end to end as the local runner calls it.

    cd /work/main && .venv/bin/python bench/bench_deseq2.py [--genes 20000] [--cpus 1] [--no-r]
        [--compare-default]

Simulates seeded negative-binomial counts (default 20,000 genes x 12 samples, 6 vs 6), runs
`operations/deseq2/main.py inputs.json` in a fresh temporary working directory and prints wall
time, CPU time (user + system of the child; steadier than wall time on a shared machine) and
peak memory (max RSS of the child process). If `Rscript` with DESeq2 is installed, R DESeq2
(DESeq + results, default settings) runs on the same file in the same run as the baseline, and
the time ratio is printed.

`--compare-default` also times `run_deseq2` in this process with pydeseq2's per-gene
`DefaultInference` (the bundle's engine before the vectorised inference) and with the bundle's
`VectorizedInference` on the same data, and prints how far their results are apart.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "operations" / "deseq2"

R_SCRIPT = r"""
suppressPackageStartupMessages(library(DESeq2))
args <- commandArgs(trailingOnly = TRUE)
cnts <- as.matrix(read.delim(args[1], row.names = 1, check.names = FALSE))
cond <- factor(rep(c("base", "exp"), each = ncol(cnts) / 2), levels = c("base", "exp"))
dds <- DESeqDataSetFromMatrix(cnts, data.frame(condition = cond), ~condition)
dds <- DESeq(dds, quiet = TRUE)
res <- results(dds, contrast = c("condition", "exp", "base"))
write.table(as.data.frame(res), args[2], sep = "\t", quote = FALSE)
"""


def simulate(n_genes, n_per_group, seed=42):
    rng = np.random.default_rng(seed)
    mu = np.exp(rng.normal(np.log(150), 1.7, n_genes))
    disp = (0.04 + 1.5 / mu) * np.exp(rng.normal(0, 0.35, n_genes))
    lfc = np.where(rng.random(n_genes) < 0.1, rng.choice([-1, 1], n_genes) * rng.uniform(0.5, 3, n_genes), 0)
    size = rng.uniform(0.6, 1.5, 2 * n_per_group)
    grp = np.repeat([0, 1], n_per_group)
    m = mu[:, None] * size[None, :] * 2.0 ** (lfc[:, None] * grp[None, :])
    r = 1 / disp[:, None]
    counts = rng.negative_binomial(r, r / (r + m))
    cols = [f"base_{i}" for i in range(1, n_per_group + 1)] + [f"exp_{i}" for i in range(1, n_per_group + 1)]
    return pd.DataFrame(counts, index=[f"GENE{i:05d}" for i in range(n_genes)], columns=cols)


def run_measured(cmd, cwd, env=None):
    """Run a child; return (wall seconds, CPU seconds, peak RSS MiB, returncode, stderr tail)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace")
    proc.stdout.read()
    rc = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, rc, err[-2000:]


def compare_default(counts, base, exp, cpus):
    """run_deseq2 with DefaultInference vs VectorizedInference, same process and data."""
    sys.path.insert(0, str(ROOT / "operations"))
    sys.path.insert(0, str(BUNDLE))
    from _common import deseq2_inference
    from deseq2_core import run_deseq2
    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.default_inference import DefaultInference

    run_deseq2(counts.iloc[:200], base, exp, 1)          # imports and warm-up, not timed
    fast_trend = deseq2_inference.VectorizedDeseqDataSet._fit_parametric_dispersion_trend
    results = {}
    for name, inference, trend in (
            # the engine before: per-gene inference and pydeseq2's own trend fit
            ("DefaultInference", DefaultInference(n_cpus=cpus),
             DeseqDataSet._fit_parametric_dispersion_trend),
            ("VectorizedInference", deseq2_inference.VectorizedInference(n_cpus=cpus),
             fast_trend)):
        deseq2_inference.VectorizedDeseqDataSet._fit_parametric_dispersion_trend = trend
        t0, c0 = time.perf_counter(), time.process_time()
        with threadpool_limits(1):                       # BLAS pinned as main.py does
            results[name] = run_deseq2(counts, base, exp, cpus, inference=inference)[0]
        # process_time misses joblib's worker processes when cpus > 1: then read wall time
        print(f"in process, run_deseq2 with {name}: wall {time.perf_counter() - t0:.2f} s, "
              f"CPU (this process) {time.process_time() - c0:.2f} s")
    a, b = results["DefaultInference"], results["VectorizedInference"]
    ok = a.log2FoldChange.notna() & b.log2FoldChange.notna()
    same = ((a.padj.fillna(1) < 0.05) == (b.padj.fillna(1) < 0.05)).mean()
    print(f"Default vs Vectorized: max |d log2FC| = {(a.log2FoldChange - b.log2FoldChange)[ok].abs().max():.2e}, "
          f"r(log2FC) = {np.corrcoef(a.log2FoldChange[ok], b.log2FoldChange[ok])[0, 1]:.10f}, "
          f"same padj<0.05 call = {100 * same:.2f} %, "
          f"same NA padj = {100 * (a.padj.isna() == b.padj.isna()).mean():.2f} %")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--genes", type=int, default=20000)
    ap.add_argument("--per-group", type=int, default=6)
    ap.add_argument("--cpus", type=int, default=int(os.environ.get("MEV_N_CPUS", "1")))
    ap.add_argument("--no-r", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--compare-default", action="store_true",
                    help="also time run_deseq2 in process with pydeseq2's DefaultInference")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench_deseq2_"))
    counts = simulate(args.genes, args.per_group)
    mpath = tmp / "counts.tsv"
    counts.to_csv(mpath, sep="\t", index_label="gene")
    base = [c for c in counts.columns if c.startswith("base_")]
    exp = [c for c in counts.columns if c.startswith("exp_")]
    work = tmp / "work"
    work.mkdir()
    (work / "inputs.json").write_text(json.dumps({
        "raw_counts": str(mpath),
        "base_condition_samples": {"elements": [{"id": s} for s in base]},
        "experimental_condition_samples": {"elements": [{"id": s} for s in exp]},
        "base_condition_name": "base", "experimental_condition_name": "exp"}))
    env = dict(os.environ, MEV_N_CPUS=str(args.cpus), OMP_NUM_THREADS=str(args.cpus))
    print(f"data: {args.genes} genes x {2 * args.per_group} samples ({args.per_group} vs "
          f"{args.per_group}), MEV_N_CPUS={args.cpus}, host cores={os.cpu_count()}, "
          f"load avg={os.getloadavg()[0]:.2f}")
    wall, cpu, rss, rc, err = run_measured(
        [sys.executable, str(BUNDLE / "main.py"), "inputs.json"], work, env)
    if rc != 0:
        print("bundle FAILED:\n" + err)
        sys.exit(1)
    print(f"python bundle (pydeseq2): wall {wall:.1f} s, CPU {cpu:.1f} s, peak RSS {rss:.0f} MiB")
    if args.compare_default:
        compare_default(counts, base, exp, args.cpus)

    if not args.no_r and shutil.which("Rscript"):
        rfile = tmp / "bench.R"
        rfile.write_text(R_SCRIPT)
        rwall, rcpu, rrss, rrc, rerr = run_measured(
            ["Rscript", str(rfile), str(mpath), str(tmp / "r.tsv")], tmp)
        if rrc != 0:
            print("R DESeq2 failed (is r-bioc-deseq2 installed?):\n" + rerr)
        else:
            print(f"R DESeq2 baseline (1 core):  wall {rwall:.1f} s, CPU {rcpu:.1f} s, "
                  f"peak RSS {rrss:.0f} MiB")
            print(f"ratio python/R wall time: {wall / rwall:.2f}x")
            ours = pd.read_csv(work / "deseq2_results.tsv", sep="\t", index_col=0)
            ref = pd.read_csv(tmp / "r.tsv", sep="\t", index_col=0).loc[ours.index]
            ok = ours.log2FoldChange.notna() & ref.log2FoldChange.notna()
            r = np.corrcoef(ours.log2FoldChange[ok], ref.log2FoldChange[ok])[0, 1]
            same = ((ours.padj.fillna(1) < 0.05) == (ref.padj.fillna(1) < 0.05)).mean()
            print(f"agreement with R: r(log2FC) = {r:.6f}, same padj<0.05 call = {100 * same:.2f} %")
    else:
        print("R baseline skipped (Rscript not found or --no-r)")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
