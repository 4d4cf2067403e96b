"""A process-wide setting a run changes for its length (the cyclic collector's threshold,
the interpreter's switch interval): changed when the first run of the process begins, put
back when the last ends. Runs are counted by thread, so a forked child (which has only the
forking thread) keeps only that thread's runs: the others' threads are not in the child
and their runs would never end there."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class RunSetting:
    def __init__(self, change: Callable[[], None], restore: Callable[[], None]) -> None:
        self._change, self._restore = change, restore
        self.lock = threading.Lock()
        self._runs: dict[int, int] = {}  # runs holding the setting now, by thread
        os.register_at_fork(after_in_child=self._after_fork_in_child)

    @contextmanager
    def held(self) -> Iterator[None]:
        """The setting changed for the block (shared with the process's other runs)."""
        me = threading.get_ident()
        with self.lock:
            if not self._runs:
                self._change()
            self._runs[me] = self._runs.get(me, 0) + 1
        try:
            yield
        finally:
            with self.lock:
                if self._runs.get(me, 0) > 1:
                    self._runs[me] -= 1
                else:
                    self._runs.pop(me, None)
                if not self._runs:
                    self._restore()

    def _after_fork_in_child(self) -> None:
        """A new lock (another thread may have held it at the fork: a run starting or
        ending), and only the forking thread's runs; with none, the setting goes back now."""
        self.lock = threading.Lock()
        me = threading.get_ident()
        mine, had = self._runs.get(me, 0), bool(self._runs)
        self._runs.clear()
        if mine:
            self._runs[me] = mine
        elif had:
            self._restore()
