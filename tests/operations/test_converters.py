"""Converters (api-contract §4.3): inputs to engine values, engine outputs to stored values."""

import json

import pytest

from mev.operations.attribute_types import SpecError
from mev.operations.converters import (
    ORIGINAL_CONVERTER_ALIASES,
    ConversionError,
    OutputFile,
    OutputValue,
    canonical_converter_id,
    convert_input,
    convert_output,
    converter_ids,
    converter_type_problem,
)

UUID_A = "5b6c2a36-8e4f-4c0c-9f3e-5d3f1a2b7c10"
UUID_B = "0d9e8f7a-1b2c-4d3e-8f4a-5b6c7d8e9f01"
SET = {"name": "ctrl", "elements": [{"id": "s1"}, {"id": "s2", "attributes": {}}]}


def stage(resource_id):
    return f"/work/staged/{resource_id}.tsv"


def no_stage(resource_id):
    raise AssertionError("staging not expected")


INPUT_CASES = [
    ("value", 3, 3),
    ("value", "abc", "abc"),
    ("value", SET, SET),
    ("string.identifier", " a b ", "a_b"),
    ("boolean.integer", True, 1),
    ("boolean.integer", False, 0),
    ("boolean.text", True, "true"),
    ("boolean.text", False, "false"),
    ("list.json", ["a", "b"], ["a", "b"]),
    ("list.json", "a", ["a"]),
    ("list.csv", ["a", "b", "c"], "a,b,c"),
    ("list.csv", [1, 2.5], "1,2.5"),
    ("list.space", ["a", "b"], "a b"),
    ("list.identifier_csv", ["a b", "c  d"], "a_b,c__d"),
    ("element_set.csv", SET, "s1,s2"),
    ("element_set.list", SET, ["s1", "s2"]),
    ("element_set.object", SET, SET),
    ("json", {"a": [1, 2]}, '{"a": [1, 2]}'),
    # the original's class paths
    ("api.converters.basic_attributes.BooleanAsIntegerConverter", True, 1),
    ("api.converters.basic_attributes.StringConverter", "ab c", "ab_c"),
    ("api.converters.basic_attributes.UnrestrictedStringConverter", "ab c", "ab c"),
    ("api.converters.basic_attributes.StringListToCsvConverter", ["x", "y"], "x,y"),
    ("api.converters.element_set.ObservationSetCsvConverter", SET, "s1,s2"),
    ("api.converters.element_set.FeatureSetListConverter", SET, ["s1", "s2"]),
]


@pytest.mark.parametrize(("converter_id", "value", "expected"), INPUT_CASES)
def test_simple_input_conversions(converter_id, value, expected):
    assert convert_input(converter_id, value, stage=no_stage) == expected


RESOURCE_CASES = [
    ("resource.single", UUID_A, f"/work/staged/{UUID_A}.tsv"),
    ("resource.single", [UUID_A, UUID_B], [f"/work/staged/{UUID_A}.tsv", f"/work/staged/{UUID_B}.tsv"]),
    ("resource.list", UUID_A, [f"/work/staged/{UUID_A}.tsv"]),
    ("resource.list", [UUID_A, UUID_B], [f"/work/staged/{UUID_A}.tsv", f"/work/staged/{UUID_B}.tsv"]),
    ("resource.csv", [UUID_A, UUID_B], f"/work/staged/{UUID_A}.tsv,/work/staged/{UUID_B}.tsv"),
    ("resource.csv", UUID_A, f"/work/staged/{UUID_A}.tsv"),
    ("resource.space", [UUID_A, UUID_B], f"/work/staged/{UUID_A}.tsv /work/staged/{UUID_B}.tsv"),
    (
        "api.converters.data_resource.LocalDockerSingleDataResourceConverter",
        UUID_A,
        f"/work/staged/{UUID_A}.tsv",
    ),
    (
        "api.converters.data_resource.LocalDockerCsvResourceConverter",
        [UUID_A, UUID_B],
        f"/work/staged/{UUID_A}.tsv,/work/staged/{UUID_B}.tsv",
    ),
    (
        "api.converters.data_resource.LocalDockerSpaceDelimResourceConverter",
        [UUID_A],
        f"/work/staged/{UUID_A}.tsv",
    ),
]


