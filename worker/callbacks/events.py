"""Status events: read from the ledger after a transition, appended to the subscriber's outbox.

`notify(engine, ids)` is the one call the pipeline makes where statuses change.
One script call per batch reads each message's current status and, for a
subscribed message whose status ranks above the last event it produced
(`cbr`), appends the event to its subscription's outbox and raises `cbr`:
a status never goes backwards in what a subscriber sees, and two callers
racing for the same message produce its event once. The send path pays that
one script call and, for a subscription that was idle, one task publish.

A message's subscription is its own `cb` field if it has one, else its job's `cb`;
an own `cb` of "-" means the message opted out of its job's subscription: it
still counts towards `job.completed`, but produces no event of its own. If a
worker dies between a transition and `notify`, beat's sweep (`sweep`) runs the
same script over the open subscribed jobs, so no event is lost.

Event rank: sent 1, unknown 2 (no final yet, may still be followed by one),
a final 3. An event's id is `<message id>:<status>` (`<job id>:completed`),
the same on every retry and replay, for the subscriber's de-duplication.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
import structlog
from redis.commands.core import Script

log = structlog.get_logger("smsq.callbacks")
TASK_FLUSH = "smsq.callback_flush"
TASK_TICK = "smsq.callbacks_tick"
QUEUE = "smsq.callbacks"
DUE = "smsq:hook:due"  # subscription id -> when its outbox is next flushed
JOBS = "smsq:hook:jobs"  # subscribed job id -> next safety sweep
FINAL_RANK = 3
GRACE = 15.0  # a woken outbox's flush task has this long before beat's tick re-sends it

_LUA = r"""
local P = 'smsq:'
local now, grace, force, retention = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local RANK = {sent=1, unknown=2, delivered=3, undelivered=3, expired=3, failed=3,
              rejected=3, cancelled=3}
local subs, woken, wake, unsettled, pushed = {}, {}, {}, 0, 0
local jobsubs = {}

local function jobsub(job)
  if not job then return false end
  if jobsubs[job] == nil then
    jobsubs[job] = redis.call('HGET', P .. 'job:' .. job, 'cb') or false
  end
  return jobsubs[job]
end

local function fo(sub)
  if subs[sub] == nil then
    local v = redis.call('HGET', P .. 'hook:sub:' .. sub, 'fo')
    subs[sub] = v or false
  end
  return subs[sub]
end

local function push(sub, event)
  local q = P .. 'hook:q:' .. sub
  redis.call('RPUSH', q, cjson.encode(event))
  redis.call('EXPIRE', q, retention)
  pushed = pushed + 1
  if not wake[sub] and redis.call('ZADD', P .. 'hook:due', 'NX', now + grace, sub) == 1 then
    woken[#woken + 1] = sub
  end
  wake[sub] = true
end

local function num(v) if v and v ~= '' then return tonumber(v) end return nil end

local function completed(job)
  local jk = P .. 'job:' .. job
  local n = redis.call('HINCRBY', jk, 'cb:fin', 1)
  local j = redis.call('HMGET', jk, 'cb', 'total')
  if j[1] and j[2] and n >= tonumber(j[2]) and fo(j[1]) and
      redis.call('HSETNX', jk, 'cb:done', now) == 1 then
    local counts, all = {}, redis.call('HGETALL', jk)
    for i = 1, #all, 2 do
      if string.sub(all[i], 1, 3) == 'st:' and tonumber(all[i + 1]) > 0 then
        counts[string.sub(all[i], 4)] = tonumber(all[i + 1])
      end
    end
    push(j[1], {id=job .. ':completed', type='job.completed', timestamp=now,
                data={job_id=job, total=tonumber(j[2]), counts=counts}})
  end
end

local function event(id, v)
  local data = {message_id=id, job_id=v[4], status=v[1], recipient=v[12], account=v[11],
                provider=v[10], provider_message_id=v[5], segments=num(v[6]), cost=num(v[7]),
                raw_code=v[8], reason=v[9], updated_at=num(v[13])}
  if v[14] then
    local ok, err = pcall(cjson.decode, v[14])
    if ok and type(err) == 'table' then data.error = err.message end
  end
  return {id=id .. ':' .. v[1], type='message.' .. v[1], timestamp=now, data=data}
end

for i = 5, #ARGV do
  local id = ARGV[i]
  local k = P .. 'm:' .. id
  local v = redis.call('HMGET', k, 'st', 'cb', 'cbr', 'job', 'pid', 'seg', 'cost', 'raw',
                       'reason', 'prov', 'acc', 'to', 'updated', 'err')
  local rank, last = RANK[v[1]], tonumber(v[3] or '0')
  v[2] = v[2] or jobsub(v[4])  -- a message's own subscription, else its job's
  local mode = v[2] and (v[2] == '-' and 'off' or fo(v[2]))
  if mode then
    if rank and (rank > last or (force == '1' and rank == last)) then
      if rank > last then redis.call('HSET', k, 'cbr', rank) end
      if mode ~= 'off' and (rank >= 2 or mode ~= '1') then push(v[2], event(id, v)) end
      if rank >= 2 and last < 2 then completed(v[4]) end
    end
    if math.max(rank or 0, last) < 3 then unsettled = unsettled + 1 end
  end
end
return {woken, unsettled, pushed}
"""


def script(lua: str) -> Script:
    """A Lua script run with whichever client calls it (`client=`)."""
    return Script(None, lua.encode())  # type: ignore[arg-type]


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_NOTIFY = script(_LUA)


@dataclass(frozen=True)
class Produced:
    woken: list[str]  # outboxes that were idle: each needs a flush task
    unsettled: int  # subscribed messages whose final event is still to come
    pushed: int  # events appended


def run(r: redis.Redis, ids: Sequence[str], *, retention: int, force: bool = False
        ) -> Produced:
    """Append the events `ids` are due (with `force`, their current one again)."""
    if not ids:
        return Produced([], 0, 0)
    args: list[Any] = [f"{time.time():.3f}", GRACE, "1" if force else "0", retention, *ids]
    woken, unsettled, pushed = _NOTIFY(keys=[], args=args, client=r)
    return Produced([text(w) for w in woken],
                    int(unsettled), int(pushed))


def notify(engine: Any, ids: Sequence[str]) -> None:
    """After a status change: queue the subscribers' events; never raises (beat's sweep
    catches up with anything a failure here leaves)."""
    if not ids:
        return
    try:
        for sub in run(engine.r, list(ids), retention=engine.ledger.retention).woken:
            engine.enqueue(TASK_FLUSH, {"sub": sub}, QUEUE)
    except Exception as exc:  # the send path must not fail for a subscriber's sake
        log.warning("callback_notify_failed", error=type(exc).__name__, count=len(ids))
