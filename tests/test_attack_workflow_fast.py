# ruff: noqa: F811  (the fixtures imported from round 2 are test parameters here)
"""Attacks on wf18's fast paths against "a run messages exactly the intended customers, once
each, at the right number, with the right text".

Oracles: phonenumbers itself (E.164), a plain jinja2 Environment, Python's own per-character
EUC-KR encode, and direct SQL (psycopg) on a real PostgreSQL store over a real MariaDB source.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import phonenumbers
import psycopg
import pytest

from hybridwb.platform.idempotent import timestamptz_text
from hybridwb.templating import parse
from hybridwb.templating.message import LIMITS, euc_kr_size
from hybridwb.workflows import policies
from tests.test_attack_once_round2 import (  # noqa: F401  (fixtures: source, pg_store)
    DAY,
    INFO,
    oracle,
    people,
    pg_store,
    records,
    skips,
    source,
    start,
    workbench,
)

_E164 = phonenumbers.PhoneNumberFormat.E164
_FULL = str.maketrans("0123456789", "０１２３４５６７８９")
_ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def _phonenumbers(text: str) -> str | None:
    """phonenumbers' own E.164 of a text, when it reads it whole as a valid number."""
    try:
        number = phonenumbers.parse(text, "KR")
    except phonenumbers.NumberParseException:
        return None
    return (
        phonenumbers.format_number(number, _E164) if phonenumbers.is_valid_number(number) else None
    )


def _spellings(national: str) -> list[str]:
    """How customer tables spell one Korean number given as national digits (`01012345678`)."""
    nsn = national[1:]
    a, b, c = national[:3], national[3:-4], national[-4:]
    if national.startswith("02"):
        a, b = national[:2], national[2:-4]
    return [
        national,
        f"{a}-{b}-{c}",
        f"{a}.{b}.{c}",
        f"{a} {b} {c}",
        f"({a}) {b}-{c}",
        f"{a}{b}-{c}",
        f"+82{nsn}",
        f"+82 {nsn[: len(nsn) - len(b) - 4]} {b}-{c}"
        if not national.startswith("02")
        else f"+82 2 {b} {c}",
        f"+82-{nsn}",
        f"0082{nsn}",
        f"0082-{nsn}",
        f"82{nsn}",
        f"  {a}-{b}-{c}  ",
        f"\u3000{national}\t",
        national.translate(_FULL),
        f"{a}-{b}-{c}".translate(_ARABIC),
        f"tel:{national}",
    ]


NUMBERS = ["01012345678", "01055550001", "0101234567", "01198765432", "0212345678",
           "03112345678", "07012345678", "05051234567"]  # fmt: skip


def test_the_fast_path_gives_phonenumbers_e164_for_every_national_shape() -> None:
    rnd = random.Random(18)
    texts = [
        "01" + "".join(rnd.choice("0123456789") for _ in range(rnd.choice((8, 9, 11))))
        for _ in range(6_000)
    ]
    texts += [t[:3] + rnd.choice("-. ") + t[3:7] + rnd.choice("-. ") + t[7:] for t in texts[:3000]]
    texts += [t[:3] + "-" + t[3:-4] + "-" + t[-4:] for t in texts[:3000]]
    differ = [
        t
        for t in texts
        if policies.normalize("sms", t) != (_phonenumbers(t) or policies._parsed_phone(t))
    ]
    assert differ == []
    # every recipient is phonenumbers' own E.164 (a possible number is kept by design)
    for t in texts:
        got = policies.normalize("sms", t)
        if got is not None:
            number = phonenumbers.parse(got, None)
            assert phonenumbers.is_possible_number(number)
            assert phonenumbers.format_number(number, _E164) == got


@pytest.mark.parametrize("national", NUMBERS)
def test_every_spelling_of_one_number_is_one_recipient(national: str) -> None:
    expected = _phonenumbers(national)
    assert expected is not None
    got = {s: policies.normalize("sms", s) for s in _spellings(national)}
    assert {s: g for s, g in got.items() if g != expected} == {}


def test_different_numbers_never_collapse() -> None:
    rnd = random.Random(5)
    nationals = {"010" + f"{rnd.randrange(10**8):08d}" for _ in range(2000)} | set(NUMBERS)
    seen: dict[str, str] = {}
    for n in sorted(nationals):
        for s in _spellings(n)[:4]:
            got = policies.normalize("sms", s)
            if got is None:
                continue
            assert seen.setdefault(got, n) == n, s


