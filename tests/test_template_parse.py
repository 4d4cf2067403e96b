"""Template parsing as pure functions: where each variable is, what is refused, the messages.

The fast tests `make mutation` runs against hybridwb/templating/parse.py (tests/test_templating.py
covers the sandbox against hostile templates and the workbench path).
"""

from __future__ import annotations

import dataclasses

import pytest

from hybridwb.errors import TemplateError
from hybridwb.templating import parse
from hybridwb.templating.parse import VariableUse


def _uses(text: str) -> list[tuple[str, str, int, int, tuple[str, ...]]]:
    return [(u.name, u.syntax, u.line, u.column, u.filters) for u in parse.variables(text)]


@pytest.mark.parametrize(
    ("text", "uses"),
    [
        (
            "#{ 이름 }님\n  {{ a.b.c | upper }} {{ x }}",
            [
                ("이름", "hash", 1, 1, ()),
                ("a.b.c", "jinja", 2, 10, ("upper",)),
                ("x", "jinja", 2, 26, ()),
            ],
        ),
        ("ab\n{{ y }}\n  #{z}", [("y", "jinja", 2, 4, ()), ("z", "hash", 3, 3, ())]),
        ("#{a}#{b}", [("a", "hash", 1, 1, ()), ("b", "hash", 1, 5, ())]),
        ("\n{{ x }}", [("x", "jinja", 2, 4, ())]),
        (
            "{% for i in items %}{{ i.name }}{% endfor %}{% set t = 1 %}{{ t }}",
            [("items", "jinja", 1, 13, ())],
        ),
        ("{% macro m(q) %}{{ q }}{% endmacro %}", []),
        ("xx {{ name }} name", [("name", "jinja", 1, 7, ())]),
        ("name: {{ name }}", [("name", "jinja", 1, 10, ())]),
        (
            "{% if cond %}{{ val }}{% endif %}",
            [("cond", "jinja", 1, 7, ()), ("val", "jinja", 1, 17, ())],
        ),
        ("{{ a['b'] }}", [("a", "jinja", 1, 4, ())]),
        ("{{ (a).b.c }}", [("a.b.c", "jinja", 1, 10, ())]),
        ("{{ a | won }} {{ a }}", [("a", "jinja", 1, 4, ("won",)), ("a", "jinja", 1, 4, ())]),
        ("no variables", []),
    ],
    ids=[
        "both-syntaxes",
        "lines-and-columns",
        "adjacent-hash",
        "starts-with-a-newline",
        "loop-and-set-are-not-variables",
        "macro-parameter",
        "first-inside-braces",
        "inside-braces-not-before",
        "if-block",
        "subscript",
        "dotted-in-parentheses",
        "filtered-and-plain",
        "none",
    ],
)
def test_variables_with_their_position_and_filters(
    text: str, uses: list[tuple[str, str, int, int, tuple[str, ...]]]
) -> None:
    assert _uses(text) == uses


def test_the_internal_lookup_of_hash_variables_is_never_a_variable() -> None:
    assert parse.variables("{{ kakao__vars.x }} {{ kakao__vars['y'] }}") == []


def test_names_are_distinct_in_order_of_first_use() -> None:
    assert parse.names("{{ b }} #{a} {{ b }} #{a}") == ["b", "a"]


def test_a_variable_use_is_a_value() -> None:
    use = VariableUse("a", "jinja", 1, 1)
    assert use.filters == ()
    assert len({use, VariableUse("a", "jinja", 1, 1)}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        use.line = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "jinja"),
    [
        ("#{a}", "{{ kakao__vars['a'] }}"),
        ("#{ a b }", "{{ kakao__vars['a b'] }}"),
        ("#{a}#{b}", "{{ kakao__vars['a'] }}{{ kakao__vars['b'] }}"),
        ("#{}", "#{}"),
        ("#{a{b}", "#{a{b}"),
        ("{{ a }}", "{{ a }}"),
    ],
    ids=["one", "spaces", "two", "empty", "brace-inside", "jinja-untouched"],
)
def test_hash_variables_become_lookups(text: str, jinja: str) -> None:
    assert parse.to_jinja(text) == jinja


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (5, "A template is text, not int."),
        (None, "A template is text, not NoneType."),
        (
            "x" * 20_001,
            "The template is 20,001 characters long; at most 20,000 are accepted. "
            "Nothing was saved.",
        ),
        (
            "{{ x._y }}",
            "The template reaches for '_y', which templates may not touch; use only variables.",
        ),
        (
            "{{ x['_y'] }}",
            "The template reaches for '_y', which templates may not touch; use only variables.",
        ),
    ],
    ids=["int", "none", "too-long", "private-attribute", "private-item"],
)
def test_refused_templates(text: object, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        parse.variables(text)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_the_longest_template_is_accepted() -> None:
    assert parse.variables("x" * 20_000) == []


def test_a_private_name_is_allowed_only_as_a_hash_variable() -> None:
    assert _uses("#{_y}") == [("_y", "hash", 1, 1, ())]
    assert parse.render("#{_y}", {"_y": "ok"}) == "ok"


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("a\n\nb {{ x", 3, 3),
        ("{{ x", 1, 1),
        ("ab {% if x %}", 1, 4),
        ("ab\n{% if %}", 2, 1),
        ("a\nb\n{{ }}\n", 3, 1),
    ],
    ids=["third-line", "first-column", "block", "second-line", "trailing-newline"],
)
def test_a_syntax_error_says_line_and_column(text: str, line: int, column: int) -> None:
    with pytest.raises(TemplateError) as info:
        parse.variables(text)
    assert (info.value.line, info.value.column) == (line, column)
    message = str(info.value)
    assert message.startswith(f"The template does not parse at line {line}, column {column}: ")
    assert message.endswith(". Check the {{ }} and {% %} pairs.")
    assert ".." not in message and "\n" not in message


