"""Routes of the workspaces app, relative to /api/ (each answers with and without the final slash)."""

from mev.core.routing import route, routes
from mev.workspaces import apis

urlpatterns = routes(
    route("workspaces/", apis.WorkspaceListApi.as_view(), "workspace-list"),
    route("workspaces/<uuid:pk>/", apis.WorkspaceDetailApi.as_view(), "workspace-detail"),
    route("workspaces/<uuid:pk>/resources/", apis.WorkspaceResourceListApi.as_view(), "workspace-resources"),
    route("workspaces/<uuid:pk>/resources/add/", apis.WorkspaceResourceAddApi.as_view(), "workspace-resource-add"),
    route(
        "workspaces/<uuid:pk>/resources/<uuid:resource_id>/remove/",
        apis.WorkspaceResourceRemoveApi.as_view(),
        "workspace-resource-remove",
    ),
    route(
        "workspaces/<uuid:pk>/resources/<uuid:resource_id>/",
        apis.WorkspaceResourceDetailApi.as_view(),
        "workspace-resource-detail",
    ),
    route(
        "workspaces/<uuid:pk>/metadata/observations/",
        apis.WorkspaceObservationsApi.as_view(),
        "workspace-metadata-observations",
    ),
    route("workspaces/<uuid:pk>/metadata/features/", apis.WorkspaceFeaturesApi.as_view(), "workspace-metadata-features"),
    route("workspaces/<uuid:pk>/shares/", apis.WorkspaceShareListApi.as_view(), "workspace-shares"),
    route("workspaces/<uuid:pk>/shares/events/", apis.WorkspaceShareEventListApi.as_view(), "workspace-share-events"),
    route(
        "workspaces/<uuid:pk>/shares/<uuid:user_id>/", apis.WorkspaceShareDetailApi.as_view(), "workspace-share-detail"
    ),
)
