"""Expression matrix subset: keep or remove chosen samples (columns) and features (rows)."""
from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import (  # noqa: E402
    UserError,
    load_inputs,
    read_matrix,
    require,
    run,
    sample_ids,
    write_outputs,
)

OUTPUT_FILE = "reduced_matrix.tsv"
ALLOWED_TYPES = ("MTX", "EXP_MTX", "RNASEQ_COUNT_MTX", "I_MTX")
TYPE_DELIMITER = ":::"  # converter `resource.single_with_type` sends "<path>:::<resource type>"
MAX_LISTED = 5


def parse_matrix_input(value) -> tuple[str, str | None]:
    """(path, resource type or None) from "<path>:::<type>", {"path", "resource_type"} or a path."""
    if isinstance(value, dict):
        return str(value.get("path")), value.get("resource_type")
    value = str(value)
    if TYPE_DELIMITER in value:
        path, resource_type = value.rsplit(TYPE_DELIMITER, 1)
        return path, resource_type.strip() or None
    return value, None


def as_bool(value, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise UserError(f"Could not understand {value!r} as true/false.")


def read_raw_table(path: str) -> tuple[pd.DataFrame, str]:
    """The table as strings, exactly as written, and the first header field."""
    sep = "," if path.lower().endswith((".csv", ".csv.gz")) else "\t"
    raw = pd.read_csv(path, sep=sep, header=None, dtype=str, keep_default_na=False,
                      na_filter=False)
    header = raw.iloc[0].tolist()
    body = raw.iloc[1:]
    table = pd.DataFrame(body.iloc[:, 1:].to_numpy(), index=body.iloc[:, 0].to_numpy(),
                         columns=header[1:])
    return table, header[0]


def _missing(ids: list[str], available, what: str) -> None:
    present = set(available)
    missing = [i for i in ids if i not in present]
    if missing:
        shown = ", ".join(missing[:MAX_LISTED])
        more = f" (and {len(missing) - MAX_LISTED} more)" if len(missing) > MAX_LISTED else ""
        raise UserError(f"{len(missing)} of the chosen {what} {'is' if len(missing) == 1 else 'are'} "
                        f"not in the matrix: {shown}{more}.")


def _ids(set_obj, what: str) -> list[str] | None:
    if set_obj is None:
        return None
    ids = sample_ids(set_obj)
    if not ids:
        raise UserError(f"The chosen {what} set is empty. Choose at least one, or leave it "
                        "blank to keep every one.")
    return ids


def subset(table: pd.DataFrame, sample_set=None, feature_set=None, keep_samples=False,
           keep_features=False) -> pd.DataFrame:
    """Keep (True) or remove (False) the given columns/rows; original order is kept."""
    samples = _ids(sample_set, "sample")
    features = _ids(feature_set, "gene/feature")
    if samples is not None:
        _missing(samples, table.columns, "samples")
        chosen = set(samples)
        cols = [c for c in table.columns if (c in chosen) == keep_samples]
        table = table.loc[:, cols]
    if features is not None:
        _missing(features, table.index, "genes/features")
        chosen = set(features)
        mask = [(r in chosen) == keep_features for r in table.index]
        table = table.loc[mask]
    if table.shape[1] == 0:
        raise UserError("The subset has no samples (columns) left. Check the sample set and "
                        "the 'keep' option.")
    if table.shape[0] == 0:
        raise UserError("The subset has no genes/features (rows) left. Check the feature set "
                        "and the 'keep' option.")
    return table


def infer_type(numeric: pd.DataFrame) -> str:
    values = numeric.to_numpy()
    finite = values[~pd.isna(values)]
    return "I_MTX" if finite.size and (finite == finite.round()).all() else "MTX"


def main() -> None:
    inputs = load_inputs()
    require(inputs, "input_matrix")
    path, resource_type = parse_matrix_input(inputs["input_matrix"])
    if not os.path.exists(path):
        raise UserError(f"The input file {os.path.basename(path)} could not be found.")
    numeric = read_matrix(path)  # rejects non-numeric cells, duplicated sample names
    if resource_type is None:
        resource_type = infer_type(numeric)
    if resource_type not in ALLOWED_TYPES:
        raise UserError(f"The input's type {resource_type} cannot be subset by this tool "
                        f"(allowed: {', '.join(ALLOWED_TYPES)}).")
    table, index_label = read_raw_table(path)
    result = subset(table, inputs.get("samples"), inputs.get("features"),
                    as_bool(inputs.get("keepsamples")), as_bool(inputs.get("keepfeatures")))
    # Cells are written back exactly as read (no float reformatting of integer counts).
    result.to_csv(OUTPUT_FILE, sep="\t", index=True, index_label=index_label or "gene",
                  quoting=csv.QUOTE_NONE, escapechar="\\")
    write_outputs({"reduced_matrix": {"path": OUTPUT_FILE, "resource_type": resource_type}})


if __name__ == "__main__":
    run(main)
