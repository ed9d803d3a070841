"""Table contents over HTTP: the real route against the straightforward approach, both served by one gunicorn.

Creates a fresh PostgreSQL database (`mev_bench_contents`), migrates it, generates the seeded tables of
bench/bench_contents.py (a 60,000 x 6 DESeq2-like feature table and a 60,000 x 500 integer count
matrix), stores them through `storage.save_path` and validates them for real (`resource_validate`, as
FT and RNASEQ_COUNT_MTX). gunicorn (deploy/gunicorn.conf.py, one sync worker, bench/bench_settings.py)
then serves both sides of each comparison:

- real: GET /api/resources/<id>/contents/ (Parquet copy, query engine), answered for the owner by the
  contents fast path (mev/resources/contents_fastpath.py); the feature-table queries are run once more
  with it switched off (`MEV_CONTENTS_FAST_PATH=false`), through Django's middleware and DRF;
- baseline: GET /bench/contents/<id>/ (bench/bench_urls.py), the same view class with the same
  authentication, resource lookup, checks and renderer, whose body is the straightforward approach:
  pandas `read_csv` of the resource's standardized TSV per request, filter, sort, every remaining row
  `to_dict`, slice the page.

Both are timed with the same lean client (`http.client`, a new connection per request, as sync workers
close it): client time, and server time from gunicorn's access log (`%(D)s`). Each query starts on a
freshly restarted gunicorn, so its first request is reported apart (cold: nothing cached in the worker;
the worker has answered one GET /api/, which loads the URL configuration and the views' imports). The
worker's CPU time per request (/proc/<pid>/task/*/schedstat) is reported beside, as the machines are
shared; so is the route's fixed cost (the same request for a resource without contents, which skips the
engine) and that of a bare GET /api/. The worker's peak RSS growth (VmHWM, reset through
/proc/<pid>/clear_refs) is recorded for the matrix queries, real and baseline.

Run from the repository root:

    .venv/bin/python bench/bench_contents_http.py [--repeat 30] [--baseline-repeat 3] [--matrix-baseline-repeat 1]
"""

from __future__ import annotations

import argparse
import http.client
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
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DB = os.environ.get("MEV_BENCH_CONTENTS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mev_bench_contents")
PAGE_SIZE = 50
SEED = 20260101
TAG = "_bench"  # a cache-buster-like parameter both routes ignore; it names the request in the access log
REAL, BASELINE, DJANGO = "real", "baseline", "django"
COLD = "cold"


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


def cpu_ms(pid: int) -> float:
    """CPU time the process has run, all threads, from the scheduler's nanosecond counters."""
    return sum(int((task / "schedstat").read_text().split()[0]) for task in Path(f"/proc/{pid}/task").iterdir()) / 1e6


def psql(sql: str) -> None:
    admin = DB.rsplit("/", 1)[0] + "/postgres"
    subprocess.run(["psql", admin, "-qc", sql], check=True, capture_output=True)


