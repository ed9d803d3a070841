"""Attribute types: spec checks and value cleaning for every type of api-contract §4.2."""

import pytest

from mev.operations.attribute_types import (
    AttributeValueError,
    SpecError,
    attribute_type_names,
    check_attribute_spec,
    clean_value,
    get_attribute_type,
    normalize_identifier,
)

KNOWN = {"MTX", "I_MTX", "ANN", "*"}
UUID_A = "5b6c2a36-8e4f-4c0c-9f3e-5d3f1a2b7c10"
UUID_B = "0d9e8f7a-1b2c-4d3e-8f4a-5b6c7d8e9f01"

ALL_TYPES = {
    "Integer",
    "PositiveInteger",
    "NonNegativeInteger",
    "BoundedInteger",
    "Float",
    "PositiveFloat",
    "NonNegativeFloat",
    "BoundedFloat",
    "String",
    "UnrestrictedString",
    "OptionString",
    "IntegerOption",
    "FloatOption",
    "MixedOption",
    "Boolean",
    "StringList",
    "UnrestrictedStringList",
    "BoundedIntegerList",
    "BoundedFloatList",
    "DataResource",
    "VariableDataResource",
    "OperationDataResource",
    "Observation",
    "Feature",
    "ObservationSet",
    "FeatureSet",
}


def test_registry_holds_every_type_of_the_contract():
    assert attribute_type_names() == ALL_TYPES


def test_unknown_type_name_message():
    with pytest.raises(AttributeValueError) as info:
        get_attribute_type("Bogus")
    assert info.value.message == "Could not locate type: Bogus."
    with pytest.raises(AttributeValueError, match="Could not locate type: Bogus."):
        clean_value({"attribute_type": "Bogus"}, 1)


def spec(type_name, **keys):
    return {"attribute_type": type_name, **keys}


# (spec, raw value, expected cleaned value)
VALID = [
    (spec("Integer"), 3, 3),
    (spec("Integer"), -7, -7),
    (spec("Integer"), 3.0, 3),  # the client's parseFloat may give integral floats
    (spec("PositiveInteger"), 1, 1),
    (spec("NonNegativeInteger"), 0, 0),
    (spec("BoundedInteger", min=0, max=10), 0, 0),
    (spec("BoundedInteger", min=0, max=10), 10, 10),
    (spec("Float"), 1, 1.0),
    (spec("Float"), -2.5, -2.5),
    (spec("Float"), "++inf++", "++inf++"),
    (spec("Float"), "--inf--", "--inf--"),
    (spec("PositiveFloat"), 0.001, 0.001),
    (spec("PositiveFloat"), "++inf++", "++inf++"),
    (spec("NonNegativeFloat"), 0, 0.0),
    (spec("NonNegativeFloat"), "++inf++", "++inf++"),
    (spec("BoundedFloat", min=0, max=1.0), 0, 0.0),
    (spec("BoundedFloat", min=0, max=1.0), 1, 1.0),
    (spec("BoundedFloat", min=0, max=1.0), 0.05, 0.05),
    (spec("String"), "  my sample ", "my_sample"),
    (spec("String"), "a.b-c_d:e", "a.b-c_d:e"),
    (spec("String"), 2, "2"),  # numbers from the client's numeric conversion
    (spec("String"), 2.0, "2"),
    (spec("String"), 0.5, "0.5"),
    (spec("String"), "x" * 100, "x" * 100),
    (spec("UnrestrictedString"), "a ? b", "a ? b"),
    (spec("UnrestrictedString"), 7, "7"),
    (spec("UnrestrictedString"), "y" * 1000, "y" * 1000),
    (spec("Boolean"), True, True),
    (spec("Boolean"), False, False),
    (spec("Boolean"), "TRUE", True),
    (spec("Boolean"), "False", False),
    (spec("Boolean"), 0, False),
    (spec("Boolean"), 1, True),
    (spec("OptionString", options=["a", "b"]), "b", "b"),
    (spec("OptionString", options=["1", "2"]), 1, "1"),
    (spec("OptionString", options=["sample ID", "sorted"]), "sample ID", "sample ID"),
    (spec("OptionString", options=["a", "b"], many=True), ["a", "b"], ["a", "b"]),
    (spec("OptionString", options=["10", "20"], many=True), 10, ["10"]),  # collapsed one-element list
    (spec("IntegerOption", options=[10, 15, 20]), 15, 15),
    (spec("IntegerOption", options=[10, 15, 20]), 15.0, 15),
    (spec("FloatOption", options=[0.3, 0.5]), 0.5, 0.5),
    (spec("MixedOption", options=["auto", 2]), "auto", "auto"),
    (spec("MixedOption", options=["auto", 2]), 2, 2),
    (spec("StringList"), ["a b", "c"], ["a_b", "c"]),
    (spec("StringList"), "solo", ["solo"]),
    (spec("UnrestrictedStringList"), ["a b?", "c"], ["a b?", "c"]),
    (spec("BoundedIntegerList", min=1, max=3), [1, 3], [1, 3]),
    (spec("BoundedFloatList", min=0, max=1), [0, 0.5], [0.0, 0.5]),
    (spec("DataResource", resource_type="MTX", many=False), UUID_A.upper(), UUID_A),
    (spec("DataResource", resource_type="MTX", many=True), [UUID_A, UUID_B], [UUID_A, UUID_B]),
    (spec("DataResource", resource_type="MTX", many=True), UUID_A, [UUID_A]),
    (spec("VariableDataResource", resource_types=["MTX", "I_MTX"], many=False), UUID_B, UUID_B),
    (spec("OperationDataResource", resource_type="*", many=False), UUID_A, UUID_A),
    (spec("Observation"), {"id": "s1"}, {"id": "s1"}),
    (spec("Feature"), {"id": " g 1 "}, {"id": "g_1"}),
    (
        spec("Observation"),
        {"id": "s1", "attributes": {"age": {"attribute_type": "Integer", "value": 3}}},
        {"id": "s1", "attributes": {"age": {"attribute_type": "Integer", "value": 3}}},
    ),
    (
        spec("ObservationSet"),
        {
            "name": "ctrl",
            "type": "Observation set",
            "color": "#fff",
            "multiple": True,
            "elements": [{"id": "s1"}, {"id": "s2"}],
        },
        {
            "name": "ctrl",
            "type": "Observation set",
            "color": "#fff",
            "multiple": True,
            "elements": [{"id": "s1"}, {"id": "s2"}],
        },
    ),
    (spec("FeatureSet"), {"elements": []}, {"elements": []}),
]