@pytest.mark.parametrize(
    "value",
    [
        1012345678,
        1.012345678e9,
        Decimal("1012345678"),
        Decimal("1.012345678E+9"),
        "1012345678",
        "+82 10-1234-5678",
        "00821012345678",
        " 010-1234-5678\n",
        "010-1234-5678\x00",
        "０１０-１２３４-５６７８",
    ],
)
def test_numbers_and_strings_of_one_phone_are_one_recipient(value: Any) -> None:
    assert policies.normalize("sms", value) == "+821012345678"


@pytest.mark.parametrize(
    "value",
    [None, "", "   ", 1.5, float("nan"), float("inf"), Decimal("NaN"), "x" * 5000,
     "0" * 200, "010-1234-5678, 010-8765-4321", True],
)  # fmt: skip
def test_what_is_no_phone_is_refused(value: Any) -> None:
    assert policies.normalize("sms", value) is None


#: numbers phonenumbers calls possible but not valid: a truncated mobile, an unassigned
#: range, the UK's numbers kept for drama
_ONLY_POSSIBLE = ["010-1234", "01474341582", "+44 7700 900000", "+82 2 1234"]


@pytest.mark.parametrize("text", _ONLY_POSSIBLE)
def test_a_truncated_or_invalid_number_is_never_messaged(text: str) -> None:
    """Its E.164 spelling is kept (history still matches it), but the decision excludes it:
    nobody's number is no intended customer."""
    assert _phonenumbers(text) is None  # phonenumbers: not a valid number
    recipient = policies.normalize("sms", text)
    assert recipient is not None and recipient.startswith("+")
    rules = policies.Rules(1, 1, DAY, policies.SendPolicy(), False, "exclude")
    candidate = policies.Candidate("k", recipient, None, None, present=True)
    assert policies.decide([candidate], [], rules) == [policies.INVALID_PHONE]


def test_deliverable_is_phonenumbers_validity() -> None:
    """The fast path (KR mobile metadata) and the parse agree with phonenumbers over
    valid, possible-only and malformed E.164 texts."""
    rng = random.Random(17)
    texts = ["+821012345678", "+82101234", "+8210123456789", "+82212345678", "+8221234"]
    texts += [f"+8210{rng.randrange(10**7, 10**9)}" for _ in range(300)]
    texts += [f"+82{rng.randrange(10**5, 10**11)}" for _ in range(300)]
    texts += [f"+{rng.randrange(1, 999)}{rng.randrange(10**5, 10**11)}" for _ in range(300)]
    for text in texts:
        try:
            valid = phonenumbers.is_valid_number(phonenumbers.parse(text, None))
        except phonenumbers.NumberParseException:
            valid = False
        assert policies.deliverable(text) is valid, text
    assert policies.deliverable("kim@example.com")
    assert policies.deliverable("+news@example.com")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+44 20 7946 0958", "+442079460958"),
        ("0044 20 7946 0958", "+442079460958"),
        ("+1 650-253-0000", "+16502530000"),
        ("001 650 253 0000", "+16502530000"),
    ],
)
def test_foreign_numbers_keep_their_country(text: str, expected: str) -> None:
    assert policies.normalize("sms", text) == expected


# -- templates: the joined pieces are what Jinja renders -----------------------------------
_JINJA = jinja2.Environment(
    undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
)

TEMPLATES = [
    "{{ 이름 }}님, 안내입니다.",
    "a {{ x }} b {{y}}",
    "{{x}}\n",
    "{{x}}\n\n",
    "  {{- x -}}  \n  {{ y }} ",
    "{{ x }}{{ y }}{{ x }}",
    "{% raw %}{{ x }}{% endraw %}{{ x }}",
    "<b>{{ x }}</b> &amp; {{ y }}",
    "{#- comment -#} {{ x }}",
    "line1\r\n{{ x }}\r\n",
]
VALUES = [
    "<script>&'\"",
    "{{ y }}",
    "{% if 1 %}z{% endif %}",
    1,
    1.0,
    1e20,
    -0.0,
    Decimal("1.10"),
    Decimal("1E+3"),
    dt.date(2026, 1, 2),
    dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
    True,
    "",
    "똠방각하 😀 e\u0301",
    "\x00",
    "  padded \n",
]


