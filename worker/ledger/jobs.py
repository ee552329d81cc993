"""Writing a job: its records, indexes, counters and idempotency key in one atomic step.

One Lua call writes all of it or none of it, so a crash or a Redis error
can never leave an idempotency key without its records, queued records
without their due-index entry, or counters that disagree with the records
(a later transition would drive them negative). The same call refuses to
overwrite: an idempotency key or a job id already written returns the
job that holds it (same content) or a conflict (other content).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from worker.ledger.caps import ADMIT_FN
from worker.ledger.durable import NO_WAIT, Replicas
from worker.ledger.errors import maps_redis_errors

# ARGV: job, idempotency key ('' none), digest, now, release_at, retention, njob,
# [field, value] * njob (a `lane` field is also written on every record; `bulk` puts
# them in the account's bulk due index, `qb:<account>`), account, route, the lane's
# per-recipient caps per hour and per day (0 = none), then four per record: to, own
# text ('' = the job's), rejection reason ('' = queued), own callback subscription
# ('' = the job's). Returns {outcome, job, total, capped indexes...}: outcome `created`,
# `duplicate` (same content already written: its job and total; `smsq:wmark` set),
# `idem_conflict` or `job_conflict` (other content; nothing written).
#
# Caps (worker/ledger/caps.py): a message that would be queued is first counted against
# its recipient; over its lane's cap it is written `rejected` (reason recipient_cap)
# instead and counts nothing. The count happens in the one step that writes the job, so
# a message counts exactly once: a duplicate or conflicting call returns before it, and
# a retry or a redelivered send never comes back here.
CREATE_JOB = ADMIT_FN + r"""
local P = 'smsq:'
local job, idem, digest = ARGV[1], ARGV[2], ARGV[3]
local now, release, retention = ARGV[4], ARGV[5], tonumber(ARGV[6])
-- A duplicate writes one small key, so that a WAIT after this call (worker/ledger/durable.py)
-- also covers the first write of the job, made maybe on another connection.
local function mark() redis.call('SET', P .. 'wmark', now) end
local function held(j)
  local v = redis.call('HMGET', P .. 'job:' .. j, 'digest', 'total')
  return v[1], tonumber(v[2] or '0')
end
if idem ~= '' then
  local raw = redis.call('GET', P .. 'idem:' .. idem)
  if raw then
    local h = cjson.decode(raw)
    if h.digest ~= digest then return {'idem_conflict', h.job, 0} end
    local _, total = held(h.job)
    mark()
    return {'duplicate', h.job, total}
  end
end
if redis.call('EXISTS', P .. 'job:' .. job) == 1 then
  local d, total = held(job)
  if d == digest then
    mark()
    return {'duplicate', job, total}
  end
  return {'job_conflict', job, 0}
