"""The contents query language on JSON resources (api-contract §2.3, §7.2 items 2 and 8)."""

from __future__ import annotations

from typing import Any

import pytest

from mev.resource_types.query import PageNotFound, QueryError, query_json

BASE_URL = "http://testserver/api/resources/9/contents/"

ITEMS: list[dict[str, Any]] = [
    {"id": "a", "score": 3, "label": "Alpha", "note": "x:y"},
    {"id": "b", "score": 1.5, "label": "beta"},
    {"id": "c", "label": "Gamma"},
    {"id": "d", "score": 7, "label": None},
    {"id": "e", "score": -2, "label": "alphabet"},
]


def run(doc: Any, params: list[tuple[str, str]]) -> Any:
    return query_json(doc, params, base_url=BASE_URL)


def ids(result: Any) -> list[str]:
    items = result["results"] if isinstance(result, dict) else result
    return [item["id"] for item in items]


def test_array_without_page_is_returned_item_by_item() -> None:
    assert run(ITEMS, []) == ITEMS


@pytest.mark.parametrize(
    ("param", "expected"),
    [
        (("score", "[gt]:1.5"), ["a", "d"]),
        (("score", "[lte]:1.5"), ["b", "e"]),
        (("score", "[absgt]:2.5"), ["a", "d"]),
        (("score", "3"), ["a"]),
        (("score", "[in]:7,-2"), ["d", "e"]),
        (("label", "[case-ins-eq]:ALPHA"), ["a"]),
        (("label", "[startswith]:alp"), ["a", "e"]),
        (("label", "beta"), ["b"]),
        (("note", "x:y"), ["a"]),
        (("id", "[in]:a, c"), ["a", "c"]),
    ],
)
def test_array_filters(param: tuple[str, str], expected: list[str]) -> None:
    assert ids(run(ITEMS, [param])) == expected


def test_unknown_parameters_are_ignored() -> None:
    assert ids(run(ITEMS, [("_", "1711111111"), ("score", "[gt]:5")])) == ["d"]


@pytest.mark.parametrize(
    ("order", "expected"),
    [("[asc]", ["e", "b", "a", "d", "c"]), ("[desc]", ["d", "a", "b", "e", "c"])],
)
def test_sort_puts_items_missing_the_key_last(order: str, expected: list[str]) -> None:
    assert ids(run(ITEMS, [("sort_vals", f"{order}:score")])) == expected


def test_sort_on_mixed_types_and_non_object_items_never_crashes() -> None:
    doc = [{"k": 1}, "scalar", {"k": "text"}, {"k": None}, {"other": 1}, {"k": True}]
    result = run(doc, [("sort_vals", "[desc]:k")])
    assert len(result) == len(doc)
    assert result[-3:] == ["scalar", {"k": None}, {"other": 1}]


def test_array_paging() -> None:
    result = run(ITEMS, [("sort_vals", "[desc]:score"), ("page", "2"), ("page_size", "2")])
    assert result["count"] == 5
    assert ids(result) == ["b", "e"]
    assert "page=3" in result["next"] and "page=1" in result["previous"]
    assert ids(run(ITEMS, [("page", "last"), ("page_size", "2")])) == ["e"]
    with pytest.raises(PageNotFound):
        run(ITEMS, [("page", "4"), ("page_size", "2")])


def test_array_errors_use_the_table_messages() -> None:
    with pytest.raises(QueryError, match=r'Could not parse "high" as a number\.'):
        run(ITEMS, [("score", "high")])
    with pytest.raises(QueryError, match="Unknown operator"):
        run(ITEMS, [("score", "[bigger]:1")])
    with pytest.raises(QueryError, match='Cannot sort on "nope"'):
        run(ITEMS, [("sort_vals", "[asc]:nope")])


def test_object_is_returned_unchanged_and_filters_are_ignored() -> None:
    doc = {"centroids": [[0, 1]], "points": [{"x": 1}]}
    assert run(doc, []) is doc
    assert run(doc, [("x", "[gt]:5"), ("sort_vals", "[asc]:x")]) is doc
    assert run(doc, [("page", "1"), ("page_size", "10000")]) is doc
    with pytest.raises(PageNotFound):
        run(doc, [("page", "2")])
