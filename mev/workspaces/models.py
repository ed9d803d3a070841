"""Workspaces: named groups of resources, their membership, and sharing with other users."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class Workspace(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workspaces")
    workspace_name = models.CharField(max_length=255)
    created = models.DateTimeField(default=timezone.now)
    resources = models.ManyToManyField("resources.Resource", through="WorkspaceResource", related_name="workspaces")

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "workspace_name"], name="unique_workspace_name_per_owner"),
        ]

    def __str__(self) -> str:
        return self.workspace_name


class WorkspaceResource(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)
    resource = models.ForeignKey("resources.Resource", on_delete=models.CASCADE)
    added = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "resource"], name="unique_workspace_resource")]


class ShareRole(models.TextChoices):
    READER = "reader", "Reader"
    EDITOR = "editor", "Editor"


class WorkspaceShare(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="shares")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workspace_shares")
    role = models.CharField(max_length=16, choices=ShareRole.choices)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "user"], name="unique_share_per_user")]


class ShareEvent(models.Model):
    """Append-only audit of share changes: who did what to whose access, and when.

    The rows outlive the workspace and the users: the links are set to null on deletion, and the
    workspace id and name and both e-mail addresses are copied when the event is written.
    """

    class Action(models.TextChoices):
        GRANTED = "granted", "Granted"
        CHANGED = "changed", "Changed"
        REVOKED = "revoked", "Revoked"

    workspace = models.ForeignKey(
        Workspace, null=True, blank=True, on_delete=models.SET_NULL, related_name="share_events"
    )
    workspace_uuid = models.UUIDField(null=True, blank=True, db_index=True)
    workspace_name = models.CharField(max_length=255, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    actor_email = models.EmailField(blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    user_email = models.EmailField(blank=True)
    action = models.CharField(max_length=16, choices=Action.choices)
    role = models.CharField(max_length=16, choices=ShareRole.choices, blank=True)
    timestamp = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["timestamp"]
