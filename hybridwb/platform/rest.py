"""The Supabase REST backend (postgrest-py on hybridwb's own httpx client), for users who
have only the API keys.

The key lives in one `__slots__` holder that an `httpx.Auth` puts on each request, so no
public attribute (the postgrest client, its session, its headers) holds it in `vars()`.
No PostgREST server runs where hybridwb is developed, so this backend is covered by
contract tests that assert the exact HTTP requests it sends for every store operation
(tests/test_store_rest.py). What PostgREST cannot do over HTTP — DDL, arbitrary SQL —
needs `SUPABASE_DB_URL`; the errors say so. Workflow runs, which need several writes as
one, call SQL functions over RPC (`rest_campaigns`, migrations 0005 and 0008).
"""

from __future__ import annotations

import email.utils
import os
import re
import threading
import weakref
from collections.abc import Generator
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
from postgrest import SyncPostgrestClient
from postgrest.exceptions import APIError
from postgrest.types import CountMethod, ReturnMethod
from sqlalchemy import UniqueConstraint
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from hybridwb.config import Settings
from hybridwb.errors import AuthError, HybridwbError, StoreError, ValidationError
from hybridwb.platform.backend import PG_UNIQUE_KEY, Op, stored_json
from hybridwb.platform.repos import jsonable
from hybridwb.platform.times import labelled
from hybridwb.source.catalogue import server_text

T = TypeVar("T")
CHUNK = 1000
#: answers given before the request was processed: safe to repeat any request
NOT_PROCESSED = frozenset({"503", "520", "PGRST000", "PGRST001", "PGRST002", "PGRST003"})
#: gateway answers that may come after the server did the work: repeat only idempotent ones
MAYBE_PROCESSED = frozenset({"502", "504"})
#: one request's limit (connect, read, write, pool), seconds
TIMEOUT = 30.0
#: the column Postgres names in a not-null violation (23502); its detail holds the row
PG_NOT_NULL = re.compile(r'null value in column "([a-z_][a-z0-9_]{0,62})"')


def mask_userinfo(url: str) -> str:
    """The URL with any user:password@ replaced by ***@ (SUPABASE_URL should have none)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


class _Key:
    """The API key, in a slot: `vars()` of nothing hybridwb exposes can show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def __repr__(self) -> str:
        return "<key ***>"

    def scrub(self, text: str) -> str:
        """`text` with the key replaced by *** (a server may echo what it refused)."""
        return text.replace(self._value, "***") if self._value else text


class KeyAuth(httpx.Auth):
    """Puts the key on each request as Supabase wants it (`apikey` and a bearer token),
    so the session's own headers never hold it."""

    def __init__(self, key: _Key) -> None:
        self.key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["apikey"] = self.key._value
        request.headers["Authorization"] = f"Bearer {self.key._value}"
        yield request

    def __repr__(self) -> str:
        return "KeyAuth(<key ***>)"


def _readable(response: httpx.Response) -> None:
    """Every JSON answer is read through `stored_json` first, as the SQL stores read their
    JSON columns: a value edited by hand that Python cannot read (a number of over 4,300
    digits, nesting past the stack) is one StoreError. postgrest-py, which parses the
    answer again, fell back to the answer's text (read as rows of characters) or raised
    json's raw RecursionError."""
    if response.is_success and "json" in response.headers.get("content-type", ""):
        response.read()
        if response.content:
            stored_json(response.content)


def _date_of(response: httpx.Response) -> datetime | None:
    """The server's clock as its answer's `Date` header gives it (RFC 9110), or None."""
    try:
        at = email.utils.parsedate_to_datetime(response.headers.get("date", ""))
    except (TypeError, ValueError, IndexError, OverflowError):
        # round 32: a year past the platform's raised OverflowError out of the hook, and
        # every request to the store failed with it
        return None
    return at if at.tzinfo is not None else None


def _wire(value: Any) -> Any:
    """A column's value as PostgREST takes it (`jsonable`), a naive time labelled UTC
    (`times.labelled`): sent without an offset, the server read it in its session's zone."""
    return jsonable(labelled(value))


def _row(values: dict[str, Any]) -> dict[str, Any]:
    """A row's columns as `_wire` sends each (a JSON column's inner values as they are)."""
    return {key: _wire(value) for key, value in values.items()}


