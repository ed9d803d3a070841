"""GET /api/resources/<id>/contents/, /preview/ and /transform/ (contract §2.3)."""

from __future__ import annotations

import uuid

import pytest
from django.db.models.sql.compiler import SQLCompiler

from mev.resources import contents_apis, storage
from mev.resources.models import Resource
from mev.workspaces.models import ShareRole, Workspace, WorkspaceResource, WorkspaceShare
from tests.factories import UserFactory
from tests.resources.validated_factory import make_resource, store_resource

pytestmark = pytest.mark.django_db

DGE = (
    "gene\tbaseMean\tlog2FoldChange\tpvalue\tpadj\tsymbol\n"
    "G1\t100\t3.5\t0.0001\t0.001\tTP53\n"
    "G2\t50\t-2.5\t0.001\t0.01\tMYC\n"
    "G3\t10\t0.1\t0.5\t0.9\tBRCA1\n"
    "G4\t20\t-0.2\t0.4\t0.8\tEGFR\n"
    "G5\t30\t2.2\t0.02\t0.04\tKRAS\n"
    "G6\t40\t\t0.3\t\tNA1\n"
)
MATRIX = "gene\tS1\tS2\tS3\n" + "".join(f"G{i}\t{i}\t{i * 2}\t{i + 0.5}\n" for i in range(1, 13))
ANNOTATION = "sample\tcondition\tage\tbatch\nS1\ttreated\t43\tb1\nS2\tcontrol\t51\tb2\nS3\ttreated\t38\tb1\n"
BED6 = "chr1\t10\t20\tp1\t0\t+\nchr2\t0\t5\tp2\t1000\t.\n"
JSON_ARRAY = '[{"name": "b", "score": 2}, {"name": "a", "score": 10}, {"name": "c"}]'
JSON_OBJECT = '{"centroids": [[1, 2]], "points": [{"x": 1}]}'


def url(resource_or_id, suffix: str = "") -> str:
    pk = getattr(resource_or_id, "pk", resource_or_id)
    return f"/api/resources/{pk}/contents/{suffix}"


@pytest.fixture
def dge(user) -> Resource:
    return make_resource(user, DGE, resource_type="FT", file_format="tsv")


@pytest.fixture
def matrix(user) -> Resource:
    return make_resource(user, MATRIX, resource_type="MTX", file_format="tsv")


# --------------------------------------------------------------------------- the checks, in order


def test_unknown_id_is_404_with_an_empty_body(auth_client) -> None:
    response = auth_client.get(url(uuid.uuid4()))
    assert response.status_code == 404
    assert response.content == b""


@pytest.mark.parametrize("suffix", ["", "preview/", "preview", "transform/"])
def test_another_users_resource_is_404_like_an_unknown_one(dge, make_client, suffix) -> None:
    stranger = make_client(UserFactory())
    response = stranger.get(url(dge, suffix))
    assert response.status_code == 404
    assert response.content == b""


def test_reader_of_a_shared_workspace_may_read(user, dge, make_client) -> None:
    reader = UserFactory()
    workspace = Workspace.objects.create(owner=user, workspace_name="shared")
    WorkspaceResource.objects.create(workspace=workspace, resource=dge)
    WorkspaceShare.objects.create(workspace=workspace, user=reader, role=ShareRole.READER)
    response = make_client(reader).get(url(dge))
    assert response.status_code == 200
    assert len(response.json()) == 6


def test_anonymous_is_401(api_client, dge) -> None:
    assert api_client.get(url(dge)).status_code == 401


def test_inactive_is_400(auth_client, dge) -> None:
    Resource.objects.filter(pk=dge.pk).update(is_active=False, status="Validating...")
    response = auth_client.get(url(dge))
    assert response.status_code == 400
    assert response.json() == {"resource": "The requested resource is not active."}


def test_inactive_check_comes_before_the_type_check(auth_client, user) -> None:
    resource = store_resource(user, DGE)
    Resource.objects.filter(pk=resource.pk).update(is_active=False)
    assert auth_client.get(url(resource)).status_code == 400


@pytest.mark.parametrize("suffix", ["", "preview/", "transform/?transform-name=heatmap-cluster"])
def test_untyped_resource_has_no_contents(auth_client, user, suffix) -> None:
    resource = store_resource(user, DGE)
    response = auth_client.get(url(resource, suffix))
    assert response.status_code == 200
    assert response.json() == {"info": "Contents not available for this resource."}


