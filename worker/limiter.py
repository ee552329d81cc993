"""The global rate limiter: one GCRA slot schedule per gateway account, in Redis.

Celery's `rate_limit` is per worker process; this limiter is shared by every
worker on every host. One Lua script reads Redis server time (microseconds,
so no client clock skew) and reserves the next free slot on the account's
schedule: slots are `1/rate` apart (widened by a small safety margin for
network jitter between the grant and the gateway), so no one-second window
can hold more than `rate` requests and there is no burst after idle. A caller
whose slot is near sleeps until it; one whose slot is too far is told how long
to wait and re-queues its work without spending its retry budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

_ACQUIRE = r"""
local interval = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - now
if wait > max_wait then return {0, wait} end
local nxt = tat + interval
local ttl = math.floor((nxt - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', ttl)
return {1, wait}
"""

# Push the schedule back after the gateway throttled us (HTTP 429 and friends).
_PENALIZE = r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local target = now + tonumber(ARGV[1])
if tat < target then
  local ttl = math.floor(tonumber(ARGV[1]) / 1000) + 1000
  redis.call('SET', KEYS[1], string.format('%.0f', target), 'PX', ttl)
end
return 1
"""


# Push every slot not yet granted back by ARGV[1] µs: a request that left late must
# not squeeze the one after it (the gateway counts arrivals, not our schedule).
_SHIFT = r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local nxt = tat + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', math.floor((nxt - now) / 1000) + 1000)
return 1
"""


class Throttled(Exception):
    """Our own limiter says wait; not an error and not a retry."""

    def __init__(self, account: str, retry_after: float) -> None:
        super().__init__(f"rate limit for {account}: retry in {retry_after:.3f}s")
        self.account = account
        self.retry_after = retry_after


@dataclass(frozen=True)
class Grant:
    allowed: bool
    wait: float  # seconds until the slot (allowed) or until one could be had (denied)


class RateLimiter:
    """Slots per account; `acquire` blocks up to `max_wait`, else raises Throttled."""

    def __init__(self, client: redis.Redis, *, margin: float = 0.03, max_wait: float = 2.0,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 late_tolerance: float = 0.002) -> None:
        self.r = client
        self.margin = margin
        self.max_wait = max_wait
        self.sleep = sleep
        self.clock = clock
        self.late_tolerance = late_tolerance
        self._acquire = client.register_script(_ACQUIRE)
        self._penalize = client.register_script(_PENALIZE)
        self._shift = client.register_script(_SHIFT)
        self.waited = 0.0
        self.late = 0.0

    @staticmethod
    def key(account: str) -> str:
        return f"smsq:rl:{account}"

    def try_acquire(self, account: str, rate: float, max_wait: float | None = None) -> Grant:
        interval_us = 1_000_000.0 / rate * (1.0 + self.margin)
        limit = self.max_wait if max_wait is None else max_wait
        allowed, wait_us = self._acquire(keys=[self.key(account)],
                                         args=[f"{interval_us:.0f}", f"{limit * 1e6:.0f}"])
        return Grant(bool(allowed), int(wait_us) / 1e6)

    def acquire(self, account: str, rate: float | None,
                before_send: Callable[[], None] | None = None) -> float:
        """Wait for the account's next slot, run `before_send`; returns the seconds waited.

        If the caller is ready to send later than its slot (a slow wake-up on a
        busy host, a slow `before_send`), the slots not yet granted move back by
        that lateness, so the gap to the next request never shrinks below the
        interval; otherwise jitter alone puts rate + 1 requests in a window.
        """
        if not rate:
            if before_send is not None:
                before_send()
            return 0.0
        grant = self.try_acquire(account, rate)
        if not grant.allowed:
            raise Throttled(account, grant.wait)
        due = self.clock() + grant.wait
        if grant.wait > 0:
            self.sleep(grant.wait)
            self.waited += grant.wait
        if before_send is not None:
            before_send()
        late = self.clock() - due
        if late > self.late_tolerance:
            self._shift(keys=[self.key(account)], args=[f"{late * 1e6:.0f}"])
            self.late += late
        return grant.wait

    def penalize(self, account: str, seconds: float) -> None:
        """The gateway throttled us: no slot for this account for `seconds`."""
        self._penalize(keys=[self.key(account)], args=[f"{seconds * 1e6:.0f}"])
