"""Helpers for the resource API tests (plain functions, no fixtures, so other test files are unaffected)."""

from __future__ import annotations

import io
import uuid
from typing import Any

import boto3
import pytest

from mev.resources import storage
from mev.resources.models import Resource
from mev.workspaces.models import Workspace, WorkspaceResource


def stored_resource(owner: Any, *, content: bytes = b"gene\ts1\ng1\t1\n", name: str = "counts.tsv",
                    **fields: Any) -> Resource:
    """A resource whose data file really exists in the configured storage."""
    resource_id = uuid.uuid4()
    key = storage.new_key(owner_id=owner.pk, resource_id=resource_id)
    size, sha = storage.save_stream(key=key, fileobj=io.BytesIO(content))
    return Resource.objects.create(id=resource_id, owner=owner, name=name, datafile=key, size=size,
                                   checksum=sha, **fields)


def workspace_with(owner: Any, *resources: Resource, name: str = "ws") -> Workspace:
    workspace = Workspace.objects.create(owner=owner, workspace_name=name)
    for resource in resources:
        WorkspaceResource.objects.create(workspace=workspace, resource=resource)
    return workspace


def upload(client: Any, content: bytes, filename: str = "data.tsv", **extra: Any) -> Any:
    datafile = io.BytesIO(content)
    datafile.name = filename
    return client.post("/api/resources/upload/", {"datafile": datafile, **extra}, format="multipart")


RESOURCE_FIELDS = {
    "id", "name", "resource_type", "readable_resource_type", "file_format", "owner_email", "is_active",
    "is_public", "status", "workspaces", "created", "size", "datafile", "suggested_resource_type",
    "suggested_file_format",
}


def use_moto_s3(settings: Any, monkeypatch: pytest.MonkeyPatch, endpoint: str, *, bucket: str, prefix: str) -> Any:
    """Switch the storage to S3 on moto (`bucket`, keys under `prefix/`); returns a boto3 client."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings.MEV_STORAGE = "s3"
    settings.MEV_S3_BUCKET = bucket
    settings.MEV_S3_ENDPOINT_URL = endpoint
    settings.MEV_S3_REGION = "us-east-1"
    settings.MEV_S3_PREFIX = prefix
    settings.AWS_ACCESS_KEY_ID = "testing"
    settings.AWS_SECRET_ACCESS_KEY = "testing"  # noqa: S105
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # noqa: S106
    try:
        client.create_bucket(Bucket=bucket)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    return client
