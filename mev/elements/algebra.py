"""Set algebra on observation/feature sets (api-contract §2.7) and the conflict-checked union of elements.

A set is `{"elements": [{"id": ..., "attributes"?: {...}}, ...]}`; other keys of a set or an element
are ignored. Two elements are the same element when their ids are equal. Results are element lists
`[{"id", "attributes"}]` sorted by id, so answers are deterministic.

Attributes of the same element found in several sets are merged key by key. Two different values
for the same attribute key are a conflict (SetOperationError), unless `ignore_attributes` is true:
then only ids are compared and, per attribute key, the value from the first set that has it wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

MIN_SETS_MESSAGE = "Cannot perform set operations with fewer than two sets."
DIFFERENCE_SETS_MESSAGE = "A set difference takes exactly two sets: the first minus the second."

Element = dict[str, Any]


class SetOperationError(Exception):
    """A set operation cannot be done. `field` is the error key the API answers with."""

    def __init__(self, message: str, field: str = "sets"):
        self.message = message
        self.field = field
        super().__init__(message)


def _conflict_message(element_id: str, operation: str, key: str, first: Any, second: Any) -> str:
    return (
        f"When performing {operation}, encountered a conflict in the attributes for {element_id}. "
        f"The attribute {key!r} has the values {first!r} and {second!r}."
    )


def _clean_element(element: Any, where: str) -> Element:
    if not isinstance(element, Mapping):
        raise SetOperationError(f'{where}: each element must be an object with an "id".')
    element_id = element.get("id")
    if not isinstance(element_id, str) or not element_id.strip():
        raise SetOperationError(f'{where}: each element needs a non-empty string "id".')
    attributes = element.get("attributes")
    if attributes is None:
        attributes = {}
    if not isinstance(attributes, Mapping):
        raise SetOperationError(f'{where}: the "attributes" of element {element_id} must be an object.')
    return {"id": element_id, "attributes": dict(attributes)}


def _elements_by_id(element_set: Any, position: int) -> dict[str, Element]:
    where = f"Set {position + 1}"
    if not isinstance(element_set, Mapping) or not isinstance(element_set.get("elements"), list):
        raise SetOperationError(f'{where}: a set must be an object with an "elements" list.')
    by_id: dict[str, Element] = {}
    for raw in element_set["elements"]:
        element = _clean_element(raw, where)
        if element["id"] in by_id:
            raise SetOperationError(f"{where} contains the id {element['id']} more than once.")
        by_id[element["id"]] = element
    return by_id


def _parse_sets(sets: Any) -> list[dict[str, Element]]:
    if not isinstance(sets, Sequence) or isinstance(sets, str | bytes):
        raise SetOperationError('"sets" must be a list of sets.')
    if len(sets) < 2:
        raise SetOperationError(MIN_SETS_MESSAGE)
    return [_elements_by_id(element_set, position) for position, element_set in enumerate(sets)]


def _merge_attributes(
    target: dict[str, Any], incoming: Mapping[str, Any], element_id: str, *, ignore: bool, operation: str
) -> None:
    for key, value in incoming.items():
        if key not in target:
            target[key] = value
        elif target[key] != value and not ignore:
            raise SetOperationError(
                _conflict_message(element_id, operation, key, target[key], value), field="error"
            )


def _merged(element_id: str, versions: Iterable[Element], *, ignore: bool, operation: str) -> Element:
    attributes: dict[str, Any] = {}
    for version in versions:
        _merge_attributes(attributes, version["attributes"], element_id, ignore=ignore, operation=operation)
    return {"id": element_id, "attributes": attributes}


def set_intersection(sets: Any, *, ignore_attributes: bool = False) -> list[Element]:
    """Elements whose id is in every set, with merged attributes."""
    parsed = _parse_sets(sets)
    common = set(parsed[0]).intersection(*parsed[1:])
    return [
        _merged(
            element_id,
            (s[element_id] for s in parsed),
            ignore=ignore_attributes,
            operation="an intersection of the sets",
        )
        for element_id in sorted(common)
    ]


def set_union(sets: Any, *, ignore_attributes: bool = False) -> list[Element]:
    """Elements whose id is in any set, with merged attributes."""
    parsed = _parse_sets(sets)
    all_ids = set().union(*parsed)
    return [
        _merged(
            element_id,
            (s[element_id] for s in parsed if element_id in s),
            ignore=ignore_attributes,
            operation="a union of the sets",
        )
        for element_id in sorted(all_ids)
    ]


def set_difference(a: Any, b: Any, *, ignore_attributes: bool = False) -> list[Element]:
    """Elements of `a` whose id is not in `b`, with `a`'s attributes.

    `ignore_attributes` is accepted for a uniform interface; no attributes are merged here.
    """
    first, second = _elements_by_id(a, 0), _elements_by_id(b, 1)
    return [first[element_id] for element_id in sorted(set(first) - set(second))]


def set_difference_of(sets: Any, *, ignore_attributes: bool = False) -> list[Element]:
    """`set_difference` for the API's `sets` list, which must hold exactly two sets."""
    if isinstance(sets, Sequence) and not isinstance(sets, str | bytes) and len(sets) > 2:
        raise SetOperationError(DIFFERENCE_SETS_MESSAGE)
    _parse_sets(sets)
    return set_difference(sets[0], sets[1], ignore_attributes=ignore_attributes)


def merge_elements_union(element_lists: Iterable[Iterable[Any]]) -> list[Element]:
    """Union of element lists with conflict detection (e.g. a workspace's observations).

    Any number of lists is fine. The same id may appear in several lists (and within one list);
    its attributes are merged, and two different values for one attribute raise SetOperationError
    (field `error`) naming the id.
    """
    merged: dict[str, Element] = {}
    for position, elements in enumerate(element_lists):
        for raw in elements:
            element = _clean_element(raw, f"List {position + 1}")
            target = merged.setdefault(element["id"], {"id": element["id"], "attributes": {}})
            _merge_attributes(
                target["attributes"],
                element["attributes"],
                element["id"],
                ignore=False,
                operation="a union of the sets",
            )
    return [merged[element_id] for element_id in sorted(merged)]
