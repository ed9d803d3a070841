"""Routes of the set operations, relative to /api/ (each answers with and without the final slash)."""

from mev.core.routing import route, routes
from mev.elements import apis

urlpatterns = routes(
    route("metadata/intersect/", apis.SetIntersectionApi.as_view(), "metadata-intersect"),
    route("metadata/union/", apis.SetUnionApi.as_view(), "metadata-union"),
    route("metadata/set-difference/", apis.SetDifferenceApi.as_view(), "metadata-set-difference"),
)
