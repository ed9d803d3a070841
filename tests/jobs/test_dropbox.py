"""Dropbox imports (contract §2.12, §7.1.11): POST /api/resources/dropbox-upload/ starts one
non-workspace job of the built-in `operations/dropbox_import` bundle per file.

The real Dropbox cannot be reached from the tests: the end-to-end tests serve files from a loopback
`http.server` in a thread and, for those tests only, relax the allow-list (MEV_DROPBOX_HOSTS =
`127.0.0.1:<port>`) and the https rule (MEV_DROPBOX_REQUIRE_HTTPS = False) with settings overrides.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mev.jobs.models import ExecutedOperation, JobState
from mev.jobs.services import dropbox_link_problem
from mev.jobs.staging import local_copy
from mev.operations.models import Operation
from mev.operations.services import operation_ingest_folder
from mev.resources.models import Resource

DROPBOX_BUNDLE = Path(__file__).resolve().parents[2] / "operations" / "dropbox_import"
BODY = b"gene\tS1\tS2\ng1\t1\t2\n"
URL = "/api/resources/dropbox-upload/"


@pytest.fixture
def dropbox_operation(db) -> Operation:
    return operation_ingest_folder(folder=DROPBOX_BUNDLE)[0]


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/s/file.tsv"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
        elif self.path == "/s/big":
            self.send_response(200)  # no Content-Length: the cap must apply while streaming
            self.end_headers()
            self.wfile.write(b"x" * 5000)
        elif self.path == "/s/redirect":
            self.send_response(302)
            self.send_header("Location", f"http://localhost:{self.server.server_port}/s/file.tsv")
            self.end_headers()
        else:
            self.send_error(404, "Not Found")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(settings) -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    port = httpd.server_port
    # Test-only relaxation: the loopback server stands in for Dropbox (see the module docstring).
    settings.MEV_DROPBOX_HOSTS = [f"127.0.0.1:{port}"]
    settings.MEV_DROPBOX_REQUIRE_HTTPS = False
    settings.MEV_DROPBOX_TIMEOUT_SECONDS = 10
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def post(auth_client, django_capture_on_commit_callbacks):
    def _post(body, client=None):
        with django_capture_on_commit_callbacks(execute=True):
            return (client or auth_client).post(URL, body, format="json")

    return _post


# -- the allow-list ----------------------------------------------------------------------------------


@pytest.mark.parametrize("link", [
    "https://dl.dropboxusercontent.com/s/abc/file.tsv?dl=1",
    "https://www.dropbox.com/s/abc/file.tsv?dl=1",
    "https://DROPBOX.com/s/abc/file.tsv",
    "https://dropbox.com:443/s/abc/file.tsv",
])
def test_dropbox_links_are_accepted(link):
    assert dropbox_link_problem(link) is None


@pytest.mark.parametrize(("link", "expected"), [
    ("http://dl.dropboxusercontent.com/s/abc/file.tsv", "Only https"),
    ("ftp://dl.dropboxusercontent.com/file.tsv", "Only https"),
    ("file:///etc/passwd", "Only https"),
    ("https://evil.example.com/s/file.tsv", "not an allowed Dropbox host"),
    ("https://dropbox.com.evil.example.com/s/file.tsv", "not an allowed Dropbox host"),
    ("https://evil.example.com/dl.dropboxusercontent.com/file.tsv", "not an allowed Dropbox host"),
    ("https://dl.dropboxusercontent.com@evil.example.com/file.tsv", "credentials"),
    ("https://dl.dropboxusercontent.com:8443/file.tsv", "not an allowed Dropbox host"),
    ("https://127.0.0.1/file.tsv", "not an allowed Dropbox host"),
    ("https://dl.dropboxusercontent.com/a b", "not a valid URL"),
    ("https://dl.dropboxusercontent.com:99999/x", "not a valid URL"),
    ("", "required"),
    (42, "required"),
])
def test_other_links_are_refused(link, expected):
    assert expected in (dropbox_link_problem(link) or "")


@pytest.mark.parametrize(("body", "field"), [
    ({"download_link": "https://dl.dropboxusercontent.com/s/a.tsv", "filename": "a.tsv"}, "non_field_errors"),
    ([], "non_field_errors"),
    (["https://dl.dropboxusercontent.com/s/a.tsv"], "non_field_errors"),
    ([{"filename": "a.tsv"}], "download_link"),
    ([{"download_link": "https://dl.dropboxusercontent.com/s/a.tsv"}], "filename"),
    ([{"download_link": "https://dl.dropboxusercontent.com/s/a.tsv", "filename": "  "}], "filename"),
    ([{"download_link": "http://dl.dropboxusercontent.com/s/a.tsv", "filename": "a.tsv"}], "download_link"),
    ([{"download_link": "https://dl.dropboxusercontent.com/s/a.tsv", "filename": "a.tsv"},
      {"download_link": "https://169.254.169.254/latest/meta-data", "filename": "b.tsv"}], "download_link"),
])
def test_bad_requests_are_400_with_field_errors_and_start_nothing(post, dropbox_operation, body, field):
    answer = post(body)
    assert answer.status_code == 400, answer.json()
    assert field in answer.json()
    assert not ExecutedOperation.objects.exists()


def test_the_refusal_names_the_item(post, dropbox_operation):
    answer = post([{"download_link": "https://dl.dropboxusercontent.com/s/a.tsv", "filename": "a.tsv"},
                   {"download_link": "https://evil.example.com/b.tsv", "filename": "b.tsv"}])
    assert answer.json()["download_link"] == ["Item 1: The host evil.example.com is not an allowed Dropbox host."]


def test_anonymous_requests_are_refused(api_client, dropbox_operation):
    answer = api_client.post(URL, [{"download_link": "https://dl.dropboxusercontent.com/s/a", "filename": "a"}],
                             format="json")
    assert answer.status_code == 401


def test_without_the_bundle_the_service_is_unavailable(post, db):
    answer = post([{"download_link": "https://dl.dropboxusercontent.com/s/a.tsv", "filename": "a.tsv"}])
    assert answer.status_code == 503 and "message" in answer.json()


def test_the_run_endpoint_rechecks_the_allow_list(run, dropbox_operation):
    """Defence in depth: the operation is runnable through /operations/run/ too; the same rule applies."""
    answer = run({"operation_id": str(dropbox_operation.id),
                  "inputs": {"download_link": "https://evil.example.com/x", "filename": "x"}})
    assert answer.status_code == 400
    assert "not an allowed Dropbox host" in answer.json()["inputs"]["download_link"]
    assert not ExecutedOperation.objects.exists()


def test_server_limits_override_what_the_caller_sends(run, dropbox_operation, settings):
    settings.MEV_MAX_UPLOAD_BYTES = 1234
    answer = run({"operation_id": str(dropbox_operation.id), "inputs": {
        "download_link": "https://dl.dropboxusercontent.com/s/x", "filename": "../../x y.tsv",
        "max_bytes": 10**12, "allowed_hosts": "evil.example.com", "require_https": False}})
    assert answer.status_code == 200, answer.json()
    execution = ExecutedOperation.objects.get(pk=answer.json()["executed_operation_id"])
    assert execution.inputs["max_bytes"] == 1234
    assert execution.inputs["allowed_hosts"] == "dl.dropboxusercontent.com,www.dropbox.com,dropbox.com"
    assert execution.inputs["require_https"] is True
    assert execution.inputs["filename"] == "x_y.tsv"
    assert execution.workspace_id is None


# -- end to end (loopback server) -------------------------------------------------------------------


def test_an_import_creates_an_untyped_resource(post, drive, auth_client, user, dropbox_operation, server):
    answer = post([{"download_link": f"{server}/s/file.tsv?dl=1", "filename": "../My counts.tsv"},
                   {"download_link": f"{server}/s/file.tsv", "filename": "second.tsv"}])
    assert answer.status_code == 200, answer.json()
    upload_ids = answer.json()["upload_ids"]
    assert len(upload_ids) == 2

    for upload_id in upload_ids:
        execution = drive(upload_id)
        assert execution.state == JobState.COMPLETED, execution.error_messages
        assert execution.workspace_id is None and execution.owner_id == user.pk
        poll = auth_client.get(f"/api/executed-operations/{upload_id}/")
        assert poll.status_code == 200 and poll.json()["job_failed"] is False

    listed = {r["name"]: r for r in auth_client.get("/api/resources/").json()}
    assert set(listed) == {"My_counts.tsv", "second.tsv"}
    item = listed["My_counts.tsv"]
    assert item["resource_type"] == "*" and item["is_active"] is True
    resource = Resource.objects.get(pk=item["id"])
    assert resource.owner_id == user.pk
    with local_copy(resource.datafile) as path:
        assert Path(path).read_bytes() == BODY
    assert str(resource.id) in ExecutedOperation.objects.get(pk=upload_ids[0]).outputs.values()


def test_a_missing_file_fails_with_a_readable_message(post, drive, auth_client, dropbox_operation, server):
    answer = post([{"download_link": f"{server}/s/gone.tsv", "filename": "gone.tsv"}])
    assert answer.status_code == 200
    execution = drive(answer.json()["upload_ids"][0])
    assert execution.state == JobState.FAILED
    assert any("answered 404" in message for message in execution.error_messages), execution.error_messages
    assert not Resource.objects.exists()
    poll = auth_client.get(f"/api/executed-operations/{execution.id}/")
    assert poll.json()["job_failed"] is True


def test_a_download_above_the_size_limit_fails(post, drive, dropbox_operation, server, settings):
    settings.MEV_MAX_UPLOAD_BYTES = 1000
    execution = drive(post([{"download_link": f"{server}/s/big", "filename": "big.bin"}]).json()["upload_ids"][0])
    assert execution.state == JobState.FAILED
    assert any("larger than the limit of 1000 bytes" in m for m in execution.error_messages), execution.error_messages
    assert not Resource.objects.exists()


def test_a_redirect_off_the_allow_list_fails(post, drive, dropbox_operation, server):
    execution = drive(post([{"download_link": f"{server}/s/redirect", "filename": "r.tsv"}]).json()["upload_ids"][0])
    assert execution.state == JobState.FAILED
    assert any("redirected" in m and "localhost" in m for m in execution.error_messages), execution.error_messages


def test_imports_have_their_own_quota(auth_client, run, nows_operation, dropbox_operation, settings):
    """A batch of files does not hit the analysis quota, and imports are capped on their own.
    (Posted without running the on-commit submissions: nothing is fetched.)"""
    settings.MEV_MAX_CONCURRENT_JOBS_PER_USER = 1
    settings.MEV_DROPBOX_MAX_FILES = 3
    link = "https://dl.dropboxusercontent.com/s/a.tsv"
    too_many = auth_client.post(URL, [{"download_link": link, "filename": f"{i}.tsv"} for i in range(4)],
                                format="json")
    assert too_many.status_code == 400 and "At most 3 files" in too_many.json()["non_field_errors"][0]
    batch = auth_client.post(URL, [{"download_link": link, "filename": f"{i}.tsv"} for i in range(3)], format="json")
    assert batch.status_code == 200 and len(batch.json()["upload_ids"]) == 3
    assert auth_client.post(URL, [{"download_link": link, "filename": "4.tsv"}], format="json").status_code == 429
    assert ExecutedOperation.objects.count() == 3
    analysis = auth_client.post("/api/operations/run/", {"operation_id": str(nows_operation.id),
                                                         "inputs": {"number": 2}}, format="json")
    assert analysis.status_code == 200, analysis.json()
