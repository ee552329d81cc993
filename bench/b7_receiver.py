"""B7 - the delivery-report receiver under load, as `smsq webhooks` serves it (waitress,
SMSQ_WEBHOOK_PROCESSES processes on one socket; default one per CPU).

    .venv/bin/python bench/b7_receiver.py [--seconds 10] [--connections 50] [--slow 1000]

1. `wrk` (Debian) at 50 connections for `--seconds`: single sms.ru reports (each a
   parse + one Redis pipeline: parked, since the ids are unknown) and, for scale,
   `/healthz` (no Redis), with the default process count and, for comparison, one process.
   Requests/s and latency percentiles from wrk's own report.
2. `--slow` connections that send their headers one byte per second, opened against a
   receiver started under `ulimit -n 1024`; meanwhile genuine reports are posted one
   after another and timed (client timeout 5 s).

Everything on loopback; the receiver runs in its own process with real Redis.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
from common import record, table

from worker.local.embedded import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token-b7-0123456789abcdef"
LUA = """
counter = 0
request = function()
  counter = counter + 1
  local body = "data%5B0%5D=sms_status%0A" .. string.format("%06d-%d", math.random(999999),
    counter) .. "%0A103%0A1700000000"
  return wrk.format("POST", nil, {["Content-Type"] = "application/x-www-form-urlencoded"},
    body)
