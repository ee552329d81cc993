"""Renewing a send claim chunk by chunk, so a long task never sends what it lost.

A deliver task claims all its ids at once, then sends them in chunks; at one
request per recipient a task can outlive its lease. The lease sweep then puts
the not-yet-sent ids back to `queued` and another worker may claim them. Right
before each chunk leaves, the task renews the claim of that chunk's ids — only
those still `sending` under the lease it set itself — and sends only those.
The request leaves only if, when its rate-limit slot is granted, every id is still
held under that renewed lease (`MARK_ON_WIRE`): a process paused longer than the
lease between the renewal and the send raises LeaseLost and sends nothing.
"""


class LeaseLost(Exception):
    """The chunk's claim ran out before its request left: nothing is sent."""

# ARGV: the lease the caller claimed with, the new lease, id, id, ...
# Returns the ids still held (their lease moved to the new one).
RENEW = r"""
local held, new = tonumber(ARGV[1]), ARGV[2]
local out = {}
for i = 3, #ARGV do
  local score = redis.call('ZSCORE', 'smsq:s', ARGV[i])
  if score and tonumber(score) == held
      and redis.call('HGET', 'smsq:m:' .. ARGV[i], 'st') == 'sending' then
    redis.call('ZADD', 'smsq:s', new, ARGV[i])
    out[#out + 1] = ARGV[i]
  end
end
return out
"""
