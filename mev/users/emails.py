"""Account e-mails: rendered from text + HTML templates, sent only after the transaction commits."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, mail_admins
from django.db import transaction
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)


def _send(template: str, to: str, context: dict[str, Any]) -> None:
    context = {"frontend_url": settings.FRONTEND_URL, **context}
    subject = render_to_string(f"emails/{template}_subject.txt", context).strip()
    text = render_to_string(f"emails/{template}.txt", context)
    html = render_to_string(f"emails/{template}.html", context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [to])
    message.attach_alternative(html, "text/html")
    try:
        message.send()
    except Exception:  # an outage of the mail server must not turn a finished request into a 500
        logger.exception("Could not send the %s e-mail to %s", template, to)


def send_after_commit(template: str, *, to: str, context: dict[str, Any]) -> None:
    transaction.on_commit(lambda: _send(template, to, context))


def notify_admins_after_commit(subject: str, body: str) -> None:
    def _notify() -> None:
        try:
            mail_admins(subject, body)
        except Exception:
            logger.exception("Could not e-mail the admins: %s", subject)

    transaction.on_commit(_notify)
