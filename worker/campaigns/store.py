"""Campaigns in Redis: the campaign hash, its waiting lists, and the chunked audience write.

Keys (prefix `smsq:`):
  c:<id>            hash: template, account/route, sender, start, window, zone, rate,
                    failure threshold, status, reason, counters (invalid, duplicates,
                    suppressed, capped, released), `next` (the next message number)
  c:<id>:w:<zone>   list of message numbers waiting for release, one per time zone
  c:<id>:zones      set of the zones that have a waiting list
  c:<id>:dd         set of E.164 numbers seen, for dedup while importing (then unlinked)
  c:<id>:lock       the tick's / cancel's lease on the campaign
  campaigns         sorted set of campaign ids by creation time
  campaigns:due     sorted set of scheduled campaigns by start time (beat releases them)
  campaigns:active  set of running and paused campaigns (the tick's work list)

Message records are the ledger's (`m:<cid>.<n>`, job `job:<cid>`) with only
what differs per recipient: the template's text lives once in the job hash,
a rendered text is stored per message only when the template has fields.
Waiting recipients have status `scheduled`, which no sender ever claims.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import redis

from worker.ledger.store import P, job_key

CAMPAIGNS, DUE, ACTIVE = P + "campaigns", P + "campaigns:due", P + "campaigns:active"
SCHEDULED = "scheduled"
STATUSES = ("importing", "draft", "scheduled", "running", "paused", "completed", "cancelled",
            "failed")


def ckey(cid: str) -> str:
    return f"{P}c:{cid}"


def wait_key(cid: str, zone: str) -> str:
    return f"{P}c:{cid}:w:{zone}"


def new_id() -> str:
    return "c" + secrets.token_hex(5)


# ARGV: cid, acc, route, retention, rows. `rows` is one string: per row
# kind (s|r) US to US text US zone-or-reason RS (US = \31, RS = \30), so the
# client sends one argument per chunk instead of four per row.
# Returns the row positions (0-based) that were duplicates of an earlier recipient.
WRITE_CHUNK = r"""
local P = 'smsq:'
local cid, acc, route, retention = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local ck = P .. 'c:' .. cid
local n = tonumber(redis.call('HGET', ck, 'next') or '0')
local dups, lists = {}, {}
local sched, rej = 0, 0
local pos = -1
local ROW = '([sr])\31([^\31]*)\31([^\31]*)\31([^\30]*)\30'
for kind, to, text, extra in string.gmatch(ARGV[5], ROW) do
  pos = pos + 1
  if kind == 's' and redis.call('SADD', ck .. ':dd', to) == 0 then
    dups[#dups + 1] = pos
  else
    local id = cid .. '.' .. n
    local k = P .. 'm:' .. id
    local f = {'id', id, 'job', cid, 'to', to, 'acc', acc, 'lane', 'bulk'}
    if route ~= '' then f[#f + 1] = 'route'; f[#f + 1] = route end
    if kind == 's' then
      f[#f + 1] = 'st'; f[#f + 1] = 'scheduled'
      if text ~= '' then f[#f + 1] = 'text'; f[#f + 1] = text end
      if not lists[extra] then lists[extra] = {} end
      local l = lists[extra]
      l[#l + 1] = n
      sched = sched + 1
    else
      f[#f + 1] = 'st'; f[#f + 1] = 'rejected'; f[#f + 1] = 'reason'; f[#f + 1] = extra
      rej = rej + 1
    end
    redis.call('HSET', k, unpack(f))
    if kind ~= 's' then redis.call('EXPIRE', k, retention) end
    n = n + 1
  end
end
for zone, ns in pairs(lists) do
  redis.call('RPUSH', ck .. ':w:' .. zone, unpack(ns))
  redis.call('SADD', ck .. ':zones', zone)
end
redis.call('HSET', ck, 'next', n)
local jk = P .. 'job:' .. cid
if sched > 0 then redis.call('HINCRBY', jk, 'st:scheduled', sched) end
if rej > 0 then redis.call('HINCRBY', jk, 'st:rejected', rej) end
redis.call('HINCRBY', jk, 'total', sched + rej)
redis.call('HINCRBY', ck, 'invalid', rej)
redis.call('HINCRBY', ck, 'duplicates', #dups)
return dups
"""

# Due campaigns: each is taken by exactly one caller (ZREM is the guard), even with two beats.
START_DUE = r"""
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 50)
local started = {}
for _, id in ipairs(ids) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    local ck = 'smsq:c:' .. id
    if redis.call('HGET', ck, 'status') == 'scheduled' then
      -- 'last' one second back: the first tick already has a second's credit
      redis.call('HSET', ck, 'status', 'running', 'started', ARGV[1], 'last', ARGV[1] - 1)
      redis.call('SADD', KEYS[2], id)
      started[#started + 1] = id
    end
  end
end
return started
"""

# Status change only from the expected statuses; returns the old status or false.
SET_STATUS = r"""
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return false end
for s in string.gmatch(ARGV[1], '[^,]+') do
  if s == cur then
    redis.call('HSET', KEYS[1], 'status', ARGV[2], 'reason', ARGV[3], 'changed', ARGV[4])
    return cur
  end
end
return false
"""

UNLOCK = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _text(raw: Mapping[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


class CampaignStore:
    """Every Redis access of the campaign code goes through here."""

    def __init__(self, client: redis.Redis, *, retention_days: float = 30.0) -> None:
        self.r: Any = client  # redis-py's stubs type replies as bytes | str | Awaitable
        self.retention = int(retention_days * 86400)
        self._write = client.register_script(WRITE_CHUNK)
        self._start = client.register_script(START_DUE)
        self._status = client.register_script(SET_STATUS)
        self._unlock = client.register_script(UNLOCK)

    # -- campaign hash -------------------------------------------------------------

    def create(self, cid: str, fields: Mapping[str, Any], job: Mapping[str, Any]) -> bool:
        """A new campaign in `importing`; False when the id is taken."""
        now = time.time()
        if not self.r.hsetnx(ckey(cid), "status", "importing"):
            return False
        with self.r.pipeline(transaction=True) as pipe:
            pipe.hset(ckey(cid), mapping={**_clean(fields), "id": cid, "created": now,
                                          "next": 0})
            pipe.hset(job_key(cid), mapping={**_clean(job), "created": now, "total": 0})
            pipe.zadd(CAMPAIGNS, {cid: now})
            pipe.execute()
        return True

    def get(self, cid: str) -> dict[str, str] | None:
        data = self.r.hgetall(ckey(cid))
        return _text(data) if data else None

    def job(self, cid: str) -> dict[str, str]:
        return _text(self.r.hgetall(job_key(cid)))

    def update(self, cid: str, **fields: Any) -> None:
        self.r.hset(ckey(cid), mapping=_clean(fields))

    def incr(self, cid: str, field: str, by: int) -> None:
        if by:
            self.r.hincrby(ckey(cid), field, by)

    def set_status(self, cid: str, expected: Sequence[str], new: str, reason: str = ""
                   ) -> str | None:
        old = self._status(keys=[ckey(cid)], args=[",".join(expected), new, reason,
                                                   time.time()])
        if old is None:
            return None
        if new in ("running", "paused"):
            self.r.sadd(ACTIVE, cid)
        elif new in ("completed", "cancelled", "failed"):
            self.r.srem(ACTIVE, cid)
            self.r.zrem(DUE, cid)
        return old.decode() if isinstance(old, bytes) else str(old)

    def ids(self, offset: int = 0, limit: int = 100) -> list[str]:
        return [m.decode() for m in self.r.zrevrange(CAMPAIGNS, offset, offset + limit - 1)]

    # -- importing -----------------------------------------------------------------

    def write_chunk(self, cid: str, acc: str, route: str, rows: str) -> list[int]:
        """`rows`: "kind\x1fto\x1ftext\x1fextra\x1e" per row (see WRITE_CHUNK)."""
        out = self._write(args=[cid, acc, route, self.retention, rows])
        return [int(x) for x in out]

    def finish_import(self, cid: str) -> None:
        self.r.unlink(f"{ckey(cid)}:dd")

    def drop(self, cid: str) -> None:
        """Remove a campaign whose import failed: its hash, lists, job and records."""
        last = int(self.r.hget(ckey(cid), "next") or 0)
        for start in range(0, last, 5000):
            self.r.unlink(*[f"{P}m:{cid}.{n}" for n in range(start, min(last, start + 5000))])
        zones = [z.decode() for z in self.r.smembers(f"{ckey(cid)}:zones")]
        self.r.unlink(ckey(cid), f"{ckey(cid)}:dd", f"{ckey(cid)}:zones", job_key(cid),
                      *[wait_key(cid, z) for z in zones])
        self.r.zrem(CAMPAIGNS, cid)
        self.r.zrem(DUE, cid)
        self.r.srem(ACTIVE, cid)

    # -- scheduling and release ------------------------------------------------------

    def schedule(self, cid: str, start: float) -> None:
        self.r.zadd(DUE, {cid: start})

    def start_due(self, now: float) -> list[str]:
        return [m.decode() for m in self._start(keys=[DUE, ACTIVE], args=[now])]

    def active(self) -> list[str]:
        return sorted(m.decode() for m in self.r.smembers(ACTIVE))

    def zones(self, cid: str) -> list[str]:
        return sorted(z.decode() for z in self.r.smembers(f"{ckey(cid)}:zones"))

    def waiting(self, cid: str) -> dict[str, int]:
        zones = self.zones(cid)
        with self.r.pipeline(transaction=False) as pipe:
            for zone in zones:
                pipe.llen(wait_key(cid, zone))
            return dict(zip(zones, (int(n) for n in pipe.execute()), strict=True))

    def peek(self, cid: str, zone: str, count: int) -> list[int]:
        return [int(n) for n in self.r.lrange(wait_key(cid, zone), 0, count - 1)]

    def trim(self, cid: str, zone: str, count: int) -> None:
        self.r.ltrim(wait_key(cid, zone), count, -1)

    @contextmanager
    def lock(self, cid: str, lease: float = 30.0, wait: float = 0.0) -> Iterator[bool]:
        """A lease on the campaign so that two ticks, or a tick and a cancel, never overlap."""
        token, key = secrets.token_hex(8), f"{ckey(cid)}:lock"
        deadline = time.monotonic() + wait
        got = bool(self.r.set(key, token, nx=True, px=int(lease * 1000)))
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
            got = bool(self.r.set(key, token, nx=True, px=int(lease * 1000)))
        try:
            yield got
        finally:
            if got:
                self._unlock(keys=[key], args=[token])


def _clean(fields: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in fields.items() if v is not None}
