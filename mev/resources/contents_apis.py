"""Reading a resource's contents: rows of tables, BED files and JSON documents (contract §2.3).

Every request is answered from what validation stored, never from the uploaded text: tables and
BED files from their Parquet copy (`Resource.table_file`), read row group by row group, so memory
is bounded by the page, not the file (§7.4.1). JSON resources are answered from the stored
document itself (it is parsed per request; JSON outputs are small summaries such as k-means
centroids).

Where the Parquet file comes from: on local storage it is read in place. On object storage
(S3) a per-request download would cost more than the query, so each web host keeps a copy
under ``<MEV_DATA_DIR>/cache/tables/``, named after the storage key. Keys are immutable (a new
validation writes a new key), so a cached copy never goes stale; `tasks.cleanup_table_cache`
removes copies nobody read for a week.

Access decision: the owner, and readers of a workspace the resource is in, read its contents;
anyone else gets 404 with an empty body, the same answer as for an unknown id, so ids of other
people's files cannot be probed. (Step 2 of contract §2.3 still names the original's 403; here, as
on every route of `mev.resources.selectors`, a stranger is told nothing.)

Every request pays the same fixed cost before the engine runs (authentication, the resource read,
rendering), so that cost is kept small: the resource is read with `resource_get_readable_for_contents`
(one primary-key query of the few fields used here, for the owner).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mev.core.exceptions import unexpected_error_body
from mev.resource_types.query import (
    NEGATIVE_INF,
    POSITIVE_INF,
    PageNotFound,
    QueryError,
    preview_table,
    query_json,
    query_table,
)
from mev.resource_types.registry import BedType, JsonType, ResourceType, TableType, get_resource_type
from mev.resource_types.transforms import TRANSFORM_NAME_PARAM, TransformError, run_transform
from mev.resources import storage
from mev.resources.models import Resource
from mev.resources.selectors import resource_get_readable_for_contents

logger = logging.getLogger(__name__)

INACTIVE_BODY = {"resource": "The requested resource is not active."}
NO_CONTENTS_BODY = {"info": "Contents not available for this resource."}
INVALID_PAGE_BODY = {"detail": "Invalid page."}
MISSING_TRANSFORM = "The request must contain the 'transform-name' parameter."
# The client shows at most 10 preview rows and reads the column list from the first record.
PREVIEW_ROWS = 10

TABLE_CACHE_DIR = ("cache", "tables")
# Refresh a cached copy's access time at most this often, so the clean-up sees it is in use. Only
# the access time: the engine's in-process cache keys a file by its mtime, which must not move.
_CACHE_TOUCH_SECONDS = 3600


# --------------------------------------------------------------------------- reading


class _Early(Exception):
    """A §2.3 check answered before the contents were read."""

    def __init__(self, response: Response) -> None:
        self.response = response


def _contents_resource(request: Request, pk: uuid.UUID) -> tuple[Resource, ResourceType]:
    """The §2.3 checks, in order; raises `_Early` with the answer when one of them decides."""
    resource = resource_get_readable_for_contents(user=request.user, resource_id=pk)
    if resource is None:
        # A stranger learns nothing, not even that the id exists: the same answer as an unknown id.
        raise _Early(Response(status=status.HTTP_404_NOT_FOUND))
    if not resource.is_active:
        raise _Early(Response(INACTIVE_BODY, status=status.HTTP_400_BAD_REQUEST))
    handler = get_resource_type(resource.resource_type)
    if handler is None or not handler.contents_available or not _source_key(resource, handler):
        raise _Early(Response(NO_CONTENTS_BODY))
    return resource, handler


def _source_key(resource: Resource, handler: ResourceType) -> str:
    return resource.datafile if isinstance(handler, JsonType) else resource.table_file


def table_kind(handler: ResourceType) -> str | None:
    """The stored-table kind the query engine needs, or None for JSON."""
    if isinstance(handler, TableType):
        return handler.store_kind
    if isinstance(handler, BedType):
        return "bed"
    return None


def local_file(key: str) -> Path:
    """A local path holding the stored file ``key``: in place on local storage, else a cached copy."""
    path = storage.local_path(key)
    if path is not None:
        if not path.is_file():
            raise FileNotFoundError(f"stored file {key} is missing")
        return path
    cache_dir = Path(settings.DATA_DIR).joinpath(*TABLE_CACHE_DIR)
    cached = cache_dir / (hashlib.sha256(key.encode()).hexdigest() + Path(key).suffix)
    try:
        stat = cached.stat()
        now = time.time()
        if now - stat.st_atime > _CACHE_TOUCH_SECONDS:
            os.utime(cached, ns=(int(now * 1e9), stat.st_mtime_ns))
        return cached
    except FileNotFoundError:
        pass
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=cache_dir, prefix=".download-")
    try:
        with os.fdopen(fd, "wb") as out, contextlib.closing(storage.open_read(key)) as src:
            shutil.copyfileobj(src, out, storage.CHUNK_SIZE)
        os.replace(tmp_name, cached)  # atomic: concurrent requests never see half a file
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
    return cached


def _rows_file(key: str) -> Path | None:
    """The local row file of a numeric matrix (scattered pages are read from it), if it has one."""
    return local_file(key) if key else None


# Python's parser accepts NaN, Infinity and 1e999, which JSON cannot carry back to the client;
# they are rendered the way table cells are (§2.3): null and the infinity markers.
_JSON_CONSTANTS = {"NaN": None, "Infinity": POSITIVE_INF, "-Infinity": NEGATIVE_INF}


def _json_float(text: str) -> float | str:
    value = float(text)
    if math.isinf(value):
        return POSITIVE_INF if value > 0 else NEGATIVE_INF
    return value


def _json_document(key: str) -> Any:
    with open(local_file(key), encoding="utf-8-sig") as handle:
        return json.load(handle, parse_constant=_JSON_CONSTANTS.__getitem__, parse_float=_json_float)


def query_pairs(request: Request) -> list[tuple[str, str]]:
    """The URL-decoded query parameters as (key, value) pairs, in order."""
    return [(key, value) for key, values in request.query_params.lists() for value in values]


def _answer(produce: Callable[[], Any]) -> Response:
    """Run the engine and map its errors to the bodies the viewers read (§2.3)."""
    try:
        return Response(produce())
    except QueryError as error:
        return Response({"error": error.message}, status=status.HTTP_400_BAD_REQUEST)
    except TransformError as error:
        return Response({"error": error.message}, status=status.HTTP_400_BAD_REQUEST)
    except PageNotFound:
        return Response(INVALID_PAGE_BODY, status=status.HTTP_404_NOT_FOUND)
    except Exception:
        logger.exception("Could not read the contents of a resource")
        return Response(unexpected_error_body(), status=status.HTTP_500_INTERNAL_SERVER_ERROR)


# --------------------------------------------------------------------------- views

_CONTENTS_RESPONSES = {
    200: OpenApiResponse(OpenApiTypes.ANY, description="Records (bare array), a page object, or a JSON document"),
    400: OpenApiResponse(description='{"error": ...} or {"resource": ...}'),
    404: OpenApiResponse(description="Unknown id or not readable by the caller (empty body), or invalid page"),
}


class _ContentsApi(APIView):
    def get(self, request: Request, pk: uuid.UUID) -> Response:
        try:
            resource, handler = _contents_resource(request, pk)
        except _Early as early:
            return early.response
        return _answer(lambda: self.produce(request, resource, handler))

    def produce(self, request: Request, resource: Resource, handler: ResourceType) -> Any:
        raise NotImplementedError


class ResourceContentsApi(_ContentsApi):
    """Rows with filtering, sorting and optional paging (§2.3 grammar)."""

    @extend_schema(responses=_CONTENTS_RESPONSES)
    def get(self, request: Request, pk: uuid.UUID) -> Response:
        return super().get(request, pk)

    def produce(self, request: Request, resource: Resource, handler: ResourceType) -> Any:
        params = query_pairs(request)
        base_url = request.build_absolute_uri(request.path)
        kind = table_kind(handler)
        if kind is None:
            return query_json(_json_document(resource.datafile), params, base_url=base_url)
        return _table_page(kind, resource.table_file, resource.table_rows_file, params, base_url)


def _table_page(kind: str, table_file: str, rows_file: str, params: list[tuple[str, str]], base_url: str) -> Any:
    return query_table(local_file(table_file), params, kind=kind, base_url=base_url, rows_path=_rows_file(rows_file))


class ContentsNotHandled(Exception):
    """`table_contents` was given a resource whose contents are not a stored table."""


def table_contents(resource: dict[str, Any], params: list[tuple[str, str]], *, base_url: str) -> Any:
    """The body of a 200 answer of `ResourceContentsApi` for a readable, active table resource given
    as its CONTENTS_FIELDS values (`mev.resources.contents_fastpath`); JSON documents and resources
    without contents raise `ContentsNotHandled`, engine errors raise as in the view."""
    handler = get_resource_type(resource["resource_type"])
    kind = table_kind(handler) if handler is not None and handler.contents_available else None
    if kind is None or not resource["table_file"]:
        raise ContentsNotHandled(resource["resource_type"])
    return _table_page(kind, resource["table_file"], resource["table_rows_file"], params, base_url)


class ResourceContentsPreviewApi(_ContentsApi):
    """The first rows of a table, with every column; a JSON document whole. No parameters."""

    @extend_schema(responses=_CONTENTS_RESPONSES)
    def get(self, request: Request, pk: uuid.UUID) -> Response:
        return super().get(request, pk)

    def produce(self, request: Request, resource: Resource, handler: ResourceType) -> Any:
        if table_kind(handler) is None:
            return _json_document(resource.datafile)
        return preview_table(local_file(resource.table_file), n=PREVIEW_ROWS, rows_path=_rows_file(resource.table_rows_file))


class ResourceContentsTransformApi(_ContentsApi):
    """Server-side transforms for the heatmap and volcano viewers (§2.3)."""

    @extend_schema(responses=_CONTENTS_RESPONSES)
    def get(self, request: Request, pk: uuid.UUID) -> Response:
        return super().get(request, pk)

    def produce(self, request: Request, resource: Resource, handler: ResourceType) -> Any:
        params = query_pairs(request)
        kind = table_kind(handler)
        if kind is None:
            name = next((value for key, value in reversed(params) if key == TRANSFORM_NAME_PARAM), "").strip()
            if not name:
                raise TransformError(MISSING_TRANSFORM)
            raise TransformError(f'The "{name}" transform is not available for this type of resource.')
        return run_transform(local_file(resource.table_file), params, kind=kind)
