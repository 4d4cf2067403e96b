"""Campaign runs end to end: real papermill kernels, a MariaDB source, a PostgreSQL store.

Every test asserts against an independent oracle — direct SQL on MariaDB (pymysql) and on
the store (psycopg), or the file on disk — never against what the code reports about
itself. The source is a schema that is not the sample shop (`members`, `people`) or the
realshop (first/last names, phone in the to-one `address` table).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

import hybridwb
from hybridwb.errors import ValidationError
from tests._mysql import plain_root
from tests._stores import fresh_pg_database
from tests.conftest import MYSQL_HOST, MYSQL_PORT, RO_PASSWORD, RO_USER, _admin, ro_url

pytestmark = [pytest.mark.mysql, pytest.mark.postgres]
HYBRIDWB = str(Path(sys.executable).parent / "hybridwb")
N_MEMBERS = 240
NIGHT = "2026-03-02T23:00:00+09:00"
DAY = "2026-03-03T09:30:00+09:00"

MEMBERS = {
    "displayName": "회원",
    "key": "member_no",
    "audience": True,
    "recipient": "mobile",
    "channel": "sms",
    "consent": "ad_ok",
    "nightConsent": "night_ok",
    "fields": {
        "member_no": {"displayName": "회원번호", "type": "number", "role": "id"},
        "full_name": {"displayName": "이름", "type": "string", "role": "name"},
        "mobile": {"displayName": "휴대폰", "type": "string", "role": "phone"},
        "ad_ok": {"displayName": "광고동의", "type": "number", "role": "consent"},
        "night_ok": {"displayName": "야간동의", "type": "number", "role": "night_consent"},
        "tier": {"displayName": "등급", "type": "string", "filterable": True},
    },
}
PEOPLE = {  # a customer table with no phone at all
    "displayName": "사람",
    "key": "person_id",
    "fields": {
        "person_id": {"displayName": "번호", "type": "number", "role": "id"},
        "first_name": {"displayName": "이름", "type": "string", "role": "first_name"},
        "last_name": {"displayName": "성", "type": "string", "role": "last_name"},
        "email": {"displayName": "이메일", "type": "string", "role": "email"},
    },
}
# the target layer keeps only consenting rows by default (exclude_opt_out)
TIER_A = {"table": "members", "where": {"field": "tier", "op": "eq", "value": "A"}}
TIER_A_ALL = {**TIER_A, "exclude_opt_out": False}  # consent decided by the run's own rules
AD = "(광고) 하이브리드몰\n{{ 이름 }}님, 봄 세일 20% 할인!\n무료수신거부 080-123-4567"


def member(i: int) -> tuple:
    mobile = None if i % 10 == 0 else f"010-{1000 + i:04d}-{i:04d}"
    if i % 25 == 1 and i > 1:  # shares the previous member's phone
        mobile = f"010-{1000 + i - 1:04d}-{i - 1:04d}"
    name = "회\x00원" if i == 7 else f"회원{i}"  # one unreadable row
    return (i, name, mobile, 0 if i % 3 == 0 else 1, 1 if i % 4 == 1 else 0, "A" if i % 2 else "B")


@pytest.fixture(scope="module")
def crm_db() -> Iterator[str]:
    name = f"hybridwb_c_{uuid.uuid4().hex[:8]}"
    conn = _admin()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        cur.execute(f"USE `{name}`")
        cur.execute(
            "CREATE TABLE members (member_no INT PRIMARY KEY, full_name VARCHAR(40) NOT NULL, "
            "mobile VARCHAR(20), ad_ok TINYINT NOT NULL, night_ok TINYINT NOT NULL, "
            "tier CHAR(1) NOT NULL, KEY ix_tier (tier))"
        )
        cur.executemany(
            "INSERT INTO members VALUES (%s, %s, %s, %s, %s, %s)",
            [member(i) for i in range(1, N_MEMBERS + 1)],
        )
        cur.execute(
            "CREATE TABLE people (person_id INT PRIMARY KEY, first_name VARCHAR(20) NOT NULL, "
            "last_name VARCHAR(20) NOT NULL, email VARCHAR(80))"
        )
        cur.executemany(
            "INSERT INTO people VALUES (%s, %s, %s, %s)",
            [(i, f"민{i}", "김", None if i % 7 == 0 else f"p{i}@example.kr") for i in range(1, 61)],
        )
    try:
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@pytest.fixture
def pg_store() -> Iterator[URL]:
    """A fresh PostgreSQL store database for one test."""
    yield from fresh_pg_database("hybridwb_s", migrated=True)


def pg(url: URL, sql: str, params: tuple = ()) -> list[tuple]:
    """The store oracle: plain psycopg, not the code under test."""
    with psycopg.connect(
        f"host=127.0.0.1 user=postgres dbname={url.database}", autocommit=True
    ) as conn:
        return conn.execute(sql, params).fetchall()


def my(db: str, sql: str, params: tuple = ()) -> list[tuple]:
    """The source oracle: plain pymysql as root."""
    conn = plain_root(db)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())
    finally:
        conn.close()


def digits(phone: str | None) -> str | None:
    if not phone:
        return None
    d = re.sub(r"\D", "", phone)
    return "0" + d[2:] if d.startswith("82") and len(d) > 10 else d or None


def e164(phone: str | None) -> str | None:
    """How a Korean number is stored in send_records: +82 and the national digits without
    the trunk 0 (the oracle's own reading, not phonenumbers)."""
    d = digits(phone)
    return "+82" + d[1:] if d and d.startswith("0") else d


def source_url(db: str) -> str:
    return ro_url(db).render_as_string(hide_password=False)


@pytest.fixture
def crm(
    crm_db: str, pg_store: URL, monkeypatch: pytest.MonkeyPatch
) -> Iterator[hybridwb.Workbench]:
    """A workbench on the members schema (MariaDB) with a PostgreSQL store, configured
    through the environment so `hybridwb` subprocesses see the same."""
    monkeypatch.setenv("HYBRIDWB_SOURCE_URL", source_url(crm_db))
    monkeypatch.setenv("HYBRIDWB_STORE_URL", pg_store.render_as_string(hide_password=False))
    wb = hybridwb.connect()
    wb.store.init()
    wb.mappings.save("members", MEMBERS)
    wb.mappings.save("people", PEOPLE)
    wb.templates.create("안내", "{{ 이름 }}님, 이번 달 안내입니다.")
    yield wb
    wb.close()


def record_keys(store: URL, run_id: object) -> list[str]:
    return [
        r[0]
        for r in pg(store, "SELECT target_key FROM send_records WHERE run_id = %s", (str(run_id),))
    ]


def frozen_keys(store: URL, run_id: object) -> set[str]:
    return {
        r[0]
        for r in pg(store, "SELECT target_key FROM run_targets WHERE run_id = %s", (str(run_id),))
    }


def eligible(
    db: str, where: str = "tier = 'A' AND ad_ok = 1", ad: bool = False, night: bool = False
) -> dict[str, str]:
    """{key: phone digits} the source says should get a message: a phone, a readable name,
    consent for ads (and night consent at night), one message per phone (lowest key); for
    ads, no phone any member of the whole table refused (at night: night consent too)."""
    rows = my(
        db,
        f"SELECT member_no, mobile, full_name, ad_ok, night_ok FROM members WHERE {where} ORDER BY member_no",
    )
    refused = {
        digits(mobile)
        for mobile, ad_ok, night_ok in my(db, "SELECT mobile, ad_ok, night_ok FROM members")
        if ad and (not ad_ok or (night and not night_ok))
    }
    out: dict[str, str] = {}
    seen: set[str] = set()
    for key, mobile, name, ad_ok, night_ok in rows:
        phone = digits(mobile)
        if phone is None or "\x00" in name or (ad and not ad_ok) or (night and not night_ok):
            continue
        if phone in refused:
            continue
        if phone not in seen:
            seen.add(phone)
            out[str(key)] = phone
    return out


# -- 1. every configuration route reaches the kernel -----------------------------------------
ROUTES = ["arguments", "mysql-arguments", "env", "supabase-db-url", "dotenv", "pyproject"]


@pytest.mark.parametrize("route", ROUTES)
def test_every_configuration_route_reaches_the_kernel(
    route: str, crm_db: str, pg_store: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, store = source_url(crm_db), pg_store.render_as_string(hide_password=False)
    if route == "arguments":
        wb = hybridwb.connect(source=src, store=store)
    elif route == "mysql-arguments":
        wb = hybridwb.connect(
            store=store,
            mysql_host=MYSQL_HOST,
            mysql_port=MYSQL_PORT,
            mysql_user=RO_USER,
            mysql_password=RO_PASSWORD,
            mysql_database=crm_db,
        )
    elif route == "env":
        monkeypatch.setenv("HYBRIDWB_SOURCE_URL", src)
        monkeypatch.setenv("HYBRIDWB_STORE_URL", store)
        wb = hybridwb.connect()
    elif route == "supabase-db-url":  # Supabase's Postgres connection string, from env
        monkeypatch.setenv("HYBRIDWB_SOURCE_URL", src)
        monkeypatch.setenv(
            "SUPABASE_DB_URL", f"postgresql://postgres@127.0.0.1:5432/{pg_store.database}"
        )
        wb = hybridwb.connect()
    elif route == "dotenv":
        (tmp_path / ".env").write_text(
            f"MYSQL_HOST={MYSQL_HOST}\nMYSQL_PORT={MYSQL_PORT}\nMYSQL_READ_USER={RO_USER}\n"
            f"MYSQL_READ_PASSWORD={RO_PASSWORD}\nMYSQL_DATABASE={crm_db}\nHYBRIDWB_STORE_URL={store}\n"
        )
        wb = hybridwb.connect()
    else:
        (tmp_path / "pyproject.toml").write_text(
            f'[tool.hybridwb]\nsource_url = "{src}"\nstore_url = "{store}"\n'
        )
        wb = hybridwb.connect()
    if route in ("dotenv", "pyproject"):
        # the file changes after this process read it: the kernel runs on the settings it is
        # handed, so a kernel that read the file again (and found the same settings there
        # while it was unchanged) would now connect with a wrong password and fail
        config = tmp_path / (".env" if route == "dotenv" else "pyproject.toml")
        config.write_text(config.read_text().replace(RO_PASSWORD, "not-the-password"))
    wb.store.init()
    wb.mappings.save("members", MEMBERS)
    wb.templates.create("안내", "{{ 이름 }}님, 이번 달 안내입니다.")
    wf = wb.workflows.create("routes", target_config=TIER_A, message_config={"template": "안내"})
    environ = dict(os.environ)
    final = wb.workflows.run(wf["id"], limit=15, progress=False)
    assert dict(os.environ) == environ, "the calling process's environment changed"
    expected = {
        str(r[0])
        for r in my(
            crm_db,
            "SELECT member_no FROM members WHERE tier = 'A' AND ad_ok = 1 ORDER BY member_no LIMIT 15",
        )
    }
    assert frozen_keys(pg_store, final["id"]) == expected  # the kernel read MariaDB, not the sample
    assert set(record_keys(pg_store, final["id"])) == set(
        eligible(crm_db, "tier = 'A' AND ad_ok = 1 AND member_no <= 43")
    )
    wb.close()


def test_supabase_rest_settings_reach_the_kernel(tmp_path: Path) -> None:
    """The REST store cannot run campaigns (they need SQL), but its settings must arrive."""
    import nbformat
    import papermill as pm

    from hybridwb.config import load_settings
    from hybridwb.workflows import context

    settings = load_settings(
        tmp_path,
        {"SUPABASE_URL": "https://abc.supabase.co", "SUPABASE_SERVICE_ROLE_KEY": "canary-svc-key"},
        row_cap=4321,
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import json, hashlib\nfrom hybridwb.workflows import run_settings\n"
            "s = run_settings()\n"
            "open('seen.json', 'w').write(json.dumps({'url': s.supabase_url, 'cap': s.row_cap, "
            "'key': hashlib.sha256(s.supabase_service_role_key.get_secret_value().encode()).hexdigest()}))"
        )
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, tmp_path / "probe.ipynb")
    with context.ipc_directory() as ipc:
        pm.execute_notebook(
            str(tmp_path / "probe.ipynb"),
            str(tmp_path / "out.ipynb"),
            kernel_name="python3",
            kernel_manager_class=context.kernel_manager_class(context.kernel_env(settings), ipc),
            progress_bar=False,
            cwd=str(tmp_path),
        )
    seen = json.loads((tmp_path / "seen.json").read_text())
    import hashlib

    assert seen == {
        "url": "https://abc.supabase.co",
        "cap": 4321,
        "key": hashlib.sha256(b"canary-svc-key").hexdigest(),
    }
    assert "canary-svc-key" not in (tmp_path / "out.ipynb").read_text()
    assert "SUPABASE_SERVICE_ROLE_KEY" not in os.environ


# -- 2. policies from the store's own history -------------------------------------------------
def test_second_once_per_recipient_run_writes_zero_and_exits_non_zero(
    crm, crm_db: str, pg_store: URL
) -> None:  # type: ignore[no-untyped-def]
    wf = crm.workflows.create(
        "once",
        target_config=TIER_A,
        message_config={"template": "안내", "policy": {"once_per_recipient": True}},
    )
    first = crm.workflows.run(wf["id"], progress=False)
    assert first["status"] == "succeeded", first["error"]
    keys = record_keys(pg_store, first["id"])
    assert len(keys) == len(set(keys))
    assert set(keys) == set(eligible(crm_db))
    nul = pg(
        pg_store,
        "SELECT count(*) FROM run_skips WHERE run_id = %s AND reason LIKE 'unreadable%%'",
        (str(first["id"]),),
    )
    assert nul == [(1,)]  # member 7's NUL byte: skipped and counted, the run went on
    second = subprocess.run([HYBRIDWB, "run", "once"], capture_output=True, text=True, timeout=180)
    assert second.returncode == 1, second.stdout + second.stderr
    assert "already messaged" in second.stderr and "Traceback" not in second.stderr
    runs = pg(
        pg_store,
        "SELECT id, status FROM workflow_runs WHERE workflow_id = %s AND id <> %s",
        (str(wf["id"]), str(first["id"])),
    )
    assert len(runs) == 1 and runs[0][1] == "empty"
    assert pg(
        pg_store, "SELECT count(*) FROM send_records WHERE run_id = %s", (str(runs[0][0]),)
    ) == [(0,)]


@pytest.mark.parametrize(
    "old_spelling",
    [lambda p: p[1:], lambda p: "0" + p[3:]],
    ids=["country-code-digits", "national-digits"],
)
def test_records_stored_before_phones_were_e164_still_count_as_messaged(
    old_spelling, crm, crm_db: str, pg_store: URL
) -> None:  # type: ignore[no-untyped-def]
    """send_records written by an earlier version hold digits (`01010010001`); a
    once-per-recipient re-run must still see those phones as messaged."""
    wf = crm.workflows.create(
        "once-old",
        target_config=TIER_A,
        message_config={"template": "안내", "policy": {"once_per_recipient": True}},
    )
    first = crm.workflows.run(wf["id"], progress=False)
    assert first["status"] == "succeeded", first["error"]
    stored = pg(
        pg_store, "SELECT id, recipient FROM send_records WHERE run_id = %s", (str(first["id"]),)
    )
    assert stored and all(r.startswith("+82") for _, r in stored)
    for rid, recipient in stored:
        pg(
            pg_store,
            "UPDATE send_records SET recipient = %s WHERE id = %s RETURNING id",
            (old_spelling(recipient), rid),
        )
    second = crm.workflows.run(wf["id"], progress=False)
    assert pg(
        pg_store, "SELECT count(*) FROM send_records WHERE run_id = %s", (str(second["id"]),)
    ) == [(0,)]


def test_frequency_cap_counts_messages_of_every_workflow(crm, crm_db: str, pg_store: URL) -> None:  # type: ignore[no-untyped-def]
    a = crm.workflows.create("tier-a", target_config=TIER_A, message_config={"template": "안내"})
    everyone = {"table": "members", "where": {"field": "tier", "op": "in", "value": ["A", "B"]}}
    b = crm.workflows.create(
        "everyone",
        target_config=everyone,
        message_config={
            "template": "안내",
            "policy": {"frequency_cap": {"messages": 1, "days": 7}},
        },
    )
    assert crm.workflows.run(a["id"], progress=False)["status"] == "succeeded"
    run_b = crm.workflows.run(b["id"], progress=False)
    assert run_b["status"] == "succeeded", run_b["error"]
    overlap = pg(
        pg_store,
        "SELECT count(*) FROM send_records b JOIN send_records a ON a.recipient = b.recipient "
        "WHERE b.workflow_id = %s AND a.workflow_id = %s",
        (str(b["id"]), str(a["id"])),
    )
    assert overlap == [(0,)]
    a_phones = set(eligible(crm_db).values())
    expected_b = {k for k, phone in eligible(crm_db, "ad_ok = 1").items() if phone not in a_phones}
    assert set(record_keys(pg_store, run_b["id"])) == expected_b
    capped = pg(
        pg_store,
        "SELECT count(*) FROM run_skips WHERE run_id = %s AND reason = 'frequency cap'",
        (str(run_b["id"]),),
    )
    assert capped[0][0] > 0
    html = Path(run_b["report_path"]).read_text(encoding="utf-8")
    assert "frequency cap" in html and "at most 1 per recipient per 7 days" in html


# -- 3. crashes, resume and the frozen set -----------------------------------------------------
def _slow(name: str) -> subprocess.Popen:
    return subprocess.Popen(
        [HYBRIDWB, "run", name, "-p", "batch_size", "10", "-p", "batch_pause", "0.3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_records(store: URL, wf_id: object, n: int, proc: subprocess.Popen) -> str:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        rows = pg(
            store,
            "SELECT r.id, count(s.id) FROM workflow_runs r LEFT JOIN send_records s ON s.run_id = r.id WHERE r.workflow_id = %s GROUP BY r.id",
            (str(wf_id),),
        )
        if rows and rows[0][1] >= n:
            return str(rows[0][0])
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError("no records in time")


def _kernels(pid: int) -> list[int]:
    out = subprocess.run(
        ["pgrep", "-f", "ipykernel_launcher"], capture_output=True, text=True
    ).stdout
    found = []
    for k in map(int, out.split()):
        try:
            if int(Path(f"/proc/{k}/stat").read_text().split()[3]) == pid:
                found.append(k)
        except (OSError, ValueError):
            continue
    return found


@pytest.mark.parametrize("victim", ["kernel", "parent"])
def test_sigkill_then_resume_completes_exactly_the_frozen_set(
    victim: str, crm, crm_db: str, pg_store: URL, mysql_admin
) -> None:  # type: ignore[no-untyped-def]
    wf = crm.workflows.create("crash", target_config=TIER_A, message_config={"template": "안내"})
    frozen_expected = {
        str(r[0])
        for r in my(crm_db, "SELECT member_no FROM members WHERE tier = 'A' AND ad_ok = 1")
    }
    sendable = eligible(crm_db)
    proc = _slow("crash")
    run_id = _wait_records(pg_store, wf["id"], 30, proc)
    kernels = _kernels(proc.pid)
    assert kernels, "no kernel found"
    os.kill(kernels[0] if victim == "kernel" else proc.pid, signal.SIGKILL)
    if victim == "parent":  # the orphaned kernel notices (ipykernel's parent poller) and exits
        deadline = time.monotonic() + 15
        while any(Path(f"/proc/{k}").exists() for k in kernels) and time.monotonic() < deadline:
            time.sleep(0.2)
        for k in kernels:
            if Path(f"/proc/{k}").exists():
                os.kill(k, signal.SIGKILL)
    proc.communicate(timeout=120)
    status = pg(pg_store, "SELECT status FROM workflow_runs WHERE id = %s", (run_id,))[0][0]
    assert status != "succeeded"  # the resume below really has work to do
    partial = len(record_keys(pg_store, run_id))
    assert 0 < partial < len(sendable)
    if victim == "parent":
        assert status == "running"
        doctor = subprocess.run([HYBRIDWB, "doctor"], capture_output=True, text=True, timeout=120)
        assert doctor.returncode == 1 and "stale run" in doctor.stdout and run_id in doctor.stdout
    # the source changes between crash and resume: one new target, one removed
    with mysql_admin.cursor() as cur:
        cur.execute(
            f"INSERT INTO `{crm_db}`.members VALUES (999, '신규', '010-9999-9999', 1, 1, 'A')"
        )
        unsent = sorted(set(sendable) - set(record_keys(pg_store, run_id)), key=int)
        gone = unsent[-1]
        cur.execute(f"DELETE FROM `{crm_db}`.members WHERE member_no = %s", (int(gone),))
    try:
        resumed = subprocess.run(
            [HYBRIDWB, "run", "--resume", run_id, "-p", "batch_pause", "0"],
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert frozen_keys(pg_store, run_id) == frozen_expected
        keys = record_keys(pg_store, run_id)
        assert len(keys) == len(set(keys)), "a target has two records"
        assert set(keys) == set(sendable) - {gone}  # the new member 999 is not messaged
        skips = dict(
            pg(pg_store, "SELECT target_key, reason FROM run_skips WHERE run_id = %s", (run_id,))
        )
        assert skips[gone] == "gone from source"
        assert set(keys) | set(skips) == frozen_expected
        row = pg(
            pg_store,
            "SELECT status, sent_count, skipped_count, target_count FROM workflow_runs WHERE id = %s",
            (run_id,),
        )[0]
        assert row == ("succeeded", len(keys), len(skips), len(frozen_expected))
        changed = pg(pg_store, "SELECT changed_count FROM run_state WHERE run_id = %s", (run_id,))[
            0
        ][0]
        assert changed == 1  # the removed member; the new one was never frozen
        assert pg(pg_store, "SELECT count(*) FROM run_locks") == [(0,)]
    finally:
        with mysql_admin.cursor() as cur:
            cur.execute(f"DELETE FROM `{crm_db}`.members WHERE member_no = 999")
            cur.execute(
                f"INSERT IGNORE INTO `{crm_db}`.members VALUES (%s, %s, %s, %s, %s, %s)",
                member(int(gone)),
            )


def test_two_concurrent_runs_of_one_workflow_give_one_run(crm, pg_store: URL) -> None:  # type: ignore[no-untyped-def]
    wf = crm.workflows.create("twice", target_config=TIER_A, message_config={"template": "안내"})
    other = crm.workflows.create("other", target_config=TIER_A, message_config={"template": "안내"})
    procs = [
        subprocess.Popen(
            [HYBRIDWB, "run", name], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name in ("twice", "twice", "other")
    ]
    outs = [p.communicate(timeout=180) for p in procs]
    assert sorted(p.returncode for p in procs[:2]) == [0, 1], outs
    assert any("already has an active run" in err for _, err in outs[:2]), outs
    assert pg(
        pg_store, "SELECT count(*) FROM workflow_runs WHERE workflow_id = %s", (str(wf["id"]),)
    ) == [(1,)]
    # a concurrent run of another workflow has its own kernel sockets and succeeds
    assert procs[2].returncode == 0, outs[2]
    assert pg(
        pg_store, "SELECT status FROM workflow_runs WHERE workflow_id = %s", (str(other["id"]),)
    ) == [("succeeded",)]


# -- 4. advertising: refused when unlawful, consent and quiet hours ------------------------------
def test_advertising_template_without_the_prefix_is_refused(crm, pg_store: URL) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match="광고"):
        crm.templates.create(
            "세일", AD.replace("(광고) ", ""), advertising=True, sender="하이브리드몰"
        )
    with pytest.raises(ValidationError, match="opt-out"):
        crm.templates.create("세일", AD.rsplit("\n", 1)[0], advertising=True, sender="하이브리드몰")
    assert pg(pg_store, "SELECT count(*) FROM message_templates WHERE name = '세일'") == [(0,)]
    with pytest.raises(ValidationError, match="광고"):
        crm.workflows.create(
            "inline-ad",
            target_config=TIER_A,
            message_config={
                "content": "{{ 이름 }}님 세일!",
                "advertising": True,
                "sender": "하이브리드몰",
            },
        )
    ok = crm.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
    with pytest.raises(ValidationError, match="광고"):
        crm.templates.update(ok["id"], content="{{ 이름 }}님 세일!\n무료수신거부 080-123-4567")
    assert pg(pg_store, "SELECT content FROM message_templates WHERE name = '세일'") == [(AD,)]
    assert pg(pg_store, "SELECT count(*) FROM workflows") == [(0,)]


@pytest.mark.parametrize("mode", ["exclude", "wait"])
def test_quiet_hours(mode: str, crm, crm_db: str, pg_store: URL) -> None:  # type: ignore[no-untyped-def]
    crm.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
    wf = crm.workflows.create(
        f"night-{mode}",
        target_config=TIER_A_ALL,
        message_config={"template": "세일", "quiet_hours": mode},
    )
    night = subprocess.run(
        [HYBRIDWB, "run", wf["name"], "--now", NIGHT], capture_output=True, text=True, timeout=180
    )
    run_id = pg(pg_store, "SELECT id FROM workflow_runs WHERE workflow_id = %s", (str(wf["id"]),))[
        0
    ][0]
    with_night = eligible(crm_db, "tier = 'A'", ad=True, night=True)
    assert set(record_keys(pg_store, run_id)) == set(with_night)
    reasons = dict(
        pg(
            pg_store,
            "SELECT reason, count(*) FROM run_skips WHERE run_id = %s GROUP BY reason",
            (run_id,),
        )
    )
    no_consent = {
        str(r[0])
        for r in my(
            crm_db,
            "SELECT member_no FROM members WHERE tier = 'A' AND ad_ok = 0 AND mobile IS NOT NULL AND member_no <> 7",
        )
    }
    assert reasons.get("no marketing consent") == len(no_consent)
    status = pg(pg_store, "SELECT status FROM workflow_runs WHERE id = %s", (run_id,))[0][0]
    if mode == "exclude":
        assert night.returncode == 0, night.stderr
        assert reasons.get("quiet hours (no night consent)", 0) > 0 and status == "succeeded"
    else:
        assert night.returncode == 0 and "waiting" in night.stdout, night.stdout + night.stderr
        assert status == "waiting" and "quiet hours (no night consent)" not in reasons
        day = subprocess.run(
            [HYBRIDWB, "run", "--resume", str(run_id), "--now", DAY],
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert day.returncode == 0, day.stdout + day.stderr
        assert set(record_keys(pg_store, run_id)) == set(eligible(crm_db, "tier = 'A'", ad=True))


# -- 5. audiences that are not the sample shop ---------------------------------------------------
def test_a_customer_table_without_a_phone_is_refused_for_sms_and_runs_by_email(
    crm, crm_db: str, pg_store: URL
) -> None:  # type: ignore[no-untyped-def]
    people = {"table": "people", "where": {"field": "번호", "op": "lte", "value": 30}}
    with pytest.raises(ValidationError, match="recipient"):
        crm.workflows.create(
            "sms-people", target_config=people, message_config={"template": "안내"}
        )
    assert pg(pg_store, "SELECT count(*) FROM workflows") == [(0,)]
    crm.mappings.save("people", {**PEOPLE, "channel": "email", "recipient": "email"})
    crm.templates.create("메일", "{{ 성 }}{{ 이름 }}님께 드리는 안내")
    wf = crm.workflows.create(
        "mail-people", target_config=people, message_config={"template": "메일"}
    )
    final = crm.workflows.run(wf["id"], progress=False)
    assert final["status"] == "succeeded", final["error"]
    expected = {
        (str(i), e)
        for i, e in my(
            crm_db,
            "SELECT person_id, email FROM people WHERE person_id <= 30 AND email IS NOT NULL",
        )
    }
    got = set(
        pg(
            pg_store,
            "SELECT target_key, recipient FROM send_records WHERE run_id = %s",
            (str(final["id"]),),
        )
    )
    assert got == expected
    content = pg(
        pg_store,
        "SELECT content FROM send_records WHERE run_id = %s AND target_key = '1'",
        (str(final["id"]),),
    )
    assert content == [("김민1님께 드리는 안내",)]


def test_realshop_phone_in_the_related_address_end_to_end(
    realshop_db: str, pg_store: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import sel_url

    monkeypatch.setenv(
        "HYBRIDWB_SOURCE_URL", sel_url(realshop_db).render_as_string(hide_password=False)
    )
    monkeypatch.setenv("HYBRIDWB_STORE_URL", pg_store.render_as_string(hide_password=False))
    wb = hybridwb.connect()
    wb.store.init()
    wb.mappings.save(
        "address",
        {
            "displayName": "주소",
            "key": "address_id",
            "fields": {
                "address_id": {"displayName": "주소번호", "type": "number", "role": "id"},
                "phone": {"displayName": "전화", "type": "string", "role": "phone"},
            },
        },
    )
    wb.mappings.save(
        "customer",
        {
            "displayName": "고객",
            "key": "customer_id",
            "audience": True,
            "recipient": "address.phone",
            "fields": {
                "customer_id": {"displayName": "고객번호", "type": "number", "role": "id"},
                "first_name": {"displayName": "이름", "type": "string", "role": "first_name"},
                "last_name": {"displayName": "성", "type": "string", "role": "last_name"},
                "address_id": {"displayName": "주소ID", "type": "number", "role": "reference"},
            },
            "relations": [
                {
                    "table": "address",
                    "localField": "address_id",
                    "foreignField": "address_id",
                    "kind": "many-to-one",
                    "name": "address",
                }
            ],
        },
    )
    wb.templates.create("고객 안내", "{{ 성 }} {{ 이름 }}님 안내")
    target = {"table": "customer", "where": {"field": "고객번호", "op": "lte", "value": 40}}
    wf = wb.workflows.create(
        "realshop", target_config=target, message_config={"template": "고객 안내"}
    )
    final = wb.workflows.run(wf["id"], progress=False)
    assert final["status"] == "succeeded", final["error"]
    rows = my(
        realshop_db,
        "SELECT c.customer_id, a.phone FROM customer c JOIN address a ON a.address_id = c.address_id WHERE c.customer_id <= 40",
    )
    expected = {(str(k), e164(p)) for k, p in rows if e164(p)}
    got = set(
        pg(
            pg_store,
            "SELECT target_key, recipient FROM send_records WHERE run_id = %s",
            (str(final["id"]),),
        )
    )
    assert got == expected and len(got) > 20
    first = my(realshop_db, "SELECT last_name, first_name FROM customer WHERE customer_id = 1")[0]
    assert pg(
        pg_store,
        "SELECT content FROM send_records WHERE run_id = %s AND target_key = '1'",
        (str(final["id"]),),
    ) == [(f"{first[0]} {first[1]}님 안내",)]
    wb.close()


# -- 6. start-up refusals leave nothing behind ------------------------------------------------------
def test_code_in_a_parameter_name_is_refused_where_stored_and_where_built(
    crm, pg_store: URL, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    evil = {"x = 1\nopen('pwned', 'w').write('x')\n#": 1}
    with pytest.raises(ValidationError, match="identifier"):
        crm.workflows.create(
            "evil",
            target_config=TIER_A,
            message_config={"template": "안내"},
            trigger_config={"parameters": evil},
        )
    wf = crm.workflows.create("evil", target_config=TIER_A, message_config={"template": "안내"})
    with pytest.raises(ValidationError, match="identifier"):
        crm.workflows.run(wf["id"], evil, progress=False)
    assert pg(pg_store, "SELECT count(*) FROM workflow_runs") == [(0,)]
    # a run row whose stored parameters were tampered with is refused where the notebook is built
    run_id = uuid.uuid4()
    pg(
        pg_store,
        "INSERT INTO workflow_runs (id, workflow_id, status, parameters, dry_run, target_count, rendered_count, skipped_count, failed_count, sent_count, missing_variables, stats, created_at) "
        "VALUES (%s, %s, 'failed', %s, false, 0, 0, 0, 0, 0, '[]', '{}', now()) RETURNING id",
        (str(run_id), str(wf["id"]), json.dumps(evil)),
    )
    with pytest.raises(ValidationError, match="identifier"):
        crm.workflows.run(None, resume=run_id, progress=False)
    assert not (tmp_path / "pwned").exists()
    assert not list(tmp_path.rglob("pwned"))
    assert pg(pg_store, "SELECT count(*) FROM run_locks") == [(0,)]


def test_an_unwritable_reports_directory_is_one_line_and_leaves_no_run(
    crm, pg_store: URL, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    crm.workflows.create("nowhere", target_config=TIER_A, message_config={"template": "안내"})
    (tmp_path / "reports").write_text("a file where the directory should be")
    result = subprocess.run(
        [HYBRIDWB, "run", "nowhere"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1 and "reports directory" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert pg(pg_store, "SELECT count(*) FROM workflow_runs") == [(0,)]
    assert pg(pg_store, "SELECT count(*) FROM run_locks") == [(0,)]


def test_a_cron_that_never_fires_is_refused_and_a_bad_row_never_stops_run_due(
    crm, pg_store: URL
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match="never fires"):
        crm.workflows.create(
            "feb30",
            target_config=TIER_A,
            message_config={"template": "안내"},
            trigger_type="schedule",
            schedule_config={"cron": "0 0 30 2 *"},
        )
    good = crm.workflows.create(
        "every-minute",
        target_config=TIER_A,
        message_config={"template": "안내"},
        status="active",
        trigger_type="schedule",
        schedule_config={"cron": "* * * * *", "timezone": "UTC"},
    )
    bad = crm.workflows.create(
        "bad-row",
        target_config=TIER_A,
        message_config={"template": "안내"},
        status="active",
        trigger_type="schedule",
        schedule_config={"cron": "* * * * *"},
    )
    pg(
        pg_store,
        "UPDATE workflows SET schedule_config = %s WHERE id = %s RETURNING id",
        (json.dumps({"cron": "0 0 30 2 *", "timezone": "Nowhere/Land"}), str(bad["id"])),
    )
    result = subprocess.run([HYBRIDWB, "run", "--due"], capture_output=True, text=True, timeout=180)
    assert "bad-row" in result.stderr and "bad schedule" in result.stderr
    runs = pg(pg_store, "SELECT workflow_id, status FROM workflow_runs")
    assert runs == [(good["id"], "succeeded")]
    assert result.returncode == 1  # a problem was reported
    assert datetime.now(UTC)  # keep the import honest


def test_a_run_refreshes_the_history_statistics_as_its_records_grow(  # type: ignore[no-untyped-def]
    crm, crm_db: str, pg_store: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With stale statistics (autovacuum off, or behind a big run) the planner reads the
    whole history per batch; the run re-analyzes send_records once its records have grown
    (checked in the server's own statistics view)."""
    from hybridwb.platform.campaigns import Campaigns, this_owner
    from hybridwb.workflows import process

    def analyzed() -> int:
        return pg(
            pg_store,
            "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'send_records'",
        )[0][0]

    monkeypatch.setattr(process, "ANALYZE_AFTER", 2)
    wf = crm.workflows.create("stats", target_config=TIER_A, message_config={"template": "안내"})
    run = crm.store.runs.create(wf["id"])
    owner, campaigns = this_owner(), Campaigns(crm.store.backend)
    campaigns.acquire(wf["id"], run["id"], owner, stale_after=600)
    campaigns.start_state(run["id"], owner, "test")
    before = analyzed()
    stats = crm.workflows.process(wf["id"], run["id"], owner=owner, batch_size=2, progress=False)
    campaigns.release(wf["id"], run["id"])
    assert stats["records"] >= 4  # enough batches for the threshold to be passed twice
    assert analyzed() >= before + 2
    assert set(record_keys(pg_store, run["id"])) == set(eligible(crm_db))


def _pg_do(url: URL, sql: str) -> None:
    """A statement of the store oracle that returns no rows."""
    with psycopg.connect(
        f"host=127.0.0.1 user=postgres dbname={url.database}", autocommit=True
    ) as conn:
        conn.execute(sql)


def _history_rows(store: URL) -> float:
    """The rows the planner's statistics of send_records describe: set by ANALYZE (and
    VACUUM) in its own transaction, so read at once (the statistics views lag)."""
    return pg(store, "SELECT reltuples FROM pg_class WHERE oid = 'send_records'::regclass")[0][0]


def _stats_run(crm: hybridwb.Workbench, name: str) -> dict:
    """A run of TIER_A in batches of 2 under this process's lock, with autovacuum kept
    off the history (the only ANALYZE is the run's own)."""
    from hybridwb.platform.campaigns import Campaigns, this_owner

    url = crm.store.backend.engine.url
    _pg_do(url, "ALTER TABLE send_records SET (autovacuum_enabled = false)")
    wf = crm.workflows.create(name, target_config=TIER_A, message_config={"template": "안내"})
    run = crm.store.runs.create(wf["id"])
    owner, campaigns = this_owner(), Campaigns(crm.store.backend)
    campaigns.acquire(wf["id"], run["id"], owner, stale_after=600)
    campaigns.start_state(run["id"], owner, "test")
    try:
        return crm.workflows.process(wf["id"], run["id"], owner=owner, batch_size=2, progress=False)
    finally:
        campaigns.release(wf["id"], run["id"])


def test_a_run_leaves_a_history_it_does_not_double_unanalyzed(
    crm: hybridwb.Workbench, crm_db: str, pg_store: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Statistics of a history larger than what the run writes describe it well enough
    (each recipient rare, as the run's own records): the run does not ANALYZE it (some
    150 ms of the server's CPU each, per 100k targets), however low the threshold."""
    from hybridwb.workflows import process

    _pg_do(
        pg_store,
        "INSERT INTO send_records (id, run_id, workflow_id, target_key, recipient, channel, "
        "status, created_at) SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), "
        "g::text, '+8210' || (20000000 + g)::text, 'sms', 'queued', now() - interval '30 days' "
        "FROM generate_series(1, 1000) g",
    )
    _pg_do(pg_store, "ANALYZE send_records")
    assert _history_rows(pg_store) == 1000
    monkeypatch.setattr(process, "ANALYZE_AFTER", 2)
    stats = _stats_run(crm, "big-history")
    assert stats["records"] == len(eligible(crm_db)) >= 4
    assert _history_rows(pg_store) == 1000  # not analyzed: as the statistics were


def test_a_run_does_not_analyze_the_history_after_its_last_batch(
    crm: hybridwb.Workbench, crm_db: str, pg_store: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refresh is for the plans of the run's next batches: when the threshold is
    passed by the last batch, no check of the run is left to plan, and none is made; a
    threshold passed before it still refreshes (an empty history, never analyzed)."""
    from hybridwb.workflows import process

    records = len(eligible(crm_db))
    monkeypatch.setattr(process, "ANALYZE_AFTER", records)  # passed by the last batch only
    assert _stats_run(crm, "last-batch")["records"] == records
    assert _history_rows(pg_store) <= 0  # never analyzed (-1), as the store was made
    monkeypatch.setattr(process, "ANALYZE_AFTER", 1)  # passed by the first batch
    assert _stats_run(crm, "first-batch")["records"] == records
    assert _history_rows(pg_store) > records  # the first run's records and some of its own
