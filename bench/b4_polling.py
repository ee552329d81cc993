"""B4 - status polling: 100,000 `sent` messages pending on sms.ru, one full poll pass.

    .venv/bin/python bench/b4_polling.py [--pending 100000] [--profile]

The messages are accepted in the sandbox's state first (so the gateway knows
their ids) and written straight into the ledger as `sent`, due now. Then beat's
work runs in this process exactly as the tasks run it: `poll_pending` hands
the due ids out as `check_status` jobs, and each is executed against the
sandbox over loopback HTTP. Gateway latency is the sum of every status
request's round trip (requests' `Response.elapsed`: request sent -> reply
headers); the pass's own work is the wall time minus that.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from typing import Any

import requests
from common import exit_on_sigterm, phone, record, table

from providers.sandbox import Sandbox
from providers.sandbox.server import SandboxServer
from worker import polling
from worker import settings as settings_mod
from worker.engine import Engine
from worker.ledger.store import job_key, msg_key, pending_key
from worker.local.embedded import EmbeddedRedis
from worker.ops.logs import configure

ACCOUNT = "smsru"


def seed(engine: Engine, sandbox: Sandbox, n: int) -> None:
    state, now = sandbox.state, time.time()
    job = "b4"
    for start in range(0, n, 5000):
        with engine.r.pipeline(transaction=False) as pipe:
            for i in range(start, min(n, start + 5000)):
                to = phone(i)
                pid = f"000000-{20_000_000 + i}"
                state.accept(ACCOUNT, ACCOUNT, pid, to.lstrip("+"), "Hello", "smsq")
                mid = f"{job}.{i}"
                pipe.hset(msg_key(mid), mapping={
                    "id": mid, "job": job, "to": to, "acc": ACCOUNT, "route": ACCOUNT,
                    "ri": 0, "att": 1, "st": "sent", "pid": pid, "prov": ACCOUNT,
                    "sent_at": now, "created": now, "updated": now, "chk": 0})
                pipe.zadd(pending_key(ACCOUNT), {mid: now - 1})
            pipe.execute()
    engine.r.hset(job_key(job), mapping={"total": n, "st:sent": n, "text": "Hello"})


def one_pass(engine: Engine, latency: list[float]) -> dict[str, Any]:
    tasks: list[dict[str, Any]] = []
    engine.enqueue = lambda name, kw, q: tasks.append(dict(kw))
    t0 = time.perf_counter()
    passes = 0
    counts: dict[str, int] = {}
    while True:
        handed = polling.poll_pending(engine)
        if not handed:
            break
        passes += 1
        while tasks:
            kw = tasks.pop()
            for k, v in polling.check_status(engine, kw["ids"], kw["account"]).items():
                counts[k] = counts.get(k, 0) + v
    return {"wall": time.perf_counter() - t0, "beat_passes": passes, "counts": counts,
            "gateway": sum(latency)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pending", type=int, default=100_000)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    exit_on_sigterm()
    configure(json=True)
    sandbox = Sandbox(names=[ACCOUNT], queued_for=0.0, final_after=86400.0)
    with EmbeddedRedis() as redis_srv, SandboxServer(sandbox, push_reports=False) as srv:
        env = {k: v for k, v in srv.sandbox.env().items()}
        cfg = settings_mod.load({**env, "SMSQ_REDIS_URL": redis_srv.url})
        latency: list[float] = []
        session = requests.Session()
        session.hooks["response"].append(
            lambda r, *a, **k: latency.append(r.elapsed.total_seconds()))
        engine = Engine(cfg, session=session)
        seed(engine, sandbox, args.pending)
        before = len(sandbox.state.requests)
        prof = cProfile.Profile()
        if args.profile:
            prof.enable()
        res = one_pass(engine, latency)
        prof.disable()
        reqs = [r for r in sandbox.state.requests[before:] if r["path"].endswith("/status")]
        res["requests"] = len(reqs)
        res["rescheduled_ok"] = res["counts"].get("rescheduled", 0)
    own = res["wall"] - res["gateway"]
    print(res)
    body = table([[f"{args.pending:,}", res["requests"],
                   f"{args.pending / max(1, res['requests']):.0f}",
                   res["beat_passes"], f"{res['wall']:.2f} s", f"{res['gateway']:.2f} s",
                   f"{own:.2f} s (target ≤ 10 s)", f"{res['rescheduled_ok']:,}"]],
                 ["pending", "status requests", "messages per request",
                  "poll_pending calls", "wall", "gateway latency", "own work",
                  "rescheduled"])
    body += ("\n\nsms.ru (status call takes 100 ids), all messages still pending at the "
             "gateway, so every one is re-scheduled. poll_pending takes 20,000 ids at a time "
             "(per_pass) until nothing more is due, so one call (one beat pass) hands over "
             "the whole backlog. "
             "In-process, same code as the smsq.poll_pending / smsq.check_status tasks; "
             "gateway latency includes the sandbox's own processing on the same 2 cores.")
    print(body)
    if args.profile:
        pstats.Stats(prof).sort_stats("cumtime").print_stats(25)
    record("B4 status polling", ".venv/bin/python bench/b4_polling.py", body)


if __name__ == "__main__":
    main()
