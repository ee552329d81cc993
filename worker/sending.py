"""Sending: claim queued messages, send them in the gateway's batch form, record outcomes.

The claim (`queued -> sending`, with a lease) is the guard against sending
twice: a redelivered task or a second worker finds the message no longer
queued and does nothing. The `wire` flag is set once the rate-limit slot is
granted, right before the request leaves, so reconciliation can tell a send
that never left (safe to queue again) from one that may have (unknown).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import structlog

from providers.base import Provider
from providers.errors import (
    OutcomeUnknown,
    RateLimited,
    SmsqError,
    TransientError,
    ValidityExpired,
)
from providers.models import OutgoingMessage, SendResult
from worker.callbacks import notify
from worker.engine import DEFAULT_LANE, Engine, reset_lane, reset_on_wire, set_lane, set_on_wire
from worker.ledger import validity
from worker.ledger.durable import NotReplicated
from worker.ledger.errors import LedgerUnavailable
from worker.ledger.lease import LeaseLost
from worker.ledger.lifecycle import Status, Step
from worker.ledger.records import Record, Sent, outgoing
from worker.limiter import Throttled
from worker.retry import Outcome, final_status, outcome

log = structlog.get_logger("smsq.send")
SENDING = (Status.SENDING,)  # every step of a send moves a message it claimed
# What sending reads of a claimed record, and of its job (the fields all its messages share).
SEND_FIELDS = ("job", "to", "att", "route", "ri", "text", "sender", "opts", "lane")
JOB_FIELDS = ("text", "sender", "opts", "vu")


def deliver(engine: Engine, ids: Sequence[str], account: str) -> dict[str, int]:
    """Send the queued messages among `ids` through `account`; returns counts by outcome."""
    wait = engine.circuit.open_for(account)
    lease = engine.clock() + engine.cfg.send_lease
    rows, jobs = engine.ledger.claim(list(ids), account, lease, SEND_FIELDS, JOB_FIELDS)
    rows, late = validity.split(rows, jobs, engine.clock())
    counts = _expire(engine, late)
    if wait > 0:
        return _circuit_open(engine, rows, account, wait)
    if not rows:
        return counts
    provider = engine.provider(account)
    messages = outgoing(rows, jobs, provider.account.options.get("sender"))
    pairs = list(zip(rows, messages, strict=True))
    for chunk in _chunks(provider, pairs):
        for status, n in _send_chunk(engine, provider, account, chunk, lease).items():
            counts[status] = counts.get(status, 0) + n
    return counts


def _chunks(provider: Provider, pairs: list[tuple[Record, OutgoingMessage]]
            ) -> list[list[tuple[Record, OutgoingMessage]]]:
    groups: dict[Any, list[tuple[Record, OutgoingMessage]]] = {}
    for pair in pairs:
        groups.setdefault(provider.batch_key(pair[1]), []).append(pair)
    size = provider.max_recipients
    return [g[i:i + size] for g in groups.values() for i in range(0, len(g), size)]


def _send_chunk(engine: Engine, provider: Provider, account: str,
                chunk: list[tuple[Record, OutgoingMessage]], lease: float) -> dict[str, int]:
    until = engine.clock() + engine.cfg.send_lease
    try:
        held = set(engine.ledger.renew([r["id"] for r, _ in chunk], lease, until))
    except NotReplicated as exc:  # a failover could lose this claim: send nothing on it
        log.warning("sms_claim_not_replicated", provider=account, detail=str(exc))
        return _requeue(engine, chunk, engine.cfg.redis_wait_timeout)
    chunk = [pair for pair in chunk if pair[0]["id"] in held]  # the rest went back, or on
    if not chunk:
        return {}
    ids = [r["id"] for r, _ in chunk]
    attempt = max(int(r.get("att", "0")) for r, _ in chunk) + 1
    with structlog.contextvars.bound_contextvars(
            provider=account, attempt=attempt, message_id=ids[0] if len(ids) == 1 else None,
            message_ids=",".join(ids[:5]) + ("..." if len(ids) > 5 else "")):
        return _send_bound(engine, provider, account, chunk, ids, until)


def _send_bound(engine: Engine, provider: Provider, account: str,
                chunk: list[tuple[Record, OutgoingMessage]], ids: list[str], lease: float
                ) -> dict[str, int]:
    wired: list[bool] = [False]

    def on_wire() -> None:
        validity.guard([r for r, _ in chunk], engine.clock)
        if not engine.ledger.mark_on_wire(ids, lease):
            raise LeaseLost(f"{len(ids)} message(s) no longer held")
        wired[0] = True

    token = set_on_wire(on_wire)
    lane = set_lane(chunk[0][0].get("lane") or DEFAULT_LANE)
    try:
        results = engine.retry.in_call.call(provider.send, [m for _, m in chunk])
    except Throttled as exc:
        return _requeue(engine, chunk, exc.retry_after)
    except (validity.Expired, ValidityExpired):  # ours, or less than the gateway's minimum
        return _expire(engine, ids)
    except LeaseLost:  # paused past the lease: the sweep or another worker has them
        log.warning("sms_lease_lost", provider=account, size=len(ids))
        return {}
    except NotReplicated as exc:  # the on-wire mark reached no replica: nothing left
        log.warning("sms_wire_not_replicated", provider=account, detail=str(exc))
        return _requeue(engine, chunk, engine.cfg.redis_wait_timeout)
    except LedgerUnavailable as exc:  # our Redis failed, not the gateway
        return _crashed(engine, provider, chunk, exc, wired=wired[0])
    except SmsqError as exc:
        return _request_failed(engine, provider, account, chunk, exc)
    except Exception as exc:  # a bug must not strand the claim
        return _crashed(engine, provider, chunk, exc, wired=wired[0])
    finally:
        reset_on_wire(token)
        reset_lane(lane)
    engine.circuit.success(account)
    return _apply_results(engine, provider, chunk, results)


def _crashed(engine: Engine, provider: Provider, chunk: list[tuple[Record, OutgoingMessage]],
             exc: Exception, *, wired: bool) -> dict[str, int]:
    """Not the gateway's answer: a request that left is unknown, one that did not waits."""
    log.exception("sms_send_crashed", provider=provider.account.name)
    if wired:
        return _settle(engine, [_unknown_step(engine, provider, r, str(exc), chunk[0][0]["id"])
                                for r, _ in chunk])
    return _requeue(engine, chunk, 5.0)