@pytest.mark.parametrize(("converter_id", "value", "expected"), RESOURCE_CASES)
def test_resource_inputs_are_staged(converter_id, value, expected):
    assert convert_input(converter_id, value, stage=stage) == expected


def test_remote_runner_stage_gives_storage_uris():
    def to_uri(resource_id):
        return f"s3://bucket/{resource_id}"

    assert convert_input(
        "api.converters.data_resource.CromwellMultipleDataResourceConverter", UUID_A, stage=to_uri
    ) == [f"s3://bucket/{UUID_A}"]


def test_resource_with_type():
    value = convert_input("resource.single_with_type", UUID_A, stage=stage, resource_type_of=lambda _: "MTX")
    assert value == f"/work/staged/{UUID_A}.tsv:::MTX"
    with pytest.raises(ConversionError, match="did not supply resource types"):
        convert_input("resource.single_with_type", UUID_A, stage=stage)


def test_file_mapping_reads_the_bundle(tmp_path):
    (tmp_path / "input_mapping.json").write_text(json.dumps({"GRCh38": {"index": "s3://refs/grch38"}}))
    converter = "api.converters.mappers.SimpleFileBasedMapConverter"
    assert convert_input(converter, "GRCh38", stage=no_stage, bundle_dir=tmp_path) == {
        "index": "s3://refs/grch38"
    }
    with pytest.raises(ConversionError, match="No mapping found for 'mm10'"):
        convert_input(converter, "mm10", stage=no_stage, bundle_dir=tmp_path)
    with pytest.raises(ConversionError, match="has no input_mapping.json"):
        convert_input(converter, "GRCh38", stage=no_stage, bundle_dir=tmp_path / "missing")


@pytest.mark.parametrize(
    ("converter_id", "value", "fragment"),
    [
        ("boolean.integer", "yes", "Expected a boolean"),
        ("element_set.csv", ["s1"], '"elements" list'),
        ("element_set.list", {"elements": [{"name": "x"}]}, 'needs an "id"'),
        ("string.identifier", "a?b", "contains characters"),
        ("list.identifier_csv", ["ok", "b?d"], "contains characters"),
        ("resource.single_with_type", [UUID_A], "single file"),
    ],
)
def test_bad_input_values_raise_conversion_error(converter_id, value, fragment):
    with pytest.raises(ConversionError) as info:
        convert_input(converter_id, value, stage=stage)
    assert fragment in info.value.message


def test_unknown_converter_is_a_spec_error():
    with pytest.raises(SpecError, match="unknown converter: 'api.converters.nope.Nope'"):
        canonical_converter_id("api.converters.nope.Nope")
    with pytest.raises(SpecError):
        convert_input("nope", 1, stage=stage)
    with pytest.raises(SpecError):
        canonical_converter_id(None)


@pytest.mark.parametrize(
    ("converter_id", "type_name", "ok"),
    [
        ("value", "Integer", True),
        ("value", "ObservationSet", True),
        ("resource.single", "VariableDataResource", True),
        ("resource.csv", "Integer", False),
        ("element_set.list", "FeatureSet", True),
        ("element_set.list", "StringList", False),
        ("boolean.integer", "Boolean", True),
        ("boolean.text", "Integer", False),
    ],
)
def test_converter_type_compatibility(converter_id, type_name, ok):
    assert (converter_type_problem(converter_id, type_name) is None) is ok


def test_every_alias_points_at_a_registered_converter():
    assert set(ORIGINAL_CONVERTER_ALIASES.values()) <= converter_ids()
    assert all(name.startswith("api.converters.") for name in ORIGINAL_CONVERTER_ALIASES)


# ---------------------------------------------------------------------------------------------------
# Outputs

