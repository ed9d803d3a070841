"""Who may see or change a workspace: its owner, and users it is shared with (reader or editor).

The one place that answers these questions; every selector that touches workspaces, their
resources or their results goes through it, so no view can forget a rule.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from mev.users.models import User
from mev.workspaces.models import ShareRole, Workspace


def workspaces_readable_by(user: User) -> QuerySet[Workspace]:
    """Owned workspaces, plus those shared with the user in any role."""
    return Workspace.objects.filter(Q(owner=user) | Q(shares__user=user)).distinct()


def workspaces_editable_by(user: User) -> QuerySet[Workspace]:
    """Owned workspaces, plus those shared with the user as editor (may add resources and run)."""
    return Workspace.objects.filter(Q(owner=user) | Q(shares__user=user, shares__role=ShareRole.EDITOR)).distinct()


def role_of(user: User, workspace: Workspace) -> str | None:
    """"owner", "editor", "reader", or None for a stranger."""
    if workspace.owner_id == user.pk:
        return "owner"
    share = workspace.shares.filter(user=user).first()
    return share.role if share else None
