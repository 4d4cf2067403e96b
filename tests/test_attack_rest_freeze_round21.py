# ruff: noqa: F811  (the fixtures imported from test_rest_campaigns are test parameters here)
"""Attack round 21 on migration 0008: a freeze or a run's stats over REST writes only while
its process holds the run's lock. The SQL functions are attacked directly on PostgreSQL
(owners that look alike, a takeover in flight when a step arrives, a same-named table
earlier on the caller's search path, malformed pages), and `RestCampaigns.freeze` over
the PostgREST stand-in (the lock lost between the chunks of one page, a page's answer
lost and the request sent again). Every outcome is read with plain psycopg.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import httpx
import psycopg
import pytest
import respx
from _postgrest import PostgrestBridge
from psycopg.types.json import Jsonb

from hybridwb.errors import StoreError
from tests.test_rest_campaigns import (  # noqa: F401  (fixtures: db, run, campaigns)
    REST,
    _frozen,
    _fz,
    _hold_lock,
    campaigns,
    db,
    freeze,
    lock_waits,
    rows,
    run,
)

pytestmark = pytest.mark.postgres

THEIRS: list[tuple[str, str | None]] = [("t1", "+821000000001"), ("t2", "+821000000002")]


def _untouched(db: str, wf: str, rid: str, owner: str) -> None:
    """The new owner's set, mark, stats and lock as they were staged."""
    assert _frozen(db, rid) == [(i, k, r) for i, (k, r) in enumerate(THEIRS, 1)]
    assert rows(db, "SELECT frozen_at, frozen_count FROM run_state WHERE run_id = %s", rid) == [
        (None, 0)
    ]
    assert rows(db, "SELECT stats FROM workflow_runs WHERE id = %s", rid) == [({},)]
    assert rows(db, "SELECT owner FROM run_locks WHERE workflow_id = %s", wf) == [(owner,)]


STEPS: dict[str, tuple[str, dict[str, Any], Any]] = {
    "clear": ("hybridwb_freeze_clear", {}, False),
    "page": ("hybridwb_freeze_page", {"p_first_seq": 2, "p_pairs": [["m1", "+8210"]]}, False),
    "mark": ("hybridwb_freeze_mark", {}, {"held": False}),
    "stats": ("hybridwb_set_stats", {"p_stats": {"as_of": "mine"}}, False),
}


def test_an_owner_that_only_looks_like_the_holder_writes_nothing(
    db: str, run: tuple[str, str]
) -> None:
    """The lock is `me:1`'s: a case, a space, a LIKE pattern, a prefix or an empty owner
    is another owner, refused by every step."""
    wf, rid = run
    freeze(db, rid, THEIRS)
    _hold_lock(db, wf, rid, "me:1")
    for owner in ("ME:1", "me:1 ", " me:1", "me:%", "me:_", "%", "me", ""):
        for fn, kw, lost in STEPS.values():
            assert _fz(db, fn, wf, rid, owner, **kw) == lost, (fn, owner)
    _untouched(db, wf, rid, "me:1")


@pytest.mark.parametrize("step", sorted(STEPS))
def test_a_step_arriving_during_a_takeover_waits_and_then_writes_nothing(
    db: str, run: tuple[str, str], step: str
) -> None:
    """The takeover's transaction has changed the lock's owner and not committed when the
    old owner's step arrives: the step waits for it, sees the new owner and writes nothing
    (a beat that reads the lock without locking its row saw the old owner and wrote)."""
    wf, rid = run
    freeze(db, rid, THEIRS)  # the set the new owner resumes with
    _hold_lock(db, wf, rid, "me:1")
    fn, kw, lost = STEPS[step]
    out: list[Any] = []
    with psycopg.connect(db) as takeover:
        takeover.execute(
            "UPDATE run_locks SET owner = 'new:1', heartbeat_at = now() WHERE workflow_id = %s",
            [wf],
        )
        thread = threading.Thread(target=lambda: out.append(_fz(db, fn, wf, rid, "me:1", **kw)))
        thread.start()
        waiting = lock_waits(db, f"%{fn}%", thread, seconds=20)
        takeover.commit()
    thread.join()
    assert out == [lost]
    assert waiting == 1  # it had waited for the takeover
    _untouched(db, wf, rid, "new:1")


