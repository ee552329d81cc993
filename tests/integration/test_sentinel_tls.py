"""`sentinel+tls://`: Sentinel discovery and the master it names, both over TLS only.

Every Redis process here listens on a TLS port and on no plain port (`--port 0`) and asks
clients for a certificate (`tls-auth-clients yes`): a primary, its replica and three
sentinels, with a CA and certificates the test makes. A clear-text connection, or one
without smsq's client certificate, cannot work with any of them, so a message that goes
end to end (producer, worker, beat, receiver) proves each of smsq's connections, to the
sentinels and to the master, used TLS with SMSQ_REDIS_TLS_CERT/KEY. Then the primary is
SIGKILLed: the sentinels promote the replica and smsq follows it, still over TLS.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from providers.sandbox.server import free_port
from tests.integration.conftest import all_final, wait_for
from tests.integration.test_tls import make_certs
from worker import api
from worker.local.embedded import die_with_parent, redis_binary
from worker.local.stack import Stack

pytestmark = pytest.mark.integration
PASSWORD = "sentinel-tls-s3cret"
SERVICE = "smsq"


class TlsReplicated:
    """A TLS-only primary, replica and three sentinels on loopback."""

    def __init__(self, certs: Path) -> None:
        self.certs = certs
        self.nodes = {"primary": free_port(), "replica": free_port()}
        self.sentinels = [free_port() for _ in range(3)]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def tls_args(self) -> list[str]:
        c = self.certs
        return ["--port", "0", "--bind", "127.0.0.1", "--tls-cert-file", str(c / "server.pem"),
                "--tls-key-file", str(c / "server.key"), "--tls-ca-cert-file",
                str(c / "ca.pem"), "--tls-auth-clients", "yes", "--tls-replication", "yes"]

    def start_node(self, name: str, *extra: str) -> None:
        d = self.certs / name
        d.mkdir(exist_ok=True)
        self.procs[name] = subprocess.Popen(
            [redis_binary(), "--tls-port", str(self.nodes[name]), *self.tls_args(),
             "--dir", str(d), "--save", "", "--appendonly", "no", "--requirepass", PASSWORD,
             "--masterauth", PASSWORD, "--logfile", str(d / "redis.log"), *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent)

    def start(self) -> TlsReplicated:
        self.start_node("primary")
        self.start_node("replica", "--replicaof", "127.0.0.1", str(self.nodes["primary"]))
        for port in self.sentinels:
            d = self.certs / f"s{port}"
            d.mkdir()
            conf = d / "sentinel.conf"
            conf.write_text(f"sentinel monitor {SERVICE} 127.0.0.1 {self.nodes['primary']} 2\n"
                            f"sentinel auth-pass {SERVICE} {PASSWORD}\n"
                            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                            f"sentinel failover-timeout {SERVICE} 3000\n")
            self.procs[f"s{port}"] = subprocess.Popen(
                [redis_binary(), str(conf), "--sentinel", "--tls-port", str(port),
                 *self.tls_args(), "--dir", str(d), "--logfile", str(d / "sentinel.log")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                preexec_fn=die_with_parent)
        assert wait_for(self.ready, timeout=30, step=0.2), f"sentinels not ready: {self.certs}"
        return self

    def tls(self) -> dict[str, Any]:
        c = self.certs  # the server's certificate doubles as the client's (no EKU limits)
        return {"ssl": True, "ssl_ca_certs": str(c / "ca.pem"), "ssl_cert_reqs": "required",
                "ssl_certfile": str(c / "server.pem"), "ssl_keyfile": str(c / "server.key"),
                "socket_timeout": 2}

    def sentinel(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, decode_responses=True, **self.tls())

    def node(self, name: str) -> redis.Redis:
        return redis.Redis(port=self.nodes[name], password=PASSWORD, decode_responses=True,
                           **self.tls())

    def ready(self) -> bool:
        try:
            for port in self.sentinels:
                m: dict[str, Any] = self.sentinel(port).sentinel_master(SERVICE)  # type: ignore[assignment]
                if int(m.get("num-slaves", 0)) < 1 or int(m.get("num-other-sentinels", 0)) < 2:
                    return False
            return self.node("replica").info("replication")["master_link_status"] == "up"
        except redis.RedisError:
            return False

    def master_port(self) -> int:
        try:
            found: Any = self.sentinel(self.sentinels[0]).sentinel_get_master_addr_by_name(
                SERVICE)
            return int(found[1])
        except (redis.RedisError, TypeError):
            return 0

    @property
    def url(self) -> str:
        return "sentinel+tls://" + ",".join(f"127.0.0.1:{p}" for p in self.sentinels) \
            + f"/{SERVICE}"

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=20)


@pytest.fixture(scope="module")
def tls_sentinels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsReplicated]:
    certs = tmp_path_factory.mktemp("sentinel-tls")
    make_certs(certs)
    rr = TlsReplicated(certs).start()
    yield rr
    rr.stop()


def test_plain_clients_cannot_talk_to_these_servers(tls_sentinels: TlsReplicated) -> None:
    """The premise: every port here is TLS-only, so whatever completes below used TLS."""
    for port in [*tls_sentinels.nodes.values(), *tls_sentinels.sentinels]:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as plain:
            plain.sendall(b"PING\r\n")
            try:
                answer = plain.recv(64)
            except (TimeoutError, ConnectionResetError):  # either: no Redis reply
                answer = b""
        assert b"PONG" not in answer, port


def test_messages_go_end_to_end_through_tls_sentinels_and_across_a_failover(
        tls_sentinels: TlsReplicated) -> None:
    """Producer, worker, beat, receiver and `smsq health` reach the sentinels and the master
    over TLS; after the primary is killed they follow the promoted replica, still over TLS."""
    rr = tls_sentinels
    saved = dict(os.environ)
    stack = Stack(redis_url=rr.url, queued_for=0.2, final_after=0.8, poll_interval=1.0,
                  extra_env={"SMSQ_REDIS_PASSWORD": PASSWORD,
                             "SMSQ_REDIS_TLS_CA": str(rr.certs / "ca.pem"),
                             "SMSQ_REDIS_TLS_CERT": str(rr.certs / "server.pem"),
                             "SMSQ_REDIS_TLS_KEY": str(rr.certs / "server.key")})
    try:
        stack.start(workers=1, concurrency=2)
        stack.use_here()
        job = api.submit(["+79161234567", "+79161234568"], "over tls sentinels", account="smsru")
        assert wait_for(lambda: all_final(job.ids), timeout=60), stack.dir
        assert {s["status"] for s in api.get_status(job.ids)} == {"delivered"}
        health = subprocess.run([sys.executable, "-m", "worker.cli.main", "health", "--check",
                                 "redis", "--check", "beat"], env=stack.env(),
                                capture_output=True, text=True, timeout=60)
        assert health.returncode == 0, health.stdout + health.stderr
        assert f"sentinel+tls://127.0.0.1:{rr.sentinels[0]}" in health.stdout
        assert f"master 127.0.0.1:{rr.nodes['primary']}" in health.stdout
        assert PASSWORD not in health.stdout + health.stderr

        os.kill(rr.procs["primary"].pid, signal.SIGKILL)
        rr.procs["primary"].wait()
        assert wait_for(lambda: rr.master_port() == rr.nodes["replica"], timeout=30), \
            "the sentinels did not promote the replica"
        again = api.submit(["+79161234569"], "after the failover", account="smsru")
        assert wait_for(lambda: all_final(again.ids), timeout=60), stack.dir
        assert {s["status"] for s in api.get_status(again.ids)} == {"delivered"}
        assert rr.node("replica").info("replication")["role"] == "master"
        logs = "".join(p.read_text(errors="replace") for p in stack.dir.glob("*.log"))
        assert PASSWORD not in logs
    finally:
        stack.stop()
        os.environ.clear()
        os.environ.update(saved)
        api.reset()

