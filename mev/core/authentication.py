"""Bearer JWT authentication that answers 401 (never 403) and honours token revocation."""

from __future__ import annotations

from typing import Any

from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken

TOKEN_VERSION_CLAIM = "tv"  # noqa: S105  (a claim name, not a secret)


class BearerJWTAuthentication(JWTAuthentication):
    """simplejwt's authentication plus a per-user token version.

    Changing or resetting a password bumps `User.token_version`; tokens minted before that stop
    working, without refresh-token rotation (the web client keeps re-using its first refresh token).
    """

    www_authenticate_realm = "api"

    def get_user(self, validated_token: Any) -> Any:
        user = super().get_user(validated_token)
        if validated_token.get(TOKEN_VERSION_CLAIM, 0) != user.token_version:
            raise InvalidToken({"detail": "Token has been revoked.", "code": "token_not_valid"})
        return user

    def authenticate_header(self, request: Any) -> str:
        return f'Bearer realm="{self.www_authenticate_realm}"'


__all__ = ["BearerJWTAuthentication", "AuthenticationFailed", "TOKEN_VERSION_CLAIM"]
