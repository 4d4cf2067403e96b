"""The cyclic garbage collector during a run: what a run's batches hold is freed by
reference counting, so the collector's walks over it (and over every object the process
had before the run) are made rarer for the run's length."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

from hybridwb.workflows.run_setting import RunSetting

#: the cyclic collector's first threshold during a run: a batch holds some ten objects
#: per target (candidates, messages, records) until it is written, so at the default
#: (700) the collector walks every batch several times over, to find nothing: reference
#: counting frees it whole. Measured at 100k targets: 2,200 collections and ~9 us of CPU
#: per message at 700, 2 and ~0.2 us at this, the run's memory growth the same.
RUN_GC_THRESHOLD = 50_000

_gc_saved: tuple[int, ...] = ()  # the thresholds before the process's first run


def _raise_threshold() -> None:
    global _gc_saved
    _gc_saved = gc.get_threshold()
    gc.set_threshold(max(_gc_saved[0], RUN_GC_THRESHOLD), *_gc_saved[1:])


def _restore_threshold() -> None:
    gc.set_threshold(*_gc_saved)
    gc.unfreeze()  # a forked child's: the parent's other runs never end there


_GC = RunSetting(_raise_threshold, _restore_threshold)


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """A run's cyclic garbage collections walk what the batch holds and, in the full
    ones, every object the process had before the run (imports, mappings: some hundred
    thousand). Those are frozen out of its walks for the run, and thawed after; the
    first threshold is raised to `RUN_GC_THRESHOLD` for the run (cyclic garbage is still
    collected, less often). Runs overlapping in one process share the raised threshold,
    and the one found before the first is restored when the last ends."""
    with _GC.held():
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
