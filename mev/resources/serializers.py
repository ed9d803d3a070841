"""The contract's Resource object (§2.2)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from mev.resources.models import Resource, ResourceStatus

try:
    from mev.resource_types.registry import title_for as _title_for
except ImportError:  # pragma: no cover - the registry ships with the repository
    _FALLBACK_TITLES = {
        "MTX": "Numeric table", "I_MTX": "Integer table", "EXP_MTX": "Expression matrix",
        "RNASEQ_COUNT_MTX": "RNA-seq count matrix", "NS": "Network descriptor", "ANN": "Annotation table",
        "FT": "Feature table", "BED3": "BED3-format file", "BED6": "BED6-format file",
        "NRWPK": "NarrowPeak (BED6+4) format file", "JSON": "JSON-format file", "FQ": "Fastq", "FA": "Fasta",
        "ALN": "Alignment (SAM/BAM)", "BAI": "BAM Index", "WIG": "WIG (wiggle) format",
        "BIGWIG": "BigWIG (compressed wiggle) format", "BEDGRAPH": "BedGraph format", "*": "General file",
    }

    def _title_for(code: str | None) -> str | None:
        return _FALLBACK_TITLES.get(code) if code else None


def render_workspaces(workspaces: Any, context: dict[str, Any]) -> list[dict[str, Any]]:
    from mev.workspaces.serializers import WorkspaceOutputSerializer

    return list(WorkspaceOutputSerializer(workspaces, many=True, context=context).data)


class WorkspaceSummarySerializer(serializers.Serializer):
    """Schema only: the Workspace object (§2.6) as embedded in a Resource."""

    url = serializers.CharField()
    id = serializers.UUIDField()
    workspace_name = serializers.CharField()
    owner_email = serializers.EmailField()
    created = serializers.DateTimeField()


class ResourceOutputSerializer(serializers.Serializer):
    """Exactly the Resource object of contract §2.2, plus `suggested_resource_type`/`_file_format`.

    `datafile` is **not** a storage link (§7.1.16): it is the authenticated download route
    `/api/resources/download/<id>/`, which needs the caller's token; pre-signed links come only
    from `/resources/signed-url/<id>/`.

    For lists, pass a queryset from `selectors.resource_list` (owner selected, workspaces
    prefetched) so rendering makes no per-row queries.
    """

    id = serializers.UUIDField()
    name = serializers.CharField()
    resource_type = serializers.CharField(allow_null=True)
    readable_resource_type = serializers.SerializerMethodField()
    file_format = serializers.CharField(allow_null=True)
    owner_email = serializers.EmailField(source="owner.email")
    is_active = serializers.BooleanField()
    is_public = serializers.BooleanField()
    status = serializers.SerializerMethodField()
    workspaces = serializers.SerializerMethodField()
    created = serializers.DateTimeField()
    size = serializers.IntegerField()
    datafile = serializers.SerializerMethodField()
    suggested_resource_type = serializers.CharField(allow_null=True)
    suggested_file_format = serializers.CharField(allow_null=True)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_readable_resource_type(self, resource: Resource) -> str | None:
        return _title_for(resource.resource_type) if resource.resource_type else None

    @extend_schema_field(serializers.CharField())
    def get_status(self, resource: Resource) -> str:
        return resource.status if resource.status is not None else ResourceStatus.READY

    @extend_schema_field(WorkspaceSummarySerializer(many=True))
    def get_workspaces(self, resource: Resource) -> list[dict[str, Any]]:
        return render_workspaces(resource.workspaces.all(), self.context)

    @extend_schema_field(serializers.CharField())
    def get_datafile(self, resource: Resource) -> str:
        path = f"/api/resources/download/{resource.pk}/"
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path
