"""Shared renderings of workspaces (contract §2.6), used by the workspaces and resources apps."""

from __future__ import annotations

from rest_framework import serializers

from mev.workspaces.models import Workspace


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
        path = f"/api/workspaces/{workspace.pk}/"
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path
