"""The producer API: validate, write one ledger record per recipient, then enqueue.

Records are written before anything is enqueued, so a message the caller got
an id for is never lost: if the enqueue fails, beat's release sweep sends it.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
import structlog
from kombu.exceptions import OperationalError

from providers import REGISTRY, phones
from providers.errors import ConfigurationError, ValidationError
from worker.callbacks import notify, sweep
from worker.callbacks.subscription import store_many as store_callbacks
from worker.contacts.suppression import Suppression
from worker.engine import BULK, DEFAULT_LANE, LANES, Engine
from worker.ledger.caps import REASON as CAPPED
from worker.ledger.errors import LedgerUnavailable
from worker.ledger.jobs import NewRecord
from worker.polling import describe
from worker.producer import texts
from worker.producer.estimate import Estimate, estimate
from worker.producer.subscribe import Subscriptions, resolve
from worker.producer.texts import printable
from worker.producer.validity import valid_until as _validity

JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}\Z")
SENDER = re.compile(r"^(?:[A-Za-z0-9 ._&'-]{1,11}|\+?\d{3,15})\Z")
MAX_RECIPIENTS = 100_000
# A broker that cannot take the messages now: the release sweep sends them later.
BROKER_DOWN = (OperationalError, redis.ConnectionError, redis.TimeoutError, OSError)
log = structlog.get_logger("smsq.producer")


@dataclass(frozen=True)
class Submitted:
    job_id: str
    ids: list[str]
    rejected: dict[str, str] = field(default_factory=dict)  # id -> reason
    duplicate: bool = False
    estimate: Estimate = field(default_factory=Estimate)  # segments and cost of what is sent


@dataclass(frozen=True)
class _Plan:
    route: tuple[str, ...]
    pairs: list[tuple[str, str, str | None]]  # (recipient or raw, text, rejection reason)
    sender: str | None
    options: dict[str, Any]
    subs: Subscriptions = field(default_factory=Subscriptions)
    lane: str = DEFAULT_LANE
    valid_until: float | None = None
    estimate: Estimate = field(default_factory=Estimate)


def new_job_id() -> str:
    return secrets.token_hex(6)


def _route(engine: Engine, account: Any, route: Any) -> tuple[str, ...]:
    cfg = engine.cfg
    if account is not None and route is not None:
        raise ValidationError("give account or route, not both", field="route")
    try:
        if route is not None:
            if isinstance(route, str):
                return cfg.route(route)
            if isinstance(route, Sequence) and route and all(isinstance(a, str) for a in route):
                return tuple(cfg.account(a).name for a in route)
            raise ValidationError("route must be a route name or a list of accounts",
                                  field="route")
        if account is not None:
            if not isinstance(account, str):
                raise ValidationError("account must be a string", field="account")
            return (cfg.account(account).name,)
    except ConfigurationError as exc:
        field = "route" if route is not None else "account"
        raise ValidationError(exc.message, field=field) from None
    if len(cfg.accounts) == 1:
        return (next(iter(cfg.accounts)),)
    raise ValidationError("no account or route given (configured: "
                          f"{', '.join(sorted(cfg.accounts)) or 'none'})", field="account")


def plan(engine: Engine, recipients: Sequence[Any] | None, text: Any, *,
         messages: Any = None, account: Any = None, route: Any = None, sender: Any = None,
         options: Any = None, strict: bool = True, callback: Any = None, lane: Any = None,
         valid_for: Any = None, valid_until: Any = None) -> _Plan:
    """Validate everything; per-recipient problems raise when strict, else become rejections."""
    lane = DEFAULT_LANE if lane is None else lane
    if not isinstance(lane, str) or lane not in LANES:
        raise ValidationError(f"lane must be one of {', '.join(LANES)}", field="lane")
    until = _validity(engine, lane, valid_for, valid_until)
    chain = _route(engine, account, route)
    limits = [REGISTRY[engine.cfg.account(a).provider].max_segments for a in chain]
    max_segments = texts.limit(min((m for m in limits if m is not None), default=None),
                               engine.cfg.max_segments)
    if sender is not None and (not isinstance(sender, str) or not SENDER.match(sender)):
        raise ValidationError("sender must be up to 11 letters/digits or a 3-15 digit number",
                              field="sender")
    if options is not None and not isinstance(options, Mapping):
        raise ValidationError("options must be an object", field="options")
    pairs_in = texts.pairs(recipients, text, messages)
    if not pairs_in:
        raise ValidationError("no recipients", field="recipients")
    if len(pairs_in) > MAX_RECIPIENTS:
        raise ValidationError(f"more than {MAX_RECIPIENTS} recipients: use a campaign",
                              field="recipients")
    pairs: list[tuple[str, str, str | None]] = []
    checked: set[str] = set()  # one segment count per distinct text, not per recipient
    if messages is None:  # one text for all: a bad one refuses the job, whatever `strict`
        checked.add(texts.check(text, max_segments))
    for raw, body, _ in pairs_in:
        good = ""  # the text once it passed its checks: kept with a refused recipient
        try:
            if not (isinstance(body, str) and body in checked):
                body = texts.check(body, max_segments)
                checked.add(body)
            good = body
            pairs.append((phones.normalize(raw, engine.cfg.default_region), body, None))
        except ValidationError as exc:
            if strict and exc.field == "text":
                raise
            if strict:
                raise ValidationError(f"{exc.message} (recipient #{len(pairs) + 1})",
                                      field="recipients") from None
            pairs.append((printable(str(raw)[:32]), good, exc.message))
    if lane != BULK and lane in engine.cfg.suppress_lanes:  # bulk: checked at its release
        pairs = _drop_opted_out(engine, pairs)
    subs = resolve(engine.cfg, callback, chain[0], [own for _, _, own in pairs_in])
    est = estimate([None if reason else body for _, body, reason in pairs],
                   engine.cfg.prices.get(chain[0]))
    return _Plan(chain, pairs, sender, dict(options or {}), subs, lane, until, est)


def _drop_opted_out(engine: Engine, pairs: list[tuple[str, str, str | None]]
                    ) -> list[tuple[str, str, str | None]]:
    """SMSQ_SUPPRESS_LANES names this lane: numbers on the opt-out list are `rejected`
    (reason suppressed) in the job, never sent."""
    listed = Suppression(engine.r, engine.cfg.default_region).local(
        [to for to, _, reason in pairs if reason is None])
    return [(to, body, "suppressed" if reason is None and to in listed else reason)
            for to, body, reason in pairs]


def _digest(p: _Plan) -> str:
    parts: list[Any] = [p.route, p.sender, p.options, p.lane,
                        [(to, t) for to, t, _ in p.pairs]]
    body = json.dumps(parts + p.subs.digest_part(), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()


def write(engine: Engine, p: _Plan, *, job_id: str | None = None,
          idempotency_key: str | None = None, source: str = "api") -> Submitted:
    """Write the job's records (idempotently, all or nothing) and enqueue its sends.

    A key or job id already written with the same content returns that job's ids
    (`duplicate`); with other content it is refused and nothing is written.
    """
    job_id = job_id or new_job_id()
    if not isinstance(job_id, str) or not JOB_ID.match(job_id):
        raise ValidationError("job_id must be 1-40 of A-Z a-z 0-9 _ -", field="job_id")
    key = idempotency_key
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= 200
                            or printable(key) != key):
        raise ValidationError("idempotency_key must be 1-200 characters of valid Unicode",
                              field="idempotency_key")
    return _write(engine, p, job_id, key, source)


def _write(engine: Engine, p: _Plan, job_id: str, key: str | None, source: str) -> Submitted:
    shared = len({t for _, t, _ in p.pairs}) == 1
    job = {"text": p.pairs[0][1] if shared else None, "sender": p.sender,
           "route": ",".join(p.route), "source": source, "idem": key, "lane": p.lane,
           "vu": f"{p.valid_until:.3f}" if p.valid_until else None,
           "opts": json.dumps(p.options) if p.options else None,
           "cb": p.subs.job.id if p.subs.job else None}
    store_callbacks(engine.r, p.subs.by_id.values(), engine.ledger.retention)
    own = p.subs.own or (None,) * len(p.pairs)
    records = [NewRecord(to, None if shared else body, reason, cb)
               for (to, body, reason), cb in zip(p.pairs, own, strict=True)]
    now = time.time()
    # Bulk waits in the ledger's bulk index, due now: beat hands the broker a few seconds'
    # worth at a time, so no deep broker line forms that a transactional send cannot jump.
    in_ledger = p.lane == BULK and not engine.fifo
    done = engine.ledger.jobs.create(
        job_id, job, records, digest=_digest(p), now=now,
        release_at=now if in_ledger else now + engine.cfg.redispatch_after, account=p.route[0],
        route=",".join(p.route), idempotency_key=key, caps=engine.cfg.caps(p.lane))
    if done.outcome == "idem_conflict":
        raise ValidationError("idempotency key was used with different content",
                              field="idempotency_key")
    if done.outcome == "job_conflict":
        raise ValidationError(f"job {job_id!r} already exists with different content",
                              field="job_id")
    capped = set(done.capped)
    if done.outcome == "duplicate":  # which of them a cap refused, the records say
        capped = {i for i, row in enumerate(engine.ledger.pick_many(done.ids, ["reason"]))
                  if row and row.get("reason") == CAPPED}
    rejected = {f"{done.job_id}.{i}": reason or CAPPED
                for i, (_, _, reason) in enumerate(p.pairs) if reason or i in capped}
    est = p.estimate.without(capped)
    if done.outcome == "duplicate":
        return Submitted(done.job_id, done.ids, rejected, duplicate=True, estimate=est)
    if p.subs.any:
        sweep.watch(engine, job_id)
        notify(engine, list(rejected))
    if not in_ledger:
        _enqueue(engine, p, [(f"{job_id}.{i}", body) for i, (_, body, reason)
                         in enumerate(p.pairs) if not reason and i not in capped])
    return Submitted(job_id, done.ids, rejected, estimate=est)


def _enqueue(engine: Engine, p: _Plan, queued: list[tuple[str, str]]) -> None:
    """Deliver tasks for the new records, in the gateway's batch size (read from its class:
    no client, no HTTP session is built for it). A broker that cannot take them is logged
    and what was left is released by beat now rather than after `redispatch_after`; any
    other error is a bug and propagates (the records are written: beat sends them)."""
    gateway = engine.gateway(p.route[0])
    size = gateway.max_recipients
    # A gateway that takes per-recipient texts gets full batches whatever the texts.
    by_text: dict[str, list[str]] = {}
    for msg_id, body in queued:
        by_text.setdefault("" if gateway.per_recipient_texts else body, []).append(msg_id)
    batches = [ids[i:i + size] for ids in by_text.values() for i in range(0, len(ids), size)]
    for n, batch in enumerate(batches):
        try:
            engine.deliver_later(batch, p.route[0], p.lane)
        except BROKER_DOWN as exc:
            left = [m for b in batches[n:] for m in b]
            log.warning("sms_enqueue_deferred", account=p.route[0], count=len(left),
                        error=type(exc).__name__)
            try:
                engine.ledger.jobs.rescore(left, time.time())
            except (LedgerUnavailable, redis.RedisError):
                pass  # they are released after redispatch_after all the same
            return


def status(engine: Engine, ids: Sequence[str]) -> list[dict[str, Any]]:
    if isinstance(ids, str) or not isinstance(ids, Sequence) or not ids:
        raise ValidationError("ids must be a non-empty list of message ids", field="ids")
    rows = engine.ledger.get_many([str(i) for i in ids])
    missing = [str(i) for i, row in zip(ids, rows, strict=True) if row is None]
    if missing:
        raise ValidationError(f"unknown message id(s): {', '.join(missing[:10])}",
                              field="ids")
    jobs = {r["job"]: engine.ledger.job(r["job"]) for r in rows if r}
    return [describe(r, jobs.get(r["job"])) for r in rows if r]


def job_status(engine: Engine, job_id: str) -> dict[str, Any]:
    job = engine.ledger.job(job_id)
    if job is None:
        raise ValidationError(f"unknown job id {job_id!r}", field="job_id")
    counts = {k[3:]: int(v) for k, v in job.items() if k.startswith("st:") and int(v)}
    return {"job": job_id, "total": int(job.get("total", "0")), "counts": counts,
            "error": job.get("error")}
