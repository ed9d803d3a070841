"""Dropbox import (local mode, docs/tool-contract.md): download one shared file into the job folder.

Inputs (inputs.json): download_link, filename, and the server-set max_bytes, allowed_hosts,
require_https, timeout_seconds. The link and every redirect must be http(s) on an allowed host
(https only unless the server relaxed it for tests). The body is streamed to disk and cut off above
max_bytes. No shell is involved. Writes outputs.json `{"imported_file": "download/<file name>"}`, or
errors.json with a readable message and exit status 1.
"""

import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_HOSTS = "dl.dropboxusercontent.com,www.dropbox.com,dropbox.com"
DEFAULT_MAX_BYTES = 2 * 1024**3
CHUNK = 1 << 20
OUTPUT_DIR = "download"


class ImportFailure(Exception):
    pass


def safe_name(name):
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.basename(str(name or ""))).strip("._") or "file"
    return cleaned[:200]


def _truthy(value):
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "")
    return bool(value)


def link_problem(link, hosts, require_https):
    """None if `link` may be fetched, else why not. Hosts are `host` (default port) or `host:port`."""
    try:
        parsed = urllib.parse.urlsplit(link)
        port = parsed.port
    except ValueError:
        return "The link is not a valid URL."
    schemes = ("https",) if require_https else ("https", "http")
    if parsed.scheme not in schemes:
        return "Only https links can be imported."
    if parsed.username or parsed.password:
        return "Links with credentials are not accepted."
    host = (parsed.hostname or "").lower()
    default_port = port is None or port == {"https": 443, "http": 80}[parsed.scheme]
    if not ((host in hosts and default_port) or f"{host}:{port}" in hosts):
        return f"The host {host or '(none)'} is not an allowed Dropbox host."
    return None


def download(link, target, *, hosts, require_https, max_bytes, timeout):
    class GuardedRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):
            problem = link_problem(newurl, hosts, require_https)
            if problem:
                raise ImportFailure(f"The link redirected somewhere it may not: {problem}")
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    opener = urllib.request.build_opener(GuardedRedirects)
    request = urllib.request.Request(link, headers={"User-Agent": "WebMEV-import/1"})
    try:
        with opener.open(request, timeout=timeout) as response:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise ImportFailure(f"The file is larger than the limit of {max_bytes} bytes.")
            written = 0
            with open(target, "wb") as out:
                while True:
                    chunk = response.read(CHUNK)
                    if not chunk:
                        break
                    written += len(chunk)
                    if written > max_bytes:
                        raise ImportFailure(f"The file is larger than the limit of {max_bytes} bytes.")
                    out.write(chunk)
    except urllib.error.HTTPError as exc:
        raise ImportFailure(f"The file could not be downloaded: the server answered {exc.code} ({exc.reason}). "
                            "Check that the link is correct and still shared.") from None
    except urllib.error.URLError as exc:
        raise ImportFailure(f"The file could not be downloaded: {exc.reason}.") from None
    except TimeoutError:
        raise ImportFailure(f"The download timed out (no data for {timeout:g} seconds).") from None
    except OSError as exc:
        raise ImportFailure(f"The file could not be downloaded: {exc}.") from None
    return written


def main(inputs_path):
    with open(inputs_path) as handle:
        inputs = json.load(handle)
    hosts = {h.strip().lower() for h in str(inputs.get("allowed_hosts") or DEFAULT_HOSTS).split(",") if h.strip()}
    require_https = _truthy(inputs.get("require_https", True))
    max_bytes = int(inputs.get("max_bytes") or DEFAULT_MAX_BYTES)
    timeout = float(inputs.get("timeout_seconds") or 60)
    link = str(inputs.get("download_link") or "")
    problem = link_problem(link, hosts, require_https)
    if problem:
        raise ImportFailure(problem)
    os.makedirs(OUTPUT_DIR, exist_ok=True)
    target = os.path.join(OUTPUT_DIR, safe_name(inputs.get("filename")))
    try:
        size = download(link, target, hosts=hosts, require_https=require_https, max_bytes=max_bytes,
                        timeout=timeout)
    except ImportFailure:
        if os.path.exists(target):
            os.unlink(target)
        raise
    print(f"downloaded {size} bytes to {target}")
    with open("outputs.json", "w") as handle:
        json.dump({"imported_file": target}, handle)


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except ImportFailure as failure:
        with open("errors.json", "w") as handle:
            json.dump([str(failure)], handle)
        print(failure, file=sys.stderr)
        sys.exit(1)
