"""The ledger: every message's record in Redis, its state machine and its indexes.

Keys (prefix `smsq:`):
  m:<id>             hash, one message (status `st`, account `acc`, attempts `att`, ...)
  job:<job>          hash, the job's shared fields and `st:<status>` counters
  q / s / u          sorted sets: queued (score = release time), sending (lease
                     expiry), unknown (next reconcile lookup)
  qb:<account>       sorted set, the bulk lane's queued messages (released a few
                     seconds of the account's limit at a time)
  p:<account>        sorted set, sent messages by next status check
  pid:<prov>:<pid>   the gateway's message id -> our id
  orphan:<prov>:<pid> a delivery report that arrived before its send result
  orphans           zset: parked reports by expiry (the total is capped)
  idem:<key>         an idempotency key's content digest and job (written with the job)
  jobs               sorted set of job ids by creation time
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import redis

from worker.ledger.durable import NO_WAIT, Replicas
from worker.ledger.errors import maps_redis_errors
from worker.ledger.jobs import JobWriter
from worker.ledger.lease import RENEW
from worker.ledger.lifecycle import Step, check
from worker.ledger.lua import (
    CLAIM,
    MARK_ON_WIRE,
    PARK_ORPHAN,
    PICK_MANY,
    RECORD_SENDS,
    RESCHEDULE,
    TAKE_DUE,
    TRANSITION_MANY,
    TRANSITION_ONE,
    TRANSITION_STEPS,
)
from worker.ledger.records import Parked, Recheck, Record, Sent

P = "smsq:"
QUEUED, SENDING, UNKNOWN = P + "q", P + "s", P + "u"


def msg_key(msg_id: str) -> str:
    return f"{P}m:{msg_id}"


def job_key(job_id: str) -> str:
    return f"{P}job:{job_id}"


def bulk_key(account: str) -> str:
    return f"{P}qb:{account}"


def pending_key(account: str) -> str:
    return f"{P}p:{account}"


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _flat(fields: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for key, value in fields.items():
        out += [key, "" if value is None else str(value)]
    return out


def _steps_json(steps: Sequence[Step]) -> str:
    return json.dumps([[s.id, ",".join(s.expected), s.new, s.score, _flat(s.fields)]
                       for s in steps])


@maps_redis_errors
class Ledger:
    """Message records and their conditional transitions; Redis being unreachable is
    LedgerUnavailable from every method."""

    def __init__(self, client: redis.Redis, *, retention_days: float = 30.0,
                 replicas: Replicas = NO_WAIT) -> None:
        self.r = client
        self.replicas = replicas  # claims and jobs count once this many replicas have them
        self.retention = int(retention_days * 86400)
        self._one = client.register_script(TRANSITION_ONE)
        self._many = client.register_script(TRANSITION_MANY)
        self._take = client.register_script(TAKE_DUE)
        self._steps = client.register_script(TRANSITION_STEPS)
        self._wire = client.register_script(MARK_ON_WIRE)
        self._claim = client.register_script(CLAIM)
        self._sends = client.register_script(RECORD_SENDS)
        self._pick = client.register_script(PICK_MANY)
        self._recheck = client.register_script(RESCHEDULE)
        self._park = client.register_script(PARK_ORPHAN)
        self._renew = client.register_script(RENEW)
        self.jobs = JobWriter(client, self.retention, replicas)  # the one way a job is written

    # -- reading -----------------------------------------------------------------

    def get(self, msg_id: str) -> Record | None:
        data = self.r.hgetall(msg_key(msg_id))
        return {_s(k): _s(v) for k, v in data.items()} if data else None

    def get_many(self, ids: Sequence[str]) -> list[Record | None]:
        with self.r.pipeline(transaction=False) as pipe:
            for msg_id in ids:
                pipe.hgetall(msg_key(msg_id))
            rows = pipe.execute()
        return [{_s(k): _s(v) for k, v in row.items()} if row else None
                for row in rows]

    def pick_many(self, ids: Sequence[str], fields: Sequence[str]) -> list[Record | None]:
        """Only the named fields of each record (plus `id`), None for a missing record."""
        if not ids:
            return []
        rows = json.loads(self._pick(args=[len(fields), *fields, *ids]))
        return [row or None for row in rows]

    def job(self, job_id: str) -> Record | None:
        data = self.r.hgetall(job_key(job_id))
        return {_s(k): _s(v) for k, v in data.items()} if data else None

    def job_ids(self, job_id: str) -> list[str]:
        total = int((self.job(job_id) or {}).get("total", "0"))
        return [f"{job_id}.{i}" for i in range(total)]

    # -- transitions ---------------------------------------------------------------

    def transition(self, msg_id: str, expected: Sequence[str], new: str, *,
                   score: float = 0.0, **fields: Any) -> bool:
        check(expected, new)
        args: list[Any] = [msg_id, ",".join(expected), new, time.time(), self.retention, score,
                           *_flat(fields)]
        return bool(self._one(args=args))

    def transition_many(self, ids: Sequence[str], expected: Sequence[str], new: str, *,
                        score: float = 0.0, **fields: Any) -> list[str]:
        check(expected, new)
        if not ids:
            return []
        flat = _flat(fields)
        args: list[Any] = [",".join(expected), new, time.time(), self.retention, score,
                           len(flat), *flat, *ids]
        return [_s(m) for m in self._many(args=args)]

    def claim(self, ids: Sequence[str], account: str, lease_until: float,
              fields: Sequence[str], job_fields: Sequence[str] = ()
              ) -> tuple[list[Record], dict[str, Record]]:
        """queued -> sending (wire 0) for the ids still queued on `account`, in one call.

        Returns the claimed records' named fields (plus `id`), and each of their jobs'
        named `job_fields` by job id.
        """
        if not ids:
            return [], {}
        args: list[Any] = [account, time.time(), self.retention, lease_until, len(fields),
                           *fields, len(job_fields), *job_fields, *ids]
        rows, jobs = self._claim(args=args)
        return list(json.loads(rows)), dict(json.loads(jobs))

    def renew(self, ids: Sequence[str], held: float, until: float) -> list[str]:
        """The ids still claimed under lease `held`, their lease moved to `until`. Durable
        (Replicas): only a claim the replicas have is used, so a send never leaves under a
        claim a failover could lose (NotReplicated otherwise)."""
        if not ids:
            return []
        held_now = self.replicas.run(self.r, self._renew, [repr(held), repr(until), *ids])
        return [_s(m) for m in held_now]

    def pipeline_transitions(self, steps: Sequence[Step]) -> list[bool]:
        """Several single-message transitions in one script call (one argument in all)."""
        if not steps:
            return []
        done = self._steps(args=[time.time(), self.retention, _steps_json(steps)])
        return [bool(x) for x in done]

    def record_sends(self, provider: str, score: float, shared: Mapping[str, Any],
                     sent: Sequence[Sent], others: Sequence[Step]
                     ) -> tuple[list[bool], list[bool], list[Parked]]:
        """A send request's outcome in one call: each accepted message -> `sent` (score:
        its first status check; `shared`: fields they all get), its gateway id mapped and
        a report parked for it taken; `others` as `pipeline_transitions`. Returns the
        outcome per other step and per accepted message, and the parked reports."""
        flat = _flat(shared)
        args: list[Any] = [time.time(), self.retention, provider, score, len(flat), *flat,
                           _steps_json(others)]
        for row in sent:
            args.extend(row.args())
        done, moved, raw = self._sends(args=args)
        parked = [(_s(raw[i]), _s(raw[i + 1]), json.loads(raw[i + 2]))
                  for i in range(0, len(raw), 3)]
        return [bool(x) for x in done], [bool(x) for x in moved], parked

    def reschedule(self, checks: Sequence[Recheck]) -> int:
        """Next status checks for messages still `sent`, in one call; returns how many."""
        if not checks:
            return 0
        args: list[Any] = [time.time()]
        for later in checks:
            args.extend(later.args())
        return int(self._recheck(args=args))

    def take_due(self, index: str, now: float, rescore_to: float, limit: int) -> list[str]:
        """Ids due in `index`, re-scored so that a concurrent caller skips them."""
        return [_s(m) for m in self._take(keys=[index], args=[now, rescore_to, limit])]

    def mark_on_wire(self, ids: Sequence[str], held: float) -> bool:
        """Record that the request for these messages is about to leave, if every one is
        still `sending` under lease `held`; else write nothing and say False (the lease
        ran out meanwhile: another worker may hold them now, and the request must not go).
        Durable (Replicas): a failover must not turn a request that left into one that did
        not, which reconciliation would send again (NotReplicated: the request stays)."""
        return bool(ids) and bool(self.replicas.run(self.r, self._wire, [repr(held), *ids]))

    def set_fields(self, msg_id: str, **fields: Any) -> None:
        self.r.hset(msg_key(msg_id), mapping={k: str(v) for k, v in fields.items()})

    # -- gateway ids and early reports ---------------------------------------------

    def map_pids(self, provider: str, pairs: Mapping[str, str]) -> None:
        """gateway id -> our id, so that delivery reports find their message."""
        if not pairs:
            return
        with self.r.pipeline(transaction=False) as pipe:
            for pid, msg_id in pairs.items():
                pipe.set(f"{P}pid:{provider}:{pid}", msg_id, ex=self.retention)
            pipe.execute()

    def find_pids(self, provider: str, pids: Sequence[str]) -> list[str | None]:
        if not pids:
            return []
        raw = self.r.mget([f"{P}pid:{provider}:{pid}" for pid in pids])
        return [_s(v) if v else None for v in raw]

    def park_orphan(self, provider: str, pid: str, report: Mapping[str, Any], *,
                    ttl: float = 3600.0, cap: int = 20_000) -> str | bool:
        """Park a report for a gateway id not mapped yet (True; False when `cap` reports are
        parked already); the message id instead when the mapping exists by now."""
        found = self._park(args=[provider, pid, json.dumps(report), max(int(ttl), 1), cap])
        return _s(found) if isinstance(found, bytes) else bool(found)
