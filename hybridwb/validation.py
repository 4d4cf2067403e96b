"""One way to turn pydantic's and json's errors into hybridwb's one-line messages."""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import inspect
import json
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from pydantic import ValidationError as PydanticError

from hybridwb.errors import (
    HybridwbError,
    InternalError,
    UnknownAttribute,
    ValidationError,
    drop_frames,
)

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def first_error(exc: PydanticError) -> tuple[str, str]:
    """(JSON path, what is wrong) of the first problem pydantic found, in plain words."""
    err = exc.errors()[0]
    path = ".".join(str(p) for p in err["loc"] if p != "__root__")
    msg = err["msg"].removeprefix("Value error, ")
    kind = err["type"]
    if kind == "missing":
        msg = "is required"
    elif kind == "extra_forbidden":
        msg = "is not a known key"
    elif kind == "literal_error":
        msg = msg.replace("Input should be", "must be") + f" (got {short(err.get('input'))})"
    elif kind == "string_pattern_mismatch":
        msg = f"does not have the expected form (got {short(err.get('input'))})"
    return path, msg


#: deeper JSON than this is refused before any model sees it (pydantic and json recurse)
MAX_DEPTH = 64


def load_json(data: Any, what: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Text or UTF-8 bytes become JSON, or one error naming where it broke.

    Other values pass through; either way nesting deeper than `max_depth` is refused,
    so no input can reach a RecursionError further in."""
    if isinstance(data, bytes | bytearray):
        try:
            data = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValidationError(
                f"{what} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at position "
                f"{exc.start}); save it as UTF-8. Nothing was saved."
            ) from None
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"{what} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); nothing was saved."
            ) from None
        except RecursionError:
            raise ValidationError(
                f"{what} is nested too deeply (more than {max_depth} levels); nothing was saved."
            ) from None
        except ValueError:  # a number of more digits than Python reads (4,300)
            raise ValidationError(
                f"{what} holds a number too long to read; write it as text. Nothing was saved."
            ) from None
    depth = nesting_depth(data, max_depth + 1)
    if depth > max_depth:
        raise ValidationError(
            f"{what} is nested too deeply (more than {max_depth} levels); nothing was saved."
        )
    return data


def nesting_depth(value: Any, stop: int) -> int:
    """How deeply lists and dicts nest in `value`, counting no further than `stop`.

    Iterative, so it cannot overflow the stack, and it stops early, so a cyclic or huge
    structure costs no more than `stop` levels."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, dict | list | tuple):
            continue
        deepest = max(deepest, depth)
        if deepest >= stop:
            return deepest
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children)
    return deepest


def holds_nul(value: Any) -> bool:
    """Whether a NUL character is in any text or key of `value` (JSON-like data). No
    PostgreSQL text or JSONB value can hold one, so the store refuses it on every backend
    (an SQLite store kept what a Postgres one refused). Iterative, like `nesting_depth`."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def column_names(columns: Any) -> list[str]:
    """A result's column names as text (`store.pii_columns`, `source_pii`), or one line
    saying what to pass: `str()` of a name nested past the stack raised RecursionError."""
    if isinstance(columns, str | bytes) or not isinstance(columns, Iterable):
        raise ValidationError("columns must be a list of column names (a result's df.columns).")
    try:
        return [str(c) for c in columns]
    except RecursionError:
        raise ValidationError(
            "A column name is nested too deeply to be a name; "
            "pass the result's column names (df.columns)."
        ) from None


class _Int64:
    """`value in INT64`: an int within a signed 64-bit integer (SQLite's and BIGINT's range).
    Not a `range`: `range.__contains__` is fast for an exact int only, and walks every number
    for an int subclass (an `IntEnum` member, `int` subclasses of other libraries), 2**64
    steps: a bind check that never returned. The value's own methods are not called."""

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and -(2**63) <= int.__int__(value) < 2**63


#: what an integer bind may hold: a signed 64-bit integer (SQLite's and BIGINT's range)
INT64 = _Int64()


def short(value: object, width: int = 60) -> str:
    """`repr(value)`, cut to `width` characters, for a message that stays one short line."""
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__ must not replace the error being raised
        text = f"<{type(value).__name__}>"
    if len(text) > width:
        text = text[: width - 1] + "…"
    return ascii(text)[1:-1] if any(not c.isprintable() for c in text) else text


#: the years a run's or a preview's `now` may fall in: a relative span (at most a century,
#: `targets.definition.MAX_SPAN_DAYS`) and a run's clock moving on from it stay inside the
#: calendar Python, MySQL and PostgreSQL hold (round 51: year 9999 or 1 raised OverflowError)
NOW_YEARS = (1900, 8999)


def refuse_far_now(now: dt.datetime) -> None:
    """Refuses, in one line, a `now` outside `NOW_YEARS` (naive: as the local time it is)."""
    first, last = NOW_YEARS
    zone = None if now.utcoffset() is None else dt.UTC
    if not dt.datetime(first, 1, 1, tzinfo=zone) <= now < dt.datetime(last + 1, 1, 1, tzinfo=zone):
        raise ValidationError(
            f"now must be a time from {first} to {last}, not {now.isoformat()}; write it like "
            "2026-03-01T22:30+09:00."
        )


