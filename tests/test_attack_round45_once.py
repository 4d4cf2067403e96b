"""Round 45 attack on "a workflow run messages exactly the intended customers, each once".

Break (fixed): a dry run whose batches split two targets of one recipient (d1, d2; n1, n2:
both consenting) counted neither duplicate exclusion the run makes: a dry run writes no
send record, so a later batch's check found no earlier message of the run in the store's
history and the dry run "sent" both. Now a dry run keeps the recipients its earlier batches
would have messaged (`process._process`, `dry_sent`).

Break (fixed): a preview of another definition, after a customer refused (d2 'N'; d1 holds
the same phone), read its own rows anew (d2 left out by the consent filter) but the other
rows' refusals from an earlier preview's result cache: it counted 4, the run excluded 5.
Now the refusal read is answered from the cache only when the preview's head statement
is, else read anew and cached (`Source.records(refresh=True)`, `Source.cached`).

Held (one line each):
- frames.frame_of equals DataFrame.from_records (dtypes, values) for int/str keys mixed,
  None first, NaN, bool/tinyint(1) with NULL, bytes b'\\x00', Decimal, dates, datetimes,
  NUL text, all-None, uint64, ragged rows, a list row after a tuple, duplicate names.
- consent_of on what the preview's frame gives (to_dict/iter box to Python): 1.0, NaN,
  ' yes ', 'N', b'\\x00', None read as the run reads them; a NULL tinyint(1) (NaN) reads
  unclear in the preview, no in the run: both excluded, counted alike.
- the recipient normalizer gives one spelling for a BIGINT phone as int and as float
  (a NULL in the column makes the frame's column float64).
- in_recipient_order: a batch with duplicate recipients, None mixed in (left as given);
  ids after the sort; nothing reads send_records in id order (grep); in-batch duplicates
  are decided before the write (dry run and run agree at batch_size 100).
- the refusal read (`_windows`) at a window boundary: tables of w-1, w, w+1 rows whose
  last rows refuse, read with window w, find the refusals a one-window read finds.
- a shared phone is messaged once iff its other holder's consent reads yes, for VARBINARY,
  TINYINT(1), BIT(1), DECIMAL, FLOAT, DOUBLE and an accent/width-folding collation ('ý',
  'Ｙ', 'ｙｅｓ', 'y' + NBSP, b'yes\t', b'\xff'): the SQL filter (`not_surely_yes`) never drops
  a row `consent_of` reads as no; the preview counts what the run excludes.
- a run and a dry run cut by a failed batch write and processed again: duplicates across
  batches excluded, each phone one record; dry run vs run also agree at night, in "wait"
  mode, under a frequency cap and for an informational message (probed, batch_size 1).
- a saved query: one not returning the key is refused at save; one repeating a key
  (UNION ALL) is refused at freeze; a key CAST to BINARY still matches its refusals.
- 20,000 rows exactly with allow_scan=False is "not known" (the read needs a second,
  empty window): documented as "fewer than WINDOW", not a wrong count.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from hybridwb.workflows import audience, policies, refusals
from tests._stores import store_sql
from tests.test_attack_once_round2 import DAY, records, skips, src
from tests.test_shared_recipient_consent import (
    any_store,  # noqa: F401  (fixtures)
    mapping,
    members_source,
    pg_store,  # noqa: F401
    workbench,
)
from tests.test_shared_recipient_consent import source as source

pytestmark = [pytest.mark.mysql, pytest.mark.postgres]


def _run(wb: Any, *, dry_run: bool, batch_size: int) -> tuple[Any, dict[str, Any]]:
    """An advertising run (or dry run) by day over the members: its id and stats."""
    wf = wb.workflows.create(
        f"ad-{uuid.uuid4().hex[:6]}",
        target_config={"table": "members"},
        message_config={"template": "세일"},
    )
    run = wb.store.runs.create(wf["id"], {}, dry_run=dry_run)
    stats = wb.workflows.process(
        wf["id"], run["id"], progress=False, now=DAY, dry_run=dry_run, batch_size=batch_size
    )
    return run["id"], stats


def _targets(store: str, run_id: Any) -> int:
    rows = store_sql(
        store,
        "SELECT count(*) FROM run_targets WHERE CAST(run_id AS TEXT) IN (%s, %s)",
        (str(run_id), uuid.UUID(str(run_id)).hex),
    )
    return int(rows[0][0])


@pytest.mark.parametrize("batch_size", [1, 3, 100])
def test_a_dry_run_counts_the_duplicates_across_batches_the_run_excludes(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
    batch_size: int,
) -> None:
    """MEMBERS (d1/d2 and n1/n2 each one phone, all consenting) by a dry run, then by a
    run: the dry run's exclusions, reason by reason (run_skips by direct SQL), and the
    messages it would send are the run's (send_records), whatever the batches."""
    db = members_source(source)
    wb = workbench(db, any_store, mapping())
    try:
        dry, dry_stats = _run(wb, dry_run=True, batch_size=batch_size)
        real, _ = _run(wb, dry_run=False, batch_size=batch_size)
    finally:
        wb.close()
    sent = records(any_store, real)
    assert skips(any_store, dry) == skips(any_store, real)
    assert skips(any_store, real)[policies.DUPLICATE] == 2
    assert dry_stats["rendered_this_pass"] == len(sent) == 4
    assert len({r for _, r in sent}) == len(sent)  # each phone once
    # every frozen target: one record or one exclusion
    assert _targets(any_store, real) == len(sent) + sum(skips(any_store, real).values())
    assert records(any_store, dry) == []


