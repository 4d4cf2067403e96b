"""The two MySQL drivers hybridwb runs on: PyMySQL (the default, pure Python) and mysqlclient
(the `mysqlclient` extra, a C extension over libmariadb/libmysqlclient, several times faster
at turning rows into Python values).

Both give the same guarantees because both are used the same way (engine.py, execute.py):
`cursor.mogrify(text, params)` returns the exact statement the driver would send (values
escaped by the connection itself), the guard checks that text, and it is executed with *no*
parameters, so neither driver interpolates anything after the check. The rest of the
read-only machinery uses only the DB-API surface both share (`cursor()`, `execute`,
`fetchmany`, an unbuffered `SSCursor`, `thread_id()`); where PyMySQL offers more (writing
the `COM_RESET_CONNECTION` command without waiting), mysqlclient's connection is reset by the
C library's `mysql_reset_connection`, waiting, or dropped when that cannot be done.

A driver is chosen by the URL: `mysql+pymysql://` or `mysql+mysqldb://`.
"""

from __future__ import annotations

import ctypes
import functools
import os
import select
import struct
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pymysql
import pymysql.constants.COMMAND
import pymysql.constants.SERVER_STATUS
from pymysql.connections import MAX_PACKET_LEN
from pymysql.constants import FIELD_TYPE
from pymysql.protocol import OKPacketWrapper

from hybridwb.source import described

#: SQLAlchemy driver name -> the DB-API module it loads
MODULE_OF = {"pymysql": "pymysql", "mysqldb": "MySQLdb"}


def errors(*extra: type[BaseException]) -> tuple[type[BaseException], ...]:
    """The driver error base classes of every driver loaded in this process (after `extra`,
    other classes the caller catches alongside them).

    mysqlclient is optional: its classes are in the tuple once an engine has imported it
    (nothing can raise them before that)."""
    found: tuple[type[BaseException], ...] = (*extra, pymysql.err.Error)
    mysqldb = sys.modules.get("MySQLdb")
    if mysqldb is not None:
        found += (mysqldb.Error,)
    return found


