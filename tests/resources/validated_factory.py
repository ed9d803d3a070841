"""Test helper: a stored resource, optionally validated through the real service."""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.conf import settings

from mev.resources import storage
from mev.resources.models import Resource
from mev.resources.validation import resource_validate_now
from mev.users.models import User


def store_resource(owner: User, content: str | bytes, *, name: str = "data.tsv") -> Resource:
    """An untyped, active resource whose file is stored through `storage.save_path`."""
    resource = Resource.objects.create(owner=owner, name=name)
    key = storage.new_key(owner_id=owner.pk, resource_id=resource.pk)
    data = content.encode() if isinstance(content, str) else content
    Path(settings.FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR, delete=False) as handle:
        handle.write(data)
    size, checksum = storage.save_path(key=key, path=Path(handle.name), move=True)
    resource.datafile, resource.size, resource.checksum = key, size, checksum
    resource.save(update_fields=["datafile", "size", "checksum"])
    return resource


def make_resource(
    owner: User, content: str | bytes, *, resource_type: str | None = None, file_format: str | None = None,
    name: str = "data.tsv",
) -> Resource:
    """A stored resource, validated as `resource_type`/`file_format` when given."""
    resource = store_resource(owner, content, name=name)
    if resource_type is not None:
        resource = resource_validate_now(resource=resource, resource_type=resource_type, file_format=file_format)
    return resource
