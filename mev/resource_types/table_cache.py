"""A bounded, per-process cache of what the contents engine derives from stored tables.

Every contents request used to parse the Parquet footer (1.6 MB for a 60,000 x 500 matrix written
with 1,000-row groups: ~20 ms), decode the key columns of its filters and sorts, and sort them.
None of that changes between requests, so each worker process keeps it here:

- the parsed footer and layout of every table it reads;
- a narrow table decoded whole (the 60,000 x 6 DGE tables: ~4 MB), so its pages never touch the file;
- for wide tables, only the columns that filters and sorts decoded, their sort orders and the
  precomputed row means.

Entries are keyed by the file's identity (path, inode, size, modification time): a file replaced
under the same path gets a new identity, so it is never answered from what the old file held, and
the old file's entries are dropped the moment the new one is seen. The cache has a fixed budget
(``MEV_CONTENTS_CACHE_MB``, default 256; 0 turns it off) and evicts the least recently used
entries beyond it; one entry may take at most a quarter of it. Sizes are what the entry holds in
memory (array buffers), estimated where Arrow does not say.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

SETTING = "MEV_CONTENTS_CACHE_MB"
DEFAULT_BUDGET_MB = 256
# One entry may use at most this share of the budget, so a single large table cannot flush
# everything else out.
MAX_ENTRY_SHARE = 4

T = TypeVar("T")


class FileIdentity(NamedTuple):
    """What changes when a stored file is rewritten or replaced (a tuple: hashed on every lookup)."""

    path: str
    inode: int
    size: int
    mtime_ns: int


def identify(path: Path | str) -> FileIdentity:
    """The identity of the file at ``path`` now (one ``stat``); raises ``FileNotFoundError``."""
    name = os.path.abspath(path)
    stat = os.stat(name)
    return FileIdentity(name, stat.st_ino, stat.st_size, stat.st_mtime_ns)


_budget: int | None = None


def budget_bytes() -> int:
    """The cache budget in bytes, read once (and again after Django's ``setting_changed``)."""
    global _budget
    if _budget is None:
        _budget = _read_budget()
    return _budget


def _read_budget() -> int:
    """Django's ``MEV_CONTENTS_CACHE_MB`` if set, else the environment variable, else 256."""
    raw: Any = None
    try:
        from django.conf import settings

        if settings.configured:
            raw = getattr(settings, SETTING, None)
    except ImportError:  # pragma: no cover - Django is always installed with the server
        pass
    if raw is None:
        raw = os.environ.get(SETTING)
    if raw is None or raw == "":
        return DEFAULT_BUDGET_MB * 1024 * 1024
    try:
        megabytes = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{SETTING} must be a number of megabytes, not {raw!r}") from None
    return max(0, int(megabytes * 1024 * 1024))


def _forget_budget(*, setting: str, **_: Any) -> None:
    global _budget
    if setting == SETTING:
        _budget = None


try:  # tests change the setting with override_settings
    from django.core.signals import setting_changed

    setting_changed.connect(_forget_budget, dispatch_uid="mev.resource_types.table_cache")
except ImportError:  # pragma: no cover
    pass


class TableCache:
    """LRU of ``(file identity, item) -> value`` within a byte budget; safe to share between threads."""

    def __init__(self, budget: Callable[[], int] = budget_bytes) -> None:
        self._budget = budget
        self._entries: OrderedDict[tuple[FileIdentity, Hashable], tuple[Any, int]] = OrderedDict()
        self._items: dict[FileIdentity, set[Hashable]] = {}
        self._current: dict[str, FileIdentity] = {}  # the identity last seen under each path
        self._used = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    # ------------------------------------------------------------------ reading and writing

    @property
    def budget(self) -> int:
        return self._budget()

    @property
    def enabled(self) -> bool:
        return self.budget > 0

    @property
    def used_bytes(self) -> int:
        return self._used

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, identity: FileIdentity, item: Hashable) -> Any | None:
        """The cached value, or None (also when the cache is off)."""
        if self._budget() <= 0:
            if self._entries:
                self.clear()
            return None
        key = (identity, item)
        with self._lock:
            self._see(identity)
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[0]

    def put(self, identity: FileIdentity, item: Hashable, value: T, nbytes: int) -> T:
        """Keep ``value`` (``nbytes`` in memory) if it fits; returns ``value`` either way."""
        budget = self._budget()
        if budget <= 0:
            if self._entries:
                self.clear()
            return value
        nbytes = max(int(nbytes), 1)
        if nbytes * MAX_ENTRY_SHARE > budget:
            return value
        key = (identity, item)
        with self._lock:
            self._see(identity)
            old = self._entries.pop(key, None)
            if old is not None:
                self._used -= old[1]
            self._entries[key] = (value, nbytes)
            self._items.setdefault(identity, set()).add(item)
            self._used += nbytes
            while self._used > budget and self._entries:
                (old_identity, old_item), (_, size) = self._entries.popitem(last=False)
                self._used -= size
                self._drop_item(old_identity, old_item)
                self.evictions += 1
        return value

    def get_or_make(self, identity: FileIdentity, item: Hashable, make: Callable[[], tuple[T, int]]) -> T:
        """The cached value, else ``make()`` -> ``(value, nbytes)``, kept if it fits."""
        cached = self.get(identity, item)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        value, nbytes = make()
        return self.put(identity, item, value, nbytes)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._items.clear()
            self._current.clear()
            self._used = 0

    # ------------------------------------------------------------------ staleness

    def _see(self, identity: FileIdentity) -> None:
        """Drop what an earlier file under the same path left (called with the lock held)."""
        previous = self._current.get(identity.path)
        if previous == identity:
            return
        self._current[identity.path] = identity
        if previous is not None:
            for item in self._items.pop(previous, set()):
                entry = self._entries.pop((previous, item), None)
                if entry is not None:
                    self._used -= entry[1]

    def _drop_item(self, identity: FileIdentity, item: Hashable) -> None:
        items = self._items.get(identity)
        if items is None:
            return
        items.discard(item)
        if not items:
            del self._items[identity]
            if self._current.get(identity.path) == identity:
                del self._current[identity.path]


# One per worker process: gunicorn and Celery fork, and each child fills its own.
CACHE = TableCache()