end
"""


class Receiver:
    """`smsq webhooks --port 0` in its own process, optionally under an open-file limit."""

    def __init__(self, redis_url: str, open_files: int = 0, processes: int = 0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMSQ_")}
        env.update(SMSQ_REDIS_URL=redis_url, SMSQ_WEBHOOK_TOKEN=TOKEN, PYTHONPATH=str(ROOT),
                   SMSQ_WEBHOOK_PROCESSES=str(processes))

        def limit() -> None:
            if open_files:
                resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

        self.proc = subprocess.Popen([sys.executable, "-m", "worker.cli.main", "webhooks",
                                      "--port", "0"], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, preexec_fn=limit)
        self.port = 0
        ready = threading.Event()
        threading.Thread(target=self._drain, args=(ready,), daemon=True).start()
        if not ready.wait(30):
            raise RuntimeError("the receiver did not start")
        self.url = f"http://127.0.0.1:{self.port}"

    def _drain(self, ready: threading.Event) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace")
            if line.startswith("smsq webhooks on http://127.0.0.1:"):
                self.port = int(line.split("127.0.0.1:")[1].split("/")[0])
                ready.set()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def wrk(url: str, seconds: int, connections: int, lua: Path | None) -> dict[str, float]:
    args = [shutil.which("wrk") or "wrk", "-t2", f"-c{connections}", f"-d{seconds}s",
            "--latency", "--timeout", "5s"]
    out = subprocess.run([*args, *(["-s", str(lua)] if lua else []), url], text=True,
                         capture_output=True, check=True).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                     out)
    return {"rps": rps, "p50": ms("50%"), "p99": ms("99%"),
            "max": ms_max(out),
            "non2xx": float(errors.group(1)) if errors else 0.0,
            "sock_errors": float(sum(int(g) for g in sock.groups())) if sock else 0.0}


def ms_max(out: str) -> float:
    m = re.search(r"Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", out)
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)] if m else 0.0


def trickle(port: int, n: int, stop: threading.Event, opened: list[int]) -> None:
    """`n` connections sending `POST /<token>...` one byte per second, until `stop`."""
    head = f"POST /{TOKEN}/smsru HTTP/1.1\r\nHost: x\r\nX-Pad: ".encode() + b"a" * 10_000
    socks: list[tuple[socket.socket, int]] = []
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.setblocking(False)
            socks.append((s, 0))
        except OSError:
            continue
    opened.append(len(socks))
    while not stop.wait(1.0):
        alive = []
        for s, i in socks:
            try:
                s.send(head[i:i + 1])
                alive.append((s, i + 1))
            except OSError:
                s.close()
        socks = alive
        opened.append(len(socks))
    for s, _ in socks:
        s.close()


def genuine(url: str, count: int, rng: random.Random) -> tuple[list[float], int]:
    times, failed = [], 0
    for i in range(count):
        body = f"data%5B0%5D=sms_status%0A{rng.randrange(10**6):06d}-{i}%0A103%0A1700000000"
        t0 = time.perf_counter()
        try:
            ok = requests.post(f"{url}/{TOKEN}/smsru", data=body, timeout=5,
                               headers={"Content-Type": "application/x-www-form-urlencoded"}
                               ).status_code == 200
        except requests.RequestException:
            ok = False
        if ok:
            times.append(time.perf_counter() - t0)
        else:
            failed += 1
        time.sleep(0.1)
    return times, failed


def slow_run(redis_url: str, slow: int, seed: int) -> dict[str, float]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, slow + 1024)), hard))
    rx = Receiver(redis_url, open_files=1024, processes=1)  # one process holds them all
    stop, opened = threading.Event(), []
    t = threading.Thread(target=trickle, args=(rx.port, slow, stop, opened), daemon=True)
    t.start()
    while not opened:
        time.sleep(0.1)
    time.sleep(2)
    times, failed = genuine(rx.url, 50, random.Random(seed))
    stop.set()
    t.join()
    rx.stop()
    times.sort()
    return {"opened": opened[0], "still_open": opened[-1], "answered": len(times),
            "failed": failed, "p50": statistics.median(times) * 1000 if times else 0,
            "max": times[-1] * 1000 if times else 0,
            "under_1s": sum(1 for x in times if x < 1.0)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--slow", type=int, default=1000)
    args = p.parse_args()
    seed = random.randrange(1 << 30)
    print(f"seed={seed}", flush=True)
    lua = Path(os.environ.get("TMPDIR", "/tmp")) / f"b7-{os.getpid()}.lua"
    lua.write_text(LUA)
    from worker.ops.serve import process_count

    default = process_count(0)
    rows = []
    with EmbeddedRedis() as redis:
        try:
            for processes in (0, 1):
                n = default if processes == 0 else 1
                rx = Receiver(redis.url, processes=processes)
                try:
                    reports = wrk(f"{rx.url}/{TOKEN}/smsru", args.seconds, args.connections,
                                  lua)
                    health = wrk(f"{rx.url}/healthz", args.seconds, args.connections, None)
                finally:
                    rx.stop()
                for what, got in ((f"sms.ru report (POST, 2 Redis round trips), {n} "
                                   f"process(es), {args.connections} conns", reports),
                                  (f"/healthz (no Redis), {n} process(es), "
                                   f"{args.connections} conns", health)):
                    rows.append([what, f"{got['rps']:,.0f}", f"{got['p50']:.1f}",
                                 f"{got['p99']:.1f}", int(got["non2xx"] + got["sock_errors"])])
        finally:
            lua.unlink()
        slowed = slow_run(redis.url, args.slow, seed)
    body = (table(rows, ["load (wrk, " + f"{args.seconds} s)", "requests/s", "p50 ms",
                         "p99 ms", "errors"])
            + f"\n\nSlow clients: {slowed['opened']} connections sending headers one byte per "
            f"second against one receiver process under `ulimit -n 1024` "
            f"({slowed['still_open']} still "
            f"open at the end: the rest were evicted at the connection limit). Genuine "
            f"reports meanwhile, one every 0.1 s: {slowed['answered']}/50 answered, "
            f"{slowed['under_1s']} in under 1 s, p50 {slowed['p50']:.1f} ms, max "
            f"{slowed['max']:.1f} ms, {slowed['failed']} failed. Targets: >= 1,000 reports/s "
            f"and p99 <= 100 ms at 50 connections; genuine reports answered in < 1 s during "
            f"1,000 slow connections. Before (wsgiref, issue 13): 283-375 requests/s, p99 "
            f"1.45-1.55 s; 1,100 slow connections made genuine reports time out. "
            f"Load average at the end: {os.getloadavg()[0]:.1f} (the machine is shared).")
    print(body)
    record("B7 delivery-report receiver", "bench/b7_receiver.py", body)


if __name__ == "__main__":
    main()
