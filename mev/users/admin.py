"""Admin pages for accounts, banner messages and feedback."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from mev.users.models import Feedback, Message, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "is_active", "is_staff", "date_joined"]
    search_fields = ["email"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Storage", {"fields": ("storage_quota_bytes",)}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    readonly_fields = ["date_joined", "last_login"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["message", "creation_datetime"]


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    list_display = ["user", "timestamp", "message"]
    readonly_fields = ["user", "timestamp", "message"]
