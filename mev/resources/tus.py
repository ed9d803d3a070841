"""Resumable uploads: tus 1.0.0 core + creation + termination (https://tus.io/protocols/resumable-upload).

    POST   /api/resources/uploads/        Upload-Length, Upload-Metadata: filename <base64>  -> 201 + Location
    HEAD   /api/resources/uploads/<id>/   -> Upload-Offset, Upload-Length
    PATCH  /api/resources/uploads/<id>/   Content-Type: application/offset+octet-stream, Upload-Offset
                                          -> 204 + Upload-Offset (409 on an offset mismatch)
    DELETE /api/resources/uploads/<id>/   -> 204 (termination)
    GET    /api/resources/uploads/<id>/   -> {offset, length, resource}

The bytes received so far live in a partial file under `partial_dir()`; a PATCH appends the
request body in 1 MiB chunks, never whole in memory. When offset == length the Resource is
created like a multipart upload (server-chosen key, sha256, type suggestion) and its id is sent
in `Upload-Resource-Id`. Sessions are owner-scoped: another user's id is 404.
"""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mev.core.exceptions import ApplicationError
from mev.resources import quotas, selectors, services, storage, uploads
from mev.resources.models import UploadSession
from mev.resources.serializers import ResourceOutputSerializer
from mev.users.models import User

logger = logging.getLogger(__name__)

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"


def partial_dir() -> Path:
    """Where partial files live. With several web hosts this must be a shared directory."""
    configured = storage.setting("MEV_UPLOAD_PARTIAL_DIR", "")
    base = Path(configured) if configured else Path(settings.FILE_UPLOAD_TEMP_DIR) / "tus"
    base.mkdir(parents=True, exist_ok=True)
    return base


def _partial_path(session: UploadSession) -> Path:
    # Only the server-chosen file name is stored; the directory is resolved at use.
    return partial_dir() / Path(session.partial_path).name


def expiry_hours() -> float:
    return float(storage.setting("MEV_UPLOAD_EXPIRY_HOURS", 24))


def _tus_headers(response: Any) -> Any:
    response["Tus-Resumable"] = TUS_VERSION
    response["Cache-Control"] = "no-store"
    return response


def _check_version(request: Request) -> None:
    version = request.headers.get("Tus-Resumable")
    if version is not None and version != TUS_VERSION:
        raise ApplicationError(f"Unsupported Tus-Resumable version; this server speaks {TUS_VERSION}.",
                               status_code=412)


def _int_header(request: Request, name: str) -> int:
    raw = request.headers.get(name)
    if raw is None or not raw.strip().isdigit():
        raise ApplicationError(body={name: f"The {name} header must be a non-negative integer."})
    return int(raw)


