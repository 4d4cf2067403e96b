"""The bounded sandbox every template and expression variable runs in.

Jinja's sandbox stops templates from reaching Python internals, but not from asking for
a lot: `{{ 'x' * 300000000 }}`, `{{ 10 ** 10000000 }}`, a macro that calls itself, loops
in loops. Here every operation is charged against a per-render budget (steps and a
deadline), each operator refuses a result larger than a bound *before* computing it, the
string methods and filters that pad or repeat are not offered, and output is collected
piece by piece up to a size limit. All of it surfaces as one-line `TemplateError`s.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hybridwb.errors import TemplateError

#: largest string / list any expression may build (characters or items)
MAX_VALUE = 100_000
#: largest integer an expression may build
MAX_INT_BITS = 4096
#: operations (operators, calls, lookups, loop iterations) per render
MAX_STEPS = 200_000
#: wall-clock time per render
MAX_SECONDS = 1.0
#: how deeply macros may call each other
MAX_CALL_DEPTH = 40
#: longest template source accepted (a message is at most a few thousand bytes)
MAX_TEMPLATE_CHARS = 20_000
#: longest output when the caller gives no limit of its own
MAX_OUTPUT_CHARS = 20_000
LOOP_GUARD = "hybridwb_bounded"

#: str methods that cannot make a string much longer than itself
SAFE_STR_METHODS = frozenset(
    {
        "capitalize", "casefold", "count", "endswith", "find", "index", "isalnum", "isalpha",
        "isdecimal", "isdigit", "islower", "isnumeric", "isspace", "istitle", "isupper",
        "lower", "lstrip", "partition", "removeprefix", "removesuffix", "rfind", "rindex",
        "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip",
        "swapcase", "title", "upper",
    }
)  # fmt: skip
#: built-in filters that pad, repeat or draw at random
DROPPED_FILTERS = ("center", "indent", "format", "random", "batch", "slice", "wordwrap")


@dataclass
class Budget:
    deadline: float
    steps: int = 0
    depth: int = 0


_budget: ContextVar[Budget | None] = ContextVar("hybridwb_template_budget", default=None)


def charge(steps: int = 1) -> None:
    budget = _budget.get()
    if budget is None:
        return
    budget.steps += steps
    if budget.steps > MAX_STEPS:
        raise TemplateError(
            f"The template does more than {MAX_STEPS:,} operations; simplify its loops."
        )
    if budget.steps % 64 == 0 and time.monotonic() > budget.deadline:
        raise TemplateError(
            f"The template took longer than {MAX_SECONDS:g} s to render; simplify it."
        )


@contextmanager
def budgeted() -> Iterator[None]:
    """Run the block under a fresh render budget."""
    token = _budget.set(Budget(time.monotonic() + MAX_SECONDS))
    try:
        yield
    finally:
        _budget.reset(token)


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


def _too_big(what: str) -> TemplateError:
    return TemplateError(f"The template builds {what}; templates are for short messages.")


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse an operation whose result would be too big, before it is computed."""
    ints = isinstance(left, int) and isinstance(right, int)
    if operator == "*":
        for seq, n in ((left, right), (right, left)):
            size = _size(seq)
            if size is not None and isinstance(n, int) and size * max(n, 0) > MAX_VALUE:
                raise _too_big(f"a value of {size * n:,} characters or items")
        if ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise _too_big("a number that is too large")
    elif operator == "+":
        a, b = _size(left), _size(right)
        if a is not None and b is not None and a + b > MAX_VALUE:
            raise _too_big("a value that is too long")
    elif operator == "**":
        if ints and right > 0 and abs(left) > 1 and left.bit_length() * right > MAX_INT_BITS:
            raise _too_big("a number that is too large")
    elif operator == "%" and isinstance(left, str):
        raise TemplateError(
            "The template uses % formatting, which templates may not; use a formatter "
            "(won, date_ko, phone_mask, truncate)."
        )


def bounded_loop(iterable: Iterable[Any]) -> Iterator[Any]:
    """Every loop iteration costs a step (inserted around each `{% for %}` iterable)."""
    for item in iterable:
        charge()
        yield item


def _bounded_replace(value: Any, old: str, new: str, count: int | None = None) -> str:
    text = str(value)
    times = text.count(str(old)) if count is None else min(count, text.count(str(old)))
    if len(text) + times * max(len(str(new)) - len(str(old)), 0) > MAX_VALUE:
        raise _too_big("a value that is too long")
    return text.replace(str(old), str(new), -1 if count is None else count)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        charge()
        check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        charge()
        budget = _budget.get()
        if budget is not None:
            budget.depth += 1
            if budget.depth > MAX_CALL_DEPTH:
                raise TemplateError(
                    f"The template calls macros more than {MAX_CALL_DEPTH} deep "
                    "(a macro that calls itself?); simplify it."
                )
        try:
            return super().call(__context, __obj, *args, **kwargs)
        finally:
            if budget is not None:
                budget.depth -= 1

    def getattr(self, obj: Any, attribute: str) -> Any:
        """`a.b` on the values' nested dicts is the key `b`, never a dict method: a related
        column named `items`, `values` or `keys` rendered "<built-in method items of dict
        object at 0x...>" in every message."""
        charge()
        if isinstance(obj, dict):
            if attribute in obj:
                return obj[attribute]
            return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        charge()
        return super().getitem(obj, argument)

    def wrap_str_format(self, value: Any) -> None:
        return None  # no str.format: a width spec pads without bound; use the formatters

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and callable(value) and attr not in SAFE_STR_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)


def make_environment(formatters: dict[str, Any]) -> BoundedSandbox:
    env = BoundedSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.globals.clear()  # no cycler, joiner, namespace, range, lipsum, dict to reach through
    for name in DROPPED_FILTERS:
        env.filters.pop(name, None)
    env.filters["replace"] = _bounded_replace
    env.filters.update(formatters)
    env.filters[LOOP_GUARD] = bounded_loop
    return env


def guard_loops(tree: nodes.Template) -> nodes.Template:
    """Wrap each `{% for %}` iterable so its iterations are charged to the budget."""
    for loop in tree.find_all(nodes.For):
        loop.iter = nodes.Filter(loop.iter, LOOP_GUARD, [], [], None, None, lineno=loop.lineno)
    return tree


def collect(pieces: Iterable[str], max_chars: int) -> str:
    """Join rendered pieces, stopping as soon as the output passes `max_chars`."""
    out: list[str] = []
    total = 0
    for piece in pieces:
        total += len(piece)
        if total > max_chars:
            raise TemplateError(
                f"The message is longer than {max_chars:,} characters; shorten the template.",
                too_long=True,
            )
        out.append(piece)
    return "".join(out)
