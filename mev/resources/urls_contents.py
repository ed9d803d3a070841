"""Routes for resource contents (§2.3) and metadata (§2.5); each answers with and without the final slash."""

from mev.core.routing import route, routes
from mev.resources.contents_apis import (
    ResourceContentsApi,
    ResourceContentsPreviewApi,
    ResourceContentsTransformApi,
)
from mev.resources.metadata_apis import (
    ResourceMetadataApi,
    ResourceMetadataFeaturesApi,
    ResourceMetadataObservationsApi,
    ResourceMetadataParentApi,
)

urlpatterns = routes(
    route("resources/<uuid:pk>/contents/", ResourceContentsApi.as_view(), "resource-contents"),
    route("resources/<uuid:pk>/contents/preview/", ResourceContentsPreviewApi.as_view(), "resource-contents-preview"),
    route("resources/<uuid:pk>/contents/transform/", ResourceContentsTransformApi.as_view(),
          "resource-contents-transform"),
    route("resources/<uuid:pk>/metadata/", ResourceMetadataApi.as_view(), "resource-metadata"),
    route("resources/<uuid:pk>/metadata/observations/", ResourceMetadataObservationsApi.as_view(),
          "resource-metadata-observations"),
    route("resources/<uuid:pk>/metadata/features/", ResourceMetadataFeaturesApi.as_view(),
          "resource-metadata-features"),
    route("resources/<uuid:pk>/metadata/parent/", ResourceMetadataParentApi.as_view(), "resource-metadata-parent"),
)
