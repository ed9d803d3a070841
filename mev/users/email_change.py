"""Signed links that confirm a change of e-mail address.

The token carries the account, the old and the new address, signed with the secret key and
time-stamped; it expires after `MEV_TOKEN_LINK_SECONDS` like the other account links. It is
single-use because confirming it changes the old address it names, and it dies with a password
change because the password hash is part of what is signed.
"""

from __future__ import annotations

import hashlib
import uuid

from django.conf import settings
from django.core import signing

from mev.core.exceptions import ApplicationError
from mev.users.models import User

_SALT = "mev.users.email-change"
INVALID = "This link is not valid or has expired. Ask for the change again from your account."


def _password_mark(user: User) -> str:
    return hashlib.sha256(user.password.encode()).hexdigest()[:16]


def make_token(user: User, new_email: str) -> str:
    return signing.dumps({"u": str(user.pk), "old": user.email, "new": new_email, "p": _password_mark(user)},
                         salt=_SALT, compress=True)


def read_token(token: str) -> tuple[uuid.UUID, str, str]:
    """(user id, old address, new address) of a valid token; 400 `{"token": ...}` otherwise."""
    try:
        data = signing.loads(token, salt=_SALT, max_age=settings.PASSWORD_RESET_TIMEOUT)
        user_id = uuid.UUID(data["u"])
        old, new, mark = str(data["old"]), str(data["new"]), str(data["p"])
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise ApplicationError(body={"token": INVALID}) from exc
    user = User.objects.filter(pk=user_id).only("password").first()
    if user is not None and _password_mark(user) != mark:
        raise ApplicationError(body={"token": INVALID})
    return user_id, old, new
