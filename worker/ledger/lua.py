"""Lua for the ledger's conditional transitions: one script call is one atomic step.

Every state change of a message goes through `tr()`: it checks the current
status against the expected ones, writes the fields, moves the id between
the indexes and adjusts the job's counters, so that a redelivered task, a
second worker or a second beat can never move a message twice.

The states it may move between are `worker.ledger.lifecycle.TRANSITIONS`, pasted in
as the ALLOWED table: a move the table does not allow is refused here too.

Index keys are derived inside the script from the `smsq:` prefix; all keys of
one smsq deployment live on one Redis (not a cluster).
"""

from worker.ledger.lifecycle import lua_tables

_TR = "local P = 'smsq:'\n" + lua_tables() + r"""
local function tr(id, expected, new, now, retention, score, fields)
  local k = P .. 'm:' .. id
  local cur = redis.call('HGET', k, 'st')
  if not cur then return 0 end
  if FINAL[cur] then return 0 end
  local nxt = ALLOWED[cur]
  if not (nxt and nxt[new]) then return 0 end
  if expected ~= '' then
    local ok = false
    for s in string.gmatch(expected, '[^,]+') do
      if s == cur then ok = true end
    end
    if not ok then return 0 end
  end
  local oldacc = redis.call('HGET', k, 'acc')
  local bulk = redis.call('HGET', k, 'lane') == 'bulk'
  for i = 1, #fields, 2 do
    if fields[i + 1] == '' then
      redis.call('HDEL', k, fields[i])
    else
      redis.call('HSET', k, fields[i], fields[i + 1])
    end
  end
  redis.call('HSET', k, 'st', new, 'updated', now)
  redis.call('ZREM', P .. 'q', id)
  redis.call('ZREM', P .. 's', id)
  redis.call('ZREM', P .. 'u', id)
  if oldacc then
    redis.call('ZREM', P .. 'p:' .. oldacc, id)
    if bulk then redis.call('ZREM', P .. 'qb:' .. oldacc, id) end
  end
  if new == 'queued' and bulk then
    redis.call('ZADD', P .. 'qb:' .. redis.call('HGET', k, 'acc'), score, id)
  elseif new == 'queued' then
    redis.call('ZADD', P .. 'q', score, id)
  elseif new == 'sending' then
    redis.call('ZADD', P .. 's', score, id)
  elseif new == 'sent' then
    redis.call('ZADD', P .. 'p:' .. redis.call('HGET', k, 'acc'), score, id)
  elseif new == 'unknown' and score > 0 then
    redis.call('ZADD', P .. 'u', score, id)
  end
  if cur ~= new then
    local jk = P .. 'job:' .. redis.call('HGET', k, 'job')
    redis.call('HINCRBY', jk, 'st:' .. cur, -1)
    redis.call('HINCRBY', jk, 'st:' .. new, 1)
    if FINAL[new] then
      redis.call('EXPIRE', k, retention)
      redis.call('EXPIRE', jk, retention)
      local pid = redis.call('HGET', k, 'pid')
      local prov = redis.call('HGET', k, 'prov')
      if pid and prov then redis.call('EXPIRE', P .. 'pid:' .. prov .. ':' .. pid, retention) end
    end
  end
  return 1
end
"""

# ARGV: id, expected, new, now, retention, score, field, value, ...
TRANSITION_ONE = _TR + r"""
local fields = {}
for i = 7, #ARGV do fields[#fields + 1] = ARGV[i] end
return tr(ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), fields)
"""

# ARGV: expected, new, now, retention, score, nfields, field, value, ..., id, id, ...
# Returns the ids that moved.
TRANSITION_MANY = _TR + r"""
local nf = tonumber(ARGV[6])
local fields = {}
for i = 7, 6 + nf do fields[#fields + 1] = ARGV[i] end
local moved = {}
for i = 7 + nf, #ARGV do
  if tr(ARGV[i], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), fields) == 1 then
    moved[#moved + 1] = ARGV[i]
  end
end
return moved
"""

# Take up to ARGV[3] ids due by ARGV[1] from index KEYS[1], re-scoring them to
# ARGV[2] so that a second caller does not take them again.
TAKE_DUE = r"""
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local args = {}
for i, id in ipairs(ids) do
  args[#args + 1] = ARGV[2]
  args[#args + 1] = id
  if #args >= 2000 or i == #ids then
    redis.call('ZADD', KEYS[1], unpack(args))
    args = {}
  end
end
return ids
"""

