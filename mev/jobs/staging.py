"""Files in and out of a job: staging inputs into its working directory, storing produced files.

Storage belongs to the resources app (`mev.resources.storage`: new_key, save_path, local_copy,
delete). It is imported lazily; while it is absent, a minimal local fallback under MEDIA_ROOT is used
so the jobs code path stays small and testable.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import inspect
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _storage() -> Any | None:
    try:
        module = importlib.import_module("mev.resources.storage")
    except ModuleNotFoundError as exc:
        if exc.name != "mev.resources.storage":
            raise
        return None
    return module if all(hasattr(module, n) for n in ("new_key", "save_path", "local_copy")) else None


def safe_name(name: str) -> str:
    cleaned = _SAFE_NAME.sub("_", os.path.basename(name or "")).strip("._") or "file"
    return cleaned[:200]


def jobs_root() -> Path:
    return Path(getattr(settings, "MEV_JOBS_DIR", Path(settings.DATA_DIR) / "jobs"))


def workdir_for(execution_id: Any) -> Path:
    return jobs_root() / str(execution_id)


# -- storage adapter ---------------------------------------------------------------------------------


def _fallback_path(key: str) -> Path:
    root = Path(settings.MEDIA_ROOT).resolve()
    path = (root / key).resolve()
    if root not in path.parents:
        raise ValueError("storage key outside the storage root")
    return path


@contextlib.contextmanager
def local_copy(key: str) -> Iterator[Path]:
    storage = _storage()
    if storage is not None:
        with storage.local_copy(key) as path:
            yield Path(path)
        return
    yield _fallback_path(key)


def _call_with_known_kwargs(func: Any, **candidates: Any) -> Any:
    parameters = inspect.signature(func).parameters
    return func(**{k: v for k, v in candidates.items() if k in parameters})


def store_file(*, path: Path, owner_id: Any, resource_id: Any, name: str) -> tuple[str, int, str]:
    """Store a produced file; return (storage key, size, sha256)."""
    storage = _storage()
    if storage is not None:
        key = _call_with_known_kwargs(storage.new_key, owner_id=owner_id, owner=owner_id, resource_id=resource_id,
                                      resource=resource_id, name=name, filename=name)
        size, digest = storage.save_path(key=key, path=path)
        return key, size, digest
    key = f"{owner_id}/{resource_id}/{secrets.token_hex(8)}"
    target = _fallback_path(key)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)
    digest = hashlib.sha256()
    with open(target, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return key, target.stat().st_size, digest.hexdigest()


def delete_key(key: str) -> None:
    if not key:
        return
    storage = _storage()
    if storage is not None and hasattr(storage, "delete"):
        storage.delete(key)
        return
    with contextlib.suppress(FileNotFoundError, ValueError):
        _fallback_path(key).unlink()


# -- inputs -------------------------------------------------------------------------------------------


def stage_resource(resource: Any, workdir: Path) -> str:
    """Copy a resource into `<workdir>/inputs/<id>/<name>`; tables in their standard form."""
    key = resource.standardized_file or resource.datafile
    if not key:
        raise FileNotFoundError(f"The file {resource.name} has no stored contents.")
    target_dir = workdir / "inputs" / str(resource.id)
    target_dir.mkdir(parents=True, exist_ok=True)
    name = safe_name(resource.name)
    if resource.standardized_file and not name.endswith(".tsv"):
        name = f"{Path(name).stem or 'file'}.tsv"
    target = target_dir / name
    if target.exists():
        return str(target)
    # A copy, never a hard link: a tool that writes into its input must not change the stored file.
    with local_copy(key) as source:
        shutil.copyfile(source, target)
    return str(target)
