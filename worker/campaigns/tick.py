"""The campaign tick (beat, every second): start due campaigns, release their recipients.

Release is rate-shaped: each running campaign earns credit at its rate (the
lower of its own cap and the gateway's limit) and hands at most that many
recipients per tick to the send pipeline, and only while its pipeline
backlog (queued + sending) is a few seconds deep — which is why a pause
stops new sends within seconds. A recipient is released only while its own
time zone is inside the window. The ledger's conditional step
(`scheduled -> queued`) makes a release idempotent: a tick that dies after
it and before trimming the waiting list re-reads the same numbers, finds
them no longer `scheduled`, and skips them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import structlog

from providers import REGISTRY
from providers.capabilities import BulkSend
from providers.errors import SmsqError
from worker.campaigns.schedule import ANY_ZONE, parse_window
from worker.campaigns.store import ACTIVE, CampaignStore, ckey, wait_key
from worker.contacts.suppression import Suppression
from worker.engine import BULK, Engine
from worker.ledger.caps import REASON as CAPPED
from worker.ledger.caps import Caps
from worker.ledger.lifecycle import Status as S
from worker.limiter import Throttled

log = structlog.get_logger("smsq.campaign")
STEP = 1000
MIN_SAMPLE = 20
SCHEDULED = S.SCHEDULED.value.encode()  # as an HMGET reply holds it
FINISHED = (S.DELIVERED, S.UNDELIVERED, S.EXPIRED, S.FAILED, S.REJECTED)


def tick(engine: Engine, now: float | None = None) -> dict[str, int]:
    now = engine.clock() if now is None else now
    store = CampaignStore(engine.r, retention_days=engine.cfg.retention_days)
    started = store.start_due(now)
    for cid in started:
        log.info("campaign_started", campaign=cid)
        data = store.get(cid) or {}
        if data.get("source") == "gatum_group":
            _send_bulk(engine, store, cid, data)
    released = 0
    for cid in store.active():
        with store.lock(cid) as got:
            if got:
                released += step(engine, store, cid, now)
    return {"started": len(started), "released": released}


def step(engine: Engine, store: CampaignStore, cid: str, now: float) -> int:
    data = store.get(cid)
    status = (data or {}).get("status")
    if data is None or status not in ("running", "paused"):
        store.r.srem(ACTIVE, cid)
        return 0
    if status == "paused" or data.get("source") == "gatum_group":
        return 0
    counts = {k[3:]: int(v) for k, v in store.job(cid).items() if k.startswith("st:")}
    if _auto_pause(store, cid, data, counts):
        return 0
    backlog = counts.get(S.QUEUED, 0) + counts.get(S.SENDING, 0)
    waiting = sum(store.waiting(cid).values())
    if waiting == 0 and backlog == 0:
        store.set_status(cid, ["running"], "completed", "every recipient handed on")
        log.info("campaign_completed", campaign=cid)
        return 0
    rate, batch = _rate(engine, data)
    elapsed = min(max(now - float(data.get("last") or now), 0.0), 2.0)
    credit = min(float(data.get("credit") or 0) + rate * elapsed, max(rate * 2, 1.0))
    room = max(int(rate * 3), batch) - backlog
    budget = max(0, min(int(credit), room))
    taken = release(engine, store, cid, data, budget, now) if budget else 0
    store.update(cid, last=now, credit=credit - taken)
    return taken


def _rate(engine: Engine, data: dict[str, str]) -> tuple[float, int]:
    """(messages per second, messages per request) for this campaign's first account."""
    acc = engine.cfg.account(data["acc"])
    cls = REGISTRY[acc.provider]
    batch = cls.max_recipients if data.get("personal") != "1" or cls.per_recipient_texts else 1
    per_request = engine.rate_of(acc)
    gateway = per_request * batch if per_request else engine.cfg.campaign_max_rate
    cap = float(data["rate"]) if data.get("rate") else gateway
    return max(min(cap, gateway), 0.1), batch


def _auto_pause(store: CampaignStore, cid: str, data: dict[str, str],
                counts: dict[str, int]) -> bool:
    """Pause when the gateway fails/rejects more than the threshold share of finished sends."""
    own = sum(int(data.get(k, "0")) for k in ("invalid", "suppressed", "capped"))
    finished = sum(counts.get(s, 0) for s in FINISHED) - own
    bad = counts.get(S.FAILED, 0) + max(0, counts.get(S.REJECTED, 0) - own)
    threshold = float(data.get("threshold") or 1.0)
    if finished < MIN_SAMPLE or bad / finished <= threshold:
        return False
    reason = (f"auto-paused: {bad} of {finished} finished messages failed or were rejected "
              f"by the gateway ({bad / finished:.0%} > {threshold:.0%})")
    if store.set_status(cid, ["running"], "paused", reason):
        log.warning("campaign_auto_paused", campaign=cid, bad=bad, finished=finished)
    return True


def _open_zones(store: CampaignStore, cid: str, data: dict[str, str], now: float) -> list[str]:
    window = parse_window(data.get("window"))
    zones = store.zones(cid)
    if window is None:
        return [z for z in zones if z == ANY_ZONE]
    return [z for z in zones if z != ANY_ZONE and window.is_open(z, now)]


