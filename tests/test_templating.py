"""Templates: both syntaxes, the sandbox, matching, formatters, sizes, rendering."""

from __future__ import annotations

import datetime as dt

import pytest

from hybridwb.errors import TemplateError, ValidationError
from hybridwb.templating import euc_kr_size, names, render, variables
from hybridwb.templating.formatters import date_iso, date_ko, honorific, phone_mask, truncate, won
from hybridwb.templating.message import type_warnings


def test_hash_and_jinja_variables_in_one_template() -> None:
    text = "#{고객명}님,\n구독이 {{ 만료일 | date_ko }}에 만료됩니다. {{ customer.phone }}"
    uses = variables(text)
    assert [(u.name, u.syntax, u.line) for u in uses] == [
        ("고객명", "hash", 1),
        ("만료일", "jinja", 2),
        ("customer.phone", "jinja", 2),
    ]
    assert uses[0].column == 1
    assert uses[1].filters == ("date_ko",)
    assert names("#{a} {{ a }} {{ b }}") == ["a", "b"]


def test_loop_variables_are_not_template_variables() -> None:
    assert names("{% for x in items %}{{ x }}{% endfor %}{% set y = 1 %}{{ y }}") == ["items"]


@pytest.mark.parametrize(
    "text",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ x.__dict__ }}",
        "{{ x['__class__'] }}",
        "{{ joiner.__init__ }}",
        "{{ lipsum.__globals__ }}",
    ],
    ids=["mro", "cycler-globals", "dict", "subscript", "joiner", "lipsum"],
)
def test_sandbox_escapes_are_refused(text: str) -> None:
    with pytest.raises(TemplateError):
        render(text, {"x": "a"})


def test_globals_are_gone_at_render_time() -> None:
    with pytest.raises(TemplateError, match="not given"):
        render("{{ range(10) }}", {})


@pytest.mark.parametrize(
    ("text", "line"),
    [("안녕 {{ 고객명 ", 1), ("첫 줄\n{% if x %}열린 채로", 2), ("{{ }}", 1), ("{% endfor %}", 1)],
    ids=["unclosed", "unclosed-block", "empty", "stray-end"],
)
def test_unparseable_template_names_line_and_column(text: str, line: int) -> None:
    with pytest.raises(TemplateError, match=f"line {line}, column") as info:
        variables(text)
    assert info.value.line == line
    assert "\n" not in str(info.value)


def test_render_both_syntaxes() -> None:
    out = render(
        "#{고객명}님 {% if vip %}VIP {% endif %}{{ 금액 | won }}",
        {"고객명": "홍길동", "vip": True, "금액": 12000},
    )
    assert out == "홍길동님 VIP 12,000원"


@pytest.mark.parametrize(
    ("fn", "value", "expected"),
    [
        (phone_mask, "010-1234-5678", "010-****-5678"),
        (phone_mask, "01012345678", "010-****-5678"),
        (phone_mask, "0212345678", "02-****-5678"),
        (phone_mask, "02-123-4567", "02-***-4567"),
        (phone_mask, "0311234567", "031-***-4567"),
        (phone_mask, "+82 10-1234-5678", "010-****-5678"),
        (phone_mask, "12345", "***"),
        (phone_mask, "not a phone", "***"),
        (phone_mask, None, ""),
        (phone_mask, "", ""),
        (won, 12000, "12,000원"),
        (won, 0, "0원"),
        (won, "1,500", "1,500원"),
        (won, 12.5, "12.50원"),
        (won, None, ""),
        (won, "abc", "abc"),
        (date_ko, dt.date(2026, 11, 25), "2026년 11월 25일"),
        (date_ko, "2026-11-25 09:30:00", "2026년 11월 25일"),
        (date_ko, None, ""),
        (date_ko, "soon", "soon"),
        (date_iso, dt.datetime(2026, 1, 2, 3, 4), "2026-01-02"),
        (honorific, "홍길동", "홍길동님"),
        (honorific, "홍길동님", "홍길동님"),
        (honorific, "", "고객님"),
        (honorific, None, "고객님"),
        (truncate, "가나다라마바사", "가나다라…"),
        (truncate, None, ""),
        (truncate, 0, "0"),
    ],
    ids=lambda v: repr(v)[:20] if not callable(v) else v.__name__,
)
def test_formatters_on_edge_values(fn, value, expected) -> None:  # type: ignore[no-untyped-def]
    args = (value, 5) if fn is truncate else (value,)
    assert fn(*args) == expected


