"""Jobs: executed operations, their lifecycle, the runners and the periodic sweep."""

from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "mev.jobs"
    label = "jobs"