def release(engine: Engine, store: CampaignStore, cid: str, data: dict[str, str],
            budget: int, now: float) -> int:
    """Hand up to `budget` waiting recipients in open zones to the pipeline; returns how many."""
    taken = 0
    for zone in _open_zones(store, cid, data, now):
        while taken < budget:
            numbers = store.peek(cid, zone, min(STEP, budget - taken))
            if not numbers:
                break
            try:
                _hand_on(engine, store, cid, [f"{cid}.{n}" for n in numbers], now)
            except (SmsqError, Throttled) as exc:
                log.warning("campaign_release_blocked", campaign=cid,
                            error=type(exc).__name__)
                return taken  # fail closed: a stop list we cannot read sends nothing
            store.trim(cid, zone, len(numbers))
            taken += len(numbers)
    return taken


def _hand_on(engine: Engine, store: CampaignStore, cid: str, ids: list[str],
             now: float) -> None:
    with engine.r.pipeline(transaction=False) as pipe:
        for msg_id in ids:
            pipe.hmget(f"smsq:m:{msg_id}", ["to", "acc", "st"])
        rows = [(i, to.decode(), acc.decode()) for i, (to, acc, st) in
                zip(ids, pipe.execute(), strict=True) if st == SCHEDULED]
    blocked = _suppressed(engine, rows)
    stopped = engine.ledger.transition_many([i for i, _, _ in rows if i in blocked],
                                            [S.SCHEDULED], S.REJECTED, reason="suppressed")
    store.incr(cid, "suppressed", len(stopped))
    # Bulk's per-recipient caps count a recipient when it is released (an id counts once,
    # so a release retried after a crash counts nothing again).
    capped = Caps(engine.r).admit(BULK, [(i, to) for i, to, _ in rows if i not in blocked],
                                  engine.cfg.caps(BULK), now)
    refused = engine.ledger.transition_many(sorted(capped), [S.SCHEDULED], S.REJECTED,
                                            reason=CAPPED)
    store.incr(cid, "capped", len(refused))
    moved = set(engine.ledger.transition_many(
        [i for i, _, _ in rows if i not in blocked and i not in capped], [S.SCHEDULED],
        S.QUEUED, score=now + engine.cfg.requeue_after, created=now))
    by_acc: dict[str, list[str]] = {}
    for msg_id, _, acc in rows:
        if msg_id in moved:
            by_acc.setdefault(acc, []).append(msg_id)
    for acc, group in by_acc.items():
        size = engine.provider(acc).max_recipients
        for start in range(0, len(group), size):
            engine.deliver_later(group[start:start + size], acc, BULK)
    store.incr(cid, "released", len(moved))


def _suppressed(engine: Engine, rows: Sequence[tuple[str, str, str]]) -> set[str]:
    supp = Suppression(engine.r, engine.cfg.default_region)
    numbers = [to for _, to, _ in rows]
    listed = supp.local(numbers)
    for acc in {a for _, _, a in rows}:
        mine = [to for _, to, a in rows if a == acc and to not in listed]
        listed |= supp.at_gateway(engine.provider(acc), mine)
    return {msg_id for msg_id, to, _ in rows if to in listed}


def cancel_pending(engine: Engine, store: CampaignStore, cid: str, chunk: int = 2000) -> int:
    """Every recipient still waiting or queued -> `cancelled`; the waiting lists go."""
    cancelled = 0
    with store.lock(cid, wait=30.0):
        last = int(store.r.hget(ckey(cid), "next") or 0)
        for start in range(0, last, chunk):
            ids = [f"{cid}.{n}" for n in range(start, min(last, start + chunk))]
            cancelled += len(engine.ledger.transition_many(
                ids, [S.SCHEDULED, S.QUEUED], S.CANCELLED, reason="campaign cancelled"))
        zones = store.zones(cid)
        store.r.unlink(f"{ckey(cid)}:zones", *[wait_key(cid, z) for z in zones])
    return cancelled


def _send_bulk(engine: Engine, store: CampaignStore, cid: str, data: dict[str, str]) -> None:
    """Server-side groups: one bulk send, exactly once (start_due's guard)."""
    provider = engine.provider(data["acc"])
    if not isinstance(provider, BulkSend):
        store.set_status(cid, ["running"], "failed",
                         f"account {data['acc']} cannot send to server-side groups")
        return
    window = parse_window(data.get("window"))
    excluded = [int(x) for x in data.get("gatum_exclude", "").split(",") if x]
    try:
        receipt = provider.send_to_groups(
            data.get("sender") or provider.account.options.get("sender") or "SMS",
            data["text"], [int(x) for x in data["gatum_group"].split(",")],
            excluded=excluded, window=None if window is None else (window.start, window.end),
            start=datetime.fromtimestamp(float(data.get("start") or engine.clock()), UTC))
    except (SmsqError, Throttled) as exc:
        store.set_status(cid, ["running"], "failed", f"Gatum send-bulk failed: {exc}")
        log.warning("campaign_bulk_failed", campaign=cid, error=type(exc).__name__)
        return
    store.update(cid, gatum_sent_id=receipt.sent_id, gatum_count=receipt.count)
    store.set_status(cid, ["running"], "completed",
                     f"handed to Gatum send-bulk (sentID {receipt.sent_id}, "
                     f"{receipt.count} recipient(s))")
    log.info("campaign_bulk_sent", campaign=cid, count=receipt.count)