def fetch(port: int, target: str, token: str | None = None) -> tuple[int, float, bytes]:
    """One GET on a new connection: status, client milliseconds, body."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    start = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        connection.request("GET", target, headers=headers)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    return response.status, (time.perf_counter() - start) * 1000, body


class Gunicorn:
    """deploy/gunicorn.conf.py with one worker on a loopback port; `%(D)s` is the server time of a request."""

    def __init__(self, env: dict[str, str], work: Path) -> None:
        self.port = free_port()
        self.log = work / "access.log"
        self.err = work / "gunicorn.err"
        self.env = {**env, "MEV_GUNICORN_BIND": f"127.0.0.1:{self.port}", "MEV_GUNICORN_WORKERS": "1",
                    "MEV_GUNICORN_ACCESS_LOG": str(self.log)}
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.err, "ab") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py",
                 "--access-logformat", "%(q)s %(s)s %(D)s"],
                cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                fetch(self.port, f"/api/?{TAG}=startup")
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise SystemExit("gunicorn did not start: " + self.err.read_text()[-2000:]) from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def worker(self) -> int:
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            kids = (task / "children").read_text().split()
            if kids:
                return int(kids[0])
        raise LookupError("no gunicorn worker")

    def server_times(self) -> dict[str, list[float]]:
        """Access-log lines `<query> <status> <microseconds>` -> milliseconds per tag.

        Requests are tagged `<tag>~<n>`, counted under `<tag>`, and `<tag>~cold`, kept apart.
        """
        times: dict[str, list[float]] = {}
        for line in self.log.read_text().splitlines():
            parts = line.rsplit(" ", 2)
            if len(parts) != 3:
                continue
            tag = parse_qs(parts[0]).get(TAG)
            if tag and parts[1] == "200":
                name, _, suffix = tag[0].rpartition("~")
                times.setdefault(tag[0] if suffix == COLD else name, []).append(int(parts[2]) / 1000)
        return times


# --------------------------------------------------------------------------- run


@dataclass
class Case:
    table: str
    label: str
    resource_id: str
    params: list[tuple[str, str]]
    client: dict[str, list[float]] = field(default_factory=lambda: {REAL: [], BASELINE: [], DJANGO: []})
    cold: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # route -> worker CPU ms per request
    memory: dict[str, tuple[int, int]] = field(default_factory=dict)  # route -> (growth kB, RSS before kB)

    @property
    def name(self) -> str:
        return f"{self.table} {self.label}"

    def tag(self, route: str) -> str:
        return f"{route}:{self.name.replace(' ', '_')}"

    def target(self, route: str, suffix: str) -> str:
        path = (f"/api/resources/{self.resource_id}/contents/" if route in (REAL, DJANGO)
                else f"/bench/contents/{self.resource_id}/")
        return path + "?" + urlencode([*self.params, (TAG, f"{self.tag(route)}~{suffix}")])


def fmt(times: list[float]) -> tuple[str, str]:
    if not times:
        return "–", "–"
    digits = 2 if statistics.median(times) < 10 else 1
    return f"{statistics.median(times):.{digits}f}", f"{min(times):.{digits}f}–{max(times):.{digits}f}"


def ratio(baseline: list[float], real: list[float]) -> float:
    return statistics.median(baseline) / statistics.median(real)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=30, help="requests per query, real route (after the cold one)")
    parser.add_argument("--baseline-repeat", type=int, default=3, help="baseline requests per query, feature table")
    parser.add_argument("--matrix-baseline-repeat", type=int, default=1, help="baseline requests per query, matrix")
    parser.add_argument("--keep", action="store_true", help="keep the work directory and the database")
    parser.add_argument("--rows", type=int, default=None, help="rows of both tables (smoke tests only)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mev-bench-contents-"))
    data_dir = work / "data"
    (data_dir / "tmp").mkdir(parents=True)
    dbname = DB.rsplit("/", 1)[1]
    psql(f'DROP DATABASE IF EXISTS "{dbname}"')
    psql(f'CREATE DATABASE "{dbname}"')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEV_", "CELERY_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "bench.bench_settings",
        "DATABASE_URL": DB,
        "MEV_DATA_DIR": str(data_dir),
        "MEV_SECRET_KEY": "bench-" + uuid.uuid4().hex * 2,
        "MEV_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    })
    server = None
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        os.environ.update(env)
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.db import connections, transaction

        from bench import bench_contents
        from mev.resources import storage
        from mev.resources.models import Resource
        from mev.resources.validation import resource_begin_validation, resource_validate
        from mev.users.models import User
        from mev.users.tokens import token_pair_for

        # The seeded tables of bench_contents.py, written as the TSV files a user would upload.
        if args.rows:
            bench_contents.N_ROWS = args.rows
        n_rows, n_samples = bench_contents.N_ROWS, bench_contents.N_SAMPLES
        rng = np.random.default_rng(SEED)
        ft_tsv, mtx_tsv = work / "deseq2_results.tsv", work / "counts.tsv"
        bench_contents.make_feature_table(rng).to_csv(ft_tsv, sep="\t")
        bench_contents.make_count_matrix(rng).to_csv(mtx_tsv, sep="\t")

        user = User.objects.create_user(email="bench-contents@example.org", password="bench-Pass-phrase-1")

        def stored(tsv: Path) -> Resource:
            resource = Resource.objects.create(owner=user, name=tsv.name)
            key = storage.new_key(owner_id=user.pk, resource_id=resource.pk)
            copy = data_dir / "tmp" / f"{uuid.uuid4().hex}.tsv"
            shutil.copyfile(tsv, copy)
            size, checksum = storage.save_path(key=key, path=copy, move=True)
            resource.datafile, resource.size, resource.checksum = key, size, checksum
            resource.save(update_fields=["datafile", "size", "checksum"])
            return resource

        def validated(tsv: Path, resource_type: str) -> tuple[str, float]:
            resource = stored(tsv)
            start = time.perf_counter()
            with transaction.atomic():
                resource_begin_validation(resource=resource, resource_type=resource_type, file_format="tsv",
                                          enqueue=False)
            done = resource_validate(resource_id=resource.pk, resource_type=resource_type, file_format="tsv")
            elapsed = time.perf_counter() - start
            assert done.resource_type == resource_type and done.table_file, (done.status, done.resource_type)
            return str(done.pk), elapsed

        ft_id, ft_validate = validated(ft_tsv, "FT")
        mtx_id, mtx_validate = validated(mtx_tsv, "RNASEQ_COUNT_MTX")
        untyped_id = str(stored(ft_tsv).pk)  # contents not available: Django's route without the engine
        one_row_tsv = work / "one_row.tsv"
        one_row_tsv.write_text(ft_tsv.read_text().split("\n", 2)[0] + "\n" + ft_tsv.read_text().split("\n", 2)[1] + "\n")
        one_row_id, _ = validated(one_row_tsv, "FT")  # the fast path's route with a trivial engine call
        token = token_pair_for(user)["access"]
        connections.close_all()

        middle = str(n_rows // PAGE_SIZE // 2)
        page = [("page_size", str(PAGE_SIZE))]
        cases = [
            Case("FT", "first page", ft_id, [("page", "1"), *page]),
            Case("FT", "middle page", ft_id, [("page", middle), *page]),
            Case("FT", "filtered padj<0.05", ft_id, [("padj", "[lt]:0.05"), ("page", "1"), *page]),
            Case("FT", "sorted asc padj", ft_id, [("sort_vals", "[asc]:padj"), ("page", "1"), *page]),
            Case("MTX", "first page", mtx_id, [("page", "1"), *page]),
            Case("MTX", "middle page", mtx_id, [("page", middle), *page]),
            Case("MTX", "filtered sample_001>=400", mtx_id, [("sample_001", "[gte]:400"), ("page", "1"), *page]),
            Case("MTX", "sorted asc sample_007", mtx_id, [("sort_vals", "[asc]:sample_007"), ("page", "1"), *page]),
        ]

        server = Gunicorn(env, work)

        def get(case: Case, route: str, suffix: str) -> tuple[float, dict]:
            status, elapsed, body = fetch(server.port, case.target(route, suffix), token)
            assert status == 200, (case.name, route, status, body[:300])
            return elapsed, json.loads(body)

        def measured(case: Case, route: str, repeat: int) -> dict:
            """`repeat` requests (the first one's body is returned); peak RSS growth for the matrix."""
            worker = server.worker
            reset_ok = reset_peak(worker)
            rss_before = status_kb(worker, "VmRSS" if reset_ok else "VmHWM")
            first = None
            cpu_before = cpu_ms(worker)
            for i in range(repeat):
                elapsed, body = get(case, route, str(i))
                case.client[route].append(elapsed)
                first = first if first is not None else body
            case.cpu[route] = (cpu_ms(worker) - cpu_before) / repeat
            if case.table == "MTX":
                case.memory[route] = (status_kb(worker, "VmHWM") - rss_before, rss_before)
            return first

        for case in cases:
            server.restart()  # nothing of this table is cached in the worker
            case.cold, _ = get(case, REAL, COLD)
            ours = measured(case, REAL, args.repeat)
            repeat = args.matrix_baseline_repeat if case.table == "MTX" else args.baseline_repeat
            theirs = measured(case, BASELINE, repeat)
            assert ours["count"] == theirs["count"], (case.name, ours["count"], theirs["count"])
            got, expected = [r["rowname"] for r in ours["results"]], [r["rowname"] for r in theirs["results"]]
            assert got == expected, f"{case.name}: pages differ {got[:3]} vs {expected[:3]}"

        # The same feature-table queries through Django and DRF: the fast path switched off.
        ft_cases = [case for case in cases if case.table == "FT"]
        server.env["MEV_CONTENTS_FAST_PATH"] = "false"
        server.restart()
        for case in ft_cases:
            get(case, REAL, "django-warm-up~0")
            for i in range(args.repeat):
                elapsed, _ = get(case, DJANGO, str(i))
                case.client[DJANGO].append(elapsed)
        server.env["MEV_CONTENTS_FAST_PATH"] = "true"

        # Fixed costs: a one-row feature table (the fast path, with a trivial engine call), a resource
        # without contents (Django's route, no engine, no file), and GET /api/ without a token.
        fast_fixed = Case("fixed", "fast path", one_row_id, [])
        fixed = Case("fixed", "django", untyped_id, [])
        server.restart()
        for i in range(5):
            fetch(server.port, f"/api/resources/{untyped_id}/contents/?{TAG}=warm-up~{i}", token)
            fetch(server.port, f"/api/resources/{one_row_id}/contents/?{TAG}=warm-up~{i}", token)
        fast_cpu = fixed_cpu = root_cpu = 0.0
        for i in range(args.repeat):
            before = cpu_ms(server.worker)
            status, _, body = fetch(server.port, fast_fixed.target(REAL, str(i)), token)
            assert status == 200 and len(json.loads(body)) == 1
            after_fast = cpu_ms(server.worker)
            status, _, body = fetch(server.port, fixed.target(REAL, str(i)), token)
            assert status == 200 and json.loads(body) == {"info": "Contents not available for this resource."}
            between = cpu_ms(server.worker)
            fetch(server.port, f"/api/?{TAG}=root~{i}")
            fast_cpu += after_fast - before
            fixed_cpu, root_cpu = fixed_cpu + between - after_fast, root_cpu + cpu_ms(server.worker) - between
        server_side = server.server_times()

        def srv(case: Case, route: str, suffix: str = "") -> list[float]:
            return server_side.get(case.tag(route) + suffix, [])

        print("## Table contents over HTTP")
        print()
        print(
            f"The real route, GET /api/resources/<id>/contents/, against the straightforward approach served by "
            f"the same gunicorn (deploy/gunicorn.conf.py, 1 sync worker, PostgreSQL) behind the same "
            f"authentication, resource lookup and renderer: pandas `read_csv` of the resource's standardized TSV "
            f"per request, filter, sort, every remaining row `to_dict`, slice the page. One client for both "
            f"(`http.client`, a new connection per request, loopback); server = gunicorn access log `%(D)s`. "
            f"Page size {PAGE_SIZE}; {args.repeat} requests per query on the real route, "
            f"{args.baseline_repeat} (feature table) and {args.matrix_baseline_repeat} (matrix) on the baseline. "
            f"Each query starts on a restarted gunicorn: its first real request is the cold column (the worker "
            f"had only answered GET /api/). Tables validated for real (`resource_validate`: FT {n_rows:,} × 6 in "
            f"{ft_validate:.1f} s, RNASEQ_COUNT_MTX {n_rows:,} × {n_samples} int64 in {mtx_validate:.1f} s, TSV "
            f"{mtx_tsv.stat().st_size / 1e6:.0f} MB)."
        )
        print()
        print("| query | real: client ms, median (min–max) | real: server ms | real: worker CPU ms "
              "| real cold: client / server ms | baseline: client ms, median (min–max) | baseline: server ms "
              "| ratio, client | ratio, server |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        below = []
        for case in cases:
            real_srv, base_srv = srv(case, REAL), srv(case, BASELINE)
            med, span = fmt(case.client[REAL])
            bmed, bspan = fmt(case.client[BASELINE])
            client_ratio = ratio(case.client[BASELINE], case.client[REAL])
            server_ratio = ratio(base_srv, real_srv) if real_srv and base_srv else float("nan")
            if min(client_ratio, server_ratio) < 100:
                below.append(case.name)
            print(f"| {case.name} | {med} ({span}) | {fmt(real_srv)[0]} | {case.cpu[REAL]:.1f} | {case.cold:.1f} / "
                  f"{fmt(srv(case, REAL, '~' + COLD))[0]} | {bmed} ({bspan}) | {fmt(base_srv)[0]} | {client_ratio:,.0f}× "
                  f"| {server_ratio:,.0f}× |")
        print()
        print(
            "The owner's table pages are answered by the contents fast path (mev/resources/contents_fastpath.py, "
            "a WSGI wrapper in front of Django's routing and DRF). The same feature-table queries with it "
            "switched off (`MEV_CONTENTS_FAST_PATH=false`: Django, its middleware, DRF), same worker settings:"
        )
        print()
        print("| query | Django path: client ms, median (min–max) | Django path: server ms | fast path: server ms "
              "| ratio to baseline, client | ratio to baseline, server |")
        print("|---|---:|---:|---:|---:|---:|")
        for case in ft_cases:
            dj_srv, base_srv = srv(case, DJANGO), srv(case, BASELINE)
            med, span = fmt(case.client[DJANGO])
            print(f"| {case.name} | {med} ({span}) | {fmt(dj_srv)[0]} | {fmt(srv(case, REAL))[0]} "
                  f"| {ratio(case.client[BASELINE], case.client[DJANGO]):,.0f}× "
                  f"| {ratio(base_srv, dj_srv):,.0f}× |")
        print()
        fast_srv, fixed_srv, root_srv = srv(fast_fixed, REAL), srv(fixed, REAL), server_side.get("root", [])
        print(
            f"Fixed costs. The fast path on a one-row feature table (authentication, one query for the user and "
            f"the resource, a trivial engine call, rendering, the middlewares' headers): server median "
            f"{fmt(fast_srv)[0]} ms (min {min(fast_srv):.2f}), worker CPU {fast_cpu / args.repeat:.2f} ms per "
            f"request. Django's route for a resource without contents (authentication, resource lookup, checks, "
            f"rendering; no engine): server median {fmt(fixed_srv)[0]} ms (min {min(fixed_srv):.2f}), worker CPU "
            f"{fixed_cpu / args.repeat:.2f} ms. GET /api/ without a token (Django, middleware and DRF alone): "
            f"server median {fmt(root_srv)[0]} ms (min {min(root_srv):.2f}), worker CPU "
            f"{root_cpu / args.repeat:.2f} ms. Worker CPU is the worker's scheduler time per request "
            f"(/proc/<pid>/task/*/schedstat): it holds gunicorn's own work outside `%(D)s` (accepting, parsing, "
            f"logging, closing), and neither PostgreSQL's time nor waiting for a core."
        )
        print()
        memory = [(case.label, case.memory[REAL], case.memory.get(BASELINE)) for case in cases if case.table == "MTX"]
        worst = max(memory, key=lambda m: m[1][0])
        print(
            f"Memory: gunicorn worker peak RSS growth (VmHWM − VmRSS before, peak reset per query) over "
            f"{args.repeat} requests of each matrix query: "
            + ", ".join(f"{label} {real[0] / 1024:.1f} MB" for label, real, _ in memory)
            + f"; worst {worst[1][0] / 1024:.1f} MB on a {worst[1][1] / 1024:.0f} MB worker. The baseline grows it by "
            + ", ".join(f"{base[0] / 1024:.0f} MB" for _, _, base in memory if base)
            + f" (one request each). The matrix TSV is {mtx_tsv.stat().st_size / 1e6:.0f} MB, its int64 values "
            f"{n_rows * n_samples * 8 / 1e6:.0f} MB."
        )
        print()
        print("Goal ≥ 100× on every query (client and server ratios): "
              + ("met." if not below else "missed on " + ", ".join(below) + "."))
    finally:
        if server is not None:
            server.stop()
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
