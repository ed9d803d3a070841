"""The project's routes plus `/bench/bare/`: the plainest DRF list of 50 rows, as a baseline."""

from django.urls import path
from rest_framework import serializers
from rest_framework.generics import ListAPIView

from mev.resources.models import Resource
from mev.urls import urlpatterns as project_urlpatterns


class BareResourceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Resource
        fields = ["id", "name", "resource_type", "file_format", "is_active", "status", "size", "created"]


class BareListApi(ListAPIView):
    """Same authentication as the real endpoints; no joins, no nested objects."""

    serializer_class = BareResourceSerializer

    def get_queryset(self):
        return Resource.objects.filter(owner=self.request.user)[:50]


urlpatterns = [path("bench/bare/", BareListApi.as_view()), *project_urlpatterns]
