"""Routes of the resources app, relative to /api/ (each answers with and without the final slash)."""

from mev.core.routing import route, routes
from mev.resources import apis, tus

urlpatterns = routes(
    route("resources/", apis.ResourceListApi.as_view(), "resource-list"),
    route("resources/usage/", apis.ResourceUsageApi.as_view(), "resource-usage"),
    route("resources/upload/", apis.ResourceUploadApi.as_view(), "resource-upload"),
    route("resources/uploads/", tus.TusCreateApi.as_view(), "resource-tus-create"),
    route("resources/uploads/<uuid:upload_id>/", tus.TusUploadApi.as_view(), "resource-tus-upload"),
    route("resources/dropbox-upload/", apis.DropboxUploadApi.as_view(), "resource-dropbox-upload"),
    route("resources/download/<uuid:resource_id>/", apis.ResourceDownloadApi.as_view(), "resource-download"),
    route("resources/signed-url/<uuid:resource_id>/", apis.ResourceSignedUrlApi.as_view(), "resource-signed-url"),
    route("resources/signed/<str:token>/", apis.ResourceSignedDownloadApi.as_view(), "resource-signed-download"),
    route("resources/<uuid:resource_id>/", apis.ResourceDetailApi.as_view(), "resource-detail"),
)