@pytest.mark.parametrize(("resource_type", "file_format"), [("FQ", "fq"), ("*", "*"), ("BIGWIG", "bw")])
def test_types_without_a_contents_view(auth_client, user, resource_type, file_format) -> None:
    resource = make_resource(user, "@r\nAC\n+\nII\n", resource_type=resource_type, file_format=file_format)
    assert resource.resource_type == resource_type
    response = auth_client.get(url(resource))
    assert response.json() == {"info": "Contents not available for this resource."}


# --------------------------------------------------------------------------- who may read, and at what cost
#
# Every contents request reads its user (authentication) and the resource: two primary-key queries
# for the owner. The workspace rule costs a third query, for anyone else.


def _share(workspace_owner, resource, reader, role=ShareRole.READER) -> Workspace:
    workspace = Workspace.objects.create(owner=workspace_owner, workspace_name=f"shared-{uuid.uuid4().hex[:6]}")
    WorkspaceResource.objects.create(workspace=workspace, resource=resource)
    if reader is not None:
        WorkspaceShare.objects.create(workspace=workspace, user=reader, role=role)
    return workspace


VOLCANO = "transform/?transform-name=volcano-subset&pval=0.05&lfc=2&fraction=0"


@pytest.mark.parametrize("suffix", ["", "?page=1&page_size=2", "preview/", VOLCANO])
def test_the_owner_costs_two_queries_and_no_compilation(auth_client, dge, django_assert_num_queries, monkeypatch,
                                                         suffix) -> None:
    auth_client.get(url(dge))  # the first request of a process compiles the two statements
    compiled = []
    compile_sql = SQLCompiler.as_sql
    monkeypatch.setattr(SQLCompiler, "as_sql", lambda self, *a, **k: compiled.append(self.query) or compile_sql(self, *a, **k))
    with django_assert_num_queries(2):
        response = auth_client.get(url(dge, suffix))
    assert response.status_code == 200
    # Compiling a queryset cost more than running these primary-key reads; none is compiled per request.
    assert compiled == []


def test_a_json_resource_and_a_type_without_contents_cost_two_queries(
    auth_client, user, django_assert_num_queries
) -> None:
    document = make_resource(user, JSON_OBJECT, resource_type="JSON", file_format="json")
    untyped = store_resource(user, DGE)
    for resource, expected in [(document, {"centroids": [[1, 2]], "points": [{"x": 1}]}),
                               (untyped, {"info": "Contents not available for this resource."})]:
        with django_assert_num_queries(2):
            response = auth_client.get(url(resource))
        assert response.json() == expected


@pytest.mark.parametrize("role", [ShareRole.READER, ShareRole.EDITOR])
def test_a_member_of_a_shared_workspace_costs_three_queries(
    user, dge, make_client, django_assert_num_queries, role
) -> None:
    member = UserFactory()
    _share(user, dge, member, role)
    client = make_client(member)
    with django_assert_num_queries(3):
        response = client.get(url(dge, "?page=1"))
    assert response.status_code == 200
    assert response.json()["count"] == 6


def test_the_owner_of_a_workspace_reads_an_editors_resource_in_it(user, make_client) -> None:
    editor = UserFactory()
    resource = make_resource(editor, DGE, resource_type="FT", file_format="tsv")
    _share(user, resource, editor, ShareRole.EDITOR)  # the editor added their own file to user's workspace
    response = make_client(user).get(url(resource))
    assert response.status_code == 200
    assert len(response.json()) == 6


def test_a_workspace_shared_with_someone_else_gives_a_stranger_nothing(user, dge, make_client) -> None:
    _share(user, dge, UserFactory())
    response = make_client(UserFactory()).get(url(dge))
    assert response.status_code == 404
    assert response.content == b""


def test_a_stranger_and_an_unknown_id_get_the_same_answer(dge, make_client, django_assert_num_queries) -> None:
    stranger = make_client(UserFactory())
    with django_assert_num_queries(2):
        unknown = stranger.get(url(uuid.uuid4()))
    with django_assert_num_queries(3):
        other = stranger.get(url(dge))
    assert (unknown.status_code, unknown.content) == (other.status_code, other.content) == (404, b"")


def test_an_inactive_resource_shared_with_a_reader_is_400(user, dge, make_client) -> None:
    reader = UserFactory()
    _share(user, dge, reader)
    Resource.objects.filter(pk=dge.pk).update(is_active=False)
    response = make_client(reader).get(url(dge))
    assert response.status_code == 400
    assert response.json() == {"resource": "The requested resource is not active."}


