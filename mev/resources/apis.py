"""Thin HTTP views for resources: list, detail, rename/retype, delete, upload, download, signed links."""

from __future__ import annotations

import uuid
from typing import Any

from django.http.response import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import parsers, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mev.core.exceptions import ApplicationError
from mev.resources import downloads, quotas, selectors, services, storage, uploads
from mev.resources.models import Resource
from mev.resources.serializers import ResourceOutputSerializer
from mev.workspaces.serializers import absolute_base

INACTIVE_ERROR = {"error": "The resource is inactive."}
FILE_MISSING = "The stored file of this resource could not be found."
BAD_LINK = "This link is invalid or has expired."


def render(request: Request, resource: Resource, *, code: int = status.HTTP_200_OK) -> Response:
    return Response(ResourceOutputSerializer(resource, context={"request": request}).data, status=code)


class ResourceListApi(APIView):
    @extend_schema(responses={200: ResourceOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(selectors.resource_list_representation(user=request.user, base=absolute_base(request)))


class ResourceDetailApi(APIView):
    class InputSerializer(serializers.Serializer):
        id = serializers.CharField(required=False, allow_null=True)  # ignored (§2.2)
        name = serializers.CharField(required=False, allow_null=True, max_length=1024)
        resource_type = serializers.CharField(required=False, allow_null=True, max_length=32)
        file_format = serializers.CharField(required=False, allow_null=True, max_length=16)
        owner_email = serializers.CharField(required=False, allow_null=True)
        workspaces = serializers.JSONField(required=False)

    @extend_schema(responses={200: ResourceOutputSerializer})
    def get(self, request: Request, resource_id: uuid.UUID) -> Response:
        return render(request, selectors.resource_get_readable(user=request.user, resource_id=resource_id))

    @extend_schema(request=InputSerializer, responses={200: ResourceOutputSerializer})
    def patch(self, request: Request, resource_id: uuid.UUID) -> Response:
        resource = selectors.resource_get_owned(user=request.user, resource_id=resource_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        given: dict[str, Any] = dict(data.validated_data)
        given.pop("id", None)
        if "workspaces" in request.data:
            given["workspaces"] = request.data["workspaces"]
        resource = services.resource_update(resource=resource, **given)
        return render(request, selectors.resource_get_owned(user=request.user, resource_id=resource.pk))

    put = patch

    @extend_schema(responses={200: OpenApiResponse(description="Deleted; empty body.")})
    def delete(self, request: Request, resource_id: uuid.UUID) -> Response:
        services.resource_delete(resource=selectors.resource_get_owned(user=request.user, resource_id=resource_id))
        return Response(status=status.HTTP_200_OK)


class ResourceUploadApi(APIView):
    """Multipart upload of one file part named `datafile`; every other part is ignored (§7.1.4)."""

    parser_classes = [parsers.MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": inline_serializer("ResourceUpload", {"datafile": serializers.FileField()})},
        responses={201: ResourceOutputSerializer,
                   413: OpenApiResponse(description="Above MEV_MAX_UPLOAD_BYTES, or the storage quota is full")},
    )
    def post(self, request: Request) -> Response:
        try:
            content_length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            content_length = 0
        if content_length > uploads.max_upload_bytes() + uploads.MULTIPART_SLACK:
            raise uploads.too_large()
        # Fail fast on a full account, before the body is read; the framing is at most the slack.
        quotas.check(request.user, max(0, content_length - uploads.MULTIPART_SLACK))
        handler = uploads.StreamingUploadHandler(request._request)
        request._request.upload_handlers = [handler]
        received: list[Any] = []
        try:
            received = list(request.FILES.getlist(uploads.FILE_FIELD))
            if not received:
                raise ApplicationError(body={uploads.FILE_FIELD: ["No file was submitted."]})
            upload = received[0]
            with quotas.reserved(request.user, upload.size):
                resource = services.resource_create_from_file(
                    owner=request.user, name=upload.name, path=upload.path, checksum=upload.sha256, move=True
                )
        finally:
            handler.cleanup()
            for upload in received:
                upload.close()
                upload.path.unlink(missing_ok=True)
        return render(request, resource, code=status.HTTP_201_CREATED)


class ResourceUsageApi(APIView):
    """The caller's storage: bytes used (files owned plus resumable uploads in progress) and the quota."""

    @extend_schema(responses={200: inline_serializer("StorageUsage", {
        "used_bytes": serializers.IntegerField(),
        "quota_bytes": serializers.IntegerField(allow_null=True, help_text="null: no limit"),
        "available_bytes": serializers.IntegerField(allow_null=True),
    })})
    def get(self, request: Request) -> Response:
        return Response(quotas.usage_of(request.user).as_json())


class ResourceDownloadApi(APIView):
    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY,
                              302: OpenApiResponse(description="Object storage: pre-signed URL")})
    def get(self, request: Request, resource_id: uuid.UUID) -> HttpResponseBase:
        resource = selectors.resource_get_readable(user=request.user, resource_id=resource_id)
        if not resource.is_active:
            raise ApplicationError(body=INACTIVE_ERROR)
        if not resource.datafile or (storage.backend_name() == "local" and not storage.exists(resource.datafile)):
            raise ApplicationError(FILE_MISSING, status_code=404)
        return downloads.file_download_response(key=resource.datafile, name=resource.name, size=resource.size)


class ResourceSignedUrlApi(APIView):
    @extend_schema(responses={200: inline_serializer("SignedUrl", {"url": serializers.URLField(),
                                                                   "download_type": serializers.CharField()})})
    def get(self, request: Request, resource_id: uuid.UUID) -> Response:
        resource = selectors.resource_get_readable(user=request.user, resource_id=resource_id)
        if not resource.is_active:
            raise ApplicationError(body=INACTIVE_ERROR)
        if not resource.datafile:
            raise ApplicationError(FILE_MISSING, status_code=404)
        seconds = downloads.signed_url_seconds()
        if storage.backend_name() == "local":
            token = downloads.make_signed_token(resource_id=str(resource.pk), key=resource.datafile)
            url = request.build_absolute_uri(f"/api/resources/signed/{token}/")
            return Response({"url": url, "download_type": "local"})
        url = storage.presigned_url(resource.datafile, filename=resource.name, expires=seconds)
        return Response({"url": url, "download_type": "remote"})


class ResourceSignedDownloadApi(APIView):
    """The target of a local signed link: no Authorization needed, Range supported, any origin (IGV)."""

    authentication_classes: list[Any] = []
    permission_classes = [permissions.AllowAny]

    def _cors(self, response: HttpResponseBase) -> HttpResponseBase:
        if "Access-Control-Allow-Origin" not in response:
            # The link itself is the credential; no cookies are involved.
            response["Access-Control-Allow-Origin"] = "*"
        response["Access-Control-Expose-Headers"] = "Content-Range, Content-Length, Accept-Ranges, Content-Disposition"
        response["Vary"] = "Origin"
        return response

    @extend_schema(auth=[], responses={(200, "application/octet-stream"): OpenApiTypes.BINARY,
                                       (206, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request: Request, token: str) -> HttpResponseBase:
        payload = downloads.read_signed_token(token)
        if payload is None:
            raise ApplicationError(BAD_LINK, status_code=403)
        resource = Resource.objects.filter(pk=payload.get("r")).first()
        if (resource is None or not resource.datafile
                or not downloads.signed_token_matches(payload, resource_id=str(resource.pk), key=resource.datafile)
                or not storage.exists(resource.datafile)):
            raise ApplicationError(FILE_MISSING, status_code=404)
        if not resource.is_active:
            raise ApplicationError(body=INACTIVE_ERROR)
        if storage.backend_name() != "local":
            return downloads.file_download_response(key=resource.datafile, name=resource.name)
        response = downloads.ranged_file_response(
            key=resource.datafile, name=resource.name, range_header=request.META.get("HTTP_RANGE")
        )
        return self._cors(response)

    def options(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = Response(status=status.HTTP_204_NO_CONTENT)
        response["Access-Control-Allow-Methods"] = "GET, HEAD, OPTIONS"
        response["Access-Control-Allow-Headers"] = "range"
        response["Access-Control-Max-Age"] = "600"
        return self._cors(response)


class DropboxUploadApi(APIView):
    """Import files from Dropbox links (§2.12): one non-workspace executed operation per file."""

    @extend_schema(
        request=inline_serializer("DropboxFile", {"download_link": serializers.URLField(),
                                                  "filename": serializers.CharField()}, many=True),
        responses={200: inline_serializer("DropboxUploadStarted", {"upload_ids": serializers.ListField(
            child=serializers.UUIDField())})},
    )
    def post(self, request: Request) -> Response:
        from mev.jobs.services import dropbox_import_create

        executions = dropbox_import_create(user=request.user, items=request.data)
        return Response({"upload_ids": [str(e.id) for e in executions]})
