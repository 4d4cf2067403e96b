"""Contract tests for the Supabase REST backend.

No PostgREST server runs here, so these tests check, at the HTTP seam (respx), the exact
requests the backend (postgrest-py on our httpx client) sends for every store operation, and how answers are handled.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx

from hybridwb.errors import AuthError, StoreError, ValidationError
from hybridwb.platform.rest import RestBackend
from hybridwb.platform.store import Store

BASE = "https://proj.supabase.co"
REST = f"{BASE}/rest/v1"
SERVICE_KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl"
ANON_KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.YW5vbnNpZw"


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=REST, assert_all_called=False) as router:
        yield router


@pytest.fixture
def store() -> Store:
    return Store(
        RestBackend(BASE, SERVICE_KEY, "SUPABASE_SERVICE_ROLE_KEY", base_delay=0), actor="tester"
    )


def query(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(urlsplit(str(request.url)).query)


def prefer(request: httpx.Request) -> set[str]:
    return {p.strip() for p in request.headers.get("prefer", "").split(",") if p.strip()}


def test_get_by_name_is_a_filtered_select(api: respx.MockRouter, store: Store) -> None:
    wid = str(uuid.uuid4())
    route = api.get("/workflows").respond(200, json=[{"id": wid, "name": "welcome"}])
    assert store.workflows.get("welcome")["id"] == wid
    request = route.calls.last.request
    assert request.method == "GET"
    assert query(request) == {"select": ["*"], "name": ["eq.welcome"]}
    assert request.headers["apikey"] == SERVICE_KEY
    assert request.headers["authorization"] == f"Bearer {SERVICE_KEY}"


def test_get_by_id_filters_on_id(api: respx.MockRouter, store: Store) -> None:
    wid = str(uuid.uuid4())
    route = api.get("/workflows").respond(200, json=[{"id": wid, "name": "w"}])
    store.workflows.get(wid)
    assert query(route.calls.last.request)["id"] == [f"eq.{wid}"]


def test_create_checks_the_name_then_inserts_entity_and_audit(
    api: respx.MockRouter, store: Store
) -> None:
    api.get("/workflows").respond(200, json=[])
    wf_insert = api.post("/workflows").respond(201)
    audit_insert = api.post("/audit_log").respond(201)
    row = store.workflows.create(name="welcome", trigger_config={"a": 1})
    # the name is looked up first, then the row and its audit entry are inserted
    assert [(c.request.method, c.request.url.path) for c in api.calls] == [
        ("GET", "/rest/v1/workflows"),
        ("POST", "/rest/v1/workflows"),
        ("POST", "/rest/v1/audit_log"),
    ]
    assert query(api.calls[0].request)["name"] == ["eq.welcome"]
    request = wf_insert.calls.last.request
    assert request.method == "POST"
    assert prefer(request) == {"return=minimal"}
    body = json.loads(request.content)
    assert body["name"] == "welcome" and body["trigger_config"] == {"a": 1}
    assert body["id"] == str(row["id"]) and body["status"] == "draft"
    audit = json.loads(audit_insert.calls.last.request.content)
    assert (
        audit["action"] == "create"
        and audit["entity"] == "workflow"
        and audit["entity_id"] == str(row["id"])
    )


def test_update_patches_by_id(api: respx.MockRouter, store: Store) -> None:
    wid = str(uuid.uuid4())
    api.get("/workflows").respond(
        200,
        json=[
            {
                "id": wid,
                "name": "w",
                "status": "draft",
                "trigger_type": "manual",
                "trigger_config": {},
                "target_config": {},
                "message_config": {},
                "variables": {},
                "schedule_config": {},
                "description": None,
                "notebook": None,
            }
        ],
    )
    patch = api.patch("/workflows").respond(204)
    api.post("/audit_log").respond(201)
    store.workflows.update(wid, status="active")
    request = patch.calls.last.request
    assert query(request) == {"id": [f"eq.{wid}"]}
    body = json.loads(request.content)
    assert body["status"] == "active" and "updated_at" in body and "name" not in body


def test_delete_is_by_id(api: respx.MockRouter, store: Store) -> None:
    wid = str(uuid.uuid4())
    api.get("/message_templates").respond(200, json=[{"id": wid, "name": "t"}])
    route = api.delete("/message_templates").respond(204)
    api.post("/audit_log").respond(201)
    store.templates.delete("t")
    assert route.calls.last.request.method == "DELETE"
    assert query(route.calls.last.request) == {"id": [f"eq.{wid}"]}


def test_send_records_are_chunked_upserts_that_ignore_duplicates(
    api: respx.MockRouter, store: Store
) -> None:
    route = api.post("/send_records").mock(
        side_effect=lambda req: httpx.Response(201, json=json.loads(req.content)[:-1])
    )
    run, wf = uuid.uuid4(), uuid.uuid4()
    records = [{"run_id": run, "workflow_id": wf, "target_key": str(i)} for i in range(2500)]
    inserted = store.runs.add_records(records)
    assert len(route.calls) == 3
    sizes = [len(json.loads(c.request.content)) for c in route.calls]
    assert sizes == [1000, 1000, 500]
    request = route.calls[0].request
    params = query(request)
    assert params["on_conflict"] == ["run_id,target_key"]
    assert set(params) == {"on_conflict", "columns"}
    sent_columns = {c.strip('"') for c in params["columns"][0].split(",")}
    assert sent_columns == set(json.loads(request.content)[0])
    assert {"run_id", "workflow_id", "target_key", "id"} <= sent_columns
    assert {"resolution=ignore-duplicates", "return=representation"} <= prefer(request)
    assert inserted == 2497  # what the server said it inserted


def test_count_is_a_head_request_with_exact_count(api: respx.MockRouter, store: Store) -> None:
    route = api.head("/send_records").respond(200, headers={"content-range": "0-0/42"})
    assert store.runs.record_count(uuid.uuid4()) == 42
    request = route.calls.last.request
    assert "count=exact" in prefer(request)
    assert query(request)["select"] == ["id"]


def test_server_errors_are_retried_with_backoff(api: respx.MockRouter, store: Store) -> None:
    route = api.get("/workflows").mock(
        side_effect=[httpx.Response(502, text="bad gateway"), httpx.Response(200, json=[])]
    )
    assert store.workflows.list() == []
    assert len(route.calls) == 2


def test_invalid_key_is_an_auth_error_naming_the_key(api: respx.MockRouter, store: Store) -> None:
    route = api.get("/workflows").respond(
        401, json={"message": "Invalid API key", "hint": "Double check your key"}
    )
    with pytest.raises(AuthError, match="SUPABASE_SERVICE_ROLE_KEY") as info:
        store.workflows.list()
    assert SERVICE_KEY not in str(info.value)
    assert len(route.calls) == 1  # auth errors are not retried


def test_expired_key_says_so(api: respx.MockRouter, store: Store) -> None:
    api.get("/workflows").respond(401, json={"code": "PGRST303", "message": "JWT expired"})
    with pytest.raises(AuthError, match="has expired"):
        store.workflows.list()


def test_anon_key_blocked_by_rls_points_to_the_service_role(api: respx.MockRouter) -> None:
    anon = Store(RestBackend(BASE, ANON_KEY, "SUPABASE_ANON_KEY", base_delay=0))
    api.get("/workflows").respond(200, json=[])
    api.post("/workflows").respond(
        403, json={"code": "42501", "message": "new row violates row-level security policy"}
    )
    with pytest.raises(AuthError, match="SUPABASE_SERVICE_ROLE_KEY"):
        anon.workflows.create(name="x")


def test_unique_violation_is_a_validation_error_and_not_retried(
    api: respx.MockRouter, store: Store
) -> None:
    api.get("/workflows").respond(200, json=[])
    route = api.post("/workflows").respond(
        409, json={"code": "23505", "message": "duplicate key", "details": "Key (name)=(w)"}
    )
    with pytest.raises(ValidationError, match="already exists"):
        store.workflows.create(name="w")
    assert len(route.calls) == 1


def test_rest_store_cannot_run_sql(store: Store) -> None:
    with pytest.raises(StoreError, match="SUPABASE_DB_URL"):
        store.sql("SELECT 1")


def test_missing_key_is_explained() -> None:
    from hybridwb.config import load_settings

    with pytest.raises(StoreError, match="SUPABASE_SERVICE_ROLE_KEY"):
        RestBackend.from_settings(load_settings(env={"SUPABASE_URL": BASE}))


# -- retries: transient only, and never a blind second insert ---------------------------


def _create_with(api: respx.MockRouter, store: Store, answers: list[object]) -> respx.Route:
    api.get("/workflows").respond(200, json=[])
    api.post("/audit_log").respond(201)
    return api.post("/workflows").mock(side_effect=answers)


@pytest.mark.parametrize(
    ("answers", "calls"),
    [
        ([httpx.Response(503), httpx.Response(201)], 2),
        ([httpx.ConnectError("refused"), httpx.Response(201)], 2),
        (
            [
                httpx.Response(503, json={"code": "PGRST001", "message": "db down"}),
                httpx.Response(201),
            ],
            2,
        ),
    ],
    ids=["503-before-processing", "connect-error", "pgrst-connection-error"],
)
def test_insert_is_retried_only_when_the_server_never_processed_it(
    api: respx.MockRouter, store: Store, answers: list[object], calls: int
) -> None:
    route = _create_with(api, store, answers)
    store.workflows.create(name="w")
    assert len(route.calls) == calls


@pytest.mark.parametrize(
    "answer",
    [httpx.Response(502, text="bad gateway"), httpx.Response(504), httpx.ReadTimeout("slow")],
    ids=["502", "504", "read-timeout"],
)  # fmt: skip
def test_an_insert_that_may_have_been_processed_is_sent_again_only_as_an_insert_by_id(
    api: respx.MockRouter, store: Store, answer: object
) -> None:
    """And when the row is not there afterwards (the first request may still be on its
    way), it is sent again as an upsert on `id` that ignores a duplicate: the same row,
    which cannot be written twice (test_attack_rest_round30.py checks it on PostgreSQL)."""
    route = _create_with(api, store, [answer, httpx.Response(201)])
    store.workflows.create(name="w")
    assert len(route.calls) == 2
    first, again = (c.request for c in route.calls)
    assert json.loads(again.content) == json.loads(first.content)
    assert "resolution=ignore-duplicates" in prefer(again) and "on_conflict" not in query(first)
    assert query(again)["on_conflict"] == ["id"]


def test_an_insert_refused_by_the_server_is_not_sent_again(
    api: respx.MockRouter, store: Store
) -> None:
    """A 500 with PostgreSQL's error was processed and refused: reported, not sent again."""
    answer = httpx.Response(500, json={"code": "XX000", "message": "boom"})
    route = _create_with(api, store, [answer, httpx.Response(201)])
    with pytest.raises(StoreError) as info:
        store.workflows.create(name="w")
    assert len(route.calls) == 1
    assert "\n" not in str(info.value) and SERVICE_KEY not in str(info.value)