def interface_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean the client side of the connection is unusable."""
    found: tuple[type[BaseException], ...] = (pymysql.err.InterfaceError,)
    mysqldb = sys.modules.get("MySQLdb")
    if mysqldb is not None:
        found += (mysqldb.InterfaceError,)
    return found


def operational_errors() -> tuple[type[BaseException], ...]:
    found: tuple[type[BaseException], ...] = (pymysql.err.OperationalError,)
    mysqldb = sys.modules.get("MySQLdb")
    if mysqldb is not None:
        found += (mysqldb.OperationalError,)
    return found


def unbuffered_cursor(raw: Any) -> Any:
    """An unbuffered (server-streaming) cursor on a raw connection of either driver."""
    if isinstance(raw, pymysql.connections.Connection):
        streaming = isinstance(raw, described.FastPackets)  # hybridwb's guarded connection
        return raw.cursor(described.StreamCursor if streaming else pymysql.cursors.SSCursor)
    mysqldb_cursors = sys.modules["MySQLdb.cursors"]
    return raw.cursor(mysqldb_cursors.SSCursor)


def send_only(raw: Any, sql: str, *, reset: bool = False) -> bool:
    """Write `sql` to the server without waiting for its reply; `read_reply` reads it.

    The server runs the statement while the client does other work, and the reply waits in
    the socket. False when the connection is in no state to send (closed, or a streamed
    result still being read): nothing was sent then. Driver errors propagate.

    `reset`: COM_RESET_CONNECTION goes first (`read_reply(raw, reset=True)` reads both
    replies): it drops what server code left on the session that no SET names (temporary
    tables that shadow base tables, user variables, any session variable). On PyMySQL both
    commands leave in one write. mysqlclient has no call that sends the command without
    waiting: on a plain socket (no TLS, no compression) hybridwb writes the command's five
    bytes to it itself and reads the OK itself before the driver reads the SET's reply
    (`_plain_socket`); otherwise the C library's `mysql_reset_connection` runs to its end
    first, then the SET is sent."""
    if reset and not isinstance(raw, pymysql.connections.Connection):
        if not _plain_socket(raw):
            reset_native(raw)
            return _send(raw, sql)
        _write_all(raw.fileno(), _RESET_PACKET + _role_packet(raw))
        raw._hybridwb_reset_owed = True  # its OK is read from the socket (`read_reply`)
        sent = False
        try:
            sent = _send(raw, sql)
        finally:
            if not sent:  # a reset's reply owed and no SET behind it: not used again
                owed_reply(raw)
        return sent
    return _send(raw, sql, reset)


def _plain_socket(raw: Any) -> bool:
    """mysqlclient: whether the connection's packets go as they are on its socket (no TLS,
    no compression) and nothing is being read on it (`next_result()`: no I/O, out of sync
    unless the connection is ready), so a command written to the socket by hybridwb, and
    its OK read back by hybridwb before the driver reads anything, is framed as the driver
    would frame it. False when that cannot be told."""
    try:
        raw.next_result()
        handle = _capsule_pointer(raw._get_native_connection())
        library = _native_library()
        if library.mysql_get_ssl_cipher(handle) is not None:
            return False
        compressed = ctypes.c_char(1)
        if library.mysql_get_optionv(handle, _MYSQL_OPT_COMPRESS, ctypes.byref(compressed)):
            return False
        return compressed.value == b"\x00"
    except Exception:
        return False


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


def _read_exact(fd: int, n: int) -> bytes:
    """`n` bytes from the socket, waiting at most `_REPLY_WAIT` seconds for each part."""
    out = b""
    while len(out) < n:
        ready, _, _ = select.select([fd], [], [], _REPLY_WAIT)
        part = os.read(fd, n - len(out)) if ready else b""
        if not part:  # closed by the server, or no answer at all
            raise ResetFailed("the server did not answer the connection's reset")
        out += part
    return out


def _read_reset_ok(raw: Any) -> None:
    """mysqlclient: the reset's reply, read from the socket by hybridwb (`send_only`): an
    OK packet, sequence number 1. An error packet raises `ResetFailed` after the SET's reply
    is read by the driver too; a reply out of step closes the connection first."""
    raw._hybridwb_reset_owed = False
    fd = raw.fileno()
    refused = False
    for _ in range(2 if _role_packet(raw) else 1):  # the reset's OK, then the role's
        header = _read_exact(fd, 4)
        payload = _read_exact(fd, int.from_bytes(header[:3], "little"))
        if header[3] != 1 or payload[:1] not in (b"\x00", b"\xff"):
            raw.close()
            raise ResetFailed("the reply to the connection's reset was out of step")
        refused = refused or payload[:1] != b"\x00"
    raw.read_query_result()  # the SET's reply, read by the driver
    if refused:
        raise ResetFailed("the server refused to reset the connection")


def run_own(raw: Any, sql: str) -> bool:
    """Send one of hybridwb's own statements that answers OK (the session SET) and wait for
    that OK, with no cursor: what a cursor sends and reads, for a fraction of its CPU.
    False when the connection is in no state to send (nothing was sent: take a cursor);
    the server's error raises, as from a cursor. Interrupted between the write and the
    read (KeyboardInterrupt), the connection is closed (`owed_reply`)."""
    try:
        if not _send(raw, sql):
            return False
        read_reply(raw)
    except Exception:
        raise
    except BaseException:
        owed_reply(raw)
        raise
    return True


def owed_reply(raw: Any) -> None:
    """Close a connection left owing a reply (an interrupt between a command's write and
    its reply's read): the next commands would read their replies one late. The checkin
    then sends nothing on it, and the pool replaces it. Before (round 48): the checkin sent
    the reset and the SET behind the owed OK, the checkout took the owed OK for the
    reset's, and only `quiet()`, a poll racing the last OK, kept the next read from taking
    that OK for its result: it returned no rows, silently."""
    try:
        if isinstance(raw, pymysql.connections.Connection):
            raw._force_close()
        else:
            raw.close()
    except Exception:  # already closed: nothing owed on it any more
        return


def _send(raw: Any, sql: str, reset: bool = False) -> bool:
    if isinstance(raw, pymysql.connections.Connection):
        result = raw._result
        if raw._sock is None or (
            result is not None and (result.unbuffered_active or result.has_next)
        ):
            return False
        # what `_execute_command` writes, made once; after a reset packet when asked for
        raw._write_bytes(
            _RESET_PACKET + _role_packet(raw) + _query_packet(sql) if reset else _query_packet(sql)
        )
        raw._next_seq_id = 1
        return True
    send = getattr(raw, "send_query", None)  # mysqlclient: mysql_send_query
    if send is None:
        return False
    send(sql.encode("ascii"))  # hybridwb's own SET: ASCII
    return True


#: COM_RESET_CONNECTION (MySQL 5.7.3+, MariaDB 10.2.4+) as PyMySQL's `_execute_command`
#: would write it: a one-byte payload, sequence number 0
COM_RESET_CONNECTION = 0x1F
_RESET_PACKET = struct.pack("<iB", 1, COM_RESET_CONNECTION)


#: where a connection keeps the `SET ROLE` that puts back its login's role (`remember_role`)
_ROLE_ATTR = "_hybridwb_role_sql"


def remember_role(raw: Any, role: str | None, roles_granted: bool) -> None:
    """After the login: the statement that puts the login's role back (`SET ROLE r`, or
    `SET ROLE NONE`) follows every COM_RESET_CONNECTION on this connection, when the
    account has roles granted. MariaDB's reset keeps the security context: an INVOKER
    function's `SET ROLE` outlived it, and the pool's next reads on the connection ran
    with the role's privileges (round 48). An account with no role can set none."""
    sql = None
    if roles_granted:
        sql = "SET ROLE NONE" if role is None else "SET ROLE `" + role.replace("`", "``") + "`"
    setattr(raw, _ROLE_ATTR, sql)