def _member(i: int, phone: str, ok: str) -> tuple[Any, ...]:
    return (f"k{i:03d}", "채", phone, f"m{i}@x.com", ok, "Y")


@pytest.mark.parametrize("extra", [-1, 0, 1], ids=["w-1", "w", "w+1"])
def test_the_refusal_read_at_a_window_boundary(
    source: Callable[..., str], tmp_path: Any, extra: int
) -> None:
    """w-1, w, w+1 rows (w = 5): the last row refuses the phone the first row holds, the
    w-th (the first window's last key) is unclear for the second's; a read in windows of w
    finds what one window finds."""
    from tests._stores import migrated_sqlite

    w = 5
    n = w + extra
    rows = [_member(i, f"010-8000-{i:04d}", "Y") for i in range(n)]
    rows[-1] = _member(n - 1, "010-8000-0000", "N")
    b = w - 1 if n > w else n - 2  # the w-th row (the first window's last), or before
    rows[b] = _member(b, "010-8000-0001", "maybe")
    db = members_source(source, rows)
    store = migrated_sqlite(tmp_path / "store.db").render_as_string()
    wb = workbench(db, store, mapping())
    try:
        aud = audience.audience_for(wb.mappings, {"table": "members"})
        paged = refusals.read(wb.targets, aud, recipient=None, now=DAY, window=w)
        whole = refusals.read(wb.targets, aud, recipient=None, now=DAY, window=10 * w)
    finally:
        wb.close()
    assert paged.consent == whole.consent
    assert paged.consent["+821080000000"] == f"k{n - 1:03d}"
    assert paged.consent["+821080000001"] == f"k{b:03d}"


@pytest.mark.parametrize("any_store", ["sqlite"], indirect=True)
def test_a_preview_after_a_refusal_counts_it_though_an_earlier_preview_is_cached(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
) -> None:
    """A preview (default cache_ttl), then d2 refuses marketing (d1 holds the same phone),
    then a preview of another definition of the same rows: its own rows are read anew (d2
    is gone from the set, a clear no), and so are the refusals: d1 is counted, as the run
    excludes it (run_skips by direct SQL). Before: the refusal read was answered from the
    first preview's cache, and the second preview counted 4, the run 5."""
    from tests.test_preview_shared_consent import consent_exclusions

    db = members_source(source)
    wb = workbench(db, any_store, mapping())
    others = {"table": "members", "where": {"field": "name", "op": "ne", "value": "-"}}
    try:
        before = wb.targets.preview({"table": "members"}, now=DAY)
        src(db, "UPDATE members SET ok = 'N' WHERE code = 'd2'")
        after = wb.targets.preview(others, now=DAY)
        real, _ = _run(wb, dry_run=False, batch_size=100)
    finally:
        wb.close()
    assert src(db, "SELECT ok FROM members WHERE code IN ('d1', 'd2') ORDER BY code") == [
        ("Y",),
        ("N",),
    ]
    assert before.quality["marketing_opt_out"] == 4
    assert after.count == 9  # a2, and now d2, left out by the consent filter: read anew
    assert after.quality["marketing_opt_out"] == consent_exclusions(any_store, real) == 5


#: consent column types, a clear yes in each, and the holders' values tried against it
CONSENT_TYPES: dict[str, tuple[Any, list[Any]]] = {
    "VARBINARY(8)": (
        b"Y",
        [b"N", b"\x00", b" yes ", None, b"Y", b"\x01", b"1", b"yes\t", b"\xff", b"\x00\x01", b""],
    ),
    "TINYINT(1)": (1, [0, 1, 2, -1, None]),
    "BIT(1)": (b"\x01", [b"\x00", b"\x01", None]),
    "DECIMAL(3,1)": (1, ["1.0", "0.0", "0.5", "2.0", None, "-1.0"]),
    "VARCHAR(8) COLLATE utf8mb4_unicode_ci": (
        "Y",
        ["ý", "Ｙ", "Ÿ", " yes ", "N", "y\u00a0", "YES", "ｙｅｓ", None, "동의 ", "1 ", "t"],
    ),
    "FLOAT": (1, [1.0000001, 0.9999999, 1.5, None, 0]),
    "DOUBLE": (1, [1.0000000000000002, 1e0, None]),
}


