"""Operation spec parsing (api-contract §4.1), the stored document, and run-time input validation (§4.5)."""

import copy

import pytest

from mev.operations.attribute_types import AttributeValueError, SpecError
from mev.operations.spec import (
    REQUIRED_INPUT_MESSAGE,
    STORED_KEYS,
    OperationSpec,
    parse_operation_spec,
    to_stored_document,
    validate_inputs,
)

KNOWN_TYPES = {"MTX", "I_MTX", "EXP_MTX", "RNASEQ_COUNT_MTX", "NS", "ANN", "*"}
MODES = {"local", "local_docker", "cromwell", "wes", "nf_local"}
UUID_A = "5b6c2a36-8e4f-4c0c-9f3e-5d3f1a2b7c10"
UUID_B = "0d9e8f7a-1b2c-4d3e-8f4a-5b6c7d8e9f01"


def make_doc():
    return {
        "name": "DESeq2",
        "description": "Differential expression.",
        "inputs": {
            "raw_counts": {
                "name": "Count matrix:",
                "description": "Counts.",
                "required": True,
                "converter": "api.converters.data_resource.LocalDockerSingleDataResourceConverter",
                "spec": {
                    "attribute_type": "DataResource",
                    "resource_type": "RNASEQ_COUNT_MTX",
                    "many": False,
                },
            },
            "base_condition_samples": {
                "name": "Base samples:",
                "description": "",
                "required": True,
                "converter": "api.converters.element_set.ObservationSetCsvConverter",
                "spec": {"attribute_type": "ObservationSet"},
            },
            "base_condition_name": {
                "name": "Base name:",
                "description": "",
                "required": "0",
                "converter": "string.identifier",
                "spec": {"attribute_type": "String", "default": "Control"},
            },
            "p_val": {
                "name": "P-value:",
                "description": "",
                "required": 0,
                "converter": "value",
                "spec": {"attribute_type": "BoundedFloat", "min": 0, "max": 1, "default": 0.05},
            },
            "min_reads": {
                "name": "Min reads:",
                "description": "",
                "required": False,
                "converter": "value",
                "spec": {"attribute_type": "Integer"},
            },
        },
        "outputs": {
            "dge_results": {
                "required": 1,
                "converter": "resource.single",
                "spec": {"attribute_type": "DataResource", "resource_type": "MTX", "many": False},
            },
        },
        "mode": "local",
        "workspace_operation": True,
    }


def parse(doc, bundle_dir=None):
    return parse_operation_spec(
        doc, known_resource_types=KNOWN_TYPES, known_modes=MODES, bundle_dir=bundle_dir
    )


def problems_of(doc, bundle_dir=None):
    with pytest.raises(SpecError) as info:
        parse(doc, bundle_dir)
    return [str(p) for p in info.value.problems]


def test_valid_spec_is_parsed():
    op = parse(make_doc())
    assert isinstance(op, OperationSpec)
    assert op.name == "DESeq2" and op.mode == "local" and op.workspace_operation is True
    assert list(op.inputs) == [
        "raw_counts",
        "base_condition_samples",
        "base_condition_name",
        "p_val",
        "min_reads",
    ]
    assert op.inputs["raw_counts"].converter == "resource.single"
    assert op.inputs["base_condition_samples"].converter == "element_set.csv"
    assert [op.inputs[k].required for k in op.inputs] == [True, True, False, False, False]
    assert op.outputs["dge_results"].required is True


def test_dotted_keys_and_original_cromwell_converters():
    doc = make_doc()
    doc["mode"] = "cromwell"
    doc["inputs"] = {
        "Dragon.input_matrix_a": {
            "name": "Input matrix 1:",
            "description": "",
            "required": True,
            "converter": "api.converters.data_resource.CromwellSingleVariableDataResourceConverter",
            "spec": {
                "attribute_type": "VariableDataResource",
                "resource_types": ["MTX", "I_MTX"],
                "many": False,
            },
        }
    }
    doc["outputs"] = {
        "Dragon.edge_weights": {
            "required": True,
            "converter": "api.converters.data_resource.CromwellSingleDataResourceConverter",
            "spec": {"attribute_type": "DataResource", "resource_type": "NS", "many": False},
        }
    }
    op = parse(doc)
    assert op.inputs["Dragon.input_matrix_a"].converter == "resource.single"
    assert "Dragon.edge_weights" in op.outputs


