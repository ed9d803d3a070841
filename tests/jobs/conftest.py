"""Fixtures for the jobs tests: built test bundles, workspaces, stored resources, and a driver that
runs the sweep (with on-commit callbacks executed) until a job stops."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mev.jobs.models import TERMINAL_STATES, ExecutedOperation
from mev.jobs.services import jobs_sweep
from mev.jobs.staging import store_file
from mev.operations.models import Operation
from mev.operations.services import operation_ingest_folder
from mev.resources.models import Resource
from mev.workspaces.models import Workspace, WorkspaceResource

BUNDLES = Path(__file__).parent / "bundles"
MATRIX = "gene\tS1\tS2\tS3\ng1\t1\t2\t3\ng2\t4\t5\t6\n"


@pytest.fixture(autouse=True)
def _job_dirs(settings, tmp_path: Path) -> None:
    settings.MEV_JOBS_DIR = tmp_path / "jobs"
    settings.MEV_OPERATIONS_DIR = tmp_path / "ops"
    settings.MEV_JOB_TIMEOUT_SECONDS = 60
    settings.MEV_JOB_MEMORY_BYTES = 1024**3


@pytest.fixture
def operation(db) -> Operation:
    return operation_ingest_folder(folder=BUNDLES / "testop")[0]


@pytest.fixture
def nows_operation(db) -> Operation:
    return operation_ingest_folder(folder=BUNDLES / "testop_nows")[0]


@pytest.fixture
def workspace(user) -> Workspace:
    return Workspace.objects.create(owner=user, workspace_name="ws")


@pytest.fixture
def make_resource(tmp_path: Path) -> Callable[..., Resource]:
    def _make(owner, *, workspace=None, resource_type="MTX", content=MATRIX, name="m.tsv", active=True) -> Resource:
        resource = Resource(owner=owner, name=name, resource_type=resource_type, file_format="tsv", is_active=active)
        source = tmp_path / f"src-{resource.id}"
        source.write_text(content)
        key, size, digest = store_file(path=source, owner_id=owner.pk, resource_id=resource.id, name=name)
        resource.datafile, resource.size, resource.checksum = key, size, digest
        resource.save()
        if workspace is not None:
            WorkspaceResource.objects.create(workspace=workspace, resource=resource)
        return resource

    return _make


@pytest.fixture
def drive(django_capture_on_commit_callbacks) -> Callable[..., ExecutedOperation]:
    """Run the sweep until the job stops (or `until` states are reached); return the fresh row."""

    def _drive(execution_id, *, timeout: float = 30, until=TERMINAL_STATES) -> ExecutedOperation:
        deadline = time.monotonic() + timeout
        while True:
            with django_capture_on_commit_callbacks(execute=True):
                jobs_sweep()
            execution = ExecutedOperation.objects.get(pk=execution_id)
            if execution.state in until:
                return execution
            if time.monotonic() > deadline:
                raise AssertionError(f"job still {execution.state} after {timeout}s")
            time.sleep(0.05)

    return _drive


@pytest.fixture
def run(auth_client, django_capture_on_commit_callbacks):
    """POST /api/operations/run/ with on-commit callbacks (the eager submission) executed."""

    def _run(payload, client=None):
        with django_capture_on_commit_callbacks(execute=True):
            return (client or auth_client).post("/api/operations/run/", payload, format="json")

    return _run
