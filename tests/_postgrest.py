"""A stand-in for PostgREST in front of a real PostgreSQL database, for respx.

No PostgREST server runs here. This answers the requests hybridwb's REST backend sends
(filters `eq.`, `gt.`, `lt.`, `is.null`, `in.(...)`, an `or=(...)` tree of them with
`and(...)` and quoted values, `order`, `limit`; inserts and upserts that ignore
duplicates; updates and deletes by filter; exact counts; RPC with named arguments) the way
PostgREST does: one transaction per request, `SET LOCAL ROLE service_role` (the service
role key's role), columns taken from the JSON body, results as JSON, and a database error
as PostgREST's JSON error with its SQLSTATE. It is a test double for the HTTP hop only:
every row it reads or writes is the database's own.

    with respx.mock(base_url=REST) as api:
        PostgrestBridge(dsn).mount(api)
"""

from __future__ import annotations

import email.utils
import json
import re
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import psycopg
import respx
from psycopg import sql
from psycopg.types.json import Jsonb

RESERVED = {"select", "order", "limit", "on_conflict", "columns", "offset"}
#: PostgREST's comparison operators the client sends
COMPARE = {"eq": "=", "gt": ">", "lt": "<", "gte": ">=", "lte": "<="}


def migrated_database(prefix: str) -> Iterator[str]:
    """A fixture body: a new PostgreSQL database holding the store's schema (migrated by
    the SQL store as its owner), as a psycopg DSN; dropped after."""
    from _stores import fresh_pg_database

    from hybridwb.platform.backend import SqlBackend
    from hybridwb.platform.store import Store

    made = fresh_pg_database(prefix, migrated=True)
    url = next(made)
    try:
        store = Store(SqlBackend(url), actor="owner")
        store.init()
        store.close()
        yield f"host=127.0.0.1 port=5432 user=postgres dbname={url.database}"
    finally:
        made.close()  # its own finally drops the database