def mutate(path, value=..., delete=False):
    doc = make_doc()
    target = doc
    *parents, last = path
    for key in parents:
        target = target[key]
    if delete:
        del target[last]
    else:
        target[last] = value
    return doc


MALFORMED = [
    (mutate(["name"], delete=True), ["name: required"]),
    (mutate(["name"], "  "), ["name: must be a non-empty string"]),
    (mutate(["description"], 3), ["description: must be a string"]),
    (mutate(["workspace_operation"], "true"), ["workspace_operation: must be true or false"]),
    (mutate(["workspace_operation"], delete=True), ["workspace_operation: required"]),
    (mutate(["categories"], ["x"]), ["categories: unknown top-level key"]),
    (mutate(["mode"], "slurm"), ["mode: no runner for mode 'slurm'"]),
    (mutate(["inputs"], []), ["inputs: must be an object"]),
    (mutate(["outputs"], "x"), ["outputs: must be an object"]),
    (
        mutate(["inputs", "p_val", "required"], "yes"),
        ['inputs.p_val.required: must be true/false, 0/1 or "0"/"1"'],
    ),
    (
        mutate(["inputs", "p_val", "required"], 2),
        ['inputs.p_val.required: must be true/false, 0/1 or "0"/"1"'],
    ),
    (mutate(["inputs", "p_val", "name"], delete=True), ["inputs.p_val.name: required"]),
    (mutate(["inputs", "p_val", "name"], None), ["inputs.p_val.name: must be a string"]),
    (mutate(["inputs", "p_val", "extra"], 1), ["inputs.p_val.extra: unknown key"]),
    (
        mutate(["inputs", "p_val", "converter"], "api.converters.nope.Nope"),
        ["inputs.p_val.converter: unknown converter: 'api.converters.nope.Nope'"],
    ),
    (
        mutate(["inputs", "p_val", "spec", "max"], delete=True),
        ["inputs.p_val.spec.max: required for BoundedFloat"],
    ),
    (
        mutate(["inputs", "p_val", "spec", "default"], 2),
        [
            "inputs.p_val.spec.default: invalid for BoundedFloat: The value 2.0 is not within the bounds of [0, 1]."
        ],
    ),
    (
        mutate(["inputs", "raw_counts", "spec", "resource_type"], "BAM"),
        ["inputs.raw_counts.spec.resource_type: unknown resource type: 'BAM'"],
    ),
    (
        mutate(["inputs", "raw_counts", "spec", "many"], delete=True),
        ["inputs.raw_counts.spec.many: required (true or false)"],
    ),
    (
        mutate(["inputs", "raw_counts", "spec", "attribute_type"], "Matrix"),
        ["inputs.raw_counts.spec.attribute_type: Could not locate type: Matrix."],
    ),
    (mutate(["inputs", "raw_counts", "spec"], "DataResource"), ["inputs.raw_counts.spec: must be an object"]),
    (mutate(["inputs", "raw_counts"], 1), ["inputs.raw_counts: must be an object"]),
    (
        mutate(["inputs", "bad key"], {}),
        ["inputs.bad key: invalid input key (letters, digits, '_', '.', '-'; not starting with a digit)"],
    ),
    (mutate(["outputs", "dge_results", "name"], "x"), ["outputs.dge_results.name: unknown key"]),
    (
        mutate(["outputs", "dge_results", "spec", "resource_type"], "NOPE"),
        ["outputs.dge_results.spec.resource_type: unknown resource type: 'NOPE'"],
    ),
    (
        mutate(["outputs", "dge_results", "converter"], delete=True),
        ["outputs.dge_results.converter: required"],
    ),
    (
        mutate(["inputs", "p_val", "converter"], "element_set.csv"),
        [
            "inputs.p_val.converter: the converter element_set.csv cannot convert BoundedFloat "
            "(it takes FeatureSet, ObservationSet)"
        ],
    ),
    (
        mutate(
            ["outputs", "dge_results", "converter"],
            "api.converters.basic_attributes.BooleanAsIntegerConverter",
        ),
        [
            "outputs.dge_results.converter: the converter boolean.integer cannot convert DataResource "
            "(it takes Boolean)"
        ],
    ),
]


@pytest.mark.parametrize(("doc", "expected"), MALFORMED)
def test_malformed_specs_name_the_key_path(doc, expected):
    assert problems_of(doc) == expected


