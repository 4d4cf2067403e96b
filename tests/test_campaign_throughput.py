"""The fast paths of a campaign run give exactly what the slow paths gave.

Each fast path is checked against the slower code it replaced (phonenumbers, Jinja, the
per-character EUC-KR count) on many generated inputs, and the store writes and history
sums against direct SQL (sqlite3 / psycopg) on SQLite and real PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import sqlite3
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

from hybridwb.platform.backend import SqlBackend
from hybridwb.platform.campaigns import Campaigns
from hybridwb.platform.idempotent import uuid7_texts
from hybridwb.platform.store import Store
from hybridwb.templating import matching, parse
from hybridwb.templating.message import LIMITS, Size, euc_kr_size, over_limit
from hybridwb.templating.service import TemplateService
from hybridwb.workflows import batches, heap, policies, spelling
from hybridwb.workflows.config import FrequencyCap, SendPolicy
from tests._stores import _empty_pg, migrated_sqlite

NOW = dt.datetime(2026, 3, 2, 3, 0, tzinfo=dt.UTC)


# -- phones: the fast path agrees with phonenumbers ---------------------------------------
def _phone_spellings(n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        head = "01" + str(rnd.randrange(10))
        mid = "".join(rnd.choice("0123456789") for _ in range(rnd.choice((3, 4))))
        end = "".join(rnd.choice("0123456789") for _ in range(4))
        sep = rnd.choice(["", "-", " ", ".", ""])
        out.append(head + sep + mid + sep + end)
    return out


def test_the_phone_fast_path_gives_what_phonenumbers_gives() -> None:
    spellings = [
        *_phone_spellings(20000, 1),
        "010-1234-5678",
        "01012345678",
        "010 1234 5678",
        "011-123-4567",
        "0101234567",
        "010-0000-0000",
        "019-9999-9999",
        "010-1234-567",
        # shapes next to the two the fast path recognises without its pattern
        "０１０１２３４５６７８",  # full-width digits: isdigit() but not [0-9]
        "010-１２３４-5678",
        "010-1２３４-5678",  # non-ASCII digits only where the metadata's \\d would take them
        "0101２３４5678",
        "٠١٠١٢٣٤٥٦٧٨",  # Arabic-Indic digits
        "02012345678",
        "0212345678",
        "1012345678",
        "010123456789",
        "0101-234-5678",
        "010-12345-678",
        "010 1234-5678",
        "010-1234 5678",
        "010.1234.5678",
        "01a-1234-5678",
        "010-1234-567a",
        "011-1234-5678",
        "0x0-1234-5678",
    ]
    differ = [s for s in spellings if policies._phone(s) != policies._parsed_phone(s)]
    assert differ == []


def _by_pattern(text: str) -> str | None:
    """The national significant number as `_NATIONAL_MOBILE` reads it (the oracle of the
    shape checks in `_national_mobile_nsn`)."""
    if policies._NATIONAL_MOBILE.fullmatch(text) is None:
        return None
    return "".join(ch for ch in text if ch in "0123456789")[1:]


def test_the_national_shapes_are_read_like_the_pattern() -> None:
    rnd = random.Random(7)
    alphabet = "0123456789" * 4 + "-. ab/０１٣"
    texts = _phone_spellings(5_000, 3) + [
        "01" + "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(7, 13)))
        for _ in range(20_000)
    ]
    texts += [t[:3] + "-" + t[3:7] + "-" + t[7:] for t in texts[:3000]]
    texts += ["010-1２３４-5678", "0101２３４5678", "01０-1234-5678", "٠1012345678"]
    differ = [t for t in texts if policies._national_mobile_nsn(t) != _by_pattern(t)]
    assert differ == []


@pytest.mark.parametrize(
    ("general", "general_lengths", "mobile", "mobile_lengths"),
    [
        pytest.param(*policies._kr_mobile(), id="installed-metadata"),
        # made-up metadata where each part decides some numbers alone
        pytest.param(
            re.compile(r"1\d{3,6}|2\d{4}"),
            frozenset({4, 5, 6}),
            re.compile(r"\d{5,8}"),
            frozenset({5, 6, 7}),
            id="made-up",
        ),
        pytest.param(
            re.compile(r"1\d+"),
            frozenset(),
            re.compile(r"\d{6}"),
            frozenset({6}),
            id="no-general-lengths",
        ),
        pytest.param(
            re.compile(r"1\d+"),
            frozenset({4, 6}),
            re.compile(r"\d+"),
            frozenset(),
            id="no-mobile-lengths",
        ),
        pytest.param(
            re.compile(r"1\d+"), frozenset(), re.compile(r"\d+5"), frozenset(), id="no-lengths"
        ),
    ],
)
def test_the_combined_mobile_pattern_is_both_of_the_metadatas_patterns(
    general: re.Pattern[str],
    general_lengths: frozenset[int],
    mobile: re.Pattern[str],
    mobile_lengths: frozenset[int],
) -> None:
    valid = policies._combined(general, general_lengths, mobile, mobile_lengths)
    rnd = random.Random(11)
    digits = ["1" + "".join(rnd.choice("0123456789") for _ in range(n)) for n in range(3, 14)]
    digits += [
        head + "".join(rnd.choice("0123456789") for _ in range(rnd.randrange(3, 10)))
        for head in ("10", "105", "1059", "1221", "122", "16", "12", "2", "70", "0")
        for _ in range(2_000)
    ]
    for d in digits:
        expected = (
            (not general_lengths or len(d) in general_lengths)
            and general.fullmatch(d) is not None
            and (not mobile_lengths or len(d) in mobile_lengths)
            and mobile.fullmatch(d) is not None
        )
        assert valid(d) is expected, d


def test_spellings_of_a_mobile_number_are_the_ones_phonenumbers_gives() -> None:
    for text in _phone_spellings(5_000, 2):
        canonical = policies._phone(text)
        if not canonical or not canonical.startswith("+82"):
            continue
        digits = canonical[1:]
        expected = {canonical: canonical}
        for spelled in {digits, "00" + digits} | spelling._national_spellings(canonical):
            expected.setdefault(spelled, canonical)
        assert spelling.stored_spellings("sms", [canonical]) == expected, text


# -- templates: pieces render like Jinja --------------------------------------------------
TEMPLATES = [
    "#{고객명}님, {{ 등급 }} 회원 전용 혜택이 도착했습니다. 문의: 1588-0000",
    "{{ a }}{{ b }}#{c}",
    "첫 줄 {{ a }}\n둘째 줄 #{b}\n",
    "#{customer.name} 님 {{ a }}",
    "변수 없음",
    "",
]
VALUES = [
    {"고객명": "홍길동", "등급": "VIP", "a": 1, "b": Decimal("12000"), "c": "x"},
    {"고객명": "", "등급": 0, "a": dt.date(2026, 1, 2), "b": 1.5, "c": True},
    {"customer.name": "김", "a": dt.datetime(2026, 1, 2, 3, 4), "b": "{{ not code }}", "c": "%s"},
]


@pytest.mark.parametrize("text", TEMPLATES, ids=range(len(TEMPLATES)))
@pytest.mark.parametrize("values", VALUES, ids=["text", "types", "dotted"])
def test_a_template_filled_from_its_pieces_is_what_jinja_renders(
    text: str, values: dict[str, object]
) -> None:
    parts = parse.pieces(text)
    assert parts is not None
    fast = parse.render_pieces(parts, values, 2000)
    try:
        slow: str | None = parse.render(text, values, max_chars=2000)
    except Exception:  # a value the template uses is not given: both give way to Jinja
        slow = None
    if fast is None:
        assert slow is None or any(n not in values for is_name, n in parts if is_name)
    else:
        assert fast == slow


@pytest.mark.parametrize(
    "text",
    ["{{ a | won }}", "{% if a %}x{% endif %}", "{{ a.b }}", "{{ a + 1 }}", "{{ kakao__vars }}"],
)
def test_templates_with_more_than_variables_are_left_to_jinja(text: str) -> None:
    assert parse.pieces(text) is None


def test_a_message_too_long_from_pieces_is_refused_like_jinja() -> None:
    parts = parse.pieces("{{ a }}")
    assert parts is not None
    with pytest.raises(parse.TemplateError) as fast:
        parse.render_pieces(parts, {"a": "x" * 101}, 100)
    with pytest.raises(parse.TemplateError) as slow:
        parse.render("{{ a }}", {"a": "x" * 101}, max_chars=100)
    assert getattr(fast.value, "too_long", False) and getattr(slow.value, "too_long", False)


# -- sizes: one encode agrees with the character-by-character count ---------------------
def _size_by_character(text: str) -> Size:
    total, bad = 0, []
    for ch in text:
        try:
            size = len(ch.encode("euc-kr"))
            outside = size > 2
        except UnicodeEncodeError:
            size, outside = 2, True
        total += size
        if outside and ch not in bad:
            bad.append(ch)
    fits = "SMS" if total <= LIMITS["SMS"] else "LMS" if total <= LIMITS["LMS"] else "too long"
    return Size(len(text), total, fits, bad)


def test_one_encode_sizes_every_message_like_the_character_count() -> None:
    rnd = random.Random(3)
    alphabet = [*"abc 123-,.\n", *(chr(c) for c in range(0xAC00, 0xD7A4, 37))]
    alphabet += ["똠", "\u3164", "😀", "ㄱ", "①", "힣", "€"]  # outside KS X 1001, the filler
    texts = ["", "똠", "\u3164", "😀"]
    texts += [
        "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(60))) for _ in range(20_000)
    ]
    assert [t for t in texts if euc_kr_size(t) != _size_by_character(t)] == []


@pytest.mark.parametrize("limits", [None, {"SMS": 80, "LMS": 1000}, {"SMS": 90}])
@pytest.mark.parametrize("message_type", ["SMS", "LMS", "MMS", "alimtalk"])
def test_the_renderer_refuses_exactly_the_messages_over_limit_refuses(
    message_type: str, limits: dict[str, int] | None
) -> None:
    """The renderer checks limits computed once; `over_limit` (the slow, wording path)
    is the oracle for which messages are refused and why."""
    service = TemplateService(lambda: None, type("M", (), {"resolver": None})())  # type: ignore[arg-type,return-value]
    service.limits = limits
    texts = [c * n for c in ("a", "가", "똠") for n in (0, 1, 44, 45, 46, 79, 80, 81, 90, 91)]
    texts += [c * n for c in ("a", "가") for n in (500, 999, 1000, 1001, 1999, 2000, 2001)]
    for text in texts:
        one = service.renderer(
            text, mode="fallback", message_type=message_type, report=matching.Report("t", [])
        )
        out = one({}, None)
        size, known = euc_kr_size(text), limits or LIMITS
        # an SMS may grow into an LMS (the largest limit); alimtalk counts characters
        most = max(known.values()) if message_type == "SMS" else known.get(message_type)
        refused = size.bytes > (most or max(known.values())) or (
            message_type == "alimtalk" and size.chars > 1000
        )
        assert (out.skipped is not None) == refused, (message_type, len(text))
        expected = over_limit(size, message_type, limits or LIMITS)
        if out.skipped == "too long":  # refused while rendering (over the character bound)
            assert expected is not None, (message_type, len(text))
        else:
            assert out.skipped == expected, (message_type, len(text))
            assert (out.text is None) == (expected is not None)


def test_the_batch_nul_check_finds_the_rows_a_row_by_row_check_finds() -> None:
    rnd = random.Random(7)
    values: list[object] = ["홍길동", "VIP", "", 1, None, dt.date(2026, 1, 2), b"\x00raw", 1.5]
    for trial in range(300):
        rows = {
            f"k{i}": {c: rnd.choice(values) for c in ("name", "grade", "phone", "joined")}
            for i in range(rnd.randrange(1, 40))
        }
        for _ in range(rnd.choice((0, 0, 1, 3))):  # a NUL somewhere in some text values
            row = rows[rnd.choice(list(rows))]
            col = rnd.choice(list(row))
            row[col] = rnd.choice(["\x00", "a\x00b", "회\x00원", "010-0000\x00-0006"])
        one_by_one = {k for k, r in rows.items() if batches.has_nul(*r.values())}
        assert batches.rows_with_nul(rows) == one_by_one, trial


def test_record_ids_are_distinct_version_7_uuids_of_their_time() -> None:
    at = dt.datetime(2026, 3, 2, 3, 0, 0, 123000, tzinfo=dt.UTC)
    ids = uuid7_texts(10_000, at)
    parsed = [uuid.UUID(i) for i in ids]
    assert len(set(ids)) == len(ids)
    assert [str(u) for u in parsed] == ids
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in parsed)
    # the first 48 bits are the Unix time in milliseconds (RFC 9562)
    assert {u.int >> 80 for u in parsed} == {int(at.timestamp() * 1000)}
    assert ids == sorted(ids)  # in order: the primary key's index is filled at its edge
    # batches of one millisecond share no id (a run writes many in the same one)
    more = [uuid7_texts(5_000, at) for _ in range(200)]
    assert len({i for batch in more for i in batch} | set(ids)) == 200 * 5_000 + len(ids)
    assert uuid7_texts(0, at) == [] and len(uuid7_texts(1, at)) == 1


def test_record_ids_of_batches_alike_in_their_random_head_still_differ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The 48-bit counter starts at a random value: batches of one millisecond whose 26
    random head bits happen to match (here forced to) still share no id."""
    import os

    real = os.urandom
    monkeypatch.setattr(os, "urandom", lambda k: b"\x12\x34\x56\x78" + real(k - 4))
    at = dt.datetime(2026, 3, 2, 3, 0, 0, 123000, tzinfo=dt.UTC)
    batches = [uuid7_texts(5_000, at) for _ in range(50)]
    assert len({i[:23] for batch in batches for i in batch}) == 1  # the head was forced
    assert len({i for batch in batches for i in batch}) == 50 * 5_000


