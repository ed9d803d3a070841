"""Tests of the Dropbox import bundle: main.py run as the local runner runs it, against a loopback
HTTP server (the real Dropbox cannot be reached here, so the inputs allow `127.0.0.1:<port>` over http)."""

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

BUNDLE = Path(__file__).resolve().parent.parent
BODY = b"gene\tS1\ng1\t1\n"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        if self.path == "/file":
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
        elif self.path == "/to-file":
            self.send_response(302)
            self.send_header("Location", "/file")
            self.end_headers()
        elif self.path == "/to-elsewhere":
            self.send_response(302)
            self.send_header("Location", "https://evil.example.com/x")
            self.end_headers()
        elif self.path == "/huge-declared":
            self.send_response(200)
            self.send_header("Content-Length", str(10**9))
            self.end_headers()
        else:
            self.send_error(404, "Not Found")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_port
    httpd.shutdown()
    httpd.server_close()


def _run(tmp_path, **inputs):
    (tmp_path / "inputs.json").write_text(json.dumps(inputs))
    result = subprocess.run([sys.executable, str(BUNDLE / "main.py"), "inputs.json"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False)
    outputs = tmp_path / "outputs.json"
    errors = tmp_path / "errors.json"
    return (result.returncode, json.loads(outputs.read_text()) if outputs.exists() else None,
            json.loads(errors.read_text()) if errors.exists() else None)


def _local(port, path, **extra):
    return {"download_link": f"http://127.0.0.1:{port}{path}", "filename": "f.tsv",
            "allowed_hosts": f"127.0.0.1:{port}", "require_https": False, "timeout_seconds": 10, **extra}


def test_downloads_the_file_under_a_sanitised_name(tmp_path, server):
    code, outputs, errors = _run(tmp_path, **_local(server, "/file", filename="../../etc/my file.tsv"))
    assert (code, errors) == (0, None)
    assert outputs == {"imported_file": "download/my_file.tsv"}
    assert (tmp_path / "download" / "my_file.tsv").read_bytes() == BODY


def test_follows_a_redirect_on_an_allowed_host(tmp_path, server):
    code, outputs, _ = _run(tmp_path, **_local(server, "/to-file"))
    assert code == 0 and (tmp_path / outputs["imported_file"]).read_bytes() == BODY


@pytest.mark.parametrize(("path", "extra", "expected"), [
    ("/missing", {}, "the server answered 404 (Not Found)"),
    ("/to-elsewhere", {}, "redirected somewhere it may not"),
    ("/huge-declared", {"max_bytes": 1000}, "larger than the limit of 1000 bytes"),
    ("/file", {"max_bytes": 5}, "larger than the limit of 5 bytes"),
    ("/file", {"require_https": True}, "Only https links"),
    ("/file", {"allowed_hosts": "dl.dropboxusercontent.com"}, "not an allowed Dropbox host"),
])
def test_failures_are_readable(tmp_path, server, path, extra, expected):
    code, outputs, errors = _run(tmp_path, **_local(server, path, **extra))
    assert code == 1 and outputs is None
    assert expected in errors[0], errors
    assert not list((tmp_path / "download").glob("*")) if (tmp_path / "download").exists() else True


def test_the_default_allow_list_is_dropbox_over_https(tmp_path):
    code, _, errors = _run(tmp_path, download_link="file:///etc/passwd", filename="x")
    assert code == 1 and "Only https" in errors[0]
    code, _, errors = _run(tmp_path, download_link="https://127.0.0.1/x", filename="x")
    assert code == 1 and "not an allowed Dropbox host" in errors[0]
