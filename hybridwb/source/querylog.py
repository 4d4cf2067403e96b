"""QueryLog: one entry per statement, with the original platform's fields.

Entries hold the *normalized* statement (literals replaced by `?`), so no customer data
lands in a log. The log buffers in memory and hands batches to a sink (the platform store
persists them); it never makes a round trip per query. The buffer is bounded: when the sink
fails, the batch is kept and the sink is not tried again for `RETRY_AFTER` seconds (a query
never waits on a store that is down); past `maxlen` pending entries the oldest are dropped.
Batches reach the sink one at a time, in the order recorded, whichever threads record them:
a batch due while another thread's is with the sink is handed over by that thread after it.

Every statement a source runs is one entry, so the read path records an entry as its plain
row (`record_row`: the fields of `QueryLogEntry` in order, a tuple) and the store writes
such rows as they are (`write_query_log_rows`): a frozen dataclass per statement cost more
than the rest of the entry. `entries` and a sink without that method see `QueryLogEntry`s.
"""

from __future__ import annotations

import os
import re
import threading
import time
import weakref
from collections import deque
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlglot.tokens import Token, TokenType

from hybridwb.errors import HybridwbError
from hybridwb.source import guard

_LITERALS = frozenset(
    {
        TokenType.STRING,
        TokenType.NUMBER,
        TokenType.NATIONAL_STRING,
        TokenType.HEX_STRING,
        TokenType.BIT_STRING,
        TokenType.BYTE_STRING,
        TokenType.RAW_STRING,
    }
)
_PLAIN_NAME = re.compile(r"[^\W\d]\w*\Z")
_ASCII_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")
_KEYWORD = re.compile(r"[A-Za-z_]+(?: [A-Za-z_]+)*\Z")  # ORDER BY is one token
_PUNCTUATION = re.compile(r"[^\w\s'\"`\\]+\Z", re.ASCII)
_NAMES = frozenset({TokenType.VAR, TokenType.IDENTIFIER})
#: SQL words the tokenizer reads as plain names (NULLS LAST, SHOW TABLES ...), kept in the log
#: of a failed statement although no table has them
_SQL_WORDS = frozenset(
    word
    for phrase in (
        *guard._DIALECT.tokenizer_class.KEYWORDS,
        *guard._DIALECT.parser_class.FUNCTIONS,
        "NULLS FIRST LAST TABLES COLUMNS FIELDS STATUS VARIABLES WARNINGS ERRORS PROCESSLIST",
        "DATABASES SCHEMAS INDEX INDEXES KEYS GRANTS ENGINES COLLATION CHARSET FULL EXTENDED",
        "FORMAT JSON TREE TRADITIONAL PARTITIONS SESSION GLOBAL OPEN PLUGINS PRIVILEGES",
    )
    for word in phrase.upper().split()
)


#: characters of a statement a log entry keeps: a longer one is cut after whole tokens,
#: with a marker saying how many were left out (each entry is a store row, and up to
#: `QueryLog.maxlen` of them wait in memory when the store is down)
MAX_LOG_CHARS = 8192


def log_text(tokens: list[Token] | tuple[Token, ...], names: Collection[str] | None = None) -> str:
    """The statement for a log: literals become `?`, and so does a quoted name that is not a
    plain name (a value typed in backticks, like `` `kim@example.com` ``).

    With `names` (the live schema's table and column names and the statement's aliases, in
    lower case), a name not among them becomes `?` as well, unless it is a SQL word or
    calls a function: a failed statement may hold a value typed without quotes
    (`WHERE name = 백지훈`), which the server then calls an unknown column.

    Past `MAX_LOG_CHARS` the rest is cut, between tokens (each kept token is judged as
    above, so the cut shows nothing the whole text would not)."""
    out = []
    size = 0
    for i, t in enumerate(tokens):
        if t.token_type in _LITERALS:
            piece = "?"
        elif t.token_type in _NAMES:
            if t.token_type == TokenType.IDENTIFIER and not _PLAIN_NAME.match(t.text):
                piece = "?"
            elif names is None or _known(
                t, tokens[i - 1 : i] if i else (), tokens[i + 1 : i + 2], names
            ):
                piece = t.text
            else:
                piece = "?"
        elif names is not None and not (
            _KEYWORD.match(t.text) or _PUNCTUATION.match(t.text)
        ):  # a keyword or operator is plain ASCII; anything else may be typed text
            piece = "?"
        else:
            piece = t.text
        size += len(piece) + 1
        if size > MAX_LOG_CHARS:
            out.append(f"/* … {len(tokens) - i:,} more tokens cut */")
            break
        out.append(piece)
    return " ".join(out)


