"""The Supabase REST backend (supabase-py), for users who have only the API keys.

No PostgREST server runs where hybridwb is developed, so this backend is covered by
contract tests that assert the exact HTTP requests supabase-py sends for every store
operation (tests/test_store_rest.py). What PostgREST cannot do over HTTP — DDL, arbitrary
SQL, multi-table transactions — needs `SUPABASE_DB_URL`; the errors say so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from hybridwb.config import Settings
from hybridwb.errors import AuthError, StoreError, ValidationError
from hybridwb.platform.backend import Op
from hybridwb.platform.repos import jsonable

T = TypeVar("T")
CHUNK = 1000


class RestBackend:
    name = "supabase-rest"

    def __init__(
        self, url: str, key: str, key_name: str, *, retries: int = 3, base_delay: float = 0.3
    ) -> None:
        try:
            from supabase import create_client
        except ImportError:  # pragma: no cover - the extra is missing
            raise StoreError(
                "The Supabase REST backend needs supabase-py: pip install 'hybridwb[supabase]'."
            ) from None
        self.key_name = key_name
        self.retries = retries
        self.base_delay = base_delay
        self._key = key
        try:
            self.client = create_client(url, key)
        except Exception as exc:
            raise AuthError(
                f"Supabase rejected the configuration ({type(exc).__name__}): check SUPABASE_URL and {key_name}."
            ) from None

    def __repr__(self) -> str:
        return f"RestBackend(key={self.key_name})"

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
    def _call(self, fn: Callable[[], T], *, idempotent: bool = True) -> T:
        from postgrest.exceptions import APIError

        for attempt in range(1, self.retries + 1):
            try:
                return fn()
            except APIError as exc:
                code = str(exc.code or "")
                message = str(exc.message or "")
                transient = code.isdigit() and len(code) == 3 and code.startswith("5")
                if transient and attempt < self.retries:
                    time.sleep(self.base_delay * 2 ** (attempt - 1))
                    continue
                raise self._translate(code, message, exc.details) from None
            except httpx.TransportError as exc:
                if attempt < self.retries and idempotent:
                    time.sleep(self.base_delay * 2 ** (attempt - 1))
                    continue
                raise StoreError(
                    f"Supabase did not answer ({type(exc).__name__}); check the network and SUPABASE_URL."
                ) from None
        raise AssertionError("unreachable")

    def _translate(self, code: str, message: str, details: Any) -> Exception:
        text = message.replace(self._key, "***")
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
        if code == "23505":
            return ValidationError(f"{details or text} already exists; nothing was saved.")
        if code == "42P01" or code == "PGRST205":
            return StoreError(
                "The store has no such table yet; run `hybridwb init --sql` and apply it in Supabase."
            )
        return StoreError(f"Supabase failed ({code}): {text}.")

    # -- primitives ------------------------------------------------------------------------
    def select(
        self,
        table: str,
        where: dict[str, Any] | None = None,
        *,
        order_by: str | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        query = self.client.table(table).select("*")
        for key, value in (where or {}).items():
            query = query.is_(key, "null") if value is None else query.eq(key, jsonable(value))
        if order_by:
            query = query.order(order_by, desc=desc)
        if limit:
            query = query.limit(limit)
        return list(self._call(query.execute).data)

    def count(self, table: str, where: dict[str, Any] | None = None) -> int:
        query = self.client.table(table).select("id", count="exact", head=True)
        for key, value in (where or {}).items():
            query = query.eq(key, jsonable(value))
        return int(self._call(query.execute).count or 0)

    def apply(self, ops: list[Op]) -> None:
        """One request per op, in order. PostgREST has no multi-request transaction, so the
        audit row follows its change rather than sharing a transaction with it."""
        for op in ops:
            tbl = self.client.table(op.table)
            if op.kind == "insert":
                self._call(
                    tbl.insert(jsonable(op.values), returning="minimal").execute, idempotent=False
                )
                continue
            query = (
                tbl.update(jsonable(op.values), returning="minimal")
                if op.kind == "update"
                else tbl.delete(returning="minimal")
            )
            for key, value in (op.where or {}).items():
                query = query.eq(key, jsonable(value))
            self._call(query.execute)

    def insert_ignore(self, table: str, rows: list[dict[str, Any]], conflict: list[str]) -> int:
        """Chunked upserts that ignore duplicates on the conflict key."""
        inserted = 0
        for start in range(0, len(rows), CHUNK):
            chunk = [jsonable(r) for r in rows[start : start + CHUNK]]
            query = self.client.table(table).upsert(
                chunk,
                on_conflict=",".join(conflict),
                ignore_duplicates=True,
                returning="representation",
            )
            inserted += len(self._call(query.execute).data or [])
        return inserted

    def close(self) -> None:
        return None


__all__ = ["RestBackend"]
