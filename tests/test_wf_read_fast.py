"""The read half of a run (freeze, candidates, rows) gives what phonenumbers and the
per-row reference give, for every spelling a source may hold.

The oracles are independent of the run's fast paths: phonenumbers through
`policies._parsed_phone` (the parse and match a phone goes through when no fast path reads
it) after `normalize`'s own preparation of the value, and a per-row reference of
`batches.candidates` written from its docstring.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from hybridwb import recipients
from hybridwb.platform.campaigns import fits_index
from hybridwb.source.source import Source
from hybridwb.workflows import audience, batches, policies, process

_FULL = str.maketrans("0123456789", "０１２３４５６７８９")
_ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def _by_phonenumbers(value: Any) -> str | None:
    """`_phonenumbers_reads(value)`, worked out once per object of `SPELLINGS`: four tests
    ask it of the same spellings (~58,000 asks, ~12,000 spellings). Keyed by identity, as
    1, 1.0 and True are one dict key; a SPELLINGS object is alive while the module is, so
    no other object can have its id. Any other value is read afresh."""
    key = id(value)
    if key not in _SPELLING_IDS:
        return _phonenumbers_reads(value)
    if key not in _READ_ONCE:
        _READ_ONCE[key] = _phonenumbers_reads(value)
    return _READ_ONCE[key]


_READ_ONCE: dict[int, str | None] = {}


def _phonenumbers_reads(value: Any) -> str | None:
    """`normalize('sms', value)` by phonenumbers alone: `normalize`'s preparation of the
    value (strip, number text, the index limit), then `_parsed_phone`, no fast path."""
    if value is None:
        return None
    if type(value) is str:
        text: str | None = value.strip()
    elif isinstance(value, float | Decimal):
        text = policies._number_text(value)
    else:
        text = str(value).strip()
    if not text or not fits_index(text):
        return None
    return policies._parsed_phone(text)


def _spellings(n: int, seed: int) -> list[Any]:
    """Phones as sources write them: KR mobile and landline numbers in every separator,
    prefix and padding, with and without their country code, too short and too long, in
    other digits, with letters; and values that are no text at all."""
    rnd = random.Random(seed)
    out: list[Any] = []
    for i in range(n):
        if i % 3 == 0:  # as the sample shop writes them (`sample.phone_for`), some padded
            sep = rnd.choice(["-", "-", "", " ", "."])
            digits = [rnd.choice("0123456789") for _ in range(8)]
            pad = rnd.choice(["", "", "", " ", "\t", "\u3000"])
            out.append(pad + "010" + sep + "".join(digits[:4]) + sep + "".join(digits[4:]) + pad)
            continue
        head = rnd.choice(["010"] * 6 + ["011", "016", "017", "018", "019", "012", "013",
                                         "02", "031", "051", "070", "050", "080", "1"])  # fmt: skip
        mid = "".join(rnd.choice("0123456789") for _ in range(rnd.choice((3, 4, 4, 4, 2, 5))))
        end = "".join(rnd.choice("0123456789") for _ in range(rnd.choice((4, 4, 4, 3, 5))))
        if rnd.random() < 0.15:  # often the numbers `policies` reads as invalid: 0105 9x
            mid = "59" + rnd.choice("6789") + rnd.choice("0123456789")
        s1, s2 = (
            rnd.choice(["", "-", "-", " ", ".", "", "  ", "/", "--"]),
            rnd.choice(["", "-", "-", " ", ".", "", ")"]),
        )
        national = head + s1 + mid + s2 + end
        nsn = (head[1:] if head.startswith("0") else head) + s1 + mid + s2 + end
        text = rnd.choice(
            [
                national, national, national, head + mid + end,
                f"({head}) {mid}-{end}", f"+82{nsn}", f"+82 {nsn}", f"+82-{nsn}",
                f"82{nsn}", f"0082{nsn}", f"0082-{nsn}", f"+82 (0){nsn}",
                national.translate(_FULL), national.translate(_ARABIC),
                national[:3] + national[3:].translate(_FULL), f"tel:{national}",
                national + " (집)", national + "a", "a" + national, national[:-1],
                national + rnd.choice("0123456789"), national.replace("0", "O", 1),
            ]
        )  # fmt: skip
        pad = ["", "", "", " ", "\t", "\n", "\u3000", "\xa0", "\u200b", "\x00"]
        out.append(rnd.choice(pad) + text + rnd.choice(pad))
    out += [
        None, "", " ", "\t\n", 1012345678, 10123456789, -1012345678, 1012345678.0, 1.5,
        float("nan"), Decimal("1012345678"), Decimal("NaN"), True, b"010-1234-5678",
        "010-1234-5678", "01012345678", "010 1234 5678", "010.1234.5678", "010-123-4567",
        "0101234567", "010-1234 5678", "+82 10-1234-5678", "+821012345678", "821012345678",
        "0082-10-1234-5678", "00821012345678", "010-5979-1234", "010-0000-0000",
        "011-123-4567", "016-1234-5678", "02-123-4567", "0212345678", "010-1234-567",
        "010-12345-678", "0101-234-5678", "010--1234-5678", "010-1234-56789",
        "０１０-１２３４-５６７８", "٠١٠١٢٣٤٥٦٧٨", "01a-1234-5678", "010-1234-5678 (집)",
        "010-1234-5678, 010-8765-4321", "kim@example.com", "1" * 600, " 010-1234-5678 ",
        "\u3000010-1234-5678\u3000", "\u2028010-1234-5678", "010-1234-5678\x1c",
    ]  # fmt: skip
    return out


SPELLINGS = _spellings(12_000, 41)
_SPELLING_IDS = frozenset(map(id, SPELLINGS))


def test_the_kr_mobile_shape_is_the_national_pattern_after_a_strip() -> None:
    """The one-regex shape (`policies.national_mobile`) reads every text as `strip` and
    `_national_mobile_nsn` read it."""
    read = policies.national_mobile()
    texts = [v for v in SPELLINGS if type(v) is str]
    assert len(texts) > 10_000
    differ = [t for t in texts if read(t) != policies._national_mobile_nsn(t.strip())]
    assert differ == []
    assert sum(read(t) is not None for t in texts) > 3_000  # the common spellings take it


def test_the_sms_normalizers_give_what_phonenumbers_gives_for_every_spelling() -> None:
    normalize, checked = policies.normalizer("sms"), batches.checked_normalizer("sms")
    expected = [_by_phonenumbers(v) for v in SPELLINGS]
    assert [v for v, e in zip(SPELLINGS, expected, strict=True) if normalize(v) != e] == []
    got = [checked(v) for v in SPELLINGS]
    assert [v for v, e, g in zip(SPELLINGS, expected, got, strict=True) if g[0] != e] == []
    # what it vouches for is valid by phonenumbers itself (`_valid_e164` parses)
    assert [r for r, ok in got if ok and not policies._valid_e164(r or "")] == []
    assert sum(ok for _, ok in got) > 3_000


def test_the_freeze_pairs_are_the_key_text_and_what_phonenumbers_gives() -> None:
    rnd = random.Random(43)
    keys: list[Any] = [0, 7, -3, 2**70, True, "a\\b", "x\x00y", b"\x00\xff", "plain", 1.5]
    aud = type("A", (), {"channel": "sms", "key": "id"})()
    for trial in range(40):
        rows = [{"id": rnd.choice(keys), "phone": rnd.choice(SPELLINGS)} for _ in range(300)]
        if trial % 5 == 0:
            rows.append({"id": 1})  # no recipient column in the row
        for column in ("phone", None):
            want = [
                (
                    audience.key_text(r["id"]),
                    None if batches.has_nul(v) else _by_phonenumbers(v),
                )
                for r in rows
                for v in (r.get(column) if column else None,)
            ]
            assert process._frozen_pairs(rows, aud, column) == want, trial


def _candidates_reference(
    batch: list[dict[str, Any]],
    rows: dict[str, dict[str, Any]],
    recipient_path: str | None,
    consent_path: str | None,
    night_path: str | None,
) -> tuple[list[tuple[Any, ...]], list[tuple[str, str]], int]:
    """`batches.candidates` for SMS, one row at a time, phones by phonenumbers: a gone row
    is a changed, absent candidate; a row with a NUL in a text is excluded as unreadable;
    a shared key is changed and excluded; a recipient other than the frozen one is changed
    and excluded; else a candidate with its consents, vouched for when valid KR mobile."""
    out: list[tuple[Any, ...]] = []
    skips: list[tuple[str, str]] = []
    changed = 0
    for t in batch:
        key, frozen = t["target_key"], t["recipient"]
        row = rows.get(key)
        if row is None:
            changed += 1
            out.append((key, _by_phonenumbers(frozen), None, None, False))
        elif any(isinstance(v, str) and "\x00" in v for v in row.values()):
            skips.append((key, policies.BAD_ROW))
        elif row is audience.SHARED:
            changed += 1
            skips.append((key, audience.KEY_NOT_UNIQUE))
        else:
            current = _by_phonenumbers(row.get(recipient_path) if recipient_path else None)
            if current != frozen and current != _by_phonenumbers(frozen):
                changed += 1
                skips.append((key, policies.RECIPIENT_CHANGED))
                continue
            consent = row.get(consent_path) if consent_path else None
            night = row.get(night_path) if night_path else None
            out.append((key, current, consent, night, True))
    return out, skips, changed


def test_candidates_are_the_per_row_reference_over_generated_batches() -> None:
    rnd = random.Random(47)
    phones = [v for v in SPELLINGS if not isinstance(v, bytes)]
    for trial in range(150):
        batch: list[dict[str, Any]] = []
        rows: dict[str, dict[str, Any]] = {}
        for i in range(rnd.randrange(1, 200)):
            key, phone = f"k{i}", rnd.choice(phones)
            frozen_from = rnd.choice([phone, phone, phone, rnd.choice(phones)])
            frozen = None if batches.has_nul(frozen_from) else _by_phonenumbers(frozen_from)
            batch.append({"seq": i, "target_key": key, "recipient": frozen})
            dice = rnd.random()
            if dice < 0.05:
                continue  # gone from the source
            if dice < 0.08:
                rows[key] = audience.SHARED
                continue
            rows[key] = {"id": i, "phone": phone, "c": rnd.choice([0, 1, None, "Y"]),
                         "n": rnd.choice([0, 1]), "name": rnd.choice(["홍길동", "a\x00b", None])}  # fmt: skip
        paths = rnd.choice([("phone", "c", "n"), ("phone", None, None), (None, "c", None)])
        got, skips, changed = batches.candidates(batch, rows, "sms", *paths)
        want = _candidates_reference(batch, rows, *paths)
        assert ([tuple(c)[:5] for c in got], skips, changed) == want, trial
        for c in got:  # vouched for: valid by phonenumbers itself
            assert not c.checked or policies._valid_e164(c.recipient or ""), trial


class _Rows(Source):
    """A `Source` whose statement gives fixed columns and rows (`records` turns them into
    dicts; nothing else of the source is used)."""

    def __init__(self, keys: list[str], rows: list[Any]) -> None:
        self.fixed = keys, rows

    def _run(self, *args: Any, **kwargs: Any) -> Any:
        return (*self.fixed, None, None)


@pytest.mark.parametrize(
    ("keys", "rows"),
    [
        pytest.param(["a", "b"], [(1, "x"), (2, None), [3, "z"]], id="tuples-and-lists"),
        pytest.param(["a"], [], id="no-rows"),
        pytest.param([], [(), ()], id="no-columns"),
        pytest.param(["a", "a"], [(1, 2)], id="a-repeated-name-keeps-the-last"),
    ],
)
def test_records_are_one_dict_per_row_in_column_order(keys: list[str], rows: list[Any]) -> None:
    got = _Rows(keys, rows).records("SELECT 1")
    assert got == [{k: v for k, v in zip(keys, row, strict=True)} for row in rows]
    assert all(list(d) == list(dict.fromkeys(keys)) for d in got)


@pytest.mark.parametrize("rows", [[(1, 2), (3,)], [(1,), (2, 3)], [(1, 2, 3)]], ids=str)
def test_records_refuse_a_row_that_does_not_fit_the_columns(rows: list[Any]) -> None:
    with pytest.raises(ValueError, match="zip"):
        _Rows(["a", "b"], rows).records("SELECT 1")


def test_the_national_mobile_check_is_the_kr_mobile_check_for_9_and_10_digits() -> None:
    rnd = random.Random(53)
    digits = ["1" + "".join(rnd.choice("0123456789") for _ in range(rnd.choice((8, 9))))
              for _ in range(30_000)]  # fmt: skip
    digits += ["10" + f"{n:08d}" for n in range(0, 10**8, 9_973)]
    fast, slow = policies._national_mobile_check(), policies._kr_mobile_check()
    assert [d for d in digits if bool(fast(d)) != slow(d)] == []
    assert sum(map(slow, digits)) > 10_000


@pytest.mark.parametrize(
    ("general_lengths", "mobile_lengths", "direct"),
    [
        pytest.param(frozenset({9, 10, 11}), frozenset({9, 10}), True, id="both-allowed"),
        pytest.param(frozenset(), frozenset(), True, id="any-length"),
        pytest.param(frozenset({10}), frozenset({9, 10}), False, id="9-not-allowed"),
        pytest.param(frozenset({9, 10}), frozenset({9}), False, id="10-not-allowed"),
    ],
)
def test_the_national_mobile_check_checks_lengths_the_metadata_does_not_allow(
    monkeypatch: pytest.MonkeyPatch,
    general_lengths: frozenset[int],
    mobile_lengths: frozenset[int],
    direct: bool,
) -> None:
    """Made-up metadata whose patterns take any digits: only the lengths decide."""
    import re

    anything = re.compile(r"\d+")
    made_up = (anything, general_lengths, anything, mobile_lengths)
    monkeypatch.setattr(recipients, "_kr_mobile", lambda: made_up)
    policies._national_mobile_check.cache_clear()
    policies._kr_mobile_check.cache_clear()
    try:
        fast = policies._national_mobile_check()
        allowed = (
            general_lengths & mobile_lengths
            if general_lengths and mobile_lengths
            else (general_lengths or mobile_lengths or None)
        )
        for d in ("101234567", "1012345678"):
            assert bool(fast(d)) == (allowed is None or len(d) in allowed), d
        assert (fast is not policies._kr_mobile_check()) == direct
    finally:
        policies._national_mobile_check.cache_clear()
        policies._kr_mobile_check.cache_clear()


def test_the_remembered_parses_are_of_short_stripped_texts_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What `_parsed_national_mobile` remembers is bounded: 16,384 texts of at most 13
    characters (a stripped national spelling), however much padding a source adds."""
    asked: list[str] = []
    assert policies._parsed_national_mobile.cache_info().maxsize == 16_384

    def recorded(text: str) -> str | None:
        asked.append(text)
        return policies._parsed_phone(text)

    monkeypatch.setattr(recipients, "_parsed_national_mobile", recorded)
    normalize, checked = policies.normalizer("sms"), batches.checked_normalizer("sms")
    texts = [v for v in SPELLINGS if type(v) is str]
    texts += [" " * 50 + "010-5979-1234" + "\t" * 50, "\u3000010 5980 1234\n"]
    for text in texts:
        normalize(text)
        checked(text)
    assert len(asked) > 100  # the numbers phonenumbers reads (010-597N… and others)
    assert [t for t in asked if t != t.strip() or len(t) > 13] == []
