"""Converters (api-contract §4.3): cleaned input values to engine values, engine outputs to stored values.

A converter is named in the spec by an id. Ours are short dotted ids (`resource.single`,
`element_set.csv`, ...); the original back end's dotted class paths
(`api.converters.data_resource.LocalDockerSingleDataResourceConverter`, ...) are accepted as aliases
through `ORIGINAL_CONVERTER_ALIASES` and resolved by `canonical_converter_id`.

Converters do no I/O of their own: the runner passes `stage(uuid) -> str` that makes a resource
available (a local staged path for the local runners, a storage URI for remote engines), and output
files come back as `OutputFile` descriptions that the caller turns into Resources.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from mev.operations.attribute_types import (
    AttributeValueError,
    SpecError,
    clean_value,
    normalize_identifier,
)

Stage = Callable[[str], str]
INPUT_MAPPING_FILE = "input_mapping.json"
RESOURCE_TYPE_DELIMITER = ":::"


class ConversionError(Exception):
    """A value could not be converted. `message` is user-facing (it may become an error message)."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class OutputFile:
    """A file an engine produced, to be stored as a Resource validated as `resource_type`."""

    path: str
    resource_type: str


@dataclass(frozen=True)
class OutputValue:
    """A converted output.

    For non-file outputs `value` is the value to store and `files` is empty. For file outputs
    `files` lists what to store; the caller stores each file and records the new resource UUID
    (a list of UUIDs when `many`, else the single UUID) as the output value. An absent optional
    output is `OutputValue(value=None)`.
    """

    value: Any = None
    files: tuple[OutputFile, ...] = ()
    many: bool = False

    @property
    def is_file_output(self) -> bool:
        return bool(self.files)


@dataclass(frozen=True)
class InputContext:
    """What a converter may need besides the value: runner callbacks and the bundle directory."""

    stage: Stage
    resource_type_of: Callable[[str], str] | None = None
    bundle_dir: Path | None = None


class Converter:
    """Interface: subclasses implement whichever direction they support."""

    converter_id: ClassVar[str]
    # Attribute types the converter can handle; None means any type.
    accepts: ClassVar[frozenset[str] | None] = None

    def convert_input(self, value: Any, context: InputContext) -> Any:
        raise ConversionError(f"The converter {self.converter_id} cannot convert inputs.")

    def convert_output(self, raw: Any, output_spec: Mapping[str, Any]) -> OutputValue:
        raise ConversionError(f"The converter {self.converter_id} cannot convert outputs.")


_REGISTRY: dict[str, Converter] = {}


def register_converter(cls: type[Converter]) -> type[Converter]:
    if cls.converter_id in _REGISTRY:
        raise ValueError(f"Converter {cls.converter_id} is registered twice.")
    _REGISTRY[cls.converter_id] = cls()
    return cls


def _output_attribute_spec(output_spec: Mapping[str, Any]) -> Mapping[str, Any]:
    # Accept either an output definition {required, converter, spec} or its inner `spec`.
    inner = output_spec.get("spec")
    return inner if isinstance(inner, Mapping) else output_spec


def _clean_output(raw: Any, output_spec: Mapping[str, Any]) -> Any:
    try:
        return clean_value(_output_attribute_spec(output_spec), raw)
    except AttributeValueError as exc:
        raise ConversionError(exc.message) from None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


RESOURCE_TYPES = frozenset({"DataResource", "VariableDataResource", "OperationDataResource"})
ELEMENT_SET_TYPES = frozenset({"ObservationSet", "FeatureSet"})


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


# ---------------------------------------------------------------------------------------------------
# Simple values


@register_converter
class ValueConverter(Converter):
    """The cleaned value itself; on output, the raw value checked against the output's type."""

    converter_id = "value"

    def convert_input(self, value: Any, context: InputContext) -> Any:
        return value

    def convert_output(self, raw: Any, output_spec: Mapping[str, Any]) -> OutputValue:
        return OutputValue(value=_clean_output(raw, output_spec))


@register_converter
class IdentifierStringConverter(ValueConverter):
    """A string normalised by the identifier rule (the original's StringConverter did this too)."""

    converter_id = "string.identifier"

    def convert_input(self, value: Any, context: InputContext) -> str:
        try:
            return normalize_identifier(value)
        except AttributeValueError as exc:
            raise ConversionError(exc.message) from None


