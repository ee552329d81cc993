"""What beat's callback sweep costs on a huge subscribed job.

    .venv/bin/python bench/callbacks_sweep.py [--messages 100000]

One job of N messages subscribed to a task callback, in a private redis-server; then
sweep passes (`worker.callbacks.sweep.sweep`) timed until the job has been read once,
while none, half and all of the messages are final (finals applied directly in the
ledger, as a crash between a transition and its `notify` would leave them), and
`job.completed`. A pass reads at most `sweep.PASS_IDS` messages of a job (one pass
per SMSQ_CALLBACK_SWEEP_INTERVAL), so the longest pass is what one tick costs.
"""

from __future__ import annotations

import argparse
import time

from common import phone

from worker import settings
from worker.callbacks import events, sweep
from worker.engine import Engine, redis_client
from worker.local.embedded import EmbeddedRedis
from worker.producer import submit as producer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=100_000)
    args = ap.parse_args()
    n = args.messages
    with EmbeddedRedis() as server:
        env = {"SMSQ_REDIS_URL": server.url, "SMSQ_SMSRU_API_ID": "bench"}
        eng = Engine(settings.load(env), client=redis_client(server.url))
        eng.enqueue = lambda name, kwargs, queue: None  # type: ignore[method-assign]
        t0 = time.perf_counter()
        plan = producer.plan(eng, [phone(i) for i in range(n)], "Hi", account="smsru",
                             callback={"task": "app.status", "queue": "app"})
        job = producer.write(eng, plan)
        print(f"submit {n:,}: {time.perf_counter() - t0:.2f} s", flush=True)
        for share in (0.0, 0.5, 1.0):
            done = int(n * share)
            with eng.r.pipeline(transaction=False) as pipe:
                for i in range(done):  # finals whose notify never ran (a crash)
                    pipe.hset(f"smsq:m:{job.job_id}.{i}", "st", "delivered")
                pipe.execute()
            passes, took, longest, hour, last_at = 0, 0.0, 0.0, 0, -1
            while True:  # passes until one whole cycle has been read
                hour += 1
                t = time.perf_counter()
                sweep.sweep(eng, eng.clock() + 3600 * (hour + 100 * share))
                took += time.perf_counter() - t
                longest = max(longest, time.perf_counter() - t)
                passes += 1
                state = eng.r.hgetall(sweep.STATE + job.job_id)
                if not state or int(state[b"at"]) >= n or int(state[b"at"]) <= last_at:
                    break  # the job left, or its cursor went round
                last_at = int(state[b"at"])
            queue = f"smsq:hook:q:{plan.subs.job.id}" if plan.subs.job else ""
            print(f"{share:.0%} final: {passes} passes to read the job once, longest "
                  f"{longest:.3f} s, all {took:.2f} s; outbox {eng.r.llen(queue):,}; "
                  f"job still swept: {eng.r.zscore(events.JOBS, job.job_id) is not None}",
                  flush=True)

if __name__ == "__main__":
    main()
