"""What the kernel of a `hybridwb run` sets up for itself when it imports hybridwb.

Kept free of heavy imports: `import hybridwb` stays light (see `hybridwb/__init__.py`).
"""

from __future__ import annotations

import errno
import logging

#: the kernel environment's one hybridwb variable: the parent's settings (`context.py`)
ENV_VAR = "HYBRIDWB_RUN_SETTINGS"


class _ShutdownRace(logging.Filter):
    """Drops the record ipykernel's shutdown race leaves: as the kernel stops, a control
    message's `idle` status is scheduled on the IOPub event pipe that the stop has just
    closed, and tornado logs the `ZMQError` (ENOTSOCK, 'Socket operation on non-socket')
    with its traceback. ipykernel 7.4 catches it in `_really_send` (ipykernel#1518) but not
    in `schedule`. The kernel's own stderr is the terminal of `hybridwb run`, which must end
    with the run's one-line result, not a library's traceback. Every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (
            exc is not None
            and type(exc).__module__.startswith("zmq")
            and getattr(exc, "errno", None) == errno.ENOTSOCK
        )


def quiet_shutdown_race() -> None:
    """Put `_ShutdownRace` on the handlers of tornado's logger (ipykernel gives it one that
    writes to the process's stderr; a record of `tornado.general` reaches it by propagation,
    so the filter sits on the handler). Done once per process."""
    logger = logging.getLogger("tornado")
    for handler in logger.handlers:
        if not any(isinstance(f, _ShutdownRace) for f in handler.filters):
            handler.addFilter(_ShutdownRace())
