"""Upload throughput and gunicorn worker memory: a 1 GB file, multipart and tus (64 MB chunks).

Starts gunicorn (deploy/gunicorn.conf.py, one worker) on a unix socket with nginx in front (the
rendered deploy/nginx-site.conf.template), on a fresh PostgreSQL database, then uploads the file
through nginx and reports MB/s and the worker's peak RSS (VmHWM from /proc/<pid>/status).
The worker's peak must stay flat: it must not grow with the file size.

Run from the repository root:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mev_bench .venv/bin/python bench/bench_upload.py [--size-mb 1024]

The database named in DATABASE_URL is created if missing and migrated. Needs nginx.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
MB = 1024 * 1024
BLOCK = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: S110 - not up yet
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} did not start in {timeout}s")


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(x) for x in text]
    return found


class Body:
    """A file-like request body assembled from byte strings and file slices, streamed in 1 MiB blocks."""

    def __init__(self, parts: list[Any]) -> None:
        self.parts = parts  # bytes, or (path, offset, length)
        self.index = 0
        self.handle: Any = None
        self.remaining = 0
        self.length = sum(len(p) if isinstance(p, bytes) else p[2] for p in parts)

    def __len__(self) -> int:
        return self.length

    def read(self, n: int = -1) -> bytes:
        while self.index < len(self.parts):
            part = self.parts[self.index]
            if isinstance(part, bytes):
                self.index += 1
                if part:
                    return part
                continue
            if self.handle is None:
                self.handle = open(part[0], "rb")  # noqa: SIM115
                self.handle.seek(part[1])
                self.remaining = part[2]
            if self.remaining > 0:
                data = self.handle.read(min(BLOCK, self.remaining))
                self.remaining -= len(data)
                if data:
                    return data
            self.handle.close()
            self.handle = None
            self.index += 1
        return b""


def request(port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
            ) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600, blocksize=BLOCK)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--chunk-mb", type=int, default=64)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="mev-bench-upload-"))
    try:
        run(args, work)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> None:

    database_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mev_bench")
    ensure_database(database_url)
    data_dir = work / "data"
    for sub in ("static", "files", "tmp"):
        (data_dir / sub).mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEV_", "CELERY_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "mev.settings",
        "DATABASE_URL": database_url,
        "MEV_DATA_DIR": str(data_dir),
        "MEV_STATIC_ROOT": str(data_dir / "static"),
        "MEV_MEDIA_ROOT": str(data_dir / "files"),
        "MEV_SECRET_KEY": "bench-" + uuid.uuid4().hex * 2,
        "MEV_MAX_UPLOAD_BYTES": str((args.size_mb + 64) * MB),
        "MEV_GUNICORN_ACCESS_LOG": str(work / "access.log"),
        "MEV_LOG_LEVEL": "WARNING",
        "MEV_THROTTLE_AUTH": "1000/min",
        "MEV_DOWNLOAD_ACCEL": "1",  # downloads: Django checks access, nginx sends the bytes
        "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
    })
    manage = [str(VENV_BIN / "python"), "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    email, password = f"bench-{uuid.uuid4().hex[:8]}@example.org", "bench-" + uuid.uuid4().hex
    subprocess.run([*manage, "create_user", "--email", email, "--password", password], cwd=ROOT, env=env,
                   check=True, stdout=subprocess.DEVNULL)

    processes: list[subprocess.Popen] = []
    sock = data_dir / "gunicorn.sock"
    glog = open(work / "gunicorn.log", "wb")  # noqa: SIM115
    gunicorn = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "--config", "deploy/gunicorn.conf.py"], cwd=ROOT,
        env={**env, "MEV_GUNICORN_BIND": f"unix:{sock}", "MEV_GUNICORN_WORKERS": "1"},
        stdout=glog, stderr=subprocess.STDOUT, start_new_session=True,
    )
    processes.append(gunicorn)
    try:
        wait_until(sock.exists, 30, "gunicorn")
        sys.path.insert(0, str(ROOT / "deploy"))
        from render import render_site

        port = free_port()
        prefix = work / "nginx"
        (prefix / "logs").mkdir(parents=True, exist_ok=True)
        (prefix / "temp").mkdir(exist_ok=True)
        (prefix / "site.conf").write_text(render_site({
            "MEV_NGINX_PORT": f"127.0.0.1:{port}", "MEV_GUNICORN_SOCKET": str(sock),
            "MEV_NGINX_MAX_BODY": f"{args.size_mb + 64}m",
            "MEV_STATIC_ROOT": env["MEV_STATIC_ROOT"], "MEV_MEDIA_ROOT": env["MEV_MEDIA_ROOT"],
        }))
        temp = prefix / "temp"
        user_line = "user root;" if os.geteuid() == 0 else ""
        (prefix / "nginx.conf").write_text(f"""
{user_line}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {prefix}/site.conf;
}}
""")
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        processes.append(subprocess.Popen(
            [nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
        ))
        wait_until(lambda: request(port, "GET", "/api/")[0] == 200, 30, "nginx + gunicorn")
        workers = children(gunicorn.pid)
        assert len(workers) == 1, workers
        worker = workers[0]

        status, _, body = request(port, "POST", "/api/token/", json.dumps({"email": email, "password": password}),
                                  {"Content-Type": "application/json"})
        assert status == 200, body
        auth = {"Authorization": "Bearer " + json.loads(body)["access"]}
        request(port, "GET", "/api/resources/", headers=auth)  # warm-up: imports, DB connection

        size = args.size_mb * MB
        source = work / "source.bin"
        print(f"writing a {args.size_mb} MiB test file ...", flush=True)
        block = os.urandom(BLOCK)
        with open(source, "wb") as out:
            for i in range(args.size_mb):
                out.write(block[i % 251:] + block[: i % 251])
        results: dict[str, Any] = {"size_mib": args.size_mb, "worker_pid": worker,
                                   "baseline_vmhwm_mib": status_kb(worker, "VmHWM") / 1024}

        # --- multipart ---
        boundary = "mevbench" + uuid.uuid4().hex
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"datafile\"; filename=\"big.bin\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        mp_body = Body([head, (str(source), 0, size), tail])
        start = time.perf_counter()
        status, _, body = request(port, "POST", "/api/resources/upload/", mp_body, {
            **auth, "Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(len(mp_body)),
        })
        elapsed = time.perf_counter() - start
        assert status == 201, (status, body[:500])
        assert json.loads(body)["size"] == size
        multipart_id = json.loads(body)["id"]
        results["multipart_seconds"] = round(elapsed, 2)
        results["multipart_mb_per_s"] = round(size / MB / elapsed, 1)
        results["after_multipart_vmhwm_mib"] = status_kb(worker, "VmHWM") / 1024

        # --- tus ---
        meta = "filename " + base64.b64encode(b"big-tus.bin").decode()
        start = time.perf_counter()
        status, headers, body = request(port, "POST", "/api/resources/uploads/", b"", {
            **auth, "Tus-Resumable": "1.0.0", "Upload-Length": str(size), "Upload-Metadata": meta,
        })
        assert status == 201, body
        location = urlparse(headers["location"]).path
        chunk = args.chunk_mb * MB
        offset = 0
        resource_id = None
        while offset < size:
            length = min(chunk, size - offset)
            status, headers, body = request(port, "PATCH", location, Body([(str(source), offset, length)]), {
                **auth, "Tus-Resumable": "1.0.0", "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream", "Content-Length": str(length),
            })
            assert status == 204, (status, body[:500])
            offset = int(headers["upload-offset"])
            resource_id = headers.get("upload-resource-id", resource_id)
        elapsed = time.perf_counter() - start
        assert resource_id, "no Upload-Resource-Id after the last chunk"
        results["tus_chunk_mib"] = args.chunk_mb
        results["tus_seconds"] = round(elapsed, 2)
        results["tus_mb_per_s"] = round(size / MB / elapsed, 1)
        results["after_tus_vmhwm_mib"] = status_kb(worker, "VmHWM") / 1024

        # --- download through X-Accel-Redirect ---
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        start = time.perf_counter()
        conn.request("GET", f"/api/resources/download/{multipart_id}/", headers=auth)
        response = conn.getresponse()
        assert response.status == 200, response.status
        received = 0
        while data := response.read(BLOCK):
            received += len(data)
        conn.close()
        elapsed = time.perf_counter() - start
        assert received == size, received
        results["download_accel_mb_per_s"] = round(size / MB / elapsed, 1)
        results["after_download_vmhwm_mib"] = status_kb(worker, "VmHWM") / 1024
        results["worker_peak_growth_mib"] = round(
            results["after_download_vmhwm_mib"] - results["baseline_vmhwm_mib"], 1)
        for key in ("baseline_vmhwm_mib", "after_multipart_vmhwm_mib", "after_tus_vmhwm_mib",
                    "after_download_vmhwm_mib"):
            results[key] = round(results[key], 1)
        print(json.dumps(results, indent=2))
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
