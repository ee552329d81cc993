"""Beat's sweeps: release due queued work, reclaim dead leases, resolve unknown sends.

Nothing here ever resends a message that may have left: a lease that expired
while the request was on the wire becomes `unknown` and is looked up at the
gateway (SMSC by our client id, Gatum by sms-full-data); only a lease that
expired before the request left goes back to `queued`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import structlog

from providers.base import Provider
from providers.errors import SmsqError
from providers.models import OutgoingMessage, StatusResult
from worker.callbacks import notify
from worker.contacts.suppression import Suppression
from worker.engine import BULK, BULK_LOOKAHEAD, Engine, queue_for
from worker.ledger.lifecycle import Status as S
from worker.ledger.lifecycle import Step
from worker.ledger.records import Record
from worker.ledger.store import QUEUED, SENDING, UNKNOWN, bulk_key, msg_key
from worker.limiter import Throttled
from worker.reports import apply_status_steps

log = structlog.get_logger("smsq.reconcile")


def release(engine: Engine, *, limit: int = 10_000) -> int:
    """Queued messages whose release time has come go to their gateway's queue."""
    now = engine.clock()
    engine.r.set("smsq:beat:last", f"{now:.3f}", ex=86400)  # beat's heartbeat, for `smsq health`
    # Re-scored past the time a deliver task takes to run or to come back from a dead
    # node: an id already dispatched is not dispatched again meanwhile.
    ids = engine.ledger.take_due(QUEUED, now, now + engine.cfg.redispatch_after, limit)
    for batch, acc in _batches(engine, ids, QUEUED):
        engine.deliver_later(batch, acc)
    return len(ids) + release_bulk(engine, now)


def release_bulk(engine: Engine, now: float) -> int:
    """Each account's due bulk work, only as much as its limit takes in BULK_LOOKAHEAD
    seconds less what its bulk queue holds already: the rest waits in the ledger, where
    it is no line for a transactional message to wait behind."""
    released = 0
    for name, acc in engine.cfg.accounts.items():
        key = bulk_key(name)
        if not engine.r.zcount(key, "-inf", now):
            continue
        rate = engine.rate_of(acc)
        room = math.ceil((rate or 50.0) * BULK_LOOKAHEAD)
        room -= int(engine.r.llen(queue_for(acc.provider, BULK)))
        if room <= 0:
            continue
        size = engine.provider(acc).max_recipients
        ids = engine.ledger.take_due(key, now, now + engine.cfg.redispatch_after, room * size)
        batches = _batches(engine, _drop_opted_out(engine, ids), key)
        for batch, acc_name in batches[:room]:
            engine.deliver_later(batch, acc_name, BULK)
            released += len(batch)
        rest = [i for batch, _ in batches[room:] for i in batch]
        if rest:  # more requests than room (own texts): due again at the next sweep
            engine.r.zadd(key, dict.fromkeys(rest, now), xx=True)
    return released


def _drop_opted_out(engine: Engine, ids: list[str]) -> list[str]:
    """The opt-out list (`smsq suppress`) applies to every bulk message: those listed end
    `rejected` (reason suppressed) here, before anything is handed to the broker."""
    if not ids:
        return ids
    with engine.r.pipeline(transaction=False) as pipe:
        for msg_id in ids:
            pipe.hget(msg_key(msg_id), "to")
        numbers = [(n or b"").decode() for n in pipe.execute()]
    listed = Suppression(engine.r, engine.cfg.default_region).local(
        [n for n in numbers if n])
    blocked = [i for i, n in zip(ids, numbers, strict=True) if n in listed]
    notify(engine, engine.ledger.transition_many(blocked, (S.QUEUED,), S.REJECTED,
                                                 reason="suppressed"))
    return [i for i, n in zip(ids, numbers, strict=True) if n not in listed]


def _batches(engine: Engine, ids: list[str], index: str) -> list[tuple[list[str], str]]:
    """Due ids as send requests: (ids, account), at most a request's recipients each."""
    if not ids:
        return []
    out: list[tuple[list[str], str]] = []
    for acc, group in _release_groups(engine, ids, index).items():
        if acc not in engine.cfg.accounts:
            _fail_unroutable(engine, group, acc)
            continue
        size = engine.provider(acc).max_recipients
        out += [(group[i:i + size], acc) for i in range(0, len(group), size)]
    return out


def _release_groups(engine: Engine, ids: list[str], index: str) -> dict[str, list[str]]:
    """Due ids by account, in the order of the batches they can share: by sender and
    text, except at a gateway that takes per-recipient texts in one request."""
    with engine.r.pipeline(transaction=False) as pipe:
        for msg_id in ids:
            pipe.hmget(f"smsq:m:{msg_id}", ["acc", "sender", "text", "job"])
        rows = pipe.execute()
    keyed: dict[tuple[str, str, str], list[str]] = {}
    for msg_id, (acc, sender, text, job) in zip(ids, rows, strict=True):
        if acc is None:
            engine.r.zrem(index, msg_id)  # the record expired or never existed
            continue
        account = acc.decode()
        per_recipient = account in engine.cfg.accounts and engine.provider(
            account).per_recipient_texts
        body = "" if per_recipient else (text or b"job:" + (job or b"")).decode()
        keyed.setdefault((account, (sender or b"").decode(), body), []).append(msg_id)
    groups: dict[str, list[str]] = {}
    for (account, _, _), group in keyed.items():
        groups.setdefault(account, []).extend(group)
    return groups


