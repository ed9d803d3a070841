"""Bearer JWT authentication that answers 401 (never 403) and honours token revocation."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.utils import aware_utcnow, get_md5_hash_password

from mev.core.pk_lookup import PkLookup

TOKEN_VERSION_CLAIM = "tv"  # noqa: S105  (a claim name, not a secret)

# Access tokens this worker has verified, by signing key and exact bytes (see get_validated_token).
# Emptied when full: a worker sees a few hundred distinct tokens in an access token's 30 minutes.
VERIFIED_TOKENS_MAX = 4096
_verified_tokens: dict[tuple[str, bytes], Any] = {}


@cache
def user_by_id() -> PkLookup[Any]:
    """Every authenticated request reads its user by primary key (SIMPLE_JWT's USER_ID_FIELD is "id"),
    with the statement compiled once instead of per request. Built on first use: the user model is
    not known while the apps load, when this module is first imported."""
    return PkLookup(get_user_model())


def verified_token(raw_token: bytes) -> Any | None:
    """The token with these exact bytes if this worker has verified it before (its expiry unchecked)."""
    return _verified_tokens.get((api_settings.SIGNING_KEY, raw_token))


def token_user_refusal(validated_token: Any, user: Any) -> Exception | None:
    """Why ``user`` may not use ``validated_token`` (the exception to raise), or None when it may.

    simplejwt's checks after the user is found, in its order and with its messages, plus the
    token version. Shared with the contents fast path (`mev.resources.contents_fastpath`), which
    must refuse exactly what this authentication refuses.
    """
    if api_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
        return AuthenticationFailed(_("User is inactive"), code="user_inactive")
    if api_settings.CHECK_REVOKE_TOKEN and validated_token.get(
        api_settings.REVOKE_TOKEN_CLAIM
    ) != get_md5_hash_password(user.password):
        return AuthenticationFailed(_("The user's password has been changed."), code="password_changed")
    if validated_token.get(TOKEN_VERSION_CLAIM, 0) != user.token_version:
        return InvalidToken({"detail": "Token has been revoked.", "code": "token_not_valid"})
    return None


class BearerJWTAuthentication(JWTAuthentication):
    """simplejwt's authentication plus a per-user token version.

    Changing or resetting a password bumps `User.token_version`; tokens minted before that stop
    working, without refresh-token rotation (the web client keeps re-using its first refresh token).
    The user row is read on every request, so a revoked token or a deactivated account is refused
    at once; nothing about the user is cached between requests.
    """

    www_authenticate_realm = "api"

    def get_validated_token(self, raw_token: bytes) -> Any:
        """simplejwt's verification, once per token and worker; the expiry is checked on every request.

        Verifying a token (PyJWT checks its base64 character by character, vets the HMAC key, then
        the signature and the claims) costs about 0.13 ms of CPU, an eighth of what a contents request
        costs besides the query engine. A token's bytes cannot change, so a token verified once stays
        valid until it expires: a hit is only checked for expiry, and an expired or unknown token goes
        through simplejwt (same errors). Revocation is unaffected: `get_user` reads the user's token
        version on every request.
        """
        key = (api_settings.SIGNING_KEY, raw_token)
        token = verified_token(raw_token)
        if token is not None:
            try:
                token.check_exp(current_time=aware_utcnow())
                return token
            except TokenError:
                _verified_tokens.pop(key, None)
        token = super().get_validated_token(raw_token)
        if len(_verified_tokens) >= VERIFIED_TOKENS_MAX:
            _verified_tokens.clear()
        _verified_tokens[key] = token
        return token

    def get_user(self, validated_token: Any) -> Any:
        # simplejwt's checks, in its order and with its messages; only the read is faster.
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError as error:
            raise InvalidToken(_("Token contained no recognizable user identification")) from error
        user = user_by_id().get(user_id)
        if user is None:
            raise AuthenticationFailed(_("User not found"), code="user_not_found")
        refusal = token_user_refusal(validated_token, user)
        if refusal is not None:
            raise refusal
        return user

    def authenticate_header(self, request: Any) -> str:
        return f'Bearer realm="{self.www_authenticate_realm}"'


__all__ = ["BearerJWTAuthentication", "AuthenticationFailed", "TOKEN_VERSION_CLAIM"]
