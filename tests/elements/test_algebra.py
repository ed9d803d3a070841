"""Set algebra on element sets (api-contract §2.7) and the conflict-checked element union."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mev.elements.algebra import (
    DIFFERENCE_SETS_MESSAGE,
    MIN_SETS_MESSAGE,
    SetOperationError,
    merge_elements_union,
    set_difference,
    set_difference_of,
    set_intersection,
    set_union,
)


def element(element_id, **attributes):
    return {
        "id": element_id,
        "attributes": {k: {"attribute_type": "String", "value": v} for k, v in attributes.items()},
    }


def ids(elements):
    return [e["id"] for e in elements]


A = {"elements": [element("s1", group="x"), element("s2"), element("s3", group="y")], "name": "A"}
B = {"elements": [{"id": "s3"}, {"id": "s4"}, {"id": "s2", "extra": True}], "color": "red"}


def test_intersection_merges_attributes_and_sorts():
    assert set_intersection([A, B]) == [element("s2"), element("s3", group="y")]


def test_union_merges_attributes_and_sorts():
    result = set_union([B, A])
    assert ids(result) == ["s1", "s2", "s3", "s4"]
    assert result[0] == element("s1", group="x")
    assert result[3] == {"id": "s4", "attributes": {}}


def test_difference_is_first_minus_second():
    assert set_difference(A, B) == [element("s1", group="x")]
    assert set_difference(B, A) == [{"id": "s4", "attributes": {}}]
    assert set_difference_of([A, B]) == [element("s1", group="x")]


@pytest.mark.parametrize("operation", [set_intersection, set_union, set_difference_of])
@pytest.mark.parametrize("sets", [[], [A]])
def test_fewer_than_two_sets(operation, sets):
    with pytest.raises(SetOperationError) as info:
        operation(sets)
    assert info.value.message == MIN_SETS_MESSAGE


def test_difference_takes_exactly_two_sets():
    with pytest.raises(SetOperationError) as info:
        set_difference_of([A, B, A])
    assert info.value.message == DIFFERENCE_SETS_MESSAGE


def test_intersection_of_three_sets():
    c = {"elements": [{"id": "s3"}]}
    assert ids(set_intersection([A, B, c])) == ["s3"]


def test_conflicting_attributes_are_an_error_naming_the_id():
    other = {"elements": [element("s1", group="z")]}
    for operation in (set_intersection, set_union):
        with pytest.raises(SetOperationError) as info:
            operation([A, other])
        assert "conflict in the attributes for s1" in info.value.message
        assert info.value.field == "error"


def test_ignore_attributes_compares_ids_only_first_value_wins():
    other = {"elements": [element("s1", group="z", extra="e")]}
    assert set_intersection([A, other], ignore_attributes=True) == [element("s1", group="x", extra="e")]
    assert set_union([other, A], ignore_attributes=True)[0] == element("s1", group="z", extra="e")


@pytest.mark.parametrize(
    ("sets", "fragment"),
    [
        ([A, {"elements": [{"id": "a"}, {"id": "a"}]}], "Set 2 contains the id a more than once."),
        ([A, {"elements": "s1"}], 'Set 2: a set must be an object with an "elements" list.'),
        ([A, ["s1"]], 'Set 2: a set must be an object with an "elements" list.'),
        ([{"elements": ["s1"]}, A], 'Set 1: each element must be an object with an "id".'),
        ([{"elements": [{"id": 3}]}, A], 'Set 1: each element needs a non-empty string "id".'),
        ([{"elements": [{"name": "x"}]}, A], 'Set 1: each element needs a non-empty string "id".'),
        (
            [{"elements": [{"id": "a", "attributes": [1]}]}, A],
            'the "attributes" of element a must be an object',
        ),
        ("AB", '"sets" must be a list of sets.'),
        (None, '"sets" must be a list of sets.'),
    ],
)
def test_malformed_sets(sets, fragment):
    with pytest.raises(SetOperationError) as info:
        set_union(sets)
    assert fragment in info.value.message
    assert info.value.field == "sets"


def test_merge_elements_union_detects_conflicts():
    merged = merge_elements_union([[element("b", x="1")], [element("a"), element("b", y="2")], []])
    assert merged == [element("a"), element("b", x="1", y="2")]
    assert merge_elements_union([]) == []
    with pytest.raises(SetOperationError) as info:
        merge_elements_union([[element("b", x="1")], [element("b", x="2")]])
    assert "conflict in the attributes for b" in info.value.message
    assert info.value.field == "error"


# ---------------------------------------------------------------------------------------------------
# Properties (on ids; attributes left out so that no conflicts arise)

id_sets = st.sets(st.text(alphabet="abcdefgh", min_size=1, max_size=3), max_size=12)


def as_set(element_ids):
    return {"elements": [{"id": i} for i in sorted(element_ids, reverse=True)]}


def id_set(elements):
    return set(ids(elements))


@given(id_sets, id_sets)
def test_union_and_intersection_commute(a, b):
    assert set_union([as_set(a), as_set(b)]) == set_union([as_set(b), as_set(a)])
    assert set_intersection([as_set(a), as_set(b)]) == set_intersection([as_set(b), as_set(a)])


@given(id_sets, id_sets)
def test_difference_is_disjoint_from_the_second_set(a, b):
    difference = id_set(set_difference(as_set(a), as_set(b)))
    assert difference & b == set()
    assert difference == a - b


@given(id_sets, id_sets)
def test_inclusion_exclusion(a, b):
    union = set_union([as_set(a), as_set(b)])
    intersection = set_intersection([as_set(a), as_set(b)])
    assert len(union) == len(a) + len(b) - len(intersection)
    assert id_set(union) == a | b and id_set(intersection) == a & b


@given(id_sets)
def test_idempotence(a):
    expected = [{"id": i, "attributes": {}} for i in sorted(a)]
    assert set_union([as_set(a), as_set(a)]) == expected
    assert set_intersection([as_set(a), as_set(a)]) == expected
    assert set_difference(as_set(a), as_set(a)) == []


@given(id_sets, id_sets)
def test_results_are_sorted_and_unique(a, b):
    for result in (
        set_union([as_set(a), as_set(b)]),
        set_intersection([as_set(a), as_set(b)]),
        set_difference(as_set(a), as_set(b)),
    ):
        assert ids(result) == sorted(set(ids(result)))


@given(st.lists(id_sets, max_size=4))
def test_merge_elements_union_matches_set_union(lists):
    merged = merge_elements_union([[{"id": i} for i in s] for s in lists])
    assert ids(merged) == sorted(set().union(*lists))
