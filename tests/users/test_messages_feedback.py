"""Site messages and feedback (contract §2.11)."""

from __future__ import annotations

import pytest
from django.core import mail

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_latest_message_is_an_empty_object_when_there_is_none(api_client):
    response = api_client.get("/api/latest-message/")
    assert response.status_code == 200 and response.json() == {}


def test_staff_add_messages_and_everyone_reads_them(api_client, make_client):
    staff = make_client(UserFactory(is_staff=True))
    assert staff.post("/api/message-add/", {"message": "first"}, format="json").status_code == 201
    assert staff.post("/api/message-add/", {"message": "Maintenance at 5pm"}, format="json").status_code == 201
    latest = api_client.get("/api/latest-message")
    assert latest.status_code == 200
    assert latest.json()["message"] == "Maintenance at 5pm"
    assert set(latest.json()) == {"id", "message", "creation_datetime"}
    assert latest.json()["creation_datetime"].endswith("Z")
    assert [m["message"] for m in api_client.get("/api/messages/").json()] == ["Maintenance at 5pm", "first"]


def test_non_staff_cannot_add_messages_and_long_ones_are_refused(auth_client, make_client):
    assert auth_client.post("/api/message-add/", {"message": "x"}, format="json").status_code == 403
    staff = make_client(UserFactory(is_staff=True))
    assert staff.post("/api/message-add/", {"message": "x" * 1001}, format="json").status_code == 400


def test_feedback_is_stored_and_mailed_to_the_admins(auth_client, user, settings,
                                                     django_capture_on_commit_callbacks):
    settings.ADMINS = [("Ops", "ops@example.org")]
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client.post("/api/feedback/", {"message": "Great tool"}, format="json")
    assert response.status_code == 201
    assert response.json()["message"] == "Great tool"
    assert response.json()["user_email"] == user.email
    assert mail.outbox and mail.outbox[0].to == ["ops@example.org"]
    assert "Great tool" in mail.outbox[0].body


@pytest.mark.parametrize("payload", [{}, {"message": ""}, {"message": "x" * 10001}])
def test_feedback_errors_are_an_array_under_message(auth_client, payload):
    response = auth_client.post("/api/feedback/", payload, format="json")
    assert response.status_code == 400
    assert isinstance(response.json()["message"], list)


def test_feedback_listing_is_staff_only(auth_client, make_client):
    auth_client.post("/api/feedback/", {"message": "hello"}, format="json")
    assert auth_client.get("/api/feedback/").status_code == 403
    listing = make_client(UserFactory(is_staff=True)).get("/api/feedback/")
    assert listing.status_code == 200
    assert [f["message"] for f in listing.json()] == ["hello"]
