"""A subscription's outbox in Redis: its events in order, one flusher at a time.

Keys (prefix `smsq:hook:`):
  q:<sub>      list, the events waiting, oldest first (removed only once delivered
               or parked, so a flusher killed mid-request delivers them again)
  lock:<sub>   the one flusher allowed at a time (a lease with a token)
  fail:<sub>   hash: since (first failure of the head event), att, err
  due          sorted set: subscription -> when its outbox is next flushed
  failed       list of parked events (newest first), for `smsq callbacks failed`
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import redis

from worker.callbacks.events import DUE, script, text

P = "smsq:hook:"
FAILED = P + "failed"
FAILED_MAX = 100_000
LEASE = 60.0  # above one flush (delivery.BUDGET + one request timeout)

# ARGV: n, event, event, ...: drop the head if it is still these events (a flusher
# that outlived its lease must not drop events a later one has not delivered).
_ACK = script("""
local n = tonumber(ARGV[1])
local head = redis.call('LRANGE', KEYS[1], 0, n - 1)
if #head ~= n then return 0 end
for i = 1, n do if head[i] ~= ARGV[i + 1] then return 0 end end
redis.call('LTRIM', KEYS[1], n, -1)
return 1
""")
# Done with an outbox: forget it in `due` only if nothing came meanwhile.
_IDLE = script("""
if redis.call('LLEN', KEYS[1]) == 0 then redis.call('ZREM', KEYS[2], ARGV[1]) return 1 end
return 0
""")
_UNLOCK = script("""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
""")


class Outbox:
    def __init__(self, r: redis.Redis, sub: str) -> None:
        self.r, self.sub = r, sub
        self.q, self.lock_key, self.fail_key = P + "q:" + sub, P + "lock:" + sub, P + "fail:" + sub
        self.token = ""

    def lock(self) -> bool:
        self.token = secrets.token_hex(8)
        return bool(self.r.set(self.lock_key, self.token, nx=True, px=int(LEASE * 1000)))

    def unlock(self) -> None:
        _UNLOCK(keys=[self.lock_key], args=[self.token], client=self.r)

    def head(self, n: int) -> list[bytes]:
        return [e if isinstance(e, bytes) else e.encode() for e in self.r.lrange(self.q, 0, n - 1)]

    def ack(self, events: list[bytes]) -> bool:
        return bool(_ACK(keys=[self.q], args=[len(events), *events], client=self.r))

    def idle(self) -> bool:
        """True (and out of `due`) when the outbox is empty."""
        return bool(_IDLE(keys=[self.q, DUE], args=[self.sub], client=self.r))

    def later(self, when: float) -> None:
        self.r.zadd(DUE, {self.sub: when})

    def failure(self, error: str, now: float) -> tuple[int, float]:
        """Count a failed attempt at the head; returns (attempts, first failure time)."""
        with self.r.pipeline(transaction=True) as pipe:
            pipe.hsetnx(self.fail_key, "since", now)
            pipe.hincrby(self.fail_key, "att", 1)
            pipe.hset(self.fail_key, "err", error[:300])
            pipe.hget(self.fail_key, "since")
            _, att, _, since = pipe.execute()
        return int(att), float(since)

    def success(self) -> None:
        self.r.delete(self.fail_key)

    def park(self, events: list[bytes], error: str, attempts: int, since: float) -> None:
        """Move the head events to the failed list; they are not retried any more."""
        rows = []
        for raw in events:
            ev = json.loads(raw)
            data = ev.get("data") or {}
            rows.append(json.dumps({"sub": self.sub, "event_id": ev.get("id"),
                                    "type": ev.get("type"),
                                    "message_id": data.get("message_id"),
                                    "job_id": data.get("job_id"), "error": error[:300],
                                    "attempts": attempts, "first_failure": since,
                                    "parked_at": time.time(), "event": ev}))
        if self.ack(events):
            with self.r.pipeline(transaction=False) as pipe:
                pipe.lpush(FAILED, *rows)
                pipe.ltrim(FAILED, 0, FAILED_MAX - 1)
                pipe.delete(self.fail_key)
                pipe.execute()


def due(r: redis.Redis, now: float, limit: int = 1000) -> list[str]:
    """Outboxes whose flush is due, re-scored so a second tick does not take them too."""
    subs = [text(s) for s in r.zrangebyscore(DUE, "-inf", now, start=0, num=limit)]
    if subs:
        r.zadd(DUE, dict.fromkeys(subs, now + LEASE / 2), xx=True)
    return subs


def failed(r: redis.Redis, limit: int = 100) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in r.lrange(FAILED, 0, limit - 1)]


def gauges(r: redis.Redis) -> dict[str, float]:
    """For the metrics collector: parked events, and outboxes waiting or retrying."""
    now = time.time()
    return {"failed": float(r.llen(FAILED)), "waiting": float(r.zcard(DUE)),
            "retrying": float(r.zcount(DUE, now + 1, "+inf"))}
