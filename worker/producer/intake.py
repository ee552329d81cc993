"""`smsq.send` enqueued by name: every call leaves a job its caller can find.

The job is the caller's `job_id`, or the Celery task id when none was given, so
a redelivered task (same id, same content) finds its job already written and
does nothing: intake is idempotent per task. Bad input never vanishes: it ends
as a job whose messages are `rejected` with the reason, and a WARNING log.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from providers.errors import SmsqError, ValidationError
from worker.engine import Engine
from worker.ledger.errors import LedgerUnavailable
from worker.ledger.jobs import NewRecord
from worker.producer.submit import (
    JOB_ID,
    MAX_RECIPIENTS,
    Submitted,
    new_job_id,
    plan,
    write,
)
from worker.producer.texts import printable

log = structlog.get_logger("smsq.intake")
KNOWN = frozenset({"recipients", "text", "messages", "account", "route", "sender", "options",
                   "idempotency_key", "job_id", "callback", "lane", "valid_for",
                   "valid_until"})


def intake(engine: Engine, args: Sequence[Any], kwargs: Mapping[str, Any],
           task_id: str | None) -> Submitted | None:
    """Write the job of one `smsq.send`; None when the whole call was refused.

    Raises LedgerUnavailable (the task retries under the same id)."""
    fallback = task_id if task_id and JOB_ID.match(task_id) else new_job_id()
    own = kwargs.get("job_id")
    job_id = own if isinstance(own, str) and JOB_ID.match(own) else fallback
    try:
        _check_call(args, kwargs)
        p = plan(engine, kwargs.get("recipients"), kwargs.get("text"),
                 messages=kwargs.get("messages"), account=kwargs.get("account"),
                 route=kwargs.get("route"), sender=kwargs.get("sender"),
                 options=kwargs.get("options"), strict=False,
                 callback=kwargs.get("callback"), lane=kwargs.get("lane"),
                 valid_for=kwargs.get("valid_for"), valid_until=kwargs.get("valid_until"))
        result = write(engine, p, job_id=job_id, idempotency_key=kwargs.get("idempotency_key"),
                       source="task")
    except LedgerUnavailable:
        raise
    except SmsqError as exc:
        _reject_job(engine, job_id, fallback, kwargs, exc)
        return None
    if result.rejected and not result.duplicate:
        log.warning("sms_messages_rejected", job_id=result.job_id, count=len(result.rejected),
                    reasons=sorted(set(result.rejected.values()))[:5])
    return result


def _check_call(args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
    if args:
        raise ValidationError(f"smsq.send takes keyword arguments only ({len(args)} "
                              "positional given)", field="args")
    unknown = sorted(printable(str(k)) for k in set(kwargs) - KNOWN)
    if unknown:
        raise ValidationError(f"unknown argument(s): {', '.join(unknown)}", field=unknown[0])
    own = kwargs.get("job_id")
    if own is not None and not (isinstance(own, str) and JOB_ID.match(own)):
        raise ValidationError("job_id must be 1-40 of A-Z a-z 0-9 _ -", field="job_id")


def _reject_job(engine: Engine, job_id: str, fallback: str, kwargs: Mapping[str, Any],
                exc: SmsqError) -> None:
    """The refused call as a job of `rejected` messages, under the caller's job id, or
    under the task id when that job id already holds other content."""
    reason = printable(str(exc))
    records = [NewRecord(to, None, reason) for to in _targets(kwargs)]
    digest = "rejected:" + hashlib.sha256(printable(json.dumps(
        [reason, [r.to for r in records]], ensure_ascii=False)).encode()).hexdigest()
    for target in dict.fromkeys([job_id, fallback]):
        done = engine.ledger.jobs.create(
            target, {"error": reason, "source": "task"}, records, digest=digest,
            now=engine.clock(), release_at=engine.clock())
        if done.outcome != "job_conflict":
            log.warning("sms_job_rejected", job_id=target, error=reason, count=len(records))
            return
    log.warning("sms_job_rejected_unrecorded", job_id=job_id, error=reason)


def _targets(kwargs: Mapping[str, Any]) -> list[str]:
    raw: Any = kwargs.get("recipients")
    messages = kwargs.get("messages")
    if raw is None and isinstance(messages, Mapping):
        raw = list(messages)
    elif raw is None and isinstance(messages, list):
        raw = [m.get("to") if isinstance(m, Mapping) else m for m in messages]
    # An oversized job is refused by its job record alone: no record per recipient.
    if not isinstance(raw, list) or len(raw) > MAX_RECIPIENTS:
        return []
    return [printable(str(r)[:32]) for r in raw]
