"""Workspaces: groups of resources, workspace metadata, sharing."""

from django.apps import AppConfig


class WorkspacesConfig(AppConfig):
    name = "mev.workspaces"
    label = "workspaces"