# -- the store: batches and history sums, against direct SQL -----------------------------
def _reset_pg(url: URL) -> None:
    with psycopg.connect(
        f"host=127.0.0.1 user=postgres dbname={url.database}", autocommit=True
    ) as conn:
        conn.execute(
            "DROP SCHEMA public CASCADE; CREATE SCHEMA public; GRANT ALL ON SCHEMA public TO public"
        )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = migrated_sqlite(tmp_path / "platform.db")  # init below seeds it
    else:
        url = request.getfixturevalue("pg_db")
        _empty_pg(url)  # at head, no rows: init below seeds it
    st = Store(SqlBackend(url), actor="tester")
    st.init()
    yield st
    st.close()


def oracle(store: Store, sql: str, params: tuple = ()) -> list[tuple]:
    """Direct SQL on the store's database (sqlite3 / psycopg), not the code under test."""
    url = store.backend.engine.url  # type: ignore[attr-defined]
    if url.get_backend_name() == "sqlite":
        with sqlite3.connect(url.database) as conn:
            return conn.execute(sql.replace("%s", "?"), params).fetchall()
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={url.database}") as conn:
        return conn.execute(sql, params).fetchall()


def _hex(value: object) -> str:
    return uuid.UUID(str(value)).hex


def _run_keys(store: Store, table: str, run_id: object) -> list[str]:
    rows = oracle(store, f"SELECT run_id, target_key FROM {table}")
    return sorted(k for r, k in rows if _hex(r) == _hex(run_id))


