"""Token endpoints and the 401 rules the web client's refresh logic depends on (contract §1.2)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from mev.users.tokens import token_pair_for
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def test_login_returns_a_token_pair_whose_user_id_is_the_uuid(api_client, user):
    response = api_client.post("/api/token/", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json")
    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}
    assert AccessToken(response.json()["access"])["user_id"] == str(user.pk)


def test_login_is_case_insensitive_on_the_email(api_client, user):
    response = api_client.post("/api/token/", {"email": user.email.upper(), "password": DEFAULT_PASSWORD},
                               format="json")
    assert response.status_code == 200


@pytest.mark.parametrize("password", ["wrong-password", ""])
def test_wrong_credentials_are_400_with_non_field_errors(api_client, user, password):
    response = api_client.post("/api/token/", {"email": user.email, "password": password}, format="json")
    assert response.status_code == 400
    body = response.json()
    if password:
        assert body == {"non_field_errors": "No active account found with the given credentials"}
    else:
        assert "password" in body


def test_inactive_account_cannot_log_in(api_client):
    user = UserFactory(is_active=False)
    response = api_client.post("/api/token/", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json")
    assert response.status_code == 400
    assert "non_field_errors" in response.json()


def test_login_without_fields_names_each_missing_field(api_client):
    response = api_client.post("/api/token/", {}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"email", "password"}


def test_account_without_password_gets_an_explanation(api_client):
    user = UserFactory()
    user.set_unusable_password()
    user.save()
    response = api_client.post("/api/token/", {"email": user.email, "password": "anything"}, format="json")
    assert response.status_code == 400
    assert "identity provider" in response.json()["non_field_errors"]


def test_token_endpoints_ignore_a_garbage_authorization_header(api_client, user):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    login = api_client.post("/api/token/", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json")
    assert login.status_code == 200
    refresh = api_client.post("/api/token/refresh/", {"refresh": login.json()["refresh"]}, format="json")
    assert refresh.status_code == 200


def test_refresh_with_an_expired_bearer_header_still_works(api_client, user, settings):
    expired = AccessToken.for_user(user)
    expired.set_exp(lifetime=-timedelta(minutes=5))
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {expired}")
    # The expired token really is refused elsewhere...
    assert api_client.get("/api/users/").status_code == 401
    # ...but the refresh call carries it and must not be authenticated at all.
    response = api_client.post("/api/token/refresh/", {"refresh": token_pair_for(user)["refresh"]}, format="json")
    assert response.status_code == 200
    assert set(response.json()) == {"access"}
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    assert api_client.get("/api/users/").status_code == 200


def test_the_same_refresh_token_works_again_and_again(api_client, user):
    refresh = token_pair_for(user)["refresh"]
    for _ in range(3):
        assert api_client.post("/api/token/refresh/", {"refresh": refresh}, format="json").status_code == 200


@pytest.mark.parametrize("payload", [{"refresh": "garbage"}, {"refresh": ""}, {"refresh": None}, {}])
def test_bad_refresh_tokens_are_400_keyed_refresh(api_client, payload):
    response = api_client.post("/api/token/refresh/", payload, format="json")
    assert response.status_code == 400
    assert "refresh" in response.json()


def test_invalid_refresh_message_is_the_one_the_client_expects(api_client):
    response = api_client.post("/api/token/refresh/", {"refresh": "garbage"}, format="json")
    assert response.json() == {"refresh": "Token is invalid or expired"}


def test_an_access_token_is_not_accepted_as_a_refresh_token(api_client, user):
    response = api_client.post("/api/token/refresh/", {"refresh": token_pair_for(user)["access"]}, format="json")
    assert response.status_code == 400


def test_password_change_revokes_earlier_tokens(api_client, user, make_client):
    pair = token_pair_for(user)
    client = make_client(user)
    response = client.post(
        "/api/users/change-password/",
        {"current_password": DEFAULT_PASSWORD, "password": "another-Pass-phrase-7", "confirm_password":
         "another-Pass-phrase-7"},
        format="json",
    )
    assert response.status_code == 204
    assert client.get("/api/users/").status_code == 401
    assert api_client.post("/api/token/refresh/", {"refresh": pair["refresh"]}, format="json").status_code == 400


class TestUnauthenticatedIs401:
    """A missing, malformed or expired token is 401 with WWW-Authenticate, never 403."""

    def _assert_401(self, response):
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert isinstance(response.json(), dict)

    def test_missing(self, api_client):
        self._assert_401(api_client.get("/api/users/"))

    @pytest.mark.parametrize("header", ["Bearer", "Bearer a.b.c", "Bearer not-a-jwt", "Bearer x y"])
    def test_malformed(self, api_client, header):
        api_client.credentials(HTTP_AUTHORIZATION=header)
        self._assert_401(api_client.get("/api/users/"))

    def test_expired(self, api_client, user):
        token = AccessToken.for_user(user)
        token.set_exp(lifetime=-timedelta(seconds=1))
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        self._assert_401(api_client.get("/api/users/"))

    def test_token_of_a_deleted_user(self, api_client, user):
        access = token_pair_for(user)["access"]
        user.delete()
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
        self._assert_401(api_client.get("/api/users/"))

    def test_token_signed_with_another_key(self, api_client, user, settings):
        import jwt

        forged = jwt.encode({"user_id": str(user.pk), "token_type": "access", "exp": 4102444800, "jti": "x"},
                            "not-our-key-but-long-enough-for-hs256-0123456789", algorithm="HS256")
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")
        self._assert_401(api_client.get("/api/users/"))

    def test_staff_only_endpoint_without_token_is_401(self, api_client):
        self._assert_401(api_client.get("/api/feedback/"))
