"""Every write about accounts, messages and feedback."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from rest_framework.exceptions import ValidationError

from mev.core.exceptions import ApplicationError
from mev.users import email_change, emails
from mev.users.models import Feedback, Message, User
from mev.users.tokens import check_link_token, decode_uid, encode_uid, make_link_token

PASSWORDS_DIFFER = "The passwords do not match. Please try again."
NO_PASSWORD_LOGIN = "This account signs in through an external identity provider and has no password. Use that provider to sign in."  # noqa: S105, E501


def _check_new_password(*, password: str, confirm_password: str, user: User | None) -> None:
    if password != confirm_password:
        raise ApplicationError(body={"confirm_password": PASSWORDS_DIFFER})
    try:
        validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise ValidationError({"password": list(exc.messages)}) from exc


def _send_link(template: str, user: User) -> None:
    emails.send_after_commit(
        template,
        to=user.email,
        context={"email": user.email, "uid": encode_uid(user), "token": make_link_token(user)},
    )


def _user_for_link(*, uid: str, token: str) -> User:
    pk = decode_uid(uid)
    user = User.objects.filter(pk=pk).first() if pk else None
    if user is None:
        raise ApplicationError(body={"uid": "This link is not valid: the user was not found."})
    if not check_link_token(user, token):
        raise ApplicationError(body={"token": "Invalid token"})
    return user


@transaction.atomic
def user_register(*, email: str, password: str, confirm_password: str) -> User:
    email = User.objects.normalize_email(email).lower()
    if User.objects.filter(email__iexact=email).exists():
        raise ApplicationError(body={"email": "This user already exists."})
    _check_new_password(password=password, confirm_password=confirm_password, user=User(email=email))
    user = User.objects.create_user(email=email, password=password, is_active=False)
    _send_link("activation", user)
    return user


@transaction.atomic
def user_activate(*, uid: str, token: str) -> User:
    user = _user_for_link(uid=uid, token=token)
    if not user.is_active:
        user.is_active = True
        user.save(update_fields=["is_active"])
    return user


@transaction.atomic
def user_resend_activation(*, email: str) -> None:
    # Answers the same whether or not the account exists (contract §7.1.12).
    user = User.objects.filter(email__iexact=email, is_active=False).first()
    if user is not None:
        _send_link("activation", user)


@transaction.atomic
def user_password_reset_request(*, email: str) -> None:
    user = User.objects.filter(email__iexact=email).first()
    if user is not None and user.has_usable_password():
        _send_link("password_reset", user)


def _set_password(user: User, password: str) -> None:
    user.set_password(password)
    user.token_version += 1  # revokes every token issued before
    user.save(update_fields=["password", "token_version"])


@transaction.atomic
def user_password_reset_confirm(*, uid: str, token: str, password: str, confirm_password: str) -> User:
    user = _user_for_link(uid=uid, token=token)
    if not user.has_usable_password():
        raise ApplicationError(body={"password": NO_PASSWORD_LOGIN})
    _check_new_password(password=password, confirm_password=confirm_password, user=user)
    _set_password(user, password)
    if not user.is_active:  # following a mailed link proves the address
        user.is_active = True
        user.save(update_fields=["is_active"])
    return user


@transaction.atomic
def user_change_password(*, user: User, current_password: str, password: str, confirm_password: str) -> User:
    if not user.has_usable_password():
        raise ApplicationError(body={"current_password": NO_PASSWORD_LOGIN})
    if not user.check_password(current_password):
        raise ApplicationError(body={"current_password": "The current password was not valid."})
    _check_new_password(password=password, confirm_password=confirm_password, user=user)
    _set_password(user, password)
    return user


@transaction.atomic
def user_update(
    *, user: User, email: str | None = None, password: str | None = None, current_password: str | None = None,
    confirm_url: str = "",
) -> tuple[User, str | None]:
    """Changes through `/users/<id>/`; returns the user and the address waiting for confirmation, if any.

    A new password is checked and hashed, never stored as given. A new e-mail address is not applied
    here: a link is mailed to it (`confirm_url?token=...`), and only following that link changes the
    address, so nobody can move an account to an address they do not read.
    """
    pending = None
    if email is not None:
        email = User.objects.normalize_email(email).lower()
        if email != user.email:
            _check_current_password(user, current_password)
            if User.objects.filter(email__iexact=email).exclude(pk=user.pk).exists():
                raise ApplicationError(body={"email": "This user already exists."})
            token = email_change.make_token(user, email)
            emails.send_after_commit("email_change", to=email, context={
                "email": user.email, "new_email": email, "link": f"{confirm_url}?token={token}"})
            pending = email
    if password is not None:
        user_change_password(
            user=user, current_password=current_password or "", password=password, confirm_password=password
        )
    return user, pending


def _check_current_password(user: User, current_password: str | None) -> None:
    if user.has_usable_password() and not user.check_password(current_password or ""):
        raise ApplicationError(body={"current_password": "The current password was not valid."})


@transaction.atomic
def user_confirm_email_change(*, token: str) -> User:
    """Apply a mailed e-mail change; the previous address is told about it."""
    user_id, old, new = email_change.read_token(token)
    user = User.objects.select_for_update().filter(pk=user_id).first()
    if user is None or user.email != old:
        # Used already (the address changed since), or the account is gone.
        raise ApplicationError(body={"token": "This link has already been used or is no longer valid."})
    if User.objects.filter(email__iexact=new).exclude(pk=user.pk).exists():
        raise ApplicationError(body={"email": "This user already exists."})
    user.email = new
    user.save(update_fields=["email"])
    emails.send_after_commit("email_changed", to=old, context={"email": old, "new_email": new})
    return user


@transaction.atomic
def user_delete(*, user: User) -> None:
    user.delete()


@transaction.atomic
def user_create_or_update(*, email: str, password: str, admin: bool) -> tuple[User, bool]:
    """For operators: create the account, or set the password of the existing one. Idempotent."""
    email = User.objects.normalize_email(email).lower()
    user = User.objects.filter(email__iexact=email).first()
    created = user is None
    if user is None:
        user = User.objects.create_user(email=email, password=password, is_active=True)
    else:
        _set_password(user, password)
        user.is_active = True
    if admin:
        user.is_staff = True
        user.is_superuser = True
    user.save()
    return user, created


@transaction.atomic
def message_create(*, message: str) -> Message:
    return Message.objects.create(message=message)


@transaction.atomic
def feedback_create(*, user: User, message: str) -> Feedback:
    feedback = Feedback.objects.create(user=user, message=message)
    emails.notify_admins_after_commit(f"WebMEV feedback from {user.email}", message)
    return feedback
