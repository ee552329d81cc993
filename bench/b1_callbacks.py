"""B1 with every message subscribed: does a failing subscriber slow sending?

    .venv/bin/python bench/b1_callbacks.py [--messages 10000] [--rounds 2]

The B1 (a) run (one text, many recipients, smsru through the sandbox, submit -> every
message `sent`) with every message's job subscribed to a signed-HTTP callback at a
local receiver in this process that
  none      - no subscription (the reference)
  healthy   - answers 200 at once, one event per request
  batched   - answers 200 at once, the subscriber opted into 100 events per request
  http500   - answers 500 to everything
  timeout   - answers only after 30 s (smsq gives up after SMSQ_CALLBACK_TIMEOUT, 10 s)
Callbacks run on their own worker (`-Q smsq.callbacks`, concurrency 2) beside the
sending worker (concurrency 4), as deploy/compose.yaml runs them. Each case gets a
fresh stack (a failing subscriber's retries must not leak into the next case); cases
run in turn, `--rounds` times, so drift in the machine's load shows as spread. The
load average (1 min) is read before each case: the machine's 2 cores are shared.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from common import (
    api,
    cpu_seconds,
    exit_on_sigterm,
    job_done,
    phone,
    quiet_stack,
    record,
    table,
    use_stack,
    wait_until,
    wait_workers_ready,
    worker_pids,
)

from worker.local.stack import Stack

SECRET = "whsec_" + base64.b64encode(b"b1-callbacks-secret-0123456789ab").decode()
CASES = ["none", "healthy", "batched", "http500", "timeout"]
CONCURRENCY = 4


class Receiver:
    """Counts requests; answers per its mode (no signature check: it would only add this
    process's CPU to the machine's load, and tests/callbacks verifies signatures)."""

    def __init__(self, mode: str) -> None:
        self.requests = 0
        self.events = 0
        self.lock = threading.Lock()
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with rec.lock:
                    rec.requests += 1
                    if mode in ("healthy", "batched"):
                        payload = json.loads(body)
                        rec.events += len(payload["data"]) if payload.get("type") == \
                            "batch" else 1
                if mode == "timeout":
                    time.sleep(30)
                try:
                    self.send_response(500 if mode == "http500" else 200)
                    self.end_headers()
                except OSError:
                    pass  # the caller gave up

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def run_case(case: str, n: int, offset: int) -> dict[str, Any]:
    rec = Receiver(case)
    stack = Stack(poll_interval=3600, final_after=3600, extra_env={
        "SMSQ_CALLBACK_SCHEMES": "http", "SMSQ_CALLBACK_ALLOWED_HOSTS": "127.0.0.1",
        "SMSQ_CALLBACK_SECRETS": f"bench={SECRET}"})
    try:
        stack.start(workers=1, concurrency=CONCURRENCY, receiver=False)
        stack.start_worker("callbacks", concurrency=2, queues="smsq.callbacks")
        quiet_stack(stack)
        wait_workers_ready(stack, ["worker0", "callbacks"])
        use_stack(stack)
        cb: Any = False
        if case != "none":
            cb = {"url": rec.url, "secret": "bench"} | ({"batch": 100} if case == "batched"
                                                         else {})
        warm = api.submit([phone(9_000_000 + offset + i) for i in range(200)], "Warm-up",
                          account="smsru", callback=cb)
        if not wait_until(job_done([warm.job_id], 200), timeout=120):
            raise RuntimeError("warm-up did not finish")
        load = os.getloadavg()[0]
        sending, callbacks = worker_pids(stack, "worker"), worker_pids(stack, "callbacks")
        cpu0, cb0, req0 = cpu_seconds(sending), cpu_seconds(callbacks), rec.requests
        t0 = time.perf_counter()
        job = api.submit([phone(offset + i) for i in range(n)], "Your order has shipped",
                         account="smsru", callback=cb)
        if not wait_until(job_done([job.job_id], n), timeout=600, step=0.02):
            raise RuntimeError(f"{case}: the run did not finish")
        elapsed = time.perf_counter() - t0
        out = {"case": case, "seconds": elapsed, "rate": n / elapsed, "load": load,
               "cpu_us": (cpu_seconds(sending) - cpu0) / n * 1e6,
               "cb_cpu_s": cpu_seconds(callbacks) - cb0, "requests": rec.requests - req0,
               "all_events_s": None}
        if case in ("healthy", "batched"):  # every `sent` event (+ the warm-up's 200)
            if wait_until(lambda: rec.events >= n + 200, timeout=300, step=0.1):
                out["all_events_s"] = time.perf_counter() - t0
        return out
    finally:
        stack.stop()
        stack.remove_logs()
        rec.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--cases", default=",".join(CASES))
    args = ap.parse_args()
    exit_on_sigterm()
    cases = args.cases.split(",")
    runs: list[dict[str, Any]] = []
    offset = 0
    for _ in range(args.rounds):
        for case in cases:
            runs.append(run_case(case, args.messages, offset))
            offset += args.messages + 1000
            print({k: round(v, 2) if isinstance(v, float) else v
                   for k, v in runs[-1].items()}, flush=True)
    report(runs, cases, args)


def report(runs: list[dict[str, Any]], cases: list[str], args: argparse.Namespace) -> None:
    rows = []
    for case in cases:
        mine = [r for r in runs if r["case"] == case]
        rows.append([case,
                     " / ".join(f"{r['rate']:,.0f}" for r in mine),
                     " / ".join(f"{r['seconds']:.2f}" for r in mine),
                     " / ".join(f"{r['cpu_us']:.0f}" for r in mine),
                     " / ".join(f"{r['cb_cpu_s']:.1f}" for r in mine),
                     " / ".join(str(r["requests"]) for r in mine),
                     " / ".join("-" if r["all_events_s"] is None else f"{r['all_events_s']:.1f}"
                                for r in mine),
                     " / ".join(f"{r['load']:.2f}" for r in mine)])
    body = table(rows, ["subscriber", "msg/s (per round)", "seconds to all sent",
                        "sending worker CPU/msg (µs)", "callbacks worker CPU during the run (s)",
                        "callback requests during the run",
                        "every event at the subscriber after (s)", "load avg (1 min) before"])
    body += (f"\n\n{args.messages:,} messages per run, one job, smsru, every message's job "
             "subscribed (except `none`); rounds run the cases in turn. The sending worker "
             f"(prefork, concurrency {CONCURRENCY}), the callbacks worker (concurrency 2), "
             "the sandbox, Redis, the receiver and the producer share 2 cores with other "
             "work on the machine (the load average column).")
    print(body)
    record("B1 with status callbacks", ".venv/bin/python bench/b1_callbacks.py", body)


if __name__ == "__main__":
    main()
