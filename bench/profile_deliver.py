"""Profile `sending.deliver` in this process (cProfile), sandbox over loopback HTTP.

    .venv/bin/python bench/profile_deliver.py [--distinct] [--n 5000] [--top 30] [--no-profile]

The sandbox server's threads are not profiled (cProfile follows the main
thread only), so the figures are the worker's own work plus waiting on HTTP.
"main-thread CPU" is `time.thread_time()` of the calling thread: the deliver
code's own CPU without the sandbox's threads (and, with --no-profile, without
cProfile's overhead) - the in-process counterpart of B1's worker CPU/msg, less
Celery's per-task cost.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import time

from common import phone

from providers.sandbox import Sandbox
from providers.sandbox.server import SandboxServer
from worker import sending
from worker import settings as settings_mod
from worker.engine import Engine
from worker.local.embedded import EmbeddedRedis
from worker.ops.logs import configure
from worker.producer import submit as producer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--distinct", action="store_true")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--no-profile", action="store_true", help="figures only, no cProfile")
    args = ap.parse_args()
    with EmbeddedRedis() as redis_srv, SandboxServer(Sandbox(), push_reports=False) as srv:
        env = {**srv.sandbox.env(), "SMSQ_REDIS_URL": redis_srv.url}
        cfg = settings_mod.load(env)
        configure(json=True)
        tasks: list[tuple[str, dict[str, object]]] = []
        engine = Engine(cfg, enqueue=lambda name, kw, q: tasks.append((name, dict(kw))))
        if args.distinct:
            msgs = [{"to": phone(i), "text": f"Code {i}"} for i in range(args.n)]
            plan = producer.plan(engine, None, None, messages=msgs, account="smsru")
        else:
            plan = producer.plan(engine, [phone(i) for i in range(args.n)], "Hello there",
                                 account="smsru")
        producer.write(engine, plan)
        print(f"{len(tasks)} deliver tasks for {args.n} messages")
        prof = cProfile.Profile()
        t0, c0, m0 = time.perf_counter(), time.process_time(), time.thread_time()
        if not args.no_profile:
            prof.enable()
        for _, kw in tasks:
            sending.deliver(engine, kw["ids"], kw["account"])  # type: ignore[arg-type]
        prof.disable()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        main_cpu = time.thread_time() - m0
        print(f"wall {wall:.2f}s, process CPU {cpu:.2f}s (includes sandbox threads), "
              f"{wall / args.n * 1e6:.0f} µs wall/msg, main-thread CPU "
              f"{main_cpu / args.n * 1e6:.0f} µs/msg")
        if not args.no_profile:
            pstats.Stats(prof).sort_stats(os.environ.get("SORT", "tottime")).print_stats(
                args.top)


if __name__ == "__main__":
    main()
