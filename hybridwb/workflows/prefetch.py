"""Read a run's next batch while this one is decided, rendered and written.

A batch's reads (its pending frozen targets from the store, their rows from the source)
do not depend on what the batch before it writes: the pending range after the last one
read is the worker's alone, since the workflow's lock makes this process the run's only
writer, and the rows are read after the freeze as before. So a worker thread runs the
batch iterator one step ahead, on connections of its own (each read checks one out of
the pool and returns it before it yields), while the run waits on the store for the
batch before. The cap lock, the history check and the write stay on the run's thread,
in their order.

`ahead` holds at most one batch ahead. An error in the worker is raised in the run's
thread, as it was raised (a store or source error: one line); however the run ends, the
worker is stopped, its iterator closed in the worker, and the thread joined before
`ahead` returns (an interrupt during that wait too), so no thread or connection outlives
the run.

While the worker runs, the interpreter's thread switch interval is lowered (`SWITCH`): the
run's thread waits on the store a dozen times a batch, and each time it gets its answer
it must take the interpreter lock back from the worker, which (parsing source rows)
holds it for up to the whole interval, 5 ms by default, each time.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

from hybridwb.workflows.run_setting import RunSetting

T = TypeVar("T")

_DONE = object()
#: seconds a thread may hold the interpreter lock while another waits for it (see above)
SWITCH = 0.0005


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


@contextmanager
def ahead(
    items: Iterator[T], *, thread: bool = True, name: str = "hybridwb-prefetch"
) -> Iterator[Iterator[T]]:
    """`items`, produced one step ahead in a worker thread (or in this thread, unchanged,
    when `thread` is False: a store or source a second thread cannot share)."""
    if not thread:
        try:
            yield items
        finally:
            _close(items)
        return
    with _SWITCH.held():
        worker = _Worker(items, name)
        try:
            yield worker.results()
        finally:
            worker.stop()


_switch_saved = 0.0  # the interval before the process's first run lowered it


def _lower_switch() -> None:
    global _switch_saved
    _switch_saved = sys.getswitchinterval()
    sys.setswitchinterval(min(_switch_saved, SWITCH))


def _restore_switch() -> None:
    sys.setswitchinterval(_switch_saved)


_SWITCH = RunSetting(_lower_switch, _restore_switch)


class _Worker:
    def __init__(self, items: Iterator[Any], name: str) -> None:
        self.items = items
        self.out: queue.Queue[Any] = queue.Queue(maxsize=1)
        self.wanted = threading.Semaphore(0)
        self.stopping = False
        self.thread = threading.Thread(target=self._work, name=name, daemon=True)
        self.thread.start()

    def _work(self) -> None:
        try:
            while True:
                self.wanted.acquire()
                if self.stopping:
                    return
                try:
                    item = next(self.items)
                except StopIteration:
                    self.out.put(_DONE)
                    return
                except BaseException as exc:  # raised again in the run's thread
                    self.out.put(_Failed(exc))
                    return
                self.out.put(item)
        finally:
            _close(self.items)  # in this thread: what the iterator holds is this thread's

    def results(self) -> Iterator[Any]:
        self.wanted.release()  # the first item
        while True:
            item = self.out.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            self.wanted.release()  # the next one, while this one is used
            yield item

    def stop(self) -> None:
        """Stop the worker and wait for it to end, however often the wait is interrupted
        (Ctrl-C again while a slow read ends, as `writer.StoreSteps` waits for its thread):
        the read in hand ends, the iterator is closed in the worker, then the interrupt
        is raised, so no thread or connection of the run outlives its call."""
        self.stopping = True
        self.wanted.release()
        interrupted: BaseException | None = None
        while self.thread.is_alive():  # drain: a worker blocked on a full queue goes on
            try:
                with suppress(queue.Empty):
                    self.out.get(timeout=0.05)
            except BaseException as exc:  # KeyboardInterrupt: wait on, then raise it
                interrupted = interrupted or exc
        self.thread.join()
        if interrupted is not None:
            raise interrupted


def _close(items: Iterator[Any]) -> None:
    close = getattr(items, "close", None)
    if close is not None:
        close()