@pytest.mark.parametrize(("attribute_spec", "raw", "expected"), VALID)
def test_valid_values_are_cleaned(attribute_spec, raw, expected):
    assert clean_value(attribute_spec, raw) == expected


# (spec, raw value, fragment of the message)
INVALID = [
    (spec("Integer"), True, "not an integer"),
    (spec("Integer"), "3", "not an integer"),
    (spec("Integer"), 2.5, "not an integer"),
    (spec("Integer"), None, "not an integer"),
    (spec("Integer"), float("inf"), "not an integer"),
    (spec("PositiveInteger"), 0, "not a positive integer"),
    (spec("NonNegativeInteger"), -1, "negative"),
    (spec("BoundedInteger", min=0, max=10), 11, "bounds of [0, 10]"),
    (spec("BoundedInteger", min=0, max=10), -1, "bounds"),
    (spec("BoundedInteger", min=0, max=10), False, "not an integer"),
    (spec("Float"), "1.5", "not a number"),
    (spec("Float"), True, "not a number"),
    (spec("Float"), float("nan"), "not a number"),
    (spec("Float"), "inf", "not a number"),
    (spec("PositiveFloat"), 0, "not a positive number"),
    (spec("PositiveFloat"), "--inf--", "not a number"),
    (spec("NonNegativeFloat"), -0.1, "negative"),
    (spec("NonNegativeFloat"), "--inf--", "not a number"),
    (spec("BoundedFloat", min=0, max=1.0), 1.01, "bounds"),
    (spec("BoundedFloat", min=0, max=1.0), "++inf++", "not a number"),
    (spec("String"), "a?b", "contains characters"),
    (spec("String"), "   ", "empty"),
    (spec("String"), "x" * 101, "longer than 100"),
    (spec("String"), True, "not a string"),
    (spec("String"), ["a"], "not a string"),
    (spec("UnrestrictedString"), "y" * 1001, "longer than 1000"),
    (spec("UnrestrictedString"), {"a": 1}, "not a string"),
    (spec("Boolean"), "yes", "not a boolean"),
    (spec("Boolean"), 2, "not a boolean"),
    (spec("Boolean"), None, "not a boolean"),
    (spec("OptionString", options=["a", "b"]), "c", "not among the valid options"),
    (spec("OptionString", options=["a", "b"]), ["a"], "Only one option"),
    (spec("OptionString", options=["a", "b"], many=True), ["a", "z"], "not among"),
    (spec("IntegerOption", options=[10, 15]), "10x", "not among"),
    (spec("IntegerOption", options=[1, 0]), True, "not among"),
    (spec("StringList"), ["ok", "b?d"], "Item 2 of the list"),
    (spec("BoundedIntegerList", min=1, max=3), [1, 4], "Item 2 of the list"),
    (spec("BoundedFloatList", min=0, max=1), [True], "Item 1 of the list"),
    (spec("DataResource", resource_type="MTX", many=False), "not-a-uuid", "not a valid resource identifier"),
    (spec("DataResource", resource_type="MTX", many=False), UUID_A.replace("-", ""), "not a valid"),
    (spec("DataResource", resource_type="MTX", many=False), [UUID_A], "Only one file"),
    (spec("DataResource", resource_type="MTX", many=True), [UUID_A, UUID_A], "more than once"),
    (spec("DataResource", resource_type="MTX", many=True), [UUID_A, 3], "not a valid"),
    (spec("VariableDataResource", resource_types=["MTX"], many=False), {"id": UUID_A}, "not a valid"),
    (spec("Observation"), {"name": "x"}, 'missing its "id"'),
    (spec("Observation"), "s1", "must be an object"),
    (spec("Observation"), {"id": "s 1?"}, "Invalid element id"),
    (spec("Observation"), {"id": "s1", "attributes": [1]}, "must be an object"),
    (spec("Observation"), {"id": "s1", "attributes": {"a": 1}}, "Attribute 'a' of element s1"),
    (
        spec("Observation"),
        {"id": "s1", "attributes": {"a": {"attribute_type": "X", "value": 1}}},
        "Could not locate type: X.",
    ),
    (
        spec("Observation"),
        {"id": "s1", "attributes": {"p": {"attribute_type": "BoundedFloat", "value": 0.5}}},
        "Invalid BoundedFloat attribute: min: required for BoundedFloat",
    ),
    (
        spec("Observation"),
        {"id": "s1", "attributes": {"f": {"attribute_type": "DataResource", "value": "x"}}},
        "DataResource cannot be used as an element attribute.",
    ),
    (spec("ObservationSet"), {"elements": [{"id": "s1"}, {"id": "s1"}]}, "more than once"),
    (spec("ObservationSet"), {"elements": [{"id": "s 1"}, {"id": "s_1"}]}, "more than once"),
    (spec("FeatureSet"), {"name": "no elements"}, '"elements" list'),
    (spec("FeatureSet"), ["g1"], "must be an object"),
    (spec("FeatureSet"), {"elements": [{}]}, 'missing its "id"'),
]


