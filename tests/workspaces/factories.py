"""Factories for workspaces, validated resources (with element rows) and executed operations."""

from __future__ import annotations

from typing import Any

import factory

from mev.jobs.models import ExecutedOperation, JobState
from mev.operations.models import Operation
from mev.resources.models import ElementKind, Resource, ResourceElement
from mev.workspaces.models import Workspace, WorkspaceResource, WorkspaceShare
from tests.factories import UserFactory


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    owner = factory.SubFactory(UserFactory)
    workspace_name = factory.Sequence(lambda n: f"workspace {n}")


class ResourceFactory(factory.django.DjangoModelFactory):
    """A validated, active resource (type and format set), as validation would leave it."""

    class Meta:
        model = Resource

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"counts_{n}.tsv")
    resource_type = "MTX"
    file_format = "tsv"
    is_active = True
    size = 100


def attr(value: Any) -> dict[str, Any]:
    return {"attribute_type": "String", "value": value}


def add_elements(resource: Resource, kind: str, elements: dict[str, dict[str, Any]]) -> None:
    """elements: {element_id: {attribute key: plain value}}."""
    ResourceElement.objects.bulk_create(
        ResourceElement(
            resource=resource, kind=kind, element_id=element_id, attributes={k: attr(v) for k, v in attrs.items()}
        )
        for element_id, attrs in elements.items()
    )


def add_observations(resource: Resource, elements: dict[str, dict[str, Any]]) -> None:
    add_elements(resource, ElementKind.OBSERVATION, elements)


def add_features(resource: Resource, elements: dict[str, dict[str, Any]]) -> None:
    add_elements(resource, ElementKind.FEATURE, elements)


def attach(workspace: Workspace, *resources: Resource) -> None:
    for resource in resources:
        WorkspaceResource.objects.create(workspace=workspace, resource=resource)


def share(workspace: Workspace, user, role: str) -> WorkspaceShare:
    return WorkspaceShare.objects.create(workspace=workspace, user=user, role=role)


class OperationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Operation

    name = factory.Sequence(lambda n: f"operation {n}")
    mode = "local_docker"
    spec = factory.LazyFunction(dict)
    bundle_dir = "/tmp/none"  # noqa: S108


class ExecutedOperationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExecutedOperation

    owner = factory.SubFactory(UserFactory)
    operation = factory.SubFactory(OperationFactory)
    job_name = "job"
    mode = "local_docker"
    runner = "local"
    state = JobState.COMPLETED
    inputs = factory.LazyFunction(dict)
