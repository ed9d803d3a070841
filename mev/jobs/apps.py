"""Jobs: executed operations, their lifecycle, the runners and the periodic sweep."""

from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "mev.jobs"
    label = "jobs"

    def ready(self) -> None:
        # Registers the start-up check that warns when a configured engine cannot be reached.
        from mev.jobs.runners import engines  # noqa: F401
