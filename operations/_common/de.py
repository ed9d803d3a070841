"""Helpers shared by the two-group differential-expression bundles (DESeq2, limma-voom, edgeR).

- ``make_names(name) -> str``: R's ``make.names`` for one string (upstream column naming).
- ``read_two_group_inputs(inputs, integer_counts=True) -> TwoGroupInputs``: validates the
  shared DE form's inputs (raw_counts, base/experimental sets and names) and returns the
  count matrix restricted to the chosen samples (base samples first, then experimental).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from . import (
    UserError,
    _listing,
    check_counts,
    check_samples_present,
    get_string,
    read_matrix,
    require,
    sample_ids,
)

_R_RESERVED = {"if", "else", "repeat", "while", "function", "for", "next", "break", "TRUE",
               "FALSE", "NULL", "Inf", "NaN", "NA", "NA_integer_", "NA_real_",
               "NA_character_", "in"}


def make_names(name: str) -> str:
    """R ``make.names`` for a single string (ASCII letters/digits/./_ kept, others -> '.')."""
    s = re.sub(r"[^A-Za-z0-9._]", ".", str(name))
    if s == "" or not (s[0].isalpha() or (s[0] == "." and not (len(s) > 1 and s[1].isdigit()))):
        s = "X" + s
    if s in _R_RESERVED:
        s = s + "."
    return s


@dataclass
class TwoGroupInputs:
    counts: pd.DataFrame        # genes x (base samples + experimental samples)
    base_ids: list[str]
    exp_ids: list[str]
    base_name: str              # sanitised with make_names
    exp_name: str


def read_two_group_inputs(inputs: dict, integer_counts: bool = True,
                          reserved_columns: tuple[str, ...] = ()) -> TwoGroupInputs:
    require(inputs, "raw_counts", "base_condition_samples", "experimental_condition_samples")
    base_ids = sample_ids(inputs["base_condition_samples"])
    exp_ids = sample_ids(inputs["experimental_condition_samples"])
    base_name = make_names(get_string(inputs, "base_condition_name", "Control"))
    exp_name = make_names(get_string(inputs, "experimental_condition_name", "Experimental"))

    errors = []
    for label, ids in (("the base (control) group", base_ids),
                       ("the experimental group", exp_ids)):
        dups = sorted(set(i for i in ids if ids.count(i) > 1))
        if dups:
            errors.append(f"Samples are listed twice in {label}: {_listing(dups)}.")
    overlap = [i for i in base_ids if i in set(exp_ids)]
    if overlap:
        errors.append("The two sample sets overlap; a sample can only be in one group. "
                      f"Shared samples: {_listing(overlap)}.")
    for label, ids in (("the base (control) group", base_ids),
                       ("the experimental group", exp_ids)):
        if len(set(ids)) < 2:
            errors.append(f"{label[0].upper() + label[1:]} has {len(set(ids))} sample(s); "
                          "at least 2 samples per group are needed.")
    if base_name == exp_name:
        errors.append(f"The two groups must have different names (both are '{base_name}').")
    if errors:
        raise UserError(errors)

    matrix = read_matrix(inputs["raw_counts"])
    missing_msgs = []
    for label, ids in (("the base (control) group", base_ids),
                       ("the experimental group", exp_ids)):
        try:
            check_samples_present(matrix, ids, label)
        except UserError as exc:
            missing_msgs.extend(exc.messages)
    if missing_msgs:
        raise UserError(missing_msgs)

    clash = [c for c in list(reserved_columns) + [base_name, exp_name]
             if c in set(base_ids + exp_ids)]
    if clash:
        raise UserError(f"Sample names clash with result column names: {_listing(clash)}. "
                        "Please rename the group(s).")
    counts = matrix[base_ids + exp_ids]
    if integer_counts:
        counts = check_counts(counts, "count matrix (for the chosen samples)")
    else:
        if counts.isna().any().any():
            raise UserError("The matrix has missing values (NA) for the chosen samples.")
        if (counts < 0).any().any():
            raise UserError("The matrix has negative values; raw counts are required.")
    if counts.shape[0] == 0 or (counts.sum(axis=1) == 0).all():
        raise UserError("Every gene has zero counts in the chosen samples; nothing to test.")
    return TwoGroupInputs(counts, base_ids, exp_ids, base_name, exp_name)
