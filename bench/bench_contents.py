"""Time contents pages on the stored copies against re-parsing the TSV per request.

Run from the repository root: PYTHONPATH=. .venv/bin/python bench/bench_contents.py [--repeat N] [--workdir DIR]

Each query is timed three ways: in a warm process with the engine's cache on (the default;
``cache`` below: the footer, key columns and sort orders are kept), in the same process with the
cache off (MEV_CONTENTS_CACHE_MB=0: every request reads what it needs from the files), and once
in a fresh process (cold imports, cold cache), with that process's peak RSS growth.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from mev.resource_types import table_cache
from mev.resource_types.query import query_table
from mev.resource_types.table_store import derived_paths, write_table

BASE_URL = "http://testserver/api/resources/1/contents/"
N_ROWS = 60_000
N_SAMPLES = 500


def make_feature_table(rng: np.random.Generator) -> pd.DataFrame:
    genes = [f"ENSG{i:011d}" for i in range(N_ROWS)]
    base_mean = rng.lognormal(5, 2, N_ROWS)
    lfc = rng.normal(0, 1.5, N_ROWS)
    lfc_se = rng.uniform(0.05, 1.0, N_ROWS)
    stat = lfc / lfc_se
    pvalue = rng.uniform(0, 1, N_ROWS) ** 3
    padj = np.minimum(pvalue * 5, 1.0)
    padj[rng.uniform(size=N_ROWS) < 0.05] = np.nan  # DESeq2 leaves independent-filtered rows NA
    return pd.DataFrame(
        {
            "baseMean": base_mean,
            "log2FoldChange": lfc,
            "lfcSE": lfc_se,
            "stat": stat,
            "pvalue": pvalue,
            "padj": padj,
        },
        index=pd.Index(genes, name="gene"),
    )


def make_count_matrix(rng: np.random.Generator) -> pd.DataFrame:
    genes = [f"ENSG{i:011d}" for i in range(N_ROWS)]
    samples = [f"sample_{j:03d}" for j in range(N_SAMPLES)]
    counts = rng.negative_binomial(2, 0.01, size=(N_ROWS, N_SAMPLES)).astype(np.int64)
    return pd.DataFrame(counts, index=pd.Index(genes, name="gene"), columns=samples)


MEMORY_PROBE = """
import json, sys, time
from pathlib import Path
from mev.resource_types.query import query_table

def status_mb(field):
    # VmHWM is per address space, so unlike ru_maxrss it does not inherit the parent's peak.
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise LookupError(field)

path, params = Path(sys.argv[1]), json.loads(sys.argv[2])
before = status_mb("VmRSS")
start = time.perf_counter()
query_table(path, [tuple(p) for p in params], kind="matrix", base_url="http://testserver/")
elapsed = (time.perf_counter() - start) * 1000
print(json.dumps({"growth": status_mb("VmHWM") - before, "ms": elapsed}))
"""


@contextlib.contextmanager
def cache_off() -> Iterator[None]:
    """The engine's cache turned off, as MEV_CONTENTS_CACHE_MB=0 does on a server."""
    saved = os.environ.get(table_cache.SETTING)
    os.environ[table_cache.SETTING] = "0"
    table_cache._budget = None
    try:
        yield
    finally:
        if saved is None:
            del os.environ[table_cache.SETTING]
        else:
            os.environ[table_cache.SETTING] = saved
        table_cache._budget = None


def memory_growth(path: Path, params: list[tuple[str, str]]) -> tuple[float, float]:
    """Peak RSS growth (MB) and time of one request in a fresh process: cold footer, cold imports done."""
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(path), json.dumps(params)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    measured = json.loads(result.stdout)
    return measured["growth"], measured["ms"]


def baseline(tsv: Path, params: dict[str, str]) -> list[dict]:
    """What the original did per request: parse everything, filter, sort, serialise, then slice."""
    df = pd.read_csv(tsv, sep="\t", index_col=0)
    if "padj" in params:
        df = df[df["padj"] < float(params["padj"])]
    if "sort" in params:
        df = df.sort_values(params["sort"], na_position="last", kind="stable")
    records = [
        {
            "rowname": name,
            "values": {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()},
        }
        for name, row in zip(df.index, df.to_dict(orient="records"), strict=True)
    ]
    page, size = int(params.get("page", 1)), int(params.get("page_size", 50))
    return records[(page - 1) * size : page * size]


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    """Wall-clock milliseconds per call; CPU milliseconds are kept in CPU_TIMES for summary()."""
    fn()  # warm the page cache, imports and the footer cache
    times, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        cpu.append((time.process_time() - start_cpu) * 1000)
        times.append((time.perf_counter() - start) * 1000)
    CPU_TIMES[id(times)] = cpu
    return times


# The machine this runs on is shared: CPU time shows the cost of a request without the waiting.
CPU_TIMES: dict[int, list[float]] = {}


