"""A resource's extracted metadata: observation and feature sets, parent operation (contract §2.5).

Unlike the original, these routes check access (§7.1.1): the owner, or a reader of a workspace
the resource is in. Unknown id 404, another user's resource 403 (as the resource detail route),
and 404 when the resource is inactive or was never validated (no metadata yet).
"""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mev.core.exceptions import ApplicationError
from mev.resources import selectors
from mev.resources.models import Resource, ResourceMetadata

NOT_FOUND = "Not found."


def _metadata_for(request: Request, pk: uuid.UUID) -> tuple[Resource, ResourceMetadata]:
    resource = selectors.resource_get_readable(user=request.user, resource_id=pk)
    if not resource.is_active:
        raise ApplicationError(NOT_FOUND, status_code=404)
    metadata = ResourceMetadata.objects.filter(resource=resource).first()
    if metadata is None:
        raise ApplicationError(NOT_FOUND, status_code=404)
    return resource, metadata


def _parent(resource: Resource) -> str | None:
    return str(resource.parent_operation_id) if resource.parent_operation_id else None


class _MetadataApi(APIView):
    def body(self, resource: Resource, metadata: ResourceMetadata) -> dict[str, Any]:
        raise NotImplementedError

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, pk: uuid.UUID) -> Response:
        resource, metadata = _metadata_for(request, pk)
        return Response(self.body(resource, metadata))


class ResourceMetadataApi(_MetadataApi):
    def body(self, resource: Resource, metadata: ResourceMetadata) -> dict[str, Any]:
        return {
            "resource": str(resource.pk),
            "parent_operation": _parent(resource),
            "observation_set": metadata.observation_set,
            "feature_set": metadata.feature_set,
        }


class ResourceMetadataObservationsApi(_MetadataApi):
    def body(self, resource: Resource, metadata: ResourceMetadata) -> dict[str, Any]:
        return {"observation_set": metadata.observation_set}


class ResourceMetadataFeaturesApi(_MetadataApi):
    def body(self, resource: Resource, metadata: ResourceMetadata) -> dict[str, Any]:
        return {"feature_set": metadata.feature_set}


class ResourceMetadataParentApi(_MetadataApi):
    def body(self, resource: Resource, metadata: ResourceMetadata) -> dict[str, Any]:
        return {"parent_operation": _parent(resource)}
