"""Thin HTTP views for workspaces, membership, workspace metadata and sharing (contract §2.6).

Access rule on every route here: a caller with no access to the workspace (a stranger), or an
unknown workspace id, gets **404** — existence is never revealed. A member whose role is too weak
gets **403**: a reader trying to write, or an editor trying to rename, delete or manage shares.
Roles: owner (everything), editor (read, add/remove resources, run operations), reader (read only).
"""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mev.core.exceptions import ApplicationError
from mev.resources.access import resources_readable_by
from mev.users.models import User
from mev.workspaces import selectors, services
from mev.workspaces.access import Need, workspace_for
from mev.workspaces.models import ShareRole, Workspace, WorkspaceShare
from mev.workspaces.serializers import WorkspaceOutputSerializer

ACCESS_NOTE = (
    "\n\nAccess: 404 when the workspace is unknown or the caller has no access to it (its existence "
    "is not revealed); 403 when the caller is a member whose role does not allow this action."
)


def _resource_serializer() -> Any:
    # Imported lazily: the resources app owns the Resource object (contract §2.2).
    from mev.resources.serializers import ResourceOutputSerializer

    return ResourceOutputSerializer


def _render_resources(request: Request, resources: Any, *, many: bool) -> Any:
    return _resource_serializer()(resources, many=many, context={"request": request}).data


class WorkspaceListOutputSerializer(WorkspaceOutputSerializer):
    """The contract's Workspace object plus `role` (owner/editor/reader) and `shared` (not the caller's)."""

    role = serializers.CharField()
    shared = serializers.SerializerMethodField()

    def get_shared(self, workspace: Workspace) -> bool:
        return workspace.role != "owner"


def _render(request: Request, workspace: Workspace, role: str = "owner") -> dict[str, Any]:
    workspace.role = role
    return WorkspaceListOutputSerializer(workspace, context={"request": request}).data