def test_a_batch_written_twice_on_a_first_pass_is_stored_once(store: Store) -> None:
    wf = store.workflows.create(name="w")
    run = store.runs.create(wf["id"])
    campaigns = Campaigns(store.backend)
    records = [(str(i), f"+8210{i:08d}", "안녕") for i in range(300)]
    skips = [(str(i), policies.NO_RECIPIENT) for i in range(300, 320)]
    for _ in range(2):  # the second time as after a lost commit acknowledgement
        assert campaigns.write_batch(
            run["id"], wf["id"], None, records=records, channel="sms", skips=skips, fresh=True
        )
    assert _run_keys(store, "send_records", run["id"]) == sorted(k for k, _, _ in records)
    assert _run_keys(store, "run_skips", run["id"]) == sorted(k for k, _ in skips)


def test_a_batch_is_not_written_once_another_process_holds_the_run(store: Store) -> None:
    wf = store.workflows.create(name="w")
    run = store.runs.create(wf["id"])
    campaigns = Campaigns(store.backend)
    assert campaigns.acquire(wf["id"], run["id"], "other-host:1", stale_after=60) is None
    wrote = campaigns.write_batch(
        run["id"],
        wf["id"],
        "this-host:2",
        records=[("1", "+821000000001", "x")],
        channel="sms",
        skips=[("2", policies.NO_RECIPIENT)],
        changed=1,
        fresh=True,
    )
    assert wrote is False
    assert _run_keys(store, "send_records", run["id"]) == []
    assert _run_keys(store, "run_skips", run["id"]) == []


