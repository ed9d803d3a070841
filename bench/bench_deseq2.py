#!/usr/bin/env python
"""Benchmark of the DESeq2 bundle, end to end as the local runner calls it.

    cd /work/main && .venv/bin/python bench/bench_deseq2.py [--genes 20000] [--cpus 1] [--no-r]

Simulates seeded negative-binomial counts (default 20,000 genes x 12 samples, 6 vs 6), runs
`operations/deseq2/main.py inputs.json` in a fresh temporary working directory and prints wall
time and peak memory (max RSS of the child process). If `Rscript` with DESeq2 is installed, R
DESeq2 (DESeq + results, default settings) runs on the same file in the same run as the
baseline, and the time ratio is printed.
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
    """Run a child; return (wall seconds, peak RSS MiB, returncode, stderr tail)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace")
    proc.stdout.read()
    rc = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024.0, rc, err[-2000:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--genes", type=int, default=20000)
    ap.add_argument("--per-group", type=int, default=6)
    ap.add_argument("--cpus", type=int, default=int(os.environ.get("MEV_N_CPUS", "1")))
    ap.add_argument("--no-r", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
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
    wall, rss, rc, err = run_measured([sys.executable, str(BUNDLE / "main.py"), "inputs.json"],
                                      work, env)
    if rc != 0:
        print("bundle FAILED:\n" + err)
        sys.exit(1)
    print(f"python bundle (pydeseq2): wall {wall:.1f} s, peak RSS {rss:.0f} MiB")

    if not args.no_r and shutil.which("Rscript"):
        rfile = tmp / "bench.R"
        rfile.write_text(R_SCRIPT)
        rwall, rrss, rrc, rerr = run_measured(["Rscript", str(rfile), str(mpath), str(tmp / "r.tsv")],
                                              tmp)
        if rrc != 0:
            print("R DESeq2 failed (is r-bioc-deseq2 installed?):\n" + rerr)
        else:
            print(f"R DESeq2 baseline (1 core):  wall {rwall:.1f} s, peak RSS {rrss:.0f} MiB")
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
