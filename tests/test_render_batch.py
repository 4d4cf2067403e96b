"""A renderer's batch form (`one.many`, `hybridwb.templating.batch`) gives, row by row,
exactly what `one` gives: the same message (text, size, type, values, warnings, skip
reason) or the same error at the same position, over generated templates, reports, rows
and limits, over the sample shop's templates and rows, and through a real run.

The oracle is `one` itself, called row by row (what a run did before the batch form).
"""

from __future__ import annotations

import datetime as dt
import functools
import random
import sqlite3
import uuid
from decimal import Decimal
from typing import Any

import pytest

from hybridwb.mapping.graph import Hop, Path
from hybridwb.templating import batch, matching, message
from hybridwb.templating.formatters import FORMATTERS
from hybridwb.templating.service import Rendered, TemplateService
from hybridwb.workflows import policies, rendering
from tests.test_campaign_cpu import _batch, _rules


class Shown:
    """A value whose `format()` is not its `str()` (a template shows `str()`)."""

    def __str__(self) -> str:
        return "shown"

    def __format__(self, spec: str) -> str:
        return "formatted"


class Boom:
    """A value that cannot be shown: `one` raises on it."""

    def __str__(self) -> str:
        raise ValueError("no text for this value")


VALUES: list[Any] = [
    "홍길동", "Kim", "", None, " ", "  padded \n", 0, 1, -7, 2**70, 1.5, 1e20, -0.0,
    float("nan"), Decimal("1.10"), Decimal("1E+3"), Decimal("12000"), Decimal("Infinity"),
    dt.date(2026, 1, 2), dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), True, False,
    b"bytes", b"\x00", "똠방각하", "😀", "e\u0301", "\x00", "a\x00b", "{0}", "{{ y }}", "}{",
    "010-1234-5678", "2026-11-25", "VIP", "가" * 45, "a" * 95, "나" * 700, "x" * 1100,
    "똠" * 30, Shown(), Boom(),
]  # fmt: skip
COMMON: list[Any] = ["홍길동", "Kim", "VIP", 12000, "010-1234-5678", "2026-11-25", "골드"]
LITERALS = [
    "님, ", " 회원 전용 혜택이 도착했습니다. 문의: 1588-0000", "a", "\n", "{% raw %}{x}}{{{% endraw %}",
    "😀", "똠", "%s", "  ", "(광고) ", "\x00",
]  # fmt: skip
TEMPLATES = [
    "#{고객명}님, {{ 등급 }} 회원 전용 혜택이 도착했습니다. 문의: 1588-0000",
    "#{고객명}님 안녕하세요. 등급: {{ 등급 }}",
    "{{ 이름 }}님, 이번 달 안내입니다.",
    "{{ x }}{{ y }}{{ x }}",
    "  {{- x -}}  \n  {{ y }} ",
    "{% raw %}{{ x }}{% endraw %}#{ y }",
    "#{a.b} #{x}",
    "변수 없음",
    "",
    "{{ x | upper }} {{ y }}",  # not pieces: `one` per row
    "{% if x %}{{ x }}{% endif %}",
]
NAMES = ["x", "y", "이름", "고객명", "등급", "a.b"]
LIMITS: list[dict[str, int] | None] = [None, {"SMS": 90, "LMS": 2000}, {"SMS": 20, "LMS": 60}]
TYPES = ["SMS", "LMS", "alimtalk", "MMS"]


def _service(limits: dict[str, int] | None) -> TemplateService:
    service = TemplateService(lambda: None, type("M", (), {"resolver": None})())  # type: ignore[arg-type,return-value]
    service.limits = limits
    return service


def _status(rnd: random.Random, name: str) -> matching.VariableStatus:
    """A variable of a report: a field, a related field, a constant, an individual
    variable with a formatter and fallback, an expression, or nothing mapped."""
    kind = rnd.choice(["field", "field", "related", "constant", "variable", "expression", "none"])
    status = rnd.choice(["mapped", "mapped", "type mismatch"])
    field = rnd.choice(["f1", "f2", "f3", name])
    fallback = rnd.choice([None, None, "고객", "", 0])
    formatter = rnd.choice([None, None, *FORMATTERS, "nope"])
    if kind == "field":
        return matching.VariableStatus(name, status, matching.Source("field", "t", field))
    if kind == "related":
        path = Path("t", (Hop("t", "r", "rid", "id", True, "rel"),), field)
        src = matching.Source("relation", "r", field, path=path)
        return matching.VariableStatus(name, status, src)
    if kind == "none":
        var = {"source_type": "field", "fallback_value": fallback} if fallback else None
        src = matching.Source("variable", variable=var) if var else None
        return matching.VariableStatus(name, rnd.choice(["missing", "fallback"]), src)
    variable: dict[str, Any] = {"formatter": formatter, "fallback_value": fallback}
    if kind == "constant":
        variable.update(source_type="constant", source=rnd.choice(VALUES))
    elif kind == "expression":
        variable.update(source_type="expression", source="f1")
    else:
        variable.update(source_type="field")
    src = matching.Source("variable", "t", field, variable=variable)
    return matching.VariableStatus(name, status, src)