class PostgrestBridge:
    def __init__(
        self, dsn: str, role: str = "service_role", *, max_rows: int | None = None
    ) -> None:
        self.dsn, self.role = dsn, role
        #: PostgREST's `db-max-rows` (Supabase's "Max rows", 1,000 by default): a read
        #: answers at most this many rows, silently, whatever its `limit`
        self.max_rows = max_rows
        self.requests: list[tuple[str, str]] = []  # (method, path)
        self._clock = threading.local()

    def mount(self, api: respx.MockRouter) -> None:
        api.route(url__regex=r"/rest/v1/rpc/(?P<fn>\w+)$").mock(side_effect=self.rpc)
        api.route(url__regex=r"/rest/v1/(?P<table>\w+)(\?.*)?$").mock(side_effect=self.table)

    # -- plumbing --------------------------------------------------------------------------
    def _run(self, statement: sql.Composable, params: list[Any]) -> Any:
        with psycopg.connect(self.dsn) as conn:
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(self.role)))
            cur = conn.execute(statement, params)
            out = cur.fetchall() if cur.description else cur.rowcount
            # the server's clock, for the answer's Date (the database's: this process's
            # own clock may be a skewed host's)
            (self._clock.at,) = conn.execute("SELECT now()").fetchone()  # type: ignore[misc]
            conn.commit()
        return out

    def _answer(self, fn: Any) -> httpx.Response:
        self._clock.at = None
        try:
            response = fn()
        except psycopg.Error as exc:
            code = exc.sqlstate or "XX000"
            status = 409 if code == "23505" else 403 if code == "42501" else 400
            response = httpx.Response(
                status, json={"code": code, "message": str(exc).split("\n")[0]}
            )
        if self._clock.at is not None:  # as PostgREST: every answer is dated
            response.headers["date"] = email.utils.formatdate(
                self._clock.at.timestamp(), usegmt=True
            )
        return response

    @staticmethod
    def _where(params: list[tuple[str, str]]) -> tuple[sql.Composable, list[Any]]:
        clauses: list[sql.Composable] = []
        values: list[Any] = []
        for key, raw in params:
            if key in RESERVED:
                continue
            if key == "or":  # a logic tree: `(a.gt."v",and(a.eq."v",b.gt."w"))`
                clause, more = PostgrestBridge._tree("or", raw)
                clauses.append(clause)
                values.extend(more)
                continue
            op, _, value = raw.partition(".")
            col = sql.Identifier("x", key)
            if op in COMPARE:  # as PostgREST: the value is read as the column's type
                clauses.append(sql.SQL("{} {} %s").format(col, sql.SQL(COMPARE[op])))
                values.append(value)
            elif op == "is" and value == "null":
                clauses.append(sql.SQL("{} IS NULL").format(col))
            elif op == "in":
                items = [v.strip('"') for v in value.strip("()").split(",") if v]
                clauses.append(sql.SQL("{}::text = ANY(%s)").format(col))
                values.append(items)
            else:  # pragma: no cover - a filter hybridwb does not send
                raise AssertionError(f"filter {key}={raw} not emulated")
        if not clauses:
            return sql.SQL("TRUE"), values
        return sql.SQL(" AND ").join(clauses), values

    @staticmethod
    def _tree(join: str, raw: str) -> tuple[sql.Composable, list[Any]]:
        """PostgREST's `or=(...)` / `and(...)` with `column.op.value` leaves, values
        plain or double-quoted (a backslash escapes the next character)."""
        items, depth, quoted, escaped, current = [], 0, False, False, ""
        for ch in raw[1:-1]:  # inside the outer parentheses
            if escaped:
                current, escaped = current + ch, False
                continue
            if ch == "\\" and quoted:
                escaped = True
                current += ch
                continue
            if ch == '"':
                quoted = not quoted
            elif not quoted and ch == "(":
                depth += 1
            elif not quoted and ch == ")":
                depth -= 1
            elif not quoted and depth == 0 and ch == ",":
                items.append(current)
                current = ""
                continue
            current += ch
        items.append(current)
        clauses: list[sql.Composable] = []
        values: list[Any] = []
        for item in items:
            if item.startswith(("and(", "or(")):
                inner, _, rest = item.partition("(")
                clause, more = PostgrestBridge._tree(inner, "(" + rest)
            else:
                column, op, value = item.split(".", 2)
                if value.startswith('"'):
                    value = re.sub(r"\\(.)", r"\1", value[1:-1])
                clause = sql.SQL("{} {} %s").format(
                    sql.Identifier("x", column), sql.SQL(COMPARE[op])
                )
                more = [value]
            clauses.append(sql.SQL("({})").format(clause))
            values.extend(more)
        return sql.SQL(f" {join.upper()} ").join(clauses), values

    # -- endpoints -------------------------------------------------------------------------
    def rpc(self, request: httpx.Request, fn: str) -> httpx.Response:
        self.requests.append((request.method, f"rpc/{fn}"))
        body = json.loads(request.content or b"{}")

        def go() -> httpx.Response:
            args = sql.SQL(", ").join(sql.SQL("{} => %s").format(sql.Identifier(k)) for k in body)
            values = [
                Jsonb(v)
                if isinstance(v, dict) or (isinstance(v, list) and k != "p_recipients")
                else v
                for k, v in body.items()
            ]
            [(value,)] = self._run(
                sql.SQL("SELECT {}({})").format(sql.Identifier(fn), args), values
            )
            return httpx.Response(
                200,
                content=json.dumps(value, default=str).encode(),
                headers={"content-type": "application/json"},
            )

        return self._answer(go)

    def table(self, request: httpx.Request, table: str) -> httpx.Response:
        self.requests.append((request.method, table))
        params = parse_qsl(urlsplit(str(request.url)).query, keep_blank_values=True)
        prefer = {p.strip() for p in request.headers.get("prefer", "").split(",")}
        t = sql.Identifier(table)
        where, values = self._where(params)
        opts = dict(params)

        def go() -> httpx.Response:
            if request.method in ("GET", "HEAD"):
                order = sql.SQL("")
                if "order" in opts:
                    terms = []
                    for term in opts["order"].split(","):
                        col, _, direction = term.partition(".")
                        terms.append(
                            sql.SQL("{} {}").format(
                                sql.Identifier("x", col),
                                sql.SQL("DESC" if direction == "desc" else "ASC"),
                            )
                        )
                    order = sql.SQL(" ORDER BY {}").format(sql.SQL(", ").join(terms))
                wanted = [int(opts["limit"])] if "limit" in opts else []
                if self.max_rows is not None:
                    wanted.append(self.max_rows)
                limit = (
                    sql.SQL(" LIMIT {}").format(sql.Literal(min(wanted))) if wanted else sql.SQL("")
                )
                first = int(opts.get("offset", 0))
                offset = sql.SQL(" OFFSET {}").format(sql.Literal(first)) if first else sql.SQL("")
                columns = opts.get("select", "*")
                shown: sql.Composable = sql.SQL("to_jsonb(x)")
                if columns != "*":  # as PostgREST: an unknown column is an error (42703)
                    shown = sql.SQL("jsonb_build_object({})").format(
                        sql.SQL(", ").join(
                            sql.SQL("{}, {}").format(sql.Literal(c), sql.Identifier("x", c))
                            for c in columns.split(",")
                        )
                    )
                # the rows as the database's own JSON text, as PostgREST sends them (a
                # value Python's json cannot read reaches the client as the server wrote it)
                found = self._run(
                    sql.SQL("SELECT ({})::text FROM {} x WHERE {}{}{}{}").format(
                        shown, t, where, order, limit, offset
                    ),
                    values,
                )
                data = [r[0] for r in found]
                # as PostgREST: the total only when a count is asked for (`*` otherwise);
                # the count is of every matching row, not of the rows answered
                total = "*"
                if any(p.startswith("count=") for p in prefer):
                    [(n,)] = self._run(
                        sql.SQL("SELECT count(*) FROM {} x WHERE {}").format(t, where), values
                    )
                    total = str(n)
                if total != "*" and first > int(total):  # as PostgREST: past the end
                    return httpx.Response(
                        416,
                        json={"code": "PGRST103", "message": "Requested range not satisfiable"},
                        headers={"content-range": f"*/{total}"},
                    )
                shown_range = f"{first}-{first + len(data) - 1}" if data else "*"
                headers = {"content-range": f"{shown_range}/{total}"}
                if request.method == "HEAD":
                    return httpx.Response(200, headers=headers)
                return httpx.Response(
                    200,
                    content=("[" + ",".join(data) + "]").encode(),
                    headers={**headers, "content-type": "application/json"},
                )
            if request.method == "POST":
                body = json.loads(request.content)
                items = body if isinstance(body, list) else [body]
                if not items:
                    return httpx.Response(201, json=[])
                cols = list(items[0])
                conflict = sql.SQL("")
                if "resolution=ignore-duplicates" in prefer:
                    keys = opts.get("on_conflict", "").split(",")
                    conflict = sql.SQL(" ON CONFLICT ({}) DO NOTHING").format(
                        sql.SQL(", ").join(map(sql.Identifier, keys))
                    )
                names = sql.SQL(", ").join(map(sql.Identifier, cols))
                found = self._run(
                    sql.SQL(
                        "INSERT INTO {t} ({names}) SELECT {names} FROM "
                        "jsonb_populate_recordset(NULL::{t}, %s){conflict} RETURNING to_jsonb({t})"
                    ).format(t=t, names=names, conflict=conflict),
                    [Jsonb(items)],
                )
                data = [r[0] for r in found]
                if "return=representation" in prefer:
                    return httpx.Response(201, json=data)
                return httpx.Response(201)
            if request.method == "PATCH":
                body = json.loads(request.content)
                sets = sql.SQL(", ").join(
                    sql.SQL("{c} = r.{c}").format(c=sql.Identifier(c)) for c in body
                )
                self._run(
                    sql.SQL(
                        "UPDATE {t} AS x SET {sets} FROM jsonb_populate_record(NULL::{t}, %s) r "
                        "WHERE {where}"
                    ).format(t=t, sets=sets, where=where),
                    [Jsonb(body), *values],
                )
                return httpx.Response(204)
            if request.method == "DELETE":
                self._run(sql.SQL("DELETE FROM {} AS x WHERE {}").format(t, where), values)
                return httpx.Response(204)
            raise AssertionError(f"{request.method} not emulated")  # pragma: no cover

        return self._answer(go)
