"""Shared renderings of workspaces (contract §2.6), used by the workspaces and resources apps."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.request import Request

from mev.core.timestamps import iso_timestamp
from mev.workspaces.models import Workspace


def absolute_base(request: Request | None) -> str:
    """`scheme://host` of the request ("" without one), computed once per response, not per row."""
    return request.build_absolute_uri("/")[:-1] if request is not None else ""


def workspace_representation(*, id: Any, workspace_name: str, owner_email: str, created: Any, base: str
                             ) -> dict[str, Any]:
    """The Workspace object, built directly from its values: resource lists embed one per membership,
    and a serializer per row (fields deep-copied on every instantiation) cost more than the query."""
    return {
        "url": f"{base}/api/workspaces/{id}/",
        "id": str(id),
        "workspace_name": workspace_name,
        "owner_email": owner_email,
        "created": iso_timestamp(created),
    }


class WorkspaceOutputSerializer(serializers.Serializer):
    """The contract's Workspace object: `{url, id, workspace_name, owner_email, created}`.

    `url` is the absolute URL of the detail route; it needs `request` in the context
    (without one it falls back to the path).
    """

    url = serializers.SerializerMethodField()
    id = serializers.UUIDField()
    workspace_name = serializers.CharField()
    owner_email = serializers.EmailField(source="owner.email")
    created = serializers.DateTimeField()

    def get_url(self, workspace: Workspace) -> str:
        return f"{absolute_base(self.context.get('request'))}/api/workspaces/{workspace.pk}/"