end
local nj = tonumber(ARGV[7])
local jf = {'digest', digest, 'created', now}
for i = 8, 7 + nj do jf[#jf + 1] = ARGV[i] end
local acc, route = ARGV[8 + nj], ARGV[9 + nj]
local per_hour, per_day = tonumber(ARGV[10 + nj]), tonumber(ARGV[11 + nj])
local t = tonumber(now)
local capped = {}
local lane, due = '', P .. 'q'
for i = 8, 7 + nj, 2 do
  if ARGV[i] == 'lane' then lane = ARGV[i + 1] end
end
if lane == 'bulk' then due = P .. 'qb:' .. acc end
local counts, zargs, n = {}, {}, 0
for i = 12 + nj, #ARGV, 4 do
  local id = job .. '.' .. n
  local k = P .. 'm:' .. id
  local reason = ARGV[i + 2]
  if reason == '' and not admit(lane, ARGV[i], id, t, per_hour, per_day) then
    reason = 'recipient_cap'
    capped[#capped + 1] = n
  end
  local rec = {'id', id, 'job', job, 'to', ARGV[i], 'acc', acc, 'ri', '0', 'att', '0',
               'created', now, 'updated', now}
  if route ~= '' then rec[#rec + 1] = 'route'; rec[#rec + 1] = route end
  if lane ~= '' then rec[#rec + 1] = 'lane'; rec[#rec + 1] = lane end
  if ARGV[i + 1] ~= '' then rec[#rec + 1] = 'text'; rec[#rec + 1] = ARGV[i + 1] end
  if ARGV[i + 3] ~= '' then rec[#rec + 1] = 'cb'; rec[#rec + 1] = ARGV[i + 3] end
  local st = 'queued'
  if reason ~= '' then
    st = 'rejected'
    rec[#rec + 1] = 'reason'; rec[#rec + 1] = reason
  end
  rec[#rec + 1] = 'st'; rec[#rec + 1] = st
  redis.call('HSET', k, unpack(rec))
  if st == 'queued' then
    zargs[#zargs + 1] = release
    zargs[#zargs + 1] = id
    if #zargs >= 2000 then
      redis.call('ZADD', due, unpack(zargs))
      zargs = {}
    end
  else
    redis.call('EXPIRE', k, retention)
  end
  counts[st] = (counts[st] or 0) + 1
  n = n + 1
end
if #zargs > 0 then redis.call('ZADD', due, unpack(zargs)) end
for st, c in pairs(counts) do
  jf[#jf + 1] = 'st:' .. st
  jf[#jf + 1] = c
end
jf[#jf + 1] = 'total'; jf[#jf + 1] = n
redis.call('HSET', P .. 'job:' .. job, unpack(jf))
redis.call('ZADD', P .. 'jobs', now, job)
if idem ~= '' then
  redis.call('SET', P .. 'idem:' .. idem, cjson.encode({digest = digest, job = job}),
             'EX', retention)
end
if #capped > 0 then redis.call('HINCRBY', P .. 'capped', lane, #capped) end
local out = {'created', job, n}
for _, c in ipairs(capped) do out[#out + 1] = c end
return out
"""

# ARGV: score, id, id, ...: queued ids still in the due index get `score` (XX: an id
# claimed meanwhile is not put back).
RESCORE = r"""
local n = 0
for i = 2, #ARGV do
  n = n + redis.call('ZADD', 'smsq:q', 'XX', 'CH', ARGV[1], ARGV[i])
end
return n
"""


@dataclass(frozen=True)
class NewRecord:
    """One message of a new job: recipient, own text (None: the job's), rejection reason,
    own callback subscription id (None: the job's)."""

    to: str
    text: str | None = None
    reason: str | None = None
    cb: str | None = None


@dataclass(frozen=True)
class Written:
    """What the write did: `created`, `duplicate`, `idem_conflict` or `job_conflict`."""

    outcome: str
    job_id: str
    total: int
    capped: tuple[int, ...] = ()  # indexes of the messages refused by a per-recipient cap

    @property
    def ids(self) -> list[str]:
        return [f"{self.job_id}.{i}" for i in range(self.total)]


@maps_redis_errors
class JobWriter:
    """The one way a job enters the ledger (Redis unreachable: LedgerUnavailable)."""

    def __init__(self, client: redis.Redis, retention: int,
                 replicas: Replicas = NO_WAIT) -> None:
        self.retention = retention
        self.r = client
        self.replicas = replicas  # a job is promised once this many replicas have it
        self._create = client.register_script(CREATE_JOB)
        self._rescore = client.register_script(RESCORE)

    def create(self, job_id: str, job_fields: Mapping[str, Any], records: Sequence[NewRecord],
               *, digest: str, now: float, release_at: float, account: str = "",
               route: str = "", idempotency_key: str | None = None,
               caps: tuple[int, int] = (0, 0)) -> Written:
        """Write the job; `caps` (per hour, per day; 0 = none) limit the messages of its lane
        to one recipient (see CREATE_JOB)."""
        flat: list[str] = []
        for key, value in job_fields.items():
            if value is not None:
                flat += [key, str(value)]
        args: list[Any] = [job_id, idempotency_key or "", digest, now, release_at,
                           self.retention, len(flat), *flat, account, route,
                           int(caps[0]), int(caps[1])]
        for rec in records:
            args += [rec.to, rec.text or "", rec.reason or "", rec.cb or ""]
        outcome, job, total, *capped = self.replicas.run(self.r, self._create, args)
        return Written(_s(outcome), _s(job), int(total), tuple(int(i) for i in capped))

    def rescore(self, ids: Sequence[str], score: float) -> int:
        """Move queued ids' next release to `score` (e.g. now, when their dispatch failed)."""
        return int(self._rescore(args=[score, *ids])) if ids else 0


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
