"""Beat's callback pass: wake due outboxes, and re-read open subscribed jobs.

The re-read is the safety net for `notify`: a worker killed between a status
transition and its `notify` leaves an event unproduced; the next sweep of that
job produces it (the event script is idempotent, so a sweep racing the live
path produces nothing twice). A job leaves the sweep once every subscribed
message has had its final event.
"""

from __future__ import annotations

from typing import Any

from worker.callbacks import events, outbox

SWEEP_JOBS = 200  # open jobs re-read per pass


def tick(engine: Any) -> dict[str, int]:
    now = engine.clock()
    subs = outbox.due(engine.r, now)
    for sub in subs:
        engine.enqueue(events.TASK_FLUSH, {"sub": sub}, events.QUEUE)
    return {"woken": len(subs), "swept": sweep(engine, now)}


def sweep(engine: Any, now: float) -> int:
    """Produce any event the live path missed, for the open jobs due a sweep."""
    r, every = engine.r, engine.cfg.callback_sweep_interval
    jobs = [events.text(j) for j in r.zrangebyscore(events.JOBS, "-inf", now, start=0,
                                                num=SWEEP_JOBS)]
    for job in jobs:
        ids = engine.ledger.job_ids(job)
        if not engine.ledger.job(job):
            r.zrem(events.JOBS, job)
            continue
        unsettled = 0
        for start in range(0, len(ids), 2000):
            done = events.run(r, ids[start:start + 2000], retention=engine.ledger.retention)
            unsettled += done.unsettled
            for sub in done.woken:
                engine.enqueue(events.TASK_FLUSH, {"sub": sub}, events.QUEUE)
        if unsettled or not ids:
            r.zadd(events.JOBS, {job: now + every})
        else:
            r.zrem(events.JOBS, job)
    return len(jobs)


def watch(engine: Any, job_id: str) -> None:
    """A newly subscribed job joins the sweep."""
    engine.r.zadd(events.JOBS, {job_id: engine.clock() + engine.cfg.callback_sweep_interval})
