"""A forked child and the process-wide settings a run changes for its length: the cyclic
collector's threshold and frozen objects (`heap.frozen_heap`), the interpreter's switch
interval (`prefetch.ahead`). Each is put back when the process's last run ends, counted
across the threads running one. A child forked while another thread of the parent was
inside a run inherited that count, but not the thread: the run never ends there, so the
child kept the raised threshold (50,000: its memory grows far before a collection) and
the lowered interval for good. A run of the forking thread itself does end in the child,
and puts them back then.

Oracle: the child's `gc.get_threshold()`, `gc.get_freeze_count()` and
`sys.getswitchinterval()`, read in the child and sent through a pipe.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest

from hybridwb.workflows import heap, prefetch
from tests._fork import held_by_a_thread, in_child


def _settings() -> tuple[int, bool, float]:
    return gc.get_threshold()[0], gc.get_freeze_count() == 0, sys.getswitchinterval()


def _run_heap() -> AbstractContextManager[object]:
    return heap.frozen_heap()


def _run_ahead() -> AbstractContextManager[Iterator[int]]:
    return prefetch.ahead(iter([1, 2, 3]))


RUNS = {"frozen-heap": _run_heap, "read-ahead": _run_ahead}


@pytest.mark.parametrize("run", list(RUNS.values()), ids=list(RUNS))
def test_a_child_forked_while_another_thread_runs_gets_the_settings_as_before(
    run: Callable[[], AbstractContextManager[object]],
) -> None:
    before = _settings()
    with held_by_a_thread(run()):
        assert _settings() != before  # the parent's run changed them
        said = in_child(_settings)
    assert said == repr(before)
    assert _settings() == before


@pytest.mark.parametrize("run", list(RUNS.values()), ids=list(RUNS))
def test_a_child_forked_inside_its_own_threads_run_puts_them_back_when_it_ends(
    run: Callable[[], AbstractContextManager[object]],
) -> None:
    before = _settings()
    read, write = os.pipe()
    with run():
        pid = os.fork()
        inside = _settings()
    if pid == 0:  # the child: its own run ended just above
        try:
            os.write(write, repr((inside != before, _settings())).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    try:
        said = os.read(read, 4096).decode()
    finally:
        os.close(read)
    assert said == repr((True, before))
    assert _settings() == before