@pytest.mark.parametrize(
    "text",
    ["안녕하세요", "abc 123", "홍길동님, 구독이 2026년 11월 25일에 만료됩니다.", "", "€ 가"],
    ids=["korean", "ascii", "sentence", "empty", "euro"],
)
def test_byte_count_matches_pythons_euc_kr(text: str) -> None:
    assert euc_kr_size(text).bytes == len(text.encode("euc-kr"))
    assert euc_kr_size(text).chars == len(text)


def test_characters_outside_euc_kr_are_reported() -> None:
    size = euc_kr_size("안녕 😀 똠")
    assert size.unencodable == ["😀", "똠"]
    assert size.bytes == len("안녕  ".encode("euc-kr")) + 2 + len("똠".encode("euc-kr"))


def test_message_type_fits_and_warns() -> None:
    short, long = euc_kr_size("가" * 45), euc_kr_size("가" * 46)
    assert short.fits == "SMS" and short.bytes == 90
    assert long.fits == "LMS"
    assert type_warnings(long, "SMS") and "over the SMS limit" in type_warnings(long, "SMS")[0]
    assert type_warnings(euc_kr_size("가" * 1001), "LMS")[0].startswith("2002 bytes")


# -- with the store and the mappings -----------------------------------------------------
TEMPLATE = "#{고객명}님, 구독이 {{ 만료일 | date_ko }}에 만료됩니다. 등급: {{ customer.grade }}"


def test_automap_by_display_name_field_and_relation(shop) -> None:  # type: ignore[no-untyped-def]
    report = shop.templates.automap(TEMPLATE)
    got = {v.name: (v.status, v.source.describe()) for v in report.variables}
    assert got["고객명"] == ("mapped", "customers.name")
    assert got["만료일"] == ("mapped", "subscriptions.ends_at")
    assert got["customer.grade"] == ("mapped", "customers.grade")
    assert report.completeness == 100


def test_missing_and_ambiguous_are_reported_not_guessed(shop) -> None:  # type: ignore[no-untyped-def]
    report = shop.templates.automap("#{별명} #{상태}")
    assert (
        report.get("별명").status == "missing"
        and "individual variable" in report.get("별명").warning
    )
    main_first = report.get("상태")  # customers.status; subscriptions calls its own 구독 상태
    assert (main_first.status, main_first.source.describe()) == ("mapped", "customers.status")
    report = shop.templates.automap("#{customer_id}")
    assert report.get("customer_id").status == "mapped"  # the main table wins before relations
    assert report.completeness == 100


def test_relation_ambiguity_is_reported(shop) -> None:  # type: ignore[no-untyped-def]
    report = shop.templates.automap("#{subscription_id}")  # in payments and subscriptions
    status = report.get("subscription_id")
    assert status.status == "ambiguous"
    assert len(status.candidates) == 2


def test_individual_variable_wins_and_formats(shop) -> None:  # type: ignore[no-untyped-def]
    shop.variables.create(
        name="만료일", source_type="field", source="subscriptions.ends_at", formatter="date_ko"
    )
    shop.variables.create(name="회사명", source_type="constant", source="하이브리드")
    shop.variables.create(name="연간요금", source_type="expression", source="monthly_fee * 12")
    report = shop.templates.automap("#{만료일} #{회사명}")
    assert report.get("만료일").source.kind == "variable"
    row = shop.sql("SELECT * FROM customers WHERE customer_id = 1").to_dict("records")[0]
    related = shop.templates.related(report, [row])[0]
    out = shop.templates.render("#{고객명}님 #{만료일}까지, #{회사명}", row, related=related)
    assert out.skipped is None
    assert "년" in out.text and "하이브리드" in out.text


def test_type_mismatch_is_reported(shop) -> None:  # type: ignore[no-untyped-def]
    report = shop.templates.automap("{{ 고객명 | won }}")
    assert report.get("고객명").status == "type mismatch"
    assert "won needs number" in report.get("고객명").warning


def test_strict_mode_skips_and_fallback_mode_fills(shop) -> None:  # type: ignore[no-untyped-def]
    row = {"customer_id": 9, "name": None, "grade": "VIP"}
    strict = shop.templates.render("#{고객명}님 안녕하세요", row, mode="strict")
    assert strict.text is None and strict.skipped == "missing 고객명"
    loose = shop.templates.render("#{고객명}님 안녕하세요", row, mode="fallback")
    assert loose.text == "님 안녕하세요" and any("No value" in w for w in loose.warnings)
    shop.variables.create(
        name="고객명", source_type="field", source="customers.name", fallback_value="고객"
    )
    assert (
        shop.templates.render("#{고객명}님 안녕하세요", row, mode="strict").text
        == "고객님 안녕하세요"
    )
    with pytest.raises(ValidationError, match="mode must be"):
        shop.templates.render("x", row, mode="loose")


