"""Shared helpers for local operation bundles (see docs/tool-contract.md).

A bundle's ``main.py`` is run as ``python <bundle>/main.py inputs.json`` from a fresh working
directory, so ``operations/`` is not on ``sys.path``.  Import this package with::

    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from _common import load_inputs, read_matrix, sample_ids, fail, write_outputs, ...

Stable API (other bundles depend on it -- only add, never change signatures):

- ``load_inputs(path=None) -> dict``          read inputs.json (argv[1] or ./inputs.json)
- ``get_string(inputs, key, default=None) -> str | None``  null/"" -> default, numbers -> str
- ``get_number(inputs, key, default=None, integer=False)``
- ``require(inputs, *keys)``                  fail() naming every missing required input
- ``read_matrix(path) -> pandas.DataFrame``   TSV/CSV, first column = row names, headers kept verbatim
- ``read_annotations(path) -> pandas.DataFrame``  ANN table as strings (index = sample ids)
- ``check_counts(df, what="count matrix") -> DataFrame[int64]``  fail() on NaN/negative/non-integer
- ``sample_ids(set_obj) -> list[str]``        ids of an ObservationSet/FeatureSet object
- ``check_samples_present(df, ids, set_label)``  fail() naming samples missing from the columns
- ``fail(messages)``                          write errors.json (list of strings), exit 1
- ``write_outputs(dict)``                     write outputs.json
- ``write_table(df, filename, index_label="gene") -> str``  tab-separated, returns the path
- ``n_cpus() -> int``                         MEV_N_CPUS (default 1)
- ``run(main_func)``                          call main_func(); UserError -> fail(); any other
                                              exception -> traceback on stderr + generic message
- ``UserError(messages)``                     raise anywhere to fail with user-facing messages
"""
from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "UserError", "load_inputs", "get_string", "get_number", "require", "read_matrix",
    "read_annotations", "check_counts", "sample_ids", "check_samples_present", "fail", "write_outputs",
    "write_table", "n_cpus", "run",
]

ERRORS_FILE = "errors.json"
OUTPUTS_FILE = "outputs.json"
_MAX_LISTED = 10  # how many offending items to name in one message


class UserError(Exception):
    """An error whose message(s) the user should see (becomes errors.json)."""

    def __init__(self, messages: str | Iterable[str]):
        if isinstance(messages, str):
            messages = [messages]
        self.messages = [str(m) for m in messages]
        super().__init__("; ".join(self.messages))


def _listing(items: Iterable[Any]) -> str:
    items = [str(i) for i in items]
    shown = ", ".join(items[:_MAX_LISTED])
    if len(items) > _MAX_LISTED:
        shown += f" (and {len(items) - _MAX_LISTED} more)"
    return shown


def fail(messages: str | list[str], code: int = 1) -> None:
    """Write ``errors.json`` (a JSON list of user-facing strings) and exit with ``code``."""
    if isinstance(messages, str):
        messages = [messages]
    messages = [str(m) for m in messages] or ["The analysis failed."]
    with open(ERRORS_FILE, "w") as fh:
        json.dump(messages, fh, indent=1)
    for m in messages:
        print(f"ERROR: {m}", file=sys.stderr)
    sys.exit(code)


def write_outputs(outputs: dict) -> None:
    """Write ``outputs.json`` (output key -> value) in the working directory."""
    with open(OUTPUTS_FILE, "w") as fh:
        json.dump(outputs, fh, indent=1)


def load_inputs(path: str | os.PathLike | None = None) -> dict:
    """Read the inputs map: ``path``, else ``sys.argv[1]``, else ``./inputs.json``."""
    if path is None:
        path = sys.argv[1] if len(sys.argv) > 1 else "inputs.json"
    try:
        with open(path) as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise UserError(f"Could not read the job inputs ({path}): {exc}") from exc
    if not isinstance(data, dict):
        raise UserError("The job inputs must be a JSON object.")
    return data


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    if isinstance(value, str) and not value.strip():
        return True
    if isinstance(value, (list, dict)) and len(value) == 0:
        return True
    return False


