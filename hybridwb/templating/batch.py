"""A renderer's batch form: many rows of one template in one call, as `one` renders each.

A run renders every target's message (`rendering.render_ahead`), one Python call per
message through `TemplateService.renderer`'s `one`. For the common template, text and
plain variables rendered without per-message warnings, the batch form does each step
for the whole batch at once: a column of values per variable (lists built by
comprehensions), the texts by one `str.format` per message (`!s`: `str()` of each value,
as `one` joins them), their EUC-KR sizes from one encode of the batch, and the messages
built by `map`. Anything else (an expression, a template Jinja renders, per-message
warnings) is rendered by calling `one` per row; so is a batch in which any step raises,
so that each row gives what `one` gives it, its error included, at its own position.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any

from hybridwb.templating import message, parse
from hybridwb.templating.service import _EXPRESSION, _FIELD, _RELATED, Rendered, _plan

#: what a renderer's `one` is called with and gives
One = Callable[[dict[str, Any], dict[str, Any] | None], Rendered]
#: the batch form: rows and their related rows -> each one's message or the error it raised
Many = Callable[[Sequence[dict[str, Any]], Sequence[dict[str, Any] | None]], list[Any]]

_NULLS = (None, "")
_new = object.__new__
_chars, _bytes = operator.itemgetter(0), operator.itemgetter(1)  # of a `Size`


def each(one: One, rows: Sequence[Any], rels: Sequence[Any]) -> list[Any]:
    """`one` for every row, an error kept at its row's position (the fallback)."""
    out: list[Any] = []
    for row, rel in zip(rows, rels, strict=True):
        try:
            out.append(one(row, rel))
        except Exception as exc:
            out.append(exc)
    return out


def batch_form(
    one: One,
    report: Any,
    parts: tuple[tuple[bool, str], ...] | None,
    *,
    mode: str,
    message_type: str,
    limits: dict[str, int] | None,
    warn: bool,
) -> Many:
    """The batch form of `one` (made by `TemplateService.renderer` with these arguments)."""

    def slow(rows: Sequence[Any], rels: Sequence[Any]) -> list[Any]:
        return each(one, rows, rels)

    if warn or parts is None:
        return slow
    try:
        plan = _plan(report)
    except Exception:
        return slow
    names = [name for name, *_ in plan]
    known = set(names)
    # what `_filler` joins with no check; else `one` renders some other way
    if any(kind == _EXPRESSION for _, kind, *_ in plan) or (
        parse.HASH_CONTEXT in known or any(is_name and p not in known for is_name, p in parts)
    ):
        return slow
    # a value is looked up by name in `one`: the last variable of that name holds it
    last = {name: i for i, name in enumerate(names)}
    shown = tuple(last[p] if is_name else None for is_name, p in parts)
    literals = tuple(p for is_name, p in parts if not is_name)
    build = _builder(len(names), shown) if names else None
    longest = message.max_chars(message_type, limits)
    most_bytes = message.byte_limit(message_type, limits)
    most_chars = message.CHAR_LIMITS.get(message_type)
    fallback_mode = mode == "fallback"
    keys = tuple(names)

    def fast(rows: Sequence[dict[str, Any]], rels: Sequence[Any]) -> list[Any]:
        n = len(rows)
        if len(rels) != n:
            raise ValueError("a batch's rows and related rows differ in number")
        cols: list[list[Any]] = []
        missing: dict[int, list[str]] = {}  # row -> its variables with no value, in order
        for name, kind, arg, formatter, fallback in plan:
            if kind == _FIELD:
                col = [row.get(arg) for row in rows]
            elif kind == _RELATED:
                col = [rel.get(arg) if rel else None for rel in rels]
            else:  # a constant (its value) or nothing to read (None)
                col = [arg] * n
            if formatter is not None:
                col = [v if v in _NULLS else formatter(v) for v in col]
            # `in` on a list compares as `in` on the tuple does (`==`, identity first)
            if not (None in col or "" in col):
                pass
            elif fallback is not None:
                col = [fallback if v in _NULLS else v for v in col]
            else:
                for i in [i for i, v in enumerate(col) if v in _NULLS]:
                    missing.setdefault(i, []).append(name)
                if fallback_mode:
                    col = ["" if v is None else v for v in col]
            cols.append(col)
        if build is None:  # no variables: the text alone
            values: list[dict[str, Any]] = [{} for _ in range(n)]
            texts = ["".join(literals)] * n
        else:
            values, texts = build(keys, literals, cols)
        skipped: dict[int, Rendered] = {}
        if missing and not fallback_mode:
            for i, gaps in missing.items():
                why = f"missing {', '.join(gaps)}"
                skipped[i] = Rendered(None, None, message_type, values[i], [], skipped=why)
        if texts and max(map(len, texts)) > longest:
            for i in [i for i, t in enumerate(texts) if len(t) > longest]:
                if i not in skipped:
                    skipped[i] = Rendered(
                        None, None, message_type, values[i], [], skipped="too long"
                    )
        live = [i for i in range(n) if i not in skipped] if skipped else range(n)
        if skipped:
            texts = [texts[i] for i in live]
            values = [values[i] for i in live]
        sizes = sizes_of(texts, limits)
        made = list(map(_new, repeat(Rendered, len(texts))))
        for r, text, size, vals in zip(made, texts, sizes, values, strict=True):
            # what `Rendered(text, size, message_type, vals)` sets, in its order
            r.text, r.size, r.message_type = text, size, message_type
            r.values, r.warnings, r.skipped = vals, [], None
        if sizes and (
            max(map(_bytes, sizes)) > most_bytes
            or (most_chars is not None and max(map(_chars, sizes)) > most_chars)
        ):
            for k, s in enumerate(sizes):
                if s[1] > most_bytes or (most_chars is not None and s[0] > most_chars):
                    reason = message.over_limit(s, message_type, limits)
                    if reason:
                        made[k] = Rendered(None, s, message_type, values[k], [], skipped=reason)
        if not skipped:
            return made
        out: list[Any] = [None] * n
        for i, rendered in zip(live, made, strict=True):
            out[i] = rendered
        for i, rendered in skipped.items():
            out[i] = rendered
        return out

    def many(rows: Sequence[dict[str, Any]], rels: Sequence[Any]) -> list[Any]:
        try:
            return fast(rows, rels)
        except Exception:  # a value, formatter or size that fails: each row as `one` does
            return each(one, rows, rels)

    return many