def test_history_sums_from_the_store_decide_like_the_history_rows(store: Store) -> None:
    wf = store.workflows.create(name="w")
    other = store.workflows.create(name="other")
    old_run, other_run = store.runs.create(wf["id"]), store.runs.create(other["id"])
    run = store.runs.create(wf["id"])
    rnd = random.Random(5)
    phones = [f"+8210{i:08d}" for i in range(40)]
    records = []
    for n in range(400):
        r = rnd.choice([old_run, other_run, run])
        records.append(
            {
                "run_id": r["id"],
                "workflow_id": r["workflow_id"],
                "target_key": str(n),
                "recipient": rnd.choice(phones),
                "content": "x",
                "created_at": NOW - dt.timedelta(days=rnd.uniform(0, 30)),
            }
        )
    store.runs.add_records(records)
    rules = policies.Rules(
        wf["id"],
        run["id"],
        NOW,
        SendPolicy(
            once_per_recipient=True,
            cooldown_days=10,
            frequency_cap=FrequencyCap(messages=5, days=7),
        ),
        advertising=False,
    )
    rows = [
        {
            "recipient": rec,
            "workflow_id": uuid.UUID(str(w)),
            "run_id": uuid.UUID(str(r)),
            "created_at": _as_time(at),
        }
        for rec, w, r, at in oracle(
            store, "SELECT recipient, workflow_id, run_id, created_at FROM send_records"
        )
    ]
    expected = policies.Seen.of_rows(rows, rules)
    spellings = spelling.stored_spellings("sms", phones)
    counts = Campaigns(store.backend).seen(
        list(spellings), wf["id"], run["id"], *policies.windows(rules)
    )
    got = policies.Seen.of_counts(counts, spellings)
    assert (got.earlier, got.cooling, got.in_run) == (
        expected.earlier,
        expected.cooling,
        expected.in_run,
    )
    assert +got.in_window == +expected.in_window
    candidates = [policies.Candidate(str(i), p) for i, p in enumerate(phones)]
    assert policies.decide(candidates, got, rules) == policies.decide(candidates, rows, rules)