def parse_metadata(raw: str | None) -> dict[str, str]:
    """`Upload-Metadata`: comma-separated `key base64value` pairs (value optional)."""
    result: dict[str, str] = {}
    for item in (raw or "").split(","):
        item = item.strip()
        if not item:
            continue
        key, _, value = item.partition(" ")
        try:
            result[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8", "replace") if value else ""
        except (binascii.Error, ValueError) as exc:
            raise ApplicationError(body={"Upload-Metadata": f"The value of {key!r} is not valid base64."}) from exc
    return result


# --- services ------------------------------------------------------------------------------------

@transaction.atomic
def upload_session_create(*, owner: User, length: int, filename: str) -> UploadSession:
    if length > uploads.max_upload_bytes():
        raise uploads.too_large()
    session_id = uuid.uuid4()
    name = f"{session_id}.part"
    path = partial_dir() / name
    open_uploads = UploadSession.objects.filter(owner=owner, resource__isnull=True).count()
    limit = int(getattr(settings, "MEV_MAX_OPEN_UPLOADS", 20))
    if limit and open_uploads >= limit:
        raise ApplicationError(
            f"You already have {open_uploads} resumable uploads in progress (the limit is {limit}); "
            "finish or cancel one first.", status_code=429)
    with quotas.reserved(owner, length):  # the session's length stays reserved until it completes or expires
        path.touch(exist_ok=False)
        session = UploadSession.objects.create(
            id=session_id, owner=owner, filename=services.display_name(filename), length=length, offset=0,
            partial_path=name,
        )
    if length == 0:  # an empty file is complete as soon as it exists
        session.resource = services.resource_create_from_file(owner=owner, name=session.filename, path=path)
        session.save(update_fields=["resource"])
    return session


def upload_session_append(*, owner: User, upload_id: uuid.UUID, offset: int, stream: Any,
                          content_length: int) -> UploadSession:
    """Append up to `content_length` bytes from `stream` at `offset`; create the Resource when complete.

    The session row is locked for the duration, so two PATCHes cannot interleave. If the client
    goes away mid-body, the bytes already written count: the next HEAD reports them.
    """
    with transaction.atomic():
        session = UploadSession.objects.select_for_update().filter(pk=upload_id, owner=owner).first()
        if session is None:
            raise ApplicationError("Not found.", status_code=404)
        if session.resource_id is not None or session.offset >= session.length:
            raise ApplicationError("This upload is already complete.", status_code=409)
        if offset != session.offset:
            raise ApplicationError(f"Upload-Offset {offset} does not match the current offset {session.offset}.",
                                   status_code=409)
        if session.offset + content_length > session.length:
            raise ApplicationError("The body goes beyond Upload-Length.", status_code=413)
        path = _partial_path(session)
        if not path.exists():
            raise ApplicationError("The bytes of this upload are gone; start a new upload.", status_code=410)
        written = 0
        with open(path, "r+b") as out:
            out.seek(session.offset)
            out.truncate()  # drop bytes of an earlier write that was never acknowledged
            remaining = content_length
            try:
                while remaining > 0:
                    chunk = stream.read(min(storage.CHUNK_SIZE, remaining))
                    if not chunk:
                        break
                    out.write(chunk)
                    written += len(chunk)
                    remaining -= len(chunk)
            except OSError:  # the client went away: keep what arrived
                logger.info("tus upload %s interrupted after %d bytes", session.pk, written)
            out.flush()
        session.offset += written
        session.updated = timezone.now()
        session.save(update_fields=["offset", "updated"])
        if session.offset == session.length:
            resource = services.resource_create_from_file(owner=owner, name=session.filename, path=path, move=True)
            session.resource = resource
            session.save(update_fields=["resource"])
    return session


@transaction.atomic
def upload_session_delete(*, session: UploadSession) -> None:
    path = _partial_path(session)
    session.delete()
    transaction.on_commit(lambda: path.unlink(missing_ok=True))


@shared_task
def cleanup_stale_uploads() -> int:
    """Remove upload sessions untouched for more than MEV_UPLOAD_EXPIRY_HOURS, and their partial files.

    Also removes partial files that have no session any more. Returns the number of sessions removed.
    """
    cutoff = timezone.now() - timedelta(hours=expiry_hours())
    removed = 0
    for session in UploadSession.objects.filter(updated__lt=cutoff).iterator():
        _partial_path(session).unlink(missing_ok=True)
        session.delete()
        removed += 1
    known = set(UploadSession.objects.values_list("partial_path", flat=True))
    for path in partial_dir().glob("*.part"):
        try:
            stale = path.stat().st_mtime < cutoff.timestamp()
        except FileNotFoundError:
            continue
        if stale and path.name not in known:
            path.unlink(missing_ok=True)
    return removed


# --- views ---------------------------------------------------------------------------------------

class TusOutputSerializer(serializers.Serializer):
    offset = serializers.IntegerField()
    length = serializers.IntegerField()
    resource = ResourceOutputSerializer(allow_null=True)


_TUS_HEADERS = [OpenApiParameter("Tus-Resumable", str, OpenApiParameter.HEADER, description="1.0.0")]


class _TusBase(APIView):
    def get_permissions(self) -> list[Any]:
        if self.request.method == "OPTIONS":  # protocol discovery needs no account
            return [permissions.AllowAny()]
        return super().get_permissions()

    def get_authenticators(self) -> list[Any]:
        if self.request is not None and self.request.method == "OPTIONS":
            return []
        return super().get_authenticators()

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        return _tus_headers(super().finalize_response(request, response, *args, **kwargs))

    @extend_schema(summary="tus discovery", responses={204: None})
    def options(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = Response(status=status.HTTP_204_NO_CONTENT)
        response["Tus-Version"] = TUS_VERSION
        response["Tus-Extension"] = TUS_EXTENSIONS
        response["Tus-Max-Size"] = str(uploads.max_upload_bytes())
        return response


class TusCreateApi(_TusBase):
    @extend_schema(
        summary="tus: create a resumable upload",
        description=(
            "Resumable upload, tus 1.0.0 (core + creation + termination); any tus client works. "
            "The body is empty; `Upload-Length` is the file size; `Upload-Metadata` carries "
            "`filename <base64>`. Answers 201 with `Location` (the upload URL). Then: "
            "`HEAD <Location>` returns `Upload-Offset`/`Upload-Length` (where to resume); "
            "`PATCH <Location>` with `Content-Type: application/offset+octet-stream` and "
            "`Upload-Offset` appends bytes (204 + new `Upload-Offset`, 409 on an offset mismatch); "
            "the PATCH that completes the file answers `Upload-Resource-Id` (the new Resource, active "
            "and untyped, like a multipart upload); `DELETE <Location>` terminates; "
            "`GET <Location>` returns `{offset, length, resource}`. `OPTIONS` needs no token. "
            "Sessions untouched for MEV_UPLOAD_EXPIRY_HOURS are removed."
        ),
        request=None,
        parameters=_TUS_HEADERS + [
            OpenApiParameter("Upload-Length", int, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("Upload-Metadata", str, OpenApiParameter.HEADER, description="filename <base64>"),
        ],
        responses={201: OpenApiResponse(description="Created; Location header"),
                   413: OpenApiResponse(description="Upload-Length above MEV_MAX_UPLOAD_BYTES or the free quota")},
    )
    def post(self, request: Request) -> Response:
        _check_version(request)
        if request.headers.get("Upload-Defer-Length"):
            raise ApplicationError(body={"Upload-Defer-Length": "Deferred length is not supported."})
        length = _int_header(request, "Upload-Length")
        metadata = parse_metadata(request.headers.get("Upload-Metadata"))
        filename = metadata.get("filename") or metadata.get("name") or "upload"
        session = upload_session_create(owner=request.user, length=length, filename=filename)
        response = Response(status=status.HTTP_201_CREATED)
        response["Location"] = request.build_absolute_uri(f"/api/resources/uploads/{session.pk}/")
        response["Upload-Offset"] = "0"
        if session.resource_id:
            response["Upload-Resource-Id"] = str(session.resource_id)
        return response


class TusUploadApi(_TusBase):
    def _session(self, request: Request, upload_id: uuid.UUID) -> UploadSession:
        return selectors.upload_session_get(user=request.user, upload_id=upload_id)

    @extend_schema(summary="tus: upload progress as JSON", responses={200: TusOutputSerializer})
    def get(self, request: Request, upload_id: uuid.UUID) -> Response:
        session = self._session(request, upload_id)
        resource = None
        if session.resource_id:
            resource = ResourceOutputSerializer(
                selectors.resource_get_owned(user=request.user, resource_id=session.resource_id),
                context={"request": request},
            ).data
        response = Response({"offset": session.offset, "length": session.length, "resource": resource})
        response["Upload-Offset"] = str(session.offset)
        response["Upload-Length"] = str(session.length)
        return response

    @extend_schema(summary="tus: current offset", responses={200: OpenApiResponse(description="Upload-Offset, Upload-Length")})
    def head(self, request: Request, upload_id: uuid.UUID) -> Response:
        session = self._session(request, upload_id)
        response = Response(status=status.HTTP_200_OK)
        response["Upload-Offset"] = str(session.offset)
        response["Upload-Length"] = str(session.length)
        if session.resource_id:
            response["Upload-Resource-Id"] = str(session.resource_id)
        return response

    @extend_schema(
        summary="tus: append bytes",
        request={OFFSET_CONTENT_TYPE: bytes},
        parameters=_TUS_HEADERS + [OpenApiParameter("Upload-Offset", int, OpenApiParameter.HEADER, required=True)],
        responses={204: OpenApiResponse(description="New Upload-Offset; Upload-Resource-Id once complete"),
                   409: OpenApiResponse(description="Offset mismatch"),
                   415: OpenApiResponse(description="Wrong Content-Type")},
    )
    def patch(self, request: Request, upload_id: uuid.UUID) -> Response:
        _check_version(request)
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        if content_type != OFFSET_CONTENT_TYPE:
            raise ApplicationError(f"Content-Type must be {OFFSET_CONTENT_TYPE}.", status_code=415)
        offset = _int_header(request, "Upload-Offset")
        try:
            content_length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError as exc:
            raise ApplicationError(body={"Content-Length": "Invalid Content-Length."}) from exc
        # Read the raw WSGI stream: the body is never parsed or buffered by DRF.
        session = upload_session_append(owner=request.user, upload_id=upload_id, offset=offset,
                                        stream=request._request, content_length=content_length)
        response = Response(status=status.HTTP_204_NO_CONTENT)
        response["Upload-Offset"] = str(session.offset)
        if session.resource_id:
            response["Upload-Resource-Id"] = str(session.resource_id)
        return response

    @extend_schema(summary="tus: terminate", responses={204: None})
    def delete(self, request: Request, upload_id: uuid.UUID) -> Response:
        upload_session_delete(session=self._session(request, upload_id))
        return Response(status=status.HTTP_204_NO_CONTENT)