def _known(
    token: Token,
    before: list[Token] | tuple[Token, ...],
    after: list[Token] | tuple[Token, ...],
    names: Collection[str],
) -> bool:
    """A schema name or alias, or a plain ASCII word that is a SQL word, calls a function
    or names a bind parameter (`:grade`: its value is bound, never in the text)."""
    text = token.text
    if text.lower() in names:
        return True
    if token.token_type != TokenType.VAR or not _ASCII_WORD.match(text):
        return False
    calls = bool(after) and after[0].token_type == TokenType.L_PAREN
    binds = bool(before) and before[0].token_type == TokenType.COLON
    return calls or binds or text.upper() in _SQL_WORDS


def log_text_of(sql: object, names: Collection[str] | None = None) -> str:
    """`log_text` of a raw text; never raises (a log line must not fail its query)."""
    if not isinstance(sql, str):
        return "<not text>"
    if len(sql) > guard.MAX_QUERY_BYTES:  # refused unread: tokenizing it costs ~250x its size
        return f"<a statement of {len(sql):,} characters, over the size limit>"
    try:
        return log_text(guard._DIALECT.tokenize(sql), names)
    except Exception:
        return "<unparseable statement>"


def literals_hidden(sql: str) -> str:
    """A statement as a log record shows it: as it is when `log_text` hides nothing in it,
    else `log_text` of it (literals and quoted values as `?`); never raises.

    The source's engine sends (and SQLAlchemy's engine logger, at INFO, logs) the final
    text with the bound values pasted in (`finaltext`), which `hide_parameters` does not
    hide (round 50: `pd.read_sql(..., wb.source.engine, params={"p": phone})` logged the
    phone)."""
    if len(sql) > guard.MAX_QUERY_BYTES:
        return f"<a statement of {len(sql):,} characters, not shown>"
    try:
        tokens = guard._DIALECT.tokenize(sql)
    except Exception:
        return "<a statement that cannot be read, not shown>"
    shown = log_text(tokens)
    return sql if shown == " ".join(t.text for t in tokens) else shown


#: seconds the sink is left alone after it failed (record() only; flush() always tries)
RETRY_AFTER = 30.0


@dataclass(frozen=True, slots=True)
class QueryLogEntry:
    database: str
    query: str
    executionTime: float
    resultCount: int
    status: str  # success | error
    errorMessage: str | None = None
    kind: str = "mysql"
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def as_row(self) -> LogRow:
        """The entry as `QueryLog.record_row` takes it (its fields in order)."""
        return (
            self.database,
            self.query,
            self.executionTime,
            self.resultCount,
            self.status,
            self.errorMessage,
            self.kind,
            self.timestamp,
        )


#: a QueryLogEntry's fields in order, as a tuple: (database, query, executionTime,
#: resultCount, status, errorMessage, kind, timestamp)
LogRow = tuple[str, str, float, int, str, "str | None", str, datetime]


class QueryLogSink(Protocol):
    def write_query_logs(self, entries: list[QueryLogEntry]) -> None: ...


#: every query log alive in this process, for the fork hook below
_LOGS: weakref.WeakSet[QueryLog] = weakref.WeakSet()


