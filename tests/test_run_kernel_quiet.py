"""The kernel of a `hybridwb run` drops ipykernel's shutdown-race traceback (a ZMQError
ENOTSOCK logged by tornado as the kernel stops) from its stderr, the terminal of
`hybridwb run`, and nothing else. The oracle is a real child process's stderr."""

from __future__ import annotations

import subprocess
import sys

import pytest

#: a child that sets up tornado's logger as ipykernel's `configure_tornado_logger` does,
#: imports hybridwb, then logs the race's record and two others
CHILD = """
import errno, logging
logger = logging.getLogger("tornado")
handler = logging.StreamHandler()
handler.setFormatter(logging.Formatter(logging.BASIC_FORMAT))
logger.addHandler(handler)
import zmq
import hybridwb
log = logging.getLogger("tornado.general")
for exc in (zmq.ZMQError(errno.ENOTSOCK), zmq.ZMQError(errno.EAGAIN), OSError(errno.ENOTSOCK, "x")):
    try:
        raise exc
    except Exception:
        log.error("Uncaught exception in ZMQStream callback %s", type(exc).__name__, exc_info=True)
"""


@pytest.mark.parametrize("in_run", [True, False], ids=["run-kernel", "other-process"])
def test_only_the_shutdown_race_is_dropped_and_only_in_a_run_kernel(in_run: bool) -> None:
    env = {"PATH": "/usr/bin:/bin"}
    if in_run:
        env["HYBRIDWB_RUN_SETTINGS"] = "{}"
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("ERROR:")]
    shown = [line.rsplit(" ", 1)[1] for line in lines]
    assert shown == (["ZMQError", "OSError"] if in_run else ["ZMQError", "ZMQError", "OSError"])
    assert ("Socket operation on non-socket" in done.stderr) is not in_run
