"""A lock's owner names its host well enough that a live run elsewhere is never taken for
a dead process here.

A lock whose owner is a process on *this host* that no longer exists is taken over at once
(`owner_alive`, `is_stale`), without waiting for its heartbeat to stop. Two machines, or two
containers, often share a hostname (cloned VMs, `hostname:` in a compose file, pods of one
name), and a pid means something only in its own pid namespace. Were the host named by its
hostname alone, a run here would read a live run's lock there as a dead process's and start
a second run of the same workflow.

The other machine is a real process in a pid namespace of its own (`unshare --pid`, the
same hostname), whose pid is one no process has here; the oracle is direct SQL on
`run_locks`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import _stores
import pytest
from _stores import Oracle, workflow_with_run

from hybridwb.platform.campaigns import Campaigns, owner_alive, this_owner
from hybridwb.platform.store import Store

store = _stores.store
oracle = _stores.oracle

UNSHARE = shutil.which("unshare")
pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0 or UNSHARE is None,
    reason="needs Linux, root and unshare(1) for a pid namespace",
)

#: runs as pid 1 of a new pid namespace: makes its next child's pid `target` (a pid no
#: process has in the test's namespace), and that child prints its lock owner and lives
#: until the test closes its stdin
_ELSEWHERE = """
import os, sys
target = int(sys.argv[1])
with open("/proc/sys/kernel/ns_last_pid", "w") as f:
    f.write(str(target - 1))
pid = os.fork()
if pid == 0:
    from hybridwb.platform.campaigns import this_owner
    print(this_owner(), flush=True)
    sys.stdin.read()
    os._exit(0)
os.waitpid(pid, 0)
"""


def _free_pid() -> int:
    """A pid no process has here (near the top of the range, where none is handed out)."""
    top = int(Path("/proc/sys/kernel/pid_max").read_text())
    for pid in range(top - 2, top - 2000, -1):
        if not Path(f"/proc/{pid}").exists():
            return pid
    raise AssertionError("no free pid near pid_max")


@pytest.fixture
def elsewhere() -> Iterator[tuple[str, int]]:
    """(lock owner, pid) of a live process on 'another machine' with this hostname."""
    pid = _free_pid()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [UNSHARE or "unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c",
         _ELSEWHERE, str(pid)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdin is not None
    try:
        owner = proc.stdout.readline().strip()
        assert owner, "the process in its own pid namespace printed no owner"
        yield owner, pid
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
        proc.stdout.close()


def _locks(oracle: Oracle) -> list[tuple[str, uuid.UUID]]:
    return [(o, uuid.UUID(str(r))) for o, r in oracle.rows("SELECT owner, run_id FROM run_locks")]


def test_a_live_run_in_another_pid_namespace_with_this_hostname_keeps_its_lock(
    store: Store, oracle: Oracle, elsewhere: tuple[str, int]
) -> None:
    owner, pid = elsewhere
    # the premise: the same hostname, and its pid names no process here
    assert owner.split(":")[0].split("/")[0] == this_owner().split(":")[0].split("/")[0]
    assert owner.rpartition(":")[2] == str(pid)
    assert not Path(f"/proc/{pid}").exists()
    wf, run = workflow_with_run(store)
    campaigns = Campaigns(store.backend)
    assert campaigns.acquire(wf, run, owner, 120) is None

    held = campaigns.acquire(wf, uuid.uuid4(), this_owner(), 120)

    assert held is not None, "a live run's lock elsewhere was taken for a dead process's"
    assert _locks(oracle) == [(owner, uuid.UUID(str(run)))]
    assert owner_alive(owner) is None  # another host's process: unknown, not dead


def test_a_dead_process_of_this_host_still_loses_its_lock_at_once(
    store: Store, oracle: Oracle
) -> None:
    """The fast takeover of a crashed run stays: the owner of a process that ended here."""
    done = subprocess.run(
        [sys.executable, "-c", "from hybridwb.platform.campaigns import this_owner as o; print(o())"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    dead = done.stdout.strip()
    assert owner_alive(dead) is False
    wf, run = workflow_with_run(store)
    campaigns = Campaigns(store.backend)
    assert campaigns.acquire(wf, run, dead, 120) is None
    mine = uuid.uuid4()

    assert campaigns.acquire(wf, mine, this_owner(), 120) is None

    assert _locks(oracle) == [(this_owner(), mine)]