def test_an_insert_sent_again_that_fails_reports_the_failure(
    api: respx.MockRouter, store: Store
) -> None:
    """The first answer lost, the row not found, and the insert by id refused too: the
    failure is reported in one line."""
    route = _create_with(api, store, [httpx.Response(502), httpx.Response(502)] * 3)
    with pytest.raises(StoreError) as info:
        store.workflows.create(name="w")
    assert len(route.calls) == 4  # the first, then the insert by id tried three times
    assert "\n" not in str(info.value) and SERVICE_KEY not in str(info.value)


@pytest.mark.parametrize(
    ("status", "calls"), [(400, 1), (404, 1), (409, 1), (503, 3)], ids=["400", "404", "409", "503"]
)
def test_reads_retry_transient_answers_only(
    api: respx.MockRouter, store: Store, status: int, calls: int
) -> None:
    route = api.get("/workflows").respond(status, json={"code": str(status), "message": "x"})
    with pytest.raises(StoreError):
        store.workflows.list()
    assert len(route.calls) == calls


def test_unreachable_supabase_says_so_without_userinfo(api: respx.MockRouter) -> None:
    backend = RestBackend(
        "https://user:hunter22@proj.supabase.co", SERVICE_KEY, "SUPABASE_SERVICE_ROLE_KEY",
        base_delay=0,
    )  # fmt: skip
    api.get("/workflows").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(StoreError, match="Is the project running") as info:
        Store(backend).workflows.list()
    assert "hunter22" not in str(info.value) and "user:" not in str(info.value)
    assert "hunter22" not in repr(backend) and "***@proj.supabase.co" in repr(backend)


