"""Attack round 27 on the caches of the read path's fast paths: what the guard admitted is
remembered by exact text (`Source.prepare`'s LRU, the process-wide `VERDICTS`), bounded in
entries — but an entry's memory grows with its text: the tokens and parse tree of an
admitted statement take ~110 bytes of memory per character of it, so 4,096 remembered
verdicts of 200 kB statements (an `IN (...)` list of 20,000 literal ids, under the 256 kB
limit) held ~90 GB, 512 prepared ones ~11 GB; and a final text admitted as "the approved
statement with values in place" keeps the whole text with its values (a bound list of
10,000 keys) as its key. A notebook looping over batches of ids ran the kernel out of
memory. Now each cache is bounded in estimated bytes as well (`cache.WeighedLRU`).

Oracle: `tracemalloc`'s count of the memory still held after the calls (and a collection).
"""

from __future__ import annotations

import enum
import gc
import random
import sys
import types

import pytest
from sqlalchemy.engine import URL

from hybridwb.source import Source, guard, verdicts
from hybridwb.source.verdicts import Verdicts

MB = 1024 * 1024
_SHARED = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    enum.Enum,
)


def _held(cache: object) -> int:
    """The bytes of every object reachable from `cache` (classes, functions and enum
    members, shared with the rest of the process, left out)."""
    seen: set[int] = set()
    stack = [cache]
    total = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _SHARED):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def _in_list(n: int, seed: int) -> str:
    """A statement of about 10 bytes per id: an IN list of literal ids (admitted)."""
    rng = random.Random(seed)
    ids = ",".join(str(rng.randrange(10**8, 10**9)) for _ in range(n))
    return f"SELECT a FROM t WHERE a IN ({ids})"


def test_remembered_verdicts_of_long_statements_stay_bounded_in_memory() -> None:
    """Before: each admitted 100 kB statement stayed in `VERDICTS` with its ~11 MB of
    tokens and tree (12 -> ~128 MB). Mutation: the verdicts' cache bounded by count only
    (`QuietLRU(maxsize=maxsize)`) -> fails."""
    cache = Verdicts()
    texts = [_in_list(10_000, seed) for seed in range(12)]
    for text in texts:
        assert cache.check(text).kind == "select"
    held = _held(cache)
    assert held < 64 * MB, f"{held / MB:.0f} MB held by {len(cache)} verdicts"
    assert cache.check(texts[-1]).sql == texts[-1]


def test_admitted_final_texts_stay_bounded_in_memory() -> None:
    """A final text admitted as the approved statement with its values in place is kept as
    a key: 2,000 distinct lists of 100 kB (a batch of keys each) held ~200 MB. Mutation:
    as above -> fails."""
    cache = Verdicts()
    approved = "SELECT a FROM t WHERE a IN :ids"
    for i in range(2_000):
        final = f"SELECT a FROM t WHERE a IN ({i},{'1,' * 50_000}1)"
        assert cache.admits(("values of", approved, (), final), lambda: True)
    held = _held(cache)
    assert held < 80 * MB, f"{held / MB:.0f} MB held by {len(cache)} admissions"


def test_prepared_statements_of_a_source_stay_bounded_in_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`Source.prepare` remembers each admitted statement with its parse (512 of them):
    the source's own cache held ~11 MB a 100 kB statement, whatever the process's verdicts
    keep. Mutation: `_prepared` back to `QuietLRU(maxsize=PREPARED_STATEMENTS)` -> fails."""
    monkeypatch.setattr("hybridwb.source.source.VERDICTS", Verdicts(maxsize=1))
    src = Source(URL.create("mysql+pymysql", host="127.0.0.1", database="x"))  # no I/O
    for seed in range(12):
        text = _in_list(10_000, 100 + seed)
        assert src.prepare(text).sql == text
    held = _held(src._prepared)
    assert held < 48 * MB, f"{held / MB:.0f} MB held by {len(src._prepared)} statements"
    assert repr(src._prepared).endswith("of 512>")  # a count in the repr, no text


def test_small_statements_are_still_remembered_by_the_hundred() -> None:
    """The byte bound must not cost the hot paths their hits: short statements fill the
    whole count, and a search-sized one (2 kB, a hundred columns) fits by the hundred."""
    cache = Verdicts()
    for i in range(verdicts.MAX_VERDICTS):
        cache.check(f"SELECT {i} AS n")
    assert len(cache) == verdicts.MAX_VERDICTS
    search = "SELECT " + ", ".join(f"c.col_{i} AS col_{i}" for i in range(110)) + " FROM c"
    assert len(search) > 2_000 and isinstance(guard.check(search), guard.Checked)
    cache = Verdicts()
    for i in range(150):
        cache.check(f"{search} WHERE c.id > {i}")
    assert len(cache) == 150
