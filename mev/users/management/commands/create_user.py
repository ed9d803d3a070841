"""`manage.py create_user --email E --password P [--admin]`: create or update an account (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email

from mev.users.services import user_create_or_update


class Command(BaseCommand):
    help = "Create an active account, or set the password of an existing one. Safe to run again."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--admin", action="store_true", help="give staff and superuser rights")

    def handle(self, *args: Any, email: str, password: str, admin: bool, **options: Any) -> None:
        try:
            validate_email(email)
        except ValidationError as exc:
            raise CommandError(f"Not a valid e-mail address: {email!r}") from exc
        if not password:
            raise CommandError("The password must not be empty.")
        user, created = user_create_or_update(email=email, password=password, admin=admin)
        verb = "Created" if created else "Updated"
        role = " (admin)" if user.is_staff else ""
        self.stdout.write(f"{verb} {user.email}{role}.")
