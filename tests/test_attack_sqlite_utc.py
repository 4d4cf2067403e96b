"""Every time the SQLite store writes is the UTC wall clock, whatever zone it came in.

PostgreSQL's `timestamptz` keeps an instant; SQLite keeps text, and SQLAlchemy's DateTime
wrote a datetime's own fields there, its zone dropped: a time given in Seoul was stored as
Seoul's wall clock (one instant, two texts; every text comparison off by the offset). The
schema's time columns are now `times.StoreTime`, which writes `times.utc_text`, and the
paths that write the text by hand (the query log's rows, `%%platform`'s binds) call it.

Attacked here, each store write that takes a time from a caller or a clock, with the one
instant as a caller may hold it: naive (the store's UTC), aware UTC, aware in zones east
and west, half-hour offsets, a DST-free zone, a DST fold, pandas Timestamps (nanoseconds
truncated, as SQLAlchemy truncates), microseconds at a year's edge; the ends of the range.

Oracles: sqlite3 reading the file's text; the expected text written out from the instant
in UTC by hand; PostgreSQL's own `timestamptz` of the same writes (psycopg)."""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa

from hybridwb.errors import ValidationError
from hybridwb.platform import schema
from hybridwb.platform.backend import Op, SqlBackend
from hybridwb.platform.campaigns import Campaigns
from hybridwb.platform.store import Store
from hybridwb.platform.times import StoreTime
from hybridwb.source.querylog import QueryLogEntry
from tests import _stores

#: the instant every form below names: the last microsecond of 2025 in UTC, so a zone
#: east of UTC puts it in 2026, and one west keeps it in 2025, a day apart on the clock
INSTANT = datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
TEXT = "2025-12-31 23:59:59.999999"  # written out by hand


class _NoOffset(tzinfo):
    """A zone that does not know its offset: a naive time in Python's eyes."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


ZONES: dict[str, tzinfo] = {
    "seoul": ZoneInfo("Asia/Seoul"),  # +09:00, no DST
    "kolkata": ZoneInfo("Asia/Kolkata"),  # +05:30
    "sao-paulo": ZoneInfo("America/Sao_Paulo"),  # -03:00, no DST since 2019
    "st-johns": timezone(timedelta(hours=-3, minutes=-30)),  # a negative half hour
    "gmt+12": ZoneInfo("Etc/GMT+12"),  # -12:00
    "kiritimati": ZoneInfo("Pacific/Kiritimati"),  # +14:00
    "chatham": ZoneInfo("Pacific/Chatham"),  # +13:45 in its summer
}


def _forms() -> dict[str, Any]:
    forms: dict[str, Any] = {
        "naive": INSTANT.replace(tzinfo=None),
        "utc": INSTANT,
        "timestamp-naive": pd.Timestamp(INSTANT.replace(tzinfo=None)),
        # nanoseconds: truncated to the microsecond, as SQLAlchemy's DateTime truncates
        "timestamp-ns": pd.Timestamp("2025-12-31 23:59:59.999999999", tz="UTC").tz_convert(
            "Asia/Seoul"
        ),
    }
    for name, zone in ZONES.items():
        forms[name] = INSTANT.astimezone(zone)
        forms[f"timestamp-{name}"] = pd.Timestamp(INSTANT).tz_convert(zone)
    return forms


FORMS = _forms()


def _hand_text(at: datetime) -> str:
    """`at` in UTC written out field by field (naive: UTC already)."""
    u = at if at.tzinfo is None else at.astimezone(UTC)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d} "
        f"{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond:06d}"
    )


def test_the_forms_name_one_instant() -> None:
    """(The table's own check: each form is the instant, or its naive UTC.)"""
    for name, at in FORMS.items():
        assert _hand_text(at) == TEXT, name


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[tuple[Store, Path]]:
    path = tmp_path / "platform.db"
    st = Store(SqlBackend(_stores.migrated_sqlite(path)), actor="tester")
    yield st, path
    st.close()


def _texts(path: Path, sql: str, *params: Any) -> list[Any]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute(sql, params)]


