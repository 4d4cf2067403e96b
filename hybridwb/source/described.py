"""PyMySQL results whose column descriptions are parsed once per distinct set of field packets.

Before a result's rows, the server sends one field packet per column (name, table, type,
character set, flags). PyMySQL parses each of them, on every statement, into a
`FieldDescriptorPacket`, a PEP 249 description and a (encoding, converter) pair: on a
search's page of five columns that is a third of the driver's own work, more than reading
the rows. A search sends the same few statements again and again, and the server describes
their columns with the very same bytes each time.

So `DescribedResult` reads the field packets as bytes and looks their parse up by those
exact bytes (and the connection's encoding and decoders): the same bytes parse the same,
so a hit is what parsing again would give; anything else (another column, a type changed
by an ALTER, another character set) is other bytes, parsed afresh. The parse is PyMySQL's
own (`MySQLResult._get_descriptions`, run on the packets read). Bounded per connection.

`FastPackets` is PyMySQL's packet reader with its two reads per packet written inline (the
same checks and errors). Both are mixed into the guarded connection class (rawguard.py), so
every PyMySQL read of the source uses them; mysqlclient parses in C and has neither.

A streamed read parses the row packets that lie whole in the read buffer where they lie, each
with a parser written out once per result shape (`row_parser`: one (encoding, converter)
pair per column), which gives what the generic `_row` gives, column by column without its
loop: on a run's reads of a few short columns, about a fifth less CPU per row
(`benchmarks/bench_row_parse.py`).
"""

from __future__ import annotations

import errno
import functools
import struct
from collections.abc import Callable
from typing import Any

import pymysql.cursors
from pymysql import err
from pymysql.connections import MAX_PACKET_LEN, MySQLResult
from pymysql.constants import CR
from pymysql.protocol import MysqlPacket

#: distinct column descriptions a connection keeps (then it starts over)
MAX_DESCRIBED = 256
#: row parsers kept, one per result shape (distinct (encoding, converter) pairs)
MAX_ROW_PARSERS = 128

#: parses the row packet `buf[pos:stop]` (as `_row`)
RowParser = Callable[[bytes, int, int], tuple[Any, ...] | None]


class _Replay:
    """Stands for the connection while PyMySQL's own parse runs over packets already read."""

    __slots__ = ("_conn", "_packets")

    def __init__(self, conn: Any, packets: list[bytes]) -> None:
        self._conn = conn
        self._packets = iter(packets)

    def _read_packet(self, packet_type: Any = MysqlPacket) -> Any:
        return packet_type(next(self._packets), self._conn.encoding)

    def __getattr__(self, name: str) -> Any:  # use_unicode, encoding, decoders
        return getattr(self._conn, name)


