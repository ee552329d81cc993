"""Several receiver processes on one listening socket, kept alive by a small parent.

One waitress process is one interpreter lock: every request's Python runs on one
core, and its poll loop walks every open connection on each wake-up, so a
single process serving 50 busy connections spends more time there than on the
reports (B7 in bench/RESULTS.md measures it). The parent binds the socket once
and forks `SMSQ_WEBHOOK_PROCESSES` children that each run their own waitress
server on it (the kernel hands each new connection to one of them). The parent
does no request work: it restarts a child that dies (with a growing pause if
children die young, so a broken deploy does not fork in a loop), serves the
merged metrics when `SMSQ_METRICS_PORT` is set, and on SIGTERM / SIGINT stops
the children (each finishes its running requests) before it exits.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from types import FrameType

import structlog

log = structlog.get_logger("smsq.webhooks")
STOP_GRACE = 25.0  # seconds the children get to finish their requests before SIGKILL
YOUNG = 5.0  # a child that dies sooner than this after its start counts as a crash loop


class _Stop(Exception):
    pass


def die_with_parent() -> None:
    """Linux: TERM this process when the one that started it dies (no orphans)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def listen_socket(host: str, port: int, backlog: int) -> socket.socket:
    """The shared listening socket, bound and listening before any child exists."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


class Supervisor:
    """Forks `count` children running `child()` and keeps that many alive until stopped.

    `child` never returns normally in the child; whatever it does, the child then exits."""

    def __init__(self, count: int, child: Callable[[], None],
                 on_exit: Callable[[int], None] = lambda pid: None) -> None:
        self.count = max(1, count)
        self.child = child
        self.on_exit = on_exit
        self.children: dict[int, float] = {}  # pid -> start time
        self.pause = 0.0

    def run(self, ready: Callable[[], None] = lambda: None) -> int:
        """Start the children, call `ready` (they are forked and tracked by then), and keep
        them alive until SIGTERM / SIGINT; then stop them all."""
        def stop(signum: int, frame: FrameType | None) -> None:
            raise _Stop

        previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            while len(self.children) < self.count:
                self._spawn()
            ready()
            while True:
                pid, status = os.waitpid(-1, 0)
                started = self.children.pop(pid, None)
                if started is None:
                    continue
                self.on_exit(pid)
                self._replace(pid, status, time.monotonic() - started)
        except _Stop:
            pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self._stop_all()
        return 0

    def _spawn(self) -> None:
        """Fork one child. SIGTERM / SIGINT are held while it is forked and recorded, so a
        stop arriving then can neither leave an untracked child nor run the parent's
        handler in the child."""
        parent = os.getpid()
        held = {signal.SIGTERM, signal.SIGINT}
        signal.pthread_sigmask(signal.SIG_BLOCK, held)
        try:
            pid = os.fork()
            if pid == 0:
                self._child_main(parent, held)
            self.children[pid] = time.monotonic()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, held)

    def _child_main(self, parent: int, held: set[signal.Signals]) -> None:
        """The child: never back into the parent's loop."""
        code = 1
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group:
            # the parent turns it into SIGTERM, which lets running requests finish
            die_with_parent()
            signal.pthread_sigmask(signal.SIG_UNBLOCK, held)
            if os.getppid() != parent:  # the parent died before the death signal was set
                os._exit(0)
            self.child()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0
        except BaseException as exc:  # logged; then the child ends
            log.error("webhooks_process_failed", error=type(exc).__name__)
        finally:
            os._exit(code)

    def _replace(self, pid: int, status: int, lived: float) -> None:
        code = os.waitstatus_to_exitcode(status)
        self.pause = min(30.0, max(1.0, self.pause * 2)) if lived < YOUNG else 0.0
        log.error("webhooks_process_died", pid=pid, exit=code, lived_s=round(lived, 1),
                  restart_in_s=self.pause)
        time.sleep(self.pause)
        self._spawn()

    def _stop_all(self) -> None:
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                self.children.pop(pid, None)
        deadline = time.monotonic() + STOP_GRACE
        while self.children and time.monotonic() < deadline:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.05)
                continue
            if self.children.pop(pid, None) is not None:
                self.on_exit(pid)
        for pid in list(self.children):  # past the grace: they go now
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.on_exit(pid)
        self.children.clear()
