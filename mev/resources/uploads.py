"""Multipart upload plumbing: a streaming upload handler with a hard size limit.

`StreamingUploadHandler` writes the `datafile` part straight to a temporary file under
``settings.FILE_UPLOAD_TEMP_DIR``, hashing it (sha256) as it goes, and stops with 413 as soon
as the part crosses ``MEV_MAX_UPLOAD_BYTES``. Other parts are ignored (contract §7.1.4).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler

from mev.core.exceptions import ApplicationError

FILE_FIELD = "datafile"
# Multipart framing around the file: headers, boundaries, small form fields.
MULTIPART_SLACK = 1024 * 1024


def max_upload_bytes() -> int:
    return int(getattr(settings, "MEV_MAX_UPLOAD_BYTES", 2 * 1024**3))


def too_large() -> ApplicationError:
    limit = max_upload_bytes()
    return ApplicationError(
        f"The file is too large. The maximum upload size is {limit} bytes.", status_code=413
    )


class StreamedUpload(UploadedFile):
    """The received file: on disk at `path`, with its size and sha256 already known."""

    def __init__(self, *, file: Any, path: Path, name: str, size: int, sha256: str, content_type: str | None) -> None:
        super().__init__(file=file, name=name, content_type=content_type, size=size)
        self.path = path
        self.sha256 = sha256

    def temporary_file_path(self) -> str:
        return str(self.path)


class StreamingUploadHandler(FileUploadHandler):
    chunk_size = 1024 * 1024

    def __init__(self, request: Any = None) -> None:
        super().__init__(request)
        self.active = False
        self.done = False
        self.file: Any = None
        self.path: Path | None = None
        self.digest = hashlib.sha256()
        self.received = 0
        self.original_name = ""

    def handle_raw_input(self, input_data: Any, META: Any, content_length: int, boundary: Any,
                         encoding: str | None = None) -> None:
        if content_length and content_length > max_upload_bytes() + MULTIPART_SLACK:
            raise too_large()
        return None

    def new_file(self, field_name: str, file_name: str, content_type: str, content_length: int | None,
                 charset: str | None = None, content_type_extra: Any = None) -> None:
        super().new_file(field_name, file_name, content_type, content_length, charset, content_type_extra)
        self.active = field_name == FILE_FIELD and not self.done
        if not self.active:
            return
        fd, name = tempfile.mkstemp(dir=getattr(settings, "FILE_UPLOAD_TEMP_DIR", None), prefix="upload-")
        self.file = os.fdopen(fd, "wb")
        self.path = Path(name)
        self.original_name = file_name

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if not self.active:
            return None  # swallow parts that are not the data file
        self.received += len(raw_data)
        if self.received > max_upload_bytes():
            self.cleanup()
            raise too_large()
        self.digest.update(raw_data)
        self.file.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> StreamedUpload | None:
        if not self.active:
            return None
        self.active = False
        self.done = True
        self.file.flush()
        self.file.close()
        path, self.path = self.path, None  # from now on the view owns (and removes) the file
        assert path is not None
        return StreamedUpload(
            file=open(path, "rb"), path=path, name=self.original_name, size=self.received,
            sha256=self.digest.hexdigest(), content_type=self.content_type,
        )

    def upload_interrupted(self) -> None:
        self.cleanup()

    def cleanup(self) -> None:
        """Close and remove the temporary file, whatever state the upload is in."""
        if self.file is not None and not self.file.closed:
            self.file.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)
        self.active = False
