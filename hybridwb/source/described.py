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
"""

from __future__ import annotations

from typing import Any

from pymysql.connections import MySQLResult
from pymysql.protocol import MysqlPacket

#: distinct column descriptions a connection keeps (then it starts over)
MAX_DESCRIBED = 256


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

    def _get_descriptions(self) -> None:
        me: Any = self  # PyMySQL's attributes are untyped
        conn = me.connection
        read = conn._read_packet
        packets = [read()._data for _ in range(me.field_count)]
        eof = read()
        if not eof.is_eof_packet():
            raise AssertionError("Protocol error, expecting EOF")
        held = getattr(conn, "_hybridwb_described", None)
        how = (conn.decoders, conn.encoding, conn.use_unicode)
        if held is None or held[0] is not how[0] or held[1:3] != how[1:]:
            held = conn._hybridwb_described = (*how, {})  # parsed under these only
        cache: dict[tuple[bytes, ...], tuple[Any, Any, Any]] = held[3]
        key = tuple(packets)
        known = cache.get(key)
        if known is None:
            me.connection = _Replay(conn, [*packets, eof._data])
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
