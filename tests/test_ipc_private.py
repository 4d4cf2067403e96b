"""Each run's kernel talks over IPC sockets in a private directory of its own, so two
concurrent runs never share a socket name. Oracle: the file system."""

from __future__ import annotations

import stat

from hybridwb.workflows import context


def test_concurrent_runs_get_distinct_private_directories_removed_after() -> None:
    with context.ipc_directory() as one, context.ipc_directory() as two:
        assert one != two and one.is_dir() and two.is_dir()
        for path in (one, two):
            assert stat.S_IMODE(path.stat().st_mode) == 0o700  # nobody else's sockets
            assert len(str(path / "k12345678-shell")) < 100  # a UNIX socket path fits
        (one / "k1-shell").write_text("")
    assert not one.exists() and not two.exists()


def test_the_kernel_manager_binds_its_sockets_inside_the_runs_directory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = context.kernel_manager_class({}, tmp_path / "a")()
    second = context.kernel_manager_class({}, tmp_path / "b")()
    assert first.transport == "ipc" and second.transport == "ipc"
    assert first.ip.startswith(str(tmp_path / "a") + "/")
    assert second.ip.startswith(str(tmp_path / "b") + "/")
    assert first.ip != context.kernel_manager_class({}, tmp_path / "a")().ip
