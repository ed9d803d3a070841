"""JWT pairs and the one uid+token scheme shared by activation and password-reset links."""

from __future__ import annotations

import uuid

from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from rest_framework_simplejwt.tokens import RefreshToken

from mev.core.authentication import TOKEN_VERSION_CLAIM
from mev.users.models import User

# Django's generator hashes the password and last login into the token, so a password change
# invalidates outstanding links, while activating an account does not use a reset link up
# (the client "verifies" a reset link by calling activate with it, contract §2.1).
link_token_generator = PasswordResetTokenGenerator()


def token_pair_for(user: User) -> dict[str, str]:
    refresh = RefreshToken.for_user(user)
    refresh[TOKEN_VERSION_CLAIM] = user.token_version
    return {"refresh": str(refresh), "access": str(refresh.access_token)}


def encode_uid(user: User) -> str:
    return urlsafe_base64_encode(force_bytes(str(user.pk)))


def decode_uid(uid: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(force_str(urlsafe_base64_decode(uid)))
    except (ValueError, TypeError, UnicodeDecodeError):
        return None


def make_link_token(user: User) -> str:
    return link_token_generator.make_token(user)


def check_link_token(user: User, token: str) -> bool:
    return link_token_generator.check_token(user, token)