@pytest.mark.parametrize("text", TEMPLATES)
def test_a_joined_template_is_byte_for_byte_what_jinja_renders(text: str) -> None:
    parts = parse.pieces(text)
    assert parts is not None
    for x in VALUES:
        for y in VALUES[::3]:
            values = {"x": x, "y": y, "이름": x}
            assert parse.render_pieces(parts, values, 10_000) == _JINJA.from_string(text).render(
                values
            )


def test_a_missing_variable_goes_to_jinja_not_to_an_empty_join() -> None:
    parts = parse.pieces("a {{ x }} {{ y }}")
    assert parts is not None
    assert parse.render_pieces(parts, {"x": 1}, 10_000) is None
    with pytest.raises(jinja2.UndefinedError):
        _JINJA.from_string("a {{ x }} {{ y }}").render({"x": 1})


@pytest.mark.parametrize(
    "text",
    ["{{ x|upper }}", "{{ x.y }}", "{{ x['y'] }}", "{% if x %}{{ x }}{% endif %}", "{{ 'a' }}",
     "{{ x ~ y }}", "{%- if x %} {{ x }}{% endif -%}", "{{ x() }}", "{% set z = 1 %}{{ z }}"],
)  # fmt: skip
def test_anything_but_text_and_names_is_left_to_jinja(text: str) -> None:
    assert parse.pieces(text) is None


# -- sizes: one encode is the per-character count ------------------------------------------
def _per_char(text: str) -> tuple[int, str, list[str]]:
    total, outside = 0, []
    for ch in text:
        try:
            n = len(ch.encode("euc-kr"))
        except UnicodeEncodeError:
            n = 2
            outside.append(ch)
        else:
            if n > 2:
                outside.append(ch)
        total += n
    fits = "SMS" if total <= LIMITS["SMS"] else "LMS" if total <= LIMITS["LMS"] else "too long"
    return total, fits, list(dict.fromkeys(outside))


def test_the_euc_kr_size_is_the_per_character_size_and_type() -> None:
    # U+3164 is the jamo filler A4 D4 itself; 뽀 (C7 A4) then a character whose lead byte is
    # D4 (the filler's second byte across a boundary); 똠 is an 8-byte jamo spelling
    lead_d4 = next(ch for ch in map(chr, range(0x4E00, 0xA000)) if _encodes_to(ch, b"\xd4"))
    tail_a4 = next(ch for ch in map(chr, range(0x4E00, 0xD7A4)) if _ends_with(ch, b"\xa4"))
    pool = [
        "a",
        " ",
        "\n",
        "가",
        "똠",
        "😀",
        "e\u0301",
        "\u3164",
        lead_d4,
        tail_a4,
        "€",
        "ㄱ",
        "①",
        "\x00",
    ]
    rnd = random.Random(3)
    texts = ["".join(rnd.choice(pool) for _ in range(rnd.randrange(0, 60))) for _ in range(3000)]
    texts += [
        tail_a4 + lead_d4,
        "x" * 90,
        "x" * 91,
        "가" * 45,
        "가" * 44 + "ab",
        "가" * 1000,
        "가" * 1001,
    ]
    for t in texts:
        size = euc_kr_size(t)
        assert (size.bytes, size.fits, size.unencodable) == _per_char(t), t
        assert size.chars == len(t)


def _encodes_to(ch: str, lead: bytes) -> bool:
    try:
        b = ch.encode("euc-kr")
    except UnicodeEncodeError:
        return False
    return len(b) == 2 and b.startswith(lead)


def _ends_with(ch: str, tail: bytes) -> bool:
    try:
        b = ch.encode("euc-kr")
    except UnicodeEncodeError:
        return False
    return len(b) == 2 and b.endswith(tail)


