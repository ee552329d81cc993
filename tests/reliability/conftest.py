"""Reliability fixtures: a real redis-server per module, an Engine over the in-process
sandbox whose enqueued tasks run synchronously, and helpers to drive the sweeps."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import redis

from providers.sandbox import Sandbox
from providers.sandbox.core import SandboxState
from tests.conftest import FakeClock
from worker import polling, reconcile, sending, settings
from worker.engine import Engine
from worker.local.embedded import EmbeddedRedis

FINAL = {"delivered", "undelivered", "expired", "rejected", "failed", "cancelled"}


@pytest.fixture(scope="module")
def redis_server() -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis().start()
    yield server
    server.cleanup()


@pytest.fixture
def rclient(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield client
    client.close()


def snapshot(client: redis.Redis) -> dict[bytes, Any]:
    """Every key with its type and value: to prove nothing was written."""
    out: dict[bytes, Any] = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        if kind == "string":
            out[key] = client.get(key)
        elif kind == "hash":
            out[key] = client.hgetall(key)
        elif kind == "list":
            out[key] = client.lrange(key, 0, -1)
        elif kind == "set":
            out[key] = client.smembers(key)
        elif kind == "zset":
            out[key] = client.zrange(key, 0, -1, withscores=True)
        else:
            out[key] = kind
    return out


class SyncRunner:
    """An Engine over the in-process sandbox; enqueued tasks run when `drain()` is called."""

    def __init__(self, client: redis.Redis, sandbox: Sandbox, clock: FakeClock,
                 **overrides: Any) -> None:
        cfg = settings.load({"SMSQ_REDIS_URL": "redis://unused"})
        accounts = {name: sandbox.account(name) for name in sandbox.sims}
        # The limiter holds on Redis time while this clock is fake: holds of at most 1 s
        # (slept within the limiter's max wait) keep the rounds moving.
        defaults: dict[str, Any] = {"accounts": accounts, "circuit_threshold": 10_000,
                                    "max_attempts": 5, "poll_first_after": 5.0,
                                    "poll_interval": 5.0, "throttle_max": 1.0}
        cfg = dataclasses.replace(cfg, **{**defaults, **overrides})
        self.tasks: list[tuple[str, dict[str, Any]]] = []
        self.clock = clock
        self.sandbox = sandbox
        self.engine = Engine(cfg, client=client, enqueue=self._enqueue,
                             session=sandbox.session(), clock=clock)

    def _enqueue(self, name: str, kwargs: Mapping[str, Any], queue: str) -> None:
        self.tasks.append((name, dict(kwargs)))

    def drain(self) -> None:
        while self.tasks:
            name, kw = self.tasks.pop(0)
            if name == "smsq.deliver":
                sending.deliver(self.engine, kw["ids"], kw["account"])
            elif name == "smsq.check_status":
                polling.check_status(self.engine, kw["ids"], kw["account"])
            else:
                raise AssertionError(f"unexpected task {name}")

    def submit(self, account: str, phones: list[str], text: str, job_id: str) -> list[str]:
        from worker.producer import submit as producer

        p = producer.plan(self.engine, phones, text, account=account)
        return producer.write(self.engine, p, job_id=job_id).ids

    def round(self, step: float) -> None:
        """One beat period: release due work, reclaim, resolve, poll; then time passes."""
        self.drain()
        reconcile.release(self.engine)
        self.drain()
        reconcile.reconcile(self.engine)
        polling.poll_pending(self.engine)
        self.drain()
        self.clock.advance(step)

    def settle(self, ids: list[str], *, rounds: int = 100,
               step: float = 300.0) -> list[dict[str, str]]:
        """Run beat until every message is final or unknown with nothing left to look up."""
        for _ in range(rounds):
            self.round(step)
            if self.settled(ids):
                break
        return [r for r in self.engine.ledger.get_many(ids) if r]

    def settled(self, ids: list[str]) -> bool:
        rows = self.engine.ledger.get_many(ids)
        r = self.engine.r
        return (all(row and (row["st"] in FINAL or row["st"] == "unknown") for row in rows)
                and r.zcard("smsq:u") == 0 and r.zcard("smsq:q") == 0
                and r.zcard("smsq:s") == 0)

    def sandbox_count(self) -> Counter[tuple[str, str, str]]:
        with self.sandbox.state.lock:
            return Counter((m.gateway, m.phone, m.text) for m in self.sandbox.state.messages)


@pytest.fixture
def fclock() -> FakeClock:
    return FakeClock(time.time())


@pytest.fixture
def runner(rclient: redis.Redis, fclock: FakeClock) -> SyncRunner:
    sandbox = Sandbox(SandboxState(clock=fclock, queued_for=1.0, final_after=5.0))
    return SyncRunner(rclient, sandbox, fclock)