class DescribedResult(MySQLResult):
    """`MySQLResult` with its column descriptions looked up by their packets' bytes."""

    def _finish_unbuffered_query(self) -> None:
        """A streamed result still active when its connection is gone (killed, closed
        after a reply out of sequence) has nothing left to drain. PyMySQL's own reads
        from the closed socket: an AttributeError from `SSCursor.close`, or "Exception
        ignored" in the analyst's output from `__del__`, whenever the collector runs."""
        me: Any = self
        conn = me.connection
        if me.unbuffered_active and (conn is None or getattr(conn, "_rfile", None) is None):
            me.unbuffered_active = False
            return
        MySQLResult._finish_unbuffered_query(me)

    def read_rows(self, size: int) -> list[tuple[Any, ...]]:
        """At most `size` rows of a streamed result: what `size` calls of PyMySQL's
        `_read_rowdata_packet_unbuffered` give (the same packets, values, errors, end of
        result and state after it), in one loop.

        Whole row packets already in the connection's read buffer are parsed where they
        lie (`_buffered_rows`), then taken from the buffer at once; a packet that is not a
        plain row (an error, the end, a value of 251 bytes or more, a packet cut by the
        buffer's end) is read and parsed by PyMySQL's own code, one at a time."""
        me: Any = self
        if not me.unbuffered_active:
            return []
        conn = me.connection
        parse = _parser_for(me.converters)
        rows: list[tuple[Any, ...]] = []
        while len(rows) < size:
            if _buffered_rows(conn, parse, rows, size):
                continue
            packet = MysqlPacket(_packet_data(conn), conn.encoding)
            if packet.is_error_packet():
                _raise_error_packet(conn, packet)
            if me._check_packet_is_eof(packet):
                me.unbuffered_active = False
                me.connection = None
                me.rows = None
                break
            rows.append(me._read_row_from_packet(packet))
        if rows:
            me.affected_rows = 1
            if me.unbuffered_active:  # at the end PyMySQL leaves None
                me.rows = (rows[-1],)
        return rows

    def _get_descriptions(self) -> None:
        me: Any = self  # PyMySQL's attributes are untyped
        conn = me.connection
        # the field packets and the EOF after them, taken from the read buffer at once
        # when they lie whole in it; else read one by one, as PyMySQL reads them
        whole = _buffered_packets(conn, me.field_count + 1) if _reads_inline(conn) else None
        if whole is None:
            read = conn._read_packet
            whole = [read()._data for _ in range(me.field_count + 1)]
        packets, eof = whole[:-1], whole[-1]
        if not (eof[0] == 0xFE and len(eof) < 9):  # PyMySQL's `is_eof_packet`
            raise AssertionError("Protocol error, expecting EOF")
        held = getattr(conn, "_hybridwb_described", None)
        how = (conn.decoders, conn.encoding, conn.use_unicode)
        if held is None or held[0] is not how[0] or held[1:3] != how[1:]:
            held = conn._hybridwb_described = (*how, {})  # parsed under these only
        cache: dict[tuple[bytes, ...], tuple[Any, Any, Any]] = held[3]
        key = tuple(packets)
        known = cache.get(key)
        if known is None:
            me.connection = _Replay(conn, [*packets, eof])
            try:
                MySQLResult._get_descriptions(me)
            finally:
                me.connection = conn
            if len(cache) >= MAX_DESCRIBED:
                cache.clear()
            cache[key] = (tuple(me.fields), tuple(me.converters), me.description)
            return
        fields, converters, me.description = known
        me.fields = list(fields)
        me.converters = list(converters)


class StreamCursor(pymysql.cursors.SSCursor):
    """PyMySQL's streaming cursor whose `fetchmany` reads its rows in one loop
    (`DescribedResult.read_rows`): the same rows, warnings and row count as PyMySQL's
    row-at-a-time loop, without its four calls and a packet object per row."""

    def fetchmany(self, size: int | None = None) -> Any:
        result = self._result
        if not isinstance(result, DescribedResult) or not _reads_inline(result.connection):
            return super().fetchmany(size)
        self._check_executed()
        if size is None:
            size = self.arraysize
        rows = result.read_rows(size)
        self.rownumber += len(rows)
        if len(rows) < size:  # the result ended here (or had ended): as PyMySQL's loop
            self.warning_count = result.warning_count
        return rows or ()


def _reads_inline(conn: Any) -> bool:
    """Whether `conn` reads its packets as `FastPackets` does (not replaced on the class
    or the instance): the inline row loop reads them that way."""
    return (
        conn is not None
        and type(conn)._read_packet is FastPackets._read_packet
        and "_read_packet" not in vars(conn)
    )


def _buffered_rows(conn: Any, parse: RowParser, rows: list[tuple[Any, ...]], size: int) -> int:
    """Parse the plain row packets that lie whole in `conn`'s read buffer into `rows`
    (until it holds `size`), take their bytes from the buffer and return how many; 0 when
    the next packet is not such a row (or nothing is buffered)."""
    rfile = conn._rfile
    if rfile is None or conn._current_timeout != conn._read_timeout:
        return 0
    try:
        buf = rfile.peek(4)  # what the buffer holds (a socket read only when it is empty)
    except OSError as exc:
        _after_read_error(conn, exc, 0)
        return 0
    except BaseException:
        conn._force_close()
        raise
    pos, end, seq, taken = 0, len(buf), conn._next_seq_id, 0
    add = rows.append
    while pos + 5 <= end and len(rows) < size:
        length = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
        stop = pos + 4 + length
        if buf[pos + 3] != seq or length == 0 or stop > end or buf[pos + 4] >= 0xFE:
            break  # out of sequence, empty, cut, an error or the end: PyMySQL's code
        row = parse(buf, pos + 4, stop)
        if row is None:
            break
        add(row)
        pos, seq, taken = stop, (seq + 1) % 256, taken + 1
    if taken:
        rfile.read(pos)  # those packets' bytes, from the buffer
        conn._next_seq_id = seq
    return taken


