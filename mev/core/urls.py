"""Routes of cross-cutting endpoints, relative to /api/."""

from mev.core import apis
from mev.core.routing import route, routes

urlpatterns = routes(
    route("globus/transfer/", apis.GlobusTransferListApi.as_view(), "globus-transfer-list"),
)
