"""One way to turn pydantic's and json's errors into hybridwb's one-line messages."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError as PydanticError

from hybridwb.errors import ValidationError


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


#: what an integer bind may hold: a signed 64-bit integer (SQLite's and BIGINT's range)
INT64 = range(-(2**63), 2**63)


def short(value: object, width: int = 60) -> str:
    """`repr(value)`, cut to `width` characters, for a message that stays one short line."""
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__ must not replace the error being raised
        text = f"<{type(value).__name__}>"
    if len(text) > width:
        text = text[: width - 1] + "…"
    return ascii(text)[1:-1] if any(not c.isprintable() for c in text) else text