def test_render_reports_size_and_type_warning(shop) -> None:  # type: ignore[no-untyped-def]
    row = {"name": "홍길동"}
    out = shop.templates.render("#{고객명}님 " + "가" * 60, row, message_type="SMS")
    assert out.size.fits == "LMS" and any("over the SMS limit" in w for w in out.warnings)


def test_template_library_crud_extracts_variables(shop) -> None:  # type: ignore[no-untyped-def]
    created = shop.templates.create(
        "만료 안내", "#{고객명}님 {{ 만료일 }}", message_type="alimtalk", category="renewal"
    )
    assert created["variables"] == ["고객명", "만료일"]
    updated = shop.templates.update("만료 안내", content="#{고객명}님")
    assert updated["variables"] == ["고객명"]
    with pytest.raises(TemplateError):
        shop.templates.create("깨진 템플릿", "{{ 고객명 ")
    assert [t["name"] for t in shop.templates.list()].count("깨진 템플릿") == 0
    shop.templates.delete("만료 안내")


def test_variable_preview_widget_driven_in_python(shop) -> None:  # type: ignore[no-untyped-def]
    from hybridwb.widgets import preview

    widget = preview("#{고객명}님, #{별명} 안녕하세요", shop)
    assert "50%" in widget.completeness.value and "missing" in widget.mapping.value
    assert widget.assign_variable.options == ("별명",)
    widget.assign_variable.value = "별명"  # assign a field to the missing variable
    widget.assign_field.value = "customers.city"
    widget.assign_button.click()
    assert "100%" in widget.completeness.value
    widget.customer.value = "7"
    widget.customer_button.click()
    widget.customers.value = widget.customers.options[0][1]
    assert "안녕하세요" in widget.rendered.value and "bytes (EUC-KR)" in widget.rendered.value
    assert "27 bytes" in widget.size.value
    widget.editor.value = "#{고객명}님 " + "가" * 60
    assert "fits LMS" in widget.size.value and "over the SMS limit" in widget.warnings.value
    widget.mode.value = "strict"
    widget.editor.value = "{{ 고객명 "
    assert "does not parse" in widget.completeness.value


