"""The provenance tree (§5.5) and its export (§2.9)."""

from __future__ import annotations

import pytest

from mev.jobs.models import ExecutedOperation, JobState
from mev.resources.models import Resource
from mev.workspaces.models import WorkspaceResource

pytestmark = pytest.mark.django_db


def test_tree_shape(auth_client, run, drive, operation, workspace, make_resource, user):
    a = make_resource(user, workspace=workspace, name="a.tsv")
    b = make_resource(user, workspace=workspace, name="b.tsv")
    ok = run({"operation_id": str(operation.id), "workspace_id": str(workspace.id),
              "inputs": {"number": 1, "matrix": str(a.id), "matrices": [str(a.id), str(b.id)]}})
    ok_id = ok.json()["executed_operation_id"]
    drive(ok_id)
    failed = run({"operation_id": str(operation.id), "workspace_id": str(workspace.id),
                  "inputs": {"number": 1, "behavior": "fail", "matrix": str(b.id)}})
    drive(failed.json()["executed_operation_id"])
    output_id = ExecutedOperation.objects.get(pk=ok_id).outputs["report"]
    # A second job that takes the first job's output.
    chained = run({"operation_id": str(operation.id), "workspace_id": str(workspace.id),
                   "inputs": {"number": 2, "matrix": output_id}})
    chained_id = chained.json()["executed_operation_id"]
    drive(chained_id)

    response = auth_client.get(f"/api/executed-operations/workspace/{workspace.id}/tree")
    assert response.status_code == 200
    nodes = {n["id"]: n for n in response.json()}
    op_nodes = [n for n in nodes.values() if n["node_type"] == "op_node"]
    assert {n["id"] for n in op_nodes} == {ok_id, chained_id}  # the failed job is left out
    for node in nodes.values():
        for parent in node["parentIds"]:
            assert parent in nodes
    assert sorted(nodes[ok_id]["parentIds"]) == sorted([str(a.id), str(b.id)])  # one edge per list element
    assert nodes[ok_id]["data"]["op_spec"]["name"] == "Test operation"
    assert nodes[str(a.id)] == {"id": str(a.id), "node_type": "data_resource_node", "node_name": "a.tsv",
                                "parentIds": [], "data": None}
    assert nodes[output_id]["parentIds"] == [ok_id]
    assert nodes[chained_id]["parentIds"] == [output_id]
    chained_output = ExecutedOperation.objects.get(pk=chained_id).outputs["report"]
    assert nodes[chained_output]["parentIds"] == [chained_id]
    assert len(response.json()) == len(nodes)  # each resource once


def test_tree_save(auth_client, operation, workspace, user):
    response = auth_client.get(f"/api/executed-operations/workspace/{workspace.id}/tree/save")
    assert response.status_code == 201 and response.json() == {}
    saved = Resource.objects.get(name__startswith=f"workspace_export.{workspace.id}.")
    assert saved.name.endswith(".json") and saved.resource_type == "JSON" and saved.is_active
    assert WorkspaceResource.objects.filter(workspace=workspace, resource=saved).exists()


def test_tree_errors(auth_client):
    import uuid

    response = auth_client.get(f"/api/executed-operations/workspace/{uuid.uuid4()}/tree/")
    assert response.status_code == 400 and "workspace_uuid" in response.json()


def test_workspace_list_order_and_shape(auth_client, operation, workspace, user):
    older = ExecutedOperation.objects.create(owner=user, operation=operation, workspace=workspace, job_name="old",
                                             mode="local", runner="local")
    newer = ExecutedOperation.objects.create(owner=user, operation=operation, workspace=workspace, job_name="new",
                                             mode="local", runner="local", state=JobState.RUNNING)
    ExecutedOperation.objects.filter(pk=older.pk).update(execution_start_datetime=older.execution_start_datetime.
                                                         replace(year=2020))
    body = auth_client.get(f"/api/executed-operations/workspace/{workspace.id}").json()
    assert [e["id"] for e in body] == [str(newer.id), str(older.id)]
    entry = body[0]
    assert entry["outputs"] is None and entry["error_messages"] is None and entry["inputs"] == {}
    assert entry["workspace"] == str(workspace.id)
    assert entry["operation"]["categories"] and entry["operation"]["inputs"]["number"]["name"] == "Number:"
    assert entry["operation"]["active"] is True
    everything = auth_client.get("/api/executed-operations/").json()
    assert {e["id"] for e in everything} == {str(newer.id), str(older.id)}


