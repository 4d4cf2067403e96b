"""Round 30 residue: a JSON value edited by hand, read through the Supabase REST store.

Round 29 made the SQL stores read every JSON column through `stored_json`: a value Python
cannot read (a number of more digits than it reads, 4,300; nesting past the stack) is one
`StoreError` saying to fix the row with `%%platform --write`. The REST store did not:
postgrest-py parses the answer itself, so nesting past the stack was json's raw
`RecursionError`, and a 5,000-digit number made postgrest-py fall back to the answer's
text, which the store then read as rows: `workflows.get` returned the character "[" and
`workflows.list()` a list of characters, without a word.

Checked at the HTTP seam, as every REST test (no PostgREST server runs here): the stand-in
in `_postgrest.py` answers from a real PostgreSQL database with the rows as the database's
own JSON text. Oracle: the row written, then repaired, by psycopg.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import respx

from hybridwb.errors import StoreError
from hybridwb.platform.rest import RestBackend
from hybridwb.platform.store import Store

sys.path.insert(0, str(Path(__file__).parent))
from _postgrest import PostgrestBridge, migrated_database

pytestmark = [pytest.mark.postgres]

BASE = "https://proj.supabase.co"
REST = f"{BASE}/rest/v1"
KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl"

#: what a hand edit leaves in a JSONB column (Postgres reads both itself)
UNREADABLE = {
    "5000-digits-text-as-rows": '{"table": "members", "x": ' + "9" * 5000 + "}",
    "nested-5000-RecursionError": '{"a": ' + "[" * 5000 + "]" * 5000 + "}",
}


@pytest.fixture
def dsn() -> Iterator[str]:
    yield from migrated_database("hybridwb_restjson")


@pytest.fixture
def store(dsn: str) -> Iterator[Store]:
    bridge = PostgrestBridge(dsn)
    with respx.mock(base_url=REST, assert_all_called=False) as router:
        bridge.mount(router)
        st = Store(RestBackend(BASE, KEY, "SUPABASE_SERVICE_ROLE_KEY", base_delay=0), actor="t")
        yield st
        st.close()


def edit(dsn: str, text: str, workflow_id: Any) -> None:
    """The hand edit (the Supabase console, %%platform --write), by psycopg."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE workflows SET target_config = %s::jsonb WHERE id = %s",
            (text, str(workflow_id)),
        )


READS: dict[str, Callable[[Store], Any]] = {
    "get": lambda st: st.workflows.get("edited"),
    "list": lambda st: st.workflows.list(),
    "listing": lambda st: st.listing("workflows"),
}


@pytest.mark.parametrize("text", list(UNREADABLE.values()), ids=list(UNREADABLE))
@pytest.mark.parametrize("read", list(READS.values()), ids=list(READS))
def test_a_json_value_edited_by_hand_is_one_store_error_on_a_rest_read(
    store: Store, dsn: str, text: str, read: Callable[[Store], Any]
) -> None:
    wf = store.workflows.create(name="edited")
    edit(dsn, text, wf["id"])
    with pytest.raises(Exception) as caught:
        got = read(store)
        pytest.fail(f"read as {type(got).__name__}: {str(got)[:80]}")
    exc = caught.value
    assert isinstance(exc, StoreError), f"{type(exc).__name__}: {str(exc)[:200]}"
    assert str(exc) == (
        "A row of the platform store holds a JSON value hybridwb cannot read (edited by "
        "hand?); fix or delete it with %%platform --write."
    )
    edit(dsn, '{"table": "members"}', wf["id"])  # repaired: read again as before
    assert store.workflows.get("edited")["target_config"] == {"table": "members"}
    assert [w["name"] for w in store.workflows.list()] == ["edited"]
