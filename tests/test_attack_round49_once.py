"""Round 49 attack on "a run messages exactly the intended customers, once".

Source: fresh MariaDB databases (root's pymysql writes the changes); stores: a fresh
PostgreSQL database or a SQLite file; the oracle is direct SQL on the store (`store_sql`).

Break (fixed): a batch's source read was cut at its row cap, and a frozen key held by two
rows since the freeze was sent with one of them. A batch is read by the key range of its
first and last frozen keys (`audience.fetch`), capped at max(10 x batch, 10,000) rows; the
source cuts a longer read with a `RowsCut` warning (a warning in a notebook or papermill:
the run went on). With 9,997 rows that match the definition now but were not frozen
between two frozen keys (customers added since the freeze, under a text key that sorts
between them) and a row added under the frozen key m002 (round 5's F2: a key not unique),
the cut fell between m002's two rows: only the first was read, `by_key_text` saw the key
once, and m002 was messaged with a row not sure to be its customer's (F2's contract: the
target is excluded as `key not unique`). Now a cut range read is not trusted: every key of
the batch is looked up exactly (`_rows_by_key`, `cut_ok`), and a cut exact read stops the
run before the batch (nothing of it sent).

Break (fixed): a phone a guest row refused reached its other holder once the audience
table was longer than one refusal window. The refusal read (`refusals._windows`) walks the
whole audience table by key windows, `key <= end` then `key > last`; a row whose key is
NULL (a UNIQUE nullable member code; the target definition leaves such rows out, as the
freeze's own error asks) was in no window. With 10 members the read is one statement with
no key condition and m00003 (sharing the guest's phone) was excluded; with 20,005 it got
the advertisement. Now the first window also holds the NULL-key rows (`key IS NULL OR key
<= end`: no statement more), and such a row's holder is `MANY` (a member whose code is the
text 'None' was taken for the guest's own row and sent).

Break (fixed): a saved query that samples (`ORDER BY RAND() LIMIT 20`) was read anew by
every freeze page (`key > last LIMIT n` over the query) and every batch: the source
unchanged, 13-24 targets were frozen (not one sample of 20) and most of them then excluded
as 'gone from source' (6-8 messaged). Now a saved query calling RAND(), UUID(), SYSDATE()
... is refused where it is planned (save, preview, run: `targets.determinism`), naming a
hash sample instead; a view's body is not seen (residue).

Break (fixed): a saved query (or a view, as a table target) judged by the server's clock
(`joined > NOW() - INTERVAL 12 SECOND`, a welcome campaign's `CURDATE()`) was read again
by a resume's batches: frozen with 6 members, first batch failed, resumed after the window
with the source unchanged, all 6 were excluded as 'gone from source'. Now the freeze reads
the server's clock and keeps it with the set (`stats.frozen.clock`), and every read of the
run is sent as `SET STATEMENT timestamp = <clock> FOR ...` (MySQL: the session's
timestamp, set and put back), as a table definition's relative dates are bound as of the
freeze (`frozen.as_of`).

Held (one line each):
- an ENUM, SET or BIT key is refused at the workflow's save (round 49 tried ENUM('b','a',...)
  with batch_size 2: refused, no target lost).
- the phone normalizer on 58 more spellings ('010.1234.5678', '(+82)10-...', '820-10-...',
  '010)1234-5678', 'HP:010-...', '휴대폰 010-...', '(본인)' notes, '0 1 0 1 2 ...',
  1012345678.0, '001-82-...'): one E.164 for one number; two numbers in one field
  ('010-...,010-...', '/', '(010-...)') read as no recipient, never as one of them.
- a range read with 9,997 unfrozen rows between frozen keys and no key shared: every frozen
  target one record, none lost past the cut (SQLite and PostgreSQL stores).
- two workbenches calling `process` on one advertising run at once on the REST store
  (PostgREST stand-in over PostgreSQL), twice: one refused or done, each frozen target one
  record or one exclusion, each phone one record, a1 and b1 excluded (round 46's race was
  SQLite and PostgreSQL only).
- the REST store's `hybridwb_write_batch` writes neither a record for a target already
  excluded nor an exclusion for one already sent (read, 0005); the SQL stores rely on
  `pending` for this (the lock keeps one writer).
Noted, not changed: '+1 010-1234-5678' normalizes to the Korean +821012345678, while
'+1-010-1234-5678' is no recipient; '010ㅡ1234ㅡ5678' (the jamo ㅡ Korean typists use as
a dash) is no recipient (excluded, counted).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import respx
from _postgrest import PostgrestBridge, migrated_database

import hybridwb
from hybridwb.errors import HybridwbError, InternalError
from hybridwb.platform.campaigns import Campaigns
from hybridwb.workflows import audience, policies, refusals
from tests._stores import store_sql
from tests.conftest import _admin
from tests.test_attack_once_round2 import (
    DAY,
    INFO,
    any_store,  # noqa: F401  (fixtures)
    frozen,
    people,
    pg_store,  # noqa: F401
    skips,
    source,  # noqa: F401
    source_url,
    src,
    start,
    workbench,
)
from tests.test_attack_round46_once import _fail_first_batch, process_at_once
from tests.test_shared_recipient_consent import AD as SHARED_AD
from tests.test_shared_recipient_consent import mapping as members_mapping
from tests.test_shared_recipient_consent import members_source
from tests.test_shared_recipient_consent import workbench as members_workbench

pytestmark = [pytest.mark.mysql, pytest.mark.postgres]

REST_BASE = "https://proj.supabase.co"
REST_KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl"


def phone(i: int) -> str:
    return f"010-5100-{i:04d}"


def execute_many(db: str, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """Direct SQL on the MariaDB source as root, committed."""
    conn = _admin()
    try:
        with conn.cursor() as cur:
            cur.execute(f"USE `{db}`")
            cur.executemany(sql, rows)
        conn.commit()
    finally:
        conn.close()


#: what is added to the source after the freeze besides the 9,997 rows between m001 and m002
NEWCOMER = {"m002 shared": [(1, "m002", "다른이", phone(2))], "none": []}


@pytest.mark.filterwarnings("ignore::hybridwb.source.RowsCut")  # a warning in a notebook
@pytest.mark.parametrize("newcomer", list(NEWCOMER))
def test_a_key_shared_past_the_cut_of_a_batch_read_is_excluded_not_sent(
    source: Callable[..., str],  # noqa: F811
    any_store: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    newcomer: str,
) -> None:
    """BREAK on main (newcomer 'm002 shared'): 9,997 rows added after the freeze between the
    frozen keys m001 and m002, and a second row under m002: the batch's range read (cap
    10,000) ended on m002's first row, so m002 was sent though its key is now shared. It is
    excluded as `key not unique`; every other frozen target gets one record. Oracle:
    send_records and run_skips by direct SQL."""
    db = source(
        "CREATE TABLE members (id INT PRIMARY KEY, code VARCHAR(20) NOT NULL, "
        "name VARCHAR(20), mobile VARCHAR(20), KEY (code))",
        rows={"members": [(100 + i, f"m{i:03d}", f"회원{i}", phone(i)) for i in range(6)]},
    )
    wb = workbench(db, any_store, {"members": people()})
    real_freeze = Campaigns.freeze

    def freeze(self: Campaigns, *a: Any, **kw: Any) -> Any:
        out = real_freeze(self, *a, **kw)
        between = [(20_000 + j, f"m001_{j:05d}", "새회원", "010-5999-0000") for j in range(9_997)]
        added = between + NEWCOMER[newcomer]
        execute_many(db, "INSERT INTO members VALUES (%s, %s, %s, %s)", added)
        return out

    monkeypatch.setattr(Campaigns, "freeze", freeze)
    try:
        wf = wb.workflows.create(
            "cut", target_config={"table": "members"}, message_config={"content": INFO}
        )
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=6)
    finally:
        wb.close()
    shared = {"m002"} if NEWCOMER[newcomer] else set()
    sent = store_sql(any_store, "SELECT target_key, content FROM send_records ORDER BY 1")
    assert [(str(k), str(c)) for k, c in sent] == [
        (f"m{i:03d}", f"회원{i}님, 이번 달 안내입니다.")
        for i in range(6)
        if f"m{i:03d}" not in shared
    ]
    assert skips(any_store, run_id) == ({audience.KEY_NOT_UNIQUE: 1} if shared else {})
    excluded = store_sql(any_store, "SELECT target_key FROM run_skips")
    assert {str(k) for (k,) in excluded} == shared


# -- a refusing row whose key is NULL, in a table of more than one refusal window -------------
#: the refusal read's window: an audience table of more rows is walked window by window
BIG = refusals.WINDOW + 5


def _guest_members(make: Callable[..., str], size: int) -> str:
    """`size` members (codes m00000 ..., each a phone of their own, consenting) and a guest
    row with no member code (NULL in the UNIQUE, nullable key column) holding m00003's
    phone, refusing marketing and night consent."""
    rows: list[tuple[Any, ...]] = [
        (f"m{i:05d}", "가", f"010-6{i // 10000:03d}-{i % 10000:04d}", f"x{i}@x.com", "Y", "Y")
        for i in range(size)
    ]
    rows.append((None, "손님", rows[3][2], "guest@x.com", "N", "N"))
    rows.append(("None", "다", rows[3][2], "none@x.com", "Y", "Y"))  # a code that reads 'None'
    return make(
        "CREATE TABLE members (code VARCHAR(10) NULL UNIQUE, name VARCHAR(20), "
        "mobile VARCHAR(30), email VARCHAR(100), ok VARCHAR(8) NULL, night VARCHAR(8) NULL)",
        rows={"members": rows},
    )


@pytest.mark.parametrize(
    "size",
    [
        pytest.param(10, id="one-window"),
        pytest.param(BIG, id="two-windows"),
    ],
)
def test_a_phone_a_guest_row_with_no_key_refused_gets_no_advertisement(
    source: Callable[..., str],  # noqa: F811
    any_store: str,  # noqa: F811
    size: int,
) -> None:
    """A guest row (its member code NULL: the key column UNIQUE and nullable, the target
    definition leaving such rows out, as the freeze's own error asks) holds m00003's phone
    and refused marketing: the holder of the number refused, so m00003 gets no ad. Held
    with 10 members (the refusal read is one statement with no key condition); BREAK with
    20,005 (the read is walked by key windows, `key <= end` then `key > last`, and a NULL
    key is in none): m00003 got the ad. Oracle: send_records by direct SQL."""
    db = _guest_members(source, size)
    wb = members_workbench(db, any_store, members_mapping())
    try:
        wf = wb.workflows.create(
            "guest",
            target_config={
                "table": "members",
                "where": {"field": "code", "op": "in", "value": ["m00003", "m00004", "None"]},
            },
            message_config={"template": "세일"},
        )
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    sent = store_sql(any_store, "SELECT target_key FROM send_records ORDER BY 1")
    assert [str(k) for (k,) in sent] == ["m00004"]
    assert skips(any_store, run_id) == {policies.SHARED_NO_CONSENT: 2}  # m00003, 'None'


# -- the REST store: two calls on one advertising run at once --------------------------------
@pytest.fixture
def rest_dsn() -> Iterator[str]:
    yield from migrated_database("hybridwb_r49")


@pytest.fixture
def rest_api(rest_dsn: str) -> Iterator[PostgrestBridge]:
    bridge = PostgrestBridge(rest_dsn)
    with respx.mock(base_url=f"{REST_BASE}/rest/v1", assert_all_called=False) as router:
        bridge.mount(router)
        yield bridge


def _rest_workbench(db: str, home: Path) -> hybridwb.Workbench:
    home.mkdir(exist_ok=True)
    return hybridwb.connect(
        source=source_url(db),
        cwd=home,
        env={"SUPABASE_URL": REST_BASE, "SUPABASE_SERVICE_ROLE_KEY": REST_KEY},
    )


@pytest.mark.parametrize("attempt", range(2))
def test_two_calls_on_one_rest_run_at_once_message_each_phone_once(
    source: Callable[..., str],  # noqa: F811
    rest_api: PostgrestBridge,
    rest_dsn: str,
    tmp_path: Path,
    attempt: int,
) -> None:
    """Round 46's race on the Supabase REST store (PostgREST stand-in over a real
    PostgreSQL): two workbenches call `process` on one advertising run at the same moment,
    batches of two. One is refused or finds the run done; each frozen target one record or
    one exclusion, each phone one record, a1 and b1 (refused by another) excluded. Oracle:
    psycopg on the store's database."""
    db = members_source(source)
    wbs = [_rest_workbench(db, tmp_path / "a"), _rest_workbench(db, tmp_path / "b")]
    outcomes: list[str] = []
    try:
        wbs[0].templates.create("세일", SHARED_AD, advertising=True, sender="하이브리드몰")
        wbs[0].mappings.save("members", members_mapping())
        wf = wbs[0].workflows.create(
            f"rest-two-{attempt}",
            target_config={"table": "members"},
            message_config={"template": "세일"},
        )
        run_id = wbs[0].store.runs.create(wf["id"], {})["id"]
        outcomes = process_at_once(wbs, wf["id"], run_id)
    finally:
        for wb in wbs:
            wb.close()
    assert len(outcomes) == 2 and "done" in outcomes, outcomes
    with psycopg.connect(rest_dsn, autocommit=True) as conn:
        sent = conn.execute(
            "SELECT target_key, recipient FROM send_records WHERE run_id = %s", (run_id,)
        ).fetchall()
        reasons = dict(
            conn.execute(
                "SELECT target_key, reason FROM run_skips WHERE run_id = %s", (run_id,)
            ).fetchall()
        )
        frozen_n = conn.execute(
            "SELECT count(*) FROM run_targets WHERE run_id = %s", (run_id,)
        ).fetchone()
    keys = [k for k, _ in sent]
    assert len(keys) == len(set(keys)) and not set(keys) & set(reasons)
    assert frozen_n is not None and len(sent) + len(reasons) == frozen_n[0] == 10
    assert len({r for _, r in sent}) == len(sent)
    assert reasons["a1"] == policies.SHARED_NO_CONSENT == reasons["b1"]


