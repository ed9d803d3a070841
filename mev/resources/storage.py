"""File storage behind one small interface: local directory or S3, chosen by ``MEV_STORAGE``.

Every stored file is addressed by a *key*, a relative POSIX path chosen by the server
(`new_key`). Keys are never derived from a user's file name and are never reused, so a
stored file is never overwritten (contract §7.2.7).

Backends (a registry, see `BACKENDS`):

- ``local`` (default): files live under ``settings.MEDIA_ROOT/<key>``.
- ``s3``: objects live in ``MEV_S3_BUCKET`` under ``MEV_S3_PREFIX/<key>``, through
  django-storages' ``S3Storage`` (``MEV_S3_ENDPOINT_URL``, ``MEV_S3_REGION``,
  ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``).

Every function streams in chunks of `CHUNK_SIZE`; no file is ever held whole in memory.
The module-level functions are the public API; callers never touch a backend object.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Protocol

from django.conf import settings

CHUNK_SIZE = 1024 * 1024


# Passed as `checksum` to `save_path` by callers that have no use for the file's sha256 (derived
# copies): a linked local file is then not read again just to hash it (~1 ms per MB).
SKIP_CHECKSUM = "skip"


class StorageError(Exception):
    """A storage operation that cannot be carried out (bad key, key already taken, ...)."""


class KeyExistsError(StorageError):
    """Raised by `save_stream`/`save_path` when the key is already taken: nothing is overwritten."""


def setting(name: str, default: Any) -> Any:
    """``settings.<name>``, else the environment variable of that name, else `default`.

    The environment fallback lets these knobs work before they are declared in mev/settings.py.
    """
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, default)
    return value


def check_key(key: str) -> str:
    """Return `key` if it is a safe relative storage key, else raise `StorageError`."""
    if not key or "\x00" in key or "\\" in key or key.startswith("/"):
        raise StorageError(f"invalid storage key: {key!r}")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise StorageError(f"invalid storage key: {key!r}")
    return key


def new_key(*, owner_id: Any, resource_id: Any, suffix: str = "") -> str:
    """A fresh, unique key ``<owner_id>/<resource_id>/<32 random hex chars><suffix>``.

    `suffix` is a server-chosen tag such as ``".parquet"`` or ``".standardized.tsv"``; it may
    contain only letters, digits, ``.``, ``_`` and ``-``. The user's file name is never part of it.
    """
    if suffix and not all(c.isalnum() or c in "._-" for c in suffix):
        raise StorageError(f"invalid key suffix: {suffix!r}")
    return check_key(f"{owner_id}/{resource_id}/{secrets.token_hex(16)}{suffix}")


class _HashingReader:
    """Wraps a readable binary stream; counts and hashes what passes through `read`."""

    def __init__(self, fileobj: BinaryIO) -> None:
        self._fileobj = fileobj
        self.size = 0
        self.sha256 = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self._fileobj.read(CHUNK_SIZE if n is None or n < 0 else n)
        self.size += len(data)
        self.sha256.update(data)
        return data


def sha256_of_path(path: Path) -> tuple[int, str]:
    """(size, sha256 hex) of a local file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            size += len(chunk)
            digest.update(chunk)
    return size, digest.hexdigest()


class StorageBackend(Protocol):
    name: str

    def save_stream(self, key: str, fileobj: BinaryIO) -> tuple[int, str]: ...
    def save_path(self, key: str, path: Path, move: bool, checksum: str | None) -> tuple[int, str]: ...
    def open_read(self, key: str) -> BinaryIO: ...
    def local_copy(self, key: str) -> contextlib.AbstractContextManager[Path]: ...
    def delete(self, key: str) -> None: ...
    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int: ...
    def local_path(self, key: str) -> Path | None: ...
    def presigned_url(self, key: str, filename: str, expires: int) -> str | None: ...
    def iter_keys(self) -> Iterator[tuple[str, float]]: ...


