"""Time validation + standard TSV + Parquet of a 60,000 x 500 integer count matrix.

Prints medians for: our validate_resource (RNASEQ_COUNT_MTX, tsv and csv input; tsv also without
the Parquet write, and pinned to one core), pandas read_csv + to_csv of the same file, and
sha256sum of the file, with the ratios between them, then where our time goes: the median of
each phase of TableType.validate (parse = read + parse, checks, standard TSV, Parquet,
metadata), and what the fast count parse (mev/resource_types/fastparse.py, numba) costs the first
time in a new process, without and with numba's on-disk cache (the timed runs above are medians,
so the first run of this process, which pays that, does not weigh on them). Both wall-clock and
CPU time (all threads, plus child processes for sha256sum) are shown: on a shared, busy machine
the CPU time is the steadier measure of the work done, and it is what one core would have to do.
The tsv input already has the standard header, so its standard TSV is a hard link of the input
(a "gene" header cell would cost a kernel copy, ~0.03-0.08 s); the csv input is rewritten byte
by byte (commas to tabs).

    .venv/bin/python bench/bench_validation.py [--rows 60000] [--cols 500] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mev.resource_types import registry, table_store  # noqa: E402
from mev.resource_types.validation import validate_resource  # noqa: E402


def make_matrix(path: Path, *, rows: int, cols: int, delimiter: str, seed: int = 20240601) -> None:
    rng = np.random.default_rng(seed)
    # Mostly one- and two-digit counts with a long tail, like real RNA-seq: ~82 MB as TSV.
    counts = rng.negative_binomial(1, 0.08, size=(rows, cols)).astype(np.int64)
    names = ["gene"] + [f"S{j + 1}" for j in range(cols)]
    arrays = [pa.array([f"ENSG{i:011d}" for i in range(rows)])] + [
        pa.array(counts[:, j]) for j in range(cols)
    ]
    table = pa.table(arrays, names=names)
    with path.open("wb") as handle:
        handle.write((delimiter.join(["", *names[1:]]) + "\n").encode())
        pacsv.write_csv(
            table,
            handle,
            write_options=pacsv.WriteOptions(include_header=False, delimiter=delimiter, quoting_style="none"),
        )


def _cpu() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def median_time(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall-clock and median CPU seconds over ``repeat`` runs."""
    walls, cpus = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), _cpu()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(_cpu() - start_cpu)
    return statistics.median(walls), statistics.median(cpus)


class Phases:
    """Collects registry.phase_listener calls: phase -> list of (wall, cpu) seconds."""

    def __init__(self) -> None:
        self.seen: dict[str, list[tuple[float, float]]] = {}

    def __call__(self, phase: str, wall: float, cpu: float) -> None:
        self.seen.setdefault(phase, []).append((wall, cpu))

    def line(self) -> str:
        parts = []
        for phase, times in self.seen.items():
            wall = statistics.median(t[0] for t in times)
            cpu = statistics.median(t[1] for t in times)
            parts.append(f"{phase} {wall:.3f}/{cpu:.3f}")
        return ", ".join(parts)


def timed_phases(fn: Callable[[], object], repeat: int) -> tuple[tuple[float, float], Phases]:
    phases = Phases()
    registry.phase_listener = phases
    try:
        return median_time(fn, repeat), phases
    finally:
        registry.phase_listener = None


def _pin_threads(cpus: set[int]) -> None:
    """Set the CPU affinity of every thread of this process (Linux; elsewhere the calling one)."""
    tids = [int(t) for t in os.listdir("/proc/self/task")] if os.path.isdir("/proc/self/task") else [0]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cpus)
        except ProcessLookupError:
            pass  # the thread ended meanwhile


