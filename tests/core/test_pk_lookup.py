"""PkLookup: the ORM's primary-key read, compiled once."""

from __future__ import annotations

import uuid

import pytest
from django.db.models.sql.compiler import SQLCompiler

from mev.core.pk_lookup import PkLookup
from mev.resources.models import Resource
from mev.users.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _fields(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_the_instance_is_the_one_the_orm_gives(user):
    lookup = PkLookup(User)
    got = lookup.get(user.pk)
    assert isinstance(got, User) and _fields(got) == _fields(User.objects.get(pk=user.pk))
    assert got._state.adding is False and got._state.db == "default"
    # A key given as text (a JWT claim) is read the same way.
    assert lookup.get(str(user.pk)) == got


def test_an_unknown_key_is_none(user):
    assert PkLookup(User).get(uuid.uuid4()) is None


def test_fields_not_asked_for_are_deferred(user, django_assert_num_queries):
    resource = Resource.objects.create(owner=user, name="a.tsv", table_file="k/t.parquet")
    got = PkLookup(Resource, fields=["owner", "table_file"]).get(resource.pk)
    assert got.get_deferred_fields() == {f.attname for f in Resource._meta.concrete_fields} - {
        "id", "owner_id", "table_file"}
    with django_assert_num_queries(0):
        assert (got.owner_id, got.table_file) == (user.pk, "k/t.parquet")
    with django_assert_num_queries(1):
        assert got.name == "a.tsv"


def test_the_statement_is_compiled_once(user, monkeypatch):
    lookup = PkLookup(User)
    other = UserFactory()
    lookup.get(user.pk)
    compiled = []
    compile_sql = SQLCompiler.as_sql
    monkeypatch.setattr(SQLCompiler, "as_sql", lambda self, *a, **k: compiled.append(1) or compile_sql(self, *a, **k))
    assert lookup.get(other.pk).email == other.email
    assert lookup.get(user.pk).email == user.email
    assert compiled == []
