"""Read-mostly admin views of resources and resumable uploads (no file editing here)."""

from django.contrib import admin

from mev.resources.models import Resource, UploadSession


@admin.register(Resource)
class ResourceAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "resource_type", "file_format", "is_active", "status", "size", "created")
    list_filter = ("is_active", "resource_type")
    search_fields = ("name", "owner__email", "id")
    list_select_related = ("owner",)
    readonly_fields = ("id", "owner", "datafile", "checksum", "size", "created", "standardized_file", "table_file",
                       "table_rows_file", "parent_operation", "suggested_resource_type", "suggested_file_format")


@admin.register(UploadSession)
class UploadSessionAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "filename", "offset", "length", "updated", "resource")
    search_fields = ("owner__email", "filename", "id")
    list_select_related = ("owner", "resource")
    readonly_fields = ("id", "owner", "filename", "length", "offset", "partial_path", "created", "updated", "resource")