def _template(rnd: random.Random) -> str:
    if rnd.random() < 0.3:
        return rnd.choice(TEMPLATES)
    parts = []
    for _ in range(rnd.randrange(0, 6)):
        if rnd.random() < 0.5:
            parts.append(rnd.choice(LITERALS))
        else:
            name = rnd.choice(NAMES)
            hashed = name == "a.b" or rnd.random() < 0.5
            parts.append(f"#{{{name}}}" if hashed else "{{ " + name + " }}")
    return "".join(parts)


def _value(rnd: random.Random, wild: float) -> Any:
    return rnd.choice(VALUES) if rnd.random() < wild else rnd.choice(COMMON)


def _rows(rnd: random.Random, n: int, wild: float) -> tuple[list[Any], list[Any]]:
    fields = ["f1", "f2", "f3", *NAMES]
    rows = [
        {f: _value(rnd, wild) for f in fields if rnd.random() < 0.9 + wild / 10} for _ in range(n)
    ]
    rels: list[Any] = []
    for _ in range(n):
        pick = rnd.random()
        if pick < 0.1 * wild * 5:
            rels.append(rnd.choice([None, {}]))
        else:
            rels.append({f"rel.{f}": _value(rnd, wild) for f in fields if rnd.random() < 0.9})
    return rows, rels


def _per_row(one: Any, rows: list[Any], rels: list[Any]) -> list[Any]:
    out: list[Any] = []
    for row, rel in zip(rows, rels, strict=True):
        try:
            out.append(one(row, rel))
        except Exception as exc:
            out.append(exc)
    return out


def _assert_same(got: list[Any], want: list[Any], case: Any) -> None:
    assert len(got) == len(want), case
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if isinstance(w, Exception):
            assert type(g) is type(w) and str(g) == str(w), (case, i)
            continue
        assert type(g) is Rendered, (case, i, g)
        assert vars(g) == vars(w), (case, i)
        assert list(g.values) == list(w.values), (case, i)  # the same order too
        assert (type(g.size), g.size == w.size) == (type(w.size), True), (case, i)
        if w.size is not None:  # a `Size`'s fields, by name
            assert g.size._asdict() == w.size._asdict(), (case, i)


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many batches fell back to `one` per row (`batch.each`)."""
    calls: list[int] = []
    real = batch.each

    def each(*args: Any) -> list[Any]:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(batch, "each", each)
    return calls


def test_the_batch_form_gives_what_one_gives_row_by_row(monkeypatch: pytest.MonkeyPatch) -> None:
    rnd = random.Random(2026)
    fell_back = _counting(monkeypatch)
    fast = planned = 0
    for case in range(1500):
        text = _template(rnd)
        names = list(dict.fromkeys([n for n in NAMES if rnd.random() < 0.7]))
        if rnd.random() < 0.05 and names:
            names.append(names[0])  # a name twice: the last one's value is shown
        report = matching.Report("t", [_status(rnd, n) for n in names])
        if rnd.random() < 0.4:  # plain fields: the run's usual report
            report = matching.Report(
                "t", [matching.VariableStatus(n, "mapped", matching.Source("field", "t", n))
                      for n in names])  # fmt: skip
        limits = rnd.choice(LIMITS)
        mode = rnd.choice(["strict", "fallback"])
        kind = rnd.choice(TYPES)
        try:
            one = _service(limits).renderer(
                text, mode=mode, message_type=kind, report=report, warn=rnd.random() < 0.1
            )
        except Exception:  # a template or report the renderer refuses: no batch either
            continue
        rows, rels = _rows(rnd, rnd.randrange(0, 40), rnd.choice([0.0, 0.05, 0.5]))
        want = _per_row(one, rows, rels)
        before = len(fell_back)
        got = one.many(rows, rels)  # type: ignore[attr-defined]
        _assert_same(got, want, (case, text, mode, kind, limits))
        if one.many.__name__ == "many":  # type: ignore[attr-defined]
            planned += 1
            fast += len(fell_back) == before
    assert planned > 400 and fast > 0.8 * planned, (planned, fast)


@pytest.mark.parametrize("mode", ["strict", "fallback"])
@pytest.mark.parametrize("limits", LIMITS, ids=["default", "2000", "tiny"])
def test_the_batch_form_of_each_kind_of_row(
    mode: str, limits: dict[str, int] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every listed value in every variable of the benchmark's template, one batch (the
    fast path is taken where no row fails), and each row alone."""
    fell_back = _counting(monkeypatch)
    report = matching.Report(
        "t",
        [
            matching.VariableStatus("고객명", "mapped", matching.Source("field", "t", "name")),
            matching.VariableStatus("등급", "mapped", matching.Source("field", "t", "grade")),
        ],
    )
    one = _service(limits).renderer(
        TEMPLATES[0], mode=mode, message_type="LMS", report=report, warn=False
    )
    rows: list[Any] = [{"name": a, "grade": b} for a in VALUES for b in VALUES[::5]]
    rows += [{}, {"name": "홍길동"}, {"grade": "VIP"}]
    rels: list[Any] = [None] * len(rows)
    fine = [r for r in rows if not isinstance(r.get("name"), Boom | type(None))]
    fine = [r for r in fine if not isinstance(r.get("grade"), Boom)]
    before = len(fell_back)
    _assert_same(one.many(fine, [None] * len(fine)), _per_row(one, fine, [None] * len(fine)), mode)  # type: ignore[attr-defined]
    assert len(fell_back) == before  # not rendered by `one` row by row
    _assert_same(one.many(rows, rels), _per_row(one, rows, rels), mode)  # type: ignore[attr-defined]
    for row in rows:
        _assert_same(one.many([row], [None]), _per_row(one, [row], [None]), (mode, row))  # type: ignore[attr-defined]