def _role_sql(raw: Any) -> str | None:
    return getattr(raw, _ROLE_ATTR, None)


def _role_packet(raw: Any) -> bytes:
    """The COM_QUERY packet of `_role_sql` (utf-8: the handshake's character set is
    utf8mb4, and the reset puts the session back to it), or b"" when there is none."""
    sql = _role_sql(raw)
    return b"" if sql is None else _utf8_packet(sql)


@functools.lru_cache(maxsize=16)
def _utf8_packet(sql: str) -> bytes:
    return _command_packet(sql.encode("utf-8"))


def restore_role(raw: Any) -> None:
    """Right after a reset that waited (PyMySQL's `_read_ok_packet`, the C library's
    `mysql_reset_connection`): `_role_sql`, waiting for its OK. An error raises."""
    sql = _role_sql(raw)
    if sql is None:
        return
    if isinstance(raw, pymysql.connections.Connection):
        raw._execute_command(pymysql.constants.COMMAND.COM_QUERY, sql.encode("utf-8"))
        raw._read_ok_packet()
    else:
        raw.query(sql.encode("utf-8"))


class ResetFailed(Exception):
    """The server refused COM_RESET_CONNECTION, or the driver could not send it: the
    connection is dropped (a new one holds nothing server code left)."""


def reset_native(raw: Any) -> None:
    """mysqlclient: `mysql_reset_connection` of the C library the driver is linked to,
    on the connection's own handle (waits for the server's OK).

    Not on a connection still reading a result (a streamed result given back unread):
    the C call would skip its rows and call the connection ready, but the old result stays
    bound to the handle, and when it is freed later (the collector) while another read
    streams on the connection, libmariadb skips *that* read's rows (it returned no rows,
    silently). `next_result()` says so without I/O (out of sync unless the connection is
    ready); such a connection is replaced instead."""
    try:
        raw.next_result()
    except Exception as exc:
        raise ResetFailed("a result is still being read on the connection") from exc
    try:
        handle = _capsule_pointer(raw._get_native_connection())
        failed = _native_reset_function()(handle)
    except Exception as exc:  # no such symbol, no handle: not reset, so not kept
        raise ResetFailed("the driver cannot reset a connection") from exc
    if failed:
        raise ResetFailed("the server refused to reset the connection")
    try:
        restore_role(raw)
    except Exception as exc:
        raise ResetFailed("the login's role could not be put back") from exc


