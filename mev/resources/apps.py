"""Resources: upload, validation, contents, download."""

from django.apps import AppConfig


class ResourcesConfig(AppConfig):
    name = "mev.resources"
    label = "resources"