def test_every_time_column_of_the_schema_is_a_store_time() -> None:
    """A time column added later as a plain DateTime would write a zone's wall clock on
    SQLite again. Mutation: one column back to DateTime(timezone=True) -> fail."""
    times = [
        f"{t.name}.{c.name}"
        for t in schema.metadata.sorted_tables
        for c in t.columns
        if isinstance(c.type, sa.DateTime | StoreTime)
    ]
    plain = [
        f"{t.name}.{c.name}"
        for t in schema.metadata.sorted_tables
        for c in t.columns
        if not isinstance(c.type, StoreTime) and isinstance(c.type, sa.DateTime)
    ]
    assert plain == []
    assert len(times) >= 17 and "query_logs.timestamp" in times


@pytest.mark.parametrize("form", list(FORMS))
def test_a_schedule_slot_in_any_form_is_one_slot_stored_in_utc(
    sqlite_store: tuple[Store, Path], form: str
) -> None:
    """The slot's key is the instant's UTC text; the same slot claimed again as naive UTC
    is refused (the primary key sees one slot, as PostgreSQL's timestamptz does)."""
    st, path = sqlite_store
    wf = uuid.uuid4()
    assert st.claim_schedule(wf, FORMS[form], "first")
    assert not st.claim_schedule(wf, INSTANT.replace(tzinfo=None), "second")
    assert _texts(path, "SELECT scheduled_for FROM schedule_locks") == [TEXT]
    (locked,) = _texts(path, "SELECT locked_at FROM schedule_locks")
    assert abs(datetime.fromisoformat(locked) - datetime.now(UTC).replace(tzinfo=None)) < (
        timedelta(minutes=1)
    )


def test_query_log_entries_in_any_zone_are_stored_in_utc_by_every_path(
    sqlite_store: tuple[Store, Path],
) -> None:
    """The log's fast path (rows as text), Core's whole-row executemany (`insert_ignore`
    with every column) and Core's own INSERT (`apply`) store one text for one instant.
    Mutations: the fast path's text of the fields as they are (`utc_wall` returning the
    wall clock) -> fail; `StoreTime` left off (plain DateTime) -> fail."""
    st, path = sqlite_store
    entries = [
        QueryLogEntry("db", f"SELECT {i}", 1.0, 1, "success", None, "mysql", at)
        for i, at in enumerate(FORMS.values())
    ]
    st.write_query_logs(entries)
    backend = st.backend
    assert isinstance(backend, SqlBackend)

    def row(at: Any, query: str) -> dict[str, Any]:
        return {
            "id": uuid.uuid4(),
            "timestamp": at,
            "database": "db",
            "query": query,
            "execution_time": 1.0,
            "result_count": 1,
            "status": "success",
            "error_message": None,
            "kind": "core",
        }

    whole = [row(at, f"whole {name}") for name, at in FORMS.items()]
    assert backend.insert_ignore("query_logs", whole, ["id"]) == len(FORMS)
    backend.apply([Op("insert", "query_logs", row(at, f"op {n}")) for n, at in FORMS.items()])
    stamps = _texts(path, "SELECT timestamp FROM query_logs")
    assert stamps == [TEXT] * (3 * len(FORMS))


