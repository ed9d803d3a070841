"""Cross-cutting pieces: the error envelope, authentication, routing helpers, pagination."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "mev.core"
    label = "core"

    def ready(self) -> None:
        from mev.core import schema  # noqa: F401  (registers the OpenAPI auth extension)