# ARGV: now, retention, JSON [[id, expected, new, score, [field, value, ...]], ...]
# One call for a whole batch of per-message transitions (each with its own fields):
# the worker packs one argument instead of ~15 per message. Returns 1/0 per step.
TRANSITION_STEPS = _TR + r"""
local steps = cjson.decode(ARGV[3])
local now, retention = ARGV[1], tonumber(ARGV[2])
local out = {}
for i, s in ipairs(steps) do
  out[i] = tr(s[1], s[2], s[3], now, retention, tonumber(s[4]), s[5])
end
return out
"""

# A send request's outcome in one call. ARGV: now, retention, provider, score of the
# first status check, nshared, [field, value] * nshared / 2 (the fields every accepted
# message gets), JSON of the other steps (as TRANSITION_STEPS), then six per accepted
# message: id, report key, gateway id, cost, segments, raw code.
# An accepted message moves sending -> sent, `pid:<provider>:<key>` maps it (so a
# report finds it from the moment it is `sent`, never before) and a report parked
# under that key, if one came first, is taken. Returns {1/0 per other step, 1/0 per
# accepted message, {id, key, parked report, ...}}.
RECORD_SENDS = _TR + r"""
local now, retention, prov = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local score, ns = tonumber(ARGV[4]), tonumber(ARGV[5])
local shared = {}
for i = 6, 5 + ns do shared[#shared + 1] = ARGV[i] end
local others, sent, parked = {}, {}, {}
for i, s in ipairs(cjson.decode(ARGV[6 + ns])) do
  others[i] = tr(s[1], s[2], s[3], now, retention, tonumber(s[4]), s[5])
end
for i = 7 + ns, #ARGV, 6 do
  local id, key = ARGV[i], ARGV[i + 1]
  local fields = {'pid', ARGV[i + 2], 'cost', ARGV[i + 3], 'seg', ARGV[i + 4],
                  'raw', ARGV[i + 5], unpack(shared)}
  sent[#sent + 1] = tr(id, 'sending', 'sent', now, retention, score, fields)
  redis.call('SET', P .. 'pid:' .. prov .. ':' .. key, id, 'EX', retention)
  local ok = P .. 'orphan:' .. prov .. ':' .. key
  local report = redis.call('GET', ok)
  if report then
    redis.call('DEL', ok)
    redis.call('ZREM', P .. 'orphans', prov .. ':' .. key)
    parked[#parked + 1] = id
    parked[#parked + 1] = key
    parked[#parked + 1] = report
  end
end
return {others, sent, parked}
"""

_PICK = r"""
local function pick(id, names)
  local vals = redis.call('HMGET', P .. 'm:' .. id, unpack(names))
  local rec, any = {}, false
  for j = 1, #names do
    if vals[j] then
      rec[names[j]] = vals[j]
      any = true
    end
  end
  if not any then return false end
  rec.id = id
  return rec
end

local function encode(list)
  if #list == 0 then return '[]' end
  return cjson.encode(list)
end
"""

# ARGV: account, now, retention, lease expiry, nfields, field, ..., njobfields,
# jobfield, ..., id, id, ...
# Claims (queued -> sending, wire 0) the ids still queued on `account` and returns
# {JSON list of the claimed records' named fields, JSON {job: its named fields}}: one
# round trip and one C-level decode for a whole batch, instead of a read of every field
# of every record and of the job.
CLAIM = _TR + _PICK + r"""
local acc, now, retention, lease = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local nf = tonumber(ARGV[5])
local names, jnames = {}, {}
for i = 6, 5 + nf do names[#names + 1] = ARGV[i] end
local nj = tonumber(ARGV[6 + nf])
for i = 7 + nf, 6 + nf + nj do jnames[#jnames + 1] = ARGV[i] end
local wire = {'wire', '0'}
local out, jobs = {}, {}
for i = 7 + nf + nj, #ARGV do
  local id = ARGV[i]
  local cur = redis.call('HMGET', P .. 'm:' .. id, 'st', 'acc', 'job')
  if cur[1] == 'queued' and cur[2] == acc
      and tr(id, 'queued', 'sending', now, retention, lease, wire) == 1 then
    out[#out + 1] = pick(id, names)
    if nj > 0 and cur[3] and not jobs[cur[3]] then
      local vals = redis.call('HMGET', P .. 'job:' .. cur[3], unpack(jnames))
      local job = {}
      for j = 1, nj do
        if vals[j] then job[jnames[j]] = vals[j] end
      end
      jobs[cur[3]] = job
    end
  end
end
return {encode(out), cjson.encode(jobs)}
"""

