"""Guard verdicts remembered by the exact text they were given (a bounded LRU, cachetools).

hybridwb sends the same texts again and again: the statements it builds itself (a search of
one shape, the probe before it, a preview) and what a notebook repeats (`pd.read_sql` of
one query on `wb.engine`). The guard's decision on a text depends on nothing but that text,
the functions allowlisted and the guard's own rules, so each text is parsed once and the
admission is looked up after that.

The key is the text itself, unchanged: a text that differs by one character (a comment,
a space, the case of a letter in a string literal) is another key and is checked in full.
Only admissions are kept; a refusal is decided again each time (it is rare, and a refused
text must never be able to stand in for anything). The keys are statement texts, which can
hold a customer's literal: the cache's repr shows its size only. The cache is bounded in
entries and in estimated bytes (`cache.WeighedLRU`): a long statement's tokens and parse
tree take ~110 bytes a character, so a count alone let a few dozen long texts hold gigabytes.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from hybridwb.source import guard
from hybridwb.source.cache import WeighedLRU

#: admitted texts remembered per process
MAX_VERDICTS = 4096
#: and their estimated memory at most: MAX_VERDICTS * VERDICT_UNIT (64 MB), each entry
#: weighing at least the unit (see `weight`)
VERDICT_UNIT = 16 * 1024
#: estimated bytes one token of an admitted statement holds (the Token, its text and its
#: share of the parse tree; measured ~530 on a long IN list)
TOKEN_BYTES = 600


def weight(value: Any) -> int:
    """The estimated memory of a remembered verdict: a statement's tokens and tree, or (an
    admission) the bytes of its key's texts, which the entry keeps as its value."""
    if isinstance(value, guard.Checked):
        return TOKEN_BYTES * len(value.tokens) + 2 * len(value.sql)
    return value if type(value) is int else 0


def rules() -> tuple[Any, ...]:
    """What besides the text and the allowlist decides a verdict: the guard's dialect and
    limits, looked up when asked (a changed rule is a different key, never a stale hit)."""
    return (
        id(guard._DIALECT),
        guard.MAX_QUERY_BYTES,
        guard.MAX_NESTING,
        id(guard.DANGEROUS_FUNCTIONS),
        id(guard.READ_HINTS),
    )


class Verdicts:
    """`check(text, allowed)` is `guard.check` with the admission remembered; `admits(key,
    decide)` remembers any other yes/no admission of a text (a final text that is an
    approved text with values in place of its binds)."""

    def __init__(self, maxsize: int = MAX_VERDICTS) -> None:
        self._cache: WeighedLRU = WeighedLRU(maxsize, VERDICT_UNIT, weight)
        self._lock = threading.Lock()

    def check(self, text: object, allowed: tuple[str, ...] = ()) -> guard.Checked:
        if not isinstance(text, str):  # bytes and the rest: checked (and refused) in full
            return guard.check(text, allowed_functions=allowed)
        key = ("check", text, allowed, rules())
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        checked = guard.check(text, allowed_functions=allowed)
        with self._lock:
            self._cache[key] = checked
        return checked

    def admits(self, key: tuple[Any, ...], decide: Callable[[], bool]) -> bool:
        """`decide()` once per exact `key` while it says True; False is never kept."""
        full = ("admits", *key, rules())
        with self._lock:
            if self._cache.get(full):
                return True
        if not decide():
            return False
        # kept as the value: the bytes of the key's texts (a final text with its values),
        # which the entry weighs (always > 0: a str is never smaller than its header)
        size = sum(sys.getsizeof(part) for part in full if isinstance(part, str))
        with self._lock:
            self._cache[full] = size
        return True

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)

    def __repr__(self) -> str:
        return f"<Verdicts: {len(self._cache)} of {self._cache.count}>"


#: the process's verdicts: every Source and engine shares them (a verdict is a property of
#: the text, not of a connection)
VERDICTS = Verdicts()


def _renew_after_fork() -> None:
    """In a forked child: a lock another thread of the parent held at the fork (every
    statement's check takes it) would stay held forever, and the cache it guards may be
    half changed: the child starts with new ones."""
    VERDICTS._lock = threading.Lock()
    VERDICTS._cache = WeighedLRU(VERDICTS._cache.count, VERDICT_UNIT, weight)


os.register_at_fork(after_in_child=_renew_after_fork)