def test_a_query_log_batch_over_a_day_boundary_keeps_each_second_apart(
    sqlite_store: tuple[Store, Path],
) -> None:
    """The fast path makes a second's text once per batch: two entries of one wall-clock
    second in two zones are two UTC seconds, each with its own head. Mutation: the cache
    keyed by the fields as given -> fail."""
    st, path = sqlite_store
    wall = datetime(2026, 3, 1, 0, 0, 0, 1)
    times = [wall.replace(tzinfo=ZONES["seoul"]), wall.replace(tzinfo=ZONES["gmt+12"]), wall]
    st.write_query_logs(
        [
            QueryLogEntry("db", f"SELECT {i}", 1.0, 1, "success", timestamp=t)
            for i, t in enumerate(times)
        ]
    )
    stamps = _texts(path, "SELECT timestamp FROM query_logs ORDER BY query")
    assert stamps == [_hand_text(t) for t in times]
    assert stamps == [
        "2026-02-28 15:00:00.000001",
        "2026-03-01 12:00:00.000001",
        "2026-03-01 00:00:00.000001",
    ]


def test_a_dst_fold_is_two_instants_two_slots(sqlite_store: tuple[Store, Path]) -> None:
    """01:30 on New York's last EDT night happens twice (fold 0: -04:00, fold 1: -05:00):
    two slots, an hour apart in UTC."""
    st, path = sqlite_store
    ny = ZoneInfo("America/New_York")
    wf = uuid.uuid4()
    first = datetime(2026, 11, 1, 1, 30, tzinfo=ny)
    assert st.claim_schedule(wf, first, "a")
    assert st.claim_schedule(wf, first.replace(fold=1), "b")
    assert _texts(path, "SELECT scheduled_for FROM schedule_locks ORDER BY owner") == [
        "2026-11-01 05:30:00.000000",
        "2026-11-01 06:30:00.000000",
    ]