def on_one_core(fn: Callable[[], tuple[float, float]]) -> tuple[float, float] | None:
    """Run ``fn`` with every thread of the process pinned to one CPU and pyarrow told so."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpus = os.sched_getaffinity(0)
    arrow_cpus = pa.cpu_count()
    pa.set_cpu_count(1)
    _pin_threads({min(cpus)})
    try:
        return fn()
    finally:
        _pin_threads(cpus)
        pa.set_cpu_count(arrow_cpus)


_JIT_PROBE = """
import sys, time
start = time.perf_counter()
import numba  # noqa: F401
imported = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from mev.resource_types import fastparse
loaded = time.perf_counter()
fastparse.warm_up()
print(imported - start, loaded - imported, time.perf_counter() - loaded)
"""


def jit_cost() -> list[tuple[str, float, float, float]]:
    """What the fast parse costs the first time in a new process: (case, import numba, import
    fastparse, first call = compile or load the tokenizer) in seconds, without and with numba's
    on-disk cache (an empty NUMBA_CACHE_DIR, then the same one again)."""
    root = str(Path(__file__).resolve().parents[1])
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        for case in ("no cache", "cached"):
            env = {**os.environ, "NUMBA_CACHE_DIR": cache}
            done = subprocess.run(
                [sys.executable, "-c", _JIT_PROBE, root], env=env, check=True, capture_output=True, text=True
            )
            numbers = [float(x) for x in done.stdout.split()]
            rows.append((case, *numbers))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--cols", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pandas-repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        tsv = tmpdir / "counts.tsv"
        csv = tmpdir / "counts.csv"
        make_matrix(tsv, rows=args.rows, cols=args.cols, delimiter="\t")
        make_matrix(csv, rows=args.rows, cols=args.cols, delimiter=",")
        size_mb = tsv.stat().st_size / 1e6

        def ours(path: Path, fmt: str) -> Callable[[], object]:
            def run() -> object:
                outcome = validate_resource(
                    src_path=path, resource_type="RNASEQ_COUNT_MTX", file_format=fmt, out_dir=tmpdir / "out"
                )
                assert outcome.ok, outcome.reason
                return outcome

            return run

        def pandas_rewrite() -> None:
            frame = pd.read_csv(tsv, sep="\t", index_col=0)
            frame.to_csv(tmpdir / "pandas.tsv", sep="\t")

        def sha256() -> None:
            subprocess.run(["sha256sum", str(tsv)], check=True, capture_output=True)

        real_write = table_store.write_table
        table_store.write_table = lambda *a, **k: None  # type: ignore[assignment]
        try:
            t_no_parquet, p_no_parquet = timed_phases(ours(tsv, "tsv"), args.repeat)
        finally:
            table_store.write_table = real_write  # type: ignore[assignment]
        t_tsv, p_tsv = timed_phases(ours(tsv, "tsv"), args.repeat)
        t_csv, p_csv = timed_phases(ours(csv, "csv"), args.repeat)
        t_one_core = on_one_core(lambda: median_time(ours(tsv, "tsv"), args.repeat))
        t_sha = median_time(sha256, args.repeat)
        t_pandas = median_time(pandas_rewrite, args.pandas_repeat)

    print(f"matrix {args.rows} x {args.cols} integers, TSV {size_mb:.1f} MB; medians, wall / cpu seconds")
    rows = [
        ("ours (tsv, no Parquet)", t_no_parquet),
        ("ours (tsv in)", t_tsv),
        ("ours (csv in)", t_csv),
        *([("ours (tsv in, 1 core)", t_one_core)] if t_one_core else []),
        ("pandas read+to_csv", t_pandas),
        ("sha256sum", t_sha),
    ]
    for label, (wall, cpu) in rows:
        print(f"{label:24s} {wall:7.3f} s  {cpu:7.3f} s cpu")
    print("phases, median wall/cpu s:")
    for label, phases in (("tsv in", p_tsv), ("csv in", p_csv), ("tsv, no Parquet", p_no_parquet)):
        print(f"  {label:16s} {phases.line()}")
    for case, numba_import, module_import, first_call in jit_cost():
        print(
            f"fast parse, first use in a new process ({case}): import numba {numba_import:.3f} s, "
            f"import fastparse {module_import:.3f} s, first call (compile or load) {first_call:.3f} s"
        )
    for label, mine in (("tsv", t_tsv), ("csv", t_csv), ("tsv, no Parquet", t_no_parquet)):
        print(
            f"pandas / ours({label}): {t_pandas[0] / mine[0]:5.1f}x wall  {t_pandas[1] / mine[1]:5.1f}x cpu"
        )
        print(f"ours({label}) / sha256sum: {mine[0] / t_sha[0]:5.1f}x wall  {mine[1] / t_sha[1]:5.1f}x cpu")


if __name__ == "__main__":
    main()
