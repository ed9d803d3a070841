"""Routes of the engine status endpoint, relative to /api/."""

from mev.core.routing import route, routes
from mev.jobs import engine_apis

urlpatterns = routes(
    route("admin/engines/", engine_apis.EngineStatusApi.as_view(), "admin-engines"),
)