# -- a saved query that samples at random ------------------------------------------------------
SAMPLE = "SELECT code, name, mobile, ok, night FROM members ORDER BY RAND() LIMIT 20"


#: the same sample, drawn by a hash of the key: one set, whichever read draws it
HASHED = (
    "SELECT code, name, mobile, ok, night FROM members ORDER BY MD5(CONCAT(code, 's1')) LIMIT 20"
)


def test_a_random_sample_query_is_refused_and_a_hashed_one_messages_all_of_it(
    source: Callable[..., str],  # noqa: F811
    any_store: str,  # noqa: F811
) -> None:
    """A saved-query target "20 members at random" (a test cell of a campaign): the run
    reads the query again for every freeze page (`key > last LIMIT n`) and every batch, so
    `ORDER BY RAND()` gave a new sample each time (13-24 frozen, 6-8 messaged, the rest
    'gone from source'). Now it is refused at the save, by the preview and by the run's
    plan, in one line naming RAND() and the way out; nothing is saved. The hashed sample
    the message names freezes one set of 20 and messages each. Oracle: root's pymysql (the
    table unchanged: CHECKSUM; the hashed query's own 20 keys), the store by direct SQL."""
    rows = [(f"m{i:03d}", "가", f"010-6000-{i:04d}", f"x{i}@x.com", "Y", "Y") for i in range(100)]
    db = members_source(source, rows)
    before = src(db, "CHECKSUM TABLE members")
    want = sorted(r[0] for r in src(db, HASHED))
    assert src(db, f"SELECT count(*) FROM ({SAMPLE}) s") == [(20,)] and len(want) == 20
    wb = members_workbench(db, any_store, members_mapping())
    try:
        with pytest.raises(HybridwbError, match=r"RAND\(\).*MD5") as saved:
            wb.workflows.create(
                "sample", target_config={"sql": SAMPLE}, message_config={"template": "안내"}
            )
        assert "\n" not in str(saved.value)
        assert store_sql(any_store, "SELECT count(*) FROM workflows") == [(0,)]
        with pytest.raises(HybridwbError, match=r"RAND\(\)"):
            wb.targets.preview({"sql": SAMPLE})
        with pytest.raises(HybridwbError, match=r"RAND\(\)"):
            wb.targets.plan_for_run({"sql": SAMPLE})
        wf = wb.workflows.create(
            "sample", target_config={"sql": HASHED}, message_config={"template": "안내"}
        )
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=5)
    finally:
        wb.close()
    assert src(db, "CHECKSUM TABLE members") == before  # the source never changed
    sent = sorted(k for (k,) in store_sql(any_store, "SELECT target_key FROM send_records"))
    assert (frozen(any_store, run_id), skips(any_store, run_id), sent) == (20, {}, want)


