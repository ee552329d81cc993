"""A whole smsq deployment on one machine: private Redis, sandbox, workers, beat, receiver.

Used by `smsq demo`, the integration tests and the benchmarks, so that all
three run the real processes the way production does (Celery worker and beat
as separate processes, the receiver over HTTP), only wired to the sandbox.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

import requests

from providers import REGISTRY
from providers.sandbox import Sandbox
from providers.sandbox.server import SandboxServer, free_port
from worker.engine import queues
from worker.local.embedded import EmbeddedRedis, die_with_parent

ALL_QUEUES = ",".join(["smsq", *queues(list(REGISTRY))])  # high lanes before bulk


class Stack:
    """Start with `start()`, stop with `stop()`; every process it started is stopped."""

    made: ClassVar[list[Path]] = []  # the directories this process's stacks created

    def __init__(self, *, redis_url: str | None = None, appendonly: bool = False,
                 queued_for: float = 0.5, final_after: float = 3.0,
                 outcomes: dict[str, float] | None = None, poll_interval: float = 2.0,
                 extra_env: dict[str, str] | None = None, log_dir: str | None = None) -> None:
        self.redis = None if redis_url else EmbeddedRedis(appendonly=appendonly)
        self.redis_url = redis_url
        self.sandbox = Sandbox(queued_for=queued_for, final_after=final_after,
                               outcomes=outcomes)
        self.server = SandboxServer(self.sandbox)
        self.poll_interval = poll_interval
        self.extra_env = dict(extra_env or {})
        self.token = secrets.token_urlsafe(16)
        self.webhook_port = free_port()
        self.dir = Path(log_dir or tempfile.mkdtemp(prefix="smsq-stack-"))
        if not log_dir:
            Stack.made.append(self.dir)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, Any] = {}

    # -- lifecycle ---------------------------------------------------------------

    def start(self, *, workers: int = 1, concurrency: int = 4, beat: bool = True,
              receiver: bool = True) -> Stack:
        if self.redis is not None:
            self.redis.start()
            self.redis_url = self.redis.url
        self.server.start()
        self.point_reports()
        for i in range(workers):
            self.start_worker(f"worker{i}", concurrency=concurrency)
        if beat:
            self.start_beat()
        if receiver:
            self.start_receiver()
        return self

    def stop(self) -> None:
        for name in list(self.procs):
            self.stop_process(name)
        self.server.stop()
        if self.redis is not None:
            self.redis.cleanup()
        for handle in self._logs.values():
            handle.close()

    def remove_logs(self) -> None:
        """Delete the stack's directory (logs, beat schedule) once it is stopped."""
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- settings ------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The environment every smsq process of this stack runs with."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMSQ_")}
        env.update(self.sandbox.env())
        env.update({
            "SMSQ_REDIS_URL": self.redis_url or "",
            "SMSQ_POLL_INTERVAL": str(self.poll_interval),
            "SMSQ_POLL_FIRST_AFTER": str(self.poll_interval),
            "SMSQ_RECONCILE_INTERVAL": "2",
            "SMSQ_REQUEUE_AFTER": "10",
            "SMSQ_SEND_LEASE": "20",
            # A task a killed worker had taken comes back within a minute, not four.
            "SMSQ_VISIBILITY_TIMEOUT": "30",
            "SMSQ_READ_TIMEOUT": "5",
            "SMSQ_WEBHOOK_TOKEN": self.token,
            "PYTHONUNBUFFERED": "1",
        })
        urls = self.server.urls()
        env.update({k: re.sub(r"\{url:([\w-]+)\}", lambda m: urls.get(m.group(1), ""), v)
                    for k, v in self.extra_env.items()})
        return env

    def use_here(self) -> None:
        """Point this process (a producer, a test, a benchmark) at the stack's settings."""
        from worker import api

        for key in [k for k in os.environ if k.startswith("SMSQ_")]:
            del os.environ[key]
        os.environ.update({k: v for k, v in self.env().items() if k.startswith("SMSQ_")})
        api.reset()

    def webhook_url(self, gateway: str) -> str:
        return f"http://127.0.0.1:{self.webhook_port}/{self.token}/{gateway}"

    def point_reports(self) -> None:
        """Every simulated gateway that pushes reports posts them to our receiver."""
        self.sandbox.state.configure({"callbacks": {
            gw: [self.webhook_url(gw)] for gw in self.sandbox.sims if REGISTRY[gw].reports}})

    # -- processes -----------------------------------------------------------------

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.dir / f"{name}.log", "ab")
        self._logs[name] = log
        proc = subprocess.Popen(args, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=die_with_parent)
        self.procs[name] = proc
        return proc

    def start_worker(self, name: str, *, concurrency: int = 4, queues: str = ALL_QUEUES,
                     pool: str = "prefork") -> subprocess.Popen[bytes]:
        return self._spawn(name, [sys.executable, "-m", "celery", "-A", "worker", "worker",
                                  "-Q", queues, "-c", str(concurrency), "-P", pool,
                                  "-n", f"{name}@%h", "--without-gossip", "--without-mingle",
                                  "--without-heartbeat", "-l", "WARNING"])

    def start_beat(self, name: str = "beat") -> subprocess.Popen[bytes]:
        schedule = self.dir / f"{name}-schedule"
        return self._spawn(name, [sys.executable, "-m", "celery", "-A", "worker", "beat",
                                  "-s", str(schedule), "-l", "WARNING"])

    def start_receiver(self) -> subprocess.Popen[bytes]:
        """The receiver on its port; if another process took the port, on a new one."""
        for _ in range(3):
            proc = self._spawn("receiver", [sys.executable, "-m", "worker.cli.main", "webhooks",
                                            "--host", "127.0.0.1", "--port",
                                            str(self.webhook_port)])
            if self._wait_http(f"http://127.0.0.1:{self.webhook_port}/healthz", proc):
                return proc
            self.stop_process("receiver")
            self.webhook_port = free_port()
            self.point_reports()
        raise RuntimeError(f"the receiver did not start (see {self.dir}/receiver.log)")

    def _wait_http(self, url: str, proc: subprocess.Popen[bytes],
                   timeout: float = 20.0) -> bool:
        """True once `url` answers; False if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if requests.get(url, timeout=0.5).ok:
                    return True
            except requests.RequestException:
                time.sleep(0.1)
        return False

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal a process and its children (a Celery worker's pool)."""
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=60)

    def stop_process(self, name: str, timeout: float = 30.0) -> None:
        """Warm shutdown: TERM to the main process only (it lets its pool finish), as
        systemd's KillMode=mixed does; the whole group is killed only past `timeout`."""
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # stragglers of its process group
        except ProcessLookupError:
            pass
        proc.wait()

    # -- reading the sandbox's record ------------------------------------------------

    def sandbox_messages(self) -> list[dict[str, Any]]:
        with self.sandbox.state.lock:
            return [m.public() for m in self.sandbox.state.messages]

    def sandbox_requests(self) -> list[dict[str, Any]]:
        with self.sandbox.state.lock:
            return list(self.sandbox.state.requests)
