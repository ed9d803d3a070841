"""The production switch: no defaults for secrets, secure cookies and proxy headers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _load_settings(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import django, json; from django.conf import settings; django.setup(); "
        "print(json.dumps({'cookie': settings.SESSION_COOKIE_SECURE, "
        "'proxy': list(getattr(settings, 'SECURE_PROXY_SSL_HEADER', None) or []), "
        "'hsts': settings.SECURE_HSTS_SECONDS, 'hosts': settings.ALLOWED_HOSTS, "
        "'db': settings.DATABASES['default']['ENGINE'], 'broker': settings.CELERY_BROKER_URL}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MEV_", "DATABASE_URL", "CELERY_"))}
    clean.update({"DJANGO_SETTINGS_MODULE": "mev.settings", "MEV_DATA_DIR": str(tmp_path), **env})
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True,
                          timeout=60)


def test_quickstart_defaults_need_no_service(tmp_path):
    result = _load_settings(tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"db": "django.db.backends.sqlite3"' in result.stdout
    assert '"broker": "filesystem://"' in result.stdout
    assert (tmp_path / "secret_key").exists()


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = _load_settings(tmp_path, MEV_PRODUCTION="1", MEV_ALLOWED_HOSTS="mev.example.org")
    assert result.returncode != 0
    assert "MEV_SECRET_KEY" in result.stderr
    assert not (tmp_path / "secret_key").exists()


def test_production_refuses_to_start_without_allowed_hosts(tmp_path):
    result = _load_settings(tmp_path, MEV_PRODUCTION="1", MEV_SECRET_KEY="k" * 50)
    assert result.returncode != 0
    assert "MEV_ALLOWED_HOSTS" in result.stderr


def test_production_sets_secure_cookies_and_trusts_the_proxy_tls_header(tmp_path):
    result = _load_settings(tmp_path, MEV_PRODUCTION="1", MEV_SECRET_KEY="k" * 50,
                            MEV_ALLOWED_HOSTS="mev.example.org")
    assert result.returncode == 0, result.stderr
    assert '"cookie": true' in result.stdout
    assert '"proxy": ["HTTP_X_FORWARDED_PROTO", "https"]' in result.stdout
    assert '"hsts": 31536000' in result.stdout


def test_database_and_broker_urls_switch_backends(tmp_path):
    result = _load_settings(tmp_path, DATABASE_URL="postgres://postgres@127.0.0.1:5432/x",
                            CELERY_BROKER_URL="redis://127.0.0.1:6379/0")
    assert result.returncode == 0, result.stderr
    assert '"db": "django.db.backends.postgresql"' in result.stdout
    assert '"broker": "redis://127.0.0.1:6379/0"' in result.stdout
