"""Fixtures for the workspace tests: an owner with a workspace, an editor, a reader, a stranger."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mev.workspaces.models import ShareRole
from tests.factories import UserFactory
from tests.workspaces.factories import ResourceFactory, WorkspaceFactory, attach, share


@pytest.fixture
def world(db, make_client):
    """owner's workspace `ws` with resource `res`; `editor` and `reader` shares; a `stranger`."""
    owner, editor, reader, stranger = (UserFactory() for _ in range(4))
    ws = WorkspaceFactory(owner=owner, workspace_name="My workspace")
    res = ResourceFactory(owner=owner, name="owner.tsv")
    attach(ws, res)
    share(ws, editor, ShareRole.EDITOR)
    share(ws, reader, ShareRole.READER)
    return SimpleNamespace(
        owner=owner, editor=editor, reader=reader, stranger=stranger, ws=ws, res=res,
        clients={
            "owner": make_client(owner), "editor": make_client(editor),
            "reader": make_client(reader), "stranger": make_client(stranger),
        },
    )
