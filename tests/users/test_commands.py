"""The operators' create_user command."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from mev.users.models import User

pytestmark = pytest.mark.django_db


def test_create_user_is_idempotent_and_updates_the_password():
    call_command("create_user", "--email", "Ops@Example.org", "--password", "first-Pass-1")
    call_command("create_user", "--email", "ops@example.org", "--password", "second-Pass-2", "--admin")
    user = User.objects.get()
    assert user.email == "ops@example.org"
    assert user.check_password("second-Pass-2")
    assert user.is_active and user.is_staff and user.is_superuser


def test_create_user_rejects_a_bad_email():
    with pytest.raises(CommandError):
        call_command("create_user", "--email", "nope", "--password", "x")
    assert not User.objects.exists()
