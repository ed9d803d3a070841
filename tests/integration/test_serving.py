"""nginx (Debian's) → gunicorn over a unix socket → Django, and Celery on Redis, as deployed."""

from __future__ import annotations

import os
import time

import pytest
import requests

from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = [pytest.mark.integration]


def test_static_files_are_answered_by_nginx_itself(stack, nginx_url):
    static = stack.data_dir / "static"
    (static / "probe.txt").write_text("served by nginx")
    response = requests.get(f"{nginx_url}/static/probe.txt", timeout=5)
    assert response.status_code == 200
    assert response.text == "served by nginx"
    assert response.headers["Server"].startswith("nginx")
    # gunicorn never saw the request: its access log has API calls only.
    assert "/static/probe.txt" not in stack.log("gunicorn")
    assert "GET /api/" in stack.log("gunicorn")


def test_api_calls_go_through_the_socket_to_django(stack, nginx_url):
    user = UserFactory()
    login = requests.post(f"{nginx_url}/api/token/", json={"email": user.email, "password": DEFAULT_PASSWORD},
                          timeout=10)
    assert login.status_code == 200, login.text
    me = requests.get(f"{nginx_url}/api/users/", headers={"Authorization": f"Bearer {login.json()['access']}"},
                      timeout=10)
    assert me.status_code == 200
    assert me.json()[0]["email"] == user.email
    # Django built the absolute URL from the Host nginx forwarded.
    assert me.json()[0]["url"].startswith(nginx_url)
    assert me.headers.get("X-Request-ID")
    unauthenticated = requests.get(f"{nginx_url}/api/users/", timeout=10)
    assert unauthenticated.status_code == 401


def test_an_oversized_body_is_refused_by_nginx_with_413(stack, nginx_url):
    response = requests.post(f"{nginx_url}/api/feedback/", data=b"x" * (2 * 1024 * 1024),
                             headers={"Content-Type": "application/octet-stream"}, timeout=20)
    assert response.status_code == 413
    assert response.json()["detail"].startswith("The file is too large")


def test_a_long_query_string_is_accepted(stack, nginx_url):
    ids = ",".join(f"ENSG{n:011d}" for n in range(2500))  # ~42 KB, far above the usual 8 KiB
    response = requests.get(f"{nginx_url}/api/?__rowname__=[in]:{ids}", timeout=10)
    assert response.status_code == 200


@pytest.fixture(params=["redis", "rabbitmq", "filesystem"])
def broker(request, stack):
    """Each broker the settings support; set before gunicorn and the worker start, so both use it."""
    urls = {
        "redis": os.environ.get("MEV_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
        "rabbitmq": os.environ.get("MEV_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//"),
        "filesystem": "filesystem://",  # the quick-start broker: a folder in the data directory
    }
    stack.env["CELERY_BROKER_URL"] = urls[request.param]
    return request.param


def test_a_request_commits_then_a_real_worker_sends_the_mail(broker, stack, nginx_url, celery_worker, tmp_path):
    """Feedback → transaction commit → task on the broker → worker → the admins' e-mail is written."""
    user = UserFactory()
    token = requests.post(f"{nginx_url}/api/token/", json={"email": user.email, "password": DEFAULT_PASSWORD},
                          timeout=10).json()["access"]
    response = requests.post(f"{nginx_url}/api/feedback/", json={"message": "the heatmap is lovely"},
                             headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 201
    mail_dir = tmp_path / "mail"

    def sent() -> str:
        # The file backend creates the message's file, then writes it: wait for the whole message.
        return "".join(p.read_text() for p in mail_dir.iterdir()) if mail_dir.exists() else ""

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "the heatmap is lovely" not in sent():
        time.sleep(0.1)
    assert mail_dir.exists() and any(mail_dir.iterdir()), stack.log("celery")[-3000:]
    assert "ops@example.org" in sent() and "the heatmap is lovely" in sent()
    assert "send_admin_email" in stack.log("celery")
    # The worker really used the broker under test (its banner names the transport).
    assert f"transport:   {stack.env['CELERY_BROKER_URL'].split(':')[0]}://" in stack.log("celery")