def test_sizes_of_many_texts_are_their_sizes_one_by_one() -> None:
    rnd = random.Random(5)
    alphabet = ["a", " ", "가", "힣", "똠", "😀", "\x00", "e\u0301", "\ud7a3", "ㄱ", "¡", "€"]
    for _ in range(2000):
        texts = [
            "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 60)))
            for _ in range(rnd.randrange(0, 8))
        ]
        texts += ["가" * rnd.choice([44, 45, 46, 999, 1000, 1001])] * rnd.randrange(2)
        got = batch.sizes_of(texts)
        want = [message.euc_kr_size(t) for t in texts]
        assert [s._asdict() for s in got] == [s._asdict() for s in want], texts


# -- through rendering: render_ahead and decide_and_render -----------------------------------
def _renderer(mode: str) -> Any:
    report = matching.Report(
        "t",
        [
            matching.VariableStatus("고객명", "mapped", matching.Source("field", "t", "name")),
            matching.VariableStatus("등급", "mapped", matching.Source("field", "t", "grade")),
        ],
    )
    return _service({"SMS": 90, "LMS": 60}).renderer(
        TEMPLATES[0], mode=mode, message_type="LMS", report=report, warn=False
    )


def _outcome(call: Any) -> Any:
    try:
        todo, outs = call()
    except Exception as exc:
        return ("raised", type(exc), str(exc))
    return [(c.key, r) for c, r in todo], {k: vars(v) for k, v in outs.items()}


@pytest.mark.parametrize("mode", ["strict", "fallback"])
def test_a_batch_is_decided_and_rendered_as_row_by_row(mode: str) -> None:
    """`render_ahead` and `decide_and_render` with the batch form, against the same with
    `one` called per row (a plain function, no batch form): same decisions, messages and
    errors (an error only where that message is rendered)."""
    rnd = random.Random(41)
    one = _renderer(mode)

    def plain(row: dict[str, Any], rel: Any) -> Any:
        return one(row, rel)

    def related(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{} for _ in rows]

    raised = 0
    for trial in range(600):
        candidates, seen = _batch(rnd)
        rules = _rules(rnd)
        pool = [*COMMON, None, "", "가" * 45, "😀", "a\x00b"] + [Boom()] * (trial % 5 == 0)
        rows = {c.key: {"name": rnd.choice(pool), "grade": rnd.choice(pool)} for c in candidates}
        results = []
        for render in (one, plain):
            ahead = rnd.random() < 0.7
            ready = (
                rendering.render_ahead(candidates, rows, render, related, rules.advertising)
                if ahead
                else None
            )
            decide = functools.partial(
                rendering.decide_and_render, candidates, rows, seen, rules, render, related, ready
            )
            results.append(_outcome(decide))
        assert results[0] == results[1], trial
        raised += results[0][0] == "raised"
    assert raised > 10