@pytest.mark.parametrize("any_store", ["sqlite"], indirect=True)
@pytest.mark.parametrize("ctype", list(CONSENT_TYPES))
def test_a_phone_is_messaged_once_and_only_if_every_holder_consents(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
    ctype: str,
) -> None:
    """Held: pairs of rows sharing a phone, s (a clear yes) and t (each value tried, by
    column type, accent- and width-folding collation too): the phone gets one message
    when t's value reads yes (`consent_of`, on the value pymysql returns), none otherwise
    (send_records by sqlite3); the preview counts the run's consent exclusions."""
    from hybridwb.targets.consent import consent_of
    from tests.test_preview_shared_consent import consent_exclusions

    yes, values = CONSENT_TYPES[ctype]
    rows = []
    for i, value in enumerate(values):
        phone = f"010-9{i:03d}-0000"
        rows.append((f"s{i:02d}", "가", phone, f"s{i}@x.com", yes, "Y"))
        rows.append((f"t{i:02d}", "나", phone, f"t{i}@x.com", value, "Y"))
    db = source(
        "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), "
        f"mobile VARCHAR(30), email VARCHAR(100), ok {ctype} NULL, night VARCHAR(8) NULL)",
        rows={"members": rows},
    )
    wb = workbench(db, any_store, mapping())
    everyone = {"table": "members", "exclude_opt_out": False}
    try:
        preview = wb.targets.preview(everyone, now=DAY)
        wf = wb.workflows.create(
            f"ad-{uuid.uuid4().hex[:6]}",
            target_config=everyone,
            message_config={"template": "세일"},
        )
        run = wb.store.runs.create(wf["id"], {})
        wb.workflows.process(wf["id"], run["id"], progress=False, now=DAY, batch_size=7)
    finally:
        wb.close()
    sent = {key for key, _ in records(any_store, run["id"])}
    for code, value in src(db, "SELECT code, ok FROM members WHERE code LIKE 't%'"):
        both = {f"s{code[1:]}", code} & sent
        assert len(both) == (1 if consent_of(value) is True else 0), (code, value)
    assert preview.quality["marketing_opt_out"] == consent_exclusions(any_store, run["id"])
    assert _targets(any_store, run["id"]) == len(sent) + sum(skips(any_store, run["id"]).values())


@pytest.mark.parametrize("at", [3, 7])
@pytest.mark.parametrize("dry_run", [True, False], ids=["dry", "real"])
def test_a_run_cut_by_a_failed_batch_write_and_resumed_messages_each_phone_once(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    dry_run: bool,
    at: int,
) -> None:
    """Held: batches of one; the `at`-th batch write (the freeze's exclusions are the
    first) fails with the store unreachable, then the run is processed again: the two
    duplicates are excluded, each phone gets one record (a dry run: none), every frozen
    target has one record or one exclusion (run_targets, send_records, run_skips by SQL)."""
    from hybridwb.errors import ConnectionFailed
    from hybridwb.platform.campaigns import Campaigns

    real = Campaigns.write_batch
    calls = {"n": 0}

    def write_batch(self: Campaigns, *a: Any, **kw: Any) -> bool:
        calls["n"] += 1
        if calls["n"] == at:
            raise ConnectionFailed("the store is unreachable")
        return real(self, *a, **kw)

    monkeypatch.setattr(Campaigns, "write_batch", write_batch)
    wb = workbench(members_source(source), any_store, mapping())
    try:
        wf = wb.workflows.create(
            f"ad-{uuid.uuid4().hex[:6]}",
            target_config={"table": "members"},
            message_config={"template": "세일"},
        )
        run = wb.store.runs.create(wf["id"], {}, dry_run=dry_run)
        with pytest.raises(ConnectionFailed):
            wb.workflows.process(
                wf["id"], run["id"], progress=False, now=DAY, dry_run=dry_run, batch_size=1
            )
        wb.workflows.process(
            wf["id"], run["id"], progress=False, now=DAY, dry_run=dry_run, batch_size=1
        )
    finally:
        wb.close()
    sent = records(any_store, run["id"])
    excluded = skips(any_store, run["id"])
    assert calls["n"] > at and excluded[policies.DUPLICATE] == 2
    assert len(sent) == (0 if dry_run else 4) and len({r for _, r in sent}) == len(sent)
    if not dry_run:
        assert _targets(any_store, run["id"]) == len(sent) + sum(excluded.values())
