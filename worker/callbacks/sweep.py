"""Beat's callback pass: wake due outboxes, and re-read open subscribed jobs.

The re-read is the safety net for `notify`: a worker killed between a status
transition and its `notify` leaves an event unproduced; the next sweep of that
job produces it (the event script is idempotent, so a sweep racing the live
path produces nothing twice). A job leaves the sweep once every subscribed
message has had its final event.

A pass re-reads at most PASS_IDS messages of a job, from where the previous pass
stopped, and skips the prefix already seen settled: on a 100,000-message job a pass
costs one tenth of a full read, and a missed event is caught within ten sweep
intervals instead of one (measured: bench/callbacks_sweep.py).
"""

from __future__ import annotations

from typing import Any

from worker.callbacks import events, outbox

SWEEP_JOBS = 200  # open jobs re-read per pass
PASS_IDS = 10_000  # messages of one job re-read per pass, at most (a huge job takes turns)
CHUNK = 2_000  # messages per event-script call
STATE = "smsq:hook:sweep:"  # per job: lo (all below settled), at (cursor), open (this cycle)
LOCK = "smsq:hook:sweeping:"


def tick(engine: Any) -> dict[str, int]:
    now = engine.clock()
    subs = outbox.due(engine.r, now)
    for sub in subs:
        engine.enqueue(events.TASK_FLUSH, {"sub": sub}, events.QUEUE)
    return {"woken": len(subs), "swept": sweep(engine, now)}


def sweep(engine: Any, now: float) -> int:
    """Produce any event the live path missed, for the open jobs due a sweep."""
    r = engine.r
    jobs = [events.text(j) for j in r.zrangebyscore(events.JOBS, "-inf", now, start=0,
                                                num=SWEEP_JOBS)]
    for job in jobs:
        lock = LOCK + job
        if not r.set(lock, "1", nx=True, px=60_000):
            continue  # another tick is on this job
        try:
            _pass(engine, job, now)
        finally:
            r.delete(lock)
    return len(jobs)


def _pass(engine: Any, job: str, now: float) -> None:
    """Up to PASS_IDS of the job's messages from where the last pass stopped. The job
    leaves the sweep when one whole cycle over its unsettled part found nothing open."""
    r, key = engine.r, STATE + job
    head = engine.ledger.job(job)
    if not head:
        r.zrem(events.JOBS, job)
        r.delete(key)
        return
    total = int(head.get("total", "0"))
    state = {events.text(k): int(v) for k, v in r.hgetall(key).items()}
    lo, open_ = state.get("lo", 0), state.get("open", 0)
    at = max(state.get("at", 0), lo)
    end = min(total, at + PASS_IDS)
    while at < end:
        stop = min(end, at + CHUNK)
        done = events.run(r, [f"{job}.{i}" for i in range(at, stop)],
                          retention=engine.ledger.retention)
        for sub in done.woken:
            engine.enqueue(events.TASK_FLUSH, {"sub": sub}, events.QUEUE)
        if at == lo and not done.unsettled:
            lo = stop  # a settled message stays settled: later cycles start after it
        open_ += done.unsettled
        at = stop
    if at >= total and total and not open_:
        r.zrem(events.JOBS, job)
        r.delete(key)
        return
    if at >= total:  # a cycle ended with messages still open: the next starts over
        at, open_ = lo, 0
    with r.pipeline(transaction=False) as pipe:
        pipe.hset(key, mapping={"lo": lo, "at": at, "open": open_})
        pipe.expire(key, int(engine.ledger.retention))
        pipe.zadd(events.JOBS, {job: now + engine.cfg.callback_sweep_interval})
        pipe.execute()


def watch(engine: Any, job_id: str) -> None:
    """A newly subscribed job joins the sweep."""
    engine.r.zadd(events.JOBS, {job_id: engine.clock() + engine.cfg.callback_sweep_interval})