@register_converter
class BooleanAsIntegerConverter(Converter):
    converter_id = "boolean.integer"
    accepts = frozenset({"Boolean"})

    def convert_input(self, value: Any, context: InputContext) -> int:
        if not isinstance(value, bool):
            raise ConversionError(f"Expected a boolean, got {value!r}.")
        return int(value)

    def convert_output(self, raw: Any, output_spec: Mapping[str, Any]) -> OutputValue:
        return OutputValue(value=int(_clean_output(raw, output_spec)))


@register_converter
class BooleanAsTextConverter(Converter):
    converter_id = "boolean.text"
    accepts = frozenset({"Boolean"})

    def convert_input(self, value: Any, context: InputContext) -> str:
        if not isinstance(value, bool):
            raise ConversionError(f"Expected a boolean, got {value!r}.")
        return "true" if value else "false"


# ---------------------------------------------------------------------------------------------------
# Lists


@register_converter
class ListConverter(ValueConverter):
    """A JSON list (a scalar becomes a list of one)."""

    converter_id = "list.json"

    def convert_input(self, value: Any, context: InputContext) -> list[Any]:
        return list(_as_list(value))


@register_converter
class CommaJoinedListConverter(Converter):
    converter_id = "list.csv"
    delimiter: ClassVar[str] = ","

    def _item(self, item: Any) -> str:
        return _text(item)

    def convert_input(self, value: Any, context: InputContext) -> str:
        return self.delimiter.join(self._item(item) for item in _as_list(value))


@register_converter
class SpaceJoinedListConverter(CommaJoinedListConverter):
    converter_id = "list.space"
    delimiter = " "


@register_converter
class NormalizedCommaJoinedListConverter(CommaJoinedListConverter):
    converter_id = "list.identifier_csv"

    def _item(self, item: Any) -> str:
        try:
            return normalize_identifier(item)
        except AttributeValueError as exc:
            raise ConversionError(exc.message) from None


# ---------------------------------------------------------------------------------------------------
# Element sets


def _element_ids(value: Any) -> list[str]:
    if not isinstance(value, Mapping) or not isinstance(value.get("elements"), list):
        raise ConversionError('Expected a set object with an "elements" list.')
    try:
        return [element["id"] for element in value["elements"]]
    except (TypeError, KeyError):
        raise ConversionError('Every element of a set needs an "id".') from None


@register_converter
class ElementSetCsvConverter(Converter):
    converter_id = "element_set.csv"
    accepts = ELEMENT_SET_TYPES

    def convert_input(self, value: Any, context: InputContext) -> str:
        return ",".join(_element_ids(value))


@register_converter
class ElementSetListConverter(Converter):
    converter_id = "element_set.list"
    accepts = ELEMENT_SET_TYPES

    def convert_input(self, value: Any, context: InputContext) -> list[str]:
        return _element_ids(value)


@register_converter
class ElementSetObjectConverter(ValueConverter):
    """The whole set object, as the local tool contract passes it."""

    converter_id = "element_set.object"
    accepts = ELEMENT_SET_TYPES

    def convert_input(self, value: Any, context: InputContext) -> Any:
        _element_ids(value)
        return value


# ---------------------------------------------------------------------------------------------------
# Data resources


def _output_files_fixed_type(raw: Any, spec: Mapping[str, Any]) -> list[OutputFile]:
    paths = _as_list(raw)
    for path in paths:
        if not isinstance(path, str) or not path:
            raise ConversionError(f"Expected a file path, got {path!r}.")
    return [OutputFile(path=p, resource_type=spec["resource_type"]) for p in paths]


def _output_files_variable_type(raw: Any, spec: Mapping[str, Any]) -> list[OutputFile]:
    files = []
    allowed = spec.get("resource_types") or []
    for item in _as_list(raw):
        if not isinstance(item, Mapping) or not isinstance(item.get("path"), str):
            raise ConversionError(f'Expected an object {{"path": ..., "resource_type": ...}}, got {item!r}.')
        resource_type = item.get("resource_type")
        if resource_type not in allowed:
            raise ConversionError(
                f"The output resource type {resource_type!r} is not one of the permitted types: "
                f"{', '.join(allowed)}."
            )
        files.append(OutputFile(path=item["path"], resource_type=resource_type))
    return files


# How each file-valued attribute type reports its files (api-contract §4.2, §4.4).
_OUTPUT_FILE_READERS: dict[str, Callable[[Any, Mapping[str, Any]], list[OutputFile]]] = {
    "DataResource": _output_files_fixed_type,
    "OperationDataResource": _output_files_fixed_type,
    "VariableDataResource": _output_files_variable_type,
}


