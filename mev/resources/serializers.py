"""The contract's Resource object (§2.2)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from mev.core.timestamps import iso_timestamp
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

    For lists, pass a queryset with the owner selected and the workspaces prefetched, so rendering
    makes no per-row queries; `GET /resources/` itself uses `selectors.resource_list_representation`.
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

    # The declared fields describe the object for the OpenAPI schema; rendering is done directly by
    # `to_representation`, because `GET /resources/` renders every file of a user and the generic
    # field machinery (plus a nested serializer per row) cost more than the database query.

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_readable_resource_type(self, resource: Resource) -> str | None:  # pragma: no cover - schema only
        return _title_for(resource.resource_type) if resource.resource_type else None

    @extend_schema_field(serializers.CharField())
    def get_status(self, resource: Resource) -> str:  # pragma: no cover - schema only
        return resource.status or ResourceStatus.READY

    @extend_schema_field(WorkspaceSummarySerializer(many=True))
    def get_workspaces(self, resource: Resource) -> list[dict[str, Any]]:  # pragma: no cover - schema only
        return []

    @extend_schema_field(serializers.CharField())
    def get_datafile(self, resource: Resource) -> str:  # pragma: no cover - schema only
        return ""

    def to_representation(self, resource: Resource) -> dict[str, Any]:
        from mev.workspaces.serializers import absolute_base, workspace_representation

        # Cached on the serializer (a list's child is one instance), so computed once per response.
        base = self.__dict__.get("_base")
        if base is None:
            base = self.__dict__["_base"] = absolute_base(self.context.get("request"))
        workspaces = [
            workspace_representation(id=w.pk, workspace_name=w.workspace_name, owner_email=w.owner.email,
                                     created=w.created, base=base)
            for w in resource.workspaces.all()
        ]
        row = {name: getattr(resource, name) for name in RESOURCE_ROW_FIELDS}
        return resource_representation(row, owner_email=resource.owner.email, workspaces=workspaces, base=base)


# The model fields the Resource object is made of (`selectors.resource_list_rows` reads just these).
RESOURCE_ROW_FIELDS = ("id", "name", "resource_type", "file_format", "is_active", "is_public", "status", "created",
                       "size", "suggested_resource_type", "suggested_file_format")


def resource_representation(row: dict[str, Any], *, owner_email: str, workspaces: list[dict[str, Any]], base: str
                            ) -> dict[str, Any]:
    """The Resource object of §2.2 from a row of `RESOURCE_ROW_FIELDS` values."""
    resource_type = row["resource_type"]
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "resource_type": resource_type,
        "readable_resource_type": _title_for(resource_type) if resource_type else None,
        "file_format": row["file_format"],
        "owner_email": owner_email,
        "is_active": row["is_active"],
        "is_public": row["is_public"],
        "status": row["status"] or ResourceStatus.READY,
        "workspaces": workspaces,
        "created": iso_timestamp(row["created"]),
        "size": row["size"],
        "datafile": f"{base}/api/resources/download/{row['id']}/",
        "suggested_resource_type": row["suggested_resource_type"],
        "suggested_file_format": row["suggested_file_format"],
    }