def _forget_parents_pending() -> None:
    """In a forked child (a notebook's `Pool().map`): the pending entries are the parent's,
    which the parent hands over itself (a child that wrote them too logged each of its
    parent's reads once more per worker), and a lock another thread of the parent held at
    the fork stays held here forever. The child starts with nothing pending and its own
    locks; the entries already recorded stay for `entries`."""
    for log in list(_LOGS):
        log._pending = []
        log._lock = threading.Lock()
        log._handing = threading.Lock()


os.register_at_fork(after_in_child=_forget_parents_pending)


class QueryLog:
    """A bounded in-memory log that flushes to a sink in batches."""

    def __init__(self, maxlen: int = 10_000, batch_size: int = 200) -> None:
        self._rows: deque[LogRow] = deque(maxlen=maxlen)
        self._pending: list[LogRow] = []
        self.batch_size = batch_size
        self.sink: QueryLogSink | None = None
        #: why the last hand-over to the sink failed (type and hybridwb message), or None
        self.last_error: str | None = None
        self._hold_until = 0.0
        self._lock = threading.Lock()
        #: held from taking a batch to its hand-over's end: batches reach the sink one at
        #: a time in the order recorded, and a failed one is back in front before the next
        self._handing = threading.Lock()
        _LOGS.add(self)

    @property
    def entries(self) -> deque[QueryLogEntry]:
        """The last `maxlen` entries, oldest first (made from the rows when asked for)."""
        with self._lock:
            rows = list(self._rows)
        return deque((QueryLogEntry(*row) for row in rows), maxlen=self._rows.maxlen)

    def record(self, entry: QueryLogEntry) -> None:
        self.record_row(entry.as_row())

    def record_row(self, row: LogRow) -> None:
        """`record` of an entry given as its row (the read path's: no object per entry)."""
        with self._lock:
            self._rows.append(row)
            pending = self._pending
            pending.append(row)  # kept until a sink (the store) takes them
            cap = self._rows.maxlen
            if cap is not None and len(pending) > cap:
                del pending[: len(pending) - cap]
            if self.sink is None or len(pending) < self.batch_size:
                return
            if self._hold_until > time.monotonic():
                return  # the sink failed a moment ago: keep buffering
        if not self._handing.acquire(blocking=False):
            return  # another thread is handing a batch over: these wait for the next one
        try:
            while True:  # and the batches other threads left meanwhile
                with self._lock:
                    if len(self._pending) < self.batch_size or self._hold_until > time.monotonic():
                        return  # taken, or the sink failed, meanwhile
                    batch, self._pending = self._pending, []
                if not self._write(batch):
                    return
        finally:
            self._handing.release()

    def flush(self) -> int:
        """Hand what is pending to the sink; returns how many entries were written."""
        if self.sink is None:
            return 0
        with self._handing:  # after a hand-over in flight, so the order is kept
            with self._lock:
                batch, self._pending = self._pending, []
            return len(batch) if batch and self._write(batch) else 0

    @property
    def pending(self) -> int:
        """Entries not yet handed to the sink."""
        return len(self._pending)

    def _write(self, batch: list[LogRow]) -> bool:
        sink: Any = self.sink
        assert sink is not None
        try:
            write_rows = getattr(sink, "write_query_log_rows", None)
            if write_rows is not None:
                write_rows(batch)
            else:
                sink.write_query_logs([QueryLogEntry(*row) for row in batch])
        except Exception as exc:
            # logging must never break a query; keep the batch for the next flush
            with self._lock:
                self._pending[:0] = batch
                cap = self._rows.maxlen
                if cap is not None and len(self._pending) > cap:
                    del self._pending[: len(self._pending) - cap]
                self._hold_until = time.monotonic() + RETRY_AFTER
                # a hybridwb error's message is scrubbed; anything else shows its type only
                self.last_error = (
                    exc.message if isinstance(exc, HybridwbError) else type(exc).__name__
                )
            return False
        with self._lock:
            self.last_error = None
            self._hold_until = 0.0
        return True

    def __len__(self) -> int:
        return len(self._rows)
