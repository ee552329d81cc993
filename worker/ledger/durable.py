"""Writes that count only once replicas have them: Redis `WAIT` after the write.

Replication is asynchronous: a primary that dies takes its last writes with it,
and a failover promotes a replica that never saw them. Two writes must not be
lost that way: a job's records (a `submit` that returned promised them) and a
send claim (a message that left under a claim the new primary does not know of
is claimed and sent again). With `SMSQ_REDIS_MIN_REPLICAS` = n > 0 those writes
run with `WAIT n timeout` on the same connection, in one round trip (a pipeline):
`WAIT` counts the replicas that acknowledged everything this connection wrote.
Fewer than n in time: `NotReplicated`, and the caller keeps no promise.

`WAIT` is not consensus: the write stays on the primary (it is not undone), and
a replica that acknowledged may still lose the race to be promoted. See
docs/OPERATIONS.md ("Sentinel and failover").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.commands.core import Script

from worker.ledger.errors import ConfigurationError, LedgerUnavailable


class NotReplicated(LedgerUnavailable):
    """Fewer replicas than required acknowledged a write in time."""


@dataclass(frozen=True)
class Replicas:
    """How many replicas must acknowledge a durable write, and how long to wait (s)."""

    count: int = 0  # 0: do not wait (a single Redis, or replication's risk accepted)
    timeout: float = 1.0

    def __post_init__(self) -> None:
        if self.count < 0 or self.timeout <= 0:
            raise ConfigurationError("SMSQ_REDIS_MIN_REPLICAS must be >= 0 and "
                                     "SMSQ_REDIS_WAIT_TIMEOUT > 0")

    def run(self, client: redis.Redis, script: Script, args: Sequence[Any]) -> Any:
        """`script(args)`, then (count > 0) WAIT on the same connection."""
        if self.count <= 0:
            return script(args=list(args))
        with client.pipeline(transaction=False) as pipe:
            script(args=list(args), client=pipe)
            pipe.execute_command(  # type: ignore[no-untyped-call]
                "WAIT", self.count, max(1, int(self.timeout * 1000)))
            result, acked = pipe.execute()
        if int(acked) < self.count:
            raise NotReplicated(f"only {int(acked)} of {self.count} Redis replicas "
                                f"acknowledged within {self.timeout:g}s")
        return result


NO_WAIT = Replicas()