class _ResourceConverter(Converter):
    accepts = RESOURCE_TYPES

    def _stage_all(self, value: Any, context: InputContext) -> list[str]:
        return [context.stage(resource_id) for resource_id in _as_list(value)]

    def convert_output(self, raw: Any, output_spec: Mapping[str, Any]) -> OutputValue:
        spec = _output_attribute_spec(output_spec)
        reader = _OUTPUT_FILE_READERS.get(spec.get("attribute_type"))
        if reader is None:
            raise ConversionError(
                f"The converter {self.converter_id} only converts file outputs, "
                f"not {spec.get('attribute_type')}."
            )
        many = spec.get("many") is True
        if many and not isinstance(raw, list):
            raise ConversionError("Expected a list of files for an output with many files.")
        if not many and isinstance(raw, list):
            raise ConversionError("Expected a single file, got a list.")
        return OutputValue(files=tuple(reader(raw, spec)), many=many)


@register_converter
class SingleResourceConverter(_ResourceConverter):
    """The staged path or URI (a list of them if the input holds several)."""

    converter_id = "resource.single"

    def convert_input(self, value: Any, context: InputContext) -> str | list[str]:
        staged = self._stage_all(value, context)
        return staged if isinstance(value, list) else staged[0]


@register_converter
class ResourceListConverter(_ResourceConverter):
    converter_id = "resource.list"

    def convert_input(self, value: Any, context: InputContext) -> list[str]:
        return self._stage_all(value, context)


@register_converter
class ResourceCsvConverter(_ResourceConverter):
    converter_id = "resource.csv"

    def convert_input(self, value: Any, context: InputContext) -> str:
        return ",".join(self._stage_all(value, context))


@register_converter
class ResourceSpaceJoinedConverter(_ResourceConverter):
    converter_id = "resource.space"

    def convert_input(self, value: Any, context: InputContext) -> str:
        return " ".join(self._stage_all(value, context))


@register_converter
class ResourceWithTypeConverter(_ResourceConverter):
    """`<path>:::<resource type>` so a tool can echo the input's type on its output."""

    converter_id = "resource.single_with_type"

    def convert_input(self, value: Any, context: InputContext) -> str:
        if isinstance(value, list):
            raise ConversionError("This converter takes a single file.")
        if context.resource_type_of is None:
            raise ConversionError("The runner did not supply resource types for this converter.")
        return f"{context.stage(value)}{RESOURCE_TYPE_DELIMITER}{context.resource_type_of(value)}"


# ---------------------------------------------------------------------------------------------------
# JSON outputs and bundled mappings


@register_converter
class JsonConverter(Converter):
    converter_id = "json"

    def convert_input(self, value: Any, context: InputContext) -> str:
        return json.dumps(value)

    def convert_output(self, raw: Any, output_spec: Mapping[str, Any]) -> OutputValue:
        if not isinstance(raw, str):
            # outputs.json is already parsed by the runner; a non-string is the structure itself.
            return OutputValue(value=raw)
        try:
            return OutputValue(value=json.loads(raw))
        except json.JSONDecodeError as exc:
            raise ConversionError(f"The output was not valid JSON: {exc.msg}.") from None


@register_converter
class FileMappingConverter(Converter):
    """Looks the value up in the bundle's `input_mapping.json` (e.g. a genome name to index files)."""

    converter_id = "mapping.file"

    def convert_input(self, value: Any, context: InputContext) -> Any:
        if context.bundle_dir is None:
            raise ConversionError("No operation bundle is available to look up the input mapping.")
        mapping_path = context.bundle_dir / INPUT_MAPPING_FILE
        try:
            mapping = json.loads(mapping_path.read_text())
        except FileNotFoundError:
            raise ConversionError(f"The operation has no {INPUT_MAPPING_FILE}.") from None
        except json.JSONDecodeError:
            raise ConversionError(f"The operation's {INPUT_MAPPING_FILE} is not valid JSON.") from None
        key = value if isinstance(value, str) else _text(value)
        if not isinstance(mapping, Mapping) or key not in mapping:
            raise ConversionError(f"No mapping found for {key!r}.")
        return mapping[key]


# ---------------------------------------------------------------------------------------------------
# The original back end's converter paths (facts from its source; implementations are ours).

