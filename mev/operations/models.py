"""Operations: analyses described by a typed spec, ingested from a folder or a git repository."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class Operation(models.Model):
    """One ingested version of an analysis. Every ingestion is a new row; old ones stay resolvable."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    mode = models.CharField(max_length=32)
    workspace_operation = models.BooleanField(default=True)
    repository_url = models.CharField(max_length=512, blank=True)
    repository_name = models.CharField(max_length=255, blank=True)
    git_hash = models.CharField(max_length=64, blank=True)
    # The stored, canonical document with exactly the 10 keys of contract §4.1: what /operations/ returns.
    spec = models.JSONField()
    # Where the bundle's files were copied at ingestion (immutable afterwards).
    bundle_dir = models.CharField(max_length=512)
    active = models.BooleanField(default=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.git_hash[:8] or self.id})"


class OperationCategory(models.Model):
    operation = models.ForeignKey(Operation, on_delete=models.CASCADE, related_name="categories")
    category = models.CharField(max_length=255)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["operation", "category"], name="unique_operation_category")]


class IngestionRecord(models.Model):
    """Every ingestion attempt, so failures are visible to staff (§7.3.11)."""

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    repository_url = models.CharField(max_length=512)
    commit = models.CharField(max_length=64, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING)
    message = models.TextField(blank=True)
    operation = models.ForeignKey(Operation, null=True, blank=True, on_delete=models.SET_NULL)
    created = models.DateTimeField(default=timezone.now)


class OperationResource(models.Model):
    """A file bundled with an operation (`operation_resources.json`), offered for one input key.

    Not a Resource: it belongs to no user, never appears in resource listings, and resource routes
    given its id answer 404 (contract §7.2.14). Its bytes are stored under a server-chosen key.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    operation = models.ForeignKey(Operation, on_delete=models.CASCADE, related_name="bundled_resources")
    input_key = models.CharField(max_length=255)
    name = models.CharField(max_length=255)
    resource_type = models.CharField(max_length=32)
    # Storage key (mev.resources.storage), `operations/<operation id>/<random>`.
    datafile = models.CharField(max_length=512)
    # Where the file is in the bundle copy, to store it again if the storage lost it.
    bundle_path = models.CharField(max_length=512)
    size = models.BigIntegerField(default=0)
    checksum = models.CharField(max_length=64, blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["input_key", "name"]
        indexes = [models.Index(fields=["operation", "input_key"])]

    # Staging reads these like a Resource's (mev.jobs.staging.stage_resource).
    standardized_file = ""

    def __str__(self) -> str:
        return f"{self.name} ({self.input_key})"