def test_spec_error_message_names_key_path():
    doc = make_doc()
    doc["inputs"]["count_matrix"] = {
        "name": "n",
        "description": "d",
        "required": True,
        "converter": "value",
        "spec": {"attribute_type": "BoundedInteger", "min": 0},
    }
    with pytest.raises(SpecError, match=r"inputs\.count_matrix\.spec\.max: required for BoundedInteger"):
        parse(doc)


def test_all_problems_are_reported_together():
    doc = make_doc()
    del doc["name"]
    doc["mode"] = "nope"
    doc["inputs"]["p_val"]["spec"]["min"] = 5
    doc["outputs"]["dge_results"]["required"] = "maybe"
    problems = problems_of(doc)
    assert problems == [
        "name: required",
        "mode: no runner for mode 'nope'",
        "inputs.p_val.spec.min: greater than max (5 > 1)",
        'outputs.dge_results.required: must be true/false, 0/1 or "0"/"1"',
    ]


def test_non_object_document():
    with pytest.raises(SpecError, match="must be a JSON object"):
        parse(["not", "an", "object"])


def test_stored_keys_are_tolerated_on_reparse():
    op = parse(make_doc())
    stored = to_stored_document(
        op, id=UUID_A, git_hash="abc", repository_url="https://github.com/x/y", repository_name="y"
    )
    again = parse(stored)
    assert (
        to_stored_document(
            again, id=UUID_A, git_hash="abc", repository_url="https://github.com/x/y", repository_name="y"
        )
        == stored
    )


@pytest.mark.parametrize(
    ("mode", "files", "expected"),
    [
        ("local", ["main.py"], []),
        ("local", [], ["mode: required file main.py is missing (mode local)"]),
        ("local_docker", ["docker/Dockerfile", "entrypoint.txt"], []),
        (
            "local_docker",
            ["entrypoint.txt"],
            ["mode: required file docker/Dockerfile is missing (mode local_docker)"],
        ),
        ("cromwell", ["main.wdl"], []),
        ("cromwell", ["inputs.json"], ["mode: required file main.wdl is missing (mode cromwell)"]),
        ("wes", ["main.cwl"], []),
        ("wes", ["main.wdl"], []),
        ("wes", [], ["mode: one of the files main.cwl, main.wdl is required (mode wes)"]),
        ("nf_local", ["main.nf"], ["mode: required file params.json is missing (mode nf_local)"]),
    ],
)
def test_mode_files_must_exist_in_the_bundle(tmp_path, mode, files, expected):
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    doc = make_doc()
    doc["mode"] = mode
    if expected:
        assert problems_of(doc, tmp_path) == expected
    else:
        assert parse(doc, tmp_path).mode == mode


def test_to_stored_document_has_exactly_the_ten_keys():
    op = parse(make_doc())
    stored = to_stored_document(
        op, id=UUID_A, git_hash="deadbeef", repository_url="https://github.com/a/b", repository_name="b"
    )
    assert list(stored) == list(STORED_KEYS)
    assert len(stored) == 10
    assert stored["id"] == UUID_A and stored["git_hash"] == "deadbeef"
    assert stored["workspace_operation"] is True
    assert stored["inputs"]["p_val"] == {
        "name": "P-value:",
        "description": "",
        "required": False,
        "converter": "value",
        "spec": {"attribute_type": "BoundedFloat", "min": 0, "max": 1, "default": 0.05},
    }
    assert stored["outputs"]["dge_results"] == {
        "required": True,
        "converter": "resource.single",
        "spec": {"attribute_type": "DataResource", "resource_type": "MTX", "many": False},
    }
    assert set(stored["inputs"]["raw_counts"]) == {"name", "description", "required", "converter", "spec"}


def test_parsed_spec_does_not_alias_the_source_document():
    doc = make_doc()
    original = copy.deepcopy(doc)
    op = parse(doc)
    to_stored_document(op, id="x", git_hash="h", repository_url="u", repository_name="n")
    assert doc == original


# ---------------------------------------------------------------------------------------------------
# validate_inputs


def allow_all(resource_id, definition):
    return None


SAMPLE_SET = {"name": "ctrl", "type": "Observation set", "elements": [{"id": "s1"}, {"id": "s2"}]}


