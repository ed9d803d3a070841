"""Real processes for integration tests: gunicorn on a unix socket, nginx in front, Celery workers.

Each process runs the project's own deployment files (deploy/) against the test database, so these
tests exercise what production runs. They need PostgreSQL (the suite's database in CI): SQLite's
in-memory test database cannot be shared with another process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from django.conf import global_settings, settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: S110  (not up yet)
            pass
        time.sleep(0.1)
    detail = log.read_text()[-3000:] if log and log.exists() else ""
    raise AssertionError(f"{what} did not become ready in {timeout}s\n{detail}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def test_database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.fail("integration tests need PostgreSQL: run them through `make test` (DATABASE_URL=postgres://...)")
    name = connection.settings_dict["NAME"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{name}"


@dataclass
class Stack:
    env: dict[str, str]
    data_dir: Path
    logs: Path
    processes: list[subprocess.Popen]

    def spawn(self, name: str, argv: list[str], **env: str) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115  (closed with the process)
        process = subprocess.Popen(argv, cwd=ROOT, env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.processes.append(process)
        return process

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def gunicorn_on_loopback(self, workers: int = 2) -> str:
        """deploy/gunicorn.conf.py on a free loopback port (no nginx); its base URL once it answers."""
        port = free_port()
        self.spawn("gunicorn", [str(VENV_BIN / "gunicorn"), "--config", "deploy/gunicorn.conf.py"],
                   MEV_GUNICORN_BIND=f"127.0.0.1:{port}", MEV_GUNICORN_WORKERS=str(workers))
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: requests.get(f"{url}/api/", timeout=2).status_code == 200, timeout=30, what="gunicorn",
                   log=self.logs / "gunicorn.log")
        return url


@pytest.fixture
def stack(transactional_db, settings, tmp_path: Path) -> Iterator[Stack]:
    """The environment every spawned process shares: the test database, a data dir, a Redis broker."""
    # Users made here must log in on the servers, which hash passwords at full strength.
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
    data_dir = tmp_path / "data"
    (data_dir / "static").mkdir(parents=True)
    (data_dir / "files").mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEV_", "CELERY_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "mev.settings",
        "DATABASE_URL": test_database_url(),
        "MEV_DATA_DIR": str(data_dir),
        "MEV_STATIC_ROOT": str(data_dir / "static"),
        "MEV_MEDIA_ROOT": str(data_dir / "files"),
        "MEV_SECRET_KEY": settings.SECRET_KEY,
        "CELERY_BROKER_URL": os.environ.get("MEV_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
        "EMAIL_URL": f"filemail://{tmp_path / 'mail'}",
        "MEV_ADMIN_EMAILS": "ops@example.org",
        "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
    })
    running = Stack(env=env, data_dir=data_dir, logs=logs, processes=[])
    yield running
    for process in reversed(running.processes):
        stop(process)


@pytest.fixture
def gunicorn_socket(stack: Stack) -> Path:
    sock = stack.data_dir / "gunicorn.sock"
    stack.spawn("gunicorn", [str(VENV_BIN / "gunicorn"), "--config", "deploy/gunicorn.conf.py"],
                MEV_GUNICORN_BIND=f"unix:{sock}", MEV_GUNICORN_WORKERS="2")
    wait_until(sock.exists, timeout=30, what="gunicorn", log=stack.logs / "gunicorn.log")
    return sock


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not found:
        pytest.fail("nginx is not installed: `make test` installs it (scripts/ensure_services.sh)")
    return found


@pytest.fixture
def nginx_url(stack: Stack, gunicorn_socket: Path) -> str:
    """nginx from Debian, running our rendered site on a free loopback port, in front of gunicorn."""
    sys.path.insert(0, str(ROOT / "deploy"))
    try:
        from render import render_site
    finally:
        sys.path.pop(0)
    port = free_port()
    prefix = stack.data_dir / "nginx"
    (prefix / "logs").mkdir(parents=True)
    site = render_site({
        "MEV_NGINX_PORT": f"127.0.0.1:{port}",
        "MEV_GUNICORN_SOCKET": str(gunicorn_socket),
        "MEV_NGINX_MAX_BODY": "1m",
        "MEV_STATIC_ROOT": stack.env["MEV_STATIC_ROOT"],
        "MEV_MEDIA_ROOT": stack.env["MEV_MEDIA_ROOT"],
    })
    (prefix / "site.conf").write_text(site)
    temp = prefix / "temp"
    temp.mkdir()
    (prefix / "nginx.conf").write_text(f"""
user root;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    access_log {prefix}/logs/access.log;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {prefix}/site.conf;
}}
""")
    argv = [nginx_binary(), "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"]
    check = subprocess.run([*argv[:-2], "-t"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    stack.spawn("nginx", argv)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: requests.get(f"{url}/api/", timeout=2).status_code == 200, timeout=30,
               what="nginx + gunicorn", log=stack.logs / "gunicorn.log")
    return url


@pytest.fixture
def celery_worker(stack: Stack) -> subprocess.Popen:
    """A real Celery worker on the real Redis broker (solo pool: one process, easy to stop)."""
    worker = stack.spawn("celery", [str(VENV_BIN / "celery"), "-A", "mev", "worker", "--pool=solo",
                                    "--loglevel=INFO", "--without-gossip", "--without-mingle"])
    wait_until(lambda: "ready." in stack.log("celery"), timeout=60, what="celery worker",
               log=stack.logs / "celery.log")
    return worker


# --------------------------------------------------------------------------- a real Toil WES server


@pytest.fixture(scope="session")
def toil_venv() -> Path:
    venv = Path(os.environ.get("MEV_TOIL_VENV", "/opt/mev-toil-venv"))
    result = subprocess.run(["bash", str(ROOT / "scripts" / "toil_venv.sh")], capture_output=True, text=True,
                            timeout=1800, env={**os.environ, "MEV_TOIL_VENV": str(venv)})
    if result.returncode != 0:
        pytest.fail(f"scripts/toil_venv.sh failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return venv


@contextlib.contextmanager
def running_toil_server(toil_venv: Path, root: Path, *, path_first: tuple[Path, ...] = ()
                        ) -> Iterator[dict[str, Path | str]]:
    """`toil server` on a loopback port, its work under ``root``; ``path_first`` goes before Toil's
    venv on its PATH (the WDL runner wrapper of deploy/toil/)."""
    work_dir = root / "workflows"
    work_dir.mkdir()
    port = free_port()
    log_path = root / "server.log"
    path = [str(entry) for entry in path_first] + [str(toil_venv / "bin"), os.environ.get("PATH", "")]
    env = {**os.environ, "PATH": os.pathsep.join(path), "TMPDIR": str(root)}
    env.pop("VIRTUAL_ENV", None)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(toil_venv / "bin" / "toil"), "server", "--host", "127.0.0.1", "--port", str(port),
             "--bypass_celery", "-w", "1", "--work_dir", str(work_dir)],
            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: requests.get(f"{url}/ga4gh/wes/v1/service-info", timeout=2).ok, timeout=90,
                   what="toil server", log=log_path)
        yield {"url": url, "work_dir": work_dir, "root": root, "log": log_path}
    finally:
        stop(process)


@pytest.fixture(scope="session")
def toil_server(toil_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path | str]]:
    """Toil's WES server as released."""
    with running_toil_server(toil_venv, tmp_path_factory.mktemp("toil")) as server:
        yield server