def test_a_same_named_table_on_the_callers_search_path_is_not_the_lock(
    db: str, run: tuple[str, str]
) -> None:
    """A `run_locks` naming the caller as holder, in a temporary table or in a schema ahead
    of `public` on the caller's search path, is not read: the functions name their own."""
    wf, rid = run
    freeze(db, rid, THEIRS)
    _hold_lock(db, wf, rid, "new:1")
    schema = f"shadow_{uuid.uuid4().hex[:8]}"
    rows(db, f"CREATE SCHEMA {schema}")
    rows(db, f"CREATE TABLE {schema}.run_locks (LIKE public.run_locks)")
    rows(db, f"GRANT USAGE ON SCHEMA {schema} TO service_role")
    rows(db, f"GRANT ALL ON {schema}.run_locks TO service_role")
    fake = "INSERT INTO {}run_locks VALUES (%s, %s, 'me:1', now(), now())"
    rows(db, fake.format(f"{schema}."), wf, rid)
    try:
        for fn, kw, lost in STEPS.values():
            for temp in (True, False):
                with psycopg.connect(db) as conn:
                    conn.execute("SET LOCAL ROLE service_role")
                    if temp:
                        conn.execute(
                            "CREATE TEMP TABLE run_locks (LIKE public.run_locks) ON COMMIT DROP"
                        )
                        conn.execute(fake.format(""), [wf, rid])
                    else:
                        conn.execute(f"SET LOCAL search_path = {schema}, public")
                    args = ["p_run_id", "p_workflow_id", "p_owner", *kw]
                    sql = f"SELECT {fn}({', '.join(f'{a} => %s' for a in args)})"
                    values = [
                        rid,
                        wf,
                        "me:1",
                        *(v if isinstance(v, int) else Jsonb(v) for v in kw.values()),
                    ]
                    (value,) = conn.execute(sql, values).fetchone()  # type: ignore[misc]
                    conn.commit()
                assert value == lost, (fn, temp)
    finally:
        rows(db, f"DROP SCHEMA {schema} CASCADE")
    _untouched(db, wf, rid, "new:1")


@pytest.mark.parametrize(
    "pairs",
    [
        {"k": "+8210"},  # not an array
        Jsonb("k"),  # a JSON string
        Jsonb(None),  # JSON null (SQL NULL is an empty page)
        [["ok", "+8210"], [None, "+8211"]],  # a null key after a good pair
        [["ok", "+8210"], {"0": "k2"}],  # an object for a pair
    ],
    ids=["object", "json string", "json null", "null key", "object pair"],
)
def test_a_malformed_page_from_the_holder_is_refused_whole(
    db: str, run: tuple[str, str], pairs: Any
) -> None:
    """A page the function cannot read fails as one: no pair of it is written, the lock is
    not beaten (the transaction rolled back). (A bare scalar for a pair, `5` or `"k"`, is
    read as that key with no recipient: PostgreSQL's `->> 0` on a scalar; the client never
    sends one.)"""
    wf, rid = run
    _hold_lock(db, wf, rid, "me:1")
    before = rows(db, "SELECT heartbeat_at FROM run_locks WHERE workflow_id = %s", wf)
    with pytest.raises(psycopg.Error):
        _fz(db, "hybridwb_freeze_page", wf, rid, "me:1", p_first_seq=0, p_pairs=pairs)
    assert _frozen(db, rid) == []
    assert rows(db, "SELECT heartbeat_at FROM run_locks WHERE workflow_id = %s", wf) == before


# -- the client over the PostgREST stand-in ------------------------------------------------
class _Staged(PostgrestBridge):
    """The stand-in, with something done to the `nth` `hybridwb_freeze_page` request:
    `before` it reaches the database, or `after` it committed (its answer then lost)."""

    def __init__(self, dsn: str, nth: int, before: Any = None, after: Any = None) -> None:
        super().__init__(dsn)
        self.nth, self.before, self.after, self.pages = nth, before, after, 0

    def rpc(self, request: httpx.Request, fn: str) -> httpx.Response:
        if fn != "hybridwb_freeze_page":
            return super().rpc(request, fn)
        self.pages += 1
        if self.pages == self.nth and self.before:
            self.before()
        answer = super().rpc(request, fn)
        if self.pages == self.nth and self.after:
            self.after()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return answer


def _new_owner_takes_over(db: str, wf: str, rid: str) -> None:
    rows(db, "UPDATE run_locks SET owner = 'new:1' WHERE workflow_id = %s", wf)
    assert _fz(db, "hybridwb_freeze_clear", wf, rid, "new:1") is True
    pairs = [list(p) for p in THEIRS]
    assert _fz(db, "hybridwb_freeze_page", wf, rid, "new:1", p_first_seq=0, p_pairs=pairs)


MINE: list[tuple[str, str | None]] = [(f"m{i}", f"+8210{i:08d}") for i in range(1, 6)]