def _capsule_pointer(capsule: Any) -> int:
    import ctypes

    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    name = ctypes.pythonapi.PyCapsule_GetName
    name.restype, name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    return int(get(capsule, name(capsule)))


#: `enum mysql_option` MYSQL_OPT_COMPRESS (libmariadb and libmysqlclient)
_MYSQL_OPT_COMPRESS = 1
#: seconds `_read_exact` waits for the reset's reply before the connection is replaced
_REPLY_WAIT = 60.0


@functools.lru_cache(maxsize=1)
def _native_library() -> Any:
    """The C library mysqlclient's extension links (its handle's dependencies), with the
    calls `_plain_socket` makes typed."""
    import MySQLdb._mysql

    library = ctypes.CDLL(MySQLdb._mysql.__file__)
    library.mysql_get_ssl_cipher.restype = ctypes.c_char_p
    library.mysql_get_ssl_cipher.argtypes = [ctypes.c_void_p]
    library.mysql_get_optionv.restype = ctypes.c_int
    library.mysql_get_optionv.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    return library


@functools.lru_cache(maxsize=1)
def _native_reset_function() -> Any:
    """The C library's `mysql_reset_connection`, looked up through mysqlclient's extension
    (its handle's dependencies: libmariadb or libmysqlclient, whichever it links)."""
    import ctypes

    import MySQLdb._mysql

    reset = ctypes.CDLL(MySQLdb._mysql.__file__).mysql_reset_connection
    reset.restype, reset.argtypes = ctypes.c_int, [ctypes.c_void_p]
    return reset


@functools.lru_cache(maxsize=64)
def _query_packet(sql: str) -> bytes:
    """The COM_QUERY packet of one of hybridwb's own statements (the session SET: short,
    ASCII), as PyMySQL's `_execute_command` writes it (sequence number 0)."""
    return _command_packet(sql.encode("ascii"))


def _command_packet(body: bytes) -> bytes:
    if len(body) + 1 >= MAX_PACKET_LEN:
        raise ValueError("a statement of hybridwb's own is never that long")
    return struct.pack("<iB", len(body) + 1, pymysql.constants.COMMAND.COM_QUERY) + body


def read_reply(raw: Any, *, reset: bool = False) -> None:
    """Read the reply to what `send_only` sent (raising the driver's error if it failed);
    with `reset`, the reset's reply first (`ResetFailed` when the server refused it, after
    the SET's reply is read too, so the two are never read out of turn)."""
    if isinstance(raw, pymysql.connections.Connection):
        if reset:
            refused: BaseException | None = None
            for _ in range(2 if _role_packet(raw) else 1):  # the reset's OK, the role's
                try:
                    raw._next_seq_id = 1
                    _read_ok(raw)
                except pymysql.err.MySQLError as exc:
                    if raw._sock is None:  # out of step or gone: the driver closed it
                        raise
                    refused = refused or exc
            raw._next_seq_id = 1  # the SET's reply: the first packet of its own command
            _read_ok(raw)
            if refused is not None:
                raise ResetFailed("the server refused to reset the connection") from refused
            return
        _read_ok(raw)
    elif reset and getattr(raw, "_hybridwb_reset_owed", False):
        _read_reset_ok(raw)
    else:
        raw.read_query_result()


