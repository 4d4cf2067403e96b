"""Bound parameters (pure): every bind the query names has a value a driver can send."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping
from typing import Any

from hybridwb.errors import BindError

BIND_TYPES = (str, int, float, bool, decimal.Decimal, dt.date, dt.datetime, dt.time, bytes)


def check_params(names: set[str], params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Each bind the query uses must have a value of a type a driver can send."""
    params = dict(params or {})
    missing = sorted(names - params.keys())
    if missing:
        raise BindError(
            f"The query uses :{missing[0]} but no value was given; "
            f"pass params={{'{missing[0]}': ...}}.",
            name=missing[0],
        )
    unused = sorted(params.keys() - names)
    if unused:
        raise BindError(
            f"Parameter {unused[0]!r} is not used by the query; remove it or add :{unused[0]}.",
            name=unused[0],
        )
    for name, value in params.items():
        items = value if isinstance(value, list | tuple | set | frozenset) else [value]
        for item in items:
            if item is not None and not isinstance(item, BIND_TYPES):
                raise BindError(
                    f"Parameter {name!r} is a {type(item).__name__}; "
                    "bind a str, number, date, or a list of them.",
                    name=name,
                )
        if isinstance(value, set | frozenset | tuple):
            params[name] = list(value)
        if isinstance(value, list | set | frozenset | tuple) and not value:
            raise BindError(f"Parameter {name!r} is an empty list; IN () matches nothing.")
    return params
