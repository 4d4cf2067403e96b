"""The row parsers specialised per result shape (`described.row_parser`) parse a text-protocol
row packet exactly as the generic `described._row` does (the reference: same values, the
same None where PyMySQL's own code must read the row, the same error), and where `_row`
gives values they are PyMySQL's own (`MySQLResult._read_row_from_packet`, the independent
oracle).

Generated packets: 0-40 columns of every mix of encoding (None, utf8, latin1, ascii) and
converter (None, int, float, Decimal, PyMySQL's date and datetime converters, one that
raises), values of 0-250 bytes (digits, dates, multi-byte and invalid text), NULLs, the
length bytes 252-255, rows cut short at every offset, rows with fewer columns than
converters, trailing bytes, and bytes after the packet in the buffer. No database.
"""

from __future__ import annotations

import itertools
import random
from decimal import Decimal
from typing import Any

import pytest
from pymysql.connections import MySQLResult
from pymysql.converters import convert_date, convert_datetime
from pymysql.protocol import MysqlPacket

from hybridwb.source import described


def _raises(value: Any) -> Any:
    """A converter that fails on some values (saying which) and passes the others."""
    if len(value) % 3 == 1:
        raise LookupError(f"refused {value!r}")
    return ("kept", value)


_ENCODINGS = [None, "utf8", "latin1", "ascii"]
_CONVERTERS = [None, int, float, Decimal, convert_date, convert_datetime, _raises]
_SHAPES = list(itertools.product(_ENCODINGS, _CONVERTERS))

#: values a column may hold: what the server sends for each kind, and what breaks a decode
#: or a converter (invalid utf8, latin1-only bytes, junk for a number or a date)
_VALUES = [
    b"",
    b"0",
    b"12",
    b"-2147483648",
    b"3.25",
    b"1e308",
    b"2026-12-05",
    b"2026-12-05 01:02:03.000042",
    b"0000-00-00",
    b"nan",
    b"caf\xc3\xa9 \xed\x95\x9c",
    b"caf\xe9",
    b"\xff\xfe",
    b" 7 ",
    b"x" * 250,
    b"9" * 249,
]


def _outcome(parse: Any, *args: Any) -> tuple[str, Any]:
    """What a parse gives: its row (or None), or the error it raised (type and args)."""
    try:
        return "row", parse(*args)
    except Exception as exc:  # the error is the outcome compared
        return "error", (type(exc), exc.args)


def _pymysql_row(data: bytes, converters: list[tuple[Any, Any]]) -> tuple[str, Any]:
    """PyMySQL's own parse of the row packet `data`."""
    result = MySQLResult.__new__(MySQLResult)
    result.unbuffered_active = False  # read by its `__del__`
    result.converters = converters
    return _outcome(result._read_row_from_packet, MysqlPacket(data, "utf8"))


def _cell(rng: random.Random) -> bytes:
    """One column of a row packet: a NULL, a value of 0-250 bytes or (rarely) a length byte
    of 252-255 that PyMySQL's code reads."""
    roll = rng.random()
    if roll < 0.15:
        return b"\xfb"
    if roll < 0.20:
        marker = rng.randrange(252, 256)
        return bytes([marker]) + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 12)))
    if roll < 0.75:
        value = rng.choice(_VALUES)
    else:
        value = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 251)))
    return bytes([len(value)]) + value


def _check(buf: bytes, pos: int, stop: int, converters: list[tuple[Any, Any]], parse: Any) -> str:
    """The specialised parse gives what `_row` gives; where that is a row, PyMySQL gives it
    too. Returns which it was (to check the cases were all reached)."""
    want = _outcome(described._row, buf, pos, stop, converters)
    got = _outcome(parse, buf, pos, stop)
    assert repr(got) == repr(want), (buf[pos:stop], converters)  # repr: nan is not nan
    if want[0] == "row" and want[1] is None:
        return "none"
    pymysql = _pymysql_row(buf[pos:stop], converters)
    assert repr(want) == repr(pymysql), (buf[pos:stop], converters)
    return "error" if want[0] == "error" else "row"


def _packets(rng: random.Random, columns: int) -> list[bytes]:
    """Row packets for `columns` converters: whole rows, rows with fewer columns, rows with
    trailing bytes."""
    cells = [_cell(rng) for _ in range(columns)]
    whole = b"".join(cells)
    out = [whole]
    if columns:
        out.append(b"".join(cells[: rng.randrange(columns)]))  # fewer columns
    out.append(whole + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5))))
    return out


