"""Routes of the users app, relative to /api/."""

from mev.core.routing import route, routes
from mev.users import apis

urlpatterns = routes(
    route("token/", apis.TokenObtainApi.as_view(), "token-obtain"),
    route("token/refresh/", apis.TokenRefreshApi.as_view(), "token-refresh"),
    route("users/", apis.UserListApi.as_view(), "user-list"),
    route("users/register/", apis.RegisterApi.as_view(), "user-register"),
    route("users/activate/", apis.ActivateApi.as_view(), "user-activate"),
    route("users/resend-activation/", apis.ResendActivationApi.as_view(), "user-resend-activation"),
    route("users/reset-password/", apis.PasswordResetApi.as_view(), "user-reset-password"),
    route("users/reset-password/confirm/", apis.PasswordResetConfirmApi.as_view(), "user-reset-password-confirm"),
    route("users/confirm-email/", apis.ConfirmEmailChangeApi.as_view(), "user-confirm-email"),
    route("users/change-password/", apis.ChangePasswordApi.as_view(), "user-change-password"),
    route("users/<uuid:user_id>/", apis.UserDetailApi.as_view(), "user-detail"),
    route("messages/", apis.MessageListApi.as_view(), "message-list"),
    route("latest-message/", apis.LatestMessageApi.as_view(), "message-latest"),
    route("message-add/", apis.MessageAddApi.as_view(), "message-add"),
    route("feedback/", apis.FeedbackApi.as_view(), "feedback"),
)
