"""Rate limits for the endpoints attackers like: login, registration, resets, feedback."""

from __future__ import annotations

from typing import Any

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class _ScopeThrottle(SimpleRateThrottle):
    """Counts per client address. The rate is read per request so settings overrides apply."""

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class AuthThrottle(_ScopeThrottle):
    """One budget shared by login, register, password reset and resend-activation."""

    scope = "auth"


class FeedbackThrottle(_ScopeThrottle):
    scope = "feedback"