def _rest_url(url: str) -> str | None:
    """PostgREST's address under SUPABASE_URL, or None when it is not an http(s) URL."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return url.strip().rstrip("/") + "/rest/v1"


class RestBackend:
    name = "supabase-rest"

    def __init__(
        self, url: str, key: str, key_name: str, *, retries: int = 3, base_delay: float = 0.3
    ) -> None:
        self._key = _Key(key)
        del key  # this frame is in the traceback of the errors below: no key in its locals
        self.key_name = key_name
        self.retries = retries
        self.base_delay = base_delay
        self.description = f"supabase-rest:{mask_userinfo(url)}"
        rest = _rest_url(url)
        if rest is None:
            raise AuthError(
                f"SUPABASE_URL must be an https:// address (got {mask_userinfo(url)!r}); "
                f"copy it from the Supabase dashboard and check {key_name}."
            )
        self._rest = rest
        #: per thread, the `Date` of the last answer (`server_time`)
        self._dates = threading.local()
        self._connect()
        _BACKENDS.add(self)

    def _connect(self) -> None:
        """A client with a pool of its own (keep-alive HTTPS connections, opened as needed)."""
        dates = self._dates

        def dated(response: httpx.Response) -> None:
            dates.at = _date_of(response)

        self._http = httpx.Client(
            base_url=self._rest,
            auth=KeyAuth(self._key),
            timeout=TIMEOUT,
            follow_redirects=False,
            event_hooks={"response": [_readable, dated]},
        )
        # postgrest-py builds requests on our client (its own retry is switched off per
        # request in _execute: one policy decides, ours)
        self.client = SyncPostgrestClient(self._rest, http_client=self._http)

    def __repr__(self) -> str:
        return f"RestBackend({self.description}, key={self.key_name})"

    @classmethod
    def from_settings(cls, settings: Settings) -> RestBackend:
        if not settings.supabase_url:
            raise StoreError("Set SUPABASE_URL to use the Supabase REST backend.")
        if settings.supabase_service_role_key is not None:
            return cls(
                settings.supabase_url,
                settings.supabase_service_role_key.get_secret_value(),
                "SUPABASE_SERVICE_ROLE_KEY",
            )
        if settings.supabase_anon_key is not None:
            return cls(
                settings.supabase_url,
                settings.supabase_anon_key.get_secret_value(),
                "SUPABASE_ANON_KEY",
            )
        raise StoreError(
            "Set SUPABASE_SERVICE_ROLE_KEY (or SUPABASE_ANON_KEY) next to SUPABASE_URL."
        )

    # -- error handling --------------------------------------------------------------------
    def _call(self, query: Any, *, idempotent: bool = True) -> Any:
        return self._execute(query, idempotent=idempotent)[0]

    def _execute(self, query: Any, *, idempotent: bool = True) -> tuple[Any, int]:
        """Execute a postgrest request, retried with tenacity on transient faults only.

        postgrest-py's own retry is switched off so that one policy decides: a request that
        never reached the server (connect error) or was refused before processing (503,
        PostgREST's PGRST000-003) may always be repeated; a read timeout or a 502/504 only
        when repeating cannot change the outcome (`idempotent`: reads, updates by key,
        deletes, upserts that ignore duplicates). A plain insert is never sent twice on a
        reply that might have come after the row was written (`_insert_once` sends it
        again only as an upsert on its id).
        """
        if hasattr(query, "retry"):
            query = query.retry(False)

        def transient(exc: BaseException) -> bool:
            if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                return True
            if isinstance(exc, httpx.TransportError):
                return idempotent
            if isinstance(exc, APIError):
                code = str(exc.code or "")
                if code in NOT_PROCESSED:
                    return True
                return idempotent and code in MAYBE_PROCESSED
            return False

        retrying = Retrying(
            retry=retry_if_exception(transient),
            stop=stop_after_attempt(max(1, self.retries)),
            wait=wait_exponential(multiplier=self.base_delay, max=5),
            reraise=True,
        )
        # the error is raised after the except block: raised inside it, its __context__
        # would keep the driver's exception and frames (reporters walk that chain)
        error: Exception
        try:
            return retrying(query.execute), retrying.statistics.get("attempt_number", 1)
        except APIError as exc:
            code = str(exc.code or "")
            error = self._translate(code, str(exc.message or ""), exc.details)
            error.maybe_processed = code in MAYBE_PROCESSED  # type: ignore[attr-defined]
            error.code = code  # type: ignore[attr-defined]
        except httpx.TransportError as exc:
            error = StoreError(
                f"Supabase did not answer ({type(exc).__name__}) at {self.description}; "
                "check the network and SUPABASE_URL. Is the project running?",
                cause=type(exc).__name__,
            )
            error.maybe_processed = not isinstance(  # type: ignore[attr-defined]
                exc, httpx.ConnectError | httpx.ConnectTimeout
            )
        except httpx.HTTPError as exc:
            # an answer httpx could not read (a body its Content-Encoding lies about) or a
            # redirect loop: httpx's own error left every frame of the caller, whose locals
            # hold the rows being written (phones), for a traceback printed with its locals
            # (round 50)
            error = StoreError(
                f"Supabase's answer could not be read ({type(exc).__name__}) at "
                f"{self.description}; check SUPABASE_URL (a proxy in between?), then try again.",
                cause=type(exc).__name__,
            )
            error.maybe_processed = True  # type: ignore[attr-defined]
        raise error

    def _translate(self, code: str, message: str, details: Any) -> Exception:
        text = server_text(self._key.scrub(message))  # the one rule for server text
        if "JWT expired" in text or code == "PGRST303":
            return AuthError(
                f"The {self.key_name} has expired; copy a fresh key from the Supabase dashboard."
            )
        if "Invalid API key" in text or code in ("PGRST301", "401"):
            return AuthError(
                f"Supabase refused the {self.key_name}; check that it belongs to this project."
            )
        if code == "42501" or code == "403":
            hint = (
                " Use SUPABASE_SERVICE_ROLE_KEY for hybridwb's writes."
                if self.key_name == "SUPABASE_ANON_KEY"
                else ""
            )
            return AuthError(f"The {self.key_name} may not do this (row level security).{hint}")
        if code == "23505":  # the detail `Key (recipient)=(010-…)` holds the value: names only
            keys = PG_UNIQUE_KEY.match(str(details or ""))
            what = f"({keys.group(1)})" if keys else "a row with the same key"
            return ValidationError(f"{what} already exists; nothing was saved.")
        if code in ("23514", "22023"):  # a check of the store refused the call (0009)
            return ValidationError(f"{text}; nothing was saved.")
        if code == "23502":  # the column's name only: the detail `Failing row contains (…)`
            column = PG_NOT_NULL.match(message)
            what = f"`{column.group(1)}`" if column else "a required column"
            return ValidationError(
                f"The store needs a value for {what} and was sent none; nothing was saved. "
                "Give every row a value there."
            )
        if code == "42P01" or code == "PGRST205":
            return StoreError(
                "The store has no such table yet; run `hybridwb init --sql` and apply it in Supabase."
            )
        if code == "PGRST202" or code == "42883":  # a function of a newer migration
            return StoreError(
                "The store lacks a function this hybridwb calls (its schema is older); run "
                "`hybridwb init --sql` and apply it in Supabase."
            )
        return StoreError(f"Supabase failed ({code}): {text}.")

    # -- primitives ------------------------------------------------------------------------
    def server_time(self) -> datetime | None:
        """The server's clock: the `Date` of its answer to a one-row read (PostgREST, and
        the gateway in front of it, date every answer), or None when that answer has no
        date. Heartbeats are stamped by the database's `now()` (migration 0005); judged by
        this host's clock, a host whose clock was minutes ahead called a live run stale
        and `hybridwb run` marked it so (round 31)."""
        self._dates.at = None
        self._call(self.client.from_("run_locks").select("workflow_id").limit(1))
        at: datetime | None = self._dates.at
        return at

    def select(
        self,
        table: str,
        where: dict[str, Any] | None = None,
        *,
        order_by: str | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """The rows, all of them (up to `limit`), in the caller's order and then the primary
        key's, so that each row has one place in the order. PostgREST answers a read with at
        most its `db-max-rows` rows (Supabase's "Max rows", 1,000 by default) and says
        nothing, so a read goes on by keyset: each next page asks for the rows after the
        last one read, in that order (`_after`), until a page comes back empty or the
        limit is reached (a read by the whole key: its one page). A row deleted or written
        between pages moves no row of the rest out of reach: paged by offset, a row of an
        earlier page deleted meanwhile shifted the rest by one, and a row was never read
        (round 33). No page asks for an exact count, a count of every matching row that a
        large table pays for on each request."""
        keys = _keys_of(table)
        one = _one_row(table, where)
        terms = [(order_by, desc)] if order_by else []
        terms += [] if one else [(key, False) for key in keys if key != order_by]
        rows: list[dict[str, Any]] = []
        while True:
            query = self._filtered(table, where, "*")
            for column, downward in terms:
                query = query.order(column, desc=downward)
            if rows:
                query = query.or_(_after(terms, rows[-1]))
            if limit:
                query = query.limit(limit - len(rows))
            page = list(self._call(query).data)
            if rows and page and all(page[-1].get(k) == rows[-1].get(k) for k in keys):
                return rows  # no step forward (an answer that ignored the filter): the end
            rows.extend(page)
            if not page or one or (limit and len(rows) >= limit):
                return rows

    def _filtered(
        self, table: str, where: dict[str, Any] | None, columns: str, **options: Any
    ) -> Any:
        query = self.client.table(table).select(columns, **options)
        for key, value in (where or {}).items():
            query = query.is_(key, "null") if value is None else query.eq(key, _wire(value))
        return query

    def count(self, table: str, where: dict[str, Any] | None = None) -> int:
        query = self.client.table(table).select("id", count=CountMethod.exact, head=True)
        for key, value in (where or {}).items():
            query = query.eq(key, _wire(value))
        return int(self._call(query).count or 0)

    def apply(self, ops: list[Op]) -> None:
        """One request per op, in order. PostgREST has no multi-request transaction, so the
        audit row follows its change rather than sharing a transaction with it."""
        for op in ops:
            tbl = self.client.table(op.table)
            if op.kind == "insert":
                self._insert_once(op)
                continue
            query = (
                tbl.update(_row(op.values or {}), returning=ReturnMethod.minimal)
                if op.kind == "update"
                else tbl.delete(returning=ReturnMethod.minimal)
            )
            for key, value in (op.where or {}).items():  # None: IS NULL, as SQL's `== None`
                query = query.is_(key, "null") if value is None else query.eq(key, _wire(value))
            self._call(query)

    def _insert_once(self, op: Op) -> None:
        """Insert without ever writing it twice; when the answer was lost after the server
        may have written the row, look the row up by its (client-made) id. Not there yet,
        the first request may still be on its way (queued in the server's pool: it would
        write the row after the caller was told it failed), so the row is sent again as
        an insert that leaves a row with its id alone: written once, whichever lands
        first (the other writes nothing)."""
        values = _row(op.values or {})
        try:
            self._call(
                self.client.table(op.table).insert(values, returning=ReturnMethod.minimal),
                idempotent=False,
            )
        except HybridwbError as exc:
            if not getattr(exc, "maybe_processed", False) or "id" not in values:
                raise
            if self.select(op.table, {"id": values["id"]}):
                return  # the first request did write the row: that is a success
            again = self.client.table(op.table).upsert(
                values, on_conflict="id", ignore_duplicates=True, returning=ReturnMethod.minimal
            )
            self._call(again)  # repeatable: a row with this id is left alone

    def insert_ignore(self, table: str, rows: list[dict[str, Any]], conflict: list[str]) -> int:
        """Chunked upserts that ignore duplicates on the conflict key."""
        inserted = 0
        for start in range(0, len(rows), CHUNK):
            chunk = [_row(r) for r in rows[start : start + CHUNK]]
            query = self.client.table(table).upsert(
                chunk,
                on_conflict=",".join(conflict),
                ignore_duplicates=True,
                returning=ReturnMethod.representation,
            )
            response, attempts = self._execute(query)
            if attempts == 1:
                inserted += len(response.data or [])
            elif all("id" in r for r in chunk):  # a retry: an earlier try may have written
                inserted += self._count_ids(table, [r["id"] for r in chunk])  # rows: ours
            else:
                inserted += self._count_own(table, chunk, conflict)
        return inserted

    def _count_own(self, table: str, rows: list[dict[str, Any]], conflict: list[str]) -> int:
        """How many of `rows` are stored as sent, every column: after a retry the answer
        counts only what the last try wrote, so a row an earlier try wrote (its answer
        lost) would count as someone else's (a schedule slot claimed, then skipped). A row
        with the same key and other values (another claimant's) is not ours."""
        found = 0
        for row in rows:
            stored = self.select(table, {k: row[k] for k in conflict})
            if any(all(_same(s.get(k), v) for k, v in row.items()) for s in stored):
                found += 1
        return found

    def _count_ids(self, table: str, ids: list[Any]) -> int:
        found = 0
        for start in range(0, len(ids), 100):
            query = self.client.table(table).select("id", count=CountMethod.exact, head=True)
            query = query.in_("id", [str(i) for i in ids[start : start + 100]])
            found += int(self._call(query).count or 0)
        return found

    def close(self) -> None:
        """Close the connections (postgrest-py's client shares our httpx client)."""
        self._http.close()


def _same(stored: Any, sent: Any) -> bool:
    """A stored JSON value is the value sent (timestamps compared as instants: the server
    writes them in its session's time zone)."""
    if stored == sent:
        return True
    if isinstance(stored, str) and isinstance(sent, str):
        try:
            return datetime.fromisoformat(stored) == datetime.fromisoformat(sent)
        except ValueError:
            return False
    return False


def _keys_of(table: str) -> list[str]:
    """The table's primary key columns (schema.py), the last terms of every read's order;
    none for a table hybridwb does not define (read in one request, as it answers)."""
    from hybridwb.platform.schema import metadata

    tbl = metadata.tables.get(table)
    return [] if tbl is None else [c.name for c in tbl.primary_key.columns]


def _one_row(table: str, where: dict[str, Any] | None) -> bool:
    """Whether `where` names one row at most: a value for every column of the primary
    key or of a unique constraint (a workflow by name). Such a read is one request."""
    from hybridwb.platform.schema import metadata

    tbl = metadata.tables.get(table)
    if tbl is None:
        return True  # not hybridwb's: no key to page by (`_keys_of`)
    given = {k for k, v in (where or {}).items() if v is not None}
    uniques = [tbl.primary_key.columns] + [
        c.columns for c in tbl.constraints if isinstance(c, UniqueConstraint)
    ]
    return any(all(col.name in given for col in cols) for cols in uniques)


def _after(terms: list[tuple[str, bool]], row: dict[str, Any]) -> str:
    """PostgREST's `or` filter for the rows after `row` in the order `terms` (column,
    descending): after it in the first term, or equal there and after it in the next, and
    so on. Every value is quoted, as PostgREST reads a quoted value as the column's type
    (a comma, a parenthesis or a quote in it is then not syntax). The order's columns are
    NOT NULL: a null has no place on either side of a comparison."""

    def value(column: str) -> str:
        found = row.get(column)
        if found is None:
            raise StoreError(f"A store read pages by {column!r}, which a row holds no value in.")
        text = str(found).lower() if isinstance(found, bool) else str(found)
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    branches = []
    for n, (column, downward) in enumerate(terms):
        parts = [f"{c}.eq.{value(c)}" for c, _ in terms[:n]]
        parts.append(f"{column}.{'lt' if downward else 'gt'}.{value(column)}")
        branches.append(parts[0] if len(parts) == 1 else f"and({','.join(parts)})")
    return ",".join(branches)


#: every REST backend of this process, for the fork hook
_BACKENDS: weakref.WeakSet[RestBackend] = weakref.WeakSet()
#: in a forked child, the parent's clients: kept, never closed or used (`_forget_parents_clients`)
_FORKED: list[httpx.Client] = []


def _forget_parents_clients() -> None:
    """In a forked child: each backend's pool holds the parent's HTTPS connections (its
    sockets and TLS state). A request of the child on one would interleave TLS records with
    the parent's on the same connection, so the child starts a client of its own and keeps
    the parent's unused (closing it would only touch sockets that are the parent's)."""
    for backend in list(_BACKENDS):
        _FORKED.append(backend._http)
        backend._connect()


os.register_at_fork(after_in_child=_forget_parents_clients)


__all__ = ["RestBackend", "mask_userinfo"]
