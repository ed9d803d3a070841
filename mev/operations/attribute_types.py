"""Attribute types of operation specs (api-contract §4.2): spec checks and value cleaning.

Each type is a small class behind one interface (`AttributeType`) and is found by name through
`get_attribute_type`, so adding a type is adding a class. Nothing here touches the database: for
resource types `clean` checks only the UUID shape; ownership, type and workspace membership are the
caller's job (see `mev.operations.spec.validate_inputs`).
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

INFINITY_MARKER = "++inf++"
NEGATIVE_INFINITY_MARKER = "--inf--"
MAX_IDENTIFIER_LENGTH = 100
MAX_UNRESTRICTED_LENGTH = 1000
_IDENTIFIER_PATTERN = re.compile(r"[A-Za-z0-9._:\-]+")

# A set of known resource-type codes, or a predicate answering "is this code known?".
ResourceTypeLookup = Collection[str] | Callable[[str], bool]


@dataclass(frozen=True)
class SpecProblem:
    """One problem in a spec document, located by a dotted key path."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class SpecError(Exception):
    """A spec (or part of one) is malformed. Carries every problem found, each with its key path."""

    def __init__(self, problems: Iterable[SpecProblem] | str):
        if isinstance(problems, str):
            problems = [SpecProblem("", problems)]
        self.problems: list[SpecProblem] = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))

    def prefixed(self, prefix: str) -> SpecError:
        """The same problems, with `prefix` put in front of each path (for nesting)."""
        return SpecError(
            SpecProblem(f"{prefix}.{p.path}" if p.path else prefix, p.message) for p in self.problems
        )


class AttributeValueError(ValueError):
    """A value does not satisfy its attribute type. `message` is shown to the user as is."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


def _is_number(value: Any) -> bool:
    """Python's bool is an int subclass; JSON booleans are never numbers here."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_plain_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite_number(value: Any) -> bool:
    return _is_number(value) and math.isfinite(value)


def _is_integer_number(value: Any) -> bool:
    # The client's parseFloat turns "3" into 3, and integral JavaScript numbers may reach us as 3.0.
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value) and value.is_integer()