def _buffered_packets(conn: Any, count: int) -> list[bytes] | None:
    """The payloads of the next `count` packets when all of them lie whole in `conn`'s
    read buffer, in sequence, none an error packet: taken from the buffer at once. Else
    None, and nothing is taken (PyMySQL's reads then read them, raising what they raise)."""
    rfile = conn._rfile
    if rfile is None or conn._current_timeout != conn._read_timeout:
        return None
    try:
        buf = rfile.peek(4)  # what the buffer holds (a socket read only when it is empty)
    except OSError as exc:
        _after_read_error(conn, exc, 0)
        return None
    except BaseException:
        conn._force_close()
        raise
    pos, end, seq = 0, len(buf), conn._next_seq_id
    out: list[bytes] = []
    while len(out) < count:
        if pos + 5 > end:
            return None
        length = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
        stop = pos + 4 + length
        if buf[pos + 3] != seq or length == 0 or stop > end or buf[pos + 4] == 0xFF:
            return None
        out.append(buf[pos + 4 : stop])
        pos, seq = stop, (seq + 1) % 256
    rfile.read(pos)  # those packets' bytes, from the buffer
    conn._next_seq_id = seq
    return out


def _row(
    buf: bytes, pos: int, stop: int, converters: list[tuple[Any, Any]]
) -> tuple[Any, ...] | None:
    """The values of the text-protocol row packet `buf[pos:stop]`, as PyMySQL's
    `_read_row_from_packet` gives them, when each is NULL or shorter than 251 bytes; else
    None (PyMySQL's own code reads that row: a long value, a value cut short)."""
    out: list[Any] = []
    add = out.append
    for encoding, converter in converters:
        if pos >= stop:  # PyMySQL: no more columns in this row (its IndexError)
            break
        length = buf[pos]
        if length < 251:
            end = pos + 1 + length
            if end > stop:
                return None
            value: Any = buf[pos + 1 : end]
            pos = end
        elif length == 251:  # NULL
            pos += 1
            add(None)
            continue
        else:
            return None
        if encoding is not None:
            value = value.decode(encoding)
        if converter is not None:
            value = converter(value)
        add(value)
    return tuple(out)


def _parser_for(converters: list[tuple[Any, Any]]) -> RowParser:
    """The row parser for a result's `converters`: `row_parser`'s, or `_row` itself when a
    converter cannot be a cache key (one that cannot be hashed)."""
    try:
        return row_parser(tuple(converters))
    except TypeError:
        return functools.partial(_row, converters=converters)


@functools.lru_cache(maxsize=MAX_ROW_PARSERS)
def row_parser(converters: tuple[tuple[Any, Any], ...]) -> RowParser:
    """`_row` for results of this shape, written out column by column: each column's
    decode and converter call is there only when it has one, and no loop, pair or list is
    left to run per row. The same checks in the same order, so the same values, None and
    errors (`_row` stays the reference the tests compare it with).

    The source names only `e0`, `c0`, ...: the encodings and converters are bound as the
    function's defaults, never written into its text. Cached by the pairs (a converter
    compares by identity: a function, a type)."""
    args = ["buf", "pos", "stop"]
    lines: list[str] = []
    last = len(converters) - 1
    for i, (encoding, converter) in enumerate(converters):
        value = "buf[pos:end]"
        if encoding is not None:
            args.append(f"e{i}=e{i}")
            value = f"{value}.decode(e{i})"
        if converter is not None:
            args.append(f"c{i}=c{i}")
            value = f"c{i}({value})"
        done = ", ".join(f"v{j}" for j in range(i))
        lines += [
            "    if pos >= stop:",
            f"        return ({done}{',' if i == 1 else ''})",
            "    n = buf[pos]",
            "    if n < 251:",
            "        pos += 1",
            "        end = pos + n",
            "        if end > stop:",
            "            return None",
            f"        v{i} = {value}",
        ]
        if i < last:
            lines += [
                "        pos = end",
                "    elif n == 251:",
                f"        v{i} = None",
                "        pos += 1",
            ]
        else:
            lines += ["    elif n == 251:", f"        v{i} = None"]
        lines += ["    else:", "        return None"]
    done = ", ".join(f"v{j}" for j in range(len(converters)))
    lines.append(f"    return ({done}{',' if len(converters) == 1 else ''})")
    source = f"def parse({', '.join(args)}):\n" + "\n".join(lines) + "\n"
    bound: dict[str, Any] = {}
    for i, (encoding, converter) in enumerate(converters):
        bound[f"e{i}"], bound[f"c{i}"] = encoding, converter
    space: dict[str, Any] = {}
    exec(compile(source, f"<row parser of {len(converters)} columns>", "exec"), bound, space)
    parse: RowParser = space["parse"]
    return parse


