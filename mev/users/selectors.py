"""Every read about accounts, messages and feedback."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from mev.core.exceptions import ApplicationError
from mev.users.models import Feedback, Message, User


def user_get_for(*, requester: User, user_id: uuid.UUID) -> User:
    """A user may read and change only their own account; staff get nothing extra (§1.7)."""
    if user_id == requester.pk:
        return requester
    if not User.objects.filter(pk=user_id).exists():
        raise ApplicationError("Not found.", status_code=404)
    raise ApplicationError("You do not have permission to perform this action.", status_code=403)


def message_list() -> QuerySet[Message]:
    return Message.objects.all()


def message_latest() -> Message | None:
    return Message.objects.first()


def feedback_list() -> QuerySet[Feedback]:
    return Feedback.objects.select_related("user")
