"""Delivering a subscription's outbox: in order, at least once, retried, then parked.

One flusher per subscription at a time takes the head of its outbox (one event,
or up to `batch` when the subscriber opted in), hands it to the subscriber and
drops it only once the subscriber took it. A failure keeps the head in place
and re-schedules the outbox with exponential backoff and jitter; once the head
has failed for `SMSQ_CALLBACK_WINDOW` it is parked (`smsq callbacks failed`)
and the next event goes. A refused URL or a missing secret is parked at once.
A circuit per subscriber host (or task queue) stops hammering a dead one.
This runs on its own queue (`smsq.callbacks`), so sending never waits for it.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import structlog

from providers.errors import PermanentError
from worker.callbacks import signing, subscription
from worker.callbacks.events import QUEUE, TASK_FLUSH
from worker.callbacks.outbox import Outbox
from worker.callbacks.subscription import Subscription

log = structlog.get_logger("smsq.callbacks")
BUDGET = 30.0  # seconds one flush task may spend before it hands on to the next


@dataclass(frozen=True)
class Backoff:
    base: float
    cap: float

    def delay(self, attempts: int, rand: Callable[[], float] = random.random) -> float:
        """Exponential in the attempts so far, capped, with jitter over its upper half."""
        full = min(self.cap, self.base * 2.0 ** min(attempts - 1, 30))
        return float(full * (0.5 + 0.5 * rand()))


def circuit_name(sub: Subscription) -> str:
    if sub.kind == "task":
        return f"hook:task:{sub.queue}"
    return f"hook:{urlsplit(sub.target).hostname}"


def flush(engine: Any, sub_id: str, *, budget: float = BUDGET) -> dict[str, int]:
    """Deliver what the outbox holds; counts of delivered / retry / parked events."""
    box = Outbox(engine.r, sub_id)
    if not box.lock():
        return {"busy": 1}
    try:
        return _drain(engine, box, budget)
    finally:
        box.unlock()


def _drain(engine: Any, box: Outbox, budget: float) -> dict[str, int]:
    sub = subscription.load(engine.r, box.sub)
    counts = {"delivered": 0, "parked": 0, "retry": 0}
    started = time.monotonic()
    while time.monotonic() - started < budget:
        events = box.head(sub.batch if sub else 1)
        if not events:
            if box.idle():
                return counts
            continue
        if sub is None:
            box.park(events, "subscription expired", 0, engine.clock())
            counts["parked"] += len(events)
            continue
        outcome = _attempt(engine, box, sub, events)
        counts[outcome] += len(events)
        if outcome == "retry":
            return counts
    box.later(engine.clock())  # more to do: a fresh task, so others get a turn
    engine.enqueue(TASK_FLUSH, {"sub": box.sub}, QUEUE)
    return counts


def _attempt(engine: Any, box: Outbox, sub: Subscription, events: list[bytes]) -> str:
    cfg, now, name = engine.cfg, engine.clock(), circuit_name(sub)
    wait = engine.circuit.open_for(name)
    if wait > 0:
        box.later(now + wait)
        return "retry"
    try:
        _send(engine, sub, events)
    except PermanentError as exc:
        log.warning("callback_parked", sub=sub.id, target=sub.describe(), error=exc.message)
        box.park(events, exc.message, 1, now)
        return "parked"
    except Exception as exc:
        error = getattr(exc, "message", None) or type(exc).__name__
        engine.circuit.failure(name)
        attempts, since = box.failure(error, now)
        if now - since >= cfg.callback_window:
            log.warning("callback_parked", sub=sub.id, target=sub.describe(), error=error,
                        attempts=attempts)
            box.park(events, error, attempts, since)
            return "parked"
        delay = Backoff(cfg.callback_backoff_base, cfg.callback_backoff_max).delay(attempts)
        box.later(now + max(delay, engine.circuit.open_for(name)))
        log.info("callback_retry_scheduled", sub=sub.id, target=sub.describe(), error=error,
                 attempts=attempts, delay=round(delay, 2))
        return "retry"
    engine.circuit.success(name)
    box.success()
    box.ack(events)
    return "delivered"


def _send(engine: Any, sub: Subscription, raw: list[bytes]) -> None:
    events = [json.loads(e) for e in raw]
    if sub.kind == "task":
        kwargs = events[0] if sub.batch == 1 else {"events": events}
        engine.enqueue(sub.target, kwargs, sub.queue)
        return
    signing.post(engine.cfg, sub, events)
