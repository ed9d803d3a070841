"""Every write about workspaces, their membership and their shares."""

from __future__ import annotations

import uuid

from django.db import IntegrityError, transaction

from mev.core.exceptions import ApplicationError
from mev.jobs.models import ACTIVE_STATES
from mev.resources.models import Resource
from mev.users.models import User
from mev.workspaces.models import ShareEvent, ShareRole, Workspace, WorkspaceResource, WorkspaceShare
from mev.workspaces.selectors import resource_used_in_workspace

DUPLICATE_NAME = "There is already a workspace with this name. Try again."
USED_IN_ANALYSIS = "Resource was used in an analysis operation and cannot be removed."
NOT_ATTACHED = "This resource is not part of this workspace."
JOBS_RUNNING = (
    "This workspace has analyses that are still running. Wait for them to finish, "
    "or cancel them, before deleting the workspace."
)


def _name_taken(*, owner: User, name: str, exclude: uuid.UUID | None = None) -> bool:
    taken = Workspace.objects.filter(owner=owner, workspace_name=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude)
    return taken.exists()


def _duplicate() -> ApplicationError:
    return ApplicationError(body={"workspace_name": DUPLICATE_NAME})


@transaction.atomic
def workspace_create(*, owner: User, workspace_name: str = "") -> Workspace:
    """A new workspace; an empty (or blank) name is replaced by the workspace's UUID."""
    workspace = Workspace(owner=owner, workspace_name=workspace_name.strip())
    if not workspace.workspace_name:
        workspace.workspace_name = str(workspace.pk)
    if _name_taken(owner=owner, name=workspace.workspace_name):
        raise _duplicate()
    try:
        with transaction.atomic():
            workspace.save(force_insert=True)
    except IntegrityError as exc:  # a concurrent create with the same name
        raise _duplicate() from exc
    return workspace


@transaction.atomic
def workspace_rename(*, workspace: Workspace, workspace_name: str) -> Workspace:
    name = workspace_name.strip()
    if not name:
        raise ApplicationError(body={"workspace_name": "The workspace name cannot be empty."})
    if name == workspace.workspace_name:
        return workspace
    if _name_taken(owner=workspace.owner, name=name, exclude=workspace.pk):
        raise _duplicate()
    workspace.workspace_name = name
    try:
        with transaction.atomic():
            workspace.save(update_fields=["workspace_name"])
    except IntegrityError as exc:
        raise _duplicate() from exc
    return workspace


@transaction.atomic
def workspace_delete(*, workspace: Workspace, actor: User) -> None:
    """Deletes the workspace and its memberships and shares.

    Resources, their metadata and executed operations (with their results) are kept: executions
    lose their workspace link (SET_NULL). Each share ends with a `revoked` audit row, and the
    audit rows stay. Refused with 409 while any execution in it is active.
    """
    # Lock the row so no job can be started in it between the check and the delete.
    Workspace.objects.select_for_update().filter(pk=workspace.pk).first()
    if workspace.executions.filter(state__in=ACTIVE_STATES).exists():
        raise ApplicationError(JOBS_RUNNING, status_code=409)
    for share in workspace.shares.select_related("user"):
        _record(workspace=workspace, actor=actor, user=share.user, action=ShareEvent.Action.REVOKED, role=share.role)
    workspace.delete()


@transaction.atomic
def workspace_add_resource(*, workspace: Workspace, resource: Resource, user: User) -> bool:
    """Attach a resource the caller owns, active and validated. True if newly attached."""
    if resource.owner_id != user.pk:
        raise ApplicationError(body={"resource_uuid": "You can only add resources that you own."})
    if not resource.is_active:
        raise ApplicationError(
            body={"resource_uuid": "This resource is inactive (validation or a copy is in progress). Try again later."}
        )
    if not resource.resource_type:
        raise ApplicationError(
            body={"resource_uuid": "This resource has no validated type. Set its type before adding it to a workspace."}
        )
    _, created = WorkspaceResource.objects.get_or_create(workspace=workspace, resource=resource)
    return created


@transaction.atomic
def workspace_remove_resource(*, workspace: Workspace, resource_id: uuid.UUID) -> None:
    """Detach a resource; refused (400 `message`) if not attached or used by a non-failed job here."""
    membership = (
        WorkspaceResource.objects.select_for_update()
        .select_related("resource")
        .filter(workspace=workspace, resource_id=resource_id)
        .first()
    )
    if membership is None:
        raise ApplicationError(body={"message": NOT_ATTACHED})
    if resource_used_in_workspace(workspace=workspace, resource=membership.resource):
        raise ApplicationError(body={"message": USED_IN_ANALYSIS})
    membership.delete()


# --- Sharing -------------------------------------------------------------------------------------


def _record(*, workspace: Workspace, actor: User, user: User, action: str, role: str) -> None:
    """Append one audit row; ids, names and e-mails are copied so the row outlives what it names."""
    ShareEvent.objects.create(
        workspace=workspace, workspace_uuid=workspace.pk, workspace_name=workspace.workspace_name,
        actor=actor, actor_email=actor.email, user=user, user_email=user.email, action=action, role=role,
    )


@transaction.atomic
def workspace_share(*, workspace: Workspace, actor: User, email: str, role: str) -> WorkspaceShare:
    """Grant `role` to the user with this e-mail. Only the owner gets here (checked by the caller)."""
    if role not in ShareRole.values:
        raise ApplicationError(body={"role": f"The role must be one of: {', '.join(ShareRole.values)}."})
    target = User.objects.filter(email__iexact=email.strip()).first()
    if target is None:
        raise ApplicationError(body={"email": "There is no user with this e-mail address."})
    if target.pk == workspace.owner_id:
        raise ApplicationError(body={"email": "You own this workspace: it cannot be shared with yourself."})
    existing = WorkspaceShare.objects.filter(workspace=workspace, user=target).first()
    if existing is not None:
        raise ApplicationError(
            body={
                "email": f"This workspace is already shared with {target.email} as {existing.role}. "
                f"Change the role with PATCH /api/workspaces/{workspace.pk}/shares/{target.pk}/."
            }
        )
    share = WorkspaceShare.objects.create(workspace=workspace, user=target, role=role)
    _record(workspace=workspace, actor=actor, user=target, action=ShareEvent.Action.GRANTED, role=role)
    return share


@transaction.atomic
def workspace_share_change(*, share: WorkspaceShare, actor: User, role: str) -> WorkspaceShare:
    if role not in ShareRole.values:
        raise ApplicationError(body={"role": f"The role must be one of: {', '.join(ShareRole.values)}."})
    if share.role != role:
        share.role = role
        share.save(update_fields=["role"])
        _record(workspace=share.workspace, actor=actor, user=share.user, action=ShareEvent.Action.CHANGED, role=role)
    return share


@transaction.atomic
def workspace_share_revoke(*, share: WorkspaceShare, actor: User) -> None:
    _record(
        workspace=share.workspace, actor=actor, user=share.user, action=ShareEvent.Action.REVOKED, role=share.role
    )
    share.delete()
