"""Round 28: a lock's owner names a host whose pids this process can judge, or none.

`owner_alive` calls a lock's owner dead when its host is this one (`this_host`) and no
process has its pid here: the lock is then taken over at once (`is_stale`). That is right
only when "this host" pins the pid namespace. Two ways it did not:

- where the system does not tell the boot and the pid namespace (no /proc: macOS, where
  two laptops both called `MacBook-Pro.local` share a store; a sandbox that hides them),
  the host was the hostname alone, and a live run on another machine of the same name was
  read as a dead process here: its lock was taken and the workflow ran twice at once;
- `this_host` is computed once per process and a forked child kept its parent's, so a
  child forked into a new pid namespace (after `unshare(CLONE_NEWPID)`) named its pid
  with its parent's namespace: a pid of a namespace nobody here can see, read as dead.

The other machine is a real process in a pid namespace of its own (`unshare --pid`, the
same hostname), alive while the test runs, whose pid no process has here; the oracle is
direct SQL on `run_locks`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import _stores
import pytest
from _stores import Oracle, workflow_with_run

from hybridwb.platform import campaigns as campaigns_module
from hybridwb.platform.campaigns import Campaigns, _host, owner_alive, this_owner
from hybridwb.platform.store import Store
from tests.test_lock_owner_host import _free_pid

store = _stores.store
oracle = _stores.oracle

UNSHARE = shutil.which("unshare")
pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0 or UNSHARE is None,
    reason="needs Linux, root and unshare(1) for a pid namespace",
)

#: makes `campaigns` see a system that does not tell its boot or pid namespace (no /proc)
_NO_PROC = textwrap.dedent(
    """
    import builtins
    from hybridwb.platform import campaigns

    def _open(path, *args, **kwargs):
        if str(path).startswith("/proc/"):
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return builtins.open(path, *args, **kwargs)

    campaigns.open = _open
    campaigns._host.cache_clear()
    """
)

#: pid 1 of a new pid namespace: its next child has pid `target` (a pid no process has in
#: the test's namespace); that child, on a system without /proc, prints its lock owner
#: and lives until the test closes its stdin
_ELSEWHERE_NO_PROC = (
    _NO_PROC
    + """
import os, sys
target = int(sys.argv[1])
with builtins.open("/proc/sys/kernel/ns_last_pid", "w") as f:
    f.write(str(target - 1))
pid = os.fork()
if pid == 0:
    print(campaigns.this_owner(), flush=True)
    sys.stdin.read()
    os._exit(0)
os.waitpid(pid, 0)
"""
)

#: a process that names its host (cached), then forks into a new pid namespace
#: (unshare(CLONE_NEWPID): its children are in it); that child is pid 1 there and forks
#: a grandchild with pid `target`, which prints its lock owner and the digest of the
#: namespace it really runs in, then lives until the test closes its stdin
_FORKED_INTO_NEW_NAMESPACE = """
import ctypes, hashlib, os, sys
from hybridwb.platform.campaigns import this_owner
target = int(sys.argv[1])
this_owner()  # named in this namespace, cached
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(0x20000000) != 0:  # CLONE_NEWPID
    raise OSError(ctypes.get_errno(), "unshare")
child = os.fork()
if child == 0:  # pid 1 of the new namespace
    with open("/proc/sys/kernel/ns_last_pid", "w") as f:
        f.write(str(target - 1))
    grandchild = os.fork()
    if grandchild == 0:
        boot = open("/proc/sys/kernel/random/boot_id").read().strip()
        space = os.readlink("/proc/self/ns/pid")
        real = hashlib.sha256(f"{boot} {space}".encode()).hexdigest()[:12]
        print(this_owner(), real, os.getpid(), flush=True)
        sys.stdin.read()
        os._exit(0)
    os.waitpid(grandchild, 0)
    os._exit(0)
os.waitpid(child, 0)
"""


def _live(argv: list[str]) -> Iterator[tuple[list[str], int]]:
    pid = _free_pid()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [*argv, str(pid)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        said = proc.stdout.readline().split()
        assert said, "the process in its own pid namespace printed nothing"
        yield said, pid
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
        proc.stdout.close()


@pytest.fixture
def no_proc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process on a system that does not tell its boot or pid namespace."""
    real_open = open

    def _open(path: object, *args: object, **kwargs: object) -> object:
        if str(path).startswith("/proc/"):
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(campaigns_module, "open", _open, raising=False)
    _host.cache_clear()
    try:
        yield
    finally:
        monkeypatch.undo()
        _host.cache_clear()


@pytest.fixture
def elsewhere_no_proc() -> Iterator[tuple[str, int]]:
    """(lock owner, pid) of a live process on 'another machine' with this hostname, on a
    system without /proc."""
    argv = [UNSHARE or "unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c"]
    for said, pid in _live([*argv, _ELSEWHERE_NO_PROC]):
        yield said[0], pid


