"""Template parsing (pure): variables of `#{}` and Jinja2 templates, the sandbox, rendering.

Two syntaxes live side by side: Jinja2 (`{{ 고객명 }}`, `{{ customer.name | won }}`,
conditionals) and KakaoTalk's `#{변수}`. `#{x}` is rewritten to a Jinja lookup, so one
sandboxed engine renders both. The sandbox refuses private attributes at parse time and
at render time; the environment has no globals to reach through; size, time and depth
are bounded (`hybridwb.templating.sandbox`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, cast

from jinja2 import TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.exceptions import TemplateError as JinjaError

from hybridwb.errors import TemplateError
from hybridwb.templating import sandbox
from hybridwb.templating.formatters import FORMATTERS

HASH_VAR = re.compile(r"#\{\s*([^{}#]+?)\s*\}")
HASH_CONTEXT = "kakao__vars"


@dataclass(frozen=True)
class VariableUse:
    name: str  # 고객명, customer.name
    syntax: str  # jinja | hash
    line: int
    column: int
    filters: tuple[str, ...] = ()
    #: the `{{ }}` text this name is a part of when it is names joined by signs with no
    #: space (`{{ e-mail }}` reads as e minus mail): what `#{e-mail}` would name
    joined: str | None = None


#: `{{ e-mail }}`, `{{ first/last }}`: names joined by a sign with no space around it
_JOINED = re.compile(r"\{\{\s*([^\W\d]\w*(?:[-+*/%]\w+)+)\s*(?:\|[^{}]*)?\}\}")


ENV = sandbox.make_environment(FORMATTERS)
MAX_EXPRESSION_CHARS = 1_000


def _position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, column


def to_jinja(text: str) -> str:
    """Rewrite `#{name}` as a Jinja lookup so one engine renders both syntaxes."""
    return HASH_VAR.sub(lambda m: "{{ " + HASH_CONTEXT + "[" + repr(m.group(1)) + "] }}", text)


def _dotted(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        base = _dotted(node.node)
        return f"{base}.{node.attr}" if base else None
    return None


def _check_source(text: Any) -> None:
    if not isinstance(text, str):
        raise TemplateError(f"A template is text, not {type(text).__name__}.")
    if len(text) > sandbox.MAX_TEMPLATE_CHARS:
        raise TemplateError(
            f"The template is {len(text):,} characters long; at most "
            f"{sandbox.MAX_TEMPLATE_CHARS:,} are accepted. Nothing was saved."
        )


@lru_cache(maxsize=512)
def _parse(text: str) -> nodes.Template:
    _check_source(text)
    try:
        tree = ENV.parse(to_jinja(text))
    except TemplateSyntaxError as exc:
        line = exc.lineno or 1
        lines = text.splitlines() or [""]
        src = lines[min(line, len(lines)) - 1]
        column = max(src.find("{{"), src.find("{%"), 0) + 1
        name = _unparsed_name(src)
        fix = (
            f"A name with a space or sign is written #{{{name}}}"
            if name is not None
            else "Check the {{ }} and {% %} pairs"
        )
        raise TemplateError(
            f"The template does not parse at line {line}, column {column}: "
            f"{(exc.message or 'invalid syntax').rstrip('.')}. {fix}.",
            line=line,
            column=column,
        ) from None
    # jinja2 annotates find_all with a tuple of types as their common base (Expr)
    accesses = cast(
        "Iterator[nodes.Getattr | nodes.Getitem]", tree.find_all((nodes.Getattr, nodes.Getitem))
    )
    for node in accesses:
        attr = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
        if (
            isinstance(attr, str)
            and attr.startswith("_")
            and not (isinstance(node.node, nodes.Name) and node.node.name == HASH_CONTEXT)
        ):
            raise TemplateError(
                f"The template reaches for {attr!r}, which templates may not touch; use only variables.",
                attribute=attr,
            )
    _refuse_jinja_words(tree)
    return tree


#: words Jinja reads as its own, never as a variable of that name: `self` is the template
#: (a field `self` rendered "<TemplateReference None>"), the rest are literals
_LITERALS = {None: "none", True: "true", False: "false"}


def _refuse_jinja_words(tree: nodes.Template) -> None:
    """`{{ self }}` and a bare `{{ none }}`, `{{ true }}` or `{{ false }}` name a column
    (MariaDB allows those names) but Jinja fills them itself: every message said
    "<TemplateReference None>" or "None" and the report counted the variable mapped, or not
    at all. `#{name}` reads the variable of that name."""
    for name in tree.find_all(nodes.Name):
        if name.name == "self" and name.ctx == "load":
            word = "self"
            break
    else:
        outputs = (part for out in tree.find_all(nodes.Output) for part in out.nodes)
        const = next(
            (
                p
                for p in outputs
                if isinstance(p, nodes.Const) and (p.value is None or isinstance(p.value, bool))
            ),
            None,
        )
        if const is None:
            return
        word = _LITERALS[const.value]
    raise TemplateError(
        f"The template writes {{{{ {word} }}}}, which Jinja reads as its own {word!r}, not a "
        f"variable; write #{{{word}}} for the field of that name.",
        attribute=word,
    )


#: what a `{{ }}` holds when it is meant as one name: no Jinja operator or bracket in it
_NAMEISH = re.compile(r"\{\{\s*([^{}#|()\[\]~+*/=<>!,:\"\\-]+?)\s*\}\}")


def _unparsed_name(line: str) -> str | None:
    """The first `{{ name }}` on `line` that Jinja cannot read as a name but `#{name}` can
    (a relation `home address`, a field `50%` or `it's`), so the error says how to write it."""
    for match in _NAMEISH.finditer(line):
        name = match.group(1).strip()
        if not name:
            continue
        try:
            ENV.parse("{{ " + name + " }}")
        except TemplateSyntaxError:
            if HASH_VAR.fullmatch("#{" + name + "}"):
                return name
    return None


def variables(text: str) -> list[VariableUse]:
    """Every variable the template uses, with where it occurs, in order of appearance."""
    _check_source(text)
    tree = _parse(text)
    uses: list[VariableUse] = []
    for match in HASH_VAR.finditer(text):
        uses.append(VariableUse(match.group(1), "hash", *_position(text, match.start())))
    declared = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    seen_nodes: set[int] = set()
    joined = _joined_names(text) if "{{" in text else {}
    filters_of: dict[int, list[str]] = {}
    for flt in tree.find_all(nodes.Filter):
        if flt.node is not None:
            filters_of.setdefault(id(flt.node), []).append(flt.name)
    for node in tree.find_all((nodes.Getattr, nodes.Name)):
        if id(node) in seen_nodes:
            continue
        name = _dotted(node)
        if isinstance(node, nodes.Getattr):
            inner: Any = node.node
            while isinstance(inner, nodes.Getattr):
                seen_nodes.add(id(inner))
                inner = inner.node
            seen_nodes.add(id(inner))
        if not name or name.split(".")[0] in declared or name.split(".")[0] == HASH_CONTEXT:
            continue
        if isinstance(node, nodes.Name) and node.ctx != "load":
            continue
        index = _find(text, name.split(".")[-1])
        uses.append(
            VariableUse(
                name,
                "jinja",
                *_position(text, index),
                tuple(filters_of.get(id(node), ())),
                joined.get(name),
            )
        )
    uses.sort(key=lambda u: (u.line, u.column))
    return uses


def _joined_names(text: str) -> dict[str, str]:
    """{name: the joined text it is a part of} for every `{{ e-mail }}` in `text`."""
    out: dict[str, str] = {}
    for match in _JOINED.finditer(text):
        for part in re.split(r"[-+*/%]", match.group(1)):
            out.setdefault(part, match.group(1))
    return out


def _find(text: str, word: str) -> int:
    for match in re.finditer(r"\{\{.*?\}\}|\{%.*?%\}", text, re.DOTALL):
        at = match.group(0).find(word)
        if at >= 0:
            return match.start() + at
    return max(text.find(word), 0)


@lru_cache(maxsize=256)
def _compiled(text: str) -> Any:
    """Parse (and check) once, compile once: a run renders one template many times."""
    _check_source(text)
    _parse(text)
    # parsed again (the checked tree is cached and shared): loops get their budget guard
    try:
        return ENV.from_string(sandbox.guard_loops(ENV.parse(to_jinja(text))))
    except JinjaError as exc:  # e.g. a filter that does not exist (or is not offered)
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TemplateError(
            f"The template cannot be used: {first.rstrip('.')}. Use only the listed formatters."
        ) from None


@lru_cache(maxsize=256)
def pieces(text: str) -> tuple[tuple[bool, str], ...] | None:
    """The template as literal text and plain variable lookups, `(is variable, text or
    name)`, when it is nothing more (no filters, conditions, loops, attributes); else None.

    A run renders one template for every target: such a template is filled by joining
    its pieces (`render_pieces`), which gives what Jinja gives (`str()` of each value)
    without a sandboxed render per message; anything else goes through Jinja."""
    tree = _parse(text)
    out: list[tuple[bool, str]] = []
    for node in tree.body:
        if not isinstance(node, nodes.Output):
            return None
        for part in node.nodes:
            if isinstance(part, nodes.TemplateData):
                out.append((False, part.data))
            elif isinstance(part, nodes.Name) and part.ctx == "load" and part.name != HASH_CONTEXT:
                out.append((True, part.name))
            elif (
                isinstance(part, nodes.Getitem)
                and isinstance(part.node, nodes.Name)
                and part.node.name == HASH_CONTEXT
                and isinstance(part.arg, nodes.Const)
                and isinstance(part.arg.value, str)
            ):
                out.append((True, part.arg.value))
            else:
                return None
    return tuple(out)


def render_pieces(
    parts: tuple[tuple[bool, str], ...], values: dict[str, Any], max_chars: int
) -> str | None:
    """`render()` of a template given as `pieces()`; None when a value is not plainly
    there (missing, or a variable named like the `#{}` context), so the caller renders
    with Jinja and gets Jinja's answer. Raises `render()`'s too-long `TemplateError`."""
    if HASH_CONTEXT in values:
        return None
    out: list[str] = []
    for is_name, piece in parts:
        if not is_name:
            out.append(piece)
        elif piece in values:
            out.append(str(values[piece]))
        else:
            return None
    text = "".join(out)
    if len(text) > max_chars:
        raise too_long(max_chars)
    return text


def too_long(max_chars: int) -> TemplateError:
    """The error of a message over `max_chars` characters (`render()`'s own words)."""
    return TemplateError(
        f"The message is longer than {max_chars:,} characters; shorten the template.",
        too_long=True,
    )


def names(text: str) -> list[str]:
    """The distinct variable names, in order of first use."""
    return list(dict.fromkeys(u.name for u in variables(text)))


def render(text: str, values: dict[str, Any], *, max_chars: int | None = None) -> str:
    """Render with the sandbox; `values` maps each variable name (dotted or not) to a value.

    Output longer than `max_chars` (default `sandbox.MAX_OUTPUT_CHARS`), a render over the
    time or step budget and any failing operation raise a one-line `TemplateError`."""
    if not isinstance(values, dict):
        raise TemplateError(f"Template values are a dict, not {type(values).__name__}.")
    tree_context: dict[str, Any] = {HASH_CONTEXT: {}}
    for name, value in values.items():
        tree_context[HASH_CONTEXT][name] = value
        parts = str(name).split(".")
        target = tree_context
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                break
        else:
            target[parts[-1]] = value
    template = _compiled(text)
    limit = sandbox.MAX_OUTPUT_CHARS if max_chars is None else max_chars
    with _OneLineErrors("The template"), sandbox.budgeted():
        return sandbox.collect(template.generate(tree_context), limit)
    raise AssertionError("unreachable")  # pragma: no cover


@lru_cache(maxsize=256)
def _expression(expression: str) -> Any:
    return ENV.compile_expression(expression, undefined_to_none=True)


def evaluate(expression: str, row: dict[str, Any]) -> Any:
    """A small expression over fields (e.g. `monthly_fee * 12`), bounded like templates."""
    if not isinstance(expression, str) or len(expression) > MAX_EXPRESSION_CHARS:
        raise TemplateError(f"An expression is text of at most {MAX_EXPRESSION_CHARS} characters.")
    with _OneLineErrors(f"The expression {expression[:60]!r}"), sandbox.budgeted():
        return _expression(expression)(**row)
    raise AssertionError("unreachable")  # pragma: no cover


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_UNDEFINED_NAME = re.compile(r"^'[^']*' is undefined$")


def _quoted_out(message: str | None) -> str:
    """The error's words without what it quotes (a lookup by a customer's value would show
    the value), except the type names Jinja quotes (`'dict object'`) and the name in
    "'x' is undefined", which comes from the template itself."""
    text = message or "an undefined value"
    if _UNDEFINED_NAME.match(text):
        return text
    return _QUOTED.sub(
        lambda m: (
            m.group(0)
            if m.group(0)[1:-1].endswith(" object") or m.group(0)[1:-1] in _TYPE_NAMES
            else "'…'"
        ),
        text,
    )


#: type names Python and Jinja quote in their errors (never a customer value)
_TYPE_NAMES = frozenset(
    [
        "int",
        "str",
        "float",
        "bool",
        "NoneType",
        "list",
        "dict",
        "tuple",
        "set",
        "bytes",
        "Undefined",
        "Markup",
        "datetime",
        "date",
        "time",
        "Decimal",
    ]
)


class _OneLineErrors:
    """Whatever goes wrong while rendering becomes one `TemplateError` line, from None."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        if exc is None or isinstance(exc, TemplateError):
            return False
        if isinstance(exc, SecurityError):
            message = f"{self.what} tried something unsafe and was stopped: {str(exc).rstrip('.')}."
        elif isinstance(exc, UndefinedError):
            message = f"{self.what} uses a value that was not given: {_quoted_out(exc.message)}."
        elif isinstance(exc, ZeroDivisionError):
            message = f"{self.what} divides by zero; check the numbers it uses."
        elif isinstance(exc, ArithmeticError):
            message = f"{self.what} computes a number that is too large; check the numbers."
        elif isinstance(exc, RecursionError):
            message = f"{self.what} nests or recurses too deeply; simplify it."
        elif isinstance(exc, MemoryError):
            message = f"{self.what} needs too much memory; simplify it."
        elif isinstance(exc, JinjaError | TypeError | ValueError | LookupError | AttributeError):
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            message = f"{self.what} failed to render: {_quoted_out(first)}."
        elif isinstance(exc, Exception):  # a filter's own failure: its words may hold a value
            message = f"{self.what} failed to render ({type(exc).__name__}); check its filters."
        else:
            return False
        raise TemplateError.from_cause(exc, message) from None
