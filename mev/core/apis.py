"""Endpoints the web client polls for optional integrations that this deployment does not enable."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class GlobusTransferListApi(APIView):
    """The caller's unfinished Globus transfers. Globus is not configured, so always `[]`.

    The Files tab polls this every 10 s; it must answer an empty list, not 404 (contract §2.12).
    """

    @extend_schema(responses={200: {"type": "array", "items": {"type": "object"}}})
    def get(self, request: Request) -> Response:
        return Response([])