def number_as_text(value: int | float) -> str:
    """Text form of a number the way the client would have typed it (3.0 -> "3")."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if isinstance(value, int) else repr(value)


def normalize_identifier(value: Any) -> str:
    """Apply the identifier rule (api-contract §3.3); raise AttributeValueError if it fails."""
    if _is_number(value):
        value = number_as_text(value)
    if not isinstance(value, str):
        raise AttributeValueError(f"The value {value!r} was not a string.")
    normalized = value.strip().replace(" ", "_")
    if not normalized:
        raise AttributeValueError("The value was empty.")
    if len(normalized) > MAX_IDENTIFIER_LENGTH:
        raise AttributeValueError(
            f"The value {normalized!r} is longer than {MAX_IDENTIFIER_LENGTH} characters."
        )
    if not _IDENTIFIER_PATTERN.fullmatch(normalized):
        raise AttributeValueError(
            f"The value {normalized!r} contains characters other than letters, numbers, "
            "and the characters '.', '-', '_' and ':'."
        )
    return normalized


def _known_resource_type_predicate(known: ResourceTypeLookup) -> Callable[[str], bool]:
    if callable(known):
        return known
    return lambda code: code in known


class AttributeType:
    """Interface of every attribute type. Subclasses set `name` and override the hooks."""

    name: ClassVar[str]
    is_resource: ClassVar[bool] = False
    # Spec keys, besides `attribute_type` and `default`, that the type reads.
    spec_keys: ClassVar[frozenset[str]] = frozenset()

    def check_spec(
        self, spec: Mapping[str, Any], *, known_resource_types: ResourceTypeLookup = frozenset()
    ) -> None:
        """Raise SpecError (paths relative to the spec) if the spec is unusable for this type."""
        problems = list(self._spec_problems(spec, _known_resource_type_predicate(known_resource_types)))
        if not problems and "default" in spec and spec["default"] is not None:
            try:
                self.clean(spec["default"], spec)
            except AttributeValueError as exc:
                problems.append(SpecProblem("default", f"invalid for {self.name}: {exc.message}"))
        if problems:
            raise SpecError(problems)

    def _spec_problems(
        self, spec: Mapping[str, Any], is_known_resource_type: Callable[[str], bool]
    ) -> Iterable[SpecProblem]:
        return ()

    def clean(self, value: Any, spec: Mapping[str, Any]) -> Any:
        """Return the normalised value, or raise AttributeValueError with a user-facing message."""
        raise NotImplementedError

    def resource_ids(self, cleaned_value: Any) -> list[str]:
        """The resource UUIDs a cleaned value refers to (empty for non-resource types)."""
        return []


_REGISTRY: dict[str, AttributeType] = {}


def register_attribute_type(cls: type[AttributeType]) -> type[AttributeType]:
    """Class decorator adding one instance of `cls` to the registry under `cls.name`."""
    if cls.name in _REGISTRY:
        raise ValueError(f"Attribute type {cls.name} is registered twice.")
    _REGISTRY[cls.name] = cls()
    return cls


def get_attribute_type(name: Any) -> AttributeType:
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise AttributeValueError(f"Could not locate type: {name}.") from None


def attribute_type_names() -> frozenset[str]:
    return frozenset(_REGISTRY)


def check_attribute_spec(spec: Any, *, known_resource_types: ResourceTypeLookup) -> AttributeType:
    """Check a whole `spec` object (including `attribute_type`); return its type on success."""
    if not isinstance(spec, Mapping):
        raise SpecError([SpecProblem("", "must be an object")])
    if "attribute_type" not in spec:
        raise SpecError([SpecProblem("attribute_type", "required")])
    try:
        attribute_type = get_attribute_type(spec["attribute_type"])
    except AttributeValueError as exc:
        raise SpecError([SpecProblem("attribute_type", exc.message)]) from None
    attribute_type.check_spec(spec, known_resource_types=known_resource_types)
    return attribute_type


def clean_value(spec: Mapping[str, Any], value: Any) -> Any:
    """Clean `value` against a spec object; unknown types give "Could not locate type: X."."""
    return get_attribute_type(spec.get("attribute_type")).clean(value, spec)


def clean_typed_attribute(attribute: Any) -> dict[str, Any]:
    """Clean a serialised attribute `{"attribute_type": ..., "value": ...}` (element attributes)."""
    if not isinstance(attribute, Mapping) or "attribute_type" not in attribute:
        raise AttributeValueError(
            'An attribute must be an object with the keys "attribute_type" and "value".'
        )
    attribute_type = get_attribute_type(attribute["attribute_type"])
    if attribute_type.is_resource or isinstance(attribute_type, _ElementType | _ElementSetType):
        raise AttributeValueError(f"{attribute_type.name} cannot be used as an element attribute.")
    spec = {k: v for k, v in attribute.items() if k != "value"}
    try:
        attribute_type.check_spec(spec)
    except SpecError as exc:
        raise AttributeValueError(f"Invalid {attribute_type.name} attribute: {exc}") from None
    return {**spec, "value": attribute_type.clean(attribute.get("value"), spec)}


# ---------------------------------------------------------------------------------------------------
# Numbers


@register_attribute_type
class IntegerType(AttributeType):
    name = "Integer"

    def clean(self, value: Any, spec: Mapping[str, Any]) -> int:
        if not _is_integer_number(value):
            raise AttributeValueError(f"The value {value!r} is not an integer.")
        value = int(value)
        self._check_range(value, spec)
        return value

    def _check_range(self, value: int, spec: Mapping[str, Any]) -> None:
        pass


@register_attribute_type
class PositiveIntegerType(IntegerType):
    name = "PositiveInteger"

    def _check_range(self, value: int, spec: Mapping[str, Any]) -> None:
        if value <= 0:
            raise AttributeValueError(f"The value {value} is not a positive integer.")


@register_attribute_type
class NonNegativeIntegerType(IntegerType):
    name = "NonNegativeInteger"

    def _check_range(self, value: int, spec: Mapping[str, Any]) -> None:
        if value < 0:
            raise AttributeValueError(f"The value {value} is negative.")


def _bounds_problems(spec: Mapping[str, Any], type_name: str, accepts: Callable[[Any], bool], kind: str):
    for key in ("min", "max"):
        if key not in spec:
            yield SpecProblem(key, f"required for {type_name}")
        elif not accepts(spec[key]):
            yield SpecProblem(key, f"must be {kind} for {type_name}")
    if all(key in spec and accepts(spec[key]) for key in ("min", "max")) and spec["min"] > spec["max"]:
        yield SpecProblem("min", f"greater than max ({spec['min']} > {spec['max']})")


def _check_bounds(value: float, spec: Mapping[str, Any]) -> None:
    if not spec["min"] <= value <= spec["max"]:
        raise AttributeValueError(
            f"The value {value} is not within the bounds of [{spec['min']}, {spec['max']}]."
        )


@register_attribute_type
class BoundedIntegerType(IntegerType):
    name = "BoundedInteger"
    spec_keys = frozenset({"min", "max"})

    def _spec_problems(self, spec, is_known_resource_type):
        return _bounds_problems(spec, self.name, _is_plain_int, "an integer")

    def _check_range(self, value: int, spec: Mapping[str, Any]) -> None:
        _check_bounds(value, spec)


@register_attribute_type
class FloatType(AttributeType):
    name = "Float"
    # Which infinity tokens the type accepts; they are returned unchanged (JSON has no infinity).
    infinity_markers: ClassVar[frozenset[str]] = frozenset({INFINITY_MARKER, NEGATIVE_INFINITY_MARKER})

    def clean(self, value: Any, spec: Mapping[str, Any]) -> float | str:
        if isinstance(value, str) and value in self.infinity_markers:
            return value
        if not _is_number(value) or not math.isfinite(value):
            raise AttributeValueError(f"The value {value!r} is not a number.")
        value = float(value)
        self._check_range(value, spec)
        return value

    def _check_range(self, value: float, spec: Mapping[str, Any]) -> None:
        pass


@register_attribute_type
class PositiveFloatType(FloatType):
    name = "PositiveFloat"
    infinity_markers = frozenset({INFINITY_MARKER})

    def _check_range(self, value: float, spec: Mapping[str, Any]) -> None:
        if value <= 0:
            raise AttributeValueError(f"The value {value} is not a positive number.")


@register_attribute_type
class NonNegativeFloatType(FloatType):
    name = "NonNegativeFloat"
    infinity_markers = frozenset({INFINITY_MARKER})

    def _check_range(self, value: float, spec: Mapping[str, Any]) -> None:
        if value < 0:
            raise AttributeValueError(f"The value {value} is negative.")


@register_attribute_type
class BoundedFloatType(FloatType):
    name = "BoundedFloat"
    infinity_markers = frozenset()
    spec_keys = frozenset({"min", "max"})

    def _spec_problems(self, spec, is_known_resource_type):
        return _bounds_problems(spec, self.name, _is_finite_number, "a finite number")

    def _check_range(self, value: float, spec: Mapping[str, Any]) -> None:
        _check_bounds(value, spec)


# ---------------------------------------------------------------------------------------------------
# Strings and booleans


@register_attribute_type
class StringType(AttributeType):
    name = "String"

    def clean(self, value: Any, spec: Mapping[str, Any]) -> str:
        return normalize_identifier(value)


@register_attribute_type
class UnrestrictedStringType(AttributeType):
    name = "UnrestrictedString"

    def clean(self, value: Any, spec: Mapping[str, Any]) -> str:
        if _is_number(value):
            value = number_as_text(value)
        if not isinstance(value, str):
            raise AttributeValueError(f"The value {value!r} was not a string.")
        if len(value) > MAX_UNRESTRICTED_LENGTH:
            raise AttributeValueError(f"The value is longer than {MAX_UNRESTRICTED_LENGTH} characters.")
        return value


@register_attribute_type
class BooleanType(AttributeType):
    name = "Boolean"
    _TEXT = {"true": True, "false": False}

    def clean(self, value: Any, spec: Mapping[str, Any]) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in self._TEXT:
            return self._TEXT[value.strip().lower()]
        raise AttributeValueError(f"The value {value!r} is not a boolean (true/false or 0/1).")


# ---------------------------------------------------------------------------------------------------
# Options


def _many_problem(spec: Mapping[str, Any], *, required: bool) -> Iterable[SpecProblem]:
    if "many" not in spec:
        if required:
            yield SpecProblem("many", "required (true or false)")
    elif not isinstance(spec["many"], bool):
        yield SpecProblem("many", "must be true or false")


def _as_list(value: Any) -> list[Any]:
    """The client collapses a one-element list to its element; accept a scalar as a list of one."""
    return value if isinstance(value, list) else [value]


class _OptionType(AttributeType):
    spec_keys = frozenset({"options", "many"})
    option_kind: ClassVar[str]

    def _is_valid_option(self, option: Any) -> bool:
        raise NotImplementedError

    def _spec_problems(self, spec, is_known_resource_type):
        options = spec.get("options")
        if "options" not in spec:
            yield SpecProblem("options", f"required for {self.name}")
        elif not isinstance(options, list) or not options:
            yield SpecProblem("options", "must be a non-empty list")
        else:
            for index, option in enumerate(options):
                if not self._is_valid_option(option):
                    yield SpecProblem(f"options.{index}", f"must be {self.option_kind} for {self.name}")
        yield from _many_problem(spec, required=False)

    def _match(self, value: Any, options: list[Any]) -> Any:
        for option in options:
            if _option_equals(option, value):
                return option
        shown = ", ".join(str(o) for o in options)
        raise AttributeValueError(f"The value {value!r} is not among the valid options: {shown}.")

    def clean(self, value: Any, spec: Mapping[str, Any]) -> Any:
        options = spec["options"]
        if spec.get("many") is True:
            values = _as_list(value)
            if not values:
                raise AttributeValueError("Choose at least one option.")
            return [self._match(v, options) for v in values]
        if isinstance(value, list):
            raise AttributeValueError("Only one option may be chosen.")
        return self._match(value, options)


def _option_equals(option: Any, value: Any) -> bool:
    # The client may send "0.5" as 0.5 and "10" as 10, so compare numbers numerically and
    # numbers against string options by their text form. Booleans never match.
    if isinstance(value, bool) or isinstance(option, bool):
        return False
    if _is_number(option) and _is_number(value):
        return option == value
    if isinstance(option, str) and _is_number(value):
        return option.strip() == number_as_text(value)
    if isinstance(option, str) and isinstance(value, str):
        return option == value or option.strip() == value.strip()
    return False


@register_attribute_type
class OptionStringType(_OptionType):
    name = "OptionString"
    option_kind = "a string"

    def _is_valid_option(self, option: Any) -> bool:
        return isinstance(option, str)


@register_attribute_type
class IntegerOptionType(_OptionType):
    name = "IntegerOption"
    option_kind = "an integer"

    def _is_valid_option(self, option: Any) -> bool:
        return isinstance(option, int) and not isinstance(option, bool)


@register_attribute_type
class FloatOptionType(_OptionType):
    name = "FloatOption"
    option_kind = "a number"

    def _is_valid_option(self, option: Any) -> bool:
        return _is_number(option) and math.isfinite(option)


@register_attribute_type
class MixedOptionType(_OptionType):
    name = "MixedOption"
    option_kind = "a string or a number"

    def _is_valid_option(self, option: Any) -> bool:
        return isinstance(option, str) or (_is_number(option) and math.isfinite(option))


# ---------------------------------------------------------------------------------------------------
# Lists


class _ListType(AttributeType):
    element_type: ClassVar[type[AttributeType]]

    def clean(self, value: Any, spec: Mapping[str, Any]) -> list[Any]:
        element_type = self.element_type()
        cleaned = []
        for index, item in enumerate(_as_list(value)):
            try:
                cleaned.append(element_type.clean(item, spec))
            except AttributeValueError as exc:
                raise AttributeValueError(f"Item {index + 1} of the list: {exc.message}") from None
        return cleaned


@register_attribute_type
class StringListType(_ListType):
    name = "StringList"
    element_type = StringType


@register_attribute_type
class UnrestrictedStringListType(_ListType):
    name = "UnrestrictedStringList"
    element_type = UnrestrictedStringType


@register_attribute_type
class BoundedIntegerListType(_ListType):
    name = "BoundedIntegerList"
    element_type = BoundedIntegerType
    spec_keys = BoundedIntegerType.spec_keys

    def _spec_problems(self, spec, is_known_resource_type):
        return _bounds_problems(spec, self.name, _is_plain_int, "an integer")


@register_attribute_type
class BoundedFloatListType(_ListType):
    name = "BoundedFloatList"
    element_type = BoundedFloatType
    spec_keys = BoundedFloatType.spec_keys

    def _spec_problems(self, spec, is_known_resource_type):
        return _bounds_problems(spec, self.name, _is_finite_number, "a finite number")


# ---------------------------------------------------------------------------------------------------
# Resources


def clean_uuid(value: Any) -> str:
    """Return the canonical (lower-case, hyphenated) form of a UUID string."""
    if isinstance(value, str):
        try:
            parsed = uuid.UUID(value.strip())
        except ValueError:
            parsed = None
        if parsed is not None and len(value.strip()) == 36:
            return str(parsed)
    raise AttributeValueError(f"The value {value!r} is not a valid resource identifier (UUID).")


class _ResourceType(AttributeType):
    is_resource = True

    def _spec_problems(self, spec, is_known_resource_type):
        yield from self._type_code_problems(spec, is_known_resource_type)
        yield from _many_problem(spec, required=True)

    def _type_code_problems(self, spec, is_known_resource_type):
        if "resource_type" not in spec:
            yield SpecProblem("resource_type", f"required for {self.name}")
        elif not isinstance(spec["resource_type"], str) or not is_known_resource_type(spec["resource_type"]):
            yield SpecProblem("resource_type", f"unknown resource type: {spec['resource_type']!r}")

    def clean(self, value: Any, spec: Mapping[str, Any]) -> str | list[str]:
        if spec.get("many") is True:
            values = _as_list(value)
            if not values:
                raise AttributeValueError("Choose at least one file.")
            cleaned = [clean_uuid(v) for v in values]
            if len(set(cleaned)) != len(cleaned):
                raise AttributeValueError("The same file was chosen more than once.")
            return cleaned
        if isinstance(value, list):
            raise AttributeValueError("Only one file may be chosen for this input.")
        return clean_uuid(value)

    def resource_ids(self, cleaned_value: Any) -> list[str]:
        return list(_as_list(cleaned_value))


@register_attribute_type
class DataResourceType(_ResourceType):
    name = "DataResource"
    spec_keys = frozenset({"resource_type", "many"})


@register_attribute_type
class OperationDataResourceType(_ResourceType):
    name = "OperationDataResource"
    spec_keys = frozenset({"resource_type", "many"})


@register_attribute_type
class VariableDataResourceType(_ResourceType):
    name = "VariableDataResource"
    spec_keys = frozenset({"resource_types", "many"})

    def _type_code_problems(self, spec, is_known_resource_type):
        codes = spec.get("resource_types")
        if "resource_types" not in spec:
            yield SpecProblem("resource_types", f"required for {self.name}")
        elif not isinstance(codes, list) or not codes:
            yield SpecProblem("resource_types", "must be a non-empty list of resource type codes")
        else:
            for index, code in enumerate(codes):
                if not isinstance(code, str) or not is_known_resource_type(code):
                    yield SpecProblem(f"resource_types.{index}", f"unknown resource type: {code!r}")


# ---------------------------------------------------------------------------------------------------
# Elements and element sets


class _ElementType(AttributeType):
    def clean(self, value: Any, spec: Mapping[str, Any]) -> dict[str, Any]:
        return clean_element(value)


def clean_element(value: Any) -> dict[str, Any]:
    """Clean an element `{id, attributes?}`; other keys are kept as sent."""
    if not isinstance(value, Mapping):
        raise AttributeValueError('An element must be an object with an "id".')
    if "id" not in value:
        raise AttributeValueError('An element is missing its "id".')
    try:
        element_id = normalize_identifier(value["id"])
    except AttributeValueError as exc:
        raise AttributeValueError(f"Invalid element id: {exc.message}") from None
    cleaned = {**value, "id": element_id}
    attributes = value.get("attributes")
    if attributes is not None:
        if not isinstance(attributes, Mapping):
            raise AttributeValueError(f'The "attributes" of element {element_id} must be an object.')
        cleaned_attributes = {}
        for attribute_name, attribute in attributes.items():
            try:
                cleaned_attributes[attribute_name] = clean_typed_attribute(attribute)
            except AttributeValueError as exc:
                raise AttributeValueError(
                    f"Attribute {attribute_name!r} of element {element_id}: {exc.message}"
                ) from None
        cleaned["attributes"] = cleaned_attributes
    return cleaned


@register_attribute_type
class ObservationType(_ElementType):
    name = "Observation"


@register_attribute_type
class FeatureType(_ElementType):
    name = "Feature"


class _ElementSetType(AttributeType):
    def clean(self, value: Any, spec: Mapping[str, Any]) -> dict[str, Any]:
        # Extra keys the client sends (name, type, color, multiple) are kept: viewers read `name`.
        if not isinstance(value, Mapping):
            raise AttributeValueError('A set must be an object with an "elements" list.')
        elements = value.get("elements")
        if not isinstance(elements, list):
            raise AttributeValueError('A set must have an "elements" list.')
        cleaned_elements = []
        seen: set[str] = set()
        for element in elements:
            cleaned = clean_element(element)
            if cleaned["id"] in seen:
                raise AttributeValueError(f"The set contains the id {cleaned['id']} more than once.")
            seen.add(cleaned["id"])
            cleaned_elements.append(cleaned)
        return {**value, "elements": cleaned_elements}


@register_attribute_type
class ObservationSetType(_ElementSetType):
    name = "ObservationSet"


@register_attribute_type
class FeatureSetType(_ElementSetType):
    name = "FeatureSet"
