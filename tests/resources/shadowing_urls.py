"""A URL configuration in which another view answers the contents route (test_contents_fastpath)."""

from django.http import JsonResponse
from django.urls import include, path, re_path


def shadow(request, pk):
    return JsonResponse("shadowed", safe=False)


urlpatterns = [
    re_path(r"^api/resources/(?P<pk>[0-9a-f-]+)/contents/?$", shadow),
    path("", include("mev.urls")),
]
