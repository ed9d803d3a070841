"""Thin HTTP views for operations and categories (contract §2.8)."""

from __future__ import annotations

import uuid

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mev.core.exceptions import ApplicationError
from mev.operations import selectors, services
from mev.operations.models import Operation

OperationOutput = inline_serializer("Operation", {
    "id": serializers.UUIDField(), "name": serializers.CharField(), "description": serializers.CharField(),
    "inputs": serializers.DictField(), "outputs": serializers.DictField(), "mode": serializers.CharField(),
    "repository_url": serializers.CharField(), "repository_name": serializers.CharField(),
    "git_hash": serializers.CharField(), "workspace_operation": serializers.BooleanField(),
})


class OperationListApi(APIView):
    @extend_schema(responses={200: OperationOutput})
    def get(self, request: Request) -> Response:
        return Response([op.spec for op in selectors.operation_list()])


class OperationDetailApi(APIView):
    @extend_schema(responses={200: OperationOutput})
    def get(self, request: Request, operation_id: uuid.UUID) -> Response:
        return Response(selectors.operation_get(operation_id=operation_id).spec)


class OperationUpdateApi(APIView):
    permission_classes = [permissions.IsAdminUser]

    class InputSerializer(serializers.Serializer):
        active = serializers.BooleanField()

    @extend_schema(request=InputSerializer, responses={200: inline_serializer("Empty", {})})
    def patch(self, request: Request, operation_id: uuid.UUID) -> Response:
        operation = Operation.objects.filter(pk=operation_id).first()
        if operation is None:
            raise ApplicationError("Not found.", status_code=404)
        unknown = sorted(set(request.data) - {"active"}) if isinstance(request.data, dict) else []
        if unknown:
            raise ApplicationError(body={key: ["This field cannot be changed."] for key in unknown})
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.operation_update(operation=operation, **data.validated_data)
        return Response({})

    put = patch


class OperationAddApi(APIView):
    permission_classes = [permissions.IsAdminUser]

    class InputSerializer(serializers.Serializer):
        repository_url = serializers.CharField()
        commit_id = serializers.CharField(required=False, allow_blank=True, allow_null=True)

    @extend_schema(request=InputSerializer,
                   responses={200: inline_serializer("IngestionStarted", {"operation_uuid": serializers.UUIDField()})})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        record = services.operation_ingestion_request(
            requested_by=request.user, repository_url=data.validated_data["repository_url"],
            commit_id=data.validated_data.get("commit_id") or "",
        )
        return Response({"operation_uuid": str(record.id)})


class CategoryListApi(APIView):
    @extend_schema(responses={200: inline_serializer("Category", {"name": serializers.CharField(),
                                                                  "children": serializers.ListField()})})
    def get(self, request: Request) -> Response:
        return Response(selectors.category_tree())


class CategoryDetailApi(APIView):
    @extend_schema(responses={200: OperationOutput})
    def get(self, request: Request, category: str) -> Response:
        return Response(selectors.category_operations(category=category))


class CategoryAddApi(APIView):
    permission_classes = [permissions.IsAdminUser]

    class InputSerializer(serializers.Serializer):
        operation_id = serializers.UUIDField()
        category = serializers.CharField(max_length=100)

    @extend_schema(request=InputSerializer, responses={201: inline_serializer("CategoryAdded", {})})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        operation = Operation.objects.filter(pk=data.validated_data["operation_id"]).first()
        if operation is None:
            raise ApplicationError(body={"operation_id": ["No operation found by that ID."]})
        item = services.operation_category_add(operation=operation, category=data.validated_data["category"])
        return Response({"operation_id": str(operation.id), "category": item.category},
                        status=status.HTTP_201_CREATED)


class OperationResourcesApi(APIView):
    """Files bundled with an operation (`operation_resources.json`), for all inputs or one input key."""

    @extend_schema(responses={200: inline_serializer("OperationResource", {
        "id": serializers.UUIDField(), "name": serializers.CharField(), "resource_type": serializers.CharField(),
        "readable_resource_type": serializers.CharField(), "input_key": serializers.CharField(),
        "input_field": serializers.CharField(), "operation": serializers.UUIDField(),
        "size": serializers.IntegerField(),
    })})
    def get(self, request: Request, operation_id: uuid.UUID, input_key: str | None = None) -> Response:
        operation = selectors.operation_get(operation_id=operation_id, active_only=False)
        items = selectors.operation_resource_list(operation=operation, input_key=input_key)
        return Response([selectors.operation_resource_data(item) for item in items])