def test_a_retried_upsert_reports_the_rows_this_call_wrote(
    api: respx.MockRouter, store: Store
) -> None:
    """The first answer is lost (502) after the server wrote the rows; the retry inserts
    nothing new, and the re-check by id counts them as this call's own."""
    upsert = api.post("/send_records").mock(
        side_effect=[httpx.Response(502), httpx.Response(201, json=[])]
    )
    recheck = api.head("/send_records").respond(200, headers={"content-range": "0-0/3"})
    run, wf = uuid.uuid4(), uuid.uuid4()
    records = [{"run_id": run, "workflow_id": wf, "target_key": str(i)} for i in range(3)]
    assert store.runs.add_records(records) == 3
    assert len(upsert.calls) == 2
    sent = json.loads(upsert.calls[0].request.content)
    assert json.loads(upsert.calls[1].request.content) == sent  # the same ids both times
    ids = query(recheck.calls.last.request)["id"][0]
    assert ids == "in.(" + ",".join(r["id"] for r in sent) + ")"


def test_the_key_is_not_a_plain_attribute(store: Store) -> None:
    plain = [v for v in vars(store.backend).values() if isinstance(v, str)]
    assert SERVICE_KEY not in plain
    assert SERVICE_KEY not in repr(vars(store.backend))


def test_an_insert_whose_answer_was_lost_reports_the_row_it_wrote(
    api: respx.MockRouter, store: Store
) -> None:
    """502 after the server wrote the row: not sent again; the row is found by its id."""
    written: dict[str, object] = {}

    def insert(request: httpx.Request) -> httpx.Response:
        written.update(json.loads(request.content))
        return httpx.Response(502, text="bad gateway")

    def lookup(request: httpx.Request) -> httpx.Response:
        wanted = query(request).get("id", [""])[0]
        found = written and wanted == f"eq.{written['id']}"
        return httpx.Response(200, json=[written] if found else [])

    api.get("/workflows").mock(side_effect=lookup)
    route = api.post("/workflows").mock(side_effect=insert)
    audit = api.post("/audit_log").respond(201)
    row = store.workflows.create(name="w")
    assert len(route.calls) == 1
    # after the lost answer the row was looked up by the id the insert carried, found, and
    # reported; the audit entry follows
    lookups = [query(c.request) for c in api.calls if c.request.method == "GET"]
    assert lookups[-1] == {"select": ["*"], "id": [f"eq.{written['id']}"]}
    assert str(row["id"]) == written["id"] and row["name"] == "w"
    assert [c.request.url.path for c in api.calls][-2:] == [
        "/rest/v1/workflows",
        "/rest/v1/audit_log",
    ]
    assert json.loads(audit.calls.last.request.content)["entity_id"] == written["id"]