# -- the COPY's time text on a real PostgreSQL ---------------------------------------------
@pytest.mark.postgres
@pytest.mark.parametrize("zone", ["UTC", "Asia/Seoul", "America/St_Johns", "Pacific/Chatham"])
def test_copy_time_text_is_the_instant_psycopg_binds(pg_store: str, zone: str) -> None:
    stamps = [
        dt.datetime(2026, 12, 4, 20, 1, 2, 345678, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 3, 10, 0, tzinfo=ZoneInfo("Asia/Seoul")),
        dt.datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York")),
        dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30, seconds=17))),
        dt.datetime(1900, 1, 1, tzinfo=ZoneInfo("Asia/Seoul")),  # LMT, an offset in seconds
        dt.datetime(1, 1, 2, tzinfo=dt.UTC),
    ]
    database = pg_store.rsplit("/", 1)[1]
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={database}") as conn:
        conn.execute(f"SET TIME ZONE '{zone}'")
        conn.execute("CREATE TEMP TABLE t (i int, copied timestamptz, bound timestamptz)")
        with conn.cursor() as cur, cur.copy("COPY t (i, copied) FROM STDIN") as copy:
            for i, at in enumerate(stamps):
                copy.write_row((i, timestamptz_text(at)))
        for i, at in enumerate(stamps):
            conn.execute("UPDATE t SET bound = %s WHERE i = %s", (at, i))
        rows = conn.execute(
            "SELECT i, copied = bound, extract(epoch FROM copied) FROM t ORDER BY i"
        ).fetchall()
    assert [r[1] for r in rows] == [True] * len(stamps)
    assert [Decimal(r[2]) for r in rows] == [
        Decimal(str(round((at - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)).total_seconds(), 6)))
        for at in stamps
    ]


# -- a run over a table with one customer's phone in many spellings ------------------------
@pytest.mark.mysql
@pytest.mark.postgres
def test_a_run_sends_one_message_per_number_however_it_is_spelled(
    source: Callable[..., str], pg_store: str
) -> None:
    phones = [s for n in ("01012345678", "01055550001", "0212345678") for s in _spellings(n)]
    phones += [None, "", "01012345678, 01055550001", "+44 20 7946 0958",
               "0044 20 7946 0958"]  # fmt: skip
    intended = {policies.normalize("sms", p) for p in phones} - {None}
    assert intended == {"+821012345678", "+821055550001", "+82212345678", "+442079460958"}
    db = source(
        "CREATE TABLE members (member_no INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(40))",
        rows={"members": [(i, f"<회원{i}> {{{{ x }}}}", p) for i, p in enumerate(phones, 1)]},
    )
    wb = workbench(db, pg_store, {"members": {**people("number", "member_no"), "audience": True}})
    try:
        wf = wb.workflows.create(
            f"fast-{uuid.uuid4().hex[:6]}",
            target_config={"table": "members"},
            message_config={"content": INFO},
        )
        run_id = start(wb, wf)
        before = dt.datetime.now(dt.UTC)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
        after = dt.datetime.now(dt.UTC)
        first = records(pg_store, run_id)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)  # resumed: no re-send
    finally:
        wb.close()
    got = records(pg_store, run_id)
    assert got == first
    assert sorted(r for _, r in got) == sorted(intended)  # one message per number
    rows = oracle(
        pg_store,
        "SELECT target_key, content, created_at FROM send_records WHERE run_id = %s",
        (str(run_id),),
    )
    for key, content, created in rows:
        assert content == _JINJA.from_string(INFO).render({"이름": f"<회원{key}> {{{{ x }}}}"})
        assert before <= created <= after
    assert sum(skips(pg_store, run_id).values()) == len(phones) - len(intended)


@pytest.mark.mysql
@pytest.mark.postgres
@pytest.mark.parametrize("crash_after_write", [True, False])
def test_spellings_across_batches_and_a_crash_mid_run_still_send_once_per_number(
    source: Callable[..., str],
    pg_store: str,
    monkeypatch: pytest.MonkeyPatch,
    crash_after_write: bool,
) -> None:
    """Batches of 3 with one number's spellings spread over every batch; the process dies at
    the second batch's write (after its commit, or before it), and the run is resumed."""
    from hybridwb.platform.campaigns import Campaigns

    numbers = ["01012345678", "01055550001", "0212345678", "01198765432"]
    phones = [s for i in range(6) for s in (_spellings(n)[i * 2] for n in numbers)]
    intended = {policies.normalize("sms", p) for p in phones}
    assert len(intended) == len(numbers) and None not in intended
    db = source(
        "CREATE TABLE members (member_no INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(40))",
        rows={"members": [(i, f"회원{i}", p) for i, p in enumerate(phones, 1)]},
    )
    wb = workbench(db, pg_store, {"members": {**people("number", "member_no"), "audience": True}})
    original = Campaigns.write_batch
    calls = []

    def dying(self: Any, *args: Any, **kw: Any) -> bool:
        calls.append(1)
        if len(calls) == 2:
            if crash_after_write:
                original(self, *args, **kw)
            raise KeyboardInterrupt("the process dies")
        return original(self, *args, **kw)

    try:
        wf = wb.workflows.create(
            f"fast-{uuid.uuid4().hex[:6]}",
            target_config={"table": "members"},
            message_config={"content": INFO},
        )
        run_id = start(wb, wf)
        monkeypatch.setattr(Campaigns, "write_batch", dying)
        with pytest.raises(KeyboardInterrupt):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
        monkeypatch.setattr(Campaigns, "write_batch", original)
        partial = records(pg_store, run_id)
        assert len(partial) == (4 if crash_after_write else 3)  # the crash left a run half done
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
    finally:
        wb.close()
    got = records(pg_store, run_id)
    assert sorted(r for _, r in got) == sorted(intended)
    assert skips(pg_store, run_id) == {policies.DUPLICATE: len(phones) - len(intended)}