def _as_time(value: object) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


def test_a_run_freezes_the_heap_only_while_it_runs() -> None:
    import gc

    with heap.frozen_heap():
        assert gc.get_freeze_count() > 0  # what the process had is out of the collector's walks
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), heap.frozen_heap():
        raise RuntimeError("a run that fails")
    assert gc.get_freeze_count() == 0  # thawed however the run ends


def test_a_copy_timestamp_is_the_same_instant_in_any_session_time_zone() -> None:
    from hybridwb.platform.idempotent import timestamptz_text

    at = dt.datetime(2026, 3, 2, 3, 0, 0, 123456, tzinfo=dt.UTC)
    assert dt.datetime.fromisoformat(timestamptz_text(at)) == at
    with pytest.raises(ValueError):
        timestamptz_text(at.replace(tzinfo=None))  # the server would read it in its zone


@pytest.mark.postgres
def test_copied_records_carry_the_batchs_time_in_a_far_session_time_zone(pg_db: URL) -> None:
    """Records and exclusions COPied on a session whose time zone is not UTC are stamped
    with the very instant the batch's heartbeat was written with (an UPDATE, not COPY)."""
    _reset_pg(pg_db)
    url = pg_db.update_query_dict({"options": "-c TimeZone=Pacific/Chatham"})
    st = Store(SqlBackend(url), actor="tester")
    st.init()
    try:
        wf = st.workflows.create(name="w")
        run = st.runs.create(wf["id"])
        campaigns = Campaigns(st.backend)
        assert campaigns.acquire(wf["id"], run["id"], "me:1", stale_after=60) is None
        before = dt.datetime.now(dt.UTC)
        assert campaigns.write_batch(
            run["id"],
            wf["id"],
            "me:1",
            records=[(str(i), f"+8210{i:08d}", "x") for i in range(50)],
            channel="sms",
            skips=[("x1", policies.NO_RECIPIENT)],
            fresh=True,
        )
        after = dt.datetime.now(dt.UTC)
        [(beat,)] = oracle(st, "SELECT heartbeat_at FROM run_locks")
        stamps = oracle(
            st, "SELECT created_at FROM send_records UNION ALL SELECT created_at FROM run_skips"
        )
    finally:
        st.close()
    assert len(stamps) == 51
    assert {s for (s,) in stamps} == {beat}
    assert before <= beat <= after


