"""Lua for the ledger's conditional transitions: one script call is one atomic step.

Every state change of a message goes through `tr()`: it checks the current
status against the expected ones, writes the fields, moves the id between
the indexes and adjusts the job's counters, so that a redelivered task, a
second worker or a second beat can never move a message twice.

Index keys are derived inside the script from the `smsq:` prefix; all keys of
one smsq deployment live on one Redis (not a cluster).
"""

_TR = r"""
local P = 'smsq:'
local FINAL = {delivered=1, undelivered=1, expired=1, rejected=1, failed=1, cancelled=1}

local function tr(id, expected, new, now, retention, score, fields)
  local k = P .. 'm:' .. id
  local cur = redis.call('HGET', k, 'st')
  if not cur then return 0 end
  if FINAL[cur] then return 0 end
  if expected ~= '' then
    local ok = false
    for s in string.gmatch(expected, '[^,]+') do
      if s == cur then ok = true end
    end
    if not ok then return 0 end
  end
  local oldacc = redis.call('HGET', k, 'acc')
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
  if oldacc then redis.call('ZREM', P .. 'p:' .. oldacc, id) end
  if new == 'queued' then
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
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
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

# ARGV: id, id, ...: the request for these messages is about to leave.
MARK_ON_WIRE = r"""
for _, id in ipairs(ARGV) do
  local k = 'smsq:m:' .. id
  redis.call('HSET', k, 'wire', '1')
  redis.call('HINCRBY', k, 'att', 1)
end
return #ARGV
"""
