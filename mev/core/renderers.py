"""JSON rendering with orjson: the resource list and table pages are large, and encoding them with
the standard library took a visible share of each request."""

from __future__ import annotations

from typing import Any

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

_fallback = JSONEncoder()


def _default(value: Any) -> Any:
    # Types orjson does not know (Decimal, lazy translation strings, querysets...) go through
    # DRF's own encoder, so the output is the same as DRF's renderer would give.
    return _fallback.default(value)


class FastJSONRenderer(JSONRenderer):
    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None:
            return b""
        return orjson.dumps(data, default=_default, option=orjson.OPT_NON_STR_KEYS)
