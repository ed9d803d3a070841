"""Executed operations: one run of an operation, its explicit state machine and its event log."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class JobState(models.TextChoices):
    QUEUED = "QUEUED", "Queued for execution."
    SUBMITTED = "SUBMITTED", "Submitted."
    RUNNING = "RUNNING", "Running."
    FINALIZING = "FINALIZING", "Finalizing."
    COMPLETED = "COMPLETED", "Successfully completed."
    FAILED = "FAILED", "An error occurred during execution."
    CANCELED = "CANCELED", "Canceled."


TERMINAL_STATES = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELED})
ACTIVE_STATES = frozenset({JobState.QUEUED, JobState.SUBMITTED, JobState.RUNNING, JobState.FINALIZING})


class ExecutedOperation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="executions")
    operation = models.ForeignKey("operations.Operation", on_delete=models.PROTECT, related_name="executions")
    # Null for non-workspace operations, and when the workspace is deleted (results are kept).
    workspace = models.ForeignKey(
        "workspaces.Workspace", null=True, blank=True, on_delete=models.SET_NULL, related_name="executions"
    )
    job_name = models.CharField(max_length=255)
    mode = models.CharField(max_length=32)
    runner = models.CharField(max_length=32, help_text="the runner that executes it: local, cromwell, wes")
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.QUEUED, db_index=True)
    status = models.TextField(default=JobState.QUEUED.label)
    inputs = models.JSONField(default=dict)
    outputs = models.JSONField(null=True, blank=True)
    error_messages = models.JSONField(null=True, blank=True)
    # The engine's handle (a local pid/workdir token, a Cromwell or WES run id).
    job_id = models.CharField(max_length=255, blank=True)
    runner_state = models.JSONField(default=dict, blank=True)
    execution_start_datetime = models.DateTimeField(default=timezone.now)
    execution_stop_datetime = models.DateTimeField(null=True, blank=True)
    state_changed = models.DateTimeField(default=timezone.now)
    # Metrics reported by the runner: wall time, CPU time, peak memory, exit code.
    metrics = models.JSONField(default=dict, blank=True)
    # Identical requests (same operation version, input checksums, parameters) share this key.
    cache_key = models.CharField(max_length=64, blank=True, db_index=True)
    cancel_requested = models.BooleanField(default=False)

    class Meta:
        ordering = ["-execution_start_datetime"]

    def __str__(self) -> str:
        return f"{self.job_name} ({self.state})"

    @property
    def is_finalizing(self) -> bool:
        return self.state == JobState.FINALIZING

    @property
    def job_failed(self) -> bool:
        return self.state in (JobState.FAILED, JobState.CANCELED)


class ExecutionEvent(models.Model):
    """Append-only: one row per state transition."""

    execution = models.ForeignKey(ExecutedOperation, on_delete=models.CASCADE, related_name="events")
    timestamp = models.DateTimeField(default=timezone.now)
    from_state = models.CharField(max_length=16, choices=JobState.choices, blank=True)
    to_state = models.CharField(max_length=16, choices=JobState.choices)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["timestamp", "id"]
