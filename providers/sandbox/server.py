"""Serve the sandbox over real HTTP on loopback: one port per host, plus a control port.

A host set down through `/__sandbox__/hosts` really stops listening, so the
client sees "connection refused"; a scripted drop closes the socket with a
reset and no answer; a scripted timeout holds the reply back.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import sys
import threading
import time
from typing import Any
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from providers.sandbox import Sandbox
from providers.sandbox.app import control, parse_request
from providers.sandbox.core import DropConnection, SimResponse
from providers.sandbox.reports import ReportPusher


class _Handler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return None

    def handle(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if not self.parse_request():
            return
        handler = _ServerHandler(self.rfile, self.wfile,  # type: ignore[arg-type]
                                 self.get_stderr(), self.get_environ(), multithread=True)
        handler.request_handler = self  # type: ignore[attr-defined]
        try:
            handler.run(self.server.get_app())  # type: ignore[attr-defined]
        except DropConnection:
            _reset(self.connection)


class _ServerHandler(ServerHandler):
    def finish_response(self) -> None:
        environ: dict[str, Any] = dict(self.environ or {})
        delay = float(environ.get("sandbox.delay") or 0.0)
        if delay:
            time.sleep(delay)
        super().finish_response()

    def close(self) -> None:
        status: Any = getattr(self, "status", None)
        if status is None:  # dropped before any answer: nothing to log
            self.result = self.headers = self.environ = None
            self.bytes_sent = 0
            self.headers_sent = False
            return
        super().close()

    def handle_error(self) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, DropConnection):
            raise exc
        super().handle_error()


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def _reset(conn: socket.socket) -> None:
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
    except OSError:
        pass


_handed_out: set[int] = set()
_ports_lock = threading.Lock()


def free_port(host: str = "127.0.0.1") -> int:
    """A free port never handed out before in this process.

    Ports are chosen before their servers bind; without the memory two choices
    made close together could get the same port from the kernel.
    """
    with _ports_lock:
        for _ in range(200):
            with socket.socket() as s:
                s.bind((host, 0))
                port: int = s.getsockname()[1]
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise OSError("no free port found")


class _Listener:
    """One host's HTTP server, which can be taken down and brought back on its port."""

    def __init__(self, app: Any, bind: str, port: int) -> None:
        self.app, self.bind, self.port = app, bind, port
        self.server: _Server | None = None
        self.lock = threading.Lock()

    def up(self) -> None:
        with self.lock:
            if self.server is not None:
                return
            for _ in range(50):
                try:
                    server = _Server((self.bind, self.port), _Handler)
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                raise OSError(f"cannot bind {self.bind}:{self.port}")
            server.set_app(self.app)
            self.port = server.server_address[1]
            self.server = server
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                             daemon=True).start()

    def down(self) -> None:
        with self.lock:
            server, self.server = self.server, None
        if server is not None:
            server.shutdown()
            server.server_close()


class SandboxServer:
    """All hosts of a Sandbox on loopback ports, the report pusher, and a control port."""

    def __init__(self, sandbox: Sandbox | None = None, *, host: str = "127.0.0.1",
                 port: int = 0, push_reports: bool = True) -> None:
        self.sandbox = sandbox or Sandbox()
        self.bind = host
        self.listeners: dict[str, _Listener] = {}
        next_port = port
        for label, app in self.sandbox.apps().items():
            self.listeners[label] = _Listener(app, host, next_port or free_port(host))
            next_port = next_port + 1 if next_port else 0
        self.control = _Listener(self._control_app, host, next_port or free_port(host))
        self.pusher = ReportPusher(self.sandbox) if push_reports else None
        self.sandbox.state.host_listeners.append(self._on_host)

    def _control_app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        req = parse_request(environ, "control")
        resp = control(self.sandbox.state, req) if req.path.startswith("/__sandbox__") \
            else SimResponse.json({"error": "not found"}, status=404)
        start_response(f"{resp.status} X", [("Content-Type", resp.content_type),
                                            ("Content-Length", str(len(resp.body)))])
        return [resp.body]

    def _on_host(self, host: str, up: bool) -> None:
        listener = self.listeners.get(host)
        if listener is not None:
            (listener.up if up else listener.down)()

    def start(self) -> SandboxServer:
        for listener in [*self.listeners.values(), self.control]:
            listener.up()
        self.sandbox.use_urls(self.urls())
        if self.pusher is not None:
            self.pusher.start()
        return self

    def stop(self) -> None:
        if self.pusher is not None:
            self.pusher.stop()
        for listener in [*self.listeners.values(), self.control]:
            listener.down()

    def urls(self) -> dict[str, str]:
        return {label: f"http://{self.bind}:{lst.port}" for label, lst in self.listeners.items()}

    @property
    def control_url(self) -> str:
        return f"http://{self.bind}:{self.control.port}/__sandbox__"

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