def test_a_campaign_run_on_the_rest_store_takes_the_lock_by_rpc_before_it_writes(
    api: respx.MockRouter, store: Store, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """A run on the REST store asks `hybridwb_acquire` for the workflow's lock first; when
    another run holds it, the run is refused in one line and nothing else is written (no
    orphan run row)."""
    from hybridwb.config import load_settings
    from hybridwb.workflows.runner import STALE_AFTER_S, Runner, RunRefused

    wid, other = str(uuid.uuid4()), str(uuid.uuid4())
    api.get("/workflows").respond(
        200, json=[{"id": wid, "name": "welcome", "notebook": None, "trigger_config": {}}]
    )
    acquire = api.post("/rpc/hybridwb_acquire").respond(
        200,
        json={
            "workflow_id": wid,
            "run_id": other,
            "owner": "elsewhere:1",
            "acquired_at": "2026-03-02T03:00:00+00:00",
            "heartbeat_at": "2026-03-02T03:00:05+00:00",
        },
    )
    api.route().respond(200, json=[])
    settings = load_settings(
        tmp_path, {"SUPABASE_URL": BASE, "SUPABASE_SERVICE_ROLE_KEY": SERVICE_KEY}
    )
    with pytest.raises(RunRefused, match="already has an active run") as raised:
        Runner(settings, store).run("welcome", progress=False)
    assert "\n" not in str(raised.value) and other in str(raised.value)
    body = json.loads(acquire.calls.last.request.content)
    # the runner's own stale limit, as the SQL backends are given it
    assert body["p_workflow_id"] == wid and body["p_stale_after"] == STALE_AFTER_S
    assert [c.request.url.path for c in api.calls if c.request.method != "GET"] == [
        "/rest/v1/rpc/hybridwb_acquire"
    ]


# -- the key: on each request, in no attribute -----------------------------------------


def _reachable_text(root: object, depth: int = 6) -> list[str]:
    """Every str/bytes value reachable through `vars()`, dicts and sequences from `root`
    (what a debugger, `vars()` or a reporter that dumps objects can show)."""
    seen: set[int] = set()
    out: list[str] = []

    def walk(value: object, level: int) -> None:
        if id(value) in seen or level > depth:
            return
        seen.add(id(value))
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, bytes):
            out.append(value.decode("latin-1"))
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(k, level + 1)
                walk(v, level + 1)
        elif isinstance(value, list | tuple | set | frozenset):
            for v in value:
                walk(v, level + 1)
        elif hasattr(value, "__dict__") and not isinstance(value, type):
            walk(vars(value), level + 1)

    walk(root, 0)
    return out


