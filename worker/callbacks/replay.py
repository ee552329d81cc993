"""`smsq callbacks replay`: send a job's current statuses again, through the outbox.

A replayed event has its original id (the subscriber may de-duplicate) and is
the message's current status only if that is not older than what the
subscriber already saw, so a replay never makes a status go backwards.
"""

from __future__ import annotations

from typing import Any

from providers.errors import ValidationError
from worker.callbacks import events


def replay_job(engine: Any, job_id: str) -> int:
    """Queue the job's current events again; returns how many events were queued."""
    ids = engine.ledger.job_ids(job_id)
    if not ids:
        raise ValidationError(f"unknown job id {job_id!r}", field="job")
    replayed = 0
    for start in range(0, len(ids), 2000):
        chunk = ids[start:start + 2000]
        done = events.run(engine.r, chunk, retention=engine.ledger.retention, force=True)
        replayed += done.pushed
        for sub in done.woken:
            engine.enqueue(events.TASK_FLUSH, {"sub": sub}, events.QUEUE)
    return replayed


def replay_range(engine: Any, since: float, until: float) -> dict[str, int]:
    """Every job created in [since, until]; returns events queued per job."""
    if until < since:
        raise ValidationError("--until is before --since", field="until")
    jobs = [events.text(j) for j in engine.r.zrangebyscore("smsq:jobs", since, until)]
    return {job: replay_job(engine, job) for job in jobs}