@pytest.mark.parametrize("seed", range(3))
def test_a_specialised_parser_gives_what_the_generic_row_gives(seed: int) -> None:
    """400 random shapes of 0-40 columns per seed, three packets each, every one parsed
    whole and cut short at every offset (or at 40 offsets when longer), with bytes before
    and after the packet in the buffer."""
    rng = random.Random(seed)
    seen: dict[str, int] = {"row": 0, "none": 0, "error": 0}
    for _ in range(400):
        columns = rng.choice([0, 1, 2, 3, 4, 5, 6, rng.randrange(7, 41)])
        converters = [rng.choice(_SHAPES) for _ in range(columns)]
        parse = described.row_parser(tuple(converters))
        for packet in _packets(rng, columns):
            head = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 6)))
            tail = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
            buf = head + packet + tail
            pos = len(head)
            cuts = range(len(packet) + 1)
            if len(packet) > 40:
                cuts = sorted({len(packet), *rng.sample(cuts, 40)})
            for cut in cuts:
                seen[_check(buf, pos, pos + cut, converters, parse)] += 1
    assert min(seen.values()) > 100, seen


@pytest.mark.parametrize(
    "first", _SHAPES, ids=lambda s: f"{s[0]}-{getattr(s[1], '__name__', s[1])}"
)
def test_every_pair_of_column_shapes_on_every_value(first: tuple[Any, Any]) -> None:
    """Two columns, `first` and each shape, every value (and NULL, a long marker) in each,
    each packet also cut around each column's edges and followed by bytes."""
    cells = [b"\xfb", b"\xfc\x01\x01", b"\xfa" + b"z" * 250] + [
        bytes([len(v)]) + v for v in _VALUES
    ]
    for second in _SHAPES:
        converters = [first, second]
        parse = described.row_parser((first, second))
        for a, b in itertools.product(cells, repeat=2):
            packet = a + b
            buf = b"\x00" + packet + b"\x05abcde"
            ends = (0, len(a), len(packet))  # cut just before, at and after each cell's edge
            for cut in {c + d for c in ends for d in (-2, -1, 0, 1, 2)} & {*range(len(packet) + 1)}:
                _check(buf, 1, 1 + cut, converters, parse)
            _check(buf, 1, len(buf), converters, parse)  # trailing bytes


def test_the_length_bytes_from_the_null_marker_up() -> None:
    """Each first byte 250-255 as the first, middle and last column, with enough bytes after
    it that reading a marker as a length would still end inside the row."""
    converters = [("utf8", None), (None, None), ("ascii", int)]
    parse = described.row_parser(tuple(converters))
    for marker, where in itertools.product(range(250, 256), range(3)):
        cells = [b"\x01a", b"\x02bc", b"\x0212"]
        cells[where] = bytes([marker]) + b"7" * 260
        packet = b"".join(cells)
        _check(packet, 0, len(packet), converters, parse)
        if marker >= 252:
            assert parse(packet, 0, len(packet)) is None


def test_a_parser_holds_no_encoding_or_converter_in_its_code() -> None:
    """The encodings and converters are bound, not written into the parser's source: an
    encoding that reads like code is only an unknown encoding (the same LookupError)."""
    odd = "utf8'), __import__('os').getpid(), ('"
    converters = [(odd, None), ("utf8", _raises)]
    parse = described.row_parser(tuple(converters))
    consts = repr(parse.__code__.co_consts)
    assert "utf8" not in consts and "_raises" not in consts
    assert parse.__code__.co_names == ("decode",)
    _check(b"\x01a\x02bc", 0, 5, converters, parse)
    assert _outcome(parse, b"\x01a\x02bc", 0, 5)[1][0] is LookupError


def test_parsers_are_cached_per_shape_and_bounded() -> None:
    shape = (("utf8", None), ("ascii", int))
    assert described.row_parser(shape) is described.row_parser(tuple(map(tuple, shape)))
    assert described.row_parser(shape) is not described.row_parser(shape[:1])
    assert described.row_parser.cache_info().maxsize == described.MAX_ROW_PARSERS


def test_a_converter_that_cannot_be_hashed_is_parsed_by_the_generic_row() -> None:
    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        def __call__(self, value: str) -> str:
            return value.upper()

    converters = [("utf8", Unhashable()), (None, None)]
    parse = described._parser_for(converters)
    assert parse(b"\x02ab\x01c", 0, 5) == ("AB", b"c")
    _check(b"\x02ab\x01c", 0, 5, converters, parse)