def _run_members(source: Callable[..., str], pg_store: str, column: str, phones: list[Any]) -> Any:
    """One informational run over a `members` table whose `mobile` column (of type
    `column`) holds `phones`, one row each; the run's id."""
    db = source(
        f"CREATE TABLE members (member_no INT PRIMARY KEY, name VARCHAR(20), mobile {column})",
        rows={"members": [(i, f"회원{i}", p) for i, p in enumerate(phones, 1)]},
    )
    wb = workbench(db, pg_store, {"members": {**people("number", "member_no"), "audience": True}})
    try:
        wf = wb.workflows.create(
            f"fast-{uuid.uuid4().hex[:6]}",
            target_config={"table": "members"},
            message_config={"content": INFO},
        )
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    return run_id


@pytest.mark.mysql
@pytest.mark.postgres
@pytest.mark.parametrize(
    "column", ["BIGINT", "DOUBLE", "DECIMAL(12,0)", "DECIMAL(14,2)", "CHAR(20)"]
)
def test_a_phone_column_of_numbers_sends_one_message_per_number(
    source: Callable[..., str], pg_store: str, column: str
) -> None:
    """A spreadsheet import keeps phones as numbers (the trunk 0 gone): each is the KR
    mobile it was, and two rows holding one number get one message."""
    values = [1012345678, 1055550001, 1012345678, 1198765432]
    run_id = _run_members(source, pg_store, column, values)
    assert sorted(r for _, r in records(pg_store, run_id)) == sorted(
        {_phonenumbers(f"0{v}") for v in values}
    )
    assert skips(pg_store, run_id) == {policies.DUPLICATE: 1}


@pytest.mark.mysql
@pytest.mark.postgres
def test_a_run_writes_nothing_to_a_number_that_is_not_valid(
    source: Callable[..., str], pg_store: str
) -> None:
    """Every only-possible number ends as an exclusion with its reason, never as a send
    record (direct SQL on the store); the valid ones are messaged."""
    phones = [*_ONLY_POSSIBLE, "010-1234-5678", "+44 20 7946 0958"]
    run_id = _run_members(source, pg_store, "VARCHAR(40)", phones)
    assert sorted(r for _, r in records(pg_store, run_id)) == ["+442079460958", "+821012345678"]
    assert skips(pg_store, run_id) == {policies.INVALID_PHONE: len(_ONLY_POSSIBLE)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00700-1-650-253-0000", "+16502530000"),
        ("002-44-20-7946-0958", "+442079460958"),
        ("001-82-10-1234-5678", "+821012345678"),
        ("+82 (0)10-1234-5678", "+821012345678"),
        ("+82-010-1234-5678", "+821012345678"),
        ("010 - 1234 - 5678", "+821012345678"),
        ("010\u20131234\u20135678", "+821012345678"),
        ("(+82)10-1234-5678", "+821012345678"),
        ("+８２ １０ １２３４ ５６７８", "+821012345678"),
        ("Tel: 010-1234-5678", "+821012345678"),
        ("010-1234-5678 / 010-1234-5678", "+821012345678"),
        ("01012345678.0", "+821012345678"),
        ("010_1234_5678", None),  # phonenumbers reads no number in it either
        ("+0821012345678", None),
    ],
)
def test_korean_dialling_spellings(text: str, expected: str | None) -> None:
    assert policies.normalize("sms", text) == expected


