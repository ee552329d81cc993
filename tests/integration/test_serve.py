"""The receiver on waitress, as `smsq webhooks` runs it: the bound port is printed, slow
clients cannot starve genuine reports even past the open-file limit, silent connections
are closed, and SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import random
import resource
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import psutil
import pytest
import requests

from providers.sandbox.server import free_port
from tests.deploy.conftest import ROOT
from tests.integration.conftest import wait_for
from worker.local.embedded import EmbeddedRedis

pytestmark = pytest.mark.integration
TOKEN = "serve-test-token-0123456789"
REPORT = "data%5B0%5D=sms_status%0A000000-1%0A103%0A1700000000"


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis().start()
    yield server
    server.cleanup()


class Receiver:
    def __init__(self, broker: EmbeddedRedis, open_files: int = 0, **env: str) -> None:
        full = {k: v for k, v in os.environ.items() if not k.startswith("SMSQ_")}
        full.update(SMSQ_REDIS_URL=broker.url, SMSQ_WEBHOOK_TOKEN=TOKEN, PYTHONPATH=str(ROOT),
                    **env)

        def limit() -> None:
            if open_files:
                resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

        self.proc = subprocess.Popen([sys.executable, "-m", "worker.cli.main", "webhooks",
                                      "--port", "0"], env=full, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, preexec_fn=limit)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        assert wait_for(lambda: any(self._banner()) or self.proc.poll() is not None, 30)
        banner = next(iter(self._banner()), "")
        assert banner, "".join(self.lines)
        self.port = int(banner.split("127.0.0.1:")[1].split("/")[0])
        self.url = f"http://127.0.0.1:{self.port}"

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:  # drained, so logging never blocks the server
            self.lines.append(raw.decode(errors="replace"))

    def _banner(self) -> list[str]:
        return [ln for ln in list(self.lines) if ln.startswith("smsq webhooks on http://")]

    def report(self, timeout: float = 10.0) -> requests.Response:
        return requests.post(f"{self.url}/{TOKEN}/smsru", data=REPORT, timeout=timeout,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def open_slow(port: int, n: int, rng: random.Random) -> list[socket.socket]:
    out = []
    for _ in range(n):
        s = socket.socket()
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", port))
            s.sendall(b"POST /" + TOKEN.encode()[: rng.randint(1, 8)])
        except OSError:
            s.close()
            continue
        out.append(s)
    return out


def closed_by_server(s: socket.socket) -> bool:
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_port_zero_prints_the_bound_port_and_serves(broker):
    """`smsq webhooks --port 0` prints the port it bound; reports are answered there."""
    rx = Receiver(broker)
    try:
        assert requests.get(f"{rx.url}/healthz", timeout=10).text == "ok"
        reply = rx.report()
        assert reply.status_code == 200 and reply.text == "100"
    finally:
        assert rx.stop() == 0


def test_genuine_reports_are_answered_past_the_open_file_limit_of_slow_clients(broker):
    """With more slow connections than the process may open files, each genuine report is
    still answered: the oldest unfinished connection gives up its slot."""
    seed = random.randrange(1 << 30)
    print(f"seed={seed}")
    rng = random.Random(seed)
    rx = Receiver(broker, open_files=256, SMSQ_WEBHOOK_CONNECTION_LIMIT="1000",
                  SMSQ_WEBHOOK_PROCESSES="1")  # the limits are per process
    slow: list[socket.socket] = []
    try:
        slow = open_slow(rx.port, 300, rng)  # 300 > 256 descriptors the receiver may hold
        for _ in range(5):
            slow += open_slow(rx.port, 20, rng)
            assert rx.report().status_code == 200
        evicted: set[int] = set()

        def enough_evicted() -> bool:
            evicted.update(i for i, s in enumerate(slow) if i not in evicted
                           and closed_by_server(s))
            return len(evicted) >= len(slow) - 256

        assert wait_for(enough_evicted, timeout=10)
        assert rx.proc.poll() is None
    finally:
        for s in slow:
            s.close()
        assert rx.stop() == 0


def test_a_silent_connection_is_closed_after_the_channel_timeout(broker):
    """A connection that sends nothing is closed after SMSQ_WEBHOOK_CHANNEL_TIMEOUT."""
    rx = Receiver(broker, SMSQ_WEBHOOK_CHANNEL_TIMEOUT="1")
    try:
        s = socket.create_connection(("127.0.0.1", rx.port), timeout=15)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
        assert s.recv(1) == b""  # waitress closed it (the 15 s timeout is only a bound)
        s.close()
    finally:
        assert rx.stop() == 0


def test_hostile_bytes_get_a_400_not_a_crash(broker):
    """Random garbage instead of HTTP gets an error reply or a close; the server lives on."""
    seed = random.randrange(1 << 30)
    print(f"seed={seed}")
    rng = random.Random(seed)
    rx = Receiver(broker)
    try:
        for _ in range(30):
            with socket.create_connection(("127.0.0.1", rx.port), timeout=10) as s:
                s.sendall(bytes(rng.randrange(256) for _ in range(rng.randint(1, 2000)))
                          + b"\r\n\r\n")
                s.shutdown(socket.SHUT_WR)
                reply = s.recv(64)
                assert reply == b"" or reply.startswith(b"HTTP/1."), reply
        assert rx.report().status_code == 200
    finally:
        assert rx.stop() == 0


def children(rx: Receiver) -> set[int]:
    return {c.pid for c in psutil.Process(rx.proc.pid).children()
            if c.status() != psutil.STATUS_ZOMBIE}


def test_processes_share_the_port_a_killed_one_is_replaced_and_sigterm_stops_all(broker):
    """SMSQ_WEBHOOK_PROCESSES=3: three servers under one parent; SIGKILL one and the parent
    starts another while reports keep being answered; SIGTERM stops every one, exit 0."""
    rx = Receiver(broker, SMSQ_WEBHOOK_PROCESSES="3")
    try:
        assert wait_for(lambda: len(children(rx)) == 3, timeout=20), rx.lines
        first = children(rx)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        answered = [rx.report().status_code for _ in range(20)]
        assert answered == [200] * 20
        assert wait_for(lambda: len(children(rx)) == 3 and victim not in children(rx),
                        timeout=20), rx.lines
        assert len(children(rx) - first) == 1
        assert any('"webhooks_process_died"' in ln for ln in rx.lines)
        after = children(rx)
    finally:
        assert rx.stop() == 0
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status()
                   != psutil.STATUS_ZOMBIE for pid in after)


def test_processes_metrics_are_merged_by_the_parent(broker, tmp_path):
    """With several processes, the parent serves one scrape of what its children counted."""
    port = free_port()
    rx = Receiver(broker, SMSQ_WEBHOOK_PROCESSES="2", SMSQ_METRICS_PORT=str(port),
                  SMSQ_METRICS_DIR=str(tmp_path / "metrics"))
    try:
        assert wait_for(lambda: len(children(rx)) == 2, timeout=20)
        for _ in range(12):  # a new connection each: the kernel spreads them
            assert rx.report().status_code == 200

        def received() -> float:
            text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
            return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("smsq_reports_total{")
                       and 'result="received"' in line)

        assert wait_for(lambda: received() == 12, timeout=10), received()
    finally:
        assert rx.stop() == 0


def test_processes_die_with_a_killed_parent(broker):
    """SIGKILL on the parent (no chance to stop them) still leaves no orphaned server."""
    rx = Receiver(broker, SMSQ_WEBHOOK_PROCESSES="2")
    assert wait_for(lambda: len(children(rx)) == 2, timeout=20)
    kids = [psutil.Process(pid) for pid in children(rx)]
    rx.proc.kill()
    rx.proc.wait(timeout=10)
    _gone, alive = psutil.wait_procs(kids, timeout=10)
    assert not alive


def test_a_stop_at_any_moment_of_start_up_leaves_no_process_behind(broker):
    """SIGTERM or SIGINT at random moments while the parent imports, binds and forks (seeded):
    it always exits, within the stop grace, and no receiver process outlives it."""
    seed = random.randrange(1 << 30)
    print(f"seed={seed}")
    rng = random.Random(seed)
    marker = f"startup-race-{seed}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSQ_")}
    env.update(SMSQ_REDIS_URL=broker.url, SMSQ_WEBHOOK_TOKEN=marker, PYTHONPATH=str(ROOT),
               SMSQ_WEBHOOK_PROCESSES="3")
    for _ in range(8):
        proc = subprocess.Popen([sys.executable, "-m", "worker.cli.main", "webhooks",
                                 "--port", "0"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        threading.Event().wait(rng.uniform(0.2, 1.5))
        proc.send_signal(rng.choice([signal.SIGTERM, signal.SIGINT]))
        proc.wait(timeout=40)

    def leftovers() -> list[int]:
        found = []
        for p in psutil.process_iter(["pid"]):
            try:
                if p.environ().get("SMSQ_WEBHOOK_TOKEN") == marker:
                    found.append(p.pid)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return found

    assert wait_for(lambda: not leftovers(), timeout=10), leftovers()
