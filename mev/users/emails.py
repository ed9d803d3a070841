"""Account e-mails: rendered from text + HTML templates, handed to a worker after the commit."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string

from mev.users import tasks


def send_after_commit(template: str, *, to: str, context: dict[str, Any]) -> None:
    context = {"frontend_url": settings.FRONTEND_URL, **context}
    message = {
        "subject": render_to_string(f"emails/{template}_subject.txt", context).strip(),
        "text": render_to_string(f"emails/{template}.txt", context),
        "html": render_to_string(f"emails/{template}.html", context),
        "from_email": settings.DEFAULT_FROM_EMAIL,
        "to": [to],
    }
    transaction.on_commit(lambda: tasks.send_email.delay(**message))


def notify_admins_after_commit(subject: str, body: str) -> None:
    transaction.on_commit(lambda: tasks.send_admin_email.delay(subject=subject, body=body))
