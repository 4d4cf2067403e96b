"""A forked child's answer, and a lock held by another thread while a test forks.

The fork tests (rounds 27-29) ask what a child made by `os.fork` does with what it
inherited; the child reports through a pipe, and a child that hangs is the break, so its
work runs in a thread it waits for."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any


def in_child(body: Callable[[], object], wait: float = 30.0) -> str:
    """Fork; the child runs `body` in a thread for at most `wait` seconds and says "ok" (it
    returned None), the `repr` of what it returned, "child: <error>", or "child: waited"
    (still running: it waited on something it inherited)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no pytest machinery from here on
        try:
            got: list[object] = []
            done = threading.Event()

            def run() -> None:
                try:
                    result = body()
                    got.append("ok" if result is None else repr(result))
                except BaseException as exc:
                    got.append(f"child: {type(exc).__name__}: {exc}"[:500])
                finally:
                    done.set()

            threading.Thread(target=run, daemon=True).start()
            said = got[0] if done.wait(wait) else "child: waited"
            os.write(write, str(said).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    try:
        return os.read(read, 4096).decode()
    finally:
        os.close(read)


@contextlib.contextmanager
def held_by_a_thread(lock: Any) -> Iterator[None]:
    """`lock` held by another thread of this process for the block (the moment a fork
    meets it, made wide)."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            holding.set()
            release.wait(60)

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait(30)
    try:
        yield
    finally:
        release.set()
        thread.join()
