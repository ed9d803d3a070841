"""OpenAPI generation tweaks: unique names for the nested Input/Output serializers, Bearer auth."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema


class MevAutoSchema(AutoSchema):
    def _get_serializer_name(self, serializer: Any, direction: str, bypass_extensions: bool = False) -> str:
        name = super()._get_serializer_name(serializer, direction, bypass_extensions)
        qualname = type(serializer).__qualname__
        if "." in qualname:  # ``RegisterApi.InputSerializer`` -> ``RegisterApiInput``
            owner = qualname.split(".")[0]
            if not name.startswith(owner):
                name = owner.removesuffix("Api") + name
        return name


class BearerJWTScheme(OpenApiAuthenticationExtension):
    target_class = "mev.core.authentication.BearerJWTAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


def only_canonical_routes(endpoints: list[tuple[str, str, str, Any]], **kwargs: Any) -> list[tuple[str, str, str, Any]]:
    """The slash-less twins of each route (contract §1.1) are aliases: document each route once."""
    return [e for e in endpoints if e[0].endswith("/")]
