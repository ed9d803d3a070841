"""Registration, activation, password flows and the user endpoints (contract §2.1)."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from django.core import mail

from mev.users.models import User
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "Fresh-pass-phrase-99"


def _link_parts(message, kind: str) -> tuple[str, str]:
    match = re.search(rf"/{kind}/([^/\s]+)/([^/\s]+)", message.body)
    assert match, message.body
    return match.group(1), match.group(2)


def _register(api_client, django_capture_on_commit_callbacks, email="new@example.org"):
    with django_capture_on_commit_callbacks(execute=True):
        return api_client.post(
            "/api/users/register/",
            {"email": email, "password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
            format="json",
        )


def test_register_creates_an_inactive_user_and_mails_a_link(api_client, django_capture_on_commit_callbacks):
    response = _register(api_client, django_capture_on_commit_callbacks)
    assert response.status_code == 201
    assert response.json()["user"]["email"] == "new@example.org"
    assert response.json()["user"]["url"].endswith(f"/api/users/{User.objects.get().pk}/")
    assert User.objects.get().is_active is False
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["new@example.org"]
    assert "http://localhost:4200/activate/" in message.body
    assert message.alternatives and message.alternatives[0][1] == "text/html"


def test_no_mail_is_sent_when_registration_fails(api_client, django_capture_on_commit_callbacks):
    UserFactory(email="taken@example.org")
    response = _register(api_client, django_capture_on_commit_callbacks, email="Taken@example.org")
    assert response.status_code == 400
    assert response.json() == {"email": "This user already exists."}
    assert mail.outbox == []


def test_register_checks_the_password_policy_and_confirmation(api_client):
    weak = api_client.post("/api/users/register/",
                           {"email": "a@example.org", "password": "12345678", "confirm_password": "12345678"},
                           format="json")
    assert weak.status_code == 400
    assert isinstance(weak.json()["password"], list) and weak.json()["password"]
    differ = api_client.post("/api/users/register/",
                             {"email": "a@example.org", "password": NEW_PASSWORD, "confirm_password": "x"},
                             format="json")
    assert differ.status_code == 400
    assert differ.json()["confirm_password"].startswith("The passwords do not match.")
    assert not User.objects.exists()


def test_activation_link_activates_then_login_works(api_client, django_capture_on_commit_callbacks):
    _register(api_client, django_capture_on_commit_callbacks)
    uid, token = _link_parts(mail.outbox[0], "activate")
    assert api_client.post("/api/users/activate/", {"uid": uid, "token": token}, format="json").status_code == 204
    assert User.objects.get().is_active
    login = api_client.post("/api/token/", {"email": "new@example.org", "password": NEW_PASSWORD}, format="json")
    assert login.status_code == 200


def test_activation_errors_are_keyed_uid_and_token(api_client, user):
    from mev.users.tokens import encode_uid

    bad_uid = api_client.post("/api/users/activate/", {"uid": "bm9wZQ", "token": "x"}, format="json")
    assert bad_uid.status_code == 400 and "uid" in bad_uid.json()
    bad_token = api_client.post("/api/users/activate/", {"uid": encode_uid(user), "token": "1-x"}, format="json")
    assert bad_token.status_code == 400 and bad_token.json() == {"token": "Invalid token"}


def test_resend_activation_answers_204_whether_or_not_the_account_exists(
    api_client, django_capture_on_commit_callbacks
):
    inactive = UserFactory(is_active=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert api_client.post("/api/users/resend-activation/", {"email": inactive.email},
                               format="json").status_code == 204
        assert api_client.post("/api/users/resend-activation/", {"email": "nobody@example.org"},
                               format="json").status_code == 204
    assert [m.to for m in mail.outbox] == [[inactive.email]]
    assert api_client.post("/api/users/resend-activation/", {"email": "not-an-email"},
                           format="json").json().keys() == {"email"}


def test_password_reset_round_trip_and_the_activate_check_does_not_use_the_link_up(
    api_client, user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert api_client.post("/api/users/reset-password/", {"email": user.email}, format="json").status_code == 204
        # Unknown addresses get the same answer and no e-mail.
        assert api_client.post("/api/users/reset-password/", {"email": "x@example.org"},
                               format="json").status_code == 204
    assert len(mail.outbox) == 1
    uid, token = _link_parts(mail.outbox[0], "reset-password")
    # The client's reset page "verifies" the link by calling activate with it (contract §2.1).
    assert api_client.post("/api/users/activate/", {"uid": uid, "token": token}, format="json").status_code == 204
    confirm = api_client.post(
        "/api/users/reset-password/confirm/",
        {"uid": uid, "token": token, "password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
        format="json",
    )
    assert confirm.status_code == 204
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    # A used link is dead: the password it was minted for has changed.
    again = api_client.post(
        "/api/users/reset-password/confirm/",
        {"uid": uid, "token": token, "password": "Other-pass-phrase-1", "confirm_password": "Other-pass-phrase-1"},
        format="json",
    )
    assert again.status_code == 400 and "token" in again.json()


def test_change_password_checks_the_current_one(auth_client, user):
    response = auth_client.post(
        "/api/users/change-password/",
        {"current_password": "wrong", "password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {"current_password": "The current password was not valid."}
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)


def test_users_list_is_the_caller_only(auth_client, user):
    UserFactory()
    response = auth_client.get("/api/users/")
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, list) and len(body) == 1
    assert body[0]["email"] == user.email and body[0]["url"].endswith(f"/api/users/{user.pk}/")


def test_user_detail_is_403_for_another_user_and_404_for_nobody(auth_client):
    other = UserFactory()
    assert auth_client.get(f"/api/users/{other.pk}/").status_code == 403
    assert auth_client.delete(f"/api/users/{other.pk}/").status_code == 403
    assert other.__class__.objects.filter(pk=other.pk).exists()
    assert auth_client.get("/api/users/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_user_detail_hashes_a_new_password_and_requires_the_current_one(auth_client, user):
    refused = auth_client.patch(f"/api/users/{user.pk}/", {"password": NEW_PASSWORD}, format="json")
    assert refused.status_code == 400
    response = auth_client.patch(f"/api/users/{user.pk}/",
                                 {"password": NEW_PASSWORD, "current_password": DEFAULT_PASSWORD}, format="json")
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.password != NEW_PASSWORD and user.check_password(NEW_PASSWORD)


def test_user_detail_slashless_form_and_delete(make_client):
    user = UserFactory()
    client = make_client(user)
    assert client.get(f"/api/users/{user.pk}").status_code == 200
    assert client.delete(f"/api/users/{user.pk}/").status_code == 204
    assert not User.objects.filter(pk=user.pk).exists()


def test_login_register_and_reset_share_a_rate_limit(api_client, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"auth": "3/min", "feedback": "10/hour"}}
    codes = [api_client.post("/api/token/", {"email": "a@example.org", "password": "x"}, format="json").status_code
             for _ in range(3)]
    assert codes == [400, 400, 400]
    assert api_client.post("/api/users/reset-password/", {"email": "a@example.org"},
                           format="json").status_code == 429


# --- changing the e-mail address (a confirm-by-mail round trip) ------------------------------------


def _confirm_link(message) -> str:
    match = re.search(r"(http://testserver/api/users/confirm-email/\?token=\S+)", message.body)
    assert match, message.body
    return match.group(1).removeprefix("http://testserver")


def _ask_email_change(client, user, django_capture_on_commit_callbacks, new="moved@example.org", **extra):
    with django_capture_on_commit_callbacks(execute=True):
        return client.patch(f"/api/users/{user.pk}/",
                            {"email": new, "current_password": DEFAULT_PASSWORD, **extra}, format="json")


def test_email_change_is_applied_only_through_the_link_mailed_to_the_new_address(
    auth_client, api_client, user, django_capture_on_commit_callbacks
):
    old = user.email
    response = _ask_email_change(auth_client, user, django_capture_on_commit_callbacks, new="Moved@Example.org")
    assert response.status_code == 202, response.content
    assert response.json()["email"] == old and response.json()["pending_email"] == "moved@example.org"
    user.refresh_from_db()
    assert user.email == old  # nothing changes before the link is followed
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["moved@example.org"]
    link = _confirm_link(mail.outbox[0])

    page = api_client.get(link)  # a mail scanner opening the link changes nothing
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    assert b'name="token"' in page.content
    user.refresh_from_db()
    assert user.email == old

    token = link.split("token=", 1)[1]
    with django_capture_on_commit_callbacks(execute=True):
        confirmed = api_client.post("/api/users/confirm-email/", {"token": token}, format="json")
    assert confirmed.status_code == 200, confirmed.content
    assert confirmed.json()["email"] == "moved@example.org"
    user.refresh_from_db()
    assert user.email == "moved@example.org"
    assert mail.outbox[-1].to == [old] and "moved@example.org" in mail.outbox[-1].body  # the old address is told
    login = api_client.post("/api/token/", {"email": "moved@example.org", "password": DEFAULT_PASSWORD},
                            format="json")
    assert login.status_code == 200

    again = api_client.post("/api/users/confirm-email/", {"token": token}, format="json")
    assert again.status_code == 400 and "already been used" in again.json()["token"]


def test_email_change_from_the_page_form(api_client, auth_client, user, django_capture_on_commit_callbacks):
    _ask_email_change(auth_client, user, django_capture_on_commit_callbacks)
    link = _confirm_link(mail.outbox[0])
    token = link.split("token=", 1)[1]
    form = {"data": urlencode({"token": token}), "content_type": "application/x-www-form-urlencoded"}
    done = api_client.post(link, **form)  # what the page's button sends
    assert done.status_code == 200 and b"moved@example.org" in done.content
    failed = api_client.post(link, **form)
    assert failed.status_code == 400 and b"already been used" in failed.content
    assert failed["Content-Type"].startswith("text/html")


def test_email_change_needs_the_current_password_and_a_free_address(
    auth_client, user, django_capture_on_commit_callbacks
):
    wrong = _ask_email_change(auth_client, user, django_capture_on_commit_callbacks, current_password="nope")
    assert wrong.status_code == 400 and "current_password" in wrong.json()
    taken = UserFactory(email="taken@example.org")
    clash = _ask_email_change(auth_client, user, django_capture_on_commit_callbacks, new=taken.email.upper())
    assert clash.status_code == 400 and clash.json() == {"email": "This user already exists."}
    same = auth_client.patch(f"/api/users/{user.pk}/", {"email": user.email}, format="json")
    assert same.status_code == 200 and "pending_email" not in same.json()
    assert mail.outbox == []


def test_email_change_links_die_with_a_password_change_a_bad_signature_or_age(
    api_client, auth_client, user, django_capture_on_commit_callbacks, settings
):
    _ask_email_change(auth_client, user, django_capture_on_commit_callbacks)
    token = _confirm_link(mail.outbox[0]).split("token=", 1)[1]
    tampered = api_client.post("/api/users/confirm-email/", {"token": token[:-2] + "xx"}, format="json")
    assert tampered.status_code == 400 and "not valid" in tampered.json()["token"]
    settings.PASSWORD_RESET_TIMEOUT = -1
    expired = api_client.post("/api/users/confirm-email/", {"token": token}, format="json")
    assert expired.status_code == 400 and "expired" in expired.json()["token"]
    settings.PASSWORD_RESET_TIMEOUT = 3600
    user.set_password(NEW_PASSWORD)
    user.save()
    stale = api_client.post("/api/users/confirm-email/", {"token": token}, format="json")
    assert stale.status_code == 400 and "not valid" in stale.json()["token"]
    user.refresh_from_db()
    assert user.email != "moved@example.org"


def test_email_change_to_an_address_taken_meanwhile_is_refused(
    api_client, auth_client, user, django_capture_on_commit_callbacks
):
    _ask_email_change(auth_client, user, django_capture_on_commit_callbacks)
    token = _confirm_link(mail.outbox[0]).split("token=", 1)[1]
    UserFactory(email="moved@example.org")
    refused = api_client.post("/api/users/confirm-email/", {"token": token}, format="json")
    assert refused.status_code == 400 and refused.json() == {"email": "This user already exists."}