def require(inputs: dict, *keys: str) -> None:
    """Fail with one message per missing (absent/null/empty) required input key."""
    missing = [k for k in keys if _is_empty(inputs.get(k))]
    if missing:
        raise UserError([f"The input '{k}' is required but was not provided." for k in missing])


def get_string(inputs: dict, key: str, default: str | None = None) -> str | None:
    """A string input; null/blank -> default; numbers (the client parses numeric-looking
    strings) are turned back into strings (3 -> "3", 2.5 -> "2.5")."""
    value = inputs.get(key)
    if _is_empty(value):
        return default
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, tuple)) and len(value) == 1:
        return get_string({key: value[0]}, key, default)
    return str(value).strip()


def get_number(inputs: dict, key: str, default: float | int | None = None,
               integer: bool = False):
    """A numeric input; null/blank -> default. Accepts numeric strings and integral floats."""
    value = inputs.get(key)
    if _is_empty(value):
        return default
    try:
        num = float(value)
    except (TypeError, ValueError):
        raise UserError(f"The input '{key}' must be a number (got {value!r}).") from None
    if integer:
        if not num.is_integer():
            raise UserError(f"The input '{key}' must be an integer (got {value!r}).")
        return int(num)
    return num


def sample_ids(set_obj: Any) -> list[str]:
    """Element ids of an ObservationSet/FeatureSet object ``{"elements": [{"id": ...}]}``,
    in order, as strings. Also accepts a plain list of ids or a comma-joined string."""
    if _is_empty(set_obj):
        return []
    if isinstance(set_obj, str):
        return [s.strip() for s in set_obj.split(",") if s.strip()]
    if isinstance(set_obj, dict):
        elements = set_obj.get("elements") or []
    elif isinstance(set_obj, list):
        elements = set_obj
    else:
        raise UserError("A sample/feature set input was not understood.")
    ids = []
    for el in elements:
        ident = el.get("id") if isinstance(el, dict) else el
        if ident is None:
            raise UserError("A sample/feature set contains an element without an id.")
        if isinstance(ident, float) and ident.is_integer():
            ident = int(ident)
        ids.append(str(ident))
    return ids


def _header_fields(path: str, sep: str):
    import gzip
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as fh:
        line = fh.readline()
    if not line.strip():
        return None
    return line.rstrip("\r\n").split(sep)


def read_matrix(path: str | os.PathLike) -> pd.DataFrame:
    """Read a table in the standard form: tab-separated (comma accepted for .csv), header
    row, first column = row names. Column and row names are kept verbatim as strings
    (never renamed); duplicated sample names are an error."""
    path = str(path)
    if not os.path.exists(path):
        raise UserError(f"The input file {os.path.basename(path)} could not be found.")
    sep = "," if path.lower().endswith((".csv", ".csv.gz")) else "\t"
    header = _header_fields(path, sep)
    try:
        df = pd.read_csv(path, sep=sep, index_col=0, header=None, skiprows=1, dtype=str,
                         keep_default_na=False, na_filter=False)
    except Exception as exc:  # pandas raises many types on malformed files
        raise UserError(f"Could not parse the matrix file {os.path.basename(path)}: {exc}") from exc
    if header is None or df.shape[0] < 1:
        raise UserError("The matrix file is empty or has no data rows.")
    if len(header) == df.shape[1]:
        # R-style header with one field fewer than the data rows (no name for the row names)
        pass
    elif len(header) == df.shape[1] + 1:
        header = header[1:]
    else:
        raise UserError(f"The matrix header has {len(header)} fields but the rows have "
                        f"{df.shape[1] + 1}; the file is not a well-formed table.")
    header = [h.strip() for h in header]
    df.columns = header
    df.index = df.index.astype(str)
    df.index.name = None
    dup_cols = sorted(set(c for c in header if header.count(c) > 1))
    if dup_cols:
        raise UserError(f"The matrix has duplicated column (sample) names: {_listing(dup_cols)}.")
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise UserError("The matrix has no rows or no sample columns.")
    numeric = df.apply(lambda col: pd.to_numeric(col.str.strip().replace({"": "nan", "NA": "nan"}),
                                                 errors="coerce"))
    bad = numeric.isna() & ~df.apply(lambda col: col.str.strip().str.lower().isin(
        ["", "na", "nan", "null"]))
    if bad.values.any():
        r, c = np.argwhere(bad.values)[0]
        raise UserError(f"The matrix contains a non-numeric value {df.iat[r, c]!r} "
                        f"(row '{df.index[r]}', column '{df.columns[c]}').")
    return numeric.astype(float)