def _apply_results(engine: Engine, provider: Provider,
                   chunk: list[tuple[Record, OutgoingMessage]],
                   results: list[SendResult]) -> dict[str, int]:
    now = engine.clock()
    sent: list[Sent] = []
    others: list[Step] = []
    for (row, _), res in zip(chunk, results, strict=True):
        pid = res.provider_message_id
        if res.accepted and pid:
            sent.append(Sent(row["id"], provider.report_key(pid, row["to"]), pid,
                             _str(res.cost), _str(res.segments), res.raw_code or ""))
        else:
            others.append(_error_step(engine, provider, row, res.error, res.raw_code))
    done, moved, parked = engine.ledger.record_sends(
        provider.name, now + engine.cfg.poll_first_after,
        {"prov": provider.name, "sent_at": now, "lease": "", "chk": 0}, sent, others)
    if parked:
        from worker.reports import apply_parked

        apply_parked(engine, provider.name, parked)
    notify(engine, [r["id"] for r, _ in chunk])
    log.info("sms_batch_sent", provider=provider.account.name, size=len(chunk),
             accepted=len(sent))
    counts = _count(others, done)
    if any(moved):
        counts[Status.SENT.value] = counts.get(Status.SENT.value, 0) + sum(moved)
    return counts


def _error_step(engine: Engine, provider: Provider, row: Record, error: SmsqError | None,
                raw: str | None) -> Step:
    err = error or OutcomeUnknown("gateway returned no id", provider=provider.name)
    decided = outcome(err)
    if decided is Outcome.RETRY:
        return _retry_step(engine, row, err)
    if decided is Outcome.UNKNOWN:
        return _unknown_step(engine, provider, row, err.message)
    return Step(row["id"], SENDING, final_status(err), 0.0,
                {"err": json.dumps(err.to_dict()), "raw": raw or err.code, "lease": ""})


def _retry_step(engine: Engine, row: Record, err: SmsqError, hold: float = 0.0) -> Step:
    attempt = int(row.get("att", "0")) + 1
    policy = engine.retry.requeue
    if policy.exhausted(attempt):
        return Step(row["id"], SENDING, Status.FAILED, 0.0,
                    {"err": json.dumps(err.to_dict()), "lease": "", "reason": "retries exhausted"})
    delay = policy.delay(attempt, max(err.retry_after or 0.0, hold))
    return Step(row["id"], SENDING, Status.QUEUED, engine.clock() + delay,
                {"err": json.dumps(err.to_dict()), "lease": "", "wire": "0"})