class FastPackets:
    """PyMySQL's `_read_packet` with its two `_read_bytes` calls per packet written inline
    (a statement reads nine packets or so: the column count, the columns, the rows, two EOF
    packets). The same reads, checks and errors, in the same order; a packet of 16 MB or
    more (several on the wire) and an interrupted read are left to PyMySQL's own code."""

    def _read_packet(self, packet_type: Any = MysqlPacket) -> Any:
        me: Any = self  # a PyMySQL connection (this class is mixed into one)
        packet = packet_type(_packet_data(me), me.encoding)
        if packet.is_error_packet():
            _raise_error_packet(me, packet)
        return packet


def _packet_data(me: Any) -> bytes:
    """The next packet's payload, as PyMySQL's `_read_packet` reads it (before it wraps
    the bytes in a packet object)."""
    if me._current_timeout != me._read_timeout:
        me._sock.settimeout(me._read_timeout)
        me._current_timeout = me._read_timeout
    rfile = me._rfile
    try:
        header = rfile.read(4)
    except OSError as exc:
        header = _after_read_error(me, exc, 4)
    except BaseException:
        me._force_close()
        raise
    if len(header) < 4:
        _lost(me)
    size = header[0] | header[1] << 8 | header[2] << 16
    number = header[3]
    if number != me._next_seq_id:
        me._force_close()
        if number == 0:  # MariaDB sends error packet with seqno==0 when shutdown
            raise err.OperationalError(
                CR.CR_SERVER_LOST, "Lost connection to MySQL server during query"
            )
        raise err.InternalError(
            f"Packet sequence number wrong - got {number} expected {me._next_seq_id}"
        )
    me._next_seq_id = (number + 1) % 256
    try:
        data = rfile.read(size)
    except OSError as exc:
        data = _after_read_error(me, exc, size)
    except BaseException:
        me._force_close()
        raise
    if len(data) < size:
        _lost(me)
    if size >= MAX_PACKET_LEN:  # more packets follow: PyMySQL's own loop reads them
        data = _rest_of_packet(me, data)
    return data


def _raise_error_packet(me: Any, packet: Any) -> None:
    if me._result is not None and me._result.unbuffered_active is True:
        me._result.unbuffered_active = False
    packet.raise_for_error()


def _after_read_error(conn: Any, exc: OSError, size: int) -> bytes:
    """What PyMySQL's `_read_bytes` does when a read raised `exc`: read again after an
    interruption; else drop the connection and say it was lost."""
    if exc.errno == errno.EINTR:
        return bytes(conn._read_bytes(size))
    conn._force_close()
    raise err.OperationalError(
        CR.CR_SERVER_LOST, f"Lost connection to MySQL server during query ({exc})"
    )


def _lost(conn: Any) -> None:
    conn._force_close()
    raise err.OperationalError(CR.CR_SERVER_LOST, "Lost connection to MySQL server during query")


def _rest_of_packet(conn: Any, first: bytes) -> bytes:
    """The packets after a packet of MAX_PACKET_LEN bytes, joined to it (PyMySQL's loop)."""
    buff = [first]
    while True:
        header = conn._read_bytes(4)
        btrl, btrh, number = struct.unpack("<HBB", header)
        size = btrl + (btrh << 16)
        if number != conn._next_seq_id:
            conn._force_close()
            if number == 0:
                raise err.OperationalError(
                    CR.CR_SERVER_LOST, "Lost connection to MySQL server during query"
                )
            raise err.InternalError(
                f"Packet sequence number wrong - got {number} expected {conn._next_seq_id}"
            )
        conn._next_seq_id = (conn._next_seq_id + 1) % 256
        buff.append(conn._read_bytes(size))
        if size < MAX_PACKET_LEN:
            return b"".join(buff)
