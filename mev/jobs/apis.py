"""Thin HTTP views for running operations and following executed operations (§2.9, §5)."""

from __future__ import annotations

import uuid

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mev.core.exceptions import ApplicationError
from mev.jobs import selectors, services
from mev.jobs.models import JobState
from mev.jobs.runners.base import RunnerError, get_runner
from mev.jobs.serializers import execution_data

RunOutput = inline_serializer("RunStarted", {"executed_operation_id": serializers.UUIDField()})
ExecutionOutput = inline_serializer("ExecutedOperation", {
    "id": serializers.UUIDField(), "owner": serializers.UUIDField(), "operation": serializers.DictField(),
    "job_id": serializers.CharField(), "job_name": serializers.CharField(), "inputs": serializers.DictField(),
    "outputs": serializers.DictField(allow_null=True), "error_messages": serializers.ListField(allow_null=True),
    "status": serializers.CharField(), "execution_start_datetime": serializers.DateTimeField(),
    "execution_stop_datetime": serializers.DateTimeField(allow_null=True), "job_failed": serializers.BooleanField(),
    "is_finalizing": serializers.BooleanField(), "mode": serializers.CharField(), "metrics": serializers.DictField(),
})
REQUIRED = "This field is required."


class RunApi(APIView):
    @extend_schema(
        request=inline_serializer("RunRequest", {
            "operation_id": serializers.UUIDField(), "workspace_id": serializers.UUIDField(required=False),
            "job_name": serializers.CharField(required=False), "inputs": serializers.DictField(),
            "reuse": serializers.BooleanField(required=False),
        }),
        responses={200: RunOutput},
    )
    def post(self, request: Request) -> Response:
        data = request.data if isinstance(request.data, dict) else {}
        missing = {key: REQUIRED for key in ("operation_id", "inputs") if data.get(key) is None}
        if missing:
            raise ApplicationError(body=missing)
        execution, _ = services.execution_create(
            user=request.user, operation_id=data["operation_id"], workspace_id=data.get("workspace_id"),
            job_name=data.get("job_name"), inputs=data["inputs"], reuse=data.get("reuse") is True,
        )
        return Response({"executed_operation_id": str(execution.id)})


class ExecutionListApi(APIView):
    @extend_schema(responses={200: ExecutionOutput})
    def get(self, request: Request) -> Response:
        return Response([execution_data(e) for e in selectors.execution_list(user=request.user)])


class ExecutionDetailApi(APIView):
    """The poll: 204 while running, 208 while finalizing, 200 with the object once stopped (§5.2)."""

    @extend_schema(responses={200: ExecutionOutput, 204: None, 208: None})
    def get(self, request: Request, execution_id: uuid.UUID) -> Response:
        execution = selectors.execution_poll_state(user=request.user, execution_id=execution_id)
        if execution.state == JobState.FINALIZING:
            return Response(status=status.HTTP_208_ALREADY_REPORTED)
        if execution.execution_stop_datetime is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(execution_data(selectors.execution_get(user=request.user, execution_id=execution_id)))


class WorkspaceExecutionListApi(APIView):
    @extend_schema(responses={200: ExecutionOutput})
    def get(self, request: Request, workspace_id: uuid.UUID) -> Response:
        executions = selectors.execution_list_workspace(user=request.user, workspace_id=workspace_id)
        return Response([execution_data(e) for e in executions])


class NonWorkspaceExecutionListApi(APIView):
    @extend_schema(responses={200: ExecutionOutput})
    def get(self, request: Request) -> Response:
        executions = selectors.execution_list_non_workspace(user=request.user)
        return Response([execution_data(e, workspace_variant=False) for e in executions])


class TreeApi(APIView):
    @extend_schema(responses={200: inline_serializer("TreeNode", {"id": serializers.CharField()})})
    def get(self, request: Request, workspace_id: uuid.UUID) -> Response:
        return Response(selectors.workspace_tree(user=request.user, workspace_id=workspace_id))


class TreeSaveApi(APIView):
    """GET by the client's contract (§2.9); Bearer-only authentication keeps it unforgeable (§7.1.15)."""

    @extend_schema(responses={201: inline_serializer("TreeSaved", {})})
    def get(self, request: Request, workspace_id: uuid.UUID) -> Response:
        tree = selectors.workspace_tree(user=request.user, workspace_id=workspace_id)
        services.execution_tree_save(user=request.user, workspace_id=workspace_id, tree=tree)
        return Response({}, status=status.HTTP_201_CREATED)


class CancelApi(APIView):
    @extend_schema(request=None, responses={200: ExecutionOutput})
    def post(self, request: Request, execution_id: uuid.UUID) -> Response:
        execution = selectors.execution_get_owned(user=request.user, execution_id=execution_id)
        execution = services.execution_cancel(execution=execution)
        execution = selectors.execution_get(user=request.user, execution_id=execution.id)
        return Response(execution_data(execution))


class RerunApi(APIView):
    @extend_schema(request=None, responses={200: RunOutput})
    def post(self, request: Request, execution_id: uuid.UUID) -> Response:
        execution = selectors.execution_get(user=request.user, execution_id=execution_id)
        rerun = services.execution_rerun(user=request.user, execution=execution)
        return Response({"executed_operation_id": str(rerun.id)})


class LogsApi(APIView):
    @extend_schema(responses={200: inline_serializer("JobLogs", {"stdout": serializers.CharField(),
                                                                  "stderr": serializers.CharField()})})
    def get(self, request: Request, execution_id: uuid.UUID) -> Response:
        execution = selectors.execution_get(user=request.user, execution_id=execution_id)
        stdout = stderr = ""
        if execution.job_id:
            try:
                stdout, stderr = get_runner(execution.runner).logs(execution.job_id,
                                                                   runner_state=execution.runner_state)
            except RunnerError as exc:
                raise ApplicationError(status_code=502, body={"error": f"The job's logs are unavailable: {exc}"}) \
                    from exc
        return Response({"stdout": stdout, "stderr": stderr, "state": execution.state})


class ResultsQueryApi(APIView):
    @extend_schema(responses={200: inline_serializer("Network", {"nodes": serializers.ListField(),
                                                                  "edges": serializers.ListField()}), 204: None})
    def get(self, request: Request, execution_id: uuid.UUID) -> Response:
        execution = selectors.execution_get(user=request.user, execution_id=execution_id)
        if execution.execution_stop_datetime is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        if execution.job_failed:
            raise ApplicationError(body={"error": "The job failed, so it has no results to query."})
        return Response(selectors.execution_results_query(execution=execution, params=request.query_params))