_ORIGINAL_PREFIX = "api.converters."
ORIGINAL_CONVERTER_ALIASES: dict[str, str] = {
    f"{_ORIGINAL_PREFIX}{name}": converter_id
    for converter_id, names in {
        "string.identifier": [
            "basic_attributes.StringConverter",
            "basic_attributes.NormalizingStringConverter",
        ],
        "value": [
            "basic_attributes.UnrestrictedStringConverter",
            "basic_attributes.IntegerConverter",
            "basic_attributes.FloatConverter",
            "basic_attributes.BoundedFloatAttributeConverter",
            "output_converters.LocalDockerOutputConverter",
            "output_converters.RemoteCromwellOutputConverter",
        ],
        "boolean.integer": ["basic_attributes.BooleanAsIntegerConverter"],
        "list.json": [
            "basic_attributes.StringListConverter",
            "basic_attributes.UnrestrictedStringListConverter",
        ],
        "list.csv": [
            "basic_attributes.StringListToCsvConverter",
            "basic_attributes.UnrestrictedStringListToCsvConverter",
        ],
        "list.identifier_csv": ["basic_attributes.NormalizingListToCsvConverter"],
        "element_set.csv": [
            "element_set.ObservationSetCsvConverter",
            "element_set.FeatureSetCsvConverter",
        ],
        "element_set.list": [
            "element_set.ObservationSetListConverter",
            "element_set.FeatureSetListConverter",
            "element_set.ObservationSetConverter",
            "element_set.FeatureSetConverter",
        ],
        "resource.single": [
            "data_resource.LocalDockerSingleDataResourceConverter",
            "data_resource.LocalDockerSingleVariableDataResourceConverter",
            "data_resource.CromwellSingleDataResourceConverter",
            "data_resource.CromwellSingleVariableDataResourceConverter",
        ],
        "resource.list": [
            "data_resource.LocalDockerMultipleDataResourceConverter",
            "data_resource.LocalDockerMultipleVariableDataResourceConverter",
            "data_resource.CromwellMultipleDataResourceConverter",
            "data_resource.CromwellMultipleVariableDataResourceConverter",
        ],
        "resource.csv": ["data_resource.LocalDockerCsvResourceConverter"],
        "resource.space": ["data_resource.LocalDockerSpaceDelimResourceConverter"],
        "resource.single_with_type": ["data_resource.LocalDockerSingleDataResourceWithTypeConverter"],
        "json": ["json_converters.JsonConverter"],
        "mapping.file": ["mappers.SimpleFileBasedMapConverter"],
    }.items()
    for name in names
}


def converter_ids() -> frozenset[str]:
    return frozenset(_REGISTRY)


def canonical_converter_id(converter_id: Any) -> str:
    """Our id for `converter_id` (ours or an original path); SpecError if it is unknown."""
    if isinstance(converter_id, str):
        if converter_id in _REGISTRY:
            return converter_id
        if converter_id in ORIGINAL_CONVERTER_ALIASES:
            return ORIGINAL_CONVERTER_ALIASES[converter_id]
    raise SpecError(f"unknown converter: {converter_id!r}")


def converter_type_problem(converter_id: str, attribute_type_name: str) -> str | None:
    """Why `converter_id` cannot handle values of `attribute_type_name`, or None if it can."""
    converter = get_converter(converter_id)
    if converter.accepts is None or attribute_type_name in converter.accepts:
        return None
    return (
        f"the converter {converter.converter_id} cannot convert {attribute_type_name} "
        f"(it takes {', '.join(sorted(converter.accepts))})"
    )


def get_converter(converter_id: str) -> Converter:
    return _REGISTRY[canonical_converter_id(converter_id)]


def convert_input(
    converter_id: str,
    value: Any,
    *,
    stage: Stage,
    resource_type_of: Callable[[str], str] | None = None,
    bundle_dir: Path | None = None,
) -> Any:
    """Turn a cleaned input value into what the engine receives. Raises ConversionError."""
    context = InputContext(stage=stage, resource_type_of=resource_type_of, bundle_dir=bundle_dir)
    return get_converter(converter_id).convert_input(value, context)


def convert_output(converter_id: str, raw: Any, *, output_spec: Mapping[str, Any]) -> OutputValue:
    """Turn an engine's output value into an OutputValue. `output_spec` is the output definition
    (`{required, converter, spec}`) or its inner `spec`. Raises ConversionError.

    Absence is handled here so every converter agrees: a missing (None) optional output is
    `OutputValue(None)`, a missing required one is an error.
    """
    if raw is None:
        if output_spec.get("required") is True:
            raise ConversionError("A required output was not produced.")
        return OutputValue(value=None, many=_output_attribute_spec(output_spec).get("many") is True)
    return get_converter(converter_id).convert_output(raw, output_spec)


__all__ = [
    "ConversionError",
    "Converter",
    "InputContext",
    "ORIGINAL_CONVERTER_ALIASES",
    "OutputFile",
    "OutputValue",
    "canonical_converter_id",
    "convert_input",
    "convert_output",
    "converter_ids",
    "converter_type_problem",
    "get_converter",
    "register_converter",
]