@pytest.mark.parametrize(("attribute_spec", "raw", "fragment"), INVALID)
def test_invalid_values_are_rejected_with_a_message(attribute_spec, raw, fragment):
    with pytest.raises(AttributeValueError) as info:
        clean_value(attribute_spec, raw)
    assert fragment in info.value.message


def test_typed_element_attributes_are_cleaned():
    value = {
        "id": "s1",
        "attributes": {
            "p": {"attribute_type": "BoundedFloat", "value": 1, "min": 0, "max": 1},
            "group": {"attribute_type": "UnrestrictedString", "value": "case A"},
        },
    }
    cleaned = clean_value(spec("Observation"), value)
    assert cleaned["attributes"]["p"] == {"attribute_type": "BoundedFloat", "value": 1.0, "min": 0, "max": 1}
    assert cleaned["attributes"]["group"]["value"] == "case A"


def test_set_keeps_extra_keys_and_element_attributes():
    value = {"name": "s", "elements": [{"id": "a", "attributes": {}, "extra": 1}]}
    assert clean_value(spec("ObservationSet"), value) == value


# (spec, expected problem strings)
BAD_SPECS = [
    (spec("BoundedInteger", max=3), ["min: required for BoundedInteger"]),
    (spec("BoundedInteger"), ["min: required for BoundedInteger", "max: required for BoundedInteger"]),
    (spec("BoundedInteger", min=5, max=3), ["min: greater than max (5 > 3)"]),
    (spec("BoundedInteger", min=0.5, max=3), ["min: must be an integer for BoundedInteger"]),
    (spec("BoundedInteger", min=True, max=3), ["min: must be an integer for BoundedInteger"]),
    (spec("BoundedFloat", min=0, max="1"), ["max: must be a finite number for BoundedFloat"]),
    (spec("BoundedFloat", min=1.5, max=1.0), ["min: greater than max (1.5 > 1.0)"]),
    (spec("BoundedIntegerList", min=0), ["max: required for BoundedIntegerList"]),
    (spec("BoundedFloatList", min=2, max=1), ["min: greater than max (2 > 1)"]),
    (spec("OptionString"), ["options: required for OptionString"]),
    (spec("OptionString", options=[]), ["options: must be a non-empty list"]),
    (spec("OptionString", options="a,b"), ["options: must be a non-empty list"]),
    (spec("OptionString", options=["a", 1]), ["options.1: must be a string for OptionString"]),
    (spec("IntegerOption", options=[1, 2.5]), ["options.1: must be an integer for IntegerOption"]),
    (spec("FloatOption", options=["a"]), ["options.0: must be a number for FloatOption"]),
    (spec("MixedOption", options=[None]), ["options.0: must be a string or a number for MixedOption"]),
    (spec("OptionString", options=["a"], many="yes"), ["many: must be true or false"]),
    (spec("DataResource", resource_type="MTX"), ["many: required (true or false)"]),
    (spec("DataResource", resource_type="MTX", many=1), ["many: must be true or false"]),
    (spec("DataResource", many=False), ["resource_type: required for DataResource"]),
    (
        spec("DataResource", resource_type="NOPE", many=False),
        ["resource_type: unknown resource type: 'NOPE'"],
    ),
    (
        spec("OperationDataResource", resource_type="NOPE", many=False),
        ["resource_type: unknown resource type: 'NOPE'"],
    ),
    (spec("VariableDataResource", many=False), ["resource_types: required for VariableDataResource"]),
    (
        spec("VariableDataResource", resource_types=[], many=False),
        ["resource_types: must be a non-empty list of resource type codes"],
    ),
    (
        spec("VariableDataResource", resource_types=["MTX", "BAD"], many=True),
        ["resource_types.1: unknown resource type: 'BAD'"],
    ),
    (spec("Integer", default="3"), ["default: invalid for Integer: The value '3' is not an integer."]),
    (
        spec("BoundedInteger", min=0, max=3, default=4),
        ["default: invalid for BoundedInteger: The value 4 is not within the bounds of [0, 3]."],
    ),
    (
        spec("OptionString", options=["a"], default="b"),
        ["default: invalid for OptionString: The value 'b' is not among the valid options: a."],
    ),
    (
        spec("Boolean", default="maybe"),
        ["default: invalid for Boolean: The value 'maybe' is not a boolean (true/false or 0/1)."],
    ),
    (spec("Bogus"), ["attribute_type: Could not locate type: Bogus."]),
    ({"min": 1}, ["attribute_type: required"]),
]