@pytest.mark.mysql
@pytest.mark.postgres
@pytest.mark.parametrize("ad", [True, False])
def test_consent_decides_an_advertising_run_and_not_an_informational_one(
    source: Callable[..., str], pg_store: str, ad: bool
) -> None:
    """wf18 reads the consent columns only for advertising: an advertising run still
    messages only the consenting rows; an informational one everyone with a phone."""
    from tests.test_attack_once_round2 import AD, CONSENTING

    rows = [
        (f"m{i:03d}", f"회원{i}", f"010-5555-{i:04d}", i % 2, 1, dt.datetime(2026, 3, 2, 20, 0))
        for i in range(10)
    ]
    db = source(
        "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), "
        "mobile VARCHAR(20), ad_ok TINYINT(1) NOT NULL, night_ok TINYINT(1) NOT NULL, "
        "joined DATETIME NOT NULL)",
        rows={"members": rows},
    )
    wb = workbench(db, pg_store, {"members": CONSENTING})
    try:
        if ad:
            wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
            config: dict[str, Any] = {"template": "세일"}
        else:
            config = {"content": INFO}
        wf = wb.workflows.create(
            f"c-{uuid.uuid4().hex[:6]}",
            # the run, not the target query, decides consent
            target_config={"table": "members", "exclude_opt_out": False},
            message_config=config,
        )
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    expected = {f"m{i:03d}" for i in range(10) if i % 2 or not ad}
    assert {k for k, _ in records(pg_store, run_id)} == expected
    assert skips(pg_store, run_id) == ({policies.NO_CONSENT: 5} if ad else {})


# -- a run's size counts are its records' own sizes ---------------------------------------
@pytest.mark.mysql
@pytest.mark.postgres
@pytest.mark.parametrize("batch_size", [1, 4, 5000])
def test_a_runs_size_counts_and_exclusions_are_what_its_records_hold(
    source: Callable[..., str], pg_store: str, batch_size: int
) -> None:
    """`stats["sizes"]` (count and EUC-KR bytes by the type that fits) and
    `rendered_this_pass` are what the written records hold, read back by direct SQL and
    sized by Python's own encode; an unrendered target (strict mode, no name) is excluded
    as "missing 이름", a repeated number as a duplicate. Names of 0-80 Hangul syllables
    make SMS, LMS and, in batches mixing both, more than one type in a batch."""
    rnd = random.Random(11)
    names = [None if i % 9 == 4 else "가" * rnd.randrange(0, 80) for i in range(40)]
    phones = [f"0101234{i:04d}" if i % 13 != 7 else "01012340000" for i in range(40)]
    db = source(
        "CREATE TABLE members (member_no INT PRIMARY KEY, name VARCHAR(100), mobile VARCHAR(40))",
        rows={
            "members": [(i, n, p) for i, (n, p) in enumerate(zip(names, phones, strict=True), 1)]
        },
    )
    wb = workbench(db, pg_store, {"members": {**people("number", "member_no"), "audience": True}})
    try:
        wf = wb.workflows.create(
            f"sizes-{uuid.uuid4().hex[:6]}",
            target_config={"table": "members"},
            message_config={"content": INFO, "mode": "strict", "message_type": "LMS"},
        )
        run_id = start(wb, wf)
        stats = wb.workflows.process(
            wf["id"], run_id, progress=False, now=DAY, batch_size=batch_size
        )
    finally:
        wb.close()
    contents = [
        str(c)
        for (c,) in oracle(
            pg_store, "SELECT content FROM send_records WHERE run_id = %s", (str(run_id),)
        )
    ]
    want: dict[str, dict[str, int]] = {}
    for text in contents:
        n = len(text.encode("euc-kr"))
        kind = "SMS" if n <= LIMITS["SMS"] else "LMS"
        want.setdefault(kind, {"count": 0, "bytes": 0})
        want[kind]["count"] += 1
        want[kind]["bytes"] += n
    assert len(want) == 2  # both types were written
    assert stats["sizes"] == want
    assert stats["rendered_this_pass"] == len(contents)
    excluded = skips(pg_store, run_id)
    assert excluded.get("missing 이름") == sum(n is None for n in names)
    assert sum(excluded.values()) + len(contents) == 40
