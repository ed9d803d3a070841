"""Operations: specs, attribute types, converters, ingestion, categories."""

from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "mev.operations"
    label = "operations"