def test_a_zone_that_knows_no_offset_is_naive_utc_not_the_machine_zone(
    sqlite_store: tuple[Store, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tzinfo whose `utcoffset` is None makes a naive time: UTC, as every naive store
    time. `astimezone(UTC)` would read it in the machine's zone (Seoul here: 9 hours
    off). Mutation: claim_schedule's own `astimezone(UTC)` of any tzinfo restored -> fail."""
    st, path = sqlite_store
    monkeypatch.setenv("TZ", "Asia/Seoul")
    time.tzset()
    try:
        wf = uuid.uuid4()
        at = datetime(2026, 6, 9, 19, 0, tzinfo=_NoOffset())
        assert st.claim_schedule(wf, at, "a")
        st.write_query_logs(
            [
                QueryLogEntry("db", "SELECT 1", 1.0, 1, "success", timestamp=at),
                QueryLogEntry(
                    "db", "SELECT 2", 1.0, 1, "success", timestamp=at.replace(tzinfo=None)
                ),
            ]
        )
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert os.environ.get("TZ") is None
    assert _texts(path, "SELECT scheduled_for FROM schedule_locks") == [
        "2026-06-09 19:00:00.000000"
    ]
    assert _texts(path, "SELECT timestamp FROM query_logs") == ["2026-06-09 19:00:00.000000"] * 2
    # the ids' UUIDv7 milliseconds are the instant's too (`timestamp()` read a naive time
    # in the machine's zone, and raised on a zone with no offset)
    ms = int(datetime(2026, 6, 9, 19, 0, tzinfo=UTC).timestamp() * 1000)
    assert [int(i[:12], 16) for i in _texts(path, "SELECT id FROM query_logs")] == [ms] * 2


def test_a_run_period_given_in_another_zone_is_stored_and_matched_in_utc(
    sqlite_store: tuple[Store, Path],
) -> None:
    """A run reopened with a `started_at` in Seoul stores its UTC; a status write naming
    the period as read, converted to Sao Paulo, matches it (before, the Seoul wall clock
    was stored and any other spelling of the period matched nothing: the write was lost)."""
    st, path = sqlite_store
    wf = st.workflows.create(name="utc-run")
    run = st.runs.create(wf["id"])
    st.runs.reopen(run, started_at=INSTANT.astimezone(ZONES["seoul"]))
    assert _texts(path, "SELECT started_at FROM workflow_runs") == [TEXT]
    read = st.runs.get(run["id"])
    moved = {
        **read,
        "started_at": read["started_at"].replace(tzinfo=UTC).astimezone(ZONES["sao-paulo"]),
    }
    st.runs.update_open(moved, status="failed", finished_at=FORMS["timestamp-kiritimati"])
    assert _texts(path, "SELECT status || ' ' || finished_at FROM workflow_runs") == [
        f"failed {TEXT}"
    ]


def test_history_windows_given_in_another_zone_count_as_sqlite_counts_the_utc_text(
    sqlite_store: tuple[Store, Path],
) -> None:
    """Send records stamped in three zones; `seen`'s cooldown and cap windows given in
    other zones count what sqlite3 counts with the windows' UTC text."""
    st, path = sqlite_store
    wf = st.workflows.create(name="utc-history")
    old, new = st.runs.create(wf["id"]), st.runs.create(wf["id"])
    stamps = [INSTANT - timedelta(microseconds=1), INSTANT, INSTANT + timedelta(microseconds=1)]
    zones = [ZONES["gmt+12"], ZONES["kiritimati"], ZONES["st-johns"]]
    st.backend.apply(
        [
            Op(
                "insert",
                "send_records",
                {
                    "id": uuid.uuid4(),
                    "run_id": old["id"],
                    "workflow_id": wf["id"],
                    "target_key": f"k{i}",
                    "recipient": "+821012345678",
                    "channel": "outbox",
                    "status": "sent",
                    "created_at": at.astimezone(zone),
                },
            )
            for i, (at, zone) in enumerate(zip(stamps, zones, strict=True))
        ]
    )
    assert _texts(path, "SELECT created_at FROM send_records ORDER BY target_key") == [
        _hand_text(at) for at in stamps
    ]
    for form in ("seoul", "sao-paulo", "timestamp-chatham", "naive"):
        since = FORMS[form]
        [(_, this_run, earlier, cooled, capped)] = Campaigns(st.backend).seen(
            ["+821012345678"], wf["id"], new["id"], since, since
        )
        expected = len(_texts(path, "SELECT 1 FROM send_records WHERE created_at >= ?", TEXT))
        assert (this_run, earlier, cooled, capped) == (0, 3, expected, expected) == (0, 3, 2, 2)


def test_a_heartbeat_and_a_lock_are_stamped_in_utc(sqlite_store: tuple[Store, Path]) -> None:
    st, path = sqlite_store
    camp = Campaigns(st.backend)
    wf, rid = uuid.uuid4(), uuid.uuid4()
    st.backend.apply(
        [
            Op(
                "insert",
                "workflows",
                {
                    "id": wf,
                    "name": "lock",
                    "created_at": INSTANT.astimezone(ZONES["seoul"]),
                    "updated_at": INSTANT.astimezone(ZONES["seoul"]),
                },
            )
        ]
    )
    assert _texts(path, "SELECT created_at || updated_at FROM workflows") == [TEXT * 2]
    before = datetime.now(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    st.backend.apply(
        [Op("insert", "workflow_runs", {"id": rid, "workflow_id": wf, "created_at": INSTANT})]
    )
    assert camp.acquire(wf, rid, "me", 60) is None
    assert camp.heartbeat(wf, rid, "me")
    after = datetime.now(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    [(acquired, beat)] = [
        tuple(r)
        for r in sqlite3.connect(path).execute("SELECT acquired_at, heartbeat_at FROM run_locks")
    ]
    assert before <= acquired <= beat <= after


@pytest.mark.parametrize(
    "at",
    [
        datetime.max.replace(tzinfo=timezone(timedelta(hours=-5))),
        datetime.min.replace(tzinfo=timezone(timedelta(hours=5))),
        pd.NaT,
    ],
    ids=["past-9999", "before-1", "nat"],
)
def test_a_time_the_text_cannot_hold_is_one_validation_error(
    sqlite_store: tuple[Store, Path], at: Any
) -> None:
    """Its UTC is outside the years 1 to 9999 (or it is no time): a `ValidationError` of
    one line from the store's own write, nothing written; not SQLAlchemy's StatementError
    around an OverflowError."""
    st, path = sqlite_store
    with pytest.raises(ValidationError) as got:
        st.claim_schedule(uuid.uuid4(), at, "a")  # (the whole-row executemany)
    assert "\n" not in str(got.value) and "store" in str(got.value)
    wf = st.workflows.create(name="range")
    run = st.runs.create(wf["id"])
    with pytest.raises(ValidationError) as got:
        st.runs.reopen(run, started_at=at)  # Core's own UPDATE
    assert "\n" not in str(got.value) and "store" in str(got.value)
    assert _texts(path, "SELECT count(*) FROM schedule_locks") == [0]
    assert _texts(path, "SELECT status FROM workflow_runs") == ["queued"]


def test_the_ends_of_the_range_in_utc_are_stored(sqlite_store: tuple[Store, Path]) -> None:
    st, path = sqlite_store
    wf = uuid.uuid4()
    late = datetime.max.replace(tzinfo=timezone(timedelta(hours=5)))  # 9999-12-31 18:59 UTC
    early = datetime.min.replace(tzinfo=timezone(timedelta(hours=-5)))  # 0001-01-01 05:00 UTC
    assert st.claim_schedule(wf, late, "late") and st.claim_schedule(wf, early, "early")
    assert _texts(path, "SELECT scheduled_for FROM schedule_locks ORDER BY owner") == [
        "0001-01-01 05:00:00.000000",
        "9999-12-31 18:59:59.999999",
    ]


# -- PostgreSQL: the same instants, whatever the session's time zone -----------------------


@pytest.fixture
def seoul_pg() -> Iterator[tuple[Store, Any]]:
    """A migrated PostgreSQL store whose sessions run in Seoul's zone (as `PGTZ`, or a
    database's `SET timezone`, makes them)."""
    for url in _stores.fresh_pg_database(migrated=True):
        st = Store(
            SqlBackend(url.update_query_dict({"options": "-c timezone=Asia/Seoul"})),
            actor="tester",
        )
        try:
            yield st, url
        finally:
            st.close()


def _pg_texts(url: Any, sql: str) -> list[Any]:
    """`sql`'s first column, read by psycopg in a UTC session."""
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={url.database}") as conn:
        conn.execute("SET timezone = 'UTC'")
        return [r[0] for r in conn.execute(sql)]


UTC_TEXT = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"


def test_postgres_stores_every_form_as_the_one_instant_in_a_seoul_session(
    seoul_pg: tuple[Store, Any],
) -> None:
    """Each form of the instant is one slot (a naive one too: before, a Seoul session read
    it as Seoul's clock, a slot nine hours off), and each query log entry, written by COPY,
    holds the instant. Mutations: `labelled` returning the value as it is -> fail (COPY's
    and Core's binds both)."""
    st, url = seoul_pg
    wf = uuid.uuid4()
    claimed = [st.claim_schedule(wf, at, name) for name, at in FORMS.items()]
    assert claimed == [True] + [False] * (len(FORMS) - 1)
    st.write_query_logs(
        [
            QueryLogEntry("db", f"SELECT {n}", 1.0, 1, "success", timestamp=at)
            for n, at in FORMS.items()
        ]
    )
    st.backend.apply(
        [
            Op(
                "update",
                "schedule_locks",
                {"locked_at": INSTANT.replace(tzinfo=None)},
                {"workflow_id": wf},
            )
        ]
    )
    assert _pg_texts(url, f"SELECT {UTC_TEXT.format('scheduled_for')} FROM schedule_locks") == [
        TEXT
    ]
    assert _pg_texts(url, f"SELECT {UTC_TEXT.format('locked_at')} FROM schedule_locks") == [TEXT]
    assert _pg_texts(url, f"SELECT {UTC_TEXT.format('timestamp')} FROM query_logs") == [TEXT] * len(
        FORMS
    )


def test_postgres_store_sql_naive_bind_is_utc_in_a_seoul_session(
    seoul_pg: tuple[Store, Any],
) -> None:
    """`%%platform` with a naive time compares it as the store's UTC, as on SQLite."""
    st, _ = seoul_pg
    assert st.claim_schedule(uuid.uuid4(), INSTANT, "a")
    sql = "SELECT count(*) AS n FROM schedule_locks WHERE scheduled_for = :at"
    for at in (INSTANT.replace(tzinfo=None), INSTANT, FORMS["timestamp-gmt+12"]):
        assert int(st.sql(sql, {"at": at})["n"].iloc[0]) == 1
        assert int(st.sql(sql.replace("= :at", "IN :at"), {"at": [at]})["n"].iloc[0]) == 1


@pytest.fixture
def seoul_rest(seoul_pg: tuple[Store, Any]) -> Iterator[tuple[Store, Any]]:
    """The Supabase REST store, its PostgREST stand-in's sessions in Seoul's zone."""
    import respx
    from _postgrest import PostgrestBridge

    from hybridwb.platform.rest import RestBackend

    _, url = seoul_pg
    base = "https://proj.supabase.co"
    key = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl"
    bridge = PostgrestBridge(
        f"host=127.0.0.1 user=postgres dbname={url.database} options='-c timezone=Asia/Seoul'"
    )
    with respx.mock(base_url=f"{base}/rest/v1", assert_all_called=False) as router:
        bridge.mount(router)
        yield Store(RestBackend(base, key, "SUPABASE_SERVICE_ROLE_KEY", base_delay=0)), url


def test_rest_sends_a_naive_time_as_utc_to_a_seoul_session(
    seoul_rest: tuple[Store, Any],
) -> None:
    """Over REST a naive time went without an offset, and the server read it in its
    session's zone. Mutation: `rest._wire` without `labelled` -> fail."""
    st, url = seoul_rest
    wf = uuid.uuid4()
    assert st.claim_schedule(wf, INSTANT.replace(tzinfo=None), "naive")
    assert not st.claim_schedule(wf, INSTANT, "utc")
    st.backend.apply(
        [
            Op(
                "update",
                "schedule_locks",
                {"locked_at": FORMS["timestamp-naive"]},
                {"workflow_id": wf},
            )
        ]
    )
    assert _pg_texts(url, f"SELECT {UTC_TEXT.format('scheduled_for')} FROM schedule_locks") == [
        TEXT
    ]
    assert _pg_texts(url, f"SELECT {UTC_TEXT.format('locked_at')} FROM schedule_locks") == [TEXT]


def test_a_time_column_compared_with_a_text_or_an_interval_binds_them_as_before(
    sqlite_store: tuple[Store, Path],
) -> None:
    """A text compared with a time column binds as text (the stored form), and a
    timedelta added to one as an interval, as SQLAlchemy's DateTime bound them: a
    TypeDecorator binds every compared value as itself by default, and a text then failed
    (`only accepts Python datetime`). Mutation: `coerce_compared_value` removed -> fail."""
    st, path = sqlite_store
    assert st.claim_schedule(uuid.uuid4(), INSTANT, "a")
    assert [r["owner"] for r in st.backend.select("schedule_locks", {"scheduled_for": TEXT})] == [
        "a"
    ]
    locks = schema.schedule_locks
    with st.backend.engine.connect() as conn:
        later = conn.execute(
            sa.select(sa.func.count()).where(locks.c.scheduled_for == TEXT)
        ).scalar_one()
    assert later == len(_texts(path, "SELECT 1 FROM schedule_locks WHERE scheduled_for = ?", TEXT))
    assert isinstance((locks.c.scheduled_for + timedelta(days=1)).right.type, sa.Interval)
