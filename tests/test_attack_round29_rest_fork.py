"""Attack round 29 (found here and, at the same time, fixed on main by c9f1001, whose fix this
branch keeps): a child forked from a process using the Supabase REST store never sends
on the parent's kept-alive HTTP connections.

Round 27/28 made a forked child drop its copies of the source's and the SQL store's pools.
The REST backend's httpx client keeps its connections alive too, and a child (a notebook's
`Pool().map` over a function that writes a variable or reads a run) sent its requests on
the parent's socket: two processes writing requests and reading responses on one
connection, so each could read the other's answer (a `hybridwb_seen` history count of
other recipients, a lock's answer) as its own; and a child's close would end the parent's
TLS session with its close_notify.

A local HTTP/1.1 server stands in for PostgREST (the backend takes http:// for a local
Supabase); oracle: the client port of each request as the server saw it.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from hybridwb.platform.rest import RestBackend
from hybridwb.platform.store import Store

KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as PostgREST behind Supabase's proxy
    seen: ClassVar[list[tuple[int, str]]] = []

    def do_GET(self) -> None:
        self.seen.append((self.client_address[1], self.path))
        body = json.dumps([]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def server() -> Iterator[tuple[str, list[tuple[int, str]]]]:
    seen: ClassVar[list[tuple[int, str]]] = []
    handler = type("Handler", (_Handler,), {"seen": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_forked_child_sends_on_a_connection_of_its_own(
    server: tuple[str, list[tuple[int, str]]],
) -> None:
    url, seen = server
    store = Store(RestBackend(url, KEY, "SUPABASE_SERVICE_ROLE_KEY", base_delay=0), actor="t")
    try:
        assert store.backend.select("workflows", {"name": "parent"}) == []
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                store.backend.select("workflows", {"name": "child"})
                said = b"ok"
            except BaseException as exc:
                said = f"child: {type(exc).__name__}: {exc}"[:200].encode()
            finally:
                os.write(write, said)
                os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        child = os.read(read, 256).decode()
        os.close(read)
        assert store.backend.select("workflows", {"name": "again"}) == []
    finally:
        store.close()
    assert child == "ok", child
    ports = {path.split("name=eq.")[-1]: port for port, path in seen}
    assert set(ports) == {"parent", "child", "again"}, seen
    assert ports["child"] != ports["parent"], "the child sent on the parent's connection"
    assert ports["again"] == ports["parent"]  # the parent's connection is still its own
