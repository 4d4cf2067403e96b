"""Attack round 27 on the caches of the read path's fast paths: what the guard admitted is
remembered by exact text (`Source.prepare`'s LRU, the process-wide `VERDICTS`), bounded in
entries — but an entry's memory grows with its text: the tokens and parse tree of an
admitted statement take ~110 bytes of memory per character of it, so 4,096 remembered
verdicts of 200 kB statements (an `IN (...)` list of 20,000 literal ids, under the 256 kB
limit) held ~90 GB, 512 prepared ones ~11 GB; and a final text admitted as "the approved
statement with values in place" keeps the whole text with its values (a bound list of
10,000 keys) as its key. A notebook looping over batches of ids ran the kernel out of
memory. Now each cache is bounded in estimated bytes as well (`cache.WeighedLRU`).

Oracle: the bytes of every object still reachable from the cache.

Scale: each test sets a budget an eighth of the shipped one (a smaller count of verdicts, a
smaller unit of a prepared statement) and statements an eighth as long. What is checked is
the ratio of what a cache holds to its budget: an IN list's tokens and tree per character,
and the estimate per token, are the same at 12 kB and at 100 kB, so the held/budget ratio
(and the mutation's overrun, ~2x) is the same at either scale; the shipped budgets are pinned
as numbers (`test_the_shipped_budgets_are_64_and_32_mb`).
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
from hybridwb.source import source as source_module
from hybridwb.source.verdicts import Verdicts

MB = 1024 * 1024
#: verdicts kept in the scaled-down caches: a budget of 512 * 16 kB = 8 MB (shipped: 64 MB)
SCALED_VERDICTS = 512
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
    tokens and tree (12 -> ~128 MB of a 64 MB budget). Here at an eighth of the scale:
    12.5 kB statements (~1.4 MB each, 12 -> ~17 MB) in an 8 MB budget. Mutation: the
    verdicts' cache bounded by count only (`QuietLRU(maxsize=maxsize)`) -> fails."""
    cache = Verdicts(maxsize=SCALED_VERDICTS)
    budget = SCALED_VERDICTS * verdicts.VERDICT_UNIT
    texts = [_in_list(1_250, seed) for seed in range(12)]
    for text in texts:
        assert cache.check(text).kind == "select"
    held = _held(cache)
    assert held < budget, f"{held / MB:.1f} MB held by {len(cache)} verdicts"
    assert cache.check(texts[-1]).sql == texts[-1]


def test_admitted_final_texts_stay_bounded_in_memory() -> None:
    """A final text admitted as the approved statement with its values in place is kept as
    a key: 2,000 distinct lists of 100 kB (a batch of keys each) held ~200 MB of a 64 MB
    budget. Here at an eighth: 500 of 50 kB (~25 MB, under the count of 512) in 8 MB.
    Mutation: as above -> fails."""
    cache = Verdicts(maxsize=SCALED_VERDICTS)
    budget = SCALED_VERDICTS * verdicts.VERDICT_UNIT
    approved = "SELECT a FROM t WHERE a IN :ids"
    for i in range(500):
        final = f"SELECT a FROM t WHERE a IN ({i},{'1,' * 25_000}1)"
        assert cache.admits(("values of", approved, (), final), lambda: True)
    held = _held(cache)
    assert held < budget * 1.25, f"{held / MB:.1f} MB held by {len(cache)} admissions"


def test_prepared_statements_of_a_source_stay_bounded_in_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`Source.prepare` remembers each admitted statement with its parse (512 of them):
    the source's own cache held ~11 MB a 100 kB statement, whatever the process's verdicts
    keep (12 -> ~128 MB of a 32 MB budget). Here at an eighth: an 8 kB unit (a 4 MB budget
    for the same 512 statements), 12.5 kB statements (12 -> ~17 MB). Mutation: `_prepared`
    back to `QuietLRU(maxsize=PREPARED_STATEMENTS)` -> fails."""
    monkeypatch.setattr("hybridwb.source.source.VERDICTS", Verdicts(maxsize=1))
    monkeypatch.setattr(source_module, "PREPARED_UNIT", source_module.PREPARED_UNIT // 8)
    budget = source_module.PREPARED_STATEMENTS * source_module.PREPARED_UNIT
    src = Source(URL.create("mysql+pymysql", host="127.0.0.1", database="x"))  # no I/O
    for seed in range(12):
        text = _in_list(1_250, 100 + seed)
        assert src.prepare(text).sql == text
    held = _held(src._prepared)
    assert held < budget * 1.5, f"{held / MB:.1f} MB held by {len(src._prepared)} statements"
    assert repr(src._prepared).endswith("of 512>")  # a count in the repr, no text


def test_small_statements_are_still_remembered_by_the_hundred() -> None:
    """The byte bound must not cost the hot paths their hits: short statements fill the
    whole count, and a search-sized one (2 kB, a hundred columns) fits by the hundred.
    The count filled is 512, not the shipped 4,096: the budget is count * unit and a short
    statement fills the whole count exactly when it weighs no more than the unit, whatever
    the count."""
    cache = Verdicts(maxsize=SCALED_VERDICTS)
    for i in range(SCALED_VERDICTS):
        cache.check(f"SELECT {i} AS n")
    assert len(cache) == SCALED_VERDICTS
    search = "SELECT " + ", ".join(f"c.col_{i} AS col_{i}" for i in range(110)) + " FROM c"
    assert len(search) > 2_000 and isinstance(guard.check(search), guard.Checked)
    cache = Verdicts()
    for i in range(150):
        cache.check(f"{search} WHERE c.id > {i}")
    assert len(cache) == 150


def test_the_shipped_budgets_are_64_and_32_mb() -> None:
    """The tests above run at an eighth of the scale; the budgets shipped are these."""
    assert verdicts.MAX_VERDICTS * verdicts.VERDICT_UNIT == 64 * MB
    assert verdicts.Verdicts()._cache.maxsize == 64 * MB
    assert source_module.PREPARED_STATEMENTS * source_module.PREPARED_UNIT == 32 * MB
    src = Source(URL.create("mysql+pymysql", host="127.0.0.1", database="x"))  # no I/O
    assert src._prepared.maxsize == 32 * MB
