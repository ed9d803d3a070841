"""The contents engine's per-process cache: budget, eviction, staleness, and turning it off."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest
from django.test import override_settings

from mev.resource_types import table_cache
from mev.resource_types.query import query_table
from mev.resource_types.table_cache import CACHE, TableCache, identify
from mev.resource_types.table_store import write_table

MB = 1024 * 1024


def _identity(tmp_path: Path, name: str, content: bytes = b"x") -> table_cache.FileIdentity:
    path = tmp_path / name
    path.write_bytes(content)
    return identify(path)


def _rows(result: dict) -> list[str]:
    return [record["rowname"] for record in result["results"]]


def test_least_recently_used_entries_go_first_and_the_budget_holds(tmp_path: Path) -> None:
    cache = TableCache(budget=lambda: 100)
    a, b = _identity(tmp_path, "a"), _identity(tmp_path, "b")
    cache.put(a, "x", "ax", 20)
    cache.put(a, "y", "ay", 20)
    cache.put(b, "x", "bx", 20)
    assert cache.get(a, "x") == "ax"  # now the most recently used

    cache.put(b, "y", "by", 25)
    cache.put(b, "z", "bz", 25)  # 110 bytes asked for: the least recently used entry (a, "y") goes

    assert cache.get(a, "y") is None
    assert [cache.get(a, "x"), cache.get(b, "x"), cache.get(b, "y"), cache.get(b, "z")] == ["ax", "bx", "by", "bz"]
    assert cache.used_bytes == 90 <= cache.budget
    assert cache.evictions == 1


def test_an_entry_larger_than_a_quarter_of_the_budget_is_not_kept(tmp_path: Path) -> None:
    cache = TableCache(budget=lambda: 100)
    a = _identity(tmp_path, "a")
    cache.put(a, "small", 1, 10)
    assert cache.put(a, "big", "value", 26) == "value"  # still handed back to the caller
    assert cache.get(a, "big") is None and cache.get(a, "small") == 1


def test_get_or_make_makes_once(tmp_path: Path) -> None:
    cache = TableCache(budget=lambda: MB)
    a = _identity(tmp_path, "a")
    made: list[int] = []

    def make() -> tuple[str, int]:
        made.append(1)
        return "value", 10

    assert cache.get_or_make(a, "item", make) == cache.get_or_make(a, "item", make) == "value"
    assert len(made) == 1


def test_a_replaced_file_drops_what_the_old_one_left(tmp_path: Path) -> None:
    cache = TableCache(budget=lambda: MB)
    old = _identity(tmp_path, "t", b"old")
    cache.put(old, "column", "old data", 100)

    replacement = tmp_path / "t.new"
    replacement.write_bytes(b"new!")
    os.replace(replacement, tmp_path / "t")
    new = identify(tmp_path / "t")

    assert new != old and new.path == old.path
    assert cache.get(new, "column") is None
    assert cache.get(old, "column") is None  # dropped when the new file was seen, not left to age out
    assert cache.used_bytes == 0


def test_a_zero_budget_turns_the_cache_off(tmp_path: Path) -> None:
    budget = [MB]
    cache = TableCache(budget=lambda: budget[0])
    a = _identity(tmp_path, "a")
    cache.put(a, "x", "kept", 10)
    budget[0] = 0

    assert cache.get(a, "x") is None
    cache.put(a, "y", "not kept", 10)
    assert len(cache) == 0 and cache.used_bytes == 0 and not cache.enabled


def test_the_budget_comes_from_the_setting() -> None:
    with override_settings(MEV_CONTENTS_CACHE_MB=3):
        assert table_cache.budget_bytes() == 3 * MB
    with override_settings(MEV_CONTENTS_CACHE_MB="0.5"):
        assert table_cache.budget_bytes() == MB // 2
    with override_settings(MEV_CONTENTS_CACHE_MB="lots"):
        with pytest.raises(ValueError, match="MEV_CONTENTS_CACHE_MB"):
            table_cache.budget_bytes()


def test_without_the_setting_the_environment_then_the_default_decide(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.conf import settings

    if hasattr(settings, "MEV_CONTENTS_CACHE_MB"):
        monkeypatch.delattr(settings, "MEV_CONTENTS_CACHE_MB", raising=False)
    monkeypatch.setenv("MEV_CONTENTS_CACHE_MB", "7")
    assert table_cache._read_budget() == 7 * MB
    monkeypatch.delenv("MEV_CONTENTS_CACHE_MB")
    assert table_cache._read_budget() == table_cache.DEFAULT_BUDGET_MB * MB


def test_a_replaced_table_is_never_answered_from_the_cache(tmp_path: Path) -> None:
    path = tmp_path / "ft.parquet"
    write_table(pa.table({"g": ["a", "b", "c"], "x": [3.0, 1.0, 2.0]}), path, kind="feature")
    params = [("sort_vals", "[asc]:x"), ("x", "[gt]:0"), ("page", "1")]
    with override_settings(MEV_CONTENTS_CACHE_MB=64):
        assert _rows(query_table(path, params, kind="feature", base_url="http://t/")) == ["b", "c", "a"]
        assert len(CACHE) > 0

        # Same path, same shape: only the values change (and with them the file's identity).
        write_table(pa.table({"g": ["a", "b", "c"], "x": [1.0, 3.0, 2.0]}), path, kind="feature")

        assert _rows(query_table(path, params, kind="feature", base_url="http://t/")) == ["a", "c", "b"]


def test_queries_are_the_same_with_the_cache_on_and_off(tmp_path: Path) -> None:
    path = tmp_path / "ft.parquet"
    n = 2500
    write_table(
        pa.table({"g": [f"g{i}" for i in range(n)], "x": [float((i * 37) % 101) for i in range(n)],
                  "t": ["NA" if i % 7 == 0 else f"t{i % 13}" for i in range(n)]}),
        path,
        kind="feature",
    )
    queries = [
        [("page", "3"), ("page_size", "50")],
        [("x", "[lt]:30"), ("sort_vals", "[desc]:x"), ("page", "2"), ("page_size", "25")],
        [("t", "[startswith]:t1"), ("sort_vals", "[asc]:t"), ("page", "last")],
        [("sort_vals", "[asc]:t,[desc]:x"), ("page", "4"), ("page_size", "10")],
    ]
    answers = {}
    for budget in (0, 64, 64):  # off, then on (filling the cache), then on again (from the cache)
        with override_settings(MEV_CONTENTS_CACHE_MB=budget):
            answers.setdefault(budget, []).append(
                [query_table(path, q, kind="feature", base_url="http://t/") for q in queries]
            )
    off, (filling, cached) = answers[0][0], answers[64]
    assert off == filling == cached


def test_the_cache_stays_within_its_budget_across_many_tables(tmp_path: Path) -> None:
    with override_settings(MEV_CONTENTS_CACHE_MB=1):
        for i in range(12):
            path = tmp_path / f"t{i}.parquet"
            write_table(pa.table({"g": [f"g{j}" for j in range(5000)], "x": [float(j) for j in range(5000)]}),
                        path, kind="feature")
            query_table(path, [("sort_vals", "[desc]:x"), ("page", "1")], kind="feature", base_url="http://t/")
        assert 0 < CACHE.used_bytes <= MB
