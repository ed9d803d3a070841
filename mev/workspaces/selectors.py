"""Every read about workspaces, their resources, their metadata and their shares.

Each selector starts from `mev.workspaces.access`, so it only ever sees what the requester may read.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.db.models import Case, CharField, OuterRef, Prefetch, QuerySet, Subquery, Value, When

from mev.jobs.models import JobState
from mev.resources.models import ElementKind, Resource, ResourceElement
from mev.users.models import User
from mev.workspaces.access import workspaces_readable_by
from mev.workspaces.models import ShareEvent, Workspace, WorkspaceShare

FAILED_STATES = (JobState.FAILED, JobState.CANCELED)


def workspace_list(*, user: User) -> QuerySet[Workspace]:
    """Owned and shared workspaces, newest first, each annotated with the caller's `role`."""
    share_role = WorkspaceShare.objects.filter(workspace=OuterRef("pk"), user=user).values("role")[:1]
    return (
        workspaces_readable_by(user)
        .select_related("owner")
        .annotate(
            role=Case(
                When(owner=user, then=Value("owner")),
                default=Subquery(share_role),
                output_field=CharField(),
            )
        )
        .order_by("-created")
    )


def workspace_resources(*, workspace: Workspace, user: User) -> QuerySet[Resource]:
    """Every resource attached to the workspace (any member may read them), newest first.

    Each resource's `workspaces` is limited to the workspaces the requester can read, so a reader
    does not learn the names of the owner's other workspaces.
    """
    visible = Workspace.objects.filter(pk__in=workspaces_readable_by(user).values("pk")).select_related("owner")
    return (
        Resource.objects.filter(workspaceresource__workspace=workspace)
        .select_related("owner")
        .prefetch_related(Prefetch("workspaces", queryset=visible))
        .order_by("-created")
    )


def _mentions(value: Any, target: str) -> bool:
    if isinstance(value, str):
        return value.lower() == target
    if isinstance(value, list | tuple):
        return any(_mentions(v, target) for v in value)
    if isinstance(value, dict):
        return any(_mentions(v, target) for v in value.values())
    return False


def resource_used_in_workspace(*, workspace: Workspace, resource: Resource) -> bool:
    """True when a non-failed executed operation of the workspace took the resource as an input
    (a value of `inputs`, or an element of a list value) or produced it.

    Reads only the `inputs` column of the workspace's executions: no spec or file is opened.
    """
    live = workspace.executions.exclude(state__in=FAILED_STATES)
    if resource.parent_operation_id is not None and live.filter(pk=resource.parent_operation_id).exists():
        return True
    target = str(resource.pk).lower()
    return any(_mentions(inputs, target) for inputs in live.values_list("inputs", flat=True).iterator())


# --- Workspace metadata (contract §2.6, §7.4.2) ----------------------------------------------------


def workspace_element_ids(*, workspace: Workspace, kind: str) -> QuerySet[ResourceElement]:
    """The distinct element ids of one kind over the workspace's resources, sorted: the thing to paginate."""
    return (
        ResourceElement.objects.filter(resource__workspaceresource__workspace=workspace, kind=kind)
        .values_list("element_id", flat=True)
        .distinct()
        .order_by("element_id")
    )


def workspace_elements_merged(*, workspace: Workspace, kind: str, element_ids: Iterable[str]) -> list[dict]:
    """The merged elements for one page of ids.

    Merge rule: every attribute key found for the element in any resource is kept. When the
    resources that carry a key all give the same value, that value is used. When they disagree,
    the key is left out of `attributes` and the element gets
    `conflicts: {key: [{"resource": id, "resource_name": name, "value": value}, ...]}`
    (sorted by resource id), so the answer never depends on the order of the resources.
    """
    ids = list(element_ids)
    rows = (
        ResourceElement.objects.filter(
            resource__workspaceresource__workspace=workspace, kind=kind, element_id__in=ids
        )
        .values_list("element_id", "resource_id", "resource__name", "attributes")
        .order_by("element_id", "resource_id")
    )
    seen: dict[str, dict[str, list[tuple[uuid.UUID, str, Any]]]] = {i: {} for i in ids}
    for element_id, resource_id, resource_name, attributes in rows:
        for key, value in (attributes or {}).items():
            seen[element_id].setdefault(key, []).append((resource_id, resource_name, value))
    merged = []
    for element_id in ids:
        attributes: dict[str, Any] = {}
        conflicts: dict[str, list[dict[str, Any]]] = {}
        for key in sorted(seen[element_id]):
            versions = seen[element_id][key]
            first = versions[0][2]
            if all(v == first for _, _, v in versions[1:]):
                attributes[key] = first
            else:
                conflicts[key] = [{"resource": str(rid), "resource_name": name, "value": v} for rid, name, v in versions]
        element: dict[str, Any] = {"id": element_id, "attributes": attributes}
        if conflicts:
            element["conflicts"] = conflicts
        merged.append(element)
    return merged


KINDS = {"observations": ElementKind.OBSERVATION, "features": ElementKind.FEATURE}


# --- Shares --------------------------------------------------------------------------------------


def share_list(*, workspace: Workspace) -> QuerySet[WorkspaceShare]:
    return workspace.shares.select_related("user").order_by("created", "id")


def share_event_list(*, workspace: Workspace) -> QuerySet[ShareEvent]:
    return ShareEvent.objects.filter(workspace_uuid=workspace.pk).order_by("timestamp", "id")
