"""Storage quota per user (contract §7.3.10): how much a user may upload, and what is left.

What counts: the size of every resource the user owns (uploads, imports and analysis outputs,
active or not) plus the declared length of each resumable upload still in progress, which is
reserved when the upload is created so that parallel uploads cannot overshoot together. Derived
copies (standardized TSV, Parquet) are the server's business and do not count.

Where it is enforced: before a multipart body is read (from `Content-Length`, so a full account
fails fast), again under a lock on the user's row just before the upload becomes a resource (the
exact size; concurrent uploads of one user are checked one after the other), and when a resumable
upload is created (its `Upload-Length`). Analysis outputs and Dropbox imports are never refused or
discarded for the quota: a finished analysis is worth more than the limit. They count, so the next
upload may be refused.

The limit is the user's own `storage_quota_bytes` when set, else `MEV_STORAGE_QUOTA_BYTES`; 0 means
no limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Sum

from mev.core.exceptions import ApplicationError
from mev.resources.models import Resource, UploadSession


@dataclass(frozen=True)
class Usage:
    used_bytes: int
    quota_bytes: int | None  # None: no limit

    @property
    def available_bytes(self) -> int | None:
        return None if self.quota_bytes is None else max(0, self.quota_bytes - self.used_bytes)

    def as_json(self) -> dict[str, int | None]:
        return {"used_bytes": self.used_bytes, "quota_bytes": self.quota_bytes,
                "available_bytes": self.available_bytes}


def quota_for(user: Any) -> int | None:
    own = getattr(user, "storage_quota_bytes", None)
    limit = own if own is not None else int(getattr(settings, "MEV_STORAGE_QUOTA_BYTES", 0))
    return limit if limit > 0 else None


def usage_of(user: Any) -> Usage:
    stored = Resource.objects.filter(owner=user).aggregate(total=Sum("size"))["total"] or 0
    reserved = UploadSession.objects.filter(owner=user, resource__isnull=True).aggregate(total=Sum("length"))["total"]
    return Usage(used_bytes=int(stored) + int(reserved or 0), quota_bytes=quota_for(user))


def human_size(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def check(user: Any, incoming: int) -> None:
    """Refuse (413) a new file of `incoming` bytes that would take the user past the quota."""
    usage = usage_of(user)
    available = usage.available_bytes
    if available is None or incoming <= available:
        return
    assert usage.quota_bytes is not None
    raise ApplicationError(
        f"Your storage quota is full: this file needs {human_size(incoming)}, but only {human_size(available)} "
        f"of your {human_size(usage.quota_bytes)} is free ({human_size(usage.used_bytes)} used). "
        "Delete files you no longer need, or ask an administrator for more space.",
        status_code=413,
    )


@contextmanager
def reserved(user: Any, incoming: int) -> Iterator[None]:
    """Check the quota and keep the user's row locked until the block has recorded the new bytes.

    Two uploads of the same user finishing together are checked one after the other, so they
    cannot both pass against the same free space. Only that user's final step waits.
    """
    with transaction.atomic():
        get_user_model().objects.select_for_update().filter(pk=user.pk).exists()
        check(user, incoming)
        yield
