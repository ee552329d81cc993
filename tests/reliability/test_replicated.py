"""Durable acceptance and claims (SMSQ_REDIS_MIN_REPLICAS): a real primary and a real
replica (two redis-server processes, `REPLICAOF`), the in-process sandbox.

A submit returns only once its job reached the replica; a chunk leaves only once its
claim did. With the replica gone, submit refuses (LedgerUnavailable) and a claimed
chunk is not sent but released for a retry.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest
import redis

from providers.sandbox import Sandbox
from providers.sandbox.core import SandboxState
from tests.conftest import FakeClock
from tests.reliability.conftest import SyncRunner
from worker import sending
from worker.ledger.durable import NotReplicated, Replicas
from worker.ledger.errors import ConfigurationError, LedgerUnavailable
from worker.ledger.jobs import JobWriter, NewRecord, Written
from worker.local.replication import ReplicatedRedis, wait_until

PHONES = [f"+7916{n:07d}" for n in range(1, 21)]


@pytest.fixture(scope="module")
def pair() -> Iterator[ReplicatedRedis]:
    rr = ReplicatedRedis().start()
    yield rr
    rr.cleanup()


@pytest.fixture
def primary(pair: ReplicatedRedis) -> Iterator[redis.Redis]:
    if pair.replica.proc is None:  # a test stopped it: bring it back before the next
        pair.replica.start()
    pair.replicate(pair.replica, pair.primary)
    client = redis.Redis(port=pair.primary.port)
    client.flushall()
    yield client
    client.close()


def make_runner(client: redis.Redis, **overrides: object) -> SyncRunner:
    clock = FakeClock(time.time())
    sandbox = Sandbox(SandboxState(clock=clock, queued_for=1.0, final_after=5.0))
    return SyncRunner(client, sandbox, clock, redis_min_replicas=1, redis_wait_timeout=2.0,
                      **overrides)


def test_submit_returns_once_the_replica_has_the_job(pair: ReplicatedRedis,
                                                     primary: redis.Redis) -> None:
    runner = make_runner(primary)
    ids = runner.submit("smsclub", PHONES, "hello", job_id="j-repl")
    on_replica = pair.client(pair.replica)
    # No wait here: WAIT already confirmed the replica has every record.
    assert on_replica.hget("smsq:job:j-repl", "total") == str(len(PHONES))
    assert all(on_replica.hget(f"smsq:m:{i}", "st") == "queued" for i in ids)


def test_with_the_replica_down_submit_refuses(pair: ReplicatedRedis,
                                              primary: redis.Redis) -> None:
    runner = make_runner(primary)
    pair.replica.stop()
    with pytest.raises(LedgerUnavailable, match="0 of 1 Redis replicas"):
        runner.submit("smsclub", PHONES, "hello", job_id="j-down")
    assert not runner.tasks  # nothing enqueued: the caller was promised nothing


def test_a_duplicate_write_is_confirmed_only_once_the_replica_has_the_first_one(
        pair: ReplicatedRedis, primary: redis.Redis) -> None:
    """The retry of a refused submit finds its job written (duplicate) and would write
    nothing itself: its WAIT, on a connection whose own last write is older, must still
    cover the first write (pooled connections are handed out in any order)."""
    records = [NewRecord(to) for to in PHONES[:3]]

    def write(client: redis.Redis, timeout: float = 0.3) -> Written:
        return JobWriter(client, 3600, Replicas(1, timeout)).create(
            "j-idem", {"text": "hi"}, records, digest="d1", now=time.time(),
            release_at=time.time(), account="smsclub", idempotency_key="k1")

    older = redis.Redis(port=pair.primary.port, single_connection_client=True)
    older.set("smsq:other", "1")  # this connection's last write: replicated long ago
    assert pair.replica.proc is not None
    os.kill(pair.replica.proc.pid, signal.SIGSTOP)  # connected, but acknowledging nothing
    try:
        with pytest.raises(NotReplicated):
            write(primary)
        with pytest.raises(NotReplicated):  # the retry comes on the older connection
            write(older)
    finally:
        os.kill(pair.replica.proc.pid, signal.SIGCONT)
    again = write(older, timeout=10.0)  # the replica catches up (a loaded machine: slowly)
    assert again.outcome == "duplicate" and again.job_id == "j-idem"
    assert pair.client(pair.replica).hget("smsq:job:j-idem", "total") == "3"


def test_a_claim_the_replica_lacks_is_not_used(pair: ReplicatedRedis,
                                               primary: redis.Redis) -> None:
    runner = make_runner(primary)
    ids = runner.submit("smsclub", PHONES, "hello", job_id="j-claim")
    runner.tasks.clear()
    pair.replica.stop()
    counts = sending.deliver(runner.engine, ids, "smsclub")
    assert runner.sandbox_count() == {}  # nothing left for the gateway
    assert counts == {"throttled": len(PHONES)}
    rows = runner.engine.ledger.get_many(ids)
    assert [r["st"] for r in rows if r] == ["queued"] * len(PHONES)  # released for a retry
    assert primary.zcard("smsq:s") == 0 and primary.zcard("smsq:q") == len(PHONES)
    # The replica back: the same messages are claimed again, and sent once each.
    pair.replica.start()
    pair.replicate(pair.replica, pair.primary)
    counts = sending.deliver(runner.engine, ids, "smsclub")
    assert sum(runner.sandbox_count().values()) == len(PHONES)
    assert max(runner.sandbox_count().values()) == 1


def test_without_min_replicas_nothing_waits(pair: ReplicatedRedis,
                                            primary: redis.Redis) -> None:
    runner = make_runner(primary)
    runner.engine.ledger.replicas = Replicas()
    runner.engine.ledger.jobs.replicas = Replicas()
    pair.replica.stop()
    ids = runner.submit("smsclub", PHONES[:2], "x", job_id="j-async")
    sending.deliver(runner.engine, ids, "smsclub")
    assert sum(runner.sandbox_count().values()) == 2


def test_replicas_setting_is_checked() -> None:
    from worker import settings

    with pytest.raises(ConfigurationError, match="SMSQ_REDIS_MIN_REPLICAS"):
        Replicas(-1)
    cfg = settings.load({"SMSQ_REDIS_MIN_REPLICAS": "2", "SMSQ_REDIS_WAIT_TIMEOUT": "0.5"})
    assert (cfg.redis_min_replicas, cfg.redis_wait_timeout) == (2, 0.5)
    assert wait_until(lambda: True, 0.1)


def test_the_on_wire_mark_is_durable_too(pair: ReplicatedRedis, primary: redis.Redis) -> None:
    """A request that left must never look, after a failover, like one that did not."""
    runner = make_runner(primary)
    ids = runner.submit("smsclub", PHONES[:2], "x", job_id="j-wire")
    lease = time.time() + 60
    runner.engine.ledger.claim(ids, "smsclub", lease, ("job",))
    pair.replica.stop()
    with pytest.raises(NotReplicated):
        runner.engine.ledger.mark_on_wire(ids, lease)