@pytest.mark.parametrize(("attribute_spec", "problems"), BAD_SPECS)
def test_bad_specs_name_each_problem(attribute_spec, problems):
    with pytest.raises(SpecError) as info:
        check_attribute_spec(attribute_spec, known_resource_types=KNOWN)
    assert [str(p) for p in info.value.problems] == problems


GOOD_SPECS = [
    spec("Integer", default=3),
    spec("BoundedInteger", min=0, max=0, default=0),
    spec("BoundedFloat", min=0, max=1.0, default=0.05),
    spec("PositiveFloat", default="++inf++"),
    spec("String", default="Control"),
    spec("OptionString", options=["a", "b"], many=True, default=["a"]),
    spec("IntegerOption", options=[10, 20], default=20),
    spec("Boolean", default=False),
    spec("DataResource", resource_type="MTX", many=False),
    spec("VariableDataResource", resource_types=["MTX", "I_MTX"], many=True),
    spec("OperationDataResource", resource_type="*", many=False),
    spec("ObservationSet"),
    spec("Integer", default=None),  # a null default means "no default"
    spec("Integer", unused_key=1),  # keys the type does not read are ignored
]


@pytest.mark.parametrize("attribute_spec", GOOD_SPECS)
def test_good_specs_pass(attribute_spec):
    check_attribute_spec(attribute_spec, known_resource_types=KNOWN)


def test_known_resource_types_may_be_a_predicate():
    check_attribute_spec(
        spec("DataResource", resource_type="XYZ", many=False), known_resource_types=lambda code: code == "XYZ"
    )
    with pytest.raises(SpecError):
        check_attribute_spec(
            spec("DataResource", resource_type="MTX", many=False),
            known_resource_types=lambda code: code == "XYZ",
        )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(" a b ", "a_b"), ("A.b-c_d:9", "A.b-c_d:9"), (12, "12")],
)
def test_normalize_identifier(raw, expected):
    assert normalize_identifier(raw) == expected


def test_resource_ids_of_cleaned_values():
    data = get_attribute_type("DataResource")
    assert data.resource_ids(UUID_A) == [UUID_A]
    assert data.resource_ids([UUID_A, UUID_B]) == [UUID_A, UUID_B]
    assert get_attribute_type("Integer").resource_ids(3) == []
