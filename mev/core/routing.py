"""Routes that answer with and without the final slash, as the web client needs (contract §1.1)."""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, path


def route(pattern: str, view: Any, name: str | None = None) -> list[URLPattern]:
    """The canonical slash route, plus the same route without its final slash (no redirect)."""
    if not pattern.endswith("/"):
        raise ValueError(f"canonical routes end with '/': {pattern!r}")
    patterns = [path(pattern, view, name=name)]
    if pattern != "":
        patterns.append(path(pattern[:-1], view))
    return patterns


def routes(*groups: list[URLPattern]) -> list[URLPattern]:
    return [p for group in groups for p in group]
