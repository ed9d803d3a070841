"""API throughput: GET /api/resources/ and /api/workspaces/ vs a bare DRF list, 16 connections, 15 s.

Starts gunicorn with deploy/gunicorn.conf.py on a loopback port against a PostgreSQL database made
for the run (`mev_bench`), creates one user with 50 resources in 5 workspaces, and drives each
endpoint with wrk (installed from Debian when missing). Prints requests/s, p50/p99 and the ratio of
each endpoint to the bare one.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
DB = os.environ.get("MEV_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mev_bench")
DURATION = int(os.environ.get("MEV_BENCH_SECONDS", "15"))
CONNECTIONS = 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if not found:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
        found = shutil.which("wrk")
    assert found, "wrk is not available"
    return found


def wrk(url: str, token: str) -> dict[str, float]:
    out = subprocess.run(
        [ensure_wrk(), "-t2", f"-c{CONNECTIONS}", f"-d{DURATION}s", "--latency", "-H", f"Authorization: Bearer {token}",
         url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def latency(pct: str) -> float:
        value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": latency("50"), "p99": latency("99"), "errors": int(errors.group(1)) if errors else 0}


def main() -> None:
    data = Path(tempfile.mkdtemp(prefix="mev-bench-api-"))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.bench_settings", "DATABASE_URL": DB,
           "MEV_DATA_DIR": str(data), "PYTHONPATH": str(ROOT)}
    dbname = DB.rsplit("/", 1)[1]
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f'DROP DATABASE IF EXISTS "{dbname}"'],
                   check=True, capture_output=True)
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f'CREATE DATABASE "{dbname}"'], check=True,
                   capture_output=True)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    seed = """
import django; django.setup()
from mev.users.models import User
from mev.resources.models import Resource
from mev.workspaces.models import Workspace, WorkspaceResource
from mev.users.tokens import token_pair_for
u = User.objects.create_user(email="bench@example.org", password="bench-Pass-phrase-1")
ws = [Workspace.objects.create(owner=u, workspace_name=f"ws{i}") for i in range(5)]
for i in range(50):
    r = Resource.objects.create(owner=u, name=f"file{i}.tsv", resource_type="I_MTX", file_format="tsv", size=1000 + i)
    WorkspaceResource.objects.create(workspace=ws[i % 5], resource=r)
print(token_pair_for(u)["access"])
"""
    token = subprocess.run([sys.executable, "-c", seed], cwd=ROOT, env=env, check=True, capture_output=True,
                           text=True).stdout.strip().splitlines()[-1]
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py"], cwd=ROOT,
                              env={**env, "MEV_GUNICORN_BIND": f"127.0.0.1:{port}", "MEV_GUNICORN_ACCESS_LOG": "/dev/null"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if requests.get(f"{base}/api/", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        headers = {"Authorization": f"Bearer {token}"}
        for url in ("/bench/bare/", "/api/resources/", "/api/workspaces/"):
            response = requests.get(base + url, headers=headers, timeout=10)
            assert response.status_code == 200, (url, response.status_code, response.text[:300])
        results = {url: wrk(base + url, token) for url in ("/bench/bare/", "/api/resources/", "/api/workspaces/")}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)
    bare = results["/bench/bare/"]["rps"]
    print("## API throughput (gunicorn, 16 connections, wrk)")
    print()
    print(f"{DURATION} s per endpoint; one user with 50 resources in 5 workspaces; goal ≥ 80 % of the bare endpoint.")
    print()
    print("| endpoint | requests/s | p50 ms | p99 ms | non-2xx | vs bare |")
    print("|---|---|---|---|---|---|")
    for url, r in results.items():
        print(f"| `{url}` | {r['rps']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | {r['errors']} | {r['rps'] / bare:.0%} |")


if __name__ == "__main__":
    main()
