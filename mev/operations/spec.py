"""Operation spec documents (api-contract §4.1): parsing at ingestion, the stored form, run-time input checks.

Pure Python: callers pass in what would otherwise need the database (known resource-type codes,
the modes that have a runner, a callback that checks each resource an input names).

Decisions the contract leaves open:

- Top-level keys: `name`, `inputs`, `outputs`, `mode` and `workspace_operation` (a JSON boolean) are
  required; `description` is required too, but may be empty. The four keys that ingestion adds
  (`id`, `git_hash`, `repository_url`, `repository_name`) are tolerated and ignored, so a stored
  document can be parsed again; any other top-level key is an error.
- Keys inside an attribute `spec` that its type does not read are ignored (they are kept as is).
- `network` (optional, a JSON boolean, default false) lets a local tool reach the network from its
  sandbox (mev/jobs/runners/sandbox.py). It is not one of the 10 stored keys: the runner reads it from
  the bundle's immutable copy.
- Converter ids are stored in our canonical form (original `api.converters...` paths are mapped).
- The mode's files are only checked when `bundle_dir` is given.
- At run time a required input that is missing but has a spec `default` takes the default.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mev.operations.attribute_types import (
    AttributeType,
    AttributeValueError,
    ResourceTypeLookup,
    SpecError,
    SpecProblem,
    check_attribute_spec,
    get_attribute_type,
)
from mev.operations.converters import canonical_converter_id, converter_type_problem

REQUIRED_INPUT_MESSAGE = "This is a required input field."
REQUIRED_TOP_LEVEL_KEYS = ("name", "description", "inputs", "outputs", "mode", "workspace_operation")
OPTIONAL_TOP_LEVEL_KEYS = frozenset({"network"})
# Added by ingestion; accepted in a source document (e.g. a re-ingested stored one) and ignored.
IGNORED_TOP_LEVEL_KEYS = frozenset({"id", "git_hash", "repository_url", "repository_name"})
INPUT_KEYS = ("name", "description", "required", "converter", "spec")
OUTPUT_KEYS = ("required", "converter", "spec")
STORED_KEYS = (
    "id",
    "name",
    "description",
    "inputs",
    "outputs",
    "mode",
    "repository_url",
    "repository_name",
    "git_hash",
    "workspace_operation",
)
# Engine parameter names: WDL's fully qualified names contain dots (`Dragon.edge_weights`).
_PARAMETER_KEY_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_REQUIRED_FLAG_VALUES: dict[Any, bool] = {"0": False, "1": True}


@dataclass(frozen=True)
class ModeFiles:
    """Files a runner needs in the bundle: every one of `all_of`, and one of `any_of` if given."""

    all_of: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()

    def problems(self, bundle_dir: Path) -> list[str]:
        missing = [
            f"required file {name} is missing" for name in self.all_of if not (bundle_dir / name).is_file()
        ]
        if self.any_of and not any((bundle_dir / name).is_file() for name in self.any_of):
            missing.append(f"one of the files {', '.join(self.any_of)} is required")
        return missing


MODE_REQUIRED_FILES: dict[str, ModeFiles] = {
    "local": ModeFiles(all_of=("main.py",)),
    "local_docker": ModeFiles(all_of=("docker/Dockerfile", "entrypoint.txt")),
    "cromwell": ModeFiles(all_of=("main.wdl",)),
    "wes": ModeFiles(any_of=("main.cwl", "main.wdl")),
    "nf_local": ModeFiles(all_of=("main.nf", "params.json")),
    "nf_batch": ModeFiles(all_of=("main.nf", "params.json")),
}


class _TypedEntry:
    """What inputs and outputs share: `required`, `converter` and the attribute-type `spec`."""

    required: bool
    converter: str
    spec: Mapping[str, Any]

    @property
    def attribute_type(self) -> AttributeType:
        return get_attribute_type(self.spec["attribute_type"])

    def to_document(self) -> dict[str, Any]:
        return {
            "required": self.required,
            "converter": self.converter,
            "spec": copy.deepcopy(dict(self.spec)),
        }


@dataclass(frozen=True)
class InputSpec(_TypedEntry):
    key: str
    name: str
    description: str
    required: bool
    converter: str
    spec: Mapping[str, Any]

    def to_document(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, **super().to_document()}


@dataclass(frozen=True)
class OutputSpec(_TypedEntry):
    key: str
    required: bool
    converter: str
    spec: Mapping[str, Any]


@dataclass(frozen=True)
class OperationSpec:
    name: str
    description: str
    mode: str
    workspace_operation: bool
    inputs: Mapping[str, InputSpec] = field(default_factory=dict)
    outputs: Mapping[str, OutputSpec] = field(default_factory=dict)
    network: bool = False


class _Problems:
    """Collects problems so that every one of them is reported at once."""

    def __init__(self) -> None:
        self.items: list[SpecProblem] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(SpecProblem(path, message))

    def extend(self, error: SpecError, prefix: str) -> None:
        self.items.extend(error.prefixed(prefix).problems)


def _parse_required_flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    return _REQUIRED_FLAG_VALUES.get(value) if isinstance(value, str) else None


def _check_exact_keys(
    item: Mapping[str, Any], expected: tuple[str, ...], path: str, problems: _Problems
) -> None:
    for key in expected:
        if key not in item:
            problems.add(f"{path}.{key}", "required")
    for key in item:
        if key not in expected:
            problems.add(f"{path}.{key}", "unknown key")


def _parse_common(
    item: Mapping[str, Any], path: str, problems: _Problems, known_resource_types: ResourceTypeLookup
) -> tuple[bool, str, Mapping[str, Any]] | None:
    """Check `required`, `converter` and `spec`, shared by inputs and outputs."""
    ok = True
    required = _parse_required_flag(item.get("required"))
    if "required" in item and required is None:
        problems.add(f"{path}.required", 'must be true/false, 0/1 or "0"/"1"')
        ok = False
    converter = None
    if "converter" in item:
        try:
            converter = canonical_converter_id(item["converter"])
        except SpecError as exc:
            problems.extend(exc, f"{path}.converter")
            ok = False
    if "spec" in item:
        try:
            check_attribute_spec(item["spec"], known_resource_types=known_resource_types)
        except SpecError as exc:
            problems.extend(exc, f"{path}.spec")
            ok = False
    if not ok or required is None or converter is None or "spec" not in item:
        return None
    mismatch = converter_type_problem(converter, item["spec"]["attribute_type"])
    if mismatch:
        problems.add(f"{path}.converter", mismatch)
        return None
    return required, converter, copy.deepcopy(item["spec"])


def _parse_entries(
    section: str,
    entries: Any,
    allowed_keys: tuple[str, ...],
    problems: _Problems,
    build: Callable[[str, Mapping[str, Any], str], Any],
) -> dict[str, Any]:
    """The checks every input and output goes through; `build(key, item, path)` adds its own and
    returns the parsed entry, or None when a problem was recorded."""
    parsed: dict[str, Any] = {}
    if not isinstance(entries, Mapping):
        problems.add(section, "must be an object")
        return parsed
    for key, item in entries.items():
        path = f"{section}.{key}"
        if not isinstance(key, str) or not _PARAMETER_KEY_PATTERN.fullmatch(key):
            problems.add(
                path, f"invalid {section[:-1]} key (letters, digits, '_', '.', '-'; not starting with a digit)"
            )
            continue
        if not isinstance(item, Mapping):
            problems.add(path, "must be an object")
            continue
        _check_exact_keys(item, allowed_keys, path, problems)
        entry = build(key, item, path)
        if entry is not None:
            parsed[key] = entry
    return parsed


def _parse_inputs(
    inputs: Any, problems: _Problems, known_resource_types: ResourceTypeLookup
) -> dict[str, InputSpec]:
    def build(key: str, item: Mapping[str, Any], path: str) -> InputSpec | None:
        for text_key in ("name", "description"):
            if text_key in item and not isinstance(item[text_key], str):
                problems.add(f"{path}.{text_key}", "must be a string")
        common = _parse_common(item, path, problems, known_resource_types)
        if (
            common is not None
            and isinstance(item.get("name"), str)
            and isinstance(item.get("description"), str)
        ):
            required, converter, spec = common
            return InputSpec(key, item["name"], item["description"], required, converter, spec)
        return None

    return _parse_entries("inputs", inputs, INPUT_KEYS, problems, build)


def _parse_outputs(
    outputs: Any, problems: _Problems, known_resource_types: ResourceTypeLookup
) -> dict[str, OutputSpec]:
    def build(key: str, item: Mapping[str, Any], path: str) -> OutputSpec | None:
        common = _parse_common(item, path, problems, known_resource_types)
        return OutputSpec(key, *common) if common is not None else None

    return _parse_entries("outputs", outputs, OUTPUT_KEYS, problems, build)


def parse_operation_spec(
    doc: Any,
    *,
    known_resource_types: ResourceTypeLookup,
    known_modes: Collection[str],
    bundle_dir: Path | None,
) -> OperationSpec:
    """Check an `operation_spec.json` document; raise SpecError listing every problem found."""
    if not isinstance(doc, Mapping):
        raise SpecError([SpecProblem("", "the operation spec must be a JSON object")])
    problems = _Problems()
    for key in REQUIRED_TOP_LEVEL_KEYS:
        if key not in doc:
            problems.add(key, "required")
    for key in doc:
        if key not in REQUIRED_TOP_LEVEL_KEYS and key not in IGNORED_TOP_LEVEL_KEYS and key not in OPTIONAL_TOP_LEVEL_KEYS:
            problems.add(str(key), "unknown top-level key")

    name = doc.get("name")
    if "name" in doc and (not isinstance(name, str) or not name.strip()):
        problems.add("name", "must be a non-empty string")
    description = doc.get("description")
    if "description" in doc and not isinstance(description, str):
        problems.add("description", "must be a string")
    workspace_operation = doc.get("workspace_operation")
    if "workspace_operation" in doc and not isinstance(workspace_operation, bool):
        problems.add("workspace_operation", "must be true or false")
    network = doc.get("network", False)
    if not isinstance(network, bool):
        problems.add("network", "must be true or false")

    mode = doc.get("mode")
    if "mode" in doc:
        if not isinstance(mode, str) or mode not in known_modes:
            problems.add("mode", f"no runner for mode {mode!r}")
        elif bundle_dir is not None and mode in MODE_REQUIRED_FILES:
            for message in MODE_REQUIRED_FILES[mode].problems(Path(bundle_dir)):
                problems.add("mode", f"{message} (mode {mode})")

    inputs = _parse_inputs(doc.get("inputs", {}), problems, known_resource_types)
    outputs = _parse_outputs(doc.get("outputs", {}), problems, known_resource_types)

    if problems.items:
        raise SpecError(problems.items)
    return OperationSpec(
        name=name,
        description=description,
        mode=mode,
        workspace_operation=workspace_operation,
        inputs=inputs,
        outputs=outputs,
        network=network,
    )


def to_stored_document(
    spec: OperationSpec, *, id: str, git_hash: str, repository_url: str, repository_name: str
) -> dict[str, Any]:
    """The stored operation: exactly the 10 keys of api-contract §2.8."""
    document = {
        "id": str(id),
        "name": spec.name,
        "description": spec.description,
        "inputs": {key: item.to_document() for key, item in spec.inputs.items()},
        "outputs": {key: item.to_document() for key, item in spec.outputs.items()},
        "mode": spec.mode,
        "repository_url": repository_url,
        "repository_name": repository_name,
        "git_hash": git_hash,
        "workspace_operation": spec.workspace_operation,
    }
    return {key: document[key] for key in STORED_KEYS}


def _is_empty(value: Any) -> bool:
    # The client sends untouched and cleared fields (and empty lists) as null; be lenient with the
    # other empty forms too.
    return value is None or value == [] or (isinstance(value, str) and not value.strip())


ResourceCheck = Callable[[str, dict[str, Any]], str | None]


def validate_inputs(
    spec: OperationSpec, raw_inputs: Any, *, resource_check: ResourceCheck
) -> tuple[dict[str, Any], dict[str, str]]:
    """Check submitted inputs against the spec (api-contract §4.5).

    Returns `(cleaned, errors)`. `cleaned` maps input keys to normalised values, with defaults
    applied and empty optional inputs left out. `errors` maps each bad input key to one user-facing
    message; every key is checked, so all problems are reported at once. Keys not in the spec
    (e.g. `job_name`) are ignored.

    `resource_check(uuid, input)` is called for each resource an input names, with the input's
    stored definition plus its `key`; it returns an error message (not the caller's, inactive,
    wrong type, not in the workspace, not bundled for this key, ...) or None.
    """
    if not isinstance(raw_inputs, Mapping):
        raise AttributeValueError('The "inputs" key must be a JSON object.')
    cleaned: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, input_spec in spec.inputs.items():
        attribute_type = input_spec.attribute_type
        raw = raw_inputs.get(key)
        if _is_empty(raw):
            if input_spec.spec.get("default") is not None:
                raw = input_spec.spec["default"]
            elif input_spec.required:
                errors[key] = REQUIRED_INPUT_MESSAGE
                continue
            else:
                continue
        try:
            value = attribute_type.clean(raw, input_spec.spec)
        except AttributeValueError as exc:
            errors[key] = exc.message
            continue
        definition = {"key": key, **input_spec.to_document()}
        messages = [
            message
            for message in (
                resource_check(resource_id, definition) for resource_id in attribute_type.resource_ids(value)
            )
            if message
        ]
        if messages:
            errors[key] = " ".join(dict.fromkeys(messages))
            continue
        cleaned[key] = value
    return cleaned, errors