def test_a_run_reads_consent_columns_only_for_advertising() -> None:
    from types import SimpleNamespace

    from hybridwb.workflows.audience import Audience, columns_for

    aud = Audience("members", "member_no", "number", "mobile", "sms", "ad_ok", "night_ok")
    plan = SimpleNamespace(recipient=None, consent=None)
    report = SimpleNamespace(variables=[])
    assert columns_for(plan, aud, report, advertising=False) == {"mobile"}
    assert columns_for(plan, aud, report, advertising=True) == {"mobile", "ad_ok", "night_ok"}
    plan = SimpleNamespace(recipient="contact.mobile", consent="contact.ad_ok")
    assert columns_for(plan, aud, report, advertising=True) == {
        "contact.mobile",
        "contact.ad_ok",
        "night_ok",
    }


# -- a batch's records are COPied in recipient order (issue #17): the same records -------
def test_a_batch_written_in_recipient_order_keeps_each_records_own_values(
    store: Store,
) -> None:
    """Each stored record is the (key, recipient, content) it was given, each key once, each
    id its own; on PostgreSQL the rows lie in recipient order with their ids ascending in
    that order (what the recipient index is spared: inserts at random places)."""
    wf = store.workflows.create(name="w")
    run = store.runs.create(wf["id"])
    rnd = random.Random(17)
    phones = [f"+8210{rnd.randrange(10**8):08d}" for _ in range(500)]
    phones[7] = phones[300]  # one recipient twice in the batch
    records = [(str(10_000 + i), p, f"msg {i} for {p}") for i, p in enumerate(phones)]
    assert records != sorted(records, key=lambda r: r[1])  # given out of recipient order
    assert Campaigns(store.backend).write_batch(
        run["id"], wf["id"], None, records=records, channel="sms", skips=[], fresh=True
    )
    postgres = store.backend.name == "postgresql"
    order = " ORDER BY ctid" if postgres else ""
    rows = oracle(store, f"SELECT target_key, recipient, content, id FROM send_records{order}")
    assert sorted(r[:3] for r in rows) == sorted(records)
    assert len({r[3] for r in rows}) == len(records)
    if postgres:
        assert [r[1] for r in rows] == sorted(phones)
        ids = [uuid.UUID(str(r[3])) for r in rows]
        assert ids == sorted(ids)


def test_a_batch_with_a_recipient_none_is_written_as_given(store: Store) -> None:
    """A caller other than a run may give a record without a recipient: not ordered, each
    record stored all the same."""
    wf = store.workflows.create(name="w")
    run = store.runs.create(wf["id"])
    records = [("b", "+821000000002", "x"), ("a", None, "y"), ("c", "+821000000001", "z")]
    assert Campaigns(store.backend).write_batch(
        run["id"], wf["id"], None, records=records, channel="sms", skips=[], fresh=True
    )
    rows = oracle(store, "SELECT target_key, recipient, content FROM send_records")
    assert sorted(rows, key=lambda r: r[0]) == sorted(records)


# -- a batch's COPY text made ahead of its write (issue #17): the same rows ----------------
_AWKWARD = ["안녕", "tab\there", "line\nbreak", "back\\slash", "cr\r", "\\N", "", "a\\nb"]


