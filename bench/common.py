"""Shared helpers of the benchmark scripts: stacks, process CPU/RSS, windows, RESULTS.md.

Every benchmark runs real processes (private redis-server, Celery workers,
the sandbox over loopback HTTP) and prints its figures; `record()` replaces
the script's own section of bench/RESULTS.md so each run leaves a fresh copy.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "RESULTS.md"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from worker import api  # noqa: E402
from worker.local.stack import Stack  # noqa: E402

FINAL_OR_SENT = ("sent", "delivered", "undelivered", "expired", "rejected", "failed",
                 "unknown", "cancelled")


def phone(i: int) -> str:
    """A distinct valid Russian mobile number per index (never ending in 0000, which the
    sandbox refuses as a dead number)."""
    block, rest = divmod(i % 9_990_000, 9999)
    return f"+7916{block:03d}{rest + 1:04d}"


def exit_on_sigterm() -> None:
    """SIGTERM runs the `finally` blocks, so every process a benchmark started is stopped."""
    def _raise(*_: object) -> None:
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, _raise)


def use_stack(stack: Stack) -> None:
    """Point this process's producer API at the stack."""
    stack.use_here()


def quiet_stack(stack: Stack) -> None:
    """No pushed delivery reports: benchmarks measure sending, not the receiver."""
    with stack.sandbox.state.lock:
        stack.sandbox.state.callbacks.clear()


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def job_done(job_ids: Iterable[str], totals: int, statuses: Sequence[str] = FINAL_OR_SENT
             ) -> Callable[[], bool]:
    """True once every message of the jobs has reached one of `statuses`."""
    jobs = list(job_ids)

    def check() -> bool:
        done = 0
        for job in jobs:
            counts = api.job_status(job)["counts"]
            done += sum(n for st, n in counts.items() if st in statuses)
        return done >= totals

    return check


def tree(pid: int) -> list[psutil.Process]:
    try:
        proc = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU of the processes and their live children."""
    total = 0.0
    for pid in pids:
        for proc in tree(pid):
            try:
                t = proc.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
    return total


def rss_mb(pids: Iterable[int]) -> float:
    """VmRSS of the processes and their children, from /proc/<pid>/status, in MB."""
    total_kb = 0
    for pid in pids:
        for proc in tree(pid):
            try:
                text = Path(f"/proc/{proc.pid}/status").read_text()
            except OSError:
                continue
            m = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
            total_kb += int(m.group(1)) if m else 0
    return total_kb / 1024


def worker_pids(stack: Stack, prefix: str = "worker") -> list[int]:
    return [p.pid for name, p in stack.procs.items() if name.startswith(prefix)]


def max_in_window(times: Sequence[float], window: float = 1.0) -> int:
    """The most events in any half-open window (t - window, t] (the gateway's own rule)."""
    ts = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(ts):
        while ts[lo] <= t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def spawn_celery(stack: Stack, name: str, app: str, queues: str, concurrency: int,
                 pool: str = "prefork", extra_env: dict[str, str] | None = None
                 ) -> subprocess.Popen[bytes]:
    """A Celery worker of any app, owned (logged, stopped) by the stack."""
    env = stack.env()
    env["PYTHONPATH"] = os.pathsep.join([str(BENCH), str(ROOT), env.get("PYTHONPATH", "")])
    env.update(extra_env or {})
    log = open(stack.dir / f"{name}.log", "ab")
    stack._logs[name] = log
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", app, "worker", "-Q", queues, "-c",
         str(concurrency), "-P", pool, "-n", f"{name}@%h", "--without-gossip",
         "--without-mingle", "--without-heartbeat", "-l", "WARNING"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
    stack.procs[name] = proc
    return proc


def wait_workers_ready(stack: Stack, names: Sequence[str], timeout: float = 60.0) -> None:
    """Wait until every named worker answers a control ping (it is consuming)."""
    from celery import Celery

    probe = Celery("probe", broker=stack.redis_url)
    want = {f"{n}@{socket.gethostname()}" for n in names}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = probe.control.ping(timeout=0.5) or []
        seen = {k for r in replies for k in r}
        if want <= seen:
            return
    raise RuntimeError(f"workers not ready: {sorted(want)}")


def machine() -> str:
    return (f"{platform.node()}: {psutil.cpu_count()} cores, Python "
            f"{platform.python_version()}")


def record(section: str, command: str, body: str) -> None:
    """Replace (or append) `## <section>` in bench/RESULTS.md (not with BENCH_NO_RECORD=1,
    for trial runs)."""
    if os.environ.get("BENCH_NO_RECORD") == "1":
        return
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = (f"## {section}\n\nCommand: `{command}`  \nRun: {stamp} on {machine()}\n\n"
             f"{body.strip()}\n\n")
    text = RESULTS.read_text() if RESULTS.exists() else "# smsq benchmark results\n\n"
    pattern = re.compile(rf"^## {re.escape(section)}\n.*?(?=^## |\Z)", re.M | re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text + block
    RESULTS.write_text(text)


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)