# -- a saved query judged by the server's clock, resumed later ---------------------------------
#: the members who joined in the last WINDOW_S seconds, by the server's clock
WINDOW_S = 12
RECENT = (
    "SELECT code, name, mobile, ok, night FROM members "
    f"WHERE joined > NOW() - INTERVAL {WINDOW_S} SECOND"
)


@pytest.mark.parametrize("target", ["saved query", "view"])
def test_a_resume_of_a_saved_query_on_the_servers_clock_messages_the_frozen_set(
    source: Callable[..., str],  # noqa: F811
    any_store: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    target: str,
) -> None:
    """A saved query "joined in the last 12 seconds" (a daily welcome campaign's
    `joined >= CURDATE() - INTERVAL 1 DAY`, shrunk), frozen with its 6 members; its first
    batch read fails; resumed once the window has passed (the source unchanged): the frozen
    set is the contract, each of the 6 should get its message, as a table definition's
    `within_last` is judged as of the freeze (`test_resume_uses_the_frozen_as_of`). Each
    batch reads the query again, NOW() moves on: all 6 excluded as 'gone from source'.
    Oracle: root's CHECKSUM of the source, send_records and run_skips by direct SQL."""
    import time

    made = time.monotonic()
    db = source(
        "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), "
        "mobile VARCHAR(30), email VARCHAR(100), ok VARCHAR(8) NULL, night VARCHAR(8) NULL, "
        "joined DATETIME DEFAULT NOW())",
        "INSERT INTO members (code, name, mobile, email, ok, night) VALUES "
        + ", ".join(f"('m{i}', '가', '010-6100-000{i}', 'x{i}@x.com', 'Y', 'Y')" for i in range(6)),
    )
    before = src(db, "CHECKSUM TABLE members")
    wb = members_workbench(db, any_store, members_mapping())
    config: dict[str, Any] = {"sql": RECENT}
    if target == "view":  # the same window in a view: a table target, no saved query
        src(db, "CREATE VIEW recent AS " + RECENT.replace("code, name, mobile, ok, night", "*"))
        wb.mappings.save("recent", {**members_mapping(), "audience": False})
        config = {"table": "recent"}
    _fail_first_batch(monkeypatch)
    try:
        wf = wb.workflows.create(
            "recent", target_config=config, message_config={"template": "안내"}
        )
        run_id = start(wb, wf)
        (clock_before,) = src(db, "SELECT UNIX_TIMESTAMP(NOW(6))")[0]
        with pytest.raises(InternalError, match="unexpected RuntimeError"):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
        assert time.monotonic() - made < WINDOW_S - 1, "frozen too late to tell"
        assert frozen(any_store, run_id) == 6
        # the server's clock of the freeze, kept with the run for its resume
        (stats,) = store_sql(any_store, "SELECT stats FROM workflow_runs")[0]
        clock = (stats if isinstance(stats, dict) else json.loads(stats))["frozen"]["clock"]
        assert float(clock_before) <= clock <= float(src(db, "SELECT UNIX_TIMESTAMP(NOW(6))")[0][0])
        time.sleep(max(0.0, WINDOW_S + 2 - (time.monotonic() - made)))
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    assert src(db, "CHECKSUM TABLE members") == before  # the source never changed
    sent = store_sql(any_store, "SELECT target_key FROM send_records")
    assert (len(sent), skips(any_store, run_id)) == (6, {})


