"""Every read about executed operations, scoped to the requester (§7.1.17).

A user reads their own jobs, and the jobs of workspaces they can read (owned or shared).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from mev.core.exceptions import ApplicationError
from mev.jobs.models import ExecutedOperation, JobState
from mev.operations.models import OperationCategory
from mev.users.models import User


def _not_found(execution_id: Any) -> ApplicationError:
    return ApplicationError(status_code=404, body={"message": f"No executed operation found by ID: {execution_id}"})


def executions_readable_by(user: User) -> QuerySet[ExecutedOperation]:
    from mev.workspaces.access import workspaces_readable_by

    return ExecutedOperation.objects.filter(
        Q(owner=user) | Q(workspace__in=workspaces_readable_by(user).values("id"))
    ).select_related("operation").prefetch_related(
        Prefetch("operation__categories", queryset=OperationCategory.objects.order_by("category"))
    )


def _can_read(user: User, execution: ExecutedOperation) -> bool:
    from mev.workspaces.access import workspaces_readable_by

    if execution.owner_id == user.pk:
        return True
    return execution.workspace_id is not None and workspaces_readable_by(user).filter(
        pk=execution.workspace_id).exists()


def execution_get(*, user: User, execution_id: uuid.UUID | str) -> ExecutedOperation:
    """One primary-key query (plus one for a shared workspace's job); the operation is loaded with it."""
    execution = ExecutedOperation.objects.select_related("operation").filter(pk=execution_id).first()
    if execution is None or not _can_read(user, execution):
        raise _not_found(execution_id)
    return execution


def execution_poll_state(*, user: User, execution_id: uuid.UUID | str) -> ExecutedOperation:
    """The cheap read behind 204/208: no operation, no categories (the client polls every 3 s)."""
    execution = ExecutedOperation.objects.only(
        "id", "owner_id", "workspace_id", "state", "execution_stop_datetime").filter(pk=execution_id).first()
    if execution is None or not _can_read(user, execution):
        raise _not_found(execution_id)
    return execution


def execution_get_owned(*, user: User, execution_id: uuid.UUID | str) -> ExecutedOperation:
    """Changes (cancel) are the owner's; anyone else gets the same 404 as for an unknown id."""
    execution = ExecutedOperation.objects.select_related("operation").filter(pk=execution_id, owner=user).first()
    if execution is None:
        raise _not_found(execution_id)
    return execution


def execution_list(*, user: User) -> list[ExecutedOperation]:
    """Workspace jobs first, then the others; newest first within each group."""
    queryset = executions_readable_by(user).order_by("-execution_start_datetime")
    return [e for e in queryset if e.workspace_id] + [e for e in queryset if not e.workspace_id]


def workspace_for_reading(*, user: User, workspace_id: uuid.UUID | str):
    from mev.workspaces.access import workspaces_readable_by

    workspace = workspaces_readable_by(user).filter(pk=workspace_id).first()
    if workspace is None:
        raise ApplicationError(status_code=404, body={"message": f"No workspace found by ID: {workspace_id}"})
    return workspace


def execution_list_workspace(*, user: User, workspace_id: uuid.UUID | str) -> QuerySet[ExecutedOperation]:
    workspace = workspace_for_reading(user=user, workspace_id=workspace_id)
    return executions_readable_by(user).filter(workspace=workspace).order_by("-execution_start_datetime")


def execution_list_non_workspace(*, user: User) -> QuerySet[ExecutedOperation]:
    return executions_readable_by(user).filter(owner=user, operation__workspace_operation=False).order_by(
        "-execution_start_datetime")


# --------------------------------------------------------------------------------------------------
# Provenance tree (§5.5)

RESOURCE_TYPES = frozenset({"DataResource", "VariableDataResource", "OperationDataResource"})


def _resource_ids(definitions: dict[str, Any], values: dict[str, Any] | None) -> list[str]:
    ids: list[str] = []
    for key, value in (values or {}).items():
        definition = definitions.get(key)
        if not definition or definition.get("spec", {}).get("attribute_type") not in RESOURCE_TYPES:
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item:
                ids.append(item)
    return list(dict.fromkeys(ids))


def workspace_tree(*, user: User, workspace_id: uuid.UUID | str) -> list[dict[str, Any]]:
    from mev.operations.models import OperationResource
    from mev.resources.models import Resource
    from mev.workspaces.access import workspaces_readable_by
    from mev.workspaces.models import Workspace

    if not Workspace.objects.filter(pk=workspace_id).exists():
        raise ApplicationError(body={"workspace_uuid": f"No workspace found by ID: {workspace_id}"})
    if not workspaces_readable_by(user).filter(pk=workspace_id).exists():
        raise ApplicationError(status_code=403, body={"workspace_uuid": "You do not have access to this workspace."})
    executions = list(
        ExecutedOperation.objects.filter(workspace_id=workspace_id)
        .exclude(state__in=[JobState.FAILED, JobState.CANCELED])
        .select_related("operation").order_by("execution_start_datetime")
    )
    op_nodes: list[dict[str, Any]] = []
    resource_parent: dict[str, list[str]] = {}
    for execution in executions:
        spec = execution.operation.spec
        inputs = _resource_ids(spec.get("inputs", {}), execution.inputs)
        for resource_id in inputs:
            resource_parent.setdefault(resource_id, [])
        if execution.state == JobState.COMPLETED:
            for resource_id in _resource_ids(spec.get("outputs", {}), execution.outputs):
                resource_parent[resource_id] = [str(execution.id)]
        op_nodes.append({
            "id": str(execution.id), "node_type": "op_node", "node_name": execution.operation.name,
            "parentIds": inputs,
            "data": {"op_spec": spec, "inputs": execution.inputs or {}, "outputs": execution.outputs or {}},
        })
    names = {str(pk): name for pk, name in Resource.objects.filter(pk__in=list(resource_parent)).values_list(
        "id", "name")}
    # Files bundled with an operation are inputs too; they are nobody's resource (§4.2).
    names.update({str(pk): name for pk, name in OperationResource.objects.filter(
        pk__in=[pk for pk in resource_parent if pk not in names]).values_list("id", "name")})
    resource_nodes = [
        {"id": resource_id, "node_type": "data_resource_node",
         "node_name": names.get(resource_id, "(deleted file)"), "parentIds": parents, "data": None}
        for resource_id, parents in resource_parent.items()
    ]
    return resource_nodes + op_nodes


def execution_results_query(*, execution: ExecutedOperation, params: Any) -> dict[str, Any]:
    """`networksubset` over two matrix outputs of a finished job (§2.9), errors as {"error": ...}."""
    transform = params.get("transform-name")
    if transform != "networksubset":
        raise ApplicationError(body={"error": f"Unknown transform-name: {transform!r}. Use networksubset."})
    return _network_subset(execution=execution, params=params)


def _error(message: str) -> ApplicationError:
    return ApplicationError(body={"error": message})


def _load_matrix(execution: ExecutedOperation, output_key: str | None, param: str):
    import pandas as pd

    from mev.jobs.staging import local_copy
    from mev.resources.models import Resource

    if not output_key:
        raise _error(f'The "{param}" parameter is required: the output key of a matrix.')
    outputs = execution.outputs or {}
    if output_key not in outputs:
        raise _error(f'The job has no output "{output_key}" (parameter "{param}").')
    resource = Resource.objects.filter(pk=outputs[output_key], parent_operation=execution).first() \
        if isinstance(outputs[output_key], str) else None
    if resource is None:
        raise _error(f'The output "{output_key}" is not a file.')
    if resource.resource_type not in ("MTX", "I_MTX", "EXP_MTX", "RNASEQ_COUNT_MTX"):
        raise _error(f'The output "{output_key}" is not a matrix.')
    with local_copy(resource.standardized_file or resource.datafile) as path:
        frame = pd.read_csv(path, sep="\t", index_col=0)
    return frame


def _number(params: Any, name: str, *, default: float | None, low: float | None = None, high: float | None = None,
            integer: bool = False) -> float | None:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise _error(f'"{name}" must be {"an integer" if integer else "a number"}.') from None
    if (low is not None and value < low) or (high is not None and value > high):
        raise _error(f'"{name}" must be between {low} and {high}.')
    return value


def _network_subset(*, execution: ExecutedOperation, params: Any) -> dict[str, Any]:
    """Edges of the weight matrix whose p-value is at most `sig_threshold`, chosen by `scheme`:

    - max_edges: the `top_n` strongest edges (by absolute weight);
    - max_weight: the `top_n` nodes with the largest total absolute weight, and the edges among them;
    - node_list: the named `nodes` and the edges among them;
    each node may bring up to `max_neighbors` of its strongest other neighbours (not for max_edges).
    """
    import numpy as np

    scheme = params.get("scheme")
    if scheme not in ("max_edges", "max_weight", "node_list"):
        raise _error('"scheme" must be one of max_edges, max_weight, node_list.')
    top_n = _number(params, "top_n", default=None, low=1, integer=True)
    if scheme != "node_list" and top_n is None:
        raise _error('"top_n" is required for this scheme.')
    max_neighbors = int(_number(params, "max_neighbors", default=0, low=0, integer=True))
    threshold = _number(params, "sig_threshold", default=1.0, low=0, high=1)
    weights = _load_matrix(execution, params.get("weights"), "weights")
    pvals = _load_matrix(execution, params.get("pvals"), "pvals")
    if weights.shape != pvals.shape or list(weights.index) != list(weights.columns):
        raise _error("The weight and p-value matrices must be square and of the same shape.")
    pvals = pvals.reindex(index=weights.index, columns=weights.columns)
    names = [str(n) for n in weights.index]
    w = np.abs(weights.to_numpy(dtype=float))
    p = pvals.to_numpy(dtype=float)
    keep = (p <= threshold) & ~np.isnan(w)
    np.fill_diagonal(keep, False)
    strength = np.where(keep, w, 0.0)

    def neighbours(index: int) -> list[int]:
        if max_neighbors <= 0:
            return []
        order = np.argsort(-strength[index])
        return [int(j) for j in order[:max_neighbors] if strength[index, j] > 0]

    if scheme == "max_edges":
        rows, cols = np.triu_indices(len(names), k=1)
        candidates = strength[rows, cols]
        order = np.argsort(-candidates)[: int(top_n)]
        pairs = [(int(rows[k]), int(cols[k])) for k in order if candidates[k] > 0]
    else:
        if scheme == "max_weight":
            chosen = [int(i) for i in np.argsort(-strength.sum(axis=1))[: int(top_n)]]
        else:
            wanted = [n.strip() for n in (params.get("nodes") or "").split(",") if n.strip()]
            if not wanted:
                raise _error('"nodes" is required for the node_list scheme (comma-separated).')
            position = {n: i for i, n in enumerate(names)}
            missing = [n for n in wanted if n not in position]
            if missing:
                raise _error(f"Unknown nodes: {', '.join(missing[:20])}.")
            chosen = [position[n] for n in wanted]
        pairs = {(min(i, j), max(i, j)) for i in chosen for j in chosen if i != j and strength[i, j] > 0}
        for i in chosen:
            for j in neighbours(i):
                pairs.add((min(i, j), max(i, j)))
        pairs = sorted(pairs)
    raw = weights.to_numpy(dtype=float)
    node_ids = dict.fromkeys([names[i] for pair in pairs for i in pair])
    if scheme != "max_edges":
        node_ids = dict.fromkeys([names[i] for i in chosen] + list(node_ids))
    edges = [{"source": names[i], "target": names[j], "weight": float(abs(raw[i, j])), "pval": float(p[i, j]),
              "direction": "POS" if raw[i, j] >= 0 else "NEG"} for i, j in pairs]
    return {"nodes": [{"id": n} for n in node_ids], "edges": edges}
