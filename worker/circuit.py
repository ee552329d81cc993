"""A circuit breaker per gateway account, in Redis so every worker sees it.

Consecutive transient failures open it for a cooldown; while open, messages
with a route move on to the next account and others wait. After the cooldown
the next request is the probe: success closes it, failure reopens it.
"""

from __future__ import annotations

import time

import redis


class Circuit:
    def __init__(self, client: redis.Redis, *, threshold: int = 5, cooldown: float = 30.0,
                 throttle_max: float = 600.0) -> None:
        self.r = client
        self.threshold = threshold
        self.cooldown = cooldown
        self.throttle_max = throttle_max

    @staticmethod
    def key(account: str) -> str:
        return f"smsq:cb:{account}"

    def failure(self, account: str) -> bool:
        """Count a transient failure; True when the circuit is (now) open."""
        with self.r.pipeline() as pipe:
            pipe.hincrby(self.key(account), "fails", 1)
            pipe.expire(self.key(account), int(self.cooldown * 10) + 60)
            fails = int(pipe.execute()[0])
        if fails >= self.threshold:
            self.r.hset(self.key(account), "open_until", time.time() + self.cooldown)
            return True
        return False

    def throttled(self, account: str, stated: float | None) -> float:
        """The gateway throttled us: seconds the account holds off. The n-th throttle in a
        row (no success between) holds 2^(n-1) s, never less than the gateway stated and
        never more than `throttle_max` unless the gateway stated more. A ban whose length
        the gateway does not say (an IP ban) is probed, ever more rarely, instead of
        waited out blind: a fixed ten-minute wait held a whole account's messages back
        long after a 3 s ban had ended."""
        key = self.key(account)
        with self.r.pipeline() as pipe:
            pipe.hincrby(key, "throttles", 1)
            pipe.expire(key, int(2 * self.throttle_max) + 60)  # outlives the longest hold
            streak = int(pipe.execute()[0])
        return max(stated or 0.0, min(self.throttle_max, 2.0 ** min(streak - 1, 30)))

    def success(self, account: str) -> None:
        self.r.delete(self.key(account))

    def open_for(self, account: str) -> float:
        """Seconds until the probe is allowed; 0 when closed or half-open."""
        raw = self.r.hget(self.key(account), "open_until")
        if raw is None:
            return 0.0
        return max(0.0, float(raw) - time.time())

    def state(self, account: str) -> str:
        raw = self.r.hgetall(self.key(account))
        if not raw:
            return "closed"
        return "open" if self.open_for(account) > 0 else "half-open"
