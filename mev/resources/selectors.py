"""Every read about resources, always scoped to the requesting user (contract §1.7, §7.1.17).

Other apps (validation, contents, metadata) fetch resources through these functions:
- `resource_get_owned` for anything that changes a resource;
- `resource_get_readable` for reads (owner, or a user the resource is shared with through a workspace).

A user with no access at all gets 404, exactly as for an unknown id, so ids of other people's files
cannot be probed; a user who may read a resource (through a shared workspace) but not change it gets 403.
"""

from __future__ import annotations

import uuid

from django.db.models import Prefetch, QuerySet

from mev.core.exceptions import ApplicationError
from mev.resources.access import resources_owned_by, resources_readable_by
from mev.resources.models import Resource, UploadSession
from mev.users.models import User
from mev.workspaces.models import Workspace

NOT_FOUND = "Not found."
FORBIDDEN = "You do not have permission to perform this action."


def _with_relations(queryset: QuerySet[Resource]) -> QuerySet[Resource]:
    return queryset.select_related("owner").prefetch_related(
        Prefetch("workspaces", queryset=Workspace.objects.select_related("owner").order_by("created"))
    )


def resource_list(*, user: User) -> QuerySet[Resource]:
    """All of the user's own resources, inactive ones included, newest first; ready to serialize."""
    return _with_relations(resources_owned_by(user)).order_by("-created")


def _get_or_404(resource_id: uuid.UUID | str) -> Resource:
    resource = _with_relations(Resource.objects.all()).filter(pk=resource_id).first()
    if resource is None:
        raise ApplicationError(NOT_FOUND, status_code=404)
    return resource


def _readable(user: User, resource: Resource) -> bool:
    return resource.owner_id == user.pk or resources_readable_by(user).filter(pk=resource.pk).exists()


def resource_get_owned(*, user: User, resource_id: uuid.UUID | str) -> Resource:
    """The user's own resource: 404 if unknown or invisible to them, 403 if they may only read it."""
    resource = _get_or_404(resource_id)
    if resource.owner_id != user.pk:
        if _readable(user, resource):
            raise ApplicationError(FORBIDDEN, status_code=403)
        raise ApplicationError(NOT_FOUND, status_code=404)
    return resource


def resource_get_readable(*, user: User, resource_id: uuid.UUID | str) -> Resource:
    """A resource the user may read: own, or in a workspace shared with them; 404 otherwise."""
    resource = _get_or_404(resource_id)
    if not _readable(user, resource):
        raise ApplicationError(NOT_FOUND, status_code=404)
    return resource


def upload_session_get(*, user: User, upload_id: uuid.UUID | str) -> UploadSession:
    """The user's resumable upload; another user's id is 404, like an unknown one."""
    session = UploadSession.objects.select_related("resource").filter(pk=upload_id, owner=user).first()
    if session is None:
        raise ApplicationError(NOT_FOUND, status_code=404)
    return session
