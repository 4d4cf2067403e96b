"""One call of a store method failing once: the fault most attack rounds on run periods
inject (the store unreachable at one step, or the answer to a write that was applied lost)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hybridwb.errors import ConnectionFailed


def fail_once(
    monkeypatch: pytest.MonkeyPatch,
    owner: Any,
    name: str,
    *,
    armed: bool = True,
    applied: bool = False,
    error: Callable[[], BaseException] | None = None,
) -> dict[str, int]:
    """`owner.name`'s first call fails with `ConnectionFailed` (or `error()`), after doing
    its work when `applied` (its answer lost); later calls work, as does every call when
    not `armed` (a control). Returns the count of calls, `{"n": ...}`."""
    real = getattr(owner, name)
    calls = {"n": 0}

    def once(self: Any, *a: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if armed and calls["n"] == 1:
            if applied:
                real(self, *a, **kw)
            raise error() if error is not None else ConnectionFailed("the store is unreachable")
        return real(self, *a, **kw)

    monkeypatch.setattr(owner, name, once)
    return calls


def down_while(flag: Callable[[], bool], real: Callable[..., Any]) -> Callable[..., Any]:
    """A stand-in for the store method `real`: `ConnectionFailed` while `flag()` is true
    (the store down), else `real` itself."""

    def method(self: Any, *a: Any, **kw: Any) -> Any:
        if flag():
            raise ConnectionFailed("the store is unreachable")
        return real(self, *a, **kw)

    return method
