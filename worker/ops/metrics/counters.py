"""The counters themselves: per-minute ones in Redis for `smsq stats`, and the process's
prometheus metrics, made only once multiprocess mode is decided (`enable`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, MutableMapping
from typing import Any

import redis

from worker.ledger.lifecycle import Status
from worker.ops import health
from worker.settings import get as get_settings

# The message states counted per gateway (reports, polls and sends reaching them).
OUTCOMES = tuple(str(s) for s in (Status.SENT, Status.DELIVERED, Status.UNDELIVERED,
                                  Status.EXPIRED, Status.FAILED, Status.REJECTED,
                                  Status.UNKNOWN))
SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
WAITS = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)


class Rolling:
    """Per-minute counters for `smsq stats`: buffered in memory, flushed to Redis in one go."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._buf: dict[tuple[int, str], int] = {}
        self._lock = threading.Lock()

    def add(self, label: str, kind: str, n: int = 1) -> None:
        if n:
            key = (int(self.clock() // 60), f"{label}|{kind}")
            with self._lock:
                self._buf[key] = self._buf.get(key, 0) + n

    def flush(self, r: redis.Redis) -> None:
        with self._lock:
            buf, self._buf = self._buf, {}
        if not buf:
            return
        try:
            with r.pipeline(transaction=False) as pipe:
                for (minute, field), n in buf.items():
                    pipe.hincrby(f"{health.STATS_PREFIX}{minute}", field, n)
                    pipe.expire(f"{health.STATS_PREFIX}{minute}", 7200)
                pipe.execute()
        except redis.RedisError:
            return  # stats are best effort; the ledger is the record


class _Prom:
    """The process's prometheus metrics, made after multiprocess mode is decided."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.messages = Counter("smsq_messages", "Messages reaching a status, by gateway",
                                ["gateway", "status"])
        self.retries = Counter("smsq_retries", "Messages re-queued after a transient error",
                               ["gateway"])
        self.requests = Counter("smsq_gateway_requests", "Gateway requests (approximate for "
                                "status: batches of ids)", ["account", "op"])
        self.errors = Counter("smsq_gateway_errors", "Failed gateway requests by error class",
                              ["account", "op", "error"])
        self.deferred = Counter("smsq_limiter_deferred", "Messages re-queued because the global "
                                "limiter had no slot within SMSQ_LIMITER_MAX_WAIT", ["account"])
        self.failovers = Counter("smsq_failovers", "Messages moved to the next account of their "
                                 "route", ["account"])
        self.reclaimed = Counter("smsq_leases_reclaimed", "Sends whose worker died mid-send")
        self.reports = Counter("smsq_reports", "Delivery reports received",
                               ["gateway", "result"])
        self.send_seconds = Histogram("smsq_send_duration_seconds", "One delivery task's "
                                      "gateway time (limiter waits excluded)", ["gateway"],
                                      buckets=SECONDS)
        self.limiter_wait = Histogram("smsq_limiter_wait_seconds", "Time a task slept for its "
                                      "rate-limit slots", ["account"], buckets=WAITS)


rolling = Rolling()
_prom: _Prom | None = None


def enable() -> None:
    global _prom
    if _prom is None:
        _prom = _Prom()


def prom() -> _Prom | None:
    """The prometheus metrics, or None where nothing is served."""
    return _prom


def gateway_of(account: str) -> str:
    acc = get_settings().accounts.get(account)
    return acc.provider if acc else account


def count_request(account: str, op: str, n: int = 1) -> None:
    rolling.add(f"a:{account}", "req", n)
    if (p := _prom) is not None:
        p.requests.labels(account, op).inc(n)


def count_outcomes(gateway: str, counts: MutableMapping[str, Any]) -> None:
    for status in OUTCOMES:
        n = counts.get(status)
        if isinstance(n, int) and n > 0:
            rolling.add(f"g:{gateway}", status, n)
            if (p := _prom) is not None:
                p.messages.labels(gateway, status).inc(n)


__all__ = ["OUTCOMES", "Rolling", "count_outcomes", "count_request", "enable",
           "gateway_of", "prom", "rolling"]
