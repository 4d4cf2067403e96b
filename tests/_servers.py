"""Private MariaDB and PostgreSQL servers the fault and secrets tiers may stop, kill and restart.

Each server lives in its own temporary data directory, on a free TCP port with its own
socket and pid file, so nothing here can disturb the shared servers on 3306/5432 or a
parallel test session. `stop()` is idempotent and always runs at teardown.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pymysql
from sqlalchemy.engine import URL

MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"


def _pg_bin() -> Path | None:
    root = Path("/usr/lib/postgresql")
    versions = sorted(root.glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return versions[-1].parent if versions else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(check, what: str, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last = ""
    failed = False
    try:
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except Exception as exc:  # not up yet
                last = str(exc)  # not the exception: its frames would keep the socket alive
                failed = True
            time.sleep(0.2)
    finally:
        # a driver that failed half-way may leave its socket to the collector: collect it
        # here, once (outside the except block, where the traceback is gone), quietly,
        # instead of as a ResourceWarning in some later test; once, not at every try: a
        # full collection in a worker holding every test module costs about 0.2 s
        if failed:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                gc.collect()
    raise RuntimeError(f"{what} did not come up in {timeout:.0f} s ({last})")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child of ours still answers kill(0): reap it
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == 0


@dataclass
class PrivateMariaDB:
    """A throw-away mariadbd: root over its socket, a password account for the tests."""

    datadir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="hwb-mariadb-")))
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    #: the server's own time zone (its `system_time_zone`, the session default): e.g.
    #: "Europe/Berlin" for a zone with daylight saving time; None keeps the machine's
    zone: str | None = None
    #: more server options, e.g. ("--lower-case-table-names=1",)
    options: tuple[str, ...] = ()

    @property
    def socket_path(self) -> Path:
        return self.datadir / "mysqld.sock"

    @property
    def tmpdir(self) -> Path:
        path = self.datadir / "tmp"
        path.mkdir(exist_ok=True)
        return path

    def install(self) -> None:
        """`mariadb-install-db`, tried twice (it failed once, unexplained, while another
        worker started a private server); a failure shows the tool's own last lines."""
        argv = [
            INSTALL_DB,
            "--no-defaults",
            f"--datadir={self.datadir / 'data'}",
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            f"--tmpdir={self.tmpdir}",  # its bootstrap server clears `#sql*` there too
        ]
        for _attempt in (1, 2):
            done = subprocess.run(argv, capture_output=True, text=True)
            if done.returncode == 0:
                return
            shutil.rmtree(self.datadir / "data", ignore_errors=True)
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise RuntimeError(f"mariadb-install-db failed ({done.returncode}):\n{tail}")

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        self.proc = subprocess.Popen(
            [
                MARIADBD,
                "--no-defaults",
                f"--datadir={self.datadir / 'data'}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--socket={self.socket_path}",
                f"--pid-file={self.datadir / 'mysqld.pid'}",
                f"--log-error={self.datadir / 'error.log'}",
                # its own tmpdir: at start mariadbd deletes every `#sql*` file in its tmpdir,
                # and in /tmp those are the shared server's live temporary tables (a CI run
                # failed with "Error on delete of '/tmp/#sql-temptable-….MAI'")
                f"--tmpdir={self.tmpdir}",
                "--user=root",
                "--skip-name-resolve",
                "--skip-log-bin",
                "--performance-schema=OFF",
                "--innodb-buffer-pool-size=32M",
                "--innodb-log-file-size=16M",
                "--max-connections=200",
                *self.options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "TZ": self.zone} if self.zone else None,
        )
        _wait(self._ping, f"private MariaDB on port {self.port}")

    def _ping(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            log = (self.datadir / "error.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"mariadbd exited: {log}")
        self.admin().close()
        return True

    def admin(self, database: str | None = None) -> pymysql.Connection:
        """root over the unix socket: works whatever the TCP accounts are."""
        return pymysql.connect(
            ssl_disabled=True,
            unix_socket=str(self.socket_path),
            user="root",
            password="",
            database=database,
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=3,
        )

    def execute(self, *statements: str, args: tuple = ()) -> list[tuple]:
        conn = self.admin()
        try:
            with conn.cursor() as cur:
                rows: list[tuple] = []
                for sql in statements:
                    cur.execute(sql, args or None)
                    rows = list(cur.fetchall())
                return rows
        finally:
            conn.close()

    def url(self, user: str, password: str | None, database: str) -> URL:
        return URL.create(
            "mysql+pymysql",
            username=user,
            password=password,
            host="127.0.0.1",
            port=self.port,
            database=database,
            query={"charset": "utf8mb4"},
        )

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM), SIGKILL after 30 s; idempotent."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.datadir, ignore_errors=True)


@dataclass
class PrivatePostgres:
    """A throw-away PostgreSQL cluster run as user postgres.

    `postgres` connects without a password (trust, over TCP and the socket); every other
    role must use scram-sha-256 over TCP, so a password really travels and can leak.
    """

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="hwb-pg-")))
    port: int = field(default_factory=free_port)

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def bindir(self) -> Path:
        found = _pg_bin()
        if found is None:
            raise RuntimeError("PostgreSQL binaries not found under /usr/lib/postgresql")
        return found

    def _as_postgres(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = list(argv)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)

    def install(self) -> None:
        self.root.chmod(0o755)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._as_postgres(
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        hba = self.datadir / "pg_hba.conf"
        hba.write_text(
            "local all all trust\n"
            "host all postgres 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
        )
        conf = self.datadir / "postgresql.conf"
        with conf.open("a") as out:
            out.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\n"
                "shared_buffers = 16MB\nfsync = off\nmax_connections = 100\n"
                "password_encryption = 'scram-sha-256'\n"
            )
        if os.geteuid() == 0:
            shutil.chown(hba, "postgres", "postgres")

    def start(self) -> None:
        if self.is_up():
            return
        self._as_postgres(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        _wait(self.is_up, f"private PostgreSQL on port {self.port}")

    def is_up(self) -> bool:
        try:
            with psycopg.connect(
                host="127.0.0.1",
                port=self.port,
                user="postgres",
                dbname="postgres",
                connect_timeout=2,
            ):
                return True
        except psycopg.OperationalError:
            return False

    def stop(self) -> None:
        """Fast shutdown; idempotent."""
        if not (self.datadir / "postmaster.pid").exists():
            return
        self._as_postgres(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-m",
            "fast",
            "-w",
            "stop",
            check=False,
        )

    def kill(self) -> None:
        pid_file = self.datadir / "postmaster.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def execute(self, *statements: str, database: str = "postgres") -> list[tuple]:
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=database, autocommit=True
        ) as conn:
            rows: list[tuple] = []
            for sql in statements:
                cur = conn.execute(sql)  # type: ignore[arg-type]
                rows = list(cur.fetchall()) if cur.description else []
            return rows

    def url(self, user: str, password: str | None, database: str) -> URL:
        return URL.create(
            "postgresql+psycopg",
            username=user,
            password=password,
            host="127.0.0.1",
            port=self.port,
            database=database,
        )

    def destroy(self) -> None:
        try:
            self.stop()
            self.kill()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def private_servers_available() -> str | None:
    """None when both private servers can be started here, else the reason."""
    if not Path(MARIADBD).exists() or not Path(INSTALL_DB).exists():
        return "mariadbd/mariadb-install-db not installed (bash scripts/services.sh)"
    if _pg_bin() is None:
        return "PostgreSQL server binaries not installed (bash scripts/services.sh)"
    if os.geteuid() != 0 and shutil.which("runuser") is None:
        return "need root (or runuser) to run initdb as postgres"
    return None
