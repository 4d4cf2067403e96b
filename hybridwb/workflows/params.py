"""Papermill parameters (pure): names are Python identifiers, values plain JSON data.

Papermill writes each parameter as `name = repr(value)` into a code cell, so a key like
`"x = 1\\nopen(...)"` or a value with a custom repr would become code. Checked where
parameters are stored and again where the notebook is built.
"""

from __future__ import annotations

import keyword
import math
from typing import Any

from hybridwb.errors import ValidationError

MAX_DEPTH = 8


def _check_value(name: str, value: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise ValidationError(f"Parameter {name!r} is nested too deeply; flatten it.")
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"Parameter {name!r} must be a finite number.")
        return
    if isinstance(value, list):
        for item in value:
            _check_value(name, item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(f"Parameter {name!r} has a non-text key; use text keys.")
            _check_value(name, item, depth + 1)
        return
    raise ValidationError(
        f"Parameter {name!r} must be JSON data (text, number, true/false, null, list, object), "
        f"not {type(value).__name__}."
    )


def check_parameters(params: dict[str, Any] | None) -> dict[str, Any]:
    """The parameters unchanged, or one ValidationError naming the first bad one."""
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise ValidationError("Notebook parameters must be a mapping of name -> value.")
    for name, value in params.items():
        if (
            not isinstance(name, str)
            or not name.isidentifier()
            or keyword.iskeyword(name)
            or not name.isascii()
        ):
            raise ValidationError(
                f"Parameter name {str(name)[:40]!r} is not a Python identifier; use letters, "
                "digits and _ (e.g. batch_size)."
            )
        _check_value(name, value)
    return params
