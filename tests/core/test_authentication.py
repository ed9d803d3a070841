"""Bearer authentication: a token verified once is only checked for expiry, revocation stays immediate."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from mev.core import authentication
from mev.core.authentication import TOKEN_VERSION_CLAIM
from mev.users.models import User
from mev.users.tokens import token_pair_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ME = "/api/users/"


def _client(api_client, token):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api_client


def test_a_verified_token_that_expires_is_refused_like_any_expired_token(api_client, user):
    short = AccessToken.for_user(user)
    short[TOKEN_VERSION_CLAIM] = user.token_version
    short.set_exp(lifetime=timedelta(seconds=2))  # "exp" is whole seconds: valid for 1-2 s
    client = _client(api_client, short)
    assert client.get(ME).status_code == 200  # verified, and remembered
    time.sleep(max(0.0, short["exp"] - time.time()) + 0.05)
    expired = client.get(ME)
    never_seen = AccessToken.for_user(user)
    never_seen.set_exp(lifetime=-timedelta(seconds=1))
    assert expired.status_code == 401
    assert expired.json() == _client(api_client, never_seen).get(ME).json()
    assert expired.json()["code"] == "token_not_valid"


def test_revocation_and_deactivation_apply_to_a_verified_token(api_client, user):
    client = _client(api_client, token_pair_for(user)["access"])
    assert client.get(ME).status_code == 200
    User.objects.filter(pk=user.pk).update(token_version=user.token_version + 1)
    assert client.get(ME).status_code == 401
    User.objects.filter(pk=user.pk).update(token_version=user.token_version, is_active=False)
    assert client.get(ME).status_code == 401
    User.objects.filter(pk=user.pk).update(is_active=True)
    assert client.get(ME).status_code == 200


def test_a_token_that_differs_by_one_character_is_verified_anew(api_client, user):
    access = token_pair_for(user)["access"]
    assert _client(api_client, access).get(ME).status_code == 200
    tampered = access[:-2] + ("A" if access[-2] != "A" else "B") + access[-1]
    assert _client(api_client, tampered).get(ME).status_code == 401


def test_the_remembered_tokens_are_bounded(api_client, monkeypatch):
    monkeypatch.setattr(authentication, "VERIFIED_TOKENS_MAX", 2)
    monkeypatch.setattr(authentication, "_verified_tokens", {})
    for _ in range(5):
        assert _client(api_client, token_pair_for(UserFactory())["access"]).get(ME).status_code == 200
        assert len(authentication._verified_tokens) <= 2
