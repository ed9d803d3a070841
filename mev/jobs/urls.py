"""Routes of the jobs app, relative to /api/."""

from mev.core.routing import route, routes
from mev.jobs import apis

urlpatterns = routes(
    route("operations/run/", apis.RunApi.as_view(), "operation-run"),
    route("executed-operations/", apis.ExecutionListApi.as_view(), "execution-list"),
    route("executed-operations/non-workspace/", apis.NonWorkspaceExecutionListApi.as_view(),
          "execution-list-non-workspace"),
    route("non-workspace-executed-operations/", apis.NonWorkspaceExecutionListApi.as_view(),
          "non-workspace-execution-list"),
    route("executed-operations/workspace/<uuid:workspace_id>/", apis.WorkspaceExecutionListApi.as_view(),
          "execution-list-workspace"),
    route("executed-operations/workspace/<uuid:workspace_id>/tree/", apis.TreeApi.as_view(), "execution-tree"),
    route("executed-operations/workspace/<uuid:workspace_id>/tree/save/", apis.TreeSaveApi.as_view(),
          "execution-tree-save"),
    route("executed-operations/<uuid:execution_id>/", apis.ExecutionDetailApi.as_view(), "execution-detail"),
    route("executed-operations/<uuid:execution_id>/cancel/", apis.CancelApi.as_view(), "execution-cancel"),
    route("executed-operations/<uuid:execution_id>/rerun/", apis.RerunApi.as_view(), "execution-rerun"),
    route("executed-operations/<uuid:execution_id>/logs/", apis.LogsApi.as_view(), "execution-logs"),
    route("executed-operations/<uuid:execution_id>/results-query/", apis.ResultsQueryApi.as_view(),
          "execution-results-query"),
)