def test_records_made_ahead_are_stored_as_the_records_given(store: Store) -> None:
    """`record_rows` (the batch's COPY text made in the run's thread) stores exactly the
    records it was given, with awkward texts among them, each once even when the batch is
    written twice, stamped with the batch's heartbeat; on PostgreSQL with the ids it made,
    in recipient order."""
    wf = store.workflows.create(name="w")
    run = store.runs.create(wf["id"])
    campaigns = Campaigns(store.backend)
    assert campaigns.acquire(wf["id"], run["id"], "me:1", stale_after=60) is None
    rnd = random.Random(40)
    records = [
        (f"k{i}", f"+8210{rnd.randrange(10**8):08d}", f"{_AWKWARD[i % len(_AWKWARD)]} {i}")
        for i in range(400)
    ]
    ahead = campaigns.record_rows(run["id"], wf["id"], records, "sms")
    postgres = store.backend.name == "postgresql"
    order = " ORDER BY ctid" if postgres else ""
    query = f"SELECT target_key, recipient, content, id, created_at FROM send_records{order}"
    stored = []
    for _ in range(2):  # the second time as after a lost commit acknowledgement
        assert campaigns.write_batch(
            run["id"], wf["id"], "me:1", records=ahead, channel="sms", skips=[], fresh=True
        )
        stored.append(oracle(store, query))
        if len(stored) == 1:  # the first write's beat stamps its records
            [(beat,)] = oracle(store, "SELECT heartbeat_at FROM run_locks")
    rows = stored[0]
    assert stored[1] == rows
    assert sorted(r[:3] for r in rows) == sorted(records)
    assert {r[4] for r in rows} == {beat}
    if postgres:
        assert [r[1] for r in rows] == sorted(r[1] for r in records)
        ids = [uuid.UUID(str(r[3])) for r in rows]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert {i.version for i in ids} == {7}
    else:
        assert ahead == records  # no COPY: the records as given


@pytest.mark.postgres
def test_records_made_ahead_meeting_stored_keys_store_only_the_new_ones(pg_db: URL) -> None:
    """A batch made ahead whose keys are partly stored already (a first pass that meets
    them: its COPY fails, and the batch is written again skipping those keys) keeps the
    stored records as they were and adds the others, from the same text."""
    _reset_pg(pg_db)
    st = Store(SqlBackend(pg_db), actor="tester")
    st.init()
    try:
        wf = st.workflows.create(name="w")
        run = st.runs.create(wf["id"])
        campaigns = Campaigns(st.backend)
        first = [(str(i), f"+8210{i:08d}", f"old\t{i}") for i in range(0, 100, 2)]
        assert campaigns.write_batch(
            run["id"], wf["id"], None, records=first, channel="sms", skips=[], fresh=True
        )
        batch = [(str(i), f"+8210{i:08d}", f"new\n{i}") for i in range(100)]
        ahead = campaigns.record_rows(run["id"], wf["id"], batch, "sms")
        assert campaigns.write_batch(
            run["id"], wf["id"], None, records=ahead, channel="sms", skips=[], fresh=True
        )
        rows = oracle(st, "SELECT target_key, recipient, content FROM send_records")
    finally:
        st.close()
    want = {k: (k, r, c) for k, r, c in batch} | {k: (k, r, c) for k, r, c in first}
    assert sorted(rows) == sorted(want.values())


@pytest.mark.postgres
def test_records_made_ahead_reach_a_session_of_another_client_encoding_as_given(
    pg_db: URL,
) -> None:
    """The text made ahead is UTF-8; on a session whose client encoding is another (EUC-KR
    here), it is handed to psycopg as text, which encodes it as the session's: the stored
    Korean is what was given, not UTF-8 bytes read as EUC-KR."""
    _reset_pg(pg_db)
    url = pg_db.update_query_dict({"options": "-c client_encoding=EUC_KR"})
    st = Store(SqlBackend(url), actor="tester")
    st.init()
    try:
        wf = st.workflows.create(name="w")
        run = st.runs.create(wf["id"])
        campaigns = Campaigns(st.backend)
        records = [(str(i), f"+8210{i:08d}", f"(광고) 김민준님 {i}\t혜택") for i in range(30)]
        ahead = campaigns.record_rows(run["id"], wf["id"], records, "sms")
        assert campaigns.write_batch(
            run["id"], wf["id"], None, records=ahead, channel="sms", skips=[], fresh=True
        )
        rows = oracle(st, "SELECT target_key, recipient, content FROM send_records")
    finally:
        st.close()
    assert sorted(rows) == sorted(records)
