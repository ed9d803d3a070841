"""Resources: uploaded or produced files, their declared type, validation state and metadata."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class ResourceStatus:
    """The exact status strings the web client matches (contract §2.2, §3.2)."""

    READY = ""
    VALIDATING = "Validating..."
    PROCESSING = "Processing..."


class Resource(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="resources")
    # The display name (the original file name on upload). Never used to build a storage path.
    name = models.CharField(max_length=255)
    # Storage key chosen by the server: `<owner id>/<resource id>/<random>`; unique, never reused.
    datafile = models.CharField(max_length=512, blank=True)
    resource_type = models.CharField(max_length=32, null=True, blank=True)
    file_format = models.CharField(max_length=16, null=True, blank=True)
    is_active = models.BooleanField(default=True)
    is_public = models.BooleanField(default=False)
    status = models.TextField(blank=True, default=ResourceStatus.READY)
    size = models.BigIntegerField(default=0)
    checksum = models.CharField(max_length=64, blank=True, help_text="sha256 of the stored file")
    created = models.DateTimeField(default=timezone.now, db_index=True)
    # What sniffing the upload suggested; shown to the user, never applied by itself.
    suggested_resource_type = models.CharField(max_length=32, null=True, blank=True)
    suggested_file_format = models.CharField(max_length=16, null=True, blank=True)
    # Derived copies written by validation (storage keys): standardized text and columnar table,
    # and for numeric matrices the table's row file (pages of scattered rows are read from it;
    # blank for every other type and for matrices validated before row files existed).
    standardized_file = models.CharField(max_length=512, blank=True)
    table_file = models.CharField(max_length=512, blank=True)
    table_rows_file = models.CharField(max_length=512, blank=True)
    n_rows = models.BigIntegerField(null=True, blank=True)
    n_cols = models.IntegerField(null=True, blank=True)
    # The validation asked for and not yet applied (§7.3.8): kept on the row so a lost queue
    # message can be re-sent by `requeue_stuck_validations`; cleared when an outcome is applied.
    pending_resource_type = models.CharField(max_length=32, null=True, blank=True)
    pending_file_format = models.CharField(max_length=16, null=True, blank=True)
    validation_requested_at = models.DateTimeField(null=True, blank=True)
    # How many times the sweep has re-sent the validation of the pending request.
    validation_requeues = models.PositiveSmallIntegerField(default=0)
    # The executed operation that produced this file (null for uploads); kept when the job goes.
    parent_operation = models.ForeignKey(
        "jobs.ExecutedOperation", null=True, blank=True, on_delete=models.SET_NULL, related_name="output_resources"
    )

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["owner", "-created"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class ResourceMetadata(models.Model):
    """The observation and feature sets extracted at validation (contract §2.5, §3.6)."""

    resource = models.OneToOneField(Resource, primary_key=True, on_delete=models.CASCADE, related_name="metadata")
    observation_set = models.JSONField(null=True, blank=True)
    feature_set = models.JSONField(null=True, blank=True)


class ElementKind(models.TextChoices):
    OBSERVATION = "observation", "Observation"
    FEATURE = "feature", "Feature"


class ResourceElement(models.Model):
    """One observation or feature of a resource, as a row, so workspace unions are queries (§7.4.2)."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="elements")
    kind = models.CharField(max_length=16, choices=ElementKind.choices)
    element_id = models.CharField(max_length=100)
    attributes = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["resource", "kind", "element_id"], name="unique_element_per_resource"),
        ]
        indexes = [models.Index(fields=["kind", "element_id"])]


class UploadSession(models.Model):
    """A resumable upload in progress (tus protocol): the bytes received so far live in `partial_path`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="uploads")
    filename = models.CharField(max_length=255)
    length = models.BigIntegerField()
    offset = models.BigIntegerField(default=0)
    partial_path = models.CharField(max_length=512)
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)
    resource = models.OneToOneField(Resource, null=True, blank=True, on_delete=models.SET_NULL)