def test_a_new_validation_is_read_at_once(auth_client, user) -> None:
    """Nothing about the resource is kept between requests: a re-validated table is served anew."""
    resource = make_resource(user, DGE, resource_type="FT", file_format="tsv")
    assert len(auth_client.get(url(resource)).json()) == 6
    Resource.objects.filter(pk=resource.pk).update(resource_type=None)
    assert auth_client.get(url(resource)).json() == {"info": "Contents not available for this resource."}


# --------------------------------------------------------------------------- tables


def test_table_without_page_is_a_bare_array_of_complete_records(auth_client, dge) -> None:
    response = auth_client.get(url(dge))
    assert response.status_code == 200
    body = response.json()
    assert [r["rowname"] for r in body] == ["G1", "G2", "G3", "G4", "G5", "G6"]
    assert body[0] == {
        "rowname": "G1",
        "values": {"baseMean": 100, "log2FoldChange": 3.5, "pvalue": 0.0001, "padj": 0.001, "symbol": "TP53"},
    }
    # Every column in every record; missing values are null.
    assert body[5]["values"]["padj"] is None and set(body[5]["values"]) == set(body[0]["values"])


def test_paging_shape_and_links(auth_client, matrix) -> None:
    response = auth_client.get(url(matrix), {"page": 2, "page_size": 5, "_": "1711111111"})
    body = response.json()
    assert body["count"] == 12
    assert [r["rowname"] for r in body["results"]] == ["G6", "G7", "G8", "G9", "G10"]
    base = f"http://testserver/api/resources/{matrix.pk}/contents/"
    assert body["next"].startswith(base + "?") and "page=3" in body["next"] and "page_size=5" in body["next"]
    assert "page=1" in body["previous"]
    last = auth_client.get(url(matrix), {"page": "last", "page_size": 5}).json()
    assert last["next"] is None and [r["rowname"] for r in last["results"]] == ["G11", "G12"]


def test_page_out_of_range_is_404(auth_client, matrix) -> None:
    response = auth_client.get(url(matrix), {"page": 99})
    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid page."}


def test_filters_sort_and_cache_buster(auth_client, dge) -> None:
    query = "padj=[lt]:0.05&log2FoldChange=[absgt]:2.0&sort_vals=[asc]:padj&_=123"
    response = auth_client.get(url(dge) + "?" + query)
    assert response.status_code == 200
    assert [r["rowname"] for r in response.json()] == ["G1", "G2", "G5"]


def test_rowname_filters(auth_client, dge) -> None:
    body = auth_client.get(url(dge) + "?__rowname__=[in]:G3, G1,NOPE").json()
    assert [r["rowname"] for r in body] == ["G1", "G3"]
    body = auth_client.get(url(dge) + "?__rowname__=[startswith]:g").json()
    assert len(body) == 6
    body = auth_client.get(url(dge) + "?symbol=[case-ins-eq]:myc").json()
    assert [r["rowname"] for r in body] == ["G2"]


def test_rowmeans_on_a_matrix(auth_client, matrix) -> None:
    body = auth_client.get(url(matrix) + "?__rowmean__=[gte]:14&sort_vals=[desc]:__rowmean__").json()
    assert [r["rowname"] for r in body] == ["G12", "G11"]
    assert body[0]["__rowmean__"] == pytest.approx((12 + 24 + 12.5) / 3)
    assert set(body[0]["values"]) == {"S1", "S2", "S3"}
    body = auth_client.get(url(matrix) + "?__incl_rowmeans__&page=1&page_size=1").json()
    assert body["results"][0]["__rowmean__"] == pytest.approx((1 + 2 + 1.5) / 3)


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("padj=[bogus]:1", 'Unknown operator "[bogus]"'),
        ("__rowname__=G1", "needs an operator"),
        ("sort_vals=padj", "is malformed"),
        ("sort_vals=[up]:padj", "must be [asc] or [desc]"),
        ("sort_vals=[asc]:nope", 'Cannot sort on "nope"'),
        ("padj=abc", 'Could not parse "abc" as a number.'),
    ],
)
def test_query_errors_are_400_with_error_key(auth_client, dge, query, detail) -> None:
    response = auth_client.get(url(dge) + "?" + query)
    assert response.status_code == 400
    message = response.json()["error"]
    assert message.startswith("There was a problem when parsing the request: ")
    assert detail in message


def test_values_may_contain_colons(auth_client, user) -> None:
    resource = make_resource(user, "id\tlocus\nr1\tchr1:100-200\nr2\tchr2:5-9\n", resource_type="FT",
                             file_format="tsv")
    body = auth_client.get(url(resource) + "?locus=[eq]:chr1:100-200").json()
    assert [r["rowname"] for r in body] == ["r1"]


