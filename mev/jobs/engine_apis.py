"""Admin-only status of the remote workflow engines (Cromwell, WES): GET /api/admin/engines/."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mev.jobs.runners.engines import check_engines


class EngineStatusSerializer(serializers.Serializer):
    engine = serializers.CharField()
    url = serializers.CharField()
    ok = serializers.BooleanField()
    version = serializers.CharField(required=False)
    error = serializers.CharField(required=False)
    checked_at = serializers.CharField()


class EngineStatusApi(APIView):
    """Each configured engine asked for its version now (short timeouts): `[{engine, url, ok,
    version|error, checked_at}]`. Staff only: 401 without credentials, 403 for other users."""

    permission_classes = [permissions.IsAdminUser]

    @extend_schema(responses={200: EngineStatusSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(EngineStatusSerializer(check_engines(), many=True).data)