@functools.lru_cache(maxsize=128)
def _builder(count: int, shown: tuple[int | None, ...]) -> Callable[..., Any]:
    """`build(keys, literals, columns) -> (values, texts)` for `count` variables and a
    template whose pieces show, in order, variable `shown[i]` (None: the next literal):
    each row's `{key: value}` dict (as `one` builds it: a name given twice keeps its
    first place and its last value) and its text, each value as `str()` shows it (`!s`,
    as `one` joins `str(value)`). Compiled once per shape, as a comprehension over the
    columns: the source holds only generated names (`k0`, `v0`, `t0`, `c0`), never a
    template's text or a variable's name, which come in as arguments."""
    ks = "".join(f"k{i}, " for i in range(count))
    vs = "".join(f"v{i}, " for i in range(count))
    cs = "".join(f"c{i}, " for i in range(count))
    ts = "".join(f"t{j}, " for j in range(sum(i is None for i in shown)))
    pieces, lit = [], 0
    for i in shown:
        if i is None:
            pieces.append(f"{{t{lit}}}")
            lit += 1
        else:
            pieces.append(f"{{v{i}!s}}")
    display = ", ".join(f"k{i}: v{i}" for i in range(count))
    lines = [
        "def build(keys, literals, columns):",
        f"    {ks}= keys",
        f"    {ts}= literals" if ts else "",
        f"    {cs}= columns",
        f"    values = [{{{display}}} for {vs}in zip({cs})]",
        f"    texts = [f{''.join(pieces)!r} for {vs}in zip({cs})]",
        "    return values, texts",
    ]
    source = "\n".join(line for line in lines if line) + "\n"
    namespace: dict[str, Any] = {}
    exec(compile(source, "<hybridwb.templating.batch>", "exec"), namespace)
    return namespace["build"]


def sizes_of(texts: list[str], limits: dict[str, int] | None = None) -> list[message.Size]:
    """`euc_kr_size` of each text: from one encode of them all, joined by NUL (one byte in
    EUC-KR, and in no other character's bytes), when none holds a NUL, a character EUC-KR
    cannot encode or a syllable spelled as jamo; else text by text."""
    if not texts:
        return []
    joined = "\x00".join(texts)
    encoded: bytes | None = None
    if joined.count("\x00") == len(texts) - 1:
        try:
            encoded = message._encode(joined)[0]
        except UnicodeEncodeError:
            encoded = None
    if encoded is None or encoded.find(message._JAMO_FILLER) >= 0:
        return [message.euc_kr_size(t, limits) for t in texts]
    limits = message.LIMITS if limits is None else limits
    sms = limits.get("SMS", message.LIMITS["SMS"])
    lms = limits.get("LMS", message.LIMITS["LMS"])
    return [
        message._size((len(t), b, "SMS" if b <= sms else "LMS" if b <= lms else "too long", []))
        for t, b in zip(texts, map(len, encoded.split(b"\x00")), strict=True)
    ]