def test_colname_projection(auth_client, user) -> None:
    resource = make_resource(user, ANNOTATION, resource_type="ANN", file_format="tsv")
    body = auth_client.get(url(resource) + "?__colname__=[in]:batch,condition").json()
    assert body[0] == {"rowname": "S1", "values": {"batch": "b1", "condition": "treated"}}
    empty = auth_client.get(url(resource) + "?__colname__=[in]:")
    assert empty.status_code == 200
    assert all(r["values"] == {} for r in empty.json())


def test_bed_records(auth_client, user) -> None:
    resource = make_resource(user, BED6, resource_type="BED6", file_format="tsv")
    body = auth_client.get(url(resource) + "?strand=[eq]:.").json()
    assert body == [{"rowname": "1", "values": {"chrom": "chr2", "start": 0, "stop": 5, "name": "p2",
                                                "score": 1000, "strand": "."}}]


def test_bed_preview(auth_client, user) -> None:
    resource = make_resource(user, "chr1\t1\t5\n", resource_type="BED3", file_format="tsv")
    body = auth_client.get(url(resource, "preview")).json()
    assert body == [{"rowname": "0", "values": {"chrom": "chr1", "start": 1, "stop": 5}}]


def test_unexpected_failure_is_500_with_error_key(auth_client, dge, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(contents_apis, "query_table", broken)
    response = auth_client.get(url(dge))
    assert response.status_code == 500
    assert "error" in response.json()


def test_missing_parquet_file_is_500(auth_client, dge) -> None:
    storage.delete(dge.table_file)
    response = auth_client.get(url(dge))
    assert response.status_code == 500 and "error" in response.json()


# --------------------------------------------------------------------------- preview


@pytest.mark.parametrize("suffix", ["preview/", "preview"])
def test_preview_has_the_first_rows_with_every_column(auth_client, matrix, suffix) -> None:
    response = auth_client.get(url(matrix, suffix) + "?page=3&S1=[gt]:100")  # parameters are ignored
    assert response.status_code == 200
    body = response.json()
    assert len(body) == contents_apis.PREVIEW_ROWS
    assert body[0] == {"rowname": "G1", "values": {"S1": 1, "S2": 2, "S3": 1.5}}


def test_slashless_contents_route(auth_client, dge) -> None:
    response = auth_client.get(f"/api/resources/{dge.pk}/contents")
    assert response.status_code == 200 and len(response.json()) == 6


# --------------------------------------------------------------------------- JSON


@pytest.fixture
def json_array(user) -> Resource:
    return make_resource(user, JSON_ARRAY, resource_type="JSON", file_format="json", name="a.json")


@pytest.fixture
def json_object(user) -> Resource:
    return make_resource(user, JSON_OBJECT, resource_type="JSON", file_format="json", name="o.json")


def test_json_array_filters_sorts_and_pages(auth_client, json_array) -> None:
    assert auth_client.get(url(json_array)).json() == [
        {"name": "b", "score": 2}, {"name": "a", "score": 10}, {"name": "c"}
    ]
    body = auth_client.get(url(json_array) + "?sort_vals=[desc]:score&_=1").json()
    assert body == [{"name": "a", "score": 10}, {"name": "b", "score": 2}, {"name": "c"}]
    body = auth_client.get(url(json_array) + "?score=[gt]:5").json()
    assert body == [{"name": "a", "score": 10}]
    page = auth_client.get(url(json_array), {"page": 1, "page_size": 2}).json()
    assert page["count"] == 3 and len(page["results"]) == 2 and "page=2" in page["next"]


def test_json_object_is_returned_unchanged(auth_client, json_object) -> None:
    whole = {"centroids": [[1, 2]], "points": [{"x": 1}]}
    assert auth_client.get(url(json_object) + "?x=1").json() == whole
    assert auth_client.get(url(json_object), {"page": 1, "page_size": 10000}).json() == whole
    response = auth_client.get(url(json_object), {"page": 2})
    assert response.status_code == 404 and response.json() == {"detail": "Invalid page."}


def test_json_preview_is_the_whole_document(auth_client, json_object) -> None:
    assert auth_client.get(url(json_object, "preview")).json() == {"centroids": [[1, 2]], "points": [{"x": 1}]}


def test_json_overflowing_numbers_are_rendered_like_table_cells(auth_client, user) -> None:
    # 1e999 is valid JSON that parses to infinity, which strict JSON cannot send back.
    resource = make_resource(user, '[{"a": 1e999}, {"a": -1e999}, {"a": 1.5}]',
                             resource_type="JSON", file_format="json")
    assert resource.resource_type == "JSON"
    response = auth_client.get(url(resource))
    assert response.status_code == 200
    assert [item["a"] for item in response.json()] == ["++inf++", "--inf--", 1.5]


def test_json_with_nan_is_refused_at_validation(user) -> None:
    resource = make_resource(user, '[{"a": NaN}]', resource_type="JSON", file_format="json")
    assert resource.resource_type is None
    assert "NaN is not valid JSON" in resource.status


def test_json_query_error(auth_client, json_array) -> None:
    response = auth_client.get(url(json_array) + "?sort_vals=[sideways]:score")
    assert response.status_code == 400 and "error" in response.json()


def test_json_has_no_transforms(auth_client, json_array) -> None:
    response = auth_client.get(url(json_array, "transform/") + "?transform-name=heatmap-cluster")
    assert response.status_code == 400
    assert response.json() == {"error": 'The "heatmap-cluster" transform is not available for this type of resource.'}
    response = auth_client.get(url(json_array, "transform/"))
    assert response.json() == {"error": "The request must contain the 'transform-name' parameter."}


# --------------------------------------------------------------------------- transforms


def test_transform_name_is_required(auth_client, matrix) -> None:
    response = auth_client.get(url(matrix, "transform/"))
    assert response.status_code == 400
    assert response.json() == {"error": "The request must contain the 'transform-name' parameter."}


def test_unknown_transform(auth_client, matrix) -> None:
    response = auth_client.get(url(matrix, "transform/") + "?transform-name=nope")
    assert response.status_code == 400
    assert "nope" in response.json()["error"]


def test_heatmap_cluster_with_rowname_filter(auth_client, matrix) -> None:
    query = "transform-name=heatmap-cluster&__rowname__=[in]:G1,G2,G5,G9&metric=euclidean&method=ward"
    response = auth_client.get(url(matrix, "transform/") + "?" + query)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert sorted(r["rowname"] for r in body) == ["G1", "G2", "G5", "G9"]
    assert set(body[0]["values"]) == {"S1", "S2", "S3"}


def test_heatmap_cluster_bad_filter_is_400(auth_client, matrix) -> None:
    response = auth_client.get(url(matrix, "transform/") + "?transform-name=heatmap-cluster&__rowname__=G1")
    assert response.status_code == 400 and "error" in response.json()


def test_heatmap_reduce(auth_client, matrix) -> None:
    response = auth_client.get(url(matrix, "transform/") + "?transform-name=heatmap-reduce&mad_n=3")
    assert response.status_code == 200, response.json()
    assert len(response.json()) == 3


def test_volcano_subset(auth_client, dge) -> None:
    query = "transform-name=volcano-subset&pval=0.05&lfc=2&fraction=0"
    response = auth_client.get(url(dge, "transform/") + "?" + query)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert sorted(r["rowname"] for r in body) == ["G1", "G2", "G5"]
    assert {"pvalue", "log2FoldChange"} <= set(body[0]["values"])


def test_volcano_subset_parameter_errors(auth_client, dge, matrix) -> None:
    response = auth_client.get(url(dge, "transform/") + "?transform-name=volcano-subset&lfc=2")
    assert response.status_code == 400 and "pval" in response.json()["error"]
    response = auth_client.get(url(matrix, "transform/") + "?transform-name=volcano-subset&pval=0.05&lfc=1")
    assert response.status_code == 400 and "error" in response.json()


# --------------------------------------------------------------------------- object-storage cache


def test_tables_on_object_storage_are_cached_locally(auth_client, dge, monkeypatch, settings, tmp_path) -> None:
    settings.DATA_DIR = tmp_path / "data"
    real_open = storage.open_read
    downloads: list[str] = []

    def remote_open(key):
        downloads.append(key)
        return real_open(key)

    monkeypatch.setattr(storage, "local_path", lambda key: None)
    monkeypatch.setattr(storage, "open_read", remote_open)

    first = auth_client.get(url(dge), {"page": 1, "page_size": 2})
    second = auth_client.get(url(dge, "preview"))
    assert first.status_code == second.status_code == 200
    assert downloads == [dge.table_file]
    cached = list((tmp_path / "data" / "cache" / "tables").iterdir())
    assert len(cached) == 1 and cached[0].suffix == ".parquet"