#: 2001-09-09 01:46:40 UTC: the clock the freeze below is pinned to, far from today's
PINNED = 1_000_000_000.0


def test_a_freezes_pages_and_its_refusal_windows_read_as_of_the_runs_clock(
    source: Callable[..., str],  # noqa: F811
    any_store: str,  # noqa: F811
) -> None:
    """The freeze's own reads see the run's clock (`Plan.clock`): its pages of a saved
    query on NOW() (batch_size 2: three pages) and the refusal windows over an audience
    that is a view on NOW(). Rows joined 5 seconds before PINNED: as of PINNED m0-m3 are
    targets (m4's 'N' leaves it out: `exclude_opt_out`) and m4 refuses its phone; by
    today's clock none is (the unpinned read, the control). Oracle: the rows as root inserted them, the server's FROM_UNIXTIME."""
    db = source(
        "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), "
        "mobile VARCHAR(30), email VARCHAR(100), ok VARCHAR(8) NULL, night VARCHAR(8) NULL, "
        "joined DATETIME)",
        "INSERT INTO members VALUES "
        + ", ".join(
            f"('m{i}', '가', '010-6200-000{i}', 'x{i}@x.com', '{'N' if i == 4 else 'Y'}', 'Y', "
            f"FROM_UNIXTIME({PINNED:.0f} - 5))"
            for i in range(5)
        ),
        "CREATE VIEW recent AS SELECT * FROM members "
        f"WHERE joined > NOW() - INTERVAL {WINDOW_S} SECOND",
    )
    wb = members_workbench(db, any_store, members_mapping())
    try:
        wb.mappings.save("recent", {**members_mapping(), "audience": False})

        def codes(clock: float | None) -> list[str]:
            pages = wb.targets.iter({"sql": RECENT}, 2, clock=clock)
            return [r["code"] for page in pages for r in page]

        assert (codes(PINNED), codes(None)) == ([f"m{i}" for i in range(4)], [])
        aud = audience.audience_of("recent", wb.mappings.get("recent"))
        pinned = refusals.read(wb.targets, aud, recipient=None, now=None, clock=PINNED)
        unpinned = refusals.read(wb.targets, aud, recipient=None, now=None)
        assert (list(pinned.consent.values()), unpinned.consent) == (["m4"], {})
    finally:
        wb.close()