class WorkspaceListApi(APIView):
    class InputSerializer(serializers.Serializer):
        workspace_name = serializers.CharField(required=False, allow_blank=True, default="", max_length=255)
        owner_email = serializers.CharField(required=False, allow_blank=True)

    @extend_schema(
        responses={200: WorkspaceListOutputSerializer(many=True)},
        description="Every workspace the caller owns or that is shared with them (bare array, newest first). "
        "`role` and `shared` say how the caller holds it.",
    )
    def get(self, request: Request) -> Response:
        workspaces = selectors.workspace_list(user=request.user)
        return Response(WorkspaceListOutputSerializer(workspaces, many=True, context={"request": request}).data)

    @extend_schema(
        request=InputSerializer,
        responses={201: WorkspaceListOutputSerializer},
        description="Create a workspace owned by the caller. An empty name is replaced by the workspace UUID. "
        'A name the caller already uses: 400 `{"workspace_name": ...}`. `owner_email`, if sent, must be the '
        "caller's: an unknown e-mail is 400, another user's 403.",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        owner_email = (data.validated_data.get("owner_email") or "").strip()
        if owner_email and owner_email.lower() != request.user.email.lower():
            if not User.objects.filter(email__iexact=owner_email).exists():
                raise ApplicationError(body={"owner_email": "There is no user with this e-mail address."})
            raise ApplicationError("You can only create workspaces for yourself.", status_code=403)
        workspace = services.workspace_create(owner=request.user, workspace_name=data.validated_data["workspace_name"])
        return Response(_render(request, workspace), status=status.HTTP_201_CREATED)


class WorkspaceDetailApi(APIView):
    class InputSerializer(serializers.Serializer):
        workspace_name = serializers.CharField(allow_blank=True, max_length=255)
        owner_email = serializers.CharField(required=False)

    @extend_schema(responses={200: WorkspaceListOutputSerializer}, description="One workspace." + ACCESS_NOTE)
    def get(self, request: Request, pk: uuid.UUID) -> Response:
        workspace, role = workspace_for(request.user, pk, Need.READ)
        return Response(_render(request, workspace, role))

    @extend_schema(
        request=InputSerializer,
        responses={200: WorkspaceListOutputSerializer},
        description="Rename (owner only). A duplicate name is 400 `workspace_name`; changing the owner is 400."
        + ACCESS_NOTE,
    )
    def patch(self, request: Request, pk: uuid.UUID) -> Response:
        workspace, role = workspace_for(request.user, pk, Need.OWN)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        owner_email = data.validated_data.get("owner_email")
        if owner_email is not None and owner_email.strip().lower() != workspace.owner.email.lower():
            raise ApplicationError(body={"owner_email": "The owner of a workspace cannot be changed."})
        workspace = services.workspace_rename(workspace=workspace, workspace_name=data.validated_data["workspace_name"])
        return Response(_render(request, workspace, role))

    put = patch

    @extend_schema(
        responses={204: None},
        description="Delete the workspace (owner only). Its resources, their metadata and its finished "
        "executed operations are kept (detached). 409 while any of its executed operations is still active."
        + ACCESS_NOTE,
    )
    def delete(self, request: Request, pk: uuid.UUID) -> Response:
        workspace, _ = workspace_for(request.user, pk, Need.OWN)
        services.workspace_delete(workspace=workspace, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WorkspaceResourceListApi(APIView):
    @extend_schema(
        responses={200: OpenApiTypes.OBJECT},
        description="Bare array of the Resource objects attached to the workspace (any member)." + ACCESS_NOTE,
    )
    def get(self, request: Request, pk: uuid.UUID) -> Response:
        workspace, _ = workspace_for(request.user, pk, Need.READ)
        return Response(_render_resources(request, selectors.workspace_resources(workspace=workspace, user=request.user), many=True))


class WorkspaceResourceAddApi(APIView):
    class InputSerializer(serializers.Serializer):
        resource_uuid = serializers.UUIDField()

    @extend_schema(
        request=InputSerializer,
        responses={201: OpenApiTypes.OBJECT, 204: None},
        description="Attach one of the caller's active, validated resources (owner or editor). 201 with the "
        'Resource when newly attached, 204 when it already was. 400 `{"resource_uuid": ...}` for an unknown '
        "resource, one the caller does not own, an inactive one or one with no validated type." + ACCESS_NOTE,
    )
    def post(self, request: Request, pk: uuid.UUID) -> Response:
        workspace, _ = workspace_for(request.user, pk, Need.EDIT)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        resource = resources_readable_by(request.user).filter(pk=data.validated_data["resource_uuid"]).first()
        if resource is None:
            raise ApplicationError(body={"resource_uuid": "There is no resource with this id."})
        created = services.workspace_add_resource(workspace=workspace, resource=resource, user=request.user)
        if not created:
            return Response(status=status.HTTP_204_NO_CONTENT)
        rendered = selectors.workspace_resources(workspace=workspace, user=request.user).get(pk=resource.pk)
        return Response(_render_resources(request, rendered, many=False), status=status.HTTP_201_CREATED)


REMOVE_DESCRIPTION = (
    "Detach a resource from the workspace (owner or editor); the resource itself is kept. "
    '400 `{"message": ...}` when it is not attached, or when a non-failed executed operation in this '
    "workspace used it as an input or produced it."
)


class WorkspaceResourceRemoveApi(APIView):
    """`GET …/resources/<rid>/remove/` exactly as the web client calls it; POST and DELETE do the same.

    GET changing state is safe from cross-site forgery because only Bearer auth is accepted (§7.1.15).
    """

    @extend_schema(request=None, responses={200: None}, description=REMOVE_DESCRIPTION + ACCESS_NOTE)
    def get(self, request: Request, pk: uuid.UUID, resource_id: uuid.UUID) -> Response:
        workspace, _ = workspace_for(request.user, pk, Need.EDIT)
        services.workspace_remove_resource(workspace=workspace, resource_id=resource_id)
        return Response(status=status.HTTP_200_OK)

    post = get
    delete = get


class WorkspaceResourceDetailApi(APIView):
    @extend_schema(responses={204: None}, description=REMOVE_DESCRIPTION + ACCESS_NOTE)
    def delete(self, request: Request, pk: uuid.UUID, resource_id: uuid.UUID) -> Response:
        workspace, _ = workspace_for(request.user, pk, Need.EDIT)
        services.workspace_remove_resource(workspace=workspace, resource_id=resource_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MetadataPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000


METADATA_DESCRIPTION = (
    "The union of the {kind} of every resource in the workspace, always paginated "
    "`{{count, next, previous, results: [{{id, attributes}}]}}`, sorted by `id`. `page` is 1-based or `last`; "
    "`page_size` defaults to 50, at most 1000. An out-of-range page is 404 `{{\"detail\": \"Invalid page.\"}}`.\n\n"
    "**When resources disagree.** An element's attributes are merged over every resource that has it. "
    "A key on which all those resources agree keeps that value. A key given **different** values by two "
    "resources is left out of `attributes`, and the element gets a `conflicts` object: "
    '`{{"<key>": [{{"resource": "<uuid>", "resource_name": "...", "value": <value>}}, ...]}}`, one entry '
    "per resource that has the key, sorted by resource id. Elements without conflicts have no `conflicts` "
    "key. The answer never depends on the order in which resources were added, and it is never an error "
    "(the original answered 500 here)." + ACCESS_NOTE
)


def _metadata_view(kind_name: str) -> type[APIView]:
    class _Api(APIView):
        pagination_class = MetadataPagination

        @extend_schema(
            parameters=[
                OpenApiParameter("page", str, description="1-based page number, or `last`"),
                OpenApiParameter("page_size", int, description="default 50, at most 1000"),
            ],
            responses={200: OpenApiTypes.OBJECT},
            description=METADATA_DESCRIPTION.format(kind=kind_name),
        )
        def get(self, request: Request, pk: uuid.UUID) -> Response:
            workspace, _ = workspace_for(request.user, pk, Need.READ)
            kind = selectors.KINDS[kind_name]
            paginator = self.pagination_class()
            ids = paginator.paginate_queryset(
                selectors.workspace_element_ids(workspace=workspace, kind=kind), request, view=self
            )
            elements = selectors.workspace_elements_merged(workspace=workspace, kind=kind, element_ids=ids or [])
            return paginator.get_paginated_response(elements)

    _Api.__name__ = _Api.__qualname__ = f"Workspace{kind_name.title()}Api"
    return _Api


WorkspaceObservationsApi = _metadata_view("observations")
WorkspaceFeaturesApi = _metadata_view("features")


# --- Sharing -------------------------------------------------------------------------------------


class ShareOutputSerializer(serializers.Serializer):
    user_id = serializers.UUIDField(source="user.pk")
    email = serializers.EmailField(source="user.email")
    role = serializers.CharField()
    created = serializers.DateTimeField()


class ShareEventOutputSerializer(serializers.Serializer):
    timestamp = serializers.DateTimeField()
    action = serializers.CharField()
    role = serializers.CharField()
    actor_email = serializers.EmailField()
    user_email = serializers.EmailField()
    user_id = serializers.UUIDField(allow_null=True)


SHARE_NOTE = (
    "\n\nOnly the owner lists and manages shares. A reader sees the workspace, its resources, their "
    "contents and its results, read-only; an editor may also add and remove resources and run operations. "
    "Every change is appended to `/shares/events/`." + ACCESS_NOTE
)


class WorkspaceShareListApi(APIView):
    class InputSerializer(serializers.Serializer):
        email = serializers.CharField()
        role = serializers.ChoiceField(choices=ShareRole.choices)

    @extend_schema(responses={200: ShareOutputSerializer(many=True)}, description="The workspace's shares." + SHARE_NOTE)
    def get(self, request: Request, pk: uuid.UUID) -> Response:
        workspace, _ = workspace_for(request.user, pk, Need.OWN)
        return Response(ShareOutputSerializer(selectors.share_list(workspace=workspace), many=True).data)

    @extend_schema(
        request=InputSerializer,
        responses={201: ShareOutputSerializer},
        description='Share with a user by e-mail as `reader` or `editor`. 400 `{"email": ...}` for an unknown '
        "e-mail, the owner's own e-mail, or a user who already has a share (change it with PATCH)." + SHARE_NOTE,
    )
    def post(self, request: Request, pk: uuid.UUID) -> Response:
        workspace, _ = workspace_for(request.user, pk, Need.OWN)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        share = services.workspace_share(workspace=workspace, actor=request.user, **data.validated_data)
        return Response(ShareOutputSerializer(share).data, status=status.HTTP_201_CREATED)


class WorkspaceShareDetailApi(APIView):
    class InputSerializer(serializers.Serializer):
        role = serializers.ChoiceField(choices=ShareRole.choices)

    def _share(self, request: Request, pk: uuid.UUID, user_id: uuid.UUID) -> WorkspaceShare:
        workspace, _ = workspace_for(request.user, pk, Need.OWN)
        share = selectors.share_list(workspace=workspace).filter(user_id=user_id).first()
        if share is None:
            raise ApplicationError("This workspace is not shared with this user.", status_code=404)
        return share

    @extend_schema(responses={200: ShareOutputSerializer}, description="One share." + SHARE_NOTE)
    def get(self, request: Request, pk: uuid.UUID, user_id: uuid.UUID) -> Response:
        return Response(ShareOutputSerializer(self._share(request, pk, user_id)).data)

    @extend_schema(request=InputSerializer, responses={200: ShareOutputSerializer},
                   description="Change the role of a share." + SHARE_NOTE)
    def patch(self, request: Request, pk: uuid.UUID, user_id: uuid.UUID) -> Response:
        share = self._share(request, pk, user_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        share = services.workspace_share_change(share=share, actor=request.user, role=data.validated_data["role"])
        return Response(ShareOutputSerializer(share).data)

    put = patch

    @extend_schema(responses={204: None}, description="Revoke a share." + SHARE_NOTE)
    def delete(self, request: Request, pk: uuid.UUID, user_id: uuid.UUID) -> Response:
        services.workspace_share_revoke(share=self._share(request, pk, user_id), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WorkspaceShareEventListApi(APIView):
    @extend_schema(
        responses={200: ShareEventOutputSerializer(many=True)},
        description="The audit trail of share changes, oldest first: who (`actor_email`) granted, changed or "
        "revoked (`action`) which role for whom (`user_email`), and when." + SHARE_NOTE,
    )
    def get(self, request: Request, pk: uuid.UUID) -> Response:
        workspace, _ = workspace_for(request.user, pk, Need.OWN)
        return Response(ShareEventOutputSerializer(selectors.share_event_list(workspace=workspace), many=True).data)