def test_a_syntax_error_carries_jinjas_reason() -> None:
    with pytest.raises(TemplateError) as info:
        parse.variables("a\n\nb {{ x")
    assert str(info.value) == (
        "The template does not parse at line 3, column 3: unexpected end of template, "
        "expected 'end of print statement'. Check the {{ }} and {% %} pairs."
    )


# -- rendering ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "values", "out"),
    [
        ("{{ a.b }} {{ c }}", {"a.b": 1, "c": 2}, "1 2"),
        ("#{a.b} {{ a.b }}", {"a.b": "x"}, "x x"),
        ("{{ a.b.c }}", {"a.b.c": 3}, "3"),
        ("#{고객명}님", {"고객명": "홍길동"}, "홍길동님"),
        ("{{ a }}", {"a": 1, "a.b": 2}, "1"),
    ],
    ids=["dotted", "both-syntaxes", "two-dots", "korean", "value-beats-nested"],
)
def test_render_fills_dotted_names(text: str, values: dict[str, object], out: str) -> None:
    assert parse.render(text, values) == out


@pytest.mark.parametrize(
    ("text", "values", "kwargs", "message"),
    [
        ("{{ x }}", [], {}, "Template values are a dict, not list."),
        (
            "{{ x }}",
            {"x": "abcdef"},
            {"max_chars": 3},
            "The message is longer than 3 characters; shorten the template.",
        ),
        (
            "{{ x | nope }}",
            {},
            {},
            "The template cannot be used: No filter named 'nope'. Use only the listed formatters.",
        ),
        ("{{ 1/0 }}", {}, {}, "The template divides by zero; check the numbers it uses."),
        (
            "{{ a.b }}",
            {"a": 3},
            {},
            "The template uses a value that was not given: 'int object' has no attribute '…'.",  # quoted words are left out: they may be a customer's value
        ),
        (
            "{{ 1 ** 'a' }}",
            {},
            {},
            "The template failed to render: unsupported operand type(s) for ** or pow(): "
            "'int' and 'str'.",
        ),
        (
            "{{ x|attr('__class__') }}",
            {"x": 1},
            {},
            "The template tried something unsafe and was stopped: "
            "access to attribute '__class__' of 'int' object is unsafe.",
        ),
        (
            "{{ 10.0 ** 400 }}",
            {},
            {},
            "The template computes a number that is too large; check the numbers.",
        ),
    ],
    ids=[
        "values-not-a-dict",
        "too-long",
        "unknown-filter",
        "zero",
        "undefined",
        "type-error",
        "unsafe-at-render-time",
        "overflow",
    ],
)
def test_render_errors_are_one_line(
    text: str, values: object, kwargs: dict[str, int], message: str
) -> None:
    with pytest.raises(TemplateError) as info:
        parse.render(text, values, **kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message
    assert info.value.__cause__ is None


def test_output_at_the_limit_is_kept() -> None:
    assert parse.render("{{ x }}", {"x": "abc"}, max_chars=3) == "abc"


# -- expressions --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expression", "row", "value"),
    [("a + 1", {"a": 1}, 2), ("a", {}, None), ("'x' * 3", {}, "xxx")],
    ids=["sum", "missing-is-none", "string"],
)
def test_expressions_compute(expression: str, row: dict[str, object], value: object) -> None:
    assert parse.evaluate(expression, row) == value


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("x" * 1001, "An expression is text of at most 1000 characters."),
        (5, "An expression is text of at most 1000 characters."),
        ("b.c", "The expression 'b.c' uses a value that was not given: 'b' is undefined."),
        ("1/0", "The expression '1/0' divides by zero; check the numbers it uses."),
        (
            "'a' - 1",
            "The expression \"'a' - 1\" failed to render: "
            "unsupported operand type(s) for -: 'str' and 'int'.",
        ),
        (
            "(" * 300 + "1" + ")" * 300,
            "The expression '" + "(" * 60 + "' nests or recurses too deeply; simplify it.",
        ),
        (
            "a" * 70 + " / 0",
            "The expression '" + "a" * 60 + "' divides by zero; check the numbers it uses.",
        ),
    ],
    ids=["too-long", "not-text", "undefined", "zero", "type-error", "too-deep", "shown-cut-at-60"],
)
def test_expression_errors_are_one_line(expression: object, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        parse.evaluate(expression, {"a" * 70: 1})  # type: ignore[arg-type]
    assert str(info.value) == message


def test_the_longest_expression_is_accepted() -> None:
    assert parse.evaluate("1" + " " * 999, {}) == 1


def test_an_unexpected_error_is_not_disguised() -> None:
    class Boom:
        def __str__(self) -> str:
            raise RuntimeError("boom")

    # one line that names the error's type (its words may hold a value), never hidden
    with pytest.raises(TemplateError, match=r"failed to render \(RuntimeError\)") as raised:
        parse.render("{{ x }}", {"x": Boom()})
    assert "boom" not in str(raised.value)
