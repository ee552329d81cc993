"""A replicated Redis on loopback for tests and benchmarks: a primary, a replica, and
(optionally) sentinels watching them, each a real redis-server process.

`url` is what smsq is given: the primary's redis:// URL without sentinels, the
`sentinel://h1:p1,h2:p2,h3:p3/<service>` URL with them. Every process it started
is stopped by `cleanup()`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from typing import Any

import redis

from providers.errors import ConfigurationError
from providers.sandbox.server import free_port
from worker.local.embedded import EmbeddedRedis, die_with_parent, redis_binary


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except redis.RedisError:
            pass
        time.sleep(step)
    return False


class ReplicatedRedis:
    def __init__(self, *, sentinels: int = 0, service: str = "smsq",
                 down_after_ms: int = 1000, failover_timeout_ms: int = 3000) -> None:
        self.dir = tempfile.mkdtemp(prefix="smsq-repl-")
        self.nodes = [EmbeddedRedis(directory=self._sub("a")),
                      EmbeddedRedis(directory=self._sub("b"))]
        self.service = service
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.sentinel_procs: list[subprocess.Popen[bytes]] = []

    def _sub(self, name: str) -> str:
        path = os.path.join(self.dir, name)
        os.makedirs(path, exist_ok=True)
        return path

    @property
    def primary(self) -> EmbeddedRedis:
        return self.nodes[0]

    @property
    def replica(self) -> EmbeddedRedis:
        return self.nodes[1]

    @property
    def url(self) -> str:
        if not self.sentinel_ports:
            return self.primary.url
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"sentinel://{hosts}/{self.service}"

    def client(self, node: EmbeddedRedis) -> redis.Redis:
        return redis.Redis(port=node.port, socket_timeout=5, decode_responses=True)

    def start(self) -> ReplicatedRedis:
        for node in self.nodes:
            node.start()
        self.replicate(self.replica, self.primary)
        for port in self.sentinel_ports:
            self.sentinel_procs.append(self._sentinel(port))
        if self.sentinel_ports and not wait_until(self._sentinels_ready, 20):
            raise ConfigurationError(f"the sentinels did not see the replica (see {self.dir})")
        return self

    def replicate(self, node: EmbeddedRedis, of: EmbeddedRedis, timeout: float = 20) -> None:
        """Make `node` a replica of `of`, and wait until its link is up."""
        self.client(node).replicaof("127.0.0.1", of.port)
        if not wait_until(lambda: self.linked(node), timeout):
            raise ConfigurationError(f"replica on {node.port} did not sync (see {self.dir})")

    def linked(self, node: EmbeddedRedis) -> bool:
        info = self.client(node).info("replication")
        return info.get("role") == "slave" and info.get("master_link_status") == "up"

    def _sentinel(self, port: int) -> subprocess.Popen[bytes]:
        conf = os.path.join(self._sub(f"s{port}"), "sentinel.conf")
        name = self.service
        with open(conf, "w") as fh:
            fh.write(f"port {port}\nbind 127.0.0.1\ndaemonize no\n"
                     f"dir {os.path.dirname(conf)}\nlogfile {conf}.log\n"
                     f"sentinel monitor {name} 127.0.0.1 {self.primary.port} 2\n"
                     f"sentinel down-after-milliseconds {name} {self.down_after_ms}\n"
                     f"sentinel failover-timeout {name} {self.failover_timeout_ms}\n"
                     f"sentinel parallel-syncs {name} 1\n")
        return subprocess.Popen([redis_binary(), conf, "--sentinel"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                preexec_fn=die_with_parent)

    def _sentinels_ready(self) -> bool:
        for port in self.sentinel_ports:
            s = redis.Redis(port=port, socket_timeout=2, decode_responses=True)
            master: dict[str, Any] = s.sentinel_master(self.service)  # type: ignore[assignment]
            if int(master.get("num-slaves", 0)) < 1 or int(master.get("num-other-sentinels",
                                                                       0)) < 1:
                return False
        return True

    def master_port(self) -> int:
        """The port the sentinels name as the master now."""
        s = redis.Redis(port=self.sentinel_ports[0], socket_timeout=2, decode_responses=True)
        found: tuple[str, int] = s.sentinel_get_master_addr_by_name(  # type: ignore[assignment]
            self.service)
        return int(found[1])

    def cleanup(self) -> None:
        for proc in self.sentinel_procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
