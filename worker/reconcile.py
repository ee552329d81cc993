"""Beat's sweeps: release due queued work, reclaim dead leases, resolve unknown sends.

Nothing here ever resends a message that may have left: a lease that expired
while the request was on the wire becomes `unknown` and is looked up at the
gateway (SMSC by our client id, Gatum by sms-full-data); only a lease that
expired before the request left goes back to `queued`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import structlog

from providers.base import Provider
from providers.errors import SmsqError
from providers.models import OutgoingMessage, StatusResult
from worker.callbacks import notify
from worker.engine import Engine
from worker.ledger.lifecycle import Status as S
from worker.ledger.lifecycle import Step
from worker.ledger.records import Record
from worker.ledger.store import QUEUED, SENDING, UNKNOWN
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
    if not ids:
        return 0
    for acc, group in _release_groups(engine, ids).items():
        if acc not in engine.cfg.accounts:
            _fail_unroutable(engine, group, acc)
            continue
        size = engine.provider(acc).max_recipients
        for start in range(0, len(group), size):
            engine.deliver_later(group[start:start + size], acc)
    return len(ids)


def _release_groups(engine: Engine, ids: list[str]) -> dict[str, list[str]]:
    """Due ids by account, in the order of the batches they can share: by sender and
    text, except at a gateway that takes per-recipient texts in one request."""
    with engine.r.pipeline(transaction=False) as pipe:
        for msg_id in ids:
            pipe.hmget(f"smsq:m:{msg_id}", ["acc", "sender", "text", "job"])
        rows = pipe.execute()
    keyed: dict[tuple[str, str, str], list[str]] = {}
    for msg_id, (acc, sender, text, job) in zip(ids, rows, strict=True):
        if acc is None:
            engine.r.zrem(QUEUED, msg_id)  # the record expired or never existed
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