def test_valid_inputs_are_cleaned_with_defaults_and_extras_ignored():
    op = parse(make_doc())
    raw = {
        "job_name": "run 1",
        "raw_counts": UUID_A.upper(),
        "base_condition_samples": SAMPLE_SET,
        "base_condition_name": None,
        "min_reads": None,
        "unknown": 5,
    }
    cleaned, errors = validate_inputs(op, raw, resource_check=allow_all)
    assert errors == {}
    assert cleaned == {
        "raw_counts": UUID_A,
        "base_condition_samples": SAMPLE_SET,
        "base_condition_name": "Control",
        "p_val": 0.05,
    }


def test_every_bad_key_is_reported_at_once():
    op = parse(make_doc())
    raw = {
        "raw_counts": None,
        "base_condition_samples": {"elements": [{"id": "a"}, {"id": "a"}]},
        "p_val": 3,
        "min_reads": "3",
        "base_condition_name": "bad?name",
    }
    cleaned, errors = validate_inputs(op, raw, resource_check=allow_all)
    assert errors == {
        "raw_counts": REQUIRED_INPUT_MESSAGE,
        "base_condition_samples": "The set contains the id a more than once.",
        "p_val": "The value 3.0 is not within the bounds of [0, 1].",
        "min_reads": "The value '3' is not an integer.",
        "base_condition_name": (
            "The value 'bad?name' contains characters other than letters, numbers, "
            "and the characters '.', '-', '_' and ':'."
        ),
    }
    assert cleaned == {}


@pytest.mark.parametrize("empty", [None, "", "   ", []])
def test_missing_required_inputs(empty):
    op = parse(make_doc())
    _, errors = validate_inputs(op, {"raw_counts": empty}, resource_check=allow_all)
    assert errors == {"raw_counts": REQUIRED_INPUT_MESSAGE, "base_condition_samples": REQUIRED_INPUT_MESSAGE}


def test_required_input_with_default_takes_the_default():
    doc = make_doc()
    doc["inputs"]["p_val"]["required"] = True
    op = parse(doc)
    cleaned, errors = validate_inputs(
        op, {"raw_counts": UUID_A, "base_condition_samples": SAMPLE_SET}, resource_check=allow_all
    )
    assert errors == {}
    assert cleaned["p_val"] == 0.05


def test_resource_check_is_called_per_resource_with_the_input_definition():
    doc = make_doc()
    doc["inputs"]["raw_counts"]["spec"]["many"] = True
    op = parse(doc)
    calls = []

    def check(resource_id, definition):
        calls.append((resource_id, definition["key"], definition["spec"]["resource_type"]))
        return "Resource is not in the workspace." if resource_id == UUID_B else None

    cleaned, errors = validate_inputs(
        op, {"raw_counts": [UUID_A, UUID_B], "base_condition_samples": SAMPLE_SET}, resource_check=check
    )
    assert calls == [(UUID_A, "raw_counts", "RNASEQ_COUNT_MTX"), (UUID_B, "raw_counts", "RNASEQ_COUNT_MTX")]
    assert errors == {"raw_counts": "Resource is not in the workspace."}
    assert "raw_counts" not in cleaned


def test_resource_check_not_called_for_malformed_uuid():
    op = parse(make_doc())

    def check(resource_id, definition):
        raise AssertionError("should not be called")

    _, errors = validate_inputs(
        op, {"raw_counts": "xyz", "base_condition_samples": SAMPLE_SET}, resource_check=check
    )
    assert errors == {"raw_counts": "The value 'xyz' is not a valid resource identifier (UUID)."}


def test_inputs_must_be_an_object():
    op = parse(make_doc())
    with pytest.raises(AttributeValueError, match='The "inputs" key must be a JSON object.'):
        validate_inputs(op, "nope", resource_check=allow_all)


def test_false_and_zero_are_values_not_absence():
    doc = make_doc()
    doc["inputs"]["flag"] = {
        "name": "f",
        "description": "",
        "required": True,
        "converter": "boolean.integer",
        "spec": {"attribute_type": "Boolean"},
    }
    doc["inputs"]["min_reads"]["required"] = True
    op = parse(doc)
    cleaned, errors = validate_inputs(
        op,
        {"raw_counts": UUID_A, "base_condition_samples": SAMPLE_SET, "flag": False, "min_reads": 0},
        resource_check=allow_all,
    )
    assert errors == {}
    assert cleaned["flag"] is False and cleaned["min_reads"] == 0