DATA_OUT = {
    "required": True,
    "converter": "resource.single",
    "spec": {"attribute_type": "DataResource", "resource_type": "MTX", "many": False},
}
DATA_MANY_OUT = {
    "required": True,
    "converter": "resource.list",
    "spec": {"attribute_type": "DataResource", "resource_type": "NS", "many": True},
}
VARIABLE_OUT = {
    "required": False,
    "converter": "resource.single",
    "spec": {"attribute_type": "VariableDataResource", "resource_types": ["MTX", "I_MTX"], "many": False},
}
FLOAT_OUT = {
    "required": True,
    "converter": "value",
    "spec": {"attribute_type": "BoundedFloat", "min": 0, "max": 1},
}


def test_data_resource_output():
    result = convert_output("resource.single", "out/pca.tsv", output_spec=DATA_OUT)
    assert result == OutputValue(files=(OutputFile("out/pca.tsv", "MTX"),), many=False)
    assert result.is_file_output


def test_many_data_resource_output():
    result = convert_output(
        "api.converters.data_resource.LocalDockerMultipleDataResourceConverter",
        ["a.tsv", "b.tsv"],
        output_spec=DATA_MANY_OUT,
    )
    assert result.files == (OutputFile("a.tsv", "NS"), OutputFile("b.tsv", "NS"))
    assert result.many is True


def test_variable_data_resource_output():
    result = convert_output(
        "resource.single", {"path": "x.tsv", "resource_type": "I_MTX"}, output_spec=VARIABLE_OUT
    )
    assert result.files == (OutputFile("x.tsv", "I_MTX"),)


def test_output_accepts_the_inner_spec_too():
    result = convert_output("resource.single", "x.tsv", output_spec=DATA_OUT["spec"])
    assert result.files == (OutputFile("x.tsv", "MTX"),)


@pytest.mark.parametrize(
    ("raw", "output_spec", "fragment"),
    [
        (
            {"path": "x.tsv", "resource_type": "ANN"},
            VARIABLE_OUT,
            "not one of the permitted types: MTX, I_MTX",
        ),
        ("x.tsv", VARIABLE_OUT, 'Expected an object {"path"'),
        (["a.tsv"], DATA_OUT, "Expected a single file"),
        ("a.tsv", DATA_MANY_OUT, "Expected a list of files"),
        ([""], DATA_MANY_OUT, "Expected a file path"),
        (0.5, DATA_OUT, "Expected a file path"),
        ("x.tsv", FLOAT_OUT, "only converts file outputs"),
    ],
)
def test_bad_file_outputs(raw, output_spec, fragment):
    with pytest.raises(ConversionError) as info:
        convert_output("resource.single", raw, output_spec=output_spec)
    assert fragment in info.value.message


def test_value_outputs_are_checked_against_their_type():
    assert convert_output("value", 0.25, output_spec=FLOAT_OUT) == OutputValue(value=0.25)
    with pytest.raises(ConversionError, match="bounds"):
        convert_output("value", 1.5, output_spec=FLOAT_OUT)
    assert convert_output(
        "boolean.integer", "true", output_spec={"spec": {"attribute_type": "Boolean"}}
    ) == OutputValue(value=1)


def test_json_outputs_are_parsed():
    spec = {"required": True, "converter": "json", "spec": {"attribute_type": "UnrestrictedString"}}
    assert convert_output("json", '{"a": [1, 2]}', output_spec=spec).value == {"a": [1, 2]}
    assert convert_output("api.converters.json_converters.JsonConverter", [1, 2], output_spec=spec).value == [
        1,
        2,
    ]
    with pytest.raises(ConversionError, match="not valid JSON"):
        convert_output("json", "{oops", output_spec=spec)


def test_absent_outputs():
    assert convert_output("resource.single", None, output_spec=VARIABLE_OUT) == OutputValue(value=None)
    with pytest.raises(ConversionError, match="required output was not produced"):
        convert_output("resource.single", None, output_spec=DATA_OUT)


def test_input_only_converters_refuse_outputs():
    with pytest.raises(ConversionError, match="cannot convert outputs"):
        convert_output("element_set.csv", "a,b", output_spec=FLOAT_OUT)
