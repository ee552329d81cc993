"""B1 with and without durable writes: the same pipeline on a primary + replica (two
real redis-server processes), SMSQ_REDIS_MIN_REPLICAS=0 vs 1 (WAIT after each job write,
claim renewal and on-wire mark).

    .venv/bin/python bench/b1_durable.py [--shared N] [--distinct N] [--submits N]

(a) one text to many recipients, (b) a distinct text per recipient, as B1; plus the
latency of single-message submits (one job write + WAIT each).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from b1_throughput import CONCURRENCY, smsq_run
from common import api, exit_on_sigterm, phone, quiet_stack, record, table, use_stack

from worker.local.replication import ReplicatedRedis
from worker.local.stack import Stack


def one_config(replicas: int, args: argparse.Namespace) -> dict[str, Any]:
    rr = ReplicatedRedis().start()
    stack = Stack(redis_url=rr.url, poll_interval=3600, final_after=3600,
                  extra_env={"SMSQ_REDIS_MIN_REPLICAS": str(replicas)})
    try:
        stack.start(workers=1, concurrency=CONCURRENCY, receiver=False)
        quiet_stack(stack)
        use_stack(stack)
        smsq_run(stack, 200, False, 9_000_000)  # warm-up (waits for the worker too)
        out = {"a": smsq_run(stack, args.shared, False, 0),
               "b": smsq_run(stack, args.distinct, True, 1_000_000)}
        lat = []
        for i in range(args.submits):
            t0 = time.perf_counter()
            api.submit([phone(2_000_000 + i)], "One", account="smsru")
            lat.append((time.perf_counter() - t0) * 1000)
        lat.sort()
        out["submit_ms"] = (statistics.median(lat), lat[int(len(lat) * 0.99) - 1])
        return out
    finally:
        stack.stop()
        rr.cleanup()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=int, default=10_000)
    ap.add_argument("--distinct", type=int, default=3_000)
    ap.add_argument("--submits", type=int, default=300)
    args = ap.parse_args()
    exit_on_sigterm()
    res = {n: one_config(n, args) for n in (0, 1)}
    rows = []
    for n, r in res.items():
        rows.append([f"{n}" + (" (WAIT off)" if n == 0 else " (WAIT 1)"),
                     f"{r['a']['rate']:,.0f}", f"{r['a']['cpu_us']:.0f} µs",
                     f"{r['b']['rate']:,.0f}", f"{r['b']['cpu_us']:.0f} µs",
                     f"{r['submit_ms'][0]:.2f} / {r['submit_ms'][1]:.2f} ms"])
    body = table(rows, ["SMSQ_REDIS_MIN_REPLICAS", "(a) msg/s", "(a) worker CPU/msg",
                        "(b) msg/s", "(b) worker CPU/msg", "1-message submit p50 / p99"])
    body += (f"\n\nMessages: (a) {args.shared:,}, (b) {args.distinct:,}; {args.submits} "
             "single-message submits. Primary and replica on loopback (the replica's "
             "acknowledgement is a local round trip: over a network, add its RTT per job "
             f"write and two per send chunk). One worker, prefork, concurrency "
             f"{CONCURRENCY}; everything shares the same 2 cores.")
    print(body)
    record("Durability: B1 with and without WAIT", ".venv/bin/python bench/b1_durable.py", body)


if __name__ == "__main__":
    main()