def test_results_query_while_running(auth_client, operation, workspace, user):
    running = ExecutedOperation.objects.create(owner=user, operation=operation, workspace=workspace, job_name="r",
                                               mode="local", runner="local", state=JobState.RUNNING)
    url = f"/api/executed-operations/{running.id}/results-query/?transform-name=networksubset"
    assert auth_client.get(url).status_code == 204


NET = "gene\tA\tB\tC\tD\nA\t0\t0.9\t-0.5\t0.1\nB\t0.9\t0\t0.2\t-0.7\nC\t-0.5\t0.2\t0\t0.3\nD\t0.1\t-0.7\t0.3\t0\n"
PV = "gene\tA\tB\tC\tD\nA\t1\t0.01\t0.02\t0.9\nB\t0.01\t1\t0.5\t0.03\nC\t0.02\t0.5\t1\t0.04\nD\t0.9\t0.03\t0.04\t1\n"


@pytest.fixture
def network_job(operation, workspace, user, make_resource):
    execution = ExecutedOperation.objects.create(owner=user, operation=operation, workspace=workspace,
                                                 job_name="net", mode="local", runner="local",
                                                 state=JobState.COMPLETED)
    weights = make_resource(user, content=NET, name="w.tsv")
    pvals = make_resource(user, content=PV, name="p.tsv")
    Resource.objects.filter(pk__in=[weights.pk, pvals.pk]).update(parent_operation=execution)
    execution.outputs = {"Dragon.edge_weights": str(weights.id), "Dragon.fdr_values": str(pvals.id), "n": 3}
    execution.execution_stop_datetime = execution.execution_start_datetime
    execution.save()
    return execution


def _query(client, execution, **params):
    base = {"transform-name": "networksubset", "weights": "Dragon.edge_weights", "pvals": "Dragon.fdr_values"}
    return client.get(f"/api/executed-operations/{execution.id}/results-query/", {**base, **params})


def test_networksubset_max_edges(auth_client, network_job):
    body = _query(auth_client, network_job, scheme="max_edges", top_n=2, sig_threshold=0.05).json()
    assert body["edges"] == [
        {"source": "A", "target": "B", "weight": 0.9, "pval": 0.01, "direction": "POS"},
        {"source": "B", "target": "D", "weight": 0.7, "pval": 0.03, "direction": "NEG"},
    ]
    assert [n["id"] for n in body["nodes"]] == ["A", "B", "D"]


def test_networksubset_node_list_and_errors(auth_client, network_job):
    body = _query(auth_client, network_job, scheme="node_list", nodes="A,C", max_neighbors=1,
                  sig_threshold=0.05).json()
    pairs = {(e["source"], e["target"]) for e in body["edges"]}
    assert pairs == {("A", "C"), ("A", "B")}
    assert {n["id"] for n in body["nodes"]} == {"A", "B", "C"}
    assert _query(auth_client, network_job, scheme="max_weight", top_n=2).status_code == 200
    for params in ({"scheme": "nope"}, {"scheme": "max_edges"}, {"scheme": "node_list", "nodes": "Z"},
                   {"scheme": "max_edges", "top_n": 1, "sig_threshold": 2},
                   {"scheme": "max_edges", "top_n": 1, "weights": "n"}):
        response = _query(auth_client, network_job, **params)
        assert response.status_code == 400 and "error" in response.json(), params