# ARGV: nfields, field, ..., id, id, ...: the named fields of each record as one JSON
# list (false for a record that does not exist).
PICK_MANY = "local P = 'smsq:'\n" + _PICK + r"""
local nf = tonumber(ARGV[1])
local names = {}
for i = 2, 1 + nf do names[#names + 1] = ARGV[i] end
local out = {}
for i = 2 + nf, #ARGV do out[#out + 1] = pick(ARGV[i], names) end
return encode(out)
"""

# ARGV: now, then per message: id, next check time, chk, raw, cost ('' leaves that
# field as it is). A message still `sent` gets its next check in its account's
# pending index; anything else (a report made it final meanwhile) is left alone.
# The non-final majority of a poll pass, without the general transition's work.
RESCHEDULE = r"""
local P = 'smsq:'
local now, n = ARGV[1], 0
for i = 2, #ARGV, 5 do
  local id = ARGV[i]
  local k = P .. 'm:' .. id
  local cur = redis.call('HMGET', k, 'st', 'acc')
  if cur[1] == 'sent' and cur[2] then
    local set = {'updated', now}
    if ARGV[i + 2] ~= '' then set[#set + 1] = 'chk'; set[#set + 1] = ARGV[i + 2] end
    if ARGV[i + 3] ~= '' then set[#set + 1] = 'raw'; set[#set + 1] = ARGV[i + 3] end
    if ARGV[i + 4] ~= '' then set[#set + 1] = 'cost'; set[#set + 1] = ARGV[i + 4] end
    redis.call('HSET', k, unpack(set))
    redis.call('ZADD', P .. 'p:' .. cur[2], ARGV[i + 1], id)
    n = n + 1
  end
end
return n
"""

# ARGV: provider, key, report JSON, ttl, cap. Parks a delivery report whose gateway id
# is not mapped yet, unless the mapping appeared since the caller looked: then returns
# the message id instead (the check and the park are one atomic step, so a report
# can never be parked just after its send result took the parked ones). Parked
# reports are indexed in `orphans` by expiry; when `cap` of them are alive a new one
# is refused (returns 0; 1 when parked), so unknown ids cannot fill Redis.
PARK_ORPHAN = r"""
local id = redis.call('GET', 'smsq:pid:' .. ARGV[1] .. ':' .. ARGV[2])
if id then return id end
local key, member = 'smsq:orphan:' .. ARGV[1] .. ':' .. ARGV[2], ARGV[1] .. ':' .. ARGV[2]
local t = redis.call('TIME')
local now, ttl = tonumber(t[1]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', 'smsq:orphans', '-inf', now)
if redis.call('EXISTS', key) == 0 and redis.call('ZCARD', 'smsq:orphans') >= tonumber(ARGV[5])
then return 0 end
redis.call('SET', key, ARGV[3], 'EX', ttl)
redis.call('ZADD', 'smsq:orphans', now + ttl, member)
return 1
"""

# ARGV: id, id, ...: the request for these messages is about to leave. `bref` names
# the batch (its first message: the client id it goes out under), so that reconcile
# can find every message of a request whose outcome a crash left unknown.
MARK_ON_WIRE = r"""
local held = tonumber(ARGV[1])
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', 'smsq:s', ARGV[i])
  if not score or tonumber(score) ~= held
      or redis.call('HGET', 'smsq:m:' .. ARGV[i], 'st') ~= 'sending' then
    return 0
  end
end
for i = 2, #ARGV do
  local k = 'smsq:m:' .. ARGV[i]
  redis.call('HSET', k, 'wire', '1', 'bref', ARGV[2])
  redis.call('HINCRBY', k, 'att', 1)
end
return #ARGV - 1
"""
