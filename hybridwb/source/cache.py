"""The result cache of the source: bounded in bytes, evicting, thread-safe (cachetools).

Previews ask for the same statement again and again within seconds; the cache answers
them without a round trip. It holds at most `max_bytes` of results (their estimated size in
memory; least recently used results go first) and nothing older than `max_ttl` seconds; each
entry also keeps the shorter TTL its caller asked for. A budget in rows would not bound the
memory: a preview row of ten columns weighs ~650 bytes, so 200,000 rows held ~130 MB per
process (issue 15's load benchmark).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from cachetools import Cache, LRUCache, TTLCache

Result = tuple[Any, ...]  # columns, rows, truncated (and what the read described)


def lookup(cache: Cache[Any, Any], key: Any) -> Any:
    """`cache.get(key)`: the value, or None. cachetools' `get` asks `key in cache` and
    then `cache[key]` (a TTLCache reads its clock in each); one `cache[key]` answers both,
    and a read path asks several times per statement."""
    try:
        return cache[key]
    except KeyError:
        return None


class QuietLRU(LRUCache[Any, Any]):
    """An LRU cache whose repr shows its size only: its keys are statement texts, which can
    hold literals a user typed (a phone in a WHERE), and reprs must never show those."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {len(self)} of {self.maxsize}>"


class WeighedLRU(QuietLRU):
    """An LRU of at most `count` entries and at most `count * unit` estimated bytes: each
    entry weighs what `weigh` estimates for its value, never less than `unit`. A count alone
    bounds nothing: an admitted statement's tokens and parse tree take ~110 bytes a character
    of its text, so 4,096 of 200 kB held ~90 GB. An entry heavier than the whole budget is
    not kept (it is decided again when asked)."""

    def __init__(self, count: int, unit: int, weigh: Callable[[Any], int]) -> None:
        super().__init__(maxsize=count * unit, getsizeof=lambda value: max(unit, weigh(value)))
        self.count = count

    def __setitem__(self, key: Any, value: Any) -> None:
        with contextlib.suppress(ValueError):  # heavier than the whole budget: not kept
            super().__setitem__(key, value)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {len(self)} of {self.count}>"


MAX_BYTES = 32 * 1024 * 1024
MAX_TTL = 300.0
#: rows measured to estimate a result's size (evenly spread; the rest are extrapolated)
SIZE_SAMPLE = 64


def result_bytes(result: Result) -> int:
    """The memory a result holds, estimated from up to `SIZE_SAMPLE` of its rows (the row
    tuples and their values; the column names are shared with every other result)."""
    rows = result[1]
    if hasattr(rows, "nbytes"):  # Arrow arrays (`arrow.Batches`)
        return int(rows.nbytes) + 200
    size = sys.getsizeof(rows) + 200  # the entry's own tuples and the monotonic deadline
    if not rows:
        return size
    step = max(1, len(rows) // SIZE_SAMPLE)
    sample = rows[::step]
    measured = sum(sys.getsizeof(r) + sum(map(sys.getsizeof, r)) for r in sample)
    return size + measured * len(rows) // len(sample)


class ResultCache:
    def __init__(self, max_bytes: int = MAX_BYTES, max_ttl: float = MAX_TTL) -> None:
        self.max_ttl = max_ttl
        self.max_bytes = max(0, int(max_bytes))
        self._entries: TTLCache[tuple[Any, ...], tuple[float, Result]] = TTLCache(
            maxsize=max(1, self.max_bytes), ttl=max_ttl, getsizeof=lambda v: result_bytes(v[1])
        )
        self._lock = threading.Lock()

    @staticmethod
    def key(
        query: object, params: Mapping[str, Any] | None, *extra: object
    ) -> tuple[Any, ...] | None:
        """A hashable key for a call, or None when the arguments cannot be one."""
        try:
            key = (query, repr(sorted(dict(params or {}).items())), *extra)
            hash(key)
        except (TypeError, ValueError):
            return None
        return key

    def get(self, key: tuple[Any, ...]) -> Result | None:
        with self._lock:
            hit = self._entries.get(key)
        if hit is None or hit[0] <= time.monotonic():
            return None
        return hit[1]

    def put(self, key: tuple[Any, ...], result: Result, ttl: float) -> None:
        if not self.max_bytes:
            return  # caching switched off
        with self._lock, contextlib.suppress(ValueError):  # larger than the whole cache
            self._entries[key] = (time.monotonic() + ttl, result)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    @property
    def bytes(self) -> int:
        """Estimated bytes held now (what the budget bounds)."""
        return int(self._entries.currsize)

    def __repr__(self) -> str:  # keys are statement texts: never shown
        return f"<ResultCache: {len(self)} results, {self.bytes:,} of {self.max_bytes:,} bytes>"

    def __len__(self) -> int:
        return len(self._entries)


#: seconds a schema's list of tables is trusted before it is read again
VIEW_TTL = 10.0


class SchemaObjects(NamedTuple):
    """One schema's names in lower case: its base tables, and every other object (views,
    system views) so that a view and a table whose names differ only in case both count."""

    tables: frozenset[str]
    others: frozenset[str]

    def is_plain_table(self, name: str) -> bool:
        """A base table known when the list was read, and nothing else by that name."""
        name = name.lower()
        return name in self.tables and name not in self.others


class ViewNames:
    """What each schema holds, read from information_schema and kept `VIEW_TTL` seconds.

    A statement that reads a view may run server code the guard never saw (the view's
    body: GET_LOCK, a stored function setting a user variable or `SET TRANSACTION READ
    WRITE`...); `Source` reads the session back after such a statement. Anything that is not
    a base table known when the list was read counts as a view, so a view created since is
    read back too; names are compared in lower case, matching a view more often, never less."""

    def __init__(self, ttl: float = VIEW_TTL, max_schemas: int = 64) -> None:
        self._schemas: TTLCache[str, SchemaObjects] = TTLCache(maxsize=max_schemas, ttl=ttl)
        self._lock = threading.Lock()

    def get(self, schema: str) -> SchemaObjects | None:
        with self._lock:
            return lookup(self._schemas, schema.lower())

    def put(self, schema: str, tables: Iterable[str], others: Iterable[str] = ()) -> None:
        objects = SchemaObjects(
            frozenset(n.lower() for n in tables), frozenset(n.lower() for n in others)
        )
        with self._lock:
            self._schemas[schema.lower()] = objects

    def clear(self) -> None:
        with self._lock:
            self._schemas.clear()
