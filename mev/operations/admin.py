from django.contrib import admin

from mev.operations.models import IngestionRecord, Operation, OperationCategory


class CategoryInline(admin.TabularInline):
    model = OperationCategory
    extra = 0


@admin.register(Operation)
class OperationAdmin(admin.ModelAdmin):
    list_display = ("name", "mode", "active", "workspace_operation", "repository_name", "git_hash", "created")
    list_filter = ("active", "mode", "workspace_operation")
    search_fields = ("name", "repository_name", "git_hash")
    readonly_fields = ("id", "spec", "bundle_dir", "git_hash", "repository_url", "repository_name", "created")
    inlines = [CategoryInline]


@admin.register(IngestionRecord)
class IngestionRecordAdmin(admin.ModelAdmin):
    list_display = ("repository_url", "commit", "state", "created", "requested_by")
    list_filter = ("state",)
    readonly_fields = ("id", "repository_url", "commit", "requested_by", "state", "message", "operation", "created")
