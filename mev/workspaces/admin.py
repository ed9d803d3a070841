"""Admin pages for workspaces, memberships, shares and the share audit trail."""

from django.contrib import admin

from mev.workspaces.models import ShareEvent, Workspace, WorkspaceResource, WorkspaceShare


class WorkspaceResourceInline(admin.TabularInline):
    model = WorkspaceResource
    extra = 0
    raw_id_fields = ["resource"]


class WorkspaceShareInline(admin.TabularInline):
    model = WorkspaceShare
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["workspace_name", "owner", "created"]
    search_fields = ["workspace_name", "owner__email"]
    raw_id_fields = ["owner"]
    inlines = [WorkspaceResourceInline, WorkspaceShareInline]


@admin.register(ShareEvent)
class ShareEventAdmin(admin.ModelAdmin):
    """Read-only: the audit trail is append-only."""

    list_display = ["timestamp", "workspace", "actor", "action", "user", "role"]
    list_filter = ["action", "role"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