def test_no_attribute_reachable_from_the_backend_holds_the_key(store: Store) -> None:
    texts = _reachable_text(store.backend)
    assert len(texts) > 20  # the walk did reach the client, its session and headers
    assert not [t for t in texts if SERVICE_KEY in t]


def test_the_sessions_headers_hold_no_key(store: Store) -> None:
    client = store.backend.client  # type: ignore[attr-defined]
    for headers in (client.headers, client.session.headers):
        assert SERVICE_KEY not in repr(dict(headers)) and "authorization" not in headers


def test_the_key_rides_on_every_request_it_sends(api: respx.MockRouter, store: Store) -> None:
    api.get("/workflows").respond(200, json=[])
    route = api.post("/workflows").respond(201)
    api.post("/audit_log").respond(201)
    store.workflows.create(name="w")
    assert len(route.calls) == 1 and len(api.calls) == 3  # the name check, insert, audit
    for call in api.calls:
        assert call.request.headers["apikey"] == SERVICE_KEY
        assert call.request.headers["authorization"] == f"Bearer {SERVICE_KEY}"


def test_close_closes_the_connections(store: Store) -> None:
    session = store.backend.client.session  # type: ignore[attr-defined]
    assert not session.is_closed
    store.backend.close()
    assert session.is_closed


def test_a_refused_request_raises_outside_the_drivers_exception(
    api: respx.MockRouter, store: Store
) -> None:
    """No `__context__`: the error is not raised inside postgrest-py's except block, so
    no reporter walking the chain reaches a frame that held the request (and the key)."""
    api.get("/workflows").respond(401, json={"message": "Invalid API key"})
    with pytest.raises(AuthError) as info:
        store.workflows.list()
    assert info.value.__cause__ is None and info.value.__context__ is None


@pytest.mark.parametrize("url", ["abcd.supabase.co", "ftp://abcd.supabase.co", "https://"])
def test_a_supabase_url_that_is_not_http_is_refused_in_one_line(url: str) -> None:
    with pytest.raises(AuthError, match="SUPABASE_URL") as info:
        RestBackend(url, SERVICE_KEY, "SUPABASE_SERVICE_ROLE_KEY")
    assert SERVICE_KEY not in str(info.value) and "\n" not in str(info.value)
