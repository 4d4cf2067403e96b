"""An error nobody expected (a bug, a library's, memory) leaves a public call as one line.

Round 50's residue: an expected error (a `HybridwbError`) and Ctrl-C left a public call
without the frames below it, but an unexpected one (a KeyError from a bug, a MemoryError)
kept every frame, and its own text: a notebook printing tracebacks with their locals
(`%xmode Verbose`, rich's `show_locals`) showed the batch's phones and names. Now it leaves
as `InternalError`: its type and the line it was raised at, not its text, no frame below the
call, nothing chained; `HYBRIDWB_DEBUG=1` lets the original through.

Oracles: the members' values as the test wrote them, looked for in everything a traceback
printed with locals shows (`frames_shown`); the store's `send_records` read with sqlite3.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import HybridwbError, InternalError
from hybridwb.platform.campaigns import Campaigns
from hybridwb.validation import checked_call
from tests.test_attack_round50_secrets import (
    DAY,
    MEMBERS,
    MEMBERS_ROWS,
    frames_shown,
    member_values,
    members_source,  # noqa: F401  (a fixture)
)


class _BuggyPause:
    """`time` for the run's module, whose pause after a batch raises a bug's error that
    quotes a customer's phone (a KeyError of a row's value, as a dict lookup makes)."""

    def __init__(self, error: type[BaseException]) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Any:
        import time

        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        raise self.error(MEMBERS_ROWS[3][2])


def _run(wb: hybridwb.Workbench) -> Any:
    wf = wb.workflows.create(
        f"bug-{uuid.uuid4().hex[:6]}",
        target_config={"table": "members"},
        message_config={"content": "{{ 이름 }}님, 안내입니다."},
    )
    run = wb.store.runs.create(wf["id"], {})
    Campaigns(wb.store.backend).start_state(run["id"], "test:1", "manual")
    return lambda: wb.workflows.process(
        wf["id"], run["id"], progress=False, batch_size=5, batch_pause=0.5, now=DAY
    )


@pytest.mark.parametrize("error", [KeyError, MemoryError, ValueError])
def test_a_bug_mid_run_leaves_one_line_and_no_customer_value(
    members_source: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    error: type[Exception],
) -> None:
    from hybridwb.workflows import process as process_module

    monkeypatch.delenv("HYBRIDWB_DEBUG", raising=False)
    with hybridwb.connect(
        source=members_source, store=f"sqlite:///{tmp_path / 's.db'}", cwd=tmp_path, env={}
    ) as wb:
        wb.store.init()
        wb.mappings.save("members", MEMBERS)
        process = _run(wb)
        monkeypatch.setattr(process_module, "time", _BuggyPause(error))
        with pytest.raises(InternalError) as caught:
            process()
        monkeypatch.undo()
    with sqlite3.connect(tmp_path / "s.db") as conn:  # the bug came after the first batch
        (sent,) = conn.execute("SELECT count(*) FROM send_records").fetchone()
        (status, written), *_ = conn.execute("SELECT status, error FROM workflow_runs").fetchall()
    assert sent == 5
    # the run's row says what the call said, not the bug's text (round 55: it was written
    # as it was, masked only inside quotes)
    assert status == "failed"
    assert written.startswith(
        f"InternalError: wb.workflows.process() stopped on an unexpected {error.__name__} at "
    )
    assert not [v for v in member_values() if v in written]
    exc = caught.value
    assert isinstance(exc, HybridwbError)
    message = str(exc)
    assert "\n" not in message
    assert f"unexpected {error.__name__} at tests/test_unexpected_errors.py:" in message
    assert "HYBRIDWB_DEBUG=1" in message
    assert exc.__cause__ is None and exc.__context__ is None
    shown = frames_shown(exc, __file__)
    leaked = [v for v in member_values() if v in shown]
    assert not leaked, leaked[:4]


def test_with_hybridwb_debug_the_original_error_is_raised(
    members_source: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hybridwb.workflows import process as process_module

    monkeypatch.setenv("HYBRIDWB_DEBUG", "1")
    with hybridwb.connect(
        source=members_source, store=f"sqlite:///{tmp_path / 's.db'}", cwd=tmp_path, env={}
    ) as wb:
        wb.store.init()
        wb.mappings.save("members", MEMBERS)
        process = _run(wb)
        monkeypatch.setattr(process_module, "time", _BuggyPause(KeyError))
        with pytest.raises(KeyError, match=MEMBERS_ROWS[3][2]):
            process()


@pytest.mark.parametrize("where", ["wb.sql", "wb.targets.iter"])
def test_a_bug_in_a_read_or_an_iteration_leaves_no_customer_value(
    members_source: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    """A bug once `wb.sql` has the rows (while its frame is built), and between two pages
    of `wb.targets.iter` (the first page in the iteration's locals)."""
    from hybridwb.source import source as source_module
    from hybridwb.targets.service import TargetService

    monkeypatch.delenv("HYBRIDWB_DEBUG", raising=False)

    def buggy(*args: Any, **kwargs: Any) -> Any:
        raise KeyError(MEMBERS_ROWS[0][2])

    pages = TargetService._page

    def second_page_buggy(self: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("after") is not None:  # the page after the first
            raise KeyError(MEMBERS_ROWS[0][2])
        return pages(self, *args, **kwargs)

    with hybridwb.connect(
        source=members_source, store=f"sqlite:///{tmp_path / 's.db'}", cwd=tmp_path, env={}
    ) as wb:
        wb.mappings.save("members", MEMBERS)
        if where == "wb.sql":
            monkeypatch.setattr(source_module, "frame_of", buggy)
            with pytest.raises(InternalError) as caught:
                wb.sql("SELECT name, mobile FROM members")
        else:
            monkeypatch.setattr(TargetService, "_page", second_page_buggy)
            seen = 0
            with pytest.raises(InternalError) as caught:
                for batch in wb.targets.iter({"table": "members"}, 3):
                    seen += len(batch)
            del batch  # this caller's own local: the page it was given
            assert seen == 3
        monkeypatch.undo()
    exc = caught.value
    assert "unexpected KeyError" in str(exc) and "\n" not in str(exc)
    shown = frames_shown(exc, __file__)
    assert not [v for v in member_values() if v in shown]


def test_a_type_error_inside_a_good_call_is_unexpected_not_a_bad_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only a call the signature refuses is a `ValidationError` about the call; a TypeError
    from the body of a well-formed call is an unexpected error of the body."""
    monkeypatch.delenv("HYBRIDWB_DEBUG", raising=False)

    def body(a: int, *, b: int = 0) -> int:
        raise TypeError("from the body")

    wrapped = checked_call(body, "f")
    with pytest.raises(InternalError, match=r"f\(\) stopped on an unexpected TypeError at "):
        wrapped(1, b=2)
    with pytest.raises(hybridwb.ValidationError, match=r"f\(\) takes no argument 'c'"):
        wrapped(1, c=2)
    monkeypatch.setenv("HYBRIDWB_DEBUG", "1")
    with pytest.raises(TypeError, match="from the body"):
        wrapped(1, b=2)
