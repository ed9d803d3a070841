"""Who may see or change a resource: the owner changes it; workspace readers may read it."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from mev.resources.models import Resource
from mev.users.models import User
from mev.workspaces.access import workspaces_readable_by


def resources_owned_by(user: User) -> QuerySet[Resource]:
    return Resource.objects.filter(owner=user)


def resources_readable_by(user: User) -> QuerySet[Resource]:
    """Owned resources, plus every resource in a workspace the user can read (read-only).

    That includes the user's own workspaces: an editor may add their own file to the owner's
    workspace, and the owner must then see it there.
    """
    readable = workspaces_readable_by(user).values("id")
    return Resource.objects.filter(Q(owner=user) | Q(workspaces__in=readable)).distinct()
