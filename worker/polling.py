"""Status polling: due messages per account, checked in the gateway's largest batch.

Beat's `poll_pending` takes what is due from each account's index (re-scoring
it, so a second beat or a crashed worker cannot lose or double it) and hands
it to the gateway's queue as `check_status` tasks; `check_status` asks the
gateway and moves each message forward, or re-schedules it with a growing
interval, or gives up after the horizon with `unknown`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import structlog

from providers.errors import SmsqError
from providers.models import StatusQuery, StatusResult
from worker.callbacks import notify
from worker.engine import TASK_CHECK, Engine, queue_for
from worker.ledger.lifecycle import FINAL, Status, Step
from worker.ledger.records import Recheck, Record
from worker.ledger.store import pending_key
from worker.limiter import Throttled
from worker.reports import count_moved, status_steps
from worker.retry import outcome

log = structlog.get_logger("smsq.poll")
POLL_LEASE = 120.0
# What a status check reads of each record.
POLL_FIELDS = ("st", "acc", "pid", "to", "sent_at", "updated", "chk")
CHECKED = (Status.SENT, Status.UNKNOWN)  # the states a status check asks about


def poll_pending(engine: Engine, *, per_pass: int = 20_000,
                 max_per_beat: int = 200_000) -> dict[str, int]:
    """Hand every due status check to its gateway's queue; returns ids per account.

    Takes `per_pass` ids at a time until an account has nothing more due, so one beat
    pass hands over the whole backlog (at most `max_per_beat` per account: the rest
    stays due for the next beat rather than outliving its POLL_LEASE in the queue).
    """
    now = engine.clock()
    handed: dict[str, int] = {}
    for name, acc in engine.cfg.accounts.items():
        step = engine.provider(acc).max_status_ids * 10
        taken = 0
        while taken < max_per_beat:
            ids = engine.ledger.take_due(pending_key(name), now, now + POLL_LEASE,
                                         min(per_pass, max_per_beat - taken))
            for start in range(0, len(ids), step):
                engine.enqueue(TASK_CHECK, {"ids": ids[start:start + step], "account": name},
                               queue_for(acc.provider))
            taken += len(ids)
            if len(ids) < per_pass:
                break
        if taken:
            handed[name] = taken
    return handed


def check_status(engine: Engine, ids: Sequence[str], account: str) -> dict[str, int]:
    """Ask the gateway about `ids` (sent or unknown messages of `account`)."""
    rows = [r for r in engine.ledger.pick_many(list(ids), POLL_FIELDS)
            if r and r.get("st") in CHECKED and r.get("pid")
            and r.get("acc") == account]
    provider = engine.provider(account)
    counts: dict[str, int] = {}
    size = provider.max_status_ids
    for start in range(0, len(rows), size):
        chunk = rows[start:start + size]
        try:
            results = provider.status([StatusQuery(r["pid"], r["to"]) for r in chunk])
        except Throttled as exc:
            _reschedule(engine, chunk, exc.retry_after)
            continue
        except SmsqError as exc:
            # A status check sends nothing: whatever the outcome, ask again later.
            log.warning("sms_status_failed", provider=account, error=type(exc).__name__,
                        outcome=outcome(exc))
            _reschedule(engine, chunk, engine.retry.polling.after_error)
            continue
        for key, n in _apply(engine, chunk, results).items():
            counts[key] = counts.get(key, 0) + n
    return counts


def hand_to_accounts(engine: Engine, ids: Sequence[str]) -> dict[str, int]:
    """Status checks asked for without an account (by another application): each id goes
    to its own account's gateway queue; ids of unconfigured accounts are counted, not
    checked."""
    by_account: dict[str, list[str]] = {}
    for row in filter(None, engine.ledger.get_many(list(ids))):
        by_account.setdefault(row.get("acc", ""), []).append(row["id"])
    for acc, group in by_account.items():
        if acc in engine.cfg.accounts:
            engine.enqueue(TASK_CHECK, {"ids": group, "account": acc},
                           queue_for(engine.cfg.accounts[acc].provider))
    return {"handed": sum(len(g) for g in by_account.values())}


def _apply(engine: Engine, rows: list[Record], results: list[StatusResult]) -> dict[str, int]:
    """Finals and give-ups in one transition call, the still-pending rest in one
    re-schedule call."""
    now = engine.clock()
    finals: list[tuple[Record, StatusResult]] = []
    expired: list[Step] = []
    later: list[Recheck] = []
    for row, res in zip(rows, results, strict=False):
        if res.status.is_final:
            finals.append((row, res))
        elif now - float(row.get("sent_at") or row.get("updated") or now) > \
                engine.cfg.status_horizon:
            expired.append(Step(row["id"], CHECKED, Status.UNKNOWN, 0.0,
                                {"reason": "no final status within the horizon",
                                 "raw": res.raw_code}))
        elif row["st"] == Status.SENT:
            later.append(_next_check(engine, row, res, now))
    steps = status_steps(engine, finals) + expired
    done = engine.ledger.pipeline_transitions(steps)
    notify(engine, [s.id for s, ok in zip(steps, done, strict=True) if ok])
    counts = count_moved(steps, done)
    counts["rescheduled"] = engine.ledger.reschedule(later)
    return counts


def _next_check(engine: Engine, row: Record, res: StatusResult, now: float) -> Recheck:
    checks = int(row.get("chk") or "0") + 1
    interval = engine.retry.polling.next_in(checks)
    cost = "" if res.cost is None else str(res.cost)
    return Recheck(row["id"], now + interval, str(checks), res.raw_code or "", cost)


def _reschedule(engine: Engine, rows: list[Record], after: float) -> None:
    when = engine.clock() + after
    engine.ledger.reschedule([Recheck(r["id"], when) for r in rows if r["st"] == Status.SENT])


def describe(record: Record, job: Record | None = None) -> dict[str, Any]:
    """A message as the producer API shows it."""
    job = job or {}
    err = record.get("err")
    return {
        "id": record.get("id"),
        "job": record.get("job"),
        "status": record.get("st"),
        "final": record.get("st") in FINAL,
        "recipient": record.get("to"),
        "account": record.get("acc"),
        "lane": record.get("lane") or "transactional",
        "provider": record.get("prov"),
        "provider_message_id": record.get("pid"),
        "raw_code": record.get("raw"),
        "attempts": int(record.get("att", "0")),
        "created_at": _f(record.get("created")),
        "updated_at": _f(record.get("updated")),
        "sent_at": _f(record.get("sent_at")),
        "final_at": _f(record.get("final_at")),
        "cost": record.get("cost"),
        "segments": record.get("seg"),
        "reason": record.get("reason"),
        "last_error": json.loads(err) if err else None,
    }


def _f(value: str | None) -> float | None:
    return float(value) if value else None
