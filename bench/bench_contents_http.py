"""Table contents through the HTTP API: gunicorn + PostgreSQL, against re-parsing the TSV per request.

Creates a fresh PostgreSQL database (`mev_bench_contents`), migrates it, generates two seeded
tables (a 60,000 x 6 DESeq2-like feature table and a 60,000 x 500 integer count matrix), stores
them through `storage.save_path` and validates them for real (`resource_validate`, as FT and
RNASEQ_COUNT_MTX), starts gunicorn (deploy/gunicorn.conf.py, one worker) on a loopback port and
times GET /api/resources/<id>/contents/ for first, middle, filtered and sorted pages with
`requests`. Server-side time comes from gunicorn's access log (`%(D)s`, microseconds).

The baseline, timed in the same run, is the straightforward approach restated here: parse the
whole TSV with pandas per request, filter, sort, convert every remaining row to a dict, slice the
page and serialise it to JSON. The gunicorn worker's peak RSS growth (VmHWM, reset through
/proc/<pid>/clear_refs before each query) is recorded for the matrix queries.

Run from the repository root:

    .venv/bin/python bench/bench_contents_http.py [--repeat 30] [--baseline-repeat 3] [--matrix-baseline-repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs

import numpy as np
import pandas as pd
import requests

ROOT = Path(__file__).resolve().parents[1]
DB = os.environ.get("MEV_BENCH_CONTENTS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mev_bench_contents")
N_ROWS = 60_000
N_SAMPLES = 500
PAGE_SIZE = 50
SEED = 20260101
TAG = "_bench"  # a cache-buster-like parameter the contents endpoint ignores; it names the request in the log


# --------------------------------------------------------------------------- data


def make_feature_table(rng: np.random.Generator) -> pd.DataFrame:
    genes = [f"ENSG{i:011d}" for i in range(N_ROWS)]
    lfc = rng.normal(0, 1.5, N_ROWS)
    lfc_se = rng.uniform(0.05, 1.0, N_ROWS)
    pvalue = rng.uniform(0, 1, N_ROWS) ** 3
    padj = np.minimum(pvalue * 5, 1.0)
    padj[rng.uniform(size=N_ROWS) < 0.05] = np.nan  # DESeq2 leaves independent-filtered rows NA
    return pd.DataFrame(
        {
            "baseMean": rng.lognormal(5, 2, N_ROWS),
            "log2FoldChange": lfc,
            "lfcSE": lfc_se,
            "stat": lfc / lfc_se,
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


# --------------------------------------------------------------------------- baseline


def baseline(tsv: Path, query: dict) -> list[dict]:
    """Per request: parse the whole TSV, filter, sort, every remaining row to a dict, then slice."""
    df = pd.read_csv(tsv, sep="\t", index_col=0)
    for column, (op, value) in query.get("filters", {}).items():
        df = df[df[column] < value] if op == "lt" else df[df[column] >= value]
    if "sort" in query:
        df = df.sort_values(query["sort"], na_position="last", kind="stable")
    records = [
        {"rowname": name, "values": {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}}
        for name, row in zip(df.index, df.to_dict(orient="records"), strict=True)
    ]
    page = int(query.get("page", 1))
    body = records[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    json.dumps(body)
    return body


# --------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False when not permitted."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def worker_pid(master: int) -> int:
    for task in Path(f"/proc/{master}/task").iterdir():
        kids = (task / "children").read_text().split()
        if kids:
            return int(kids[0])
    raise LookupError("no gunicorn worker")


def psql(sql: str) -> None:
    admin = DB.rsplit("/", 1)[0] + "/postgres"
    subprocess.run(["psql", admin, "-qc", sql], check=True, capture_output=True)


def server_times(log: Path) -> dict[str, list[float]]:
    """Access-log lines `<query> <status> <microseconds>` -> milliseconds per request label."""
    times: dict[str, list[float]] = {}
    for line in log.read_text().splitlines():
        parts = line.rsplit(" ", 2)
        if len(parts) != 3:
            continue
        tag = parse_qs(parts[0]).get(TAG)
        if tag and parts[1] == "200":
            times.setdefault(tag[0].rsplit("~", 1)[0], []).append(int(parts[2]) / 1000)
    return times


# --------------------------------------------------------------------------- run


def fmt(times: list[float]) -> tuple[str, str]:
    if not times:
        return "–", "–"
    return f"{statistics.median(times):.1f}", f"{min(times):.1f}–{max(times):.1f}"


def main() -> None:
    global N_ROWS
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--baseline-repeat", type=int, default=3, help="baseline repeats, feature table")
    parser.add_argument("--matrix-baseline-repeat", type=int, default=1, help="baseline repeats, count matrix")
    parser.add_argument("--keep", action="store_true", help="keep the work directory and the database")
    parser.add_argument("--rows", type=int, default=N_ROWS, help="rows of both tables (smoke tests only)")
    args = parser.parse_args()
    N_ROWS = args.rows

    work = Path(tempfile.mkdtemp(prefix="mev-bench-contents-"))
    data_dir = work / "data"
    (data_dir / "tmp").mkdir(parents=True)
    dbname = DB.rsplit("/", 1)[1]
    psql(f'DROP DATABASE IF EXISTS "{dbname}"')
    psql(f'CREATE DATABASE "{dbname}"')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEV_", "CELERY_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "mev.settings",
        "DATABASE_URL": DB,
        "MEV_DATA_DIR": str(data_dir),
        "MEV_SECRET_KEY": "bench-" + uuid.uuid4().hex * 2,
        "MEV_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    })
    server = None
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)

        # Generate the data (seeded) and the TSV files the baseline parses.
        rng = np.random.default_rng(SEED)
        ft_tsv, mtx_tsv = work / "deseq2_results.tsv", work / "counts.tsv"
        make_feature_table(rng).to_csv(ft_tsv, sep="\t")
        make_count_matrix(rng).to_csv(mtx_tsv, sep="\t")

        # Store and validate them for real, in this process, against the bench database.
        os.environ.update(env)
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.db import connections, transaction

        from mev.resources import storage
        from mev.resources.models import Resource
        from mev.resources.validation import resource_begin_validation, resource_validate
        from mev.users.models import User
        from mev.users.tokens import token_pair_for

        user = User.objects.create_user(email="bench-contents@example.org", password="bench-Pass-phrase-1")

        def stored(tsv: Path, resource_type: str) -> tuple[str, float]:
            resource = Resource.objects.create(owner=user, name=tsv.name)
            key = storage.new_key(owner_id=user.pk, resource_id=resource.pk)
            copy = data_dir / "tmp" / f"{uuid.uuid4().hex}.tsv"
            shutil.copyfile(tsv, copy)
            size, checksum = storage.save_path(key=key, path=copy, move=True)
            resource.datafile, resource.size, resource.checksum = key, size, checksum
            resource.save(update_fields=["datafile", "size", "checksum"])
            start = time.perf_counter()
            with transaction.atomic():
                resource_begin_validation(resource=resource, resource_type=resource_type, file_format="tsv",
                                          enqueue=False)
            done = resource_validate(resource_id=resource.pk, resource_type=resource_type, file_format="tsv")
            elapsed = time.perf_counter() - start
            assert done.resource_type == resource_type and done.table_file, (done.status, done.resource_type)
            return str(done.pk), elapsed

        ft_id, ft_validate = stored(ft_tsv, "FT")
        mtx_id, mtx_validate = stored(mtx_tsv, "RNASEQ_COUNT_MTX")
        token = token_pair_for(user)["access"]
        connections.close_all()

        # gunicorn, one worker, on a loopback port; `%(D)s` gives the server-side time per request.
        port = free_port()
        log = work / "access.log"
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py",
             "--access-logformat", "%(q)s %(s)s %(D)s"],
            cwd=ROOT, env={**env, "MEV_GUNICORN_BIND": f"127.0.0.1:{port}", "MEV_GUNICORN_WORKERS": "1",
                           "MEV_GUNICORN_ACCESS_LOG": str(log)},
            stdout=subprocess.DEVNULL, stderr=open(work / "gunicorn.err", "wb"),  # noqa: SIM115
            start_new_session=True,
        )
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        base = f"http://127.0.0.1:{port}/api/resources"
        deadline = time.monotonic() + 60
        while True:
            try:
                session.get(f"{base}/{ft_id}/contents/", params={"page": "1", "page_size": "1"}, timeout=5)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("gunicorn did not start: " + (work / "gunicorn.err").read_text()[-2000:]) from None
                time.sleep(0.2)
        worker = worker_pid(server.pid)

        middle = str(N_ROWS // PAGE_SIZE // 2)
        page = [("page_size", str(PAGE_SIZE))]
        cases = [
            ("FT", "first page", ft_id, ft_tsv, [("page", "1"), *page], {}),
            ("FT", "middle page", ft_id, ft_tsv, [("page", middle), *page], {"page": middle}),
            ("FT", "filtered padj<0.05", ft_id, ft_tsv, [("padj", "[lt]:0.05"), ("page", "1"), *page],
             {"filters": {"padj": ("lt", 0.05)}}),
            ("FT", "sorted asc padj", ft_id, ft_tsv, [("sort_vals", "[asc]:padj"), ("page", "1"), *page],
             {"sort": "padj"}),
            ("MTX", "first page", mtx_id, mtx_tsv, [("page", "1"), *page], {}),
            ("MTX", "middle page", mtx_id, mtx_tsv, [("page", middle), *page], {"page": middle}),
            ("MTX", "filtered sample_001>=400", mtx_id, mtx_tsv,
             [("sample_001", "[gte]:400"), ("page", "1"), *page], {"filters": {"sample_001": ("gte", 400)}}),
            ("MTX", "sorted asc sample_007", mtx_id, mtx_tsv,
             [("sort_vals", "[asc]:sample_007"), ("page", "1"), *page], {"sort": "sample_007"}),
        ]

        rows, memory = [], []
        for table, label, rid, tsv, params, base_query in cases:
            name = f"{table} {label}"
            url = f"{base}/{rid}/contents/"
            tag = name.replace(" ", "_")

            def get(i: int, params=params, url=url, tag=tag) -> tuple[float, dict]:
                start = time.perf_counter()
                response = session.get(url, params=[*params, (TAG, f"{tag}~{i}")], timeout=120)
                elapsed = (time.perf_counter() - start) * 1000
                assert response.status_code == 200, (response.status_code, response.text[:300])
                return elapsed, response.json()

            _, body = get(-1)  # warm: footer cache, imports, page cache
            start = time.perf_counter()
            expected = baseline(tsv, base_query)  # the first baseline run, checked and timed
            theirs = [(time.perf_counter() - start) * 1000]
            got = [r["rowname"] for r in body["results"]]
            assert got == [r["rowname"] for r in expected], f"{name}: pages differ {got[:3]} vs {expected[:3]}"

            if table == "MTX":
                reset_ok = reset_peak(worker)
                rss_before = status_kb(worker, "VmRSS" if reset_ok else "VmHWM")
            client = [get(i)[0] for i in range(args.repeat)]
            if table == "MTX":
                memory.append((label, status_kb(worker, "VmHWM") - rss_before, rss_before))

            repeat = args.matrix_baseline_repeat if table == "MTX" else args.baseline_repeat
            for _ in range(repeat - 1):
                start = time.perf_counter()
                baseline(tsv, base_query)
                theirs.append((time.perf_counter() - start) * 1000)
            rows.append((name, client, theirs, tag))
        server_side = server_times(log)

        print("## Table contents over HTTP")
        print()
        print(
            f"GET /api/resources/<id>/contents/ through gunicorn (deploy/gunicorn.conf.py, 1 sync worker) on "
            f"PostgreSQL, `requests` on loopback, page_size {PAGE_SIZE}, {args.repeat} requests per query after "
            f"one warm-up. Tables validated for real (`resource_validate`: FT {N_ROWS:,} × 6 in {ft_validate:.1f} s, "
            f"RNASEQ_COUNT_MTX {N_ROWS:,} × {N_SAMPLES} int64 in {mtx_validate:.1f} s, TSV "
            f"{mtx_tsv.stat().st_size / 1e6:.0f} MB). Baseline, same run: pandas `read_csv` of the whole TSV per "
            f"request, filter, sort, every row `to_dict`, slice, `json.dumps` ({args.baseline_repeat}× for the "
            f"feature table, {args.matrix_baseline_repeat}× for the matrix). Server = gunicorn access log `%(D)s`."
        )
        print()
        print("| query | median ms | min–max ms | server median ms | baseline median ms (min–max) | ratio |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, client, theirs, tag in rows:
            med, rng_text = fmt(client)
            srv, _ = fmt(server_side.get(tag, []))
            bmed, brange = fmt(theirs)
            ratio = statistics.median(theirs) / statistics.median(client)
            print(f"| {name} | {med} | {rng_text} | {srv} | {bmed} ({brange}) | {ratio:,.0f}× |")
        print()
        worst = max(memory, key=lambda m: m[1])
        print(
            f"Memory: gunicorn worker peak RSS growth (VmHWM − VmRSS before, peak reset per query) over "
            f"{args.repeat} requests of each matrix query: "
            + ", ".join(f"{label} {growth / 1024:.1f} MB" for label, growth, _ in memory)
            + f"; worst {worst[1] / 1024:.1f} MB on a {worst[2] / 1024:.0f} MB worker. "
            f"The matrix TSV is {mtx_tsv.stat().st_size / 1e6:.0f} MB, its int64 values "
            f"{N_ROWS * N_SAMPLES * 8 / 1e6:.0f} MB."
        )
        below = [name for name, client, theirs, _ in rows
                 if statistics.median(theirs) / statistics.median(client) < 100]
        print()
        print("Goal ≥ 100× on every query: " + ("met." if not below else "missed on " + ", ".join(below) + "."))
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
            try:
                from django.db import connections

                connections.close_all()
            except Exception:  # noqa: S110 - django never set up
                pass
            psql(f'DROP DATABASE IF EXISTS "{dbname}"')


if __name__ == "__main__":
    main()
