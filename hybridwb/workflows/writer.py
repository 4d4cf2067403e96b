"""A run's store steps, one after another, in a thread of their own.

Each batch goes through the store in two steps: `check` (the cap lock, the clock, the
history of the batch's recipients) and `write` (its records and exclusions, in the lock's
transaction, committed with the lock's release). Batch N+1's check must see batch N's
committed records, so the steps run strictly in the order they are given, one at a time,
on one thread: check 1, write 1, check 2, write 2, ... exactly as a run without this
thread did them. What the thread buys is the run's own thread: while the store writes
batch N and checks batch N+1, the run renders batch N+1's messages (`Processor.process`
renders ahead what it can before it has the check's answer, and decides after it).

A step that fails fails every step after it with the same error, unrun: a batch is never
checked after the one before it failed to write. However the run ends, `close` runs what
the steps left open (the cap lock's transaction: rolled back unless its write committed it)
in the thread that opened it, and waits for the thread to end, so no lock, connection or
write outlives the run, even when that wait is interrupted (`_join`). With `thread=False`
(a SQLite store, which a second thread cannot share) every step runs when it is given, in
the caller's thread, in the same order; Ctrl-C then lands in a step, and `submit` raises
that interrupt at once, as it is raised anywhere else in the caller's thread (a step's
error stays its future's, as with the thread): a run does not pause, read and render its
next batch before it stops.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

_STOP = object()


class _Abandoned(Exception):
    """What a lock left open is released with when no step failed: its transaction ends
    as after an error (rolled back), whatever it read."""


class StoreSteps:
    """Steps run in order on one thread; `held` is theirs (what a step leaves open)."""

    def __init__(self, *, thread: bool, name: str = "hybridwb-store") -> None:
        self.held = contextlib.ExitStack()
        self._failed: BaseException | None = None
        self._unreleased: BaseException | None = None
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ended = threading.Event()  # set by the thread when its last step is done
        if thread:
            self._thread = threading.Thread(target=self._work, name=name, daemon=True)
            self._thread.start()

    def submit(self, step: Callable[[], T]) -> Future[T]:
        """Run `step` after every step given before it; its outcome is the future's
        (without a thread, an interrupt in it is also raised here, see the module's)."""
        future: Future[T] = Future()
        if self._thread is None:
            self._run(step, future)
        else:
            self._jobs.put((step, future))
        return future

    def _run(self, step: Callable[[], Any], future: Future[Any]) -> None:
        if self._failed is not None:  # never after a step that failed
            future.set_exception(self._failed)
            return
        try:
            result = step()
        except BaseException as exc:  # the caller raises it from the future
            self._failed = exc
            future.set_exception(exc)
            if self._thread is None and not isinstance(exc, Exception):
                raise  # an interrupt in the caller's thread: it stops the caller here
        else:
            future.set_result(result)

    def _work(self) -> None:
        try:
            while True:
                job = self._jobs.get()
                if job is _STOP:
                    return
                self._run(*job)
        finally:
            try:
                self._release()
            finally:
                self._ended.set()

    def _release(self) -> None:
        """What the steps hold (a cap lock a run left open between a check and its write,
        or whose write failed): closed in the thread that opened it, as after an error (a
        transaction rolled back, never committed)."""
        error = self._failed or _Abandoned("the run stopped before this batch was written")
        try:
            self.held.__exit__(type(error), error, error.__traceback__)
        except BaseException as exc:  # raised by `close`, in the caller's thread
            if exc is not error:
                self._unreleased = exc

    def close(self, *, raising: bool = True) -> None:
        """Let the steps given so far run (a write given is a batch decided: it is
        written, as it would have been before the caller went on; not after an interrupt,
        see `__exit__`), release what they hold, and join the thread. Raises what
        releasing raised (a rollback that failed), unless `raising` is False (the caller
        is raising an error of its own)."""
        if self._thread is None:
            self._release()
        else:
            self._jobs.put(_STOP)
            self._join(self._thread)
        if raising and self._unreleased is not None:
            raise self._unreleased

    def _join(self, thread: threading.Thread) -> None:
        """Wait for the thread to end, however often the wait is interrupted (a user
        pressing interrupt again while a slow store finishes a step): a step still
        running when the caller left could commit a batch after the run's call ended,
        after a resume had decided that batch again from the history without it. An
        interrupt here fails the steps not yet begun (their batches are decided again
        by a resume, as after an error); the step running ends as it ends (a store that
        never answers: the process must be stopped, and the server rolls back what that
        step left open); then the interrupt is raised. The wait is on `_ended`, not on
        `Thread.join`: an interrupted join marks a running thread as ended (CPython
        bpo-45274's fix releases the thread's own lock), and joins again at once."""
        interrupted: BaseException | None = None
        while True:
            try:
                self._ended.wait()
            except BaseException as exc:  # KeyboardInterrupt: wait on, then raise it
                if interrupted is None:
                    interrupted = exc
                    if self._failed is None:  # read by the thread before each step
                        self._failed = exc
                continue
            break
        thread.join()  # it has ended its work: only its exit is waited for
        if interrupted is not None:
            raise interrupted

    def __enter__(self) -> StoreSteps:
        return self

    def __exit__(self, kind: Any, error: Any, tb: Any) -> None:
        if error is not None and not isinstance(error, Exception) and self._failed is None:
            # Ctrl-C in the caller: the steps not begun fail unrun, as when it lands in
            # `_join` (a check of the next batch would take the cap lock, waiting for
            # any run holding it, and read the history after the interrupt); the step
            # running ends as it ends
            self._failed = error
        self.close(raising=error is None)
