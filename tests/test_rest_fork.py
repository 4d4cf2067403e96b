"""A process forked from one holding a REST store speaks to Supabase on connections of its
own; the parent's keep-alive connections stay the parent's.

The REST backend keeps its HTTPS connections open between requests (httpx's pool). A
child made by `os.fork` (multiprocessing's default start on Linux, a notebook's worker
pool) inherited that pool: its first request went out on the parent's socket, with a copy
of the parent's TLS state. Both then wrote TLS records on one connection, each with its
own sequence numbers, so the server saw a broken record stream and dropped the
connection: a request of the parent could fail or be answered with the reply to the
child's.

No PostgREST runs here (see tests/_postgrest.py), so the server is a small HTTPS server on
127.0.0.1 with a certificate made for the test (`openssl`), trusted through
`SSL_CERT_FILE`, which answers every table read with `[]`. The oracle is the server's own
record of each request: the client port it arrived from, and the TLS records it could not
read.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hybridwb.platform.rest import RestBackend

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


class _Seen(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Supabase's gateway

    def do_GET(self) -> None:  # the http.server protocol names it
        self.server.seen.append((self.path.split("?")[0], self.client_address[1]))  # type: ignore[attr-defined]
        body = json.dumps([]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Seen)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.seen: list[tuple[str, int]] = []
        self.broken: list[str] = []

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        self.broken.append(type(sys.exc_info()[1]).__name__)


@pytest.fixture
def https(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # httpx trusts it (trust_env)
    server = _Server(context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _in_child(backend: RestBackend) -> int:
    """Fork; the child reads one table through `backend` and exits 0 if that worked."""
    pid = os.fork()
    if pid == 0:  # the child: no pytest machinery from here on
        code = 1
        try:
            backend.select("workflows")
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_forked_child_reads_on_a_connection_of_its_own(https: _Server) -> None:
    """The parent reads (its keep-alive connection opens), forks; the child reads, then the
    parent reads twice more. The child's request arrives from a client port the parent
    never used, the parent's stay on its own connection, and the server read every TLS
    record it was sent. Before: the child's request came on the parent's connection."""
    backend = RestBackend(f"https://127.0.0.1:{https.server_address[1]}", "k" * 40, "KEY")
    try:
        backend.select("workflows")
        assert _in_child(backend) == 0
        backend.select("workflow_runs")
        backend.select("templates")
    finally:
        backend.close()
    assert [path for path, _ in https.seen] == [
        "/rest/v1/workflows",
        "/rest/v1/workflows",
        "/rest/v1/workflow_runs",
        "/rest/v1/templates",
    ]
    ports = [port for _, port in https.seen]
    assert ports[1] not in {ports[0], ports[2], ports[3]}, ports
    assert ports[0] == ports[2] == ports[3], ports  # the parent's connection kept working
    assert https.broken == []
