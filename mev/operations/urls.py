"""Routes of the operations app, relative to /api/."""

from mev.core.routing import route, routes
from mev.operations import apis

urlpatterns = routes(
    route("operations/", apis.OperationListApi.as_view(), "operation-list"),
    route("operations/add/", apis.OperationAddApi.as_view(), "operation-add"),
    route("operations/<uuid:operation_id>/", apis.OperationDetailApi.as_view(), "operation-detail"),
    route("operations/<uuid:operation_id>/update/", apis.OperationUpdateApi.as_view(), "operation-update"),
    route("operation-categories/", apis.CategoryListApi.as_view(), "operation-category-list"),
    route("operation-categories/<str:category>/", apis.CategoryDetailApi.as_view(), "operation-category-detail"),
    route("operation-resources/<uuid:operation_id>/", apis.OperationResourcesApi.as_view(), "operation-resources"),
    route("operation-resources/<uuid:operation_id>/<str:input_key>/", apis.OperationResourcesApi.as_view(),
          "operation-resources-input"),
    route("operation-categories-add/", apis.CategoryAddApi.as_view(), "operation-category-add"),
)
