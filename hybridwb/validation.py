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
        msg = msg.replace("Input should be", "must be") + f" (got {err.get('input')!r})"
    elif kind == "string_pattern_mismatch":
        msg = f"does not have the expected form (got {err.get('input')!r})"
    return path, msg


def load_json(data: Any, what: str) -> Any:
    """Text becomes JSON, or one error naming where it broke; other values pass through."""
    if not isinstance(data, str | bytes):
        return data
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"{what} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); nothing was saved."
        ) from None
