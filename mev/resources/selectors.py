"""Every read about resources, always scoped to the requesting user (contract §1.7, §7.1.17).

Other apps (validation, contents, metadata) fetch resources through these functions:
- `resource_get_owned` for anything that changes a resource;
- `resource_get_readable` for reads (owner, or a user the resource is shared with through a workspace).

A user with no access at all gets 404, exactly as for an unknown id, so ids of other people's files
cannot be probed; a user who may read a resource (through a shared workspace) but not change it gets 403.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Prefetch, QuerySet

from mev.core.exceptions import ApplicationError
from mev.core.pk_lookup import PkLookup
from mev.core.scoped_query import ScopedValues
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


def _owned_rows(owner_id: uuid.UUID) -> QuerySet[Resource]:
    from mev.resources.serializers import RESOURCE_ROW_FIELDS

    return resources_owned_by(User(pk=owner_id)).order_by("-created").values(*RESOURCE_ROW_FIELDS)


def _owned_memberships(owner_id: uuid.UUID) -> QuerySet[Any]:
    from mev.workspaces.models import WorkspaceResource

    return (WorkspaceResource.objects.filter(resource__owner_id=owner_id)
            .order_by("workspace__created")
            .values("resource_id", "workspace_id", "workspace__workspace_name", "workspace__owner__email",
                    "workspace__created"))


# Compiled once, prepared once per database connection (mev/core/scoped_query.py).
_OWNED_ROWS = ScopedValues(_owned_rows)
_OWNED_MEMBERSHIPS = ScopedValues(_owned_memberships)


def resource_list_representation(*, user: User, base: str) -> list[dict[str, Any]]:
    """`GET /resources/` rendered straight from two queries of plain values, no model instances.

    Every client page polls this list every few seconds while anything is validating, so it is
    the hottest read of the API: one query for the rows, one for every membership of them, both
    compiled once and prepared (`ScopedValues`).
    """
    from mev.resources.serializers import resource_representation
    from mev.workspaces.serializers import workspace_representation

    memberships: dict[Any, list[dict[str, Any]]] = {}
    for m in _OWNED_MEMBERSHIPS.rows(user.pk):
        memberships.setdefault(m["resource_id"], []).append(workspace_representation(
            id=m["workspace_id"], workspace_name=m["workspace__workspace_name"],
            owner_email=m["workspace__owner__email"], created=m["workspace__created"], base=base))
    return [resource_representation(row, owner_email=user.email, workspaces=memberships.get(row["id"], []), base=base)
            for row in _OWNED_ROWS.rows(user.pk)]


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


# What the contents routes (§2.3) read of a resource; the other fields stay deferred.
CONTENTS_FIELDS = ("owner", "is_active", "resource_type", "datafile", "table_file", "table_rows_file")
contents_lookup = PkLookup(Resource, fields=CONTENTS_FIELDS)


def resource_get_readable_for_contents(*, user: User, resource_id: uuid.UUID | str) -> Resource | None:
    """`resource_get_readable` for the contents routes: only CONTENTS_FIELDS, None when unknown or invisible.

    A viewer pages through a table one request at a time, so this read is on the hot path: one
    primary-key query of six columns, compiled once (compiling took longer than PostgreSQL needs
    to answer it). The owner, the common case, is decided by that row; anyone else costs one more
    query, the workspace rule of `resources_readable_by`. A single query holding that rule would
    cost every owner the planning of its joins and subqueries (about 0.2 ms in PostgreSQL, against
    0.02 ms for the primary-key read).
    """
    resource = contents_lookup.get(resource_id)
    if resource is None or not _readable(user, resource):
        return None
    return resource
