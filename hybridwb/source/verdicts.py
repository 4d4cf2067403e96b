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
hold a customer's literal: the cache's repr shows its size only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from hybridwb.source import guard
from hybridwb.source.cache import QuietLRU

#: admitted texts remembered per process
MAX_VERDICTS = 4096


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
        self._cache: QuietLRU = QuietLRU(maxsize=maxsize)
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
        with self._lock:
            self._cache[full] = True
        return True

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)

    def __repr__(self) -> str:
        return f"<Verdicts: {len(self._cache)} of {self._cache.maxsize}>"


#: the process's verdicts: every Source and engine shares them (a verdict is a property of
#: the text, not of a connection)
VERDICTS = Verdicts()