def test_a_lock_lost_between_the_chunks_of_one_page_stops_the_freeze(
    db: str, run: tuple[str, str], campaigns: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page of 5 sent as chunks of 2: the run is taken over before its second chunk. The
    freeze stops at that chunk's false answer (no third chunk, no mark) and the new
    owner's set is as it wrote it."""
    from hybridwb.platform import rest_campaigns

    monkeypatch.setattr(rest_campaigns, "FREEZE_CHUNK", 2)
    wf, rid = run
    _hold_lock(db, wf, rid, "me:1")
    bridge = _Staged(db, 2, before=lambda: _new_owner_takes_over(db, wf, rid))
    with respx.mock(base_url=REST, assert_all_called=False) as router:
        bridge.mount(router)
        assert campaigns.freeze(rid, [MINE], workflow_id=wf, owner="me:1") is None
    assert bridge.pages == 2
    assert ("POST", "rpc/hybridwb_freeze_mark") not in bridge.requests
    _untouched(db, wf, rid, "new:1")


def test_a_page_whose_answer_was_lost_is_sent_again_and_numbered_once(
    db: str, run: tuple[str, str], campaigns: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second chunk commits and its answer is lost: the request is sent again, writes
    nothing twice, and the chunks after it keep their numbers (seq 1..5, count 5)."""
    from hybridwb.platform import rest_campaigns

    monkeypatch.setattr(rest_campaigns, "FREEZE_CHUNK", 2)
    wf, rid = run
    _hold_lock(db, wf, rid, "me:1")
    bridge = _Staged(db, 2, after=lambda: None)
    with respx.mock(base_url=REST, assert_all_called=False) as router:
        bridge.mount(router)
        assert campaigns.freeze(rid, [MINE[:3], MINE[3:]], workflow_id=wf, owner="me:1") == 5
    assert bridge.pages == 4  # the first page in 2 chunks, the second sent again, page 2
    assert _frozen(db, rid) == [(i, k, r) for i, (k, r) in enumerate(MINE, 1)]
    assert rows(db, "SELECT frozen_count FROM run_state WHERE run_id = %s", rid) == [(5,)]


def test_a_page_sent_again_after_a_takeover_is_refused(
    db: str, run: tuple[str, str], campaigns: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first chunk commits, its answer is lost, and the run is taken over before the
    request is sent again: the repeat is refused, the freeze stops, the new owner's set
    is as it wrote it."""
    from hybridwb.platform import rest_campaigns

    monkeypatch.setattr(rest_campaigns, "FREEZE_CHUNK", 2)
    wf, rid = run
    _hold_lock(db, wf, rid, "me:1")
    bridge = _Staged(db, 1, after=lambda: _new_owner_takes_over(db, wf, rid))
    with respx.mock(base_url=REST, assert_all_called=False) as router:
        bridge.mount(router)
        assert campaigns.freeze(rid, [MINE], workflow_id=wf, owner="me:1") is None
    assert bridge.pages == 2  # the first, and its repeat
    _untouched(db, wf, rid, "new:1")


class _LostClear(PostgrestBridge):
    """The stand-in, the first `hybridwb_freeze_clear` committed and its answer lost."""

    def __init__(self, dsn: str) -> None:
        super().__init__(dsn)
        self.clears = 0

    def rpc(self, request: httpx.Request, fn: str) -> httpx.Response:
        answer = super().rpc(request, fn)
        if fn == "hybridwb_freeze_clear":
            self.clears += 1
            if self.clears == 1:
                raise httpx.ReadTimeout("the answer was lost", request=request)
        return answer


def test_a_clear_whose_answer_was_lost_is_not_sent_again(
    db: str, run: tuple[str, str], campaigns: Any
) -> None:
    """The clear commits and its answer is lost: the freeze stops with a store error,
    nothing more sent, and the resume's freeze writes the whole set. Sent again, a first
    clear only delayed could land after the pages and the mark (a set marked frozen with
    nobody in it): round 21 reproduced that with the clear retried."""
    wf, rid = run
    _hold_lock(db, wf, rid, "me:1")
    bridge = _LostClear(db)
    with respx.mock(base_url=REST, assert_all_called=False) as router:
        bridge.mount(router)
        with pytest.raises(StoreError):
            campaigns.freeze(rid, [MINE], workflow_id=wf, owner="me:1")
        assert bridge.clears == 1
        assert ("POST", "rpc/hybridwb_freeze_page") not in bridge.requests
        assert campaigns.freeze(rid, [MINE], workflow_id=wf, owner="me:1") == 5
    assert _frozen(db, rid) == [(i, k, r) for i, (k, r) in enumerate(MINE, 1)]
