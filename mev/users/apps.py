"""Users: accounts, tokens, registration and password flows, messages and feedback."""

from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "mev.users"
    label = "users"
    default_auto_field = "django.db.models.BigAutoField"
