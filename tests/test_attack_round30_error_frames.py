"""Attack round 30 on "no phone in tracebacks with locals".

An error a user causes is one line (`HybridwbError`), but it was raised deep inside a run,
and its traceback kept every frame on the way: the pager's `rows`, the freezer's `batch`
and `FrozenPage(pairs=[('1', '+8210…'), …])`. A traceback printed with its frames' locals
(`traceback.TracebackException(..., capture_locals=True)`, IPython's `%xmode Verbose`, rich's
`show_locals`) showed the customers' phones. Now an expected error leaves a public call
(every method of the services, and the iterations they return) with the frames below that
call dropped: it is its one line, and the caller's frames.

Source: a fresh MariaDB database read by the SELECT-only account (a saved query whose key
repeats: a customer with two primary addresses); store: SQLite; oracle: the phones and
names put in the source, and their E.164 form, searched for in the formatted traceback.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import hybridwb
from hybridwb.errors import HybridwbError, ValidationError
from hybridwb.platform.campaigns import Campaigns
from tests.conftest import mariadb_maker
from tests.test_attack_once_round2 import DAY, source_url
from tests.test_attack_round30_debug_rows import F

pytestmark = [pytest.mark.mysql]

PEOPLE = [(i, f"회원{i:02d}", f"010-7400-{i:04d}") for i in range(1, 9)]
# every member's primary address; member 5 has two (a data error the query does not expect)
ADDRESSES = [(i, f"010-7500-{i:04d}", 1) for i in range(1, 9)] + [(5, "010-7599-0005", 1)]
VALUES = [
    *(v for _, *row in PEOPLE for v in row),
    *(tel for _, tel, _ in ADDRESSES),
    *(f"+8210{tel[4:8]}{tel[9:]}" for _, tel, _ in ADDRESSES),
]
QUERY = {
    "sql": "SELECT m.code, m.name, a.tel FROM members m "
    "JOIN addresses a ON a.code = m.code AND a.prim = 1"
}


MEMBERS = {
    "displayName": "회원",
    "key": "code",
    "audience": True,
    "recipient": "tel",
    "fields": {
        "code": F("번호", "number", "id"),
        "name": F("이름", role="name", pii=True),
        "tel": F("전화", role="phone", pii=True),
    },
}


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_frm")


@pytest.fixture
def wb(source: Callable[..., str], tmp_path: Path) -> Iterator[hybridwb.Workbench]:
    db = source(
        "CREATE TABLE members (code INT PRIMARY KEY, name VARCHAR(20), tel VARCHAR(20))",
        "CREATE TABLE addresses (code INT NOT NULL, tel VARCHAR(20), prim TINYINT(1))",
        rows={"members": PEOPLE, "addresses": ADDRESSES},
    )
    with hybridwb.connect(source=source_url(db), store=f"sqlite:///{tmp_path / 's.db'}") as wb:
        wb.store.init()
        wb.mappings.save("members", MEMBERS)
        yield wb


def shown_with_locals(exc: BaseException) -> str:
    return "".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format())


def leaked(text: str) -> list[str]:
    return [v for v in VALUES if v in text]


def test_a_runs_error_carries_no_customer_value_in_its_frames(wb: hybridwb.Workbench) -> None:
    wb.templates.create("안내", "{{ 이름 }}님, 안내입니다.")
    wf = wb.workflows.create("frames", target_config=QUERY, message_config={"template": "안내"})
    run = wb.store.runs.create(wf["id"], {})
    Campaigns(wb.store.backend).start_state(run["id"], "test:1", "manual")
    with pytest.raises(ValidationError) as refused:
        wb.workflows.process(wf["id"], run["id"], progress=False, now=DAY, batch_size=3)
    assert "repeats" in str(refused.value) and "\n" not in str(refused.value)
    shown = shown_with_locals(refused.value)
    assert "test_a_runs_error_carries" in shown  # the caller's frame is still there
    assert not leaked(shown), leaked(shown)[:5]


def test_an_iterations_error_carries_no_customer_value_in_its_frames(
    wb: hybridwb.Workbench,
) -> None:
    batches = wb.targets.iter(QUERY, 3)
    with pytest.raises(HybridwbError) as refused:
        for _batch in batches:
            pass
    del _batch  # the caller's own local: what it was given before the error
    assert "repeats" in str(refused.value)
    shown = shown_with_locals(refused.value)
    assert not leaked(shown), leaked(shown)[:5]


def test_a_bad_call_is_still_refused_at_the_call(wb: hybridwb.Workbench) -> None:
    """An iteration's arguments are still checked when it is made, not at its first row."""
    with pytest.raises(ValidationError):
        wb.targets.iter(QUERY, 3, no_such_option=True)