@pytest.fixture
def forked_into_new_namespace() -> Iterator[tuple[str, str, int]]:
    """(lock owner, digest of its real namespace, pid) of a live grandchild forked into a
    new pid namespace by a process that had named its host before."""
    for said, pid in _live([sys.executable, "-c", _FORKED_INTO_NEW_NAMESPACE]):
        owner, real, own_pid = said
        assert own_pid == str(pid)
        yield owner, real, pid


def _locks(oracle: Oracle) -> list[tuple[str, uuid.UUID]]:
    return [(o, uuid.UUID(str(r))) for o, r in oracle.rows("SELECT owner, run_id FROM run_locks")]


def test_without_proc_a_live_run_elsewhere_with_this_hostname_keeps_its_lock(
    store: Store, oracle: Oracle, no_proc: None, elsewhere_no_proc: tuple[str, int]
) -> None:
    owner, pid = elsewhere_no_proc
    # the premise: the other machine's owner names the same host as this one, and its
    # pid names no process here
    assert owner.rpartition(":")[0] == this_owner().rpartition(":")[0]
    assert owner.rpartition(":")[2] == str(pid)
    assert not Path(f"/proc/{pid}").exists()
    wf, run = workflow_with_run(store)
    campaigns = Campaigns(store.backend)
    assert campaigns.acquire(wf, run, owner, 120) is None

    held = campaigns.acquire(wf, uuid.uuid4(), this_owner(), 120)

    assert held is not None, "a live run's lock on another machine was taken over"
    assert _locks(oracle) == [(owner, uuid.UUID(str(run)))]


def test_without_proc_a_pid_is_not_judged(no_proc: None) -> None:
    """Not knowing the pid namespace, a pid that is no process here says nothing."""
    assert owner_alive(f"{this_owner().rpartition(':')[0]}:{_free_pid()}") is None


def test_without_proc_a_crashed_run_is_still_taken_over_once_its_heartbeat_stops(
    store: Store, oracle: Oracle, no_proc: None
) -> None:
    """The wait is bounded: the heartbeat's staleness still frees the lock."""
    dead = f"{this_owner().rpartition(':')[0]}:{_free_pid()}"
    wf, run = workflow_with_run(store)
    campaigns = Campaigns(store.backend)
    assert campaigns.acquire(wf, run, dead, 120) is None
    old = "2000-01-01 00:00:00" + ("+00" if oracle.postgres else ".000000")
    oracle.execute("UPDATE run_locks SET heartbeat_at = ?", old)
    mine = uuid.uuid4()

    assert campaigns.acquire(wf, mine, this_owner(), 120) is None

    assert _locks(oracle) == [(this_owner(), mine)]


def test_a_child_forked_into_a_new_pid_namespace_names_that_namespace(
    forked_into_new_namespace: tuple[str, str, int],
) -> None:
    owner, real, _ = forked_into_new_namespace
    host = owner.partition("#")[0].rpartition(":")[0]
    assert host.rpartition("/")[2] == real, "a forked child named its parent's pid namespace"


def test_a_live_run_forked_into_a_new_pid_namespace_keeps_its_lock(
    store: Store, oracle: Oracle, forked_into_new_namespace: tuple[str, str, int]
) -> None:
    owner, _, pid = forked_into_new_namespace
    assert not Path(f"/proc/{pid}").exists()  # its pid names no process here
    wf, run = workflow_with_run(store)
    campaigns = Campaigns(store.backend)
    assert campaigns.acquire(wf, run, owner, 120) is None

    held = campaigns.acquire(wf, uuid.uuid4(), this_owner(), 120)

    assert held is not None, "a live run's lock in another pid namespace was taken over"
    assert _locks(oracle) == [(owner, uuid.UUID(str(run)))]


#: in a UTS namespace of its own, with a hostname holding ':', '/' and '#' (the kernel
#: takes any bytes): the owners of a process of it that ended and of itself, judged
_ODD_HOSTNAME = """
import socket, subprocess, sys
socket.sethostname(sys.argv[1])
from hybridwb.platform.campaigns import call_owner, owner_alive, this_owner
said = "from hybridwb.platform.campaigns import call_owner as o; print(o())"
dead = subprocess.run([sys.executable, "-c", said], capture_output=True, text=True, check=True)
owner = dead.stdout.strip()
assert owner.startswith(sys.argv[1]), owner
print(owner_alive(owner), owner_alive(call_owner()), owner_alive(this_owner()))
"""


@pytest.mark.parametrize("name", ["ho#st", "a:b#c/d", "x/y:z"], ids=["hash", "all", "slash-colon"])
def test_a_hostname_with_separators_still_tells_a_dead_process_of_this_host(name: str) -> None:
    """A crashed run's lock is taken over at once whatever the hostname holds (before: a
    '#' cut the host short, so no owner was ever of this host: every crashed run waited
    for its heartbeat to go stale)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [UNSHARE or "unshare", "--uts", sys.executable, "-c", _ODD_HOSTNAME, name],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    assert done.stdout.split() == ["False", "True", "True"]
