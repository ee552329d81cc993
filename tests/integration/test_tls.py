"""rediss:// is TLS for every connection smsq opens, against a real `redis-server --tls-port`.

A recording relay sits between smsq and Redis: it forwards every byte and keeps
the first bytes of each connection, so the test sees what a listener on the wire
would see — a TLS handshake, never `AUTH`, `HELLO` or the password.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from providers.sandbox.server import free_port
from tests.deploy.tools import tool
from tests.integration.conftest import all_final, wait_for
from worker import api
from worker.local.embedded import redis_binary
from worker.local.stack import Stack

pytestmark = pytest.mark.integration
PASSWORD = "tls-test-s3cret-password"


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run([tool("openssl", "openssl"), *args], cwd=cwd, check=True,
                   capture_output=True)


def make_certs(d: Path) -> None:
    """A CA, and a server certificate for 127.0.0.1 signed by it."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=smsq test CA", "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", "server.key", "-out", "server.csr", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.pem", cwd=d)


class Relay:
    """Forwards loopback TCP to Redis and records each connection's first 4 KiB upstream."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.first: list[bytearray] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            seen = bytearray()
            with self.lock:
                self.first.append(seen)
            threading.Thread(target=self._pump, args=(client, server, seen), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, None), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, seen: bytearray | None) -> None:
        try:
            while data := src.recv(65536):
                if seen is not None and len(seen) < 4096:
                    seen.extend(data[: 4096 - len(seen)])
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept thread, which then ends
        except OSError:
            pass
        self.sock.close()


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    d = tmp_path_factory.mktemp("tls")
    make_certs(d)
    port = free_port()
    proc = subprocess.Popen([redis_binary(), "--port", "0", "--tls-port", str(port),
                             "--bind", "127.0.0.1", "--dir", str(d), "--save", "",
                             "--tls-cert-file", "server.pem", "--tls-key-file", "server.key",
                             "--tls-ca-cert-file", "ca.pem", "--tls-auth-clients", "no",
                             "--requirepass", PASSWORD, "--logfile", str(d / "redis.log")],
                            cwd=d)
    client = redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(d / "ca.pem"),
                         password=PASSWORD)
    assert wait_for(lambda: _pings(client), timeout=20), (d / "redis.log").read_text()
    yield d, port
    proc.terminate()
    proc.wait(timeout=20)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def test_a_message_goes_end_to_end_over_tls_and_nothing_is_clear_text(tls_redis):
    """Workers, beat, receiver and producer reach Redis only through TLS; a send completes."""
    certs, port = tls_redis
    relay = Relay(port)
    saved = dict(os.environ)
    stack = Stack(redis_url=f"rediss://127.0.0.1:{relay.port}/0", queued_for=0.2,
                  final_after=0.8, poll_interval=1.0,
                  extra_env={"SMSQ_REDIS_PASSWORD": PASSWORD,
                             "SMSQ_REDIS_TLS_CA": str(certs / "ca.pem")})
    try:
        stack.start(workers=1, concurrency=2)
        stack.use_here()
        job = api.submit(["+79161234567", "+79161234568"], "over tls", account="smsru")
        assert wait_for(lambda: all_final(job.ids), timeout=90), stack.dir
        assert {s["status"] for s in api.get_status(job.ids)} == {"delivered"}
        health = subprocess.run([sys.executable, "-m", "worker.cli.main", "health", "--check",
                                 "redis", "--check", "beat"], env=stack.env(),
                                capture_output=True, text=True, timeout=60)
        assert health.returncode == 0, health.stdout + health.stderr
        assert f"rediss://127.0.0.1:{relay.port}" in health.stdout
        assert PASSWORD not in health.stdout + health.stderr
    finally:
        stack.stop()
        os.environ.clear()
        os.environ.update(saved)
        api.reset()
        relay.close()
    with relay.lock:
        streams = [bytes(s) for s in relay.first if s]
    assert len(streams) >= 4  # producer, worker (broker + ledger), beat, receiver, health
    for stream in streams:
        assert stream[:1] == b"\x16" and stream[1:2] == b"\x03", stream[:16]  # TLS handshake
        for clear in (b"AUTH", b"HELLO", b"auth", PASSWORD.encode()):
            assert clear not in stream


def test_a_plain_redis_url_with_tls_options_is_refused_at_start_up():
    """SMSQ_REDIS_TLS_CA with a redis:// URL fails at start-up, naming both settings."""
    from providers.errors import ConfigurationError
    from worker import settings

    with pytest.raises(ConfigurationError, match="SMSQ_REDIS_TLS"):
        settings.load({"SMSQ_REDIS_URL": "redis://127.0.0.1:1/0",
                       "SMSQ_REDIS_TLS_CA": "/nonexistent/ca.pem"})


def test_tls_with_an_unknown_ca_is_refused_not_downgraded(tls_redis):
    """Against a server whose CA is not trusted, smsq fails; it never falls back to clear text."""
    from worker.transport.connection import RedisTarget

    _certs, port = tls_redis
    relay = Relay(port)
    try:
        client = RedisTarget(f"rediss://127.0.0.1:{relay.port}/0", password=PASSWORD).client(
            timeout=3)
        with pytest.raises(redis.ConnectionError) as err:
            client.ping()
        assert PASSWORD not in str(err.value)
    finally:
        relay.close()
    assert all(bytes(s)[:1] in (b"", b"\x16") for s in relay.first)
