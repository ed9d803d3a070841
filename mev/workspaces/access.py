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


# --- Lookups for the HTTP layer -----------------------------------------------------------------
#
# One rule for every workspace route (documented in the OpenAPI descriptions):
#   * a user with no access at all (a stranger), or an unknown id: 404 — existence is not revealed;
#   * a member whose role is too weak for the action (a reader writing, an editor managing): 403.

NOT_FOUND = "Not found."
READ_ONLY = "You have read-only access to this workspace."
OWNER_ONLY = "Only the owner of this workspace can do this."


class Need:
    READ = "read"
    EDIT = "edit"
    OWN = "own"


_ALLOWED = {
    Need.READ: {"owner", "editor", "reader"},
    Need.EDIT: {"owner", "editor"},
    Need.OWN: {"owner"},
}


def workspace_for(user: User, workspace_id: object, need: str = Need.READ) -> tuple[Workspace, str]:
    """The workspace and the caller's role, or ApplicationError 404 (no access) / 403 (role too weak)."""
    from mev.core.exceptions import ApplicationError

    workspace = workspaces_readable_by(user).select_related("owner").filter(pk=workspace_id).first()
    if workspace is None:
        raise ApplicationError(NOT_FOUND, status_code=404)
    role = role_of(user, workspace)
    if role not in _ALLOWED[need]:
        raise ApplicationError(OWNER_ONLY if need == Need.OWN else READ_ONLY, status_code=403)
    return workspace, role