def summary(times: list[float]) -> str:
    text = f"median {statistics.median(times):8.2f} ms  (min {min(times):7.2f} – max {max(times):7.2f})"
    cpu = CPU_TIMES.get(id(times))
    if cpu:
        text += f" cpu {statistics.median(cpu):7.2f} ms"
    return text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--baseline-repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_contents_"))
    workdir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20260101)

    ft = make_feature_table(rng)
    ft_tsv, ft_pq = workdir / "ft.tsv", workdir / "ft.parquet"
    ft.to_csv(ft_tsv, sep="\t")
    write_table(pa.Table.from_pandas(ft.reset_index(), preserve_index=False), ft_pq, kind="feature")

    mtx = make_count_matrix(rng)
    mtx_tsv, mtx_pq = workdir / "mtx.tsv", workdir / "mtx.parquet"
    mtx.to_csv(mtx_tsv, sep="\t")
    mtx_table = pa.Table.from_pandas(mtx.reset_index(), preserve_index=False)
    del mtx
    start, start_cpu = time.perf_counter(), time.process_time()
    write_table(mtx_table, mtx_pq, kind="matrix")
    write_ms, write_cpu_ms = (time.perf_counter() - start) * 1000, (time.process_time() - start_cpu) * 1000
    del mtx_table
    gc.collect()
    rows_file = derived_paths(mtx_pq).get("table_rows_file")
    rows_mb = rows_file.stat().st_size / 1e6 if rows_file else 0.0
    print(
        f"data in {workdir}; matrix parquet {mtx_pq.stat().st_size / 1e6:.1f} MB + row file {rows_mb:.1f} MB "
        f"written in {write_ms:.0f} ms ({write_cpu_ms:.0f} ms cpu, all threads), tsv {mtx_tsv.stat().st_size / 1e6:.1f} MB"
    )

    middle = str(N_ROWS // 50 // 2)
    cases = [
        ("first page", [("page", "1"), ("page_size", "50")], {}),
        ("middle page", [("page", middle), ("page_size", "50")], {"page": middle}),
        ("filtered padj<0.05", [("padj", "[lt]:0.05"), ("page", "1"), ("page_size", "50")], {"padj": "0.05"}),
        (
            "sorted asc padj",
            [("sort_vals", "[asc]:padj"), ("page", "1"), ("page_size", "50")],
            {"sort": "padj"},
        ),
        (
            "filtered+sorted",
            [
                ("padj", "[lt]:0.05"),
                ("log2FoldChange", "[absgt]:2.0"),
                ("sort_vals", "[asc]:padj"),
                ("page", "1"),
            ],
            {"padj": "0.05", "sort": "padj"},
        ),
    ]
    print(f"\n60,000 x 6 feature table (repeat {args.repeat}; baseline repeat {args.baseline_repeat})")
    for label, params, base_params in cases:

        def run_ft(p=params):
            return query_table(ft_pq, p, kind="feature", base_url=BASE_URL)

        ours = timed(run_ft, args.repeat)
        with cache_off():
            uncached = timed(run_ft, args.repeat)
        theirs = timed(lambda b=base_params: baseline(ft_tsv, b), args.baseline_repeat)
        ratio = statistics.median(theirs) / statistics.median(ours)
        print(
            f"  {label:22s} cache {summary(ours)} | cache off {summary(uncached)} | baseline {summary(theirs)}"
            f" | x{ratio:,.0f}"
        )

    print(f"\n60,000 x 500 int64 matrix (repeat {args.repeat}; baseline repeat {args.baseline_repeat})")
    mtx_cases = [
        ("first page", [("page", "1"), ("page_size", "50")], {}),
        (
            "middle page",
            [("page", middle), ("page_size", "50")],
            None,
        ),  # the baseline costs the same as for the first page
        ("last page", [("page", "last"), ("page_size", "50")], None),
        ("sorted asc sample_007", [("sort_vals", "[asc]:sample_007"), ("page", "1")], None),
        ("filter sample_001>=400", [("sample_001", "[gte]:400"), ("page", "2")], None),
        # Asks for 10,000 rows; the 500,000-value cap (query.MAX_PAGE_CELLS) serves 1,000 of 500 columns.
        ("page_size 10000 -> 1000, p3", [("page", "3"), ("page_size", "10000")], None),
        (
            "rowmean>=250 sort desc",  # no row passes (the means are ~200): the cost of the means alone
            [("__rowmean__", "[gte]:250"), ("sort_vals", "[desc]:__rowmean__"), ("page", "1")],
            None,
        ),
        (
            "rowmean>=200 sort desc",  # ~22,000 rows pass: a full page of scattered rows
            [("__rowmean__", "[gte]:200"), ("sort_vals", "[desc]:__rowmean__"), ("page", "2")],
            None,
        ),
        ("sorted desc s_123, page 40", [("sort_vals", "[desc]:sample_123"), ("page", "40")], None),
    ]
    for label, params, base_params in mtx_cases:

        def run(p=params):
            return query_table(mtx_pq, p, kind="matrix", base_url=BASE_URL)

        repeat = max(3, args.repeat // 4) if "10000" in label else args.repeat
        ours = timed(run, repeat)
        with cache_off():
            uncached = timed(run, repeat)
        growth, cold_ms = memory_growth(mtx_pq, params)
        line = (
            f"  {label:28s} cache {summary(ours)} | cache off {summary(uncached)} | cold process {cold_ms:7.1f} ms,"
            f" peak RSS growth {growth:6.1f} MB"
        )
        if base_params is not None:
            theirs = timed(lambda b=base_params: baseline(mtx_tsv, b), 1)
            line += f" | baseline {statistics.median(theirs):8.0f} ms x{statistics.median(theirs) / statistics.median(ours):,.0f}"
        print(line)
    print(
        f"\nmax RSS of the whole run {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB "
        "(includes generating the matrix)"
    )


if __name__ == "__main__":
    main()
    # The generated tables are ~200 MB: remove them unless the caller chose where they go.
    if "--workdir" not in sys.argv:
        for leftover in Path(tempfile.gettempdir()).glob("bench_contents_*"):
            if leftover.is_dir() and (leftover / "mtx.parquet").exists():
                shutil.rmtree(leftover, ignore_errors=True)