# -- bounds: hostile templates end quickly in one line -------------------------------------
HOSTILE = {
    "huge-string-repeat": "{{ 'x' * 300000000 }}",
    "huge-list-repeat": "{{ [1] * 1000000000 }}",
    "float-power-overflow": "{{ 1.5 ** 100000 }}",
    "huge-int-power": "{{ 10 ** 10000000 }}",
    "divide-by-zero": "{{ 1/0 }}",
    "recursive-macro": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "exponential-macro": "{% macro f(n) %}{{ f(n) }}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "nested-loops": "{% set s = 'x' * 10000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
    "str-method-padding": "{{ 'x'.ljust(300000000) }}",
    "str-format-width": "{{ '{:>999999999}'.format(1) }}",
    "percent-format-width": "{{ '%300000000s' % 'x' }}",
    "center-filter": "{{ 'x' | center(300000000) }}",
    "replace-blowup": "{% set a = 'x' * 1000 %}{{ a | replace('x', a) | replace('x', a) }}",
    "doubling-concat": "{% set a = 'x' * 60000 %}{% set b = a + a %}{{ b }}",
    "long-output": "{% for i in 'x' * 5000 %}{{ 'yyyyyyyyyy' }}{% endfor %}",
    "huge-range": "{% for i in range(10**9) %}{% endfor %}",
    "loop-over-repeat": "{% for i in [0] * 99999 %}{% for j in [0] * 99999 %}{% endfor %}{% endfor %}",
    "int-multiply-chain": "{% set a = 9 ** 500 %}{{ a * a * a * a * a * a * a * a * a }}",
    "template-too-long": "x" * 5_000_000,
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_template_is_one_line_error_quickly(text: str) -> None:
    import resource
    import time

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with pytest.raises(TemplateError) as info:
        render(text, {})
    assert time.perf_counter() - started < 2.0
    # peak memory grew by less than 50 MB (ru_maxrss is in KiB on Linux)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024
    assert "\n" not in str(info.value) and str(info.value)


@pytest.mark.parametrize(
    ("expression", "words"),
    [("1/0", "divides by zero"), ("'x' * 10**9", "builds"), ("a.__class__.__mro__", "unsafe")],
    ids=["divide-by-zero", "huge", "private-attribute"],
)
def test_hostile_expression_variable_is_one_line_error(expression: str, words: str) -> None:
    from hybridwb.templating.service import evaluate

    with pytest.raises(TemplateError, match=words) as info:
        evaluate(expression, {"a": 1})
    assert "\n" not in str(info.value)


def test_expression_variable_still_computes() -> None:
    from hybridwb.templating.service import evaluate

    assert evaluate("monthly_fee * 12", {"monthly_fee": 9900}) == 118800


def test_five_megabyte_template_is_refused_at_save(tmp_path) -> None:
    import hybridwb

    with hybridwb.connect(cwd=tmp_path, env={}) as wb:
        with pytest.raises(TemplateError, match="at most"):
            wb.templates.create("huge", "광고 " * 1_250_000, message_type="LMS")
        names = set(wb.store.sql("SELECT name FROM message_templates")["name"])
    assert "huge" not in names  # the store (oracle) holds no such template


@pytest.mark.parametrize(
    ("message_type", "repeat", "skipped"),
    [("SMS", 40, False), ("SMS", 1200, True), ("LMS", 900, False), ("LMS", 1100, True)],
    ids=["sms-as-lms-fits", "sms-past-lms", "lms-fits", "lms-over-2000-bytes"],
)
def test_rendered_message_is_bounded_by_its_type(
    shop, message_type: str, repeat: int, skipped: bool
) -> None:  # type: ignore[no-untyped-def]
    text = "#{고객명}" + "가" * repeat  # 2 EUC-KR bytes per 가
    out = shop.templates.render(text, {"name": "김"}, message_type=message_type)
    assert (out.skipped is not None) == skipped
    if skipped:
        assert out.text is None and "too long" in out.skipped
    else:
        assert out.text is not None and len(out.text.encode("euc-kr")) <= 2000


def test_message_limits_come_from_settings(shop) -> None:  # type: ignore[no-untyped-def]
    import hybridwb

    text = "#{고객명}" + "가" * 60
    assert shop.templates.render(text, {"name": "김"}, message_type="LMS").skipped is None
    with hybridwb.connect(env={"HYBRIDWB_LMS_MAX_BYTES": "100"}) as wb:
        out = wb.templates.render(text, {"name": "김"}, message_type="LMS")
    assert out.skipped and "limit of 100" in out.skipped


def test_recursive_macro_is_stopped_by_the_call_depth_bound() -> None:
    with pytest.raises(TemplateError, match="calls macros more than"):
        render("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", {})


class _Unprintable:
    """A value whose own code fails (any exception, with the value in its words)."""

    def __str__(self) -> str:
        raise RuntimeError("cannot print 010-2345-6789")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("{{ email | dictsort }}", "kim@example.com"),
        ("{{ email | xmlattr }}", "kim@example.com"),
        ("{{ email }}", _Unprintable()),
    ],
    ids=["dictsort-on-text", "xmlattr-on-text", "value-raises-its-own-error"],
)
def test_any_render_failure_is_one_line_template_error_without_the_value(
    text: str, value: object
) -> None:
    with pytest.raises(TemplateError) as info:
        render(text, {"email": value})
    shown = str(info.value)
    assert "\n" not in shown and "kim@" not in shown and "2345" not in shown
    assert info.value.__suppress_context__  # raised from None: no frames holding the row


@pytest.mark.parametrize(
    "rows",
    [
        "not a list",
        [{"customer_id": 1}, ("customer_id", 2)],  # one row a tuple, after a dict
        [{"customer_id": 1}, None],
        [["customer_id", 1]],
    ],
)
def test_related_refuses_rows_that_are_not_dicts(shop, rows) -> None:  # type: ignore[no-untyped-def]
    """Rows are checked by their types (a dict is told in C); any one that is not a mapping
    is refused with the one-line error, however many dicts come before it."""
    report = shop.templates.automap(TEMPLATE)
    with pytest.raises(ValidationError, match=r"^rows must be a list of dicts"):
        shop.templates.related(report, rows)


def test_related_takes_any_mapping_as_a_row(shop) -> None:  # type: ignore[no-untyped-def]
    from types import MappingProxyType

    report = shop.templates.automap(TEMPLATE)
    row = {"customer_id": 1}
    assert shop.templates.related(report, [MappingProxyType(row)]) == shop.templates.related(
        report, [row]
    )
