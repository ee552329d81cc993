"""The global rate limiter: per gateway account, a slot schedule and a log, in Redis.

Celery's `rate_limit` is per worker process; this limiter is shared by every
worker on every host, and every request to an account (sends, status checks,
retries, recovered work, token calls) passes it. Every Lua script reads Redis
server time (microseconds, so no client clock skew).

Why two parts. A schedule alone (GCRA, slots `1/rate` apart) promises spacing at
*grant* time, but the gateway counts *arrivals*: a request that leaves late (a
slow wake-up, a descheduled process, a slow connect) lands next to the one after
it, and a margin big enough for a loaded machine costs more than the 3% of the
limit we may spend. So:

- `ACQUIRE` books the account's next slot on the schedule: it spreads the
  requests of all processes evenly and decides between a short in-task wait and
  a re-queue (a slot further than `max_wait` away is not booked at all).
- `ADMIT`, right before the request leaves, is the guarantee: a sliding log of
  the account's requests, each stamped with the latest time it can have reached
  the gateway (while in flight: `hold` ahead; once its reply is back: the time
  of the reply, by `DONE`). A request is admitted only while fewer than `limit`
  of those stamps lie within the last `window`. A request reaches the gateway
  after it was admitted and every logged one reached it before its stamp, so
  no `window` at the gateway ever holds more than `limit` arrivals, whatever the
  jitter; the price is one request latency per `limit` requests.
"""

from __future__ import annotations

import itertools
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

_ACQUIRE = r"""
local interval = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local horizon = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - now
if wait > max_wait then return {0, wait} end
if horizon >= 0 and wait > horizon then return {2, wait - horizon} end
local nxt = tat + interval
local ttl = math.floor((nxt - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', ttl)
return {1, wait}
"""

# {1, 0}: admitted (logged as in flight until now + hold);
# {0, wait, in_flight}: not yet; `in_flight` when the entry to leave the window has no reply yet.
# Lanes: KEYS[2] holds the high-lane requests waiting for admission (member -> expiry);
# ARGV[5] is 1 for a bulk request, which is not admitted while any of them waits, and
# ARGV[6] how long a high-lane waiter's mark lasts (a crashed one is forgotten).
_ADMIT = r"""
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local hold = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
if ARGV[5] == '1' then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now))
  if redis.call('ZCARD', KEYS[2]) > 0 then return {0, 0, 1} end
else
  redis.call('ZADD', KEYS[2], string.format('%.0f', now + tonumber(ARGV[6])), ARGV[4])
  redis.call('PEXPIRE', KEYS[2], math.floor(tonumber(ARGV[6]) / 1000) + 1000)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - window))
local n = redis.call('ZCARD', KEYS[1])
if n >= limit then
  local edge = tonumber(redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')[2])
  if edge > now then return {0, 0, 1} end
  return {0, edge + window - now, 0}
end
redis.call('ZADD', KEYS[1], string.format('%.0f', now + hold), ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.floor((hold + window) / 1000) + 1000)
redis.call('ZREM', KEYS[2], ARGV[4])
return {1, 0, 0}
"""

# The reply is back (or the request failed): the entry's stamp becomes now.
_DONE = r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZADD', KEYS[1], 'XX', string.format('%.0f', now), ARGV[1])
return 1
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

Release = Callable[[], None]


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
    deferred: bool = False  # nothing booked: the next slot is beyond the caller's horizon


@dataclass(frozen=True)
class Window:
    """The gateway's rule as `limit` requests in any `seconds` (9 in 1 s for 9/s)."""

    limit: int
    seconds: float

    @classmethod
    def of(cls, rate: float) -> Window:
        limit = max(1, math.floor(rate))
        return cls(limit, limit / rate)


