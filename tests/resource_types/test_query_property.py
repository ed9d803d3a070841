"""query_table agrees with a plain pandas reference on random small tables."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mev.resource_types import table_store
from mev.resource_types.query import query_table
from mev.resource_types.tables import MISSING_TOKENS

TEXTS = ["a", "A", "ab", "b", "B:c", "ba", ""]
NUMERIC_OPS = {
    "[lt]": lambda s, v: s < v,
    "[lte]": lambda s, v: s <= v,
    "[gt]": lambda s, v: s > v,
    "[gte]": lambda s, v: s >= v,
    "[absgt]": lambda s, v: s.abs() > v,
    "[abslt]": lambda s, v: s.abs() < v,
    "[eq]": lambda s, v: s == v,
}


@st.composite
def tables(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(min_value=0, max_value=25))
    floats = st.one_of(
        st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 1.5, -1.5]),
        st.integers(min_value=-5, max_value=5).map(float),
    )
    return pd.DataFrame(
        {
            "x": draw(st.lists(floats, min_size=n, max_size=n)),
            "k": draw(st.lists(st.integers(min_value=-3, max_value=3), min_size=n, max_size=n)),
            "t": draw(st.lists(st.one_of(st.none(), st.sampled_from(TEXTS)), min_size=n, max_size=n)),
        },
        index=pd.Index([f"r{i}" for i in range(n)], name="gene"),
    )


numeric_filters = st.tuples(
    st.sampled_from(["x", "k"]),
    st.sampled_from(sorted(NUMERIC_OPS)),
    st.integers(min_value=-4, max_value=4),
)
text_filters = st.tuples(
    st.just("t"),
    st.sampled_from(["[eq]", "[case-ins-eq]", "[startswith]", "[in]"]),
    st.sampled_from(["a", "B", "b:c", "a,ba", ""]),
)
sort_keys = st.lists(
    st.tuples(st.sampled_from(["x", "k", "t"]), st.booleans()), max_size=2, unique_by=lambda key: key[0]
)


def reference(
    df: pd.DataFrame,
    filters: list[tuple[str, str, Any]],
    sorts: list[tuple[str, bool]],
    page: int | None,
    page_size: int,
) -> Any:
    # A text cell that means "missing" ("" here) is missing, as in the metadata (api-contract §2.3).
    df = df.assign(t=df["t"].where(~df["t"].isin(MISSING_TOKENS), None))
    mask = pd.Series(True, index=df.index)
    for column, op, value in filters:
        series = df[column]
        if column != "t":
            mask &= NUMERIC_OPS[op](series.astype(float), float(value)).fillna(False)
        else:
            text = series.astype(object).where(series.notna(), "\0missing").astype(str)
            if op == "[eq]":
                mask &= text == value
            elif op == "[case-ins-eq]":
                mask &= text.str.lower() == value.lower()
            elif op == "[startswith]":
                mask &= text.str.lower().str.startswith(value.lower())
            else:
                mask &= text.isin([item.strip() for item in value.split(",")])
            mask &= series.notna()  # a missing cell never matches
    out = df[mask]
    if sorts:
        out = out.sort_values(
            by=[c for c, _ in sorts],
            ascending=[not desc for _, desc in sorts],
            na_position="last",
            kind="stable",
        )
    records = [
        {"rowname": name, "values": {c: render(row[c]) for c in df.columns}}
        for name, row in zip(out.index, out.to_dict(orient="records"), strict=True)
    ]
    if page is None:
        return records
    return len(records), records[(page - 1) * page_size : page * page_size]


def render(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "++inf++" if value > 0 else "--inf--"
    if isinstance(value, np.integer):
        return int(value)
    return value


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    df=tables(),
    filters=st.lists(st.one_of(numeric_filters, text_filters), max_size=3),
    sorts=sort_keys,
    page_size=st.integers(min_value=1, max_value=6),
    page_pick=st.one_of(st.none(), st.integers(min_value=0, max_value=5)),
    cache_mb=st.sampled_from([0, 64]),
)
def test_query_table_matches_pandas(
    df: pd.DataFrame,
    filters: list[tuple[str, str, Any]],
    sorts: list[tuple[str, bool]],
    page_size: int,
    page_pick: int | None,
    cache_mb: int,
) -> None:
    """With the cache off every read goes to the file's (4-row) groups; on, to the cached table."""
    params = [(column, f"{op}:{value}") for column, op, value in filters]
    params += (
        [("sort_vals", ",".join(f"[{'desc' if desc else 'asc'}]:{c}" for c, desc in sorts))] if sorts else []
    )
    params.append(("page_size", str(page_size)))

    expected_all = reference(df, filters, sorts, None, page_size)
    page = None
    if page_pick is not None:
        page = min(page_pick, max(0, math.ceil(len(expected_all) / page_size) - 1)) + 1
        params.append(("page", str(page)))

    schema = pa.schema([("gene", pa.string()), ("x", pa.float64()), ("k", pa.int64()), ("t", pa.string())])
    table = pa.Table.from_pandas(df.reset_index(), schema=schema, preserve_index=False)
    with (
        tempfile.TemporaryDirectory() as tmp,
        pytest.MonkeyPatch.context() as patch,
        override_settings(MEV_CONTENTS_CACHE_MB=cache_mb),
    ):
        patch.setattr(table_store, "ROW_GROUP_SIZE", 4)  # several row groups even on tiny tables
        path = Path(tmp) / "t.parquet"
        table_store.write_table(table, path, kind="annotation")
        result = query_table(path, params, kind="annotation", base_url="http://h/c/")
        again = query_table(path, params, kind="annotation", base_url="http://h/c/")  # from the cache, if on
        assert again == result

    if page is None:
        assert result == expected_all
    else:
        count, expected_page = reference(df, filters, sorts, page, page_size)
        assert result["count"] == count
        assert result["results"] == expected_page
