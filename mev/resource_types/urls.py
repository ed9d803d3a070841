"""Route for the resource-type catalogue (§2.4), with and without the final slash."""

from mev.core.routing import route, routes
from mev.resource_types.apis import ResourceTypeListApi

urlpatterns = routes(
    route("resource-types/", ResourceTypeListApi.as_view(), "resource-type-list"),
)