def test_render_ahead_keeps_each_rows_error_at_its_key() -> None:
    one = _renderer("fallback")
    rows = {f"k{i}": {"name": v, "grade": "VIP"} for i, v in enumerate(["a", Boom(), "b"])}
    candidates = [policies.Candidate(k, "+821012345678") for k in rows]
    got = rendering.render_ahead(candidates, rows, one, lambda rs: [{} for _ in rs], False)
    assert list(got) == ["k0", "k1", "k2"]
    assert isinstance(got["k1"], ValueError) and str(got["k1"]) == "no text for this value"
    assert got["k0"].text.startswith("a님") and got["k2"].text.startswith("b님")


# -- the sample shop: its templates, its rows, a real run ----------------------------------
SHOP_TEMPLATES = [
    TEMPLATES[0],
    TEMPLATES[1],
    "#{고객명}님, 이용 중인 {{ 요금제 }} 구독이 {{ 만료일 | date_ko }}에 만료됩니다. 앱에서 갱신해 주세요.",
    "(광고) 하이브리드몰\n{{ 이름 }}님, 봄 세일 20% 할인!\n무료수신거부 080-123-4567",
    "{{ 고객명 }}님, {{ 등급 }} {{ 고객명 }}",
]


@pytest.mark.parametrize("text", SHOP_TEMPLATES)
def test_the_sample_shops_templates_and_rows(shop: Any, text: str) -> None:
    rows = shop.source.records("SELECT * FROM customers ORDER BY customer_id LIMIT 3000")
    report = shop.templates.automap(text, "customers")
    related = shop.templates.related(report, rows)
    for mode in ("strict", "fallback"):
        for kind in ("SMS", "LMS"):
            one = shop.templates.renderer(
                text, table="customers", mode=mode, message_type=kind, report=report, warn=False
            )
            _assert_same(one.many(rows, related), _per_row(one, rows, related), (mode, kind))


def _contents(store_file: str, run_id: Any) -> dict[str, str]:
    with sqlite3.connect(store_file) as conn:
        got = conn.execute(
            "SELECT target_key, content FROM send_records WHERE run_id = ?",
            (uuid.UUID(str(run_id)).hex,),
        ).fetchall()
    return {str(k): str(c) for k, c in got}


def test_a_run_writes_what_rendering_row_by_row_writes(
    shop: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """Two runs of the benchmark's template (fallback, LMS) on the sample shop, one with the
    batch form and one without it; the records read with sqlite3 from the store's file."""
    from tests.test_attack_once_round2 import DAY, start

    shop.templates.create("batch", TEMPLATES[0], message_type="LMS")
    target = {
        "table": "customers",
        "where": {"field": "grade", "op": "in", "value": ["VIP", "GOLD"]},
    }
    contents = []
    batched: list[bool] = []  # per batch rendered ahead: with a batch form?
    real_ahead = rendering.render_ahead

    def render_ahead(candidates: Any, rows: Any, render: Any, *rest: Any) -> Any:
        batched.append(hasattr(render, "many"))
        return real_ahead(candidates, rows, render, *rest)

    monkeypatch.setattr(rendering, "render_ahead", render_ahead)
    real = shop.templates.renderer

    def renderer(*a: Any, **kw: Any) -> Any:  # without its batch form: `one` per row
        one = real(*a, **kw)
        return lambda row, rel=None: one(row, rel)

    for name in ("with-batch", "row-by-row"):
        if name == "row-by-row":
            monkeypatch.setattr(shop.templates, "renderer", renderer)
        wf = shop.workflows.create(
            name, target_config=target, message_config={"template": "batch", "mode": "fallback"}
        )
        run_id = start(shop, wf)
        shop.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=97)
        contents.append(_contents(shop.store.backend.url.database, run_id))
    assert len(contents[0]) > 100 and batched.count(True) == batched.count(False) > 1
    assert contents[0] == contents[1]
    with sqlite3.connect(tmp_path / ".hybridwb" / "sample.db") as oracle:  # the source itself
        shown = {
            str(k): f"{n}님, {g} 회원 전용 혜택이 도착했습니다. 문의: 1588-0000"
            for k, n, g in oracle.execute("SELECT customer_id, name, grade FROM customers")
        }
    assert contents[0] == {k: shown[k] for k in contents[0]}
