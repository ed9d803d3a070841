"""Fixtures shared by every test: isolated storage, clean caches, API clients."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from mev.celery import app as celery_app
from mev.users.models import User
from mev.users.tokens import token_pair_for
from tests.factories import UserFactory

# Unit tests run tasks in-process; tests/integration starts real workers against real brokers.
celery_app.conf.task_always_eager = True
celery_app.conf.task_eager_propagates = True


@pytest.fixture(autouse=True)
def _isolated_files(settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "upload-tmp")
    settings.MEV_UPLOAD_PARTIAL_DIR = str(tmp_path / "upload-tmp" / "tus")
    Path(settings.MEV_UPLOAD_PARTIAL_DIR).mkdir(parents=True)
    # Hashing at full strength makes every factory user cost ~0.3 s; tests check behaviour, not cost.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _clean_cache() -> None:
    # Throttle counters live in the cache: each test starts with a fresh budget.
    cache.clear()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db) -> User:
    return UserFactory()


@pytest.fixture
def make_client() -> Callable[[User], APIClient]:
    def _make(user: User) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(user)['access']}")
        return client

    return _make


@pytest.fixture
def auth_client(user: User, make_client: Callable[[User], APIClient]) -> APIClient:
    return make_client(user)
