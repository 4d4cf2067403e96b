"""How a consent flag's value is read, for every type MariaDB may keep it in, and the
sizes a run counts by the user's own SMS/LMS limits.

Sources are fresh MariaDB databases, stores SQLite files; the oracle is direct SQL on the
store (which customers have a send record, which exclusions were counted) against the
values the test put in the source. Found by the last attack round: a DECIMAL(3,1) 1.0
(PyMySQL's `Decimal('1.0')`) read as no consent, and `stats["sizes"]` classified with the
default 90/2,000-byte limits whatever the settings said.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

import hybridwb
from hybridwb.targets.consent import consent_of
from hybridwb.workflows import advertising, policies
from tests.conftest import mariadb_maker
from tests.test_attack_once_round2 import (
    AD,
    DAY,
    INFO,
    oracle,
    people,
    records,
    run_once,
    skips,
    source_url,
)


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_cv")


@pytest.fixture
def store(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


# -- the reading, value by value (pure) ------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "reading"),
    [
        (True, True),
        (False, False),
        (None, False),
        (1, True),
        (0, False),
        (2, True),  # TINYINT(1) 2 / -1: MySQL's BOOL, `WHERE flag` is true
        (-1, True),
        (Decimal("1"), True),  # DECIMAL(1,0)
        (Decimal("1.0"), True),  # DECIMAL(3,1): the defect
        (Decimal("0.0"), False),
        (Decimal("-0"), False),
        (Decimal("0.5"), None),  # not a flag's value: unclear
        (Decimal("NaN"), None),
        (Decimal("1e999999"), True),  # whole, judged without a million-digit int
        (Decimal("1.5e-999999"), None),
        (1.0, True),  # DOUBLE
        (0.0, False),
        (0.5, None),
        (float("nan"), None),
        (float("inf"), None),
        (b"\x01", True),  # BIT(1)
        (b"\x00", False),
        (b"\x00\x01", True),  # BIT(16) = 1
        (b"Y", True),  # a flag kept in a VARBINARY
        (b"N", False),
        (b"\x02", None),
        ("Y", True),
        ("y", True),
        (" Yes ", True),
        ("1", True),
        ("true", True),
        ("T", True),
        ("동의", True),
        ("N", False),
        ("no", False),
        ("0", False),
        ("false", False),
        ("f", False),
        ("", False),
        ("  ", False),
        ("미동의", False),
        ("maybe", None),
        ("2", None),
        ("1.0", None),
        ("yes please", None),
        ([1], None),
    ],
    ids=repr,
)
def test_a_consent_value_reads_as_yes_no_or_unclear(value: Any, reading: bool | None) -> None:
    assert consent_of(value) is reading
    assert advertising.truthy(value) is (reading is True)


def test_an_unclear_consent_is_excluded_with_its_own_reason_and_counted_as_consent() -> None:
    rules = policies.Rules("wf", "run", datetime(2026, 3, 3, 1, 0), policies.SendPolicy(), True)
    phone = "+821023456789"
    out = policies.decide(
        [
            policies.Candidate("a", phone, consent=Decimal("1.0")),
            policies.Candidate("b", "+821023456788", consent=Decimal("0")),
            policies.Candidate("c", "+821023456787", consent="maybe"),
        ],
        [],
        rules,
    )
    assert out == [None, policies.NO_CONSENT, policies.UNCLEAR_CONSENT]
    assert policies.UNCLEAR_CONSENT in policies.CONSENT_REASONS


# -- a real run per column type ----------------------------------------------------------------
#: (column, SQL type, mapping type); every customer has a value in each column
COLUMNS = [
    ("c_tinyint", "TINYINT(1)", "boolean"),
    ("c_bool", "BOOLEAN", "boolean"),
    ("c_bit", "BIT(1)", "boolean"),
    ("c_int", "INT", "number"),
    ("c_dec10", "DECIMAL(1,0)", "number"),
    ("c_dec31", "DECIMAL(3,1)", "number"),
    ("c_double", "DOUBLE", "number"),
    ("c_char", "CHAR(5)", "string"),
    ("c_enum", "ENUM('Y','N')", "string"),
]
#: per customer, the value in each column above (in order)
VALUES = {
    "m0": (1, 1, 1, 1, 1, "1.0", 1.0, "Y", "Y"),
    "m1": (0, 0, 0, 0, 0, "0.0", 0.0, "N", "N"),
    "m2": (None,) * 9,
    "m3": (2, -1, 1, 7, -1, "0.5", 0.5, "maybe", None),
    "m4": (1, 1, 0, 1, 1, "2.5", 2.0, "yes", "N"),
    "m5": (0, 1, 1, 0, 1, "1.0", 1.0, "1", "Y"),
    "m6": (1, 0, 0, 1, 0, "0.0", 0.0, "0", "N"),
    "m7": (1, 1, 1, 1, 1, "1.0", 1.0, "true", "Y"),
    "m8": (1, 1, 1, 1, 1, "1.0", 1.0, "", "Y"),
    "m9": (1, 1, 1, 1, 1, "1.0", 1.0, "2", "Y"),
}
#: the customers each column says yes for, and those it leaves unclear (the rest: no)
YES = {
    "c_tinyint": {"m0", "m3", "m4", "m6", "m7", "m8", "m9"},
    "c_bool": {"m0", "m3", "m4", "m5", "m7", "m8", "m9"},
    "c_bit": {"m0", "m3", "m5", "m7", "m8", "m9"},
    "c_int": {"m0", "m3", "m4", "m6", "m7", "m8", "m9"},
    "c_dec10": {"m0", "m3", "m4", "m5", "m7", "m8", "m9"},
    "c_dec31": {"m0", "m5", "m7", "m8", "m9"},
    "c_double": {"m0", "m4", "m5", "m7", "m8", "m9"},
    "c_char": {"m0", "m4", "m5", "m7"},
    "c_enum": {"m0", "m5", "m7", "m8", "m9"},
}
UNCLEAR = {
    "c_dec31": {"m3", "m4"},
    "c_double": {"m3"},
    "c_char": {"m3", "m9"},
}


def consent_source(source: Callable[..., str]) -> str:
    cols = ", ".join(f"{name} {sql} NULL" for name, sql, _ in COLUMNS)
    db = source(
        f"CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), "
        f"mobile VARCHAR(20), {cols})",
        rows={
            "members": [
                (k, "회원", f"010-4900-{i:04d}", *v[:2], None, *v[3:])
                for i, (k, v) in enumerate(VALUES.items())
            ]
        },
    )
    from tests.test_attack_once_round2 import src

    for k, v in VALUES.items():  # BIT values as bits, not as the text '1'
        if v[2] is not None:
            src(db, f"UPDATE members SET c_bit = b'{v[2]}' WHERE code = '{k}'")
    return db


def mapping(column: str, ftype: str) -> dict[str, Any]:
    base = people()
    fields = {**base["fields"], column: {"displayName": "광고동의", "type": ftype}}
    return {**base, "audience": True, "consent": column, "fields": fields}


def test_every_consent_column_type_messages_exactly_the_customers_who_said_yes(
    source: Callable[..., str], store: str
) -> None:
    """Per column type, an advertising run with the consent filter on (the default) and
    off (the run decides), and an informational run with the filter on: a send record for
    exactly the yes values; an unclear value is never messaged and is counted under its
    own reason, a clear no either not frozen (filter on) or counted as no consent."""
    db = consent_source(source)
    wb = hybridwb.connect(source=source_url(db), store=store)
    try:
        wb.store.init()
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        got: dict[tuple[str, str], tuple[set[str], dict[str, int]]] = {}
        for column, _, ftype in COLUMNS:
            wb.mappings.save("members", mapping(column, ftype))
            cases = [("ad", True), ("ad", False)]
            if ftype == "string":
                cases.append(("info", True))
            for kind, filtered in cases:
                message = {"template": "세일"} if kind == "ad" else {"content": INFO}
                wf = wb.workflows.create(
                    f"{column}-{kind}-{filtered}",
                    target_config={"table": "members", "exclude_opt_out": filtered},
                    message_config=message,
                )
                run_id = run_once(wb, wf, now=DAY)
                got[(column, f"{kind}-{filtered}")] = (
                    {k for k, _ in records(store, run_id)},
                    skips(store, run_id),
                )
    finally:
        wb.close()
    want: dict[tuple[str, str], tuple[set[str], dict[str, int]]] = {}
    for column, _, ftype in COLUMNS:
        yes, unclear = YES[column], UNCLEAR.get(column, set())
        no = set(VALUES) - yes - unclear
        reported = {policies.UNCLEAR_CONSENT: len(unclear)} if unclear else {}
        want[(column, "ad-True")] = (yes, reported)
        want[(column, "ad-False")] = (yes, {**reported, policies.NO_CONSENT: len(no)})
        if ftype == "string":
            want[(column, "info-True")] = (yes, reported)
    assert got == want


# -- sizes counted by the user's limits -------------------------------------------------------
def test_run_sizes_are_counted_by_the_limits_in_settings(
    source: Callable[..., str], store: str
) -> None:
    """With SMS up to 30 bytes and LMS up to 60, a run's `stats["sizes"]` counts each
    message as the type its EUC-KR size fits by those limits (the defaults, 90/2,000,
    counted every one of these as SMS). Oracle: the stored records' content encoded with
    Python's `encode('euc-kr')`."""
    names = ["가", "가나다라마바", "가나다라마바사아자차카타파하", "김" * 20]
    db = source(
        "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(40), mobile VARCHAR(20))",
        rows={"members": [(f"m{i}", n, f"010-4910-{i:04d}") for i, n in enumerate(names)]},
    )
    wb = hybridwb.connect(source=source_url(db), store=store, sms_max_bytes=30, lms_max_bytes=60)
    try:
        wb.store.init()
        wb.mappings.save("members", {**people(), "audience": True})
        wf = wb.workflows.create(
            "sizes",
            target_config={"table": "members"},
            message_config={"content": INFO, "message_type": "SMS"},
        )
        run_id = run_once(wb, wf, now=DAY)
        stats = wb.store.runs.get(run_id)["stats"]
        # one message rendered alone (`render`, the renderer's row-by-row form) fits the same
        alone = [
            wb.templates.render(INFO, {"name": n}, table="members", message_type="SMS")
            for n in names
        ]
    finally:
        wb.close()
    contents = [
        str(c)
        for (c,) in oracle(
            store,
            "SELECT content FROM send_records WHERE CAST(run_id AS TEXT) IN (%s, %s)",
            (str(run_id), __import__("uuid").UUID(str(run_id)).hex),
        )
    ]
    assert len(contents) == 3  # the fourth is past the largest limit: refused
    count: Counter[str] = Counter()
    size: Counter[str] = Counter()
    for text in contents:
        n = len(text.encode("euc-kr"))
        kind = "SMS" if n <= 30 else "LMS" if n <= 60 else "too long"
        count[kind] += 1
        size[kind] += n
    assert set(count) == {"SMS", "LMS"}  # both limits are crossed
    assert [(o.text, o.size.fits) for o in alone if o.text is not None] == [
        (t, "SMS" if len(t.encode("euc-kr")) <= 30 else "LMS") for t in sorted(contents, key=len)
    ]
    assert alone[-1].skipped == "too long: 63 bytes, over the LMS limit of 60 (EUC-KR)"
    assert stats["sizes"] == {k: {"count": count[k], "bytes": size[k]} for k in count}


def test_a_previews_opt_out_count_is_what_the_run_reads_as_no_consent() -> None:
    """A preview's `marketing_opt_out` counts the values the run excludes (no or unclear):
    it compared `str(value) != "1"`, so Decimal('1.0'), True and 'Y' were opted out."""
    from types import SimpleNamespace

    import pandas as pd

    from hybridwb.mapping.model import TableMapping
    from hybridwb.targets.quality import quality

    values = [1, Decimal("1.0"), 1.0, True, b"\x01", "Y", " yes ", 0, None, "N", "maybe", 0.5]
    df = pd.DataFrame({"code": range(len(values)), "ok": pd.Series(values, dtype=object)})
    plan = SimpleNamespace(recipient=None, consent="ok")
    mapping = TableMapping.model_validate({"displayName": "회원", "fields": {}})
    assert quality(df, plan, mapping)["marketing_opt_out"] == 5
