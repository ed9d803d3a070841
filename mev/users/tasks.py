"""Mail is sent by a worker: a slow or failing mail server never slows a request (§7.3.13)."""

from __future__ import annotations

from celery import shared_task
from django.core.mail import EmailMultiAlternatives, mail_admins


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_email(*, subject: str, text: str, html: str | None, from_email: str, to: list[str]) -> None:
    message = EmailMultiAlternatives(subject, text, from_email, to)
    if html:
        message.attach_alternative(html, "text/html")
    message.send()


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_admin_email(*, subject: str, body: str) -> None:
    mail_admins(subject, body)
