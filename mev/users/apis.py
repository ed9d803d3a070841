"""Thin HTTP views for accounts, tokens, messages and feedback (contract §2.1, §2.11)."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.http import HttpResponse, HttpResponseBase
from django.template.loader import render_to_string
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from mev.core.authentication import TOKEN_VERSION_CLAIM
from mev.core.exceptions import ApplicationError
from mev.core.throttling import AuthThrottle, FeedbackThrottle
from mev.users import selectors, services
from mev.users.models import User
from mev.users.tokens import token_pair_for

NO_ACTIVE_ACCOUNT = "No active account found with the given credentials"
BAD_REFRESH = "Token is invalid or expired"


class UserOutputSerializer(serializers.Serializer):
    url = serializers.SerializerMethodField()
    email = serializers.EmailField()

    def get_url(self, user: User) -> str:
        return self.context["request"].build_absolute_uri(f"/api/users/{user.pk}/")


class PublicApi(APIView):
    """No authentication at all: the token endpoints must ignore any Authorization header (§1.2)."""

    authentication_classes: list[Any] = []
    permission_classes = [permissions.AllowAny]


class ApiRootApi(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: inline_serializer("ApiRoot", {})})
    def get(self, request: Request) -> Response:
        return Response({})


class TokenObtainApi(PublicApi):
    throttle_classes = [AuthThrottle]

    class InputSerializer(serializers.Serializer):
        email = serializers.CharField()
        password = serializers.CharField(trim_whitespace=False)

    @extend_schema(
        request=InputSerializer,
        responses={200: inline_serializer("TokenPair", {"access": serializers.CharField(),
                                                         "refresh": serializers.CharField()})},
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        email = data.validated_data["email"].strip().lower()
        user = User.objects.filter(email__iexact=email).first()
        if user is not None and not user.has_usable_password():
            raise ApplicationError(body={"non_field_errors": services.NO_PASSWORD_LOGIN})
        user = authenticate(request, email=email, password=data.validated_data["password"])
        if user is None or not user.is_active:
            # 400, not 401: a 401 here would set off the client's refresh logic (§1.2).
            raise ApplicationError(body={"non_field_errors": NO_ACTIVE_ACCOUNT})
        return Response(token_pair_for(user))


class TokenRefreshApi(PublicApi):
    class InputSerializer(serializers.Serializer):
        refresh = serializers.CharField()

    @extend_schema(request=InputSerializer,
                   responses={200: inline_serializer("AccessToken", {"access": serializers.CharField()})})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            refresh = RefreshToken(data.validated_data["refresh"])
        except TokenError as exc:
            raise ApplicationError(body={"refresh": BAD_REFRESH}) from exc
        user = User.objects.filter(pk=refresh.payload.get("user_id")).first()
        if user is None or not user.is_active or refresh.payload.get(TOKEN_VERSION_CLAIM, 0) != user.token_version:
            raise ApplicationError(body={"refresh": BAD_REFRESH})
        return Response({"access": str(refresh.access_token)})


class UserListApi(APIView):
    @extend_schema(responses={200: UserOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response([UserOutputSerializer(request.user, context={"request": request}).data])


class UserDetailApi(APIView):
    class InputSerializer(serializers.Serializer):
        email = serializers.EmailField(required=False)
        password = serializers.CharField(required=False, trim_whitespace=False)
        current_password = serializers.CharField(required=False, trim_whitespace=False)

    def _render(self, request: Request, user: User) -> Response:
        return Response(UserOutputSerializer(user, context={"request": request}).data)

    @extend_schema(responses={200: UserOutputSerializer})
    def get(self, request: Request, user_id: uuid.UUID) -> Response:
        return self._render(request, selectors.user_get_for(requester=request.user, user_id=user_id))

    @extend_schema(request=InputSerializer, responses={
        200: UserOutputSerializer,
        202: inline_serializer("UserEmailChangePending", {
            "url": serializers.URLField(), "email": serializers.EmailField(),
            "pending_email": serializers.EmailField(help_text="Mailed a confirmation link; unchanged until followed"),
        }),
    })
    def patch(self, request: Request, user_id: uuid.UUID) -> Response:
        """A new `email` needs `current_password` and is applied only when the link mailed to it is followed."""
        user = selectors.user_get_for(requester=request.user, user_id=user_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user, pending = services.user_update(
            user=user, confirm_url=request.build_absolute_uri("/api/users/confirm-email/"), **data.validated_data)
        response = self._render(request, user)
        if pending:
            response.data = {**response.data, "pending_email": pending}
            response.status_code = status.HTTP_202_ACCEPTED
        return response

    put = patch

    @extend_schema(responses={204: None})
    def delete(self, request: Request, user_id: uuid.UUID) -> Response:
        services.user_delete(user=selectors.user_get_for(requester=request.user, user_id=user_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class RegisterApi(APIView):
    permission_classes = [permissions.AllowAny]
    throttle_classes = [AuthThrottle]

    class InputSerializer(serializers.Serializer):
        email = serializers.EmailField()
        password = serializers.CharField(trim_whitespace=False)
        confirm_password = serializers.CharField(trim_whitespace=False)

    @extend_schema(request=InputSerializer,
                   responses={201: inline_serializer("Registered", {"user": UserOutputSerializer()})})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_register(**data.validated_data)
        body = {"user": UserOutputSerializer(user, context={"request": request}).data}
        return Response(body, status=status.HTTP_201_CREATED)


class ActivateApi(APIView):
    permission_classes = [permissions.AllowAny]
    throttle_classes = [AuthThrottle]

    class InputSerializer(serializers.Serializer):
        uid = serializers.CharField()
        token = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={204: None})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.user_activate(**data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ConfirmEmailChangeApi(APIView):
    """The link mailed to a new address. GET shows a page with a button (mail scanners that open
    links change nothing); POST, from that page or as JSON `{token}`, applies the change."""

    permission_classes = [permissions.AllowAny]
    authentication_classes: list[Any] = []
    throttle_classes = [AuthThrottle]
    parser_classes = [JSONParser, FormParser]

    class InputSerializer(serializers.Serializer):
        token = serializers.CharField()

    @extend_schema(responses={(200, "text/html"): OpenApiTypes.STR})
    def get(self, request: Request) -> HttpResponse:
        return _email_page(request, token=request.query_params.get("token", ""))

    @extend_schema(request=InputSerializer, responses={200: UserOutputSerializer})
    def post(self, request: Request) -> HttpResponseBase:
        from_page = request.content_type.startswith("application/x-www-form-urlencoded")
        data = self.InputSerializer(data=request.data)
        try:
            data.is_valid(raise_exception=True)
            user = services.user_confirm_email_change(token=data.validated_data["token"])
        except (ApplicationError, serializers.ValidationError) as exc:
            if not from_page:
                raise
            return _email_page(request, error=exc, status_code=400)
        if from_page:
            return _email_page(request, done=user.email)
        return Response(UserOutputSerializer(user, context={"request": request}).data)


def _email_page(request: Request, *, token: str = "", done: str = "", error: Exception | None = None,
                status_code: int = 200) -> HttpResponse:
    message = ""
    if error is not None:
        detail = getattr(error, "body", None) or getattr(error, "detail", {}) or {}
        message = " ".join(str(v[0] if isinstance(v, list) else v) for v in detail.values()) or str(error)
    context = {"token": token, "done": done, "error": message, "frontend_url": settings.FRONTEND_URL}
    return HttpResponse(render_to_string("users/confirm_email.html", context, request=request._request),
                        status=status_code, content_type="text/html; charset=utf-8")


class EmailOnlyInput(serializers.Serializer):
    email = serializers.EmailField()


class ResendActivationApi(APIView):
    permission_classes = [permissions.AllowAny]
    throttle_classes = [AuthThrottle]

    @extend_schema(request=EmailOnlyInput, responses={204: None})
    def post(self, request: Request) -> Response:
        data = EmailOnlyInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.user_resend_activation(email=data.validated_data["email"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordResetApi(APIView):
    permission_classes = [permissions.AllowAny]
    throttle_classes = [AuthThrottle]

    @extend_schema(request=EmailOnlyInput, responses={204: None})
    def post(self, request: Request) -> Response:
        data = EmailOnlyInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.user_password_reset_request(email=data.validated_data["email"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordResetConfirmApi(APIView):
    permission_classes = [permissions.AllowAny]
    throttle_classes = [AuthThrottle]

    class InputSerializer(serializers.Serializer):
        uid = serializers.CharField()
        token = serializers.CharField()
        password = serializers.CharField(trim_whitespace=False)
        confirm_password = serializers.CharField(trim_whitespace=False)

    @extend_schema(request=InputSerializer, responses={204: None})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.user_password_reset_confirm(**data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChangePasswordApi(APIView):
    class InputSerializer(serializers.Serializer):
        current_password = serializers.CharField(trim_whitespace=False)
        password = serializers.CharField(trim_whitespace=False)
        confirm_password = serializers.CharField(trim_whitespace=False)

    @extend_schema(request=InputSerializer, responses={204: None})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.user_change_password(user=request.user, **data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MessageOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    message = serializers.CharField()
    creation_datetime = serializers.DateTimeField()


class MessageListApi(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: MessageOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(MessageOutputSerializer(selectors.message_list(), many=True).data)


class LatestMessageApi(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: MessageOutputSerializer})
    def get(self, request: Request) -> Response:
        latest = selectors.message_latest()
        return Response(MessageOutputSerializer(latest).data if latest else {})


class MessageAddApi(APIView):
    permission_classes = [permissions.IsAdminUser]

    class InputSerializer(serializers.Serializer):
        message = serializers.CharField(max_length=1000, allow_blank=True)

    @extend_schema(request=InputSerializer, responses={201: MessageOutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        message = services.message_create(message=data.validated_data["message"])
        return Response(MessageOutputSerializer(message).data, status=status.HTTP_201_CREATED)


class FeedbackOutputSerializer(serializers.Serializer):
    message = serializers.CharField()
    user_email = serializers.EmailField(source="user.email")
    timestamp = serializers.DateTimeField()


class FeedbackApi(APIView):
    class InputSerializer(serializers.Serializer):
        # Errors come back as {"message": ["..."]}: the client joins an array (§2.11).
        message = serializers.CharField(max_length=10000)

    def get_throttles(self) -> list[Any]:
        return [FeedbackThrottle()] if self.request.method == "POST" else []

    @extend_schema(responses={200: FeedbackOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        if not request.user.is_staff:
            raise ApplicationError("Only staff can read feedback.", status_code=403)
        return Response(FeedbackOutputSerializer(selectors.feedback_list(), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: FeedbackOutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        feedback = services.feedback_create(user=request.user, message=data.validated_data["message"])
        return Response(FeedbackOutputSerializer(feedback).data, status=status.HTTP_201_CREATED)
