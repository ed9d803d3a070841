"""gunicorn settings for WebMEV; each value can be overridden from the environment."""

import multiprocessing
import os

bind = os.environ.get("MEV_GUNICORN_BIND", "unix:/run/mev/gunicorn.sock")
workers = int(os.environ.get("MEV_GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("MEV_GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("MEV_GUNICORN_TIMEOUT", "300"))
graceful_timeout = 30
keepalive = 5
# The web client sends very long query strings (feature sets in `__rowname__=[in]:...`); 0 = no limit.
limit_request_line = 0
limit_request_field_size = 65536
# Heartbeat files on a tmpfs: a slow disk must not make the arbiter kill healthy workers.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
# Only nginx can reach the unix socket, so its forwarded headers (client IP, TLS) are trusted.
forwarded_allow_ips = os.environ.get("MEV_FORWARDED_ALLOW_IPS", "*" if bind.startswith("unix:") else "127.0.0.1")
accesslog = os.environ.get("MEV_GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("MEV_LOG_LEVEL", "info").lower()
wsgi_app = "mev.wsgi:application"
