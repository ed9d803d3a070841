"""Test helpers for bundles: run a bundle as the local runner does, compare to R references.

- ``run_bundle(bundle_dir, inputs, workdir, n_cpus=1) -> BundleRun``: writes inputs.json in a
  fresh ``workdir`` and runs ``<venv python> <bundle>/main.py inputs.json`` there (no shell).
- ``tool_runner(bundle_dir, timeout=120)`` -> ``run_tool(tmp_path, inputs)`` returning
  ``(returncode, outputs, errors, workdir)``: ``run_bundle`` in ``tmp_path / "work"``.
- ``parse_spec_with_back_end(bundle_dir, spec_doc)``: the whole spec as ``mev.operations``
  ingests it (mode "local", main.py present); skipped when the back end is not importable.
- ``convert_outputs_with_back_end(bundle_dir, outputs) -> dict``: every output value of the
  bundle's spec as the runner converts it (files are checked for their type).
- ``load_bundle_main(bundle_dir, alias)``: import ``<bundle>/main.py`` under a unique name.
- ``REFERENCE_DIR``: /work/main/tests/reference (committed R outputs, see its README).
- ``de_agreement(ours_lfc, ours_padj, ref_lfc, ref_padj) -> dict``: Pearson r of the log2 fold
  changes (genes finite in both) and the fraction of genes with the same call at padj < 0.05
  (NA counts as not significant).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[2]
REFERENCE_DIR = REPO_ROOT / "tests" / "reference"
BACK_END_RESOURCE_TYPES = frozenset({"MTX", "I_MTX", "EXP_MTX", "RNASEQ_COUNT_MTX", "JSON"})


@dataclass
class BundleRun:
    returncode: int
    outputs: dict | None
    errors: list | None
    stdout: str
    stderr: str
    workdir: Path


# The two groups of the committed two-group references (tests/reference/counts_2group.tsv).
REFERENCE_BASE = [f"ctrl_{i}" for i in range(1, 5)]
REFERENCE_EXP = [f"trt_{i}" for i in range(1, 5)]


def sample_set(ids, name: str = "s") -> dict:
    """An ObservationSet as the web client sends it."""
    return {"name": name, "elements": [{"id": i} for i in ids]}


def two_group_inputs(path, base=REFERENCE_BASE, exp=REFERENCE_EXP, **overrides) -> dict:
    """inputs.json of a two-group differential-expression bundle (DESeq2, edgeR, Limma/voom)."""
    inputs = {"raw_counts": str(path), "base_condition_samples": sample_set(base, "ctrl"),
              "experimental_condition_samples": sample_set(exp, "trt"),
              "base_condition_name": "ctrl", "experimental_condition_name": "trt"}
    inputs.update(overrides)
    return inputs


def run_bundle(bundle_dir, inputs: dict, workdir, n_cpus: int = 1, timeout: int = 900) -> BundleRun:
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "inputs.json").write_text(json.dumps(inputs))
    env = dict(os.environ)
    env.update({"MEV_N_CPUS": str(n_cpus), "OMP_NUM_THREADS": str(n_cpus)})
    proc = subprocess.run([sys.executable, str(Path(bundle_dir) / "main.py"), "inputs.json"],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    outputs = errors = None
    if (workdir / "outputs.json").exists():
        outputs = json.loads((workdir / "outputs.json").read_text())
    if (workdir / "errors.json").exists():
        errors = json.loads((workdir / "errors.json").read_text())
    return BundleRun(proc.returncode, outputs, errors, proc.stdout, proc.stderr, workdir)


def tool_runner(bundle_dir, timeout: int = 120):
    """``run_tool(tmp_path, inputs) -> (returncode, outputs, errors, workdir)`` for one bundle:
    ``run_bundle`` in a fresh ``tmp_path / "work"``."""
    def run_tool(tmp_path, inputs):
        result = run_bundle(bundle_dir, inputs, Path(tmp_path) / "work", timeout=timeout)
        return result.returncode, result.outputs, result.errors, result.workdir
    return run_tool


def parse_spec_with_back_end(bundle_dir, spec_doc, known_resource_types=BACK_END_RESOURCE_TYPES):
    """The whole spec as mev.operations ingests it (mode "local", main.py present)."""
    import pytest
    sys.path.insert(0, str(REPO_ROOT))
    spec_module = pytest.importorskip("mev.operations.spec")
    return spec_module.parse_operation_spec(
        spec_doc, known_resource_types=set(known_resource_types), known_modes={"local"},
        bundle_dir=Path(bundle_dir))


def convert_outputs_with_back_end(bundle_dir, outputs: dict) -> dict:
    """Every output value as the runner converts it (files are checked for their type)."""
    import pytest
    sys.path.insert(0, str(REPO_ROOT))
    converters = pytest.importorskip("mev.operations.converters")
    spec = json.loads((Path(bundle_dir) / "operation_spec.json").read_text())
    return {key: converters.convert_output(out["converter"], outputs.get(key), output_spec=out)
            for key, out in spec["outputs"].items()}


def read_output_table(run: BundleRun, key: str) -> pd.DataFrame:
    value = run.outputs[key]
    path = value["path"] if isinstance(value, dict) else value
    path = Path(path) if os.path.isabs(path) else run.workdir / path
    return pd.read_csv(path, sep="\t", index_col=0)


def de_agreement(ours_lfc, ours_padj, ref_lfc, ref_padj, cutoff: float = 0.05) -> dict:
    df = pd.DataFrame({"a": ours_lfc, "b": ref_lfc, "pa": ours_padj, "pb": ref_padj})
    both = np.isfinite(df.a) & np.isfinite(df.b)
    r = float(np.corrcoef(df.a[both], df.b[both])[0, 1])
    sa = df.pa.fillna(1.0) < cutoff
    sb = df.pb.fillna(1.0) < cutoff
    return {"r_lfc": r, "call_agreement": float((sa == sb).mean()), "n": int(len(df)),
            "n_sig_ours": int(sa.sum()), "n_sig_ref": int(sb.sum())}


def load_bundle_main(bundle_dir, alias: str):
    """Import ``<bundle>/main.py`` under a unique module name (every bundle has a main.py, so a
    plain ``import main`` collides when several bundles are tested in one session)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(alias, Path(bundle_dir) / "main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
