"""The per-message fast paths of a run give what the per-row code they stand in for gives.

A run normalizes, decides and renders every target; each of those has a path that does
the per-row work once per run (`policies.normalizer`, `service.value_resolver`, the
renderer's joined pieces, `decide` reading its rules once, one decision pass per batch).
Each is checked here against the slower code on many generated inputs.
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
import random
import weakref
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from hybridwb.mapping.graph import Hop, Path
from hybridwb.targets.consent import consent_of
from hybridwb.templating import matching, parse
from hybridwb.templating.service import TemplateService, resolve_values, value_resolver
from hybridwb.workflows import audience, batches, heap, policies, process, rendering
from hybridwb.workflows.config import FrequencyCap, SendPolicy

NOW = dt.datetime(2026, 3, 2, 3, 0, tzinfo=dt.UTC)  # 12:00 in Seoul
NIGHT = dt.datetime(2026, 3, 2, 14, 0, tzinfo=dt.UTC)  # 23:00 in Seoul


# -- recipients: the normalizer is normalize ------------------------------------------------
@functools.cache  # the same values for each channel's case: generated once (a tuple, read-only)
def _recipients(n: int, seed: int) -> tuple[Any, ...]:
    rnd = random.Random(seed)
    out: list[Any] = []
    for _ in range(n):
        head = "01" + str(rnd.randrange(10))
        mid = "".join(rnd.choice("0123456789") for _ in range(rnd.choice((3, 4))))
        end = "".join(rnd.choice("0123456789") for _ in range(rnd.choice((3, 4, 4, 4))))
        sep = rnd.choice(["", "-", " ", ".", "", "-"])
        text = head + sep + mid + sep + end
        out.append(rnd.choice(["", " ", "\t"]) + text + rnd.choice(["", " ", "\n"]))
    alphabet = "0123456789" * 3 + "-. +()/a０"
    out += [
        "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(8, 16))) for _ in range(n // 4)
    ]
    out += [
        None, "", "   ", 1012345678, 1012345678.0, 1.5, float("nan"), Decimal("1012345678"),
        Decimal("NaN"), True, b"010-1234-5678", "+821012345678", "0082-10-1234-5678",
        "010-1234-5678 (집)", "010-1234-5678, 010-8765-4321", "０１０-１２３４-５６７８",
        "010-0000-0000", "011-123-4567", "02-123-4567", "+44 20 7946 0958", "kim@example.com",
        "김철수 <Kim@Example.com>", "a@b, c@d", "01474341582", "010-1234",
    ]  # fmt: skip
    return tuple(out)


@pytest.mark.parametrize("channel", ["sms", "email", "kakao"])
def test_the_normalizer_gives_what_normalize_gives(channel: str) -> None:
    values = _recipients(20_000, 11)
    one = policies.normalizer(channel)
    differ = [v for v in values if one(v) != policies.normalize(channel, v)]
    assert differ == []


@pytest.mark.parametrize("channel", ["sms", "email", "kakao"])
def test_the_checked_normalizer_is_the_normalizer_and_checks_only_deliverable_phones(
    channel: str,
) -> None:
    values = _recipients(20_000, 12)
    read = batches.checked_normalizer(channel)
    got = {i: read(v) for i, v in enumerate(values)}
    assert [i for i, v in enumerate(values) if got[i][0] != policies.normalize(channel, v)] == []
    # what it vouches for, `deliverable` accepts: `decide` skips that check for these
    assert [r for r, checked in got.values() if checked and not policies.deliverable(r or "")] == []
    if channel == "sms":  # the fast path vouches for the common spellings
        assert sum(checked for _, checked in got.values()) > 5000


def test_frozen_pairs_are_the_key_text_and_the_normalized_recipient() -> None:
    rnd = random.Random(31)
    keys: list[Any] = [0, 7, -3, 2**70, True, "a\\b", "x\x00y", b"\x00\xff", "plain",
                       Decimal("12"), 1.5, dt.date(2026, 1, 2)]  # fmt: skip
    phones = [*_recipients(2000, 13), "010-1234-5678\x00", "\x00", 5, None]
    aud = type("A", (), {"channel": "sms", "key": "id"})()
    for trial in range(50):
        rows = [{"id": rnd.choice(keys), "phone": rnd.choice(phones)} for _ in range(200)]
        for column in ("phone", None):
            slow = [
                (audience.key_text(r["id"]), None if batches.has_nul(v) else policies.normalize("sms", v))
                for r in rows
                for v in (r.get(column) if column else None,)
            ]  # fmt: skip
            assert process._frozen_pairs(rows, aud, column) == slow, trial


def test_rows_by_key_text_are_keyed_by_key_text() -> None:
    rnd = random.Random(37)
    keys: list[Any] = [0, 7, -3, 2**70, True, False, "a\\b", "x\x00y", b"\x00\xff", "7",
                       Decimal("12"), 1.5, "True", "-3"]  # fmt: skip
    for trial in range(200):
        rows = [{"id": rnd.choice(keys), "v": i} for i in range(rnd.randrange(0, 30))]
        keep = {audience.key_text(k) for k in rnd.sample(keys, 5)}
        kept = [(k, r) for r in rows if (k := audience.key_text(r["id"])) in keep]
        held = Counter(k for k, _ in kept)  # a key two rows hold is neither's: SHARED
        slow = {k: audience.SHARED if held[k] > 1 else r for k, r in kept}
        got = audience.by_key_text(rows, "id", keep)
        assert got == slow, trial
        assert all((got[k] is audience.SHARED) == (held[k] > 1) for k in got), trial


# -- values: a planned report resolves like resolve_values ----------------------------------
def _report() -> matching.Report:
    hop = Hop("customers", "subscriptions", "customer_id", "customer_id", False, "subscriptions")
    rel = Path("customers", (hop,), "ends_at", "date")
    field = matching.Source("field", "customers", "name", field_type="string")
    variables = [
        matching.VariableStatus("이름", "mapped", field),
        matching.VariableStatus("등급", "type mismatch", matching.Source("field", "customers", "grade")),
        matching.VariableStatus("만료일", "mapped", matching.Source("relation", "subscriptions", "ends_at", path=rel)),
        matching.VariableStatus("상수", "mapped", matching.Source("variable", variable={"source_type": "constant", "source": "고정"})),
        matching.VariableStatus("빈상수", "mapped", matching.Source("variable", variable={"source_type": "constant", "source": "", "fallback_value": "대체"})),
        matching.VariableStatus("연", "mapped", matching.Source("variable", variable={"source_type": "expression", "source": "n * 12"})),
        matching.VariableStatus("요금", "mapped", matching.Source("variable", "customers", "fee", {"source_type": "field", "source": "customers.fee", "formatter": "won"}, "number", Path("customers", (), "fee", "number"))),
        matching.VariableStatus("날짜", "mapped", matching.Source("variable", "customers", "joined", {"source_type": "field", "source": "customers.joined", "formatter": "date_ko", "default_value": "미정"}, "date", Path("customers", (), "joined", "date"))),
        matching.VariableStatus("없는포맷", "mapped", matching.Source("variable", "customers", "name", {"source_type": "field", "formatter": "nope"}, "string", Path("customers", (), "name"))),
        matching.VariableStatus("님", "mapped", matching.Source("variable", "customers", "name", {"source_type": "field", "formatter": "honorific"}, "string", Path("customers", (), "name"))),
        matching.VariableStatus("빈변수", "mapped", matching.Source("variable", variable={})),
        matching.VariableStatus("없음", "missing"),
        matching.VariableStatus("둘", "ambiguous", candidates=["a", "b"]),
        matching.VariableStatus("대체", "fallback", matching.Source("variable", variable={"source_type": "field", "source": "x.y", "fallback_value": "기본"})),
        matching.VariableStatus("경로없음", "mapped", matching.Source("field", "customers")),
    ]  # fmt: skip
    return matching.Report("customers", variables)


def test_a_planned_report_resolves_every_row_like_resolve_values() -> None:
    rnd = random.Random(5)
    pool: list[Any] = [None, "", "홍길동", 0, 12000, Decimal("1.50"), "12,000", dt.date(2026, 1, 2),
                       "2026-01-02 03:04:05", "x", False, 0.0]  # fmt: skip
    report = _report()
    resolve = value_resolver(report)
    for trial in range(3000):
        row = {c: rnd.choice(pool) for c in ("name", "grade", "fee", "joined")}
        if rnd.random() < 0.2:
            del row[rnd.choice(list(row))]
        row["n"] = rnd.choice([0, 1, 2.5, Decimal("1.5")])  # what the expression reads
        related = rnd.choice([None, {}, {"subscriptions.ends_at": rnd.choice(pool)}])
        assert resolve(row, related) == resolve_values(report, row, related), trial


def test_a_report_that_cannot_be_planned_fails_like_resolve_values() -> None:
    status = matching.VariableStatus(
        "x", "mapped", matching.Source("variable", variable={"source_type": "field", "formatter": ["won"]})
    )  # fmt: skip
    report = matching.Report("customers", [status])
    resolve = value_resolver(report)  # planning it fails: every row is resolved the slow way
    with pytest.raises(TypeError) as slow:
        resolve_values(report, {"x": 1})
    with pytest.raises(TypeError) as fast:
        resolve({"x": 1})
    assert str(fast.value) == str(slow.value)


# -- the renderer: joined pieces are what the sandbox renders -------------------------------
TEMPLATES = [
    "{{ 이름 }}님, 안내입니다.",
    "#{이름}님, {{ x }} 회원 전용 혜택이 도착했습니다. 문의: 1588-0000",
    "a {{ x }} b {{y}}",
    "{{x}}\n\n",
    "  {{- x -}}  \n  {{ y }} ",
    "{{ x }}{{ y }}{{ x }}",
    "{% raw %}{{ x }}{% endraw %}#{ y }",
    "<b>{{ x }}</b> &amp; {{ y }}",
    "line1\r\n{{ x }}\r\n",
    "변수 없음",
    "",
    "{{ x | upper }} {{ y }}",  # not pieces: the sandbox renders it
]
VALUES: list[Any] = [
    "<script>&'\"", "{{ y }}", "{% if 1 %}z{% endif %}", 1, 1.0, 1e20, -0.0, Decimal("1.10"),
    Decimal("1E+3"), dt.date(2026, 1, 2), dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), True,
    "", None, "똠방각하 😀 e\u0301", "\x00", "  padded \n", 0,
]  # fmt: skip


def _service(limits: dict[str, int] | None = None) -> TemplateService:
    service = TemplateService(lambda: None, type("M", (), {"resolver": None})())  # type: ignore[arg-type,return-value]
    service.limits = limits
    return service


def _fields(*names: str) -> matching.Report:
    return matching.Report(
        "t",
        [matching.VariableStatus(n, "mapped", matching.Source("field", "t", n)) for n in names],
    )


@pytest.mark.parametrize("text", TEMPLATES)
@pytest.mark.parametrize(
    ("names", "mode"),
    [(("이름", "x", "y"), "fallback"), (("이름", "x", "y"), "strict"), (("x", "y"), "fallback")],
    ids=["all-fallback", "all-strict", "a-name-unmapped"],
)
def test_the_renderer_gives_what_the_sandbox_renders(
    text: str, names: tuple[str, ...], mode: str
) -> None:
    service = _service({"SMS": 90, "LMS": 100_000})
    one = service.renderer(text, mode=mode, message_type="LMS", report=_fields(*names))
    for x in VALUES:
        for y in VALUES[::3]:
            row = {"이름": y, "x": x, "y": y}
            try:
                out = one(row, None)
            except parse.TemplateError:  # a name the report does not fill: so does Jinja
                with pytest.raises(parse.TemplateError):
                    parse.render(text, {n: row[n] for n in names})
                continue
            if out.skipped is not None:
                assert mode == "strict" and out.skipped.startswith("missing")
                continue
            assert out.text == parse.render(text, out.values), (x, y)


def test_a_joined_message_too_long_is_refused_like_the_sandbox() -> None:
    service = _service({"SMS": 90, "LMS": 120})
    one = service.renderer(
        "{{ x }}#{y}", mode="fallback", message_type="LMS", report=_fields("x", "y")
    )
    for n in range(110, 131):
        out = one({"x": "a" * (n - 1), "y": "b"}, None)
        try:
            parse.render("{{ x }}#{y}", out.values, max_chars=120)
        except parse.TemplateError as exc:
            assert getattr(exc, "too_long", False)
            assert out.text is None and out.skipped == "too long", n
        else:
            assert out.text == "a" * (n - 1) + "b" and out.skipped is None, n


# -- decisions: rules read once, one pass when everything renders ---------------------------
def _decide_reference(
    candidates: list[policies.Candidate], seen: policies.Seen, rules: policies.Rules
) -> list[str | None]:
    """`decide` as it read the rules per candidate (the oracle)."""
    policy = rules.policy
    cap = policy.frequency_cap
    in_run, in_window = set(seen.in_run), Counter(seen.in_window)
    night = rules.advertising and policies.is_night(policies.as_utc(rules.now))
    out: list[str | None] = []
    for c in candidates:
        reason: str | None = None
        if not c.present:
            reason = policies.GONE
        elif not c.recipient:
            reason = policies.NO_RECIPIENT
        elif not policies.deliverable(c.recipient):
            reason = policies.INVALID_PHONE
        elif rules.advertising and (said := consent_of(c.consent)) is not True:
            reason = policies.NO_CONSENT if said is False else policies.UNCLEAR_CONSENT
        elif night and (said := consent_of(c.night_consent)) is not True:
            if rules.quiet_hours == "wait":
                reason = policies.WAIT
            else:
                reason = policies.QUIET if said is False else policies.UNCLEAR_NIGHT_CONSENT
        elif policy.once_per_recipient and c.recipient in seen.earlier:
            reason = policies.ONCE
        elif c.recipient in seen.cooling:
            reason = policies.COOLDOWN
        elif c.recipient in in_run:
            reason = policies.DUPLICATE
        elif cap is not None and in_window[c.recipient] >= cap.messages:
            reason = policies.CAP
        if reason is None:
            in_run.add(c.recipient or "")
            in_window[c.recipient or ""] += 1
        out.append(reason)
    return out


def _batch(rnd: random.Random) -> tuple[list[policies.Candidate], policies.Seen]:
    people = [f"+8210{i:08d}" for i in range(12)]
    people += ["+82101234", "+447700900000", "+442079460958", "kim@example.com"]
    flags: list[Any] = [None, 0, 1, "Y", "n", True, b"\x01", "maybe", 0.5]
    candidates = [
        policies.Candidate(
            f"k{i}",
            rnd.choice([*people, None, ""]),
            rnd.choice(flags),
            rnd.choice(flags),
            present=rnd.random() > 0.05,
        )
        for i in range(rnd.randrange(0, 40))
    ]
    seen = policies.Seen(
        set(rnd.sample(people, 3)),
        set(rnd.sample(people, 2)),
        set(rnd.sample(people, 2)),
        Counter({p: rnd.randrange(4) for p in rnd.sample(people, 6)}),
    )
    return candidates, seen


def _rules(rnd: random.Random) -> policies.Rules:
    cap = rnd.choice([None, FrequencyCap(messages=1, days=7), FrequencyCap(messages=3, days=7)])
    policy = SendPolicy(
        once_per_recipient=rnd.random() < 0.5,
        cooldown_days=rnd.choice([None, 3]),
        frequency_cap=cap,
    )
    return policies.Rules(
        "wf", "run", rnd.choice([NOW, NIGHT]), policy, rnd.random() < 0.5,
        rnd.choice(["wait", "exclude"]),
    )  # fmt: skip


def test_decisions_are_the_per_candidate_reference() -> None:
    rnd = random.Random(17)
    for trial in range(3000):
        candidates, seen = _batch(rnd)
        rules = _rules(rnd)
        assert policies.decide(candidates, seen, rules) == _decide_reference(
            candidates, seen, rules
        ), trial


class _Out:
    def __init__(self, text: str | None, skipped: str | None) -> None:
        self.text, self.skipped = text, skipped


def _decide_and_render_reference(
    candidates: list[policies.Candidate],
    seen: policies.Seen,
    rules: policies.Rules,
    fails: set[str],
) -> list[tuple[str, str | None]]:
    """Decided again until a pass renders nothing new (the oracle of the early stop)."""
    failed: dict[str, str] = {}
    done: set[str] = set()
    while True:
        live = [c for c in candidates if c.key not in failed]
        decisions = _decide_reference(live, seen, rules)
        new = [c for c, r in zip(live, decisions, strict=True) if r is None and c.key not in done]
        if not new:
            break
        for c in new:
            if c.key in fails:
                failed[c.key] = "missing 이름"
            else:
                done.add(c.key)
    reasons = dict(zip((c.key for c in live), decisions, strict=True))
    return [(c.key, reasons[c.key] if c.key in reasons else failed[c.key]) for c in candidates]


def test_a_batch_is_decided_again_only_after_a_render_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rnd = random.Random(23)
    decide = policies.decide
    passes: list[int] = []
    monkeypatch.setattr(
        policies, "decide", lambda *a: (passes.append(1), decide(*a))[1]
    )  # counts the passes
    for trial in range(2000):
        candidates, seen = _batch(rnd)
        rules = _rules(rnd)
        fails = {c.key for c in candidates if rnd.random() < 0.15} if trial % 2 else set()
        rows = {c.key: {"key": c.key} for c in candidates}

        def render(row: dict[str, Any], related: Any, fails: set[str] = fails) -> _Out:
            if row["key"] in fails:
                return _Out(None, "missing 이름")
            return _Out("text", None)

        passes.clear()
        todo, outs = rendering.decide_and_render(
            candidates, rows, seen, rules, render, lambda rs: [{} for _ in rs]
        )
        got = [(c.key, reason) for c, reason in todo]
        assert got == _decide_and_render_reference(candidates, seen, rules, fails), trial
        assert set(outs) == {k for k, r in got if r is None}, trial
        if not fails:  # everything rendered: one pass
            assert len(passes) == 1, trial


def test_candidates_read_from_the_source_are_decided_like_the_reference() -> None:
    """`batches.candidates` marks the recipients its normalizer vouches for, and `decide`
    skips the deliverable check for those only: the decisions are the reference's, which
    checks every recipient (`010-1234` and the other possible-only numbers too)."""
    rnd = random.Random(29)
    raw = [v for v in _recipients(3000, 14) if policies.normalize("sms", v)]
    for trial in range(300):
        batch, rows = [], {}
        for i in range(rnd.randrange(1, 60)):
            phone = rnd.choice(raw)
            frozen = policies.normalize("sms", rnd.choice([phone, phone, phone, rnd.choice(raw)]))
            batch.append({"target_key": f"k{i}", "recipient": frozen})
            if rnd.random() > 0.05:
                rows[f"k{i}"] = {"phone": phone, "c": rnd.choice([0, 1]), "n": rnd.choice([0, 1])}
        paths = rnd.choice([("c", "n"), (None, None)])
        candidates, _, _ = batches.candidates(batch, rows, "sms", "phone", *paths)
        assert [c.consent for c in candidates if c.present] == [
            rows[c.key].get(paths[0]) if paths[0] else None for c in candidates if c.present
        ], trial
        seen = policies.Seen()
        rules = _rules(rnd)
        assert policies.decide(candidates, seen, rules) == _decide_reference(
            candidates, seen, rules
        ), trial


# -- the cyclic collector during a run ---------------------------------------------------
def test_a_run_raises_the_first_gc_threshold_and_restores_it_however_it_ends() -> None:
    before = gc.get_threshold()
    with heap.frozen_heap():
        assert gc.get_threshold()[0] >= heap.RUN_GC_THRESHOLD
        assert gc.get_threshold()[1:] == before[1:]
        with heap.frozen_heap():  # a second run in the same process
            pass
        assert gc.get_threshold()[0] >= heap.RUN_GC_THRESHOLD  # the first still runs
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError), heap.frozen_heap():
        raise RuntimeError("the run failed")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_cyclic_garbage_made_during_a_run_is_still_collected() -> None:
    """Fewer collections, not none: reference cycles a run leaves behind (each a few
    objects) are freed by the collector running on its own, without `gc.collect()`."""

    class Node:
        pass

    refs: list[weakref.ref[Node]] = []
    with heap.frozen_heap():
        for _ in range(4 * heap.RUN_GC_THRESHOLD):
            a, b = Node(), Node()
            a.other, b.other = b, a  # type: ignore[attr-defined]
            refs.append(weakref.ref(a))
        alive = sum(r() is not None for r in refs)
    assert alive < len(refs) // 2