class LocalBackend:
    """Files under ``settings.MEDIA_ROOT`` (read at each call, so tests may change it)."""

    name = "local"

    @property
    def root(self) -> Path:
        return Path(settings.MEDIA_ROOT)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _publish(self, tmp: Path, final: Path) -> None:
        """Give `tmp` its final name without ever replacing an existing file."""
        try:
            os.link(tmp, final)  # fails with FileExistsError instead of overwriting
        except FileExistsError as exc:
            raise KeyExistsError(f"storage key already exists: {final}") from exc
        finally:
            tmp.unlink(missing_ok=True)

    def save_stream(self, key: str, fileobj: BinaryIO) -> tuple[int, str]:
        final = self._path(key)
        if final.exists():
            raise KeyExistsError(f"storage key already exists: {key}")
        final.parent.mkdir(parents=True, exist_ok=True)
        reader = _HashingReader(fileobj)
        fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=".partial-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := reader.read(CHUNK_SIZE):
                    out.write(chunk)
            self._publish(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return reader.size, reader.sha256.hexdigest()

    def save_path(self, key: str, path: Path, move: bool, checksum: str | None) -> tuple[int, str]:
        final = self._path(key)
        if final.exists():
            raise KeyExistsError(f"storage key already exists: {key}")
        final.parent.mkdir(parents=True, exist_ok=True)
        if move:
            try:
                os.link(path, final)  # same file system: no copy at all
            except FileExistsError as exc:
                raise KeyExistsError(f"storage key already exists: {key}") from exc
            except OSError:
                with open(path, "rb") as handle:
                    result = self.save_stream(key, handle)
                Path(path).unlink(missing_ok=True)
                return result
            Path(path).unlink(missing_ok=True)
            size = final.stat().st_size
            if checksum == SKIP_CHECKSUM:
                return size, ""
            return (size, checksum) if checksum else sha256_of_path(final)
        with open(path, "rb") as handle:
            return self.save_stream(key, handle)

    def open_read(self, key: str) -> BinaryIO:
        return open(self._path(key), "rb")

    @contextlib.contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        path = self._path(key)
        if not path.exists():
            raise FileNotFoundError(key)
        yield path

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        # Tidy empty <owner>/<resource>/ folders, never above MEDIA_ROOT.
        parent = path.parent
        root = self.root.resolve()
        for _ in range(2):
            if parent.resolve() == root:
                break
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def presigned_url(self, key: str, filename: str, expires: int) -> str | None:
        return None

    def iter_keys(self) -> Iterator[tuple[str, float]]:
        root = self.root
        if not root.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            relative = Path(dirpath).relative_to(root).as_posix()
            for filename in sorted(filenames):
                if filename.startswith(".partial-"):
                    continue  # a save in progress (or one that crashed): not a key yet
                try:
                    modified = os.stat(os.path.join(dirpath, filename)).st_mtime
                except FileNotFoundError:
                    continue
                yield (filename if relative == "." else f"{relative}/{filename}"), modified


class S3Backend:
    """Objects in one bucket through django-storages' S3Storage (works with any S3 endpoint)."""

    name = "s3"

    def __init__(self, *, bucket: str, endpoint_url: str | None, region: str | None, prefix: str,
                 access_key: str | None, secret_key: str | None) -> None:
        from storages.backends.s3 import S3Storage

        self.prefix = prefix.strip("/")
        self.bucket_name = bucket
        self.storage = S3Storage(
            bucket_name=bucket,
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            access_key=access_key or None,
            secret_key=secret_key or None,
            location=self.prefix,
            file_overwrite=False,
            default_acl=None,
            querystring_auth=True,
            signature_version="s3v4",
            addressing_style="path" if endpoint_url else None,
        )

    def _full(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    @property
    def _client(self) -> Any:
        return self.storage.connection.meta.client

    def save_stream(self, key: str, fileobj: BinaryIO) -> tuple[int, str]:
        if self.exists(key):
            raise KeyExistsError(f"storage key already exists: {key}")
        reader = _HashingReader(fileobj)
        # Multipart upload in CHUNK_SIZE..8 MiB parts: never whole in memory.
        self._client.upload_fileobj(reader, self.bucket_name, self._full(key))
        return reader.size, reader.sha256.hexdigest()

    def save_path(self, key: str, path: Path, move: bool, checksum: str | None) -> tuple[int, str]:
        with open(path, "rb") as handle:
            result = self.save_stream(key, handle)
        if move:
            Path(path).unlink(missing_ok=True)
        return result

    def open_read(self, key: str) -> BinaryIO:
        # A StreamingBody: read(n) pulls from the network as it goes; not seekable.
        return self._client.get_object(Bucket=self.bucket_name, Key=self._full(key))["Body"]

    @contextlib.contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        tmp_dir = getattr(settings, "FILE_UPLOAD_TEMP_DIR", None)
        suffix = "".join(PurePosixPath(key).suffixes[-2:])
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="s3copy-", suffix=suffix)
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                self._client.download_fileobj(self.bucket_name, self._full(key), out)
            yield path
        finally:
            path.unlink(missing_ok=True)

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self.bucket_name, Key=self._full(key))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client.head_object(Bucket=self.bucket_name, Key=self._full(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def size(self, key: str) -> int:
        return int(self._client.head_object(Bucket=self.bucket_name, Key=self._full(key))["ContentLength"])

    def local_path(self, key: str) -> Path | None:
        return None

    def presigned_url(self, key: str, filename: str, expires: int) -> str | None:
        from mev.resources.downloads import content_disposition, guess_content_type

        return self._client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket_name,
                "Key": self._full(key),
                "ResponseContentDisposition": content_disposition(filename),
                "ResponseContentType": guess_content_type(filename),
            },
            ExpiresIn=int(expires),
        )

    def iter_keys(self) -> Iterator[tuple[str, float]]:
        start = f"{self.prefix}/" if self.prefix else ""
        pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket_name, Prefix=start)
        for page in pages:
            for item in page.get("Contents", []):
                yield item["Key"][len(start):], item["LastModified"].timestamp()