def checked_call(fn: F, owner: str = "") -> F:
    """`fn`, except that a call with arguments its signature does not take (a misspelt
    keyword, one too many, one missing) is a one-line `ValidationError` that names the
    function and, for a misspelt keyword, the closest one it takes. The signature is bound
    only after a TypeError, so a good call costs one extra frame."""
    signature = inspect.signature(fn)
    shown = f"{owner or fn.__name__}()"
    takes = [p for p in signature.parameters if p != "self"]

    generator = inspect.isgeneratorfunction(fn)

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            out = fn(*args, **kwargs)
        except HybridwbError as exc:
            # an expected error leaves the call as its one line, without the frames below
            # it (nor those of what is chained to it): they hold what the call was working
            # on, a page of customers' phones, which a traceback printed with its frames'
            # locals (IPython's `%xmode Verbose`, rich's `show_locals`) would show
            drop_frames(exc)
            raise
        except KeyboardInterrupt as exc:
            # Ctrl-C lands anywhere in the call, mid-batch: its frames hold the same pages
            # of phones (round 50); it leaves as an expected error does
            drop_frames(exc)
            raise
        except Exception as exc:
            if isinstance(exc, TypeError):
                try:
                    signature.bind(*args, **kwargs)
                except TypeError as bad:
                    raise ValidationError(_call_message(shown, takes, kwargs, bad)) from None
            if debugging():
                raise
            internal = unexpected(exc, shown)
        else:
            return _quiet(out, shown) if generator else out
        raise internal  # outside the handler: nothing chained to it

    return call  # type: ignore[return-value]


def debugging() -> bool:
    """`HYBRIDWB_DEBUG=1`: an unexpected error leaves a public call as it was raised."""
    return os.environ.get("HYBRIDWB_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def unexpected(exc: Exception, shown: str) -> InternalError:
    """The one line an error nobody expected leaves a public call as (round 50's residue:
    a bug's or a MemoryError's frames, and its text, may hold the page of phones the call
    worked on, shown by any traceback printed with locals): its type and the innermost
    line it was raised at, nothing else. The original's frames are dropped."""
    where = raised_at(exc)
    message = unexpected_message(exc, shown)
    drop_frames(exc)
    return InternalError(message, cause_type=type(exc).__name__, where=where)


def unexpected_message(exc: BaseException, shown: str) -> str:
    """`unexpected`'s one line (its type and where it was raised, never its text), with
    the error left as it is: a run's end written while the error still travels up
    (`outcome.stopped_line`) says what the call it leaves will say."""
    return (
        f"{shown} stopped on an unexpected {type(exc).__name__} at {raised_at(exc)}; its text "
        "is not shown, as it may hold customer data: set HYBRIDWB_DEBUG=1 and run it again "
        "to see it, and report it if the line is hybridwb's."
    )


def raised_at(exc: BaseException) -> str:
    """`file:line in function` of the innermost frame `exc` was raised through, or '?'."""
    tb, where = exc.__traceback__, "?"
    while tb is not None:
        code = tb.tb_frame.f_code
        where = f"{_short_file(code.co_filename)}:{tb.tb_lineno} in {code.co_name}"
        tb = tb.tb_next
    return where


def _short_file(name: str) -> str:
    """A file as its package path from `hybridwb/` (or its last two parts elsewhere)."""
    parts = name.replace("\\", "/").split("/")
    if "hybridwb" in parts:
        return "/".join(parts[len(parts) - 1 - parts[::-1].index("hybridwb") :])
    return "/".join(parts[-2:])


def _quiet(batches: Iterator[Any], shown: str = "") -> Iterator[Any]:
    """A public iteration whose errors leave it as a public call's do (`call`)."""
    try:
        return (yield from batches)
    except (HybridwbError, KeyboardInterrupt) as exc:
        drop_frames(exc)
        raise
    except Exception as exc:
        if debugging():
            raise
        internal = unexpected(exc, shown)
    raise internal


def checked(shown_as: str) -> Callable[[F], F]:
    """Decorator form of `checked_call` for a module function."""
    return lambda fn: checked_call(fn, shown_as)


def _call_message(shown: str, takes: list[str], kwargs: dict[str, Any], bad: TypeError) -> str:
    unknown = [k for k in kwargs if k not in takes]
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, takes, n=1)
        hint = f"did you mean {close[0]}=?" if close else f"it takes {', '.join(takes) or 'none'}."
        return f"{shown} takes no argument {short(name, 40)}; {hint}"
    return f"{shown}: {bad}; it takes {', '.join(takes) or 'no arguments'}."


def checked_calls(shown_as: str) -> Callable[[type[T]], type[T]]:
    """Class decorator: every public method of the class (and `__call__`), its own or
    inherited, as `checked_call`, named `shown_as.method()` in the message."""

    def decorate(cls: type[T]) -> type[T]:
        seen: set[str] = set()
        for klass in cls.__mro__[:-1]:
            for name, attr in vars(klass).items():
                public = not name.startswith("_") or name == "__call__"
                if public and name not in seen and inspect.isfunction(attr):
                    shown = shown_as if name == "__call__" else f"{shown_as}.{name}"
                    setattr(cls, name, checked_call(attr, shown))
                seen.add(name)
        if "__getattr__" not in seen:
            names = sorted(n for n in dir(cls) if not n.startswith("_"))

            def __getattr__(self: Any, name: str) -> Any:
                if name.startswith("_"):  # the interpreter's and libraries' probes
                    raise AttributeError(name)
                close = difflib.get_close_matches(name, names, n=1)
                hint = f"did you mean .{close[0]}?" if close else f"see help({shown_as})."
                raise UnknownAttribute(f"{shown_as} has no {short(name, 40)}; {hint}")

            cls.__getattr__ = __getattr__  # type: ignore[attr-defined]
        return cls

    return decorate
