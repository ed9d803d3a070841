"""Serving stored files: safe Content-Disposition, X-Accel-Redirect, signed links with Range support."""

from __future__ import annotations

import hashlib
import mimetypes
import re
import unicodedata
from typing import Any
from urllib.parse import quote

from django.core import signing
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from mev.resources import storage

SIGNED_URL_SALT = "mev.resources.signed-url"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def signed_url_seconds() -> int:
    return int(storage.setting("MEV_SIGNED_URL_SECONDS", 300))


def safe_ascii_filename(name: str) -> str:
    """A plain-ASCII file name fit for the quoted ``filename="…"`` form.

    Accents are stripped, other non-ASCII becomes ``_``; quotes, backslashes, control characters
    and path separators become ``_``. Never empty.
    """
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    cleaned = "".join("_" if (c in '"\\/' or ord(c) < 32 or ord(c) == 127) else c for c in folded)
    cleaned = cleaned.strip().strip(".") or "download"
    return cleaned[:200]


def content_disposition(name: str, *, kind: str = "attachment") -> str:
    """``attachment; filename="<safe ascii>"; filename*=UTF-8''<percent-encoded>``.

    The client takes the text between the first pair of double quotes (contract §2.2), so the
    plain form comes first and can never contain a quote.
    """
    display = "".join(c for c in name if ord(c) >= 32 and ord(c) != 127) or "download"
    return f"{kind}; filename=\"{safe_ascii_filename(name)}\"; filename*=UTF-8''{quote(display, safe='')}"


def guess_content_type(name: str) -> str:
    content_type, encoding = mimetypes.guess_type(name, strict=False)
    if encoding == "gzip":
        return "application/gzip"
    if encoding:
        return "application/octet-stream"
    return content_type or "application/octet-stream"


def accel_enabled() -> bool:
    value = storage.setting("MEV_DOWNLOAD_ACCEL", False)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def accel_prefix() -> str:
    return str(storage.setting("MEV_DOWNLOAD_ACCEL_PREFIX", "/_protected/")).rstrip("/") + "/"


def _attach_headers(response: HttpResponseBase, name: str, size: int | None) -> HttpResponseBase:
    response["Content-Disposition"] = content_disposition(name)
    response["Content-Type"] = guess_content_type(name)
    response["X-Content-Type-Options"] = "nosniff"
    if size is not None:
        response["Content-Length"] = str(size)
    return response


def file_download_response(*, key: str, name: str, size: int | None = None) -> HttpResponseBase:
    """The response for ``GET /resources/download/<id>/`` on local storage or S3."""
    if storage.backend_name() != "local":
        url = storage.presigned_url(key, filename=name, expires=signed_url_seconds())
        response = HttpResponse(status=302)
        response["Location"] = url
        return response
    if accel_enabled():
        # nginx serves the bytes (location /_protected/ { internal; alias MEDIA_ROOT/; }).
        response = HttpResponse(b"")
        _attach_headers(response, name, None)
        del response["Content-Type"]
        response["Content-Type"] = guess_content_type(name)
        response["X-Accel-Redirect"] = accel_prefix() + quote(key)
        response["X-Accel-Buffering"] = "no"
        return response
    handle = storage.open_read(key)
    response = FileResponse(handle)
    response.block_size = storage.CHUNK_SIZE
    return _attach_headers(response, name, size)


# --- Signed links (local storage) ------------------------------------------------------------------

def _key_tag(key: str) -> str:
    # Ties the link to this stored file without revealing the storage layout.
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def make_signed_token(*, resource_id: str, key: str) -> str:
    """A link token for one resource's current file, valid MEV_SIGNED_URL_SECONDS."""
    return signing.TimestampSigner(salt=SIGNED_URL_SALT).sign_object({"r": resource_id, "k": _key_tag(key)})


def signed_token_matches(payload: dict[str, Any], *, resource_id: str, key: str) -> bool:
    return payload.get("r") == resource_id and payload.get("k") == _key_tag(key)


def read_signed_token(token: str) -> dict[str, Any] | None:
    try:
        return signing.TimestampSigner(salt=SIGNED_URL_SALT).unsign_object(token, max_age=signed_url_seconds())
    except signing.BadSignature:  # includes SignatureExpired
        return None


def _chunks(handle: Any, start: int, length: int) -> Any:
    try:
        handle.seek(start)
        remaining = length
        while remaining > 0:
            data = handle.read(min(storage.CHUNK_SIZE, remaining))
            if not data:
                break
            remaining -= len(data)
            yield data
    finally:
        handle.close()


def ranged_file_response(*, key: str, name: str, range_header: str | None, inline: bool = True) -> HttpResponseBase:
    """Serve a local stored file with single-range support (206/416), as IGV needs."""
    total = storage.size(key)
    start, end = 0, total - 1
    status = 200
    if range_header:
        match = _RANGE.match(range_header.strip())
        if match and (match.group(1) or match.group(2)):
            first, last = match.group(1), match.group(2)
            if first:
                start = int(first)
                end = min(int(last), total - 1) if last else total - 1
            else:  # suffix range: the last N bytes
                start = max(total - int(last), 0)
            if start >= total or start > end:
                response = HttpResponse(status=416)
                response["Content-Range"] = f"bytes */{total}"
                return response
            status = 206
    length = end - start + 1 if total else 0
    response = StreamingHttpResponse(_chunks(storage.open_read(key), start, length), status=status)
    response["Content-Disposition"] = content_disposition(name, kind="inline" if inline else "attachment")
    response["Content-Type"] = guess_content_type(name)
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    if status == 206:
        response["Content-Range"] = f"bytes {start}-{end}/{total}"
    return response