def _make_local() -> StorageBackend:
    return LocalBackend()


def _make_s3() -> StorageBackend:
    bucket = setting("MEV_S3_BUCKET", "")
    if not bucket:
        raise StorageError("MEV_STORAGE=s3 needs MEV_S3_BUCKET")
    return S3Backend(
        bucket=bucket,
        endpoint_url=setting("MEV_S3_ENDPOINT_URL", "") or None,
        region=setting("MEV_S3_REGION", "") or None,
        prefix=setting("MEV_S3_PREFIX", ""),
        access_key=setting("AWS_ACCESS_KEY_ID", "") or None,
        secret_key=setting("AWS_SECRET_ACCESS_KEY", "") or None,
    )


# The registry: adding a backend is one factory and one line here.
BACKENDS: dict[str, Any] = {"local": _make_local, "s3": _make_s3}

_cache: dict[tuple[Any, ...], StorageBackend] = {}
_cache_lock = threading.Lock()


def backend() -> StorageBackend:
    """The configured backend (cached per configuration, so tests can switch it with `settings`)."""
    name = str(setting("MEV_STORAGE", "local")).lower()
    if name not in BACKENDS:
        raise StorageError(f"unknown MEV_STORAGE {name!r}; choose one of {sorted(BACKENDS)}")
    config = (name,) + tuple(
        setting(n, "") for n in ("MEV_S3_BUCKET", "MEV_S3_ENDPOINT_URL", "MEV_S3_REGION", "MEV_S3_PREFIX",
                                  "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    ) if name != "local" else ("local",)
    with _cache_lock:
        if config not in _cache:
            _cache[config] = BACKENDS[name]()
        return _cache[config]


def backend_name() -> str:
    """``"local"`` or ``"s3"``."""
    return backend().name


# --- Public API ------------------------------------------------------------------------------------

def save_stream(*, key: str, fileobj: BinaryIO) -> tuple[int, str]:
    """Store everything `fileobj.read()` yields under `key`; return (size in bytes, sha256 hex).

    Read and written in chunks, never whole in memory. Raises `KeyExistsError` if `key` is taken
    (nothing is overwritten); on any failure nothing is left under `key`.
    """
    return backend().save_stream(check_key(key), fileobj)


def save_path(*, key: str, path: Path, move: bool = False, checksum: str | None = None) -> tuple[int, str]:
    """Store the local file `path` under `key`; return (size, sha256 hex).

    `move=True` lets the backend consume `path` (on local storage it becomes a hard link, no copy,
    when on the same file system) and removes it afterwards. `checksum`, if the caller already
    knows the sha256, saves re-reading the file; `SKIP_CHECKSUM` says no hash is wanted (the sha256
    returned may then be ""). Raises `KeyExistsError` if `key` is taken.
    """
    return backend().save_path(check_key(key), Path(path), move, checksum)


def open_read(key: str) -> BinaryIO:
    """A readable binary stream of the stored file; the caller closes it.

    Local: a real, seekable file. S3: a streaming body (read(n) only, not seekable).
    Raises FileNotFoundError (local) or botocore ClientError (S3) for a missing key.
    """
    return backend().open_read(check_key(key))


def local_copy(key: str) -> contextlib.AbstractContextManager[Path]:
    """``with local_copy(key) as path:`` a local file path holding the stored bytes.

    Local: the real stored file (do not modify or delete it). S3: a temporary file under
    ``FILE_UPLOAD_TEMP_DIR`` downloaded in chunks, removed when the block exits.
    """
    return backend().local_copy(check_key(key))


def delete(key: str) -> None:
    """Remove the stored file; a missing key is not an error (idempotent). Empty key: no-op."""
    if key:
        backend().delete(check_key(key))


def iter_keys() -> Iterator[tuple[str, float]]:
    """Every stored key with its modification time (epoch seconds), in no guaranteed order."""
    return backend().iter_keys()


def exists(key: str) -> bool:
    """True if a file is stored under `key`."""
    return bool(key) and backend().exists(check_key(key))


def size(key: str) -> int:
    """Size in bytes of the stored file."""
    return backend().size(check_key(key))


def local_path(key: str) -> Path | None:
    """The file's absolute path on local storage (it may not exist yet); None on S3."""
    return backend().local_path(check_key(key))


def presigned_url(key: str, *, filename: str, expires: int = 300) -> str | None:
    """A pre-signed GET URL valid `expires` seconds that downloads as `filename` (S3); None on local."""
    return backend().presigned_url(check_key(key), filename, expires)


def copy_to_temp(fileobj: BinaryIO, *, directory: str | None = None) -> tuple[Path, int, str]:
    """Helper: spool a stream to a new temp file in chunks; return (path, size, sha256)."""
    reader = _HashingReader(fileobj)
    fd, name = tempfile.mkstemp(dir=directory or getattr(settings, "FILE_UPLOAD_TEMP_DIR", None))
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(reader, out, CHUNK_SIZE)  # type: ignore[misc]
    return Path(name), reader.size, reader.sha256.hexdigest()
