"""Per-recipient caps (README "Lanes"): how many messages of a lane one number may get per
hour and per day, against SMS-pumping fraud and operator blocks.

Each (lane, number) has a sorted set `smsq:cap:<lane>:<sha1 of the E.164>` of the ids of
the messages counted against it, scored by when they were counted; entries older than
the longest window are dropped as it is read, and the key expires with that window. A
message is its own member, so counting it again (a replayed step, a release retried
after a crash) changes nothing: a message counts once. A message over either cap counts
nothing and adds one to `smsq:capped` (totals by lane: the Prometheus counter).

`ADMIT_FN` is Lua shared by the two places that count: the script that writes a job
(worker/ledger/jobs.py, so that a job and its counts are one atomic step) and `ADMIT`
here, which campaigns call when they release recipients to the pipeline. There the
count and the release are two steps: a recipient counted and then not released (its
campaign cancelled in between) keeps its count, and the count is not written under
SMSQ_REDIS_MIN_REPLICAS' WAIT (a failover may forget a few: caps err towards sending).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from worker.ledger.errors import maps_redis_errors

CAPPED_KEY = "smsq:capped"  # messages refused by a per-recipient cap, by lane, ever
REASON = "recipient_cap"

# admit(lane, to, id, t, per_hour, per_day): true (and `id` counted against `to`) when
# `to` may have one more message of `lane` at time `t`; false when a cap is reached.
ADMIT_FN = r"""
local function admit(lane, to, id, t, per_hour, per_day)
  if (per_hour <= 0 and per_day <= 0) or lane == '' then return true end
  local span = 3600
  if per_day > 0 then span = 86400 end
  local ck = 'smsq:cap:' .. lane .. ':' .. redis.sha1hex(to)
  redis.call('ZREMRANGEBYSCORE', ck, '-inf', t - span)
  if redis.call('ZSCORE', ck, id) then return true end
  if per_day > 0 and redis.call('ZCARD', ck) >= per_day then return false end
  if per_hour > 0 and redis.call('ZCOUNT', ck, '(' .. (t - 3600), '+inf') >= per_hour then
    return false
  end
  redis.call('ZADD', ck, t, id)
  redis.call('EXPIRE', ck, span + 60)
  return true
end
"""

# ARGV: lane, now, per hour, per day, then (id, to) pairs. Returns the ids refused.
ADMIT = ADMIT_FN + r"""
local lane, t = ARGV[1], tonumber(ARGV[2])
local per_hour, per_day = tonumber(ARGV[3]), tonumber(ARGV[4])
local refused = {}
for i = 5, #ARGV, 2 do
  if not admit(lane, ARGV[i + 1], ARGV[i], t, per_hour, per_day) then
    refused[#refused + 1] = ARGV[i]
  end
end
if #refused > 0 then redis.call('HINCRBY', 'smsq:capped', lane, #refused) end
return refused
"""


@maps_redis_errors
class Caps:
    """Counting messages against their recipients' caps outside a job write (campaigns)."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client
        self._admit = client.register_script(ADMIT)

    def admit(self, lane: str, messages: Sequence[tuple[str, str]], caps: tuple[int, int],
              now: float) -> set[str]:
        """Count (id, E.164) pairs of `lane` against `caps` (per hour, per day); returns the
        ids over a cap (counted nothing). An id counted before is admitted again."""
        if not messages or not any(caps):
            return set()
        args: list[Any] = [lane, now, int(caps[0]), int(caps[1])]
        for msg_id, to in messages:
            args += [msg_id, to]
        return {_s(i) for i in self._admit(args=args)}


def capped_totals(r: redis.Redis) -> dict[str, int]:
    """Messages a per-recipient cap refused so far, by lane (the metric's counter)."""
    raw: Any = r.hgetall(CAPPED_KEY)
    return {_s(k): int(v) for k, v in raw.items()}


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
