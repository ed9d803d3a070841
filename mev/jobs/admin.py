from django.contrib import admin

from mev.jobs.models import ExecutedOperation, ExecutionEvent


class EventInline(admin.TabularInline):
    model = ExecutionEvent
    extra = 0
    can_delete = False
    readonly_fields = ("timestamp", "from_state", "to_state", "detail")


@admin.register(ExecutedOperation)
class ExecutedOperationAdmin(admin.ModelAdmin):
    list_display = ("job_name", "operation", "owner", "state", "runner", "execution_start_datetime",
                    "execution_stop_datetime")
    list_filter = ("state", "runner")
    search_fields = ("id", "job_name", "job_id", "owner__email")
    readonly_fields = ("id", "owner", "operation", "workspace", "inputs", "outputs", "error_messages", "job_id",
                       "runner_state", "metrics", "cache_key", "state", "status", "state_changed")
    inlines = [EventInline]