def read_annotations(path: str | os.PathLike) -> pd.DataFrame:
    """Read an annotation (ANN) table: first column = sample ids (index), other columns kept
    as stripped strings ('' / NA / nan become missing). Names are never renamed."""
    path = str(path)
    if not os.path.exists(path):
        raise UserError(f"The annotation file {os.path.basename(path)} could not be found.")
    sep = "," if path.lower().endswith((".csv", ".csv.gz")) else "\t"
    try:
        df = pd.read_csv(path, sep=sep, index_col=0, dtype=str, keep_default_na=False,
                         na_filter=False)
    except Exception as exc:
        raise UserError(f"Could not parse the annotation file {os.path.basename(path)}: {exc}") from exc
    df.index = df.index.astype(str).str.strip()
    df.columns = [str(c) for c in df.columns]
    df = df.apply(lambda col: col.str.strip())
    df = df.replace({"": np.nan, "NA": np.nan, "nan": np.nan, "NaN": np.nan})
    dups = sorted(set(df.index[df.index.duplicated()]))
    if dups:
        raise UserError(f"The annotation file lists samples more than once: {_listing(dups)}.")
    return df


def check_counts(df: pd.DataFrame, what: str = "count matrix") -> pd.DataFrame:
    """Require non-negative integer counts with no missing values; return an int64 copy.
    Fails naming the first offending row/column/value (and how many in total)."""
    values = df.to_numpy(dtype=float)
    checks = [
        (np.isnan(values), "a missing value (NA)", "missing values"),
        (values < 0, "a negative count", "negative values"),
        (~np.isnan(values) & (np.abs(values - np.round(values)) > 1e-8),
         "a non-integer count", "non-integer values"),
    ]
    for mask, label, plural in checks:
        if mask.any():
            r, c = np.argwhere(mask)[0]
            raise UserError(
                f"The {what} must contain non-negative integer counts, but it has {label} "
                f"{values[r, c]:g} at row '{df.index[r]}', column '{df.columns[c]}' "
                f"({int(mask.sum())} {plural} in total). This method needs raw (not normalized) counts.")
    return pd.DataFrame(np.round(values).astype(np.int64), index=df.index, columns=df.columns)


def check_samples_present(df: pd.DataFrame, ids: list[str], set_label: str) -> None:
    missing = [i for i in ids if i not in set(df.columns)]
    if missing:
        raise UserError(f"These samples of {set_label} are not columns of the matrix: "
                        f"{_listing(missing)}.")


def write_table(df: pd.DataFrame, filename: str, index_label: str = "gene") -> str:
    """Write a tab-separated table with an explicit first header field (``index_label``);
    NaN is written as ``NA`` (read back as NaN by pandas and the contents parser)."""
    df.to_csv(filename, sep="\t", index=True, index_label=index_label, na_rep="NA")
    return os.path.abspath(filename)


def n_cpus() -> int:
    try:
        return max(1, int(os.environ.get("MEV_N_CPUS", "1")))
    except ValueError:
        return 1


def run(main_func) -> None:
    """Run ``main_func()``; turn UserError into errors.json, any other exception into a
    traceback on stderr plus a generic user-facing message."""
    try:
        main_func()
    except UserError as exc:
        fail(exc.messages)
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc()
        fail([f"The analysis failed unexpectedly ({type(exc).__name__}: {exc}). "
              "Please contact the administrators if this persists."])
