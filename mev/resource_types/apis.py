"""The resource-type catalogue the type dialogs are built from (contract §2.4)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mev.resource_types.registry import resource_type_catalogue


class ResourceTypeListApi(APIView):
    """A bare array of every type with its formats and example.

    Public and unauthenticated: it holds no user data, and running no authentication means a
    stale token sent by the client can never turn this static list into a 401.
    """

    authentication_classes: list[Any] = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: OpenApiTypes.ANY})
    def get(self, request: Request) -> Response:
        return Response(resource_type_catalogue())
