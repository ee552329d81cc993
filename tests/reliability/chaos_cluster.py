"""The processes of a chaos run, each killable on its own: Redis (append-only, fsync every
second), the sandbox in a process of its own, two Celery worker nodes and beat."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import requests

from providers.sandbox import simulator_class
from worker.local.embedded import EmbeddedRedis, die_with_parent
from worker.local.stack import ALL_QUEUES

GATEWAYS = ["smsc", "gatum", "smsru", "smsclub", "sms1000"]
SLOW = 0.25  # seconds each send reply is held back, so kills land mid-batch


def send_path(gateway: str) -> str:
    return str(simulator_class(gateway).send_path)  # type: ignore[attr-defined]


class Cluster:
    def __init__(self, *, visibility_timeout: float = 60.0, log_dir: str | None = None) -> None:
        self.dir = Path(log_dir or tempfile.mkdtemp(prefix="smsq-chaos-"))
        self.redis = EmbeddedRedis(appendonly=True)
        self.vt = visibility_timeout
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.sandbox_env: dict[str, str] = {}
        self.control = ""
        self.orphans: list[int] = []

    @property
    def redis_url(self) -> str:
        return self.redis.url

    def start(self) -> Cluster:
        self.redis.start()
        self._start_sandbox()
        for name in ("node0", "node1"):
            self.start_node(name)
        self.start_beat()
        return self

    def stop(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGCONT)
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        for group in self.orphans:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.redis.cleanup()

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMSQ_")}
        env.update(self.sandbox_env)
        env.update({"SMSQ_REDIS_URL": self.redis_url, "SMSQ_POLL_INTERVAL": "1",
                    "SMSQ_POLL_FIRST_AFTER": "1", "SMSQ_RECONCILE_INTERVAL": "2",
                    "SMSQ_SEND_LEASE": "15", "SMSQ_CONNECT_TIMEOUT": "1",
                    "SMSQ_READ_TIMEOUT": "3", "SMSQ_MAX_ATTEMPTS": "8",
                    "SMSQ_BACKOFF_MAX": "5", "SMSQ_CIRCUIT_COOLDOWN": "3",
                    "SMSQ_VISIBILITY_TIMEOUT": str(self.vt), "PYTHONUNBUFFERED": "1"})
        return env

    # -- processes ---------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.dir / f"{name}.log", "ab")
        proc = subprocess.Popen(args, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=die_with_parent)
        log.close()
        self.procs[name] = proc
        return proc

    def _start_sandbox(self) -> None:
        out = self.dir / "sandbox.json"
        self._spawn("sandbox", [sys.executable, "-m", "tests.reliability.chaos", "sandbox",
                                "--out", str(out)])
        deadline = time.monotonic() + 30
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        data = json.loads(out.read_text())
        self.sandbox_env, self.control = data["env"], data["control"]
        self.slow_all()

    def start_node(self, name: str) -> None:
        self._spawn(name, [sys.executable, "-m", "celery", "-A", "worker", "worker", "-Q",
                           ALL_QUEUES, "-c", "3", "-P", "prefork", "-n", f"{name}@%h",
                           "--without-gossip", "--without-mingle", "--without-heartbeat",
                           "-l", "WARNING"])

    def start_beat(self) -> None:
        self._spawn("beat", [sys.executable, "-m", "celery", "-A", "worker", "beat", "-s",
                             str(self.dir / "beat-schedule"), "-l", "WARNING"])

    def kill_node(self, name: str) -> None:
        """The whole node: main process and pool, as a machine dying."""
        proc = self.procs[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def kill_main(self, name: str) -> None:
        """The node's main process alone: its pool children are orphaned."""
        proc = self.procs[name]
        proc.kill()
        proc.wait()
        self.orphans.append(proc.pid)  # their process group, killed at the end

    def kill_pool_child(self, name: str, pick: int) -> bool:
        """One pool process of a node (the main process forks a new one)."""
        try:
            children = psutil.Process(self.procs[name].pid).children()
        except psutil.Error:
            return False
        if not children:
            return False
        children[pick % len(children)].kill()
        return True

    def freeze(self, name: str, frozen: bool) -> None:
        os.killpg(self.procs[name].pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    def restart(self, name: str) -> None:
        if name == "beat":
            self.start_beat()
        else:
            self.start_node(name)

    def kill_redis(self) -> None:
        """SIGKILL, never a graceful stop; restarted on the same port from its AOF."""
        proc = self.redis.proc
        assert proc is not None
        proc.kill()
        proc.wait()
        self.redis.proc = None
        self.redis.start()

    # -- the sandbox's control routes ------------------------------------------------

    def faults(self, extra: list[dict[str, Any]]) -> None:
        """Replace the scripted faults: `extra` first, then the slow replies."""
        requests.delete(f"{self.control}/faults", timeout=5)
        slow = [{"kind": "slow", "delay": SLOW, "count": -1, "gateway": gw,
                 "path": send_path(gw)} for gw in GATEWAYS]
        requests.post(f"{self.control}/faults", json=[*extra, *slow], timeout=5)

    def answer_counts(self) -> dict[str, int]:
        """HTTP statuses the gateways answered with (the 5xx and 429 windows show here)."""
        rows = requests.get(f"{self.control}/requests", timeout=30).json()
        out: dict[str, int] = {}
        for row in rows:
            out[str(row.get("status"))] = out.get(str(row.get("status")), 0) + 1
        return out

    def slow_all(self) -> None:
        self.faults([])

    def sandbox_messages(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = requests.get(f"{self.control}/messages", timeout=30).json()
        return rows


def serve_sandbox(out: str) -> None:
    """Entry point of the sandbox process: serve, say where, wait to be killed."""
    from decimal import Decimal

    from providers.sandbox import Sandbox
    from providers.sandbox.server import SandboxServer

    sandbox = Sandbox(queued_for=0.2, final_after=0.8)
    sandbox.sims["sms1000"].set_balance(Decimal("10000000"))  # type: ignore[attr-defined]
    sandbox.sims["smsc"].store()["balance"] = Decimal("10000000")  # type: ignore[attr-defined]
    server = SandboxServer(sandbox).start()
    tmp = out + ".tmp"
    with open(tmp, "w") as fh:
        json.dump({"env": sandbox.env(), "control": server.control_url}, fh)
    os.replace(tmp, out)
    while True:
        time.sleep(3600)