def _unknown_step(engine: Engine, provider: Provider, row: Record, why: str,
                  batch_ref: str | None = None) -> Step:
    can_lookup = type(provider).lookup is not Provider.lookup
    score = engine.clock() + 10.0 if can_lookup else 0.0
    fields = {"err": json.dumps({"class": "OutcomeUnknown", "message": why}), "lease": "",
              "prov": provider.name}
    if batch_ref:  # else the batch reference set when the request left stays
        fields["bref"] = batch_ref
    return Step(row["id"], SENDING, Status.UNKNOWN, score, fields)


def _request_failed(engine: Engine, provider: Provider, account: str,
                    chunk: list[tuple[Record, OutgoingMessage]], exc: SmsqError) -> dict[str, int]:
    rows = [r for r, _ in chunk]
    log.warning("sms_request_failed", provider=account, error=type(exc).__name__,
                code=exc.code, http=exc.http_status)
    decided = outcome(exc)
    if decided is Outcome.RETRY:
        opened = engine.circuit.failure(account)
        hold = engine.circuit.throttled(account, exc.retry_after) if isinstance(
            exc, RateLimited) else 0.0  # a ban of unknown length is probed, ever more rarely
        if hold:
            engine.limiter.penalize(account, hold)
        if opened:  # the circuit opened: the route's next account
            moved = _failover(engine, rows, exc)
            rows = [r for r in rows if r["id"] not in moved]
        return _settle(engine, [_retry_step(engine, r, exc, hold) for r in rows])
    if decided is Outcome.FAILOVER:
        moved = _failover(engine, rows, exc)
        rows = [r for r in rows if r["id"] not in moved]
    if decided is Outcome.UNKNOWN:
        bref = rows[0]["id"] if rows else None
        return _settle(engine, [_unknown_step(engine, provider, r, exc.message, bref)
                                for r in rows])
    return _settle(engine, [_error_step(engine, provider, r, exc, exc.code) for r in rows])


def _failover(engine: Engine, rows: list[Record], exc: SmsqError) -> set[str]:
    """Hand messages with a next route step to that account; returns the ids moved."""
    moved: set[str] = set()
    by_next: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        route = [a for a in row.get("route", "").split(",") if a]
        idx = int(row.get("ri", "0"))
        if idx + 1 < len(route):
            nxt = route[idx + 1]
            if engine.ledger.transition(row["id"], SENDING, Status.QUEUED,
                                        score=engine.clock() + engine.cfg.redispatch_after,
                                        acc=nxt, ri=idx + 1, wire="0", lease="",
                                        err=json.dumps(exc.to_dict())):
                moved.add(row["id"])
                by_next.setdefault((nxt, row.get("lane") or DEFAULT_LANE), []).append(row["id"])
    for (nxt, lane), ids in by_next.items():
        log.info("sms_failed_over", provider=nxt, size=len(ids), error=type(exc).__name__)
        engine.deliver_later(ids, nxt, lane)
    return moved


def _circuit_open(engine: Engine, rows: list[Record], account: str, wait: float
                  ) -> dict[str, int]:
    """The claimed rows go to the next account of their route, or wait for the circuit."""
    err = TransientError("circuit open", provider=account, retry_after=wait)
    moved = _failover(engine, rows, err)
    rest = [r for r in rows if r["id"] not in moved]
    engine.ledger.transition_many([r["id"] for r in rest], SENDING, Status.QUEUED,
                                  score=engine.clock() + wait, lease="")
    return {"failed_over": len(moved), "waiting": len(rest)}


def _expire(engine: Engine, ids: Sequence[str]) -> dict[str, int]:
    moved = validity.expire(engine.ledger, ids)
    notify(engine, moved)
    return {Status.EXPIRED.value: len(moved)} if moved else {}


def _requeue(engine: Engine, chunk: list[tuple[Record, OutgoingMessage]], after: float
             ) -> dict[str, int]:
    """Back to queued without spending an attempt (our own limiter said wait)."""
    ids = [r["id"] for r, _ in chunk]
    moved = engine.ledger.transition_many(ids, SENDING, Status.QUEUED,
                                          score=engine.clock() + after, lease="", wire="0")
    return {"throttled": len(moved)}


def _settle(engine: Engine, steps: list[Step]) -> dict[str, int]:
    done = engine.ledger.pipeline_transitions(steps)
    notify(engine, [s.id for s, ok in zip(steps, done, strict=True) if ok])
    return _count(steps, done)


def _str(value: object) -> str:
    return "" if value is None else str(value)


def _count(steps: list[Step], done: list[bool]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for step, ok in zip(steps, done, strict=True):
        if ok:
            new = str(step.new)
            counts[new] = counts.get(new, 0) + 1
    return counts