def _fail_unroutable(engine: Engine, ids: list[str], acc: str) -> None:
    err = json.dumps({"class": "ConfigurationError",
                      "message": f"account {acc!r} is not configured on this worker"})
    notify(engine, engine.ledger.transition_many(ids, (S.QUEUED,), S.FAILED, err=err))


def reconcile(engine: Engine, *, limit: int = 2_000) -> dict[str, int]:
    return {"leases": reclaim_leases(engine, limit=limit),
            "resolved": resolve_unknown(engine, limit=limit)}


def reclaim_leases(engine: Engine, *, limit: int = 2_000) -> int:
    """Messages left in `sending` past their lease: the worker died mid-send."""
    now = engine.clock()
    ids = engine.ledger.take_due(SENDING, now, now + engine.cfg.send_lease, limit)
    steps: list[Step] = []
    for row in filter(None, engine.ledger.get_many(ids)):
        if row.get("st") != S.SENDING:
            continue
        if row.get("wire") == "1":
            steps.append(Step(row["id"], (S.SENDING,), S.UNKNOWN, now + 5.0,
                              {"err": json.dumps({"class": "OutcomeUnknown",
                                                  "message": "worker lost during the send"}),
                               "lease": "", "prov": _provider_name(engine, row)}))
        else:
            steps.append(Step(row["id"], (S.SENDING,), S.QUEUED, now, {"lease": "", "wire": "0"}))
    done = engine.ledger.pipeline_transitions(steps)
    notify(engine, [s.id for s, ok in zip(steps, done, strict=True) if ok])
    n = sum(1 for ok in done if ok)
    if n:
        log.warning("sms_leases_reclaimed", count=n)
    return n


def _provider_name(engine: Engine, row: Record) -> str:
    acc = engine.cfg.accounts.get(row.get("acc", ""))
    return acc.provider if acc else ""


def resolve_unknown(engine: Engine, *, limit: int = 500) -> int:
    """Look unknown sends up at gateways that can say (SMSC, Gatum)."""
    now = engine.clock()
    ids = engine.ledger.take_due(UNKNOWN, now, now + 60.0, limit)
    rows = [r for r in engine.ledger.get_many(ids) if r and r.get("st") == S.UNKNOWN]
    found: list[tuple[Record, StatusResult]] = []
    for row in rows:
        acc = engine.cfg.accounts.get(row.get("acc", ""))
        if acc is None:
            continue
        provider = engine.provider(acc)
        result = _lookup(engine, provider, row)
        if result is not None:
            engine.ledger.set_fields(row["id"], pid=result.provider_message_id,
                                     prov=provider.name)
            key = provider.report_key(result.provider_message_id, row["to"])
            engine.ledger.map_pids(provider.name, {key: row["id"]})
            found.append((row, result))
        elif now - float(row.get("updated", now)) > engine.cfg.unknown_lookup_horizon:
            engine.ledger.transition(row["id"], (S.UNKNOWN,), S.UNKNOWN, score=0.0)
    counts = apply_status_steps(engine, found)
    return sum(counts.values())


def _lookup(engine: Engine, provider: Provider, row: Record) -> StatusResult | None:
    if type(provider).lookup is Provider.lookup:
        engine.ledger.transition(row["id"], (S.UNKNOWN,), S.UNKNOWN, score=0.0)
        return None
    job = engine.ledger.job(row["job"]) or {}
    msg = OutgoingMessage(ref=row["id"], recipient=row["to"],
                          text=row.get("text") or job.get("text", ""),
                          sender=row.get("sender") or job.get("sender")
                          or provider.account.options.get("sender"),
                          options={"batch_ref": row["bref"]} if row.get("bref") else {})
    try:
        return provider.lookup(msg, sent_after=float(row.get("created", "0")) - 60.0)
    except (SmsqError, Throttled) as exc:
        log.info("sms_lookup_failed", provider=provider.name, error=type(exc).__name__)
        return None


def stuck(engine: Engine) -> dict[str, Any]:
    """Sizes of the sweep indexes (for health and stats)."""
    return {S.QUEUED.value: engine.r.zcard(QUEUED), S.SENDING.value: engine.r.zcard(SENDING),
            S.UNKNOWN.value: engine.r.zcard(UNKNOWN)}


__all__: Sequence[str] = ["reclaim_leases", "reconcile", "release", "resolve_unknown", "stuck"]