def _read_ok(raw: Any) -> None:
    """One OK packet on a PyMySQL connection, with its status flags kept."""
    raw._result = None
    packet = raw._read_packet()  # an error packet raises the server's error here
    data = packet._data
    if not packet.is_ok_packet():  # a SET or a reset answers OK or an error, never rows
        raw._force_close()
        raise pymysql.err.OperationalError(2014, "Command Out of Sync")
    if data[1] < 251 and data[2] < 251:  # no rows changed, no insert id: one byte each
        raw.server_status = data[3] | data[4] << 8
    else:
        raw.server_status = OKPacketWrapper(packet).server_status


def quiet(raw: Any) -> bool:
    """Nothing is waiting to be read on an idle connection (no syscall blocks: a poll with
    no wait). A server that killed or timed out the connection has closed it (and may have
    sent an error first), so its socket reads as ready: such a connection is replaced
    before anything is sent on it, as the round trip of a ping would have found."""
    if isinstance(raw, pymysql.connections.Connection):
        sock = raw._sock
        if sock is None:
            return False
        fd: Any = sock
    else:
        fd = raw.fileno()
    try:
        ready, _, _ = select.select([fd], [], [], 0)
    except (OSError, ValueError):
        return False
    return not ready


#: the server status flag that makes a driver escape quotes by doubling them, no backslashes
_NO_BACKSLASH_ESCAPES = pymysql.constants.SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES


def escapes_as_read(raw: Any) -> bool:
    """Whether the driver escapes values with backslashes, as the guard and the pinned
    sql_mode read them (no round trip: a flag, or one escape in C).

    A driver escapes as the server's last status flags said (PyMySQL reads them from OK
    packets, libmariadb from OK and EOF packets), not as the session's sql_mode is. A
    stored function that SETs sql_mode to NO_BACKSLASH_ESCAPES leaves that flag on the
    server after the caller's sql_mode is put back, until the next `SET sql_mode`: a bound
    `\\'` then ends its literal early and the rest of the value is SQL."""
    if isinstance(raw, pymysql.connections.Connection):
        return not raw.server_status & _NO_BACKSLASH_ESCAPES
    literal = getattr(raw, "string_literal", None)
    return literal is None or bytes(literal(b"\\")) == b"'\\\\'"


def is_unbuffered(cursor: Any) -> bool:
    if isinstance(cursor, pymysql.cursors.SSCursor):
        return True
    mysqldb_cursors = sys.modules.get("MySQLdb.cursors")
    return mysqldb_cursors is not None and isinstance(cursor, mysqldb_cursors.SSCursor)


def is_mysql_url_driver(drivername: str) -> bool:
    return drivername.split("+", 1)[-1] in MODULE_OF


#: MySQL column types whose values mysqlclient leaves as the server's text for Arrow to parse
#: (integers, floats, DECIMAL, DATE, DATETIME, TIMESTAMP, YEAR); strings stay decoded in C
RAW_TEXT_TYPES = frozenset({0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 12, 13, 14, 246})


@contextmanager
def raw_text_values(raw: Any, wanted: bool) -> Iterator[bool]:
    """On a mysqlclient connection, results created inside the block keep numbers and dates
    as the server's text (bytes); yields whether that is in effect. The connection's own
    converters are back in place when the block ends, whatever happens in it.

    mysqlclient binds a result's converters when the result is created, so rows fetched
    after the block still come as they were asked for. PyMySQL: no effect."""
    if (
        not wanted
        or isinstance(raw, pymysql.connections.Connection)
        or "MySQLdb" not in sys.modules
    ):
        yield False
        return
    saved = raw.converter
    raw.converter = {k: v for k, v in saved.items() if k not in RAW_TEXT_TYPES}
    try:
        yield True
    finally:
        raw.converter = saved


#: a result column's type code (both drivers use the protocol's) by its name; the first
#: name of a code wins (TINY, not CHAR), and NEWDATE is a DATE
_TYPE_NAMES = {
    **{code: name for name, code in reversed(vars(FIELD_TYPE).items()) if name.isupper()},
    FIELD_TYPE.NEWDATE: "DATE",
}


def type_name(code: Any) -> str:
    """The protocol's name of a result column's type code ('YEAR' for 13), '' for none."""
    return _TYPE_NAMES.get(code, "")