class RateLimiter:
    """Slots per account; `acquire` blocks up to `max_wait`, else raises Throttled."""

    def __init__(self, client: redis.Redis, *, margin: float = 0.0, max_wait: float = 2.0,
                 hold: float = 30.0, poll: float = 0.002,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.r = client
        self.margin = margin  # widens the schedule's spacing; the log needs none
        self.max_wait = max_wait
        self.hold = hold  # longest a request can be in flight (its timeouts); crash bound
        self.poll = poll  # re-check interval while the edge request has no reply yet
        self.sleep = sleep
        self.clock = clock
        self._acquire = client.register_script(_ACQUIRE)
        self._admit = client.register_script(_ADMIT)
        self._done = client.register_script(_DONE)
        self._penalize = client.register_script(_PENALIZE)
        self._tag = secrets.token_hex(6)  # unique per process and host
        self._seq = itertools.count(1)
        self.waited = 0.0

    @staticmethod
    def key(account: str) -> str:
        return f"smsq:rl:{account}"

    @staticmethod
    def log_key(account: str) -> str:
        return f"smsq:rl:{account}:log"

    def try_acquire(self, account: str, rate: float, max_wait: float | None = None,
                    horizon: float | None = None) -> Grant:
        """Book the account's next slot if it is at most `max_wait` away (and, given a
        `horizon`, at most that far; else nothing is booked and `deferred` is set)."""
        interval_us = 1_000_000.0 / rate * (1.0 + self.margin)
        limit = self.max_wait if max_wait is None else max_wait
        ahead = -1.0 if horizon is None else horizon * 1e6
        code, wait_us = self._acquire(keys=[self.key(account)],
                                      args=[f"{interval_us:.0f}", f"{limit * 1e6:.0f}",
                                            f"{ahead:.0f}"])
        return Grant(int(code) == 1, int(wait_us) / 1e6, deferred=int(code) == 2)

    def book(self, account: str, rate: float, horizon: float | None = None) -> Grant:
        """The slot for one request. A bulk request (`horizon` given) books only a slot
        due within `horizon` and waits for one otherwise, so the schedule never holds
        far-future bulk slots that a transactional request would queue behind."""
        waited = 0.0
        while True:
            grant = self.try_acquire(account, rate, horizon=horizon)
            if not grant.deferred:
                return grant
            if waited + grant.wait > self.max_wait:
                return Grant(False, grant.wait)
            self._pause(grant.wait)
            waited += grant.wait

    def acquire(self, account: str, rate: float | None,
                before_send: Callable[[], None] | None = None,
                horizon: float | None = None) -> Release | None:
        """Wait for the account's slot and admission, run `before_send`; returns the
        callable to run once the request is over (reply, error or timeout alike)."""
        if not rate:
            if before_send is not None:
                before_send()
            return None
        grant = self.book(account, rate, horizon)
        if not grant.allowed:
            raise Throttled(account, grant.wait)
        if grant.wait > 0:
            self._pause(grant.wait)
        member = self.admit(account, Window.of(rate), self.max_wait, bulk=horizon is not None)

        def release() -> None:
            try:
                self._done(keys=[self.log_key(account)], args=[member])
            except redis.RedisError:
                pass  # the entry stays in flight until `hold`: slower, never over the limit

        if before_send is not None:
            try:
                before_send()
            except BaseException:
                release()  # nothing left: the slot is not held for `hold`
                raise
        return release

    def admit(self, account: str, window: Window, max_wait: float, bulk: bool = False) -> str:
        """Log one request into the account's window, waiting (at most `max_wait`) for room;
        a bulk request yields the room to any higher-lane request waiting for it."""
        member = self._member()
        waited, poll = 0.0, self.poll
        mark = f"{(max_wait + 1.0) * 1e6:.0f}"
        while True:
            ok, wait_us, in_flight = self._admit(
                keys=[self.log_key(account), self.log_key(account) + ":hi"],
                args=[window.limit, f"{window.seconds * 1e6:.0f}", f"{self.hold * 1e6:.0f}",
                      member, int(bulk), mark])
            if ok:
                return member
            if in_flight:  # its reply is due any moment; ask again, less often each time
                wait, poll = poll, min(poll * 2, 0.05)
            else:
                wait = max(int(wait_us) / 1e6, self.poll / 2)
            if waited + wait > max_wait:
                if not bulk:
                    self.r.zrem(self.log_key(account) + ":hi", member)
                raise Throttled(account, wait)
            self._pause(wait)
            waited += wait

    def penalize(self, account: str, seconds: float) -> None:
        """The gateway throttled us: no slot for this account for `seconds`."""
        self._penalize(keys=[self.key(account)], args=[f"{seconds * 1e6:.0f}"])

    def _pause(self, seconds: float) -> None:
        self.sleep(seconds)
        self.waited += seconds

    def _member(self) -> str:
        return f"{self._tag}:{next(self._seq)}"
