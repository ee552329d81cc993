"""Crashes with real processes: a 10,000-message run across all five gateways survives
five worker SIGKILLs, a beat kill and a Redis restart (append-only) without a message
lost or sent twice; a graceful shutdown mid-batch loses nothing; a 30-second Redis outage
is survived by workers and beat and refused clearly to producers."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import redis
from celery import Celery

from providers.sandbox.core import Fault
from tests.integration.conftest import use_stack, wait_for
from worker import api, settings
from worker.engine import Engine, redis_client
from worker.ledger.errors import LedgerUnavailable
from worker.local.stack import Stack
from worker.producer import submit as producer

pytestmark = [pytest.mark.integration, pytest.mark.slow]
GATEWAYS = ["smsru", "smsclub", "smsc", "gatum", "sms1000"]
FINAL = {"delivered", "undelivered", "expired", "rejected", "failed", "cancelled"}
FIGURES = os.environ.get("SMSQ_RELIABILITY_FIGURES")  # a path: write the run's figures there


def phones(gateway: str, n: int, base: int) -> list[str]:
    prefix = "+38097" if gateway == "smsclub" else "+7916"
    return [f"{prefix}{base + i:07d}" for i in range(n)]


class Producer:
    """Another application: writes through worker.producer.submit, enqueues over its own client."""

    def __init__(self, stack: Stack) -> None:
        self.celery = Celery(broker=stack.redis_url)
        cfg = settings.load({k: v for k, v in stack.env().items() if k.startswith("SMSQ_")})
        self.engine = Engine(cfg, client=redis_client(cfg.redis_url), enqueue=self._enqueue)

    def _enqueue(self, name: str, kwargs: Any, queue: str) -> None:
        self.celery.send_task(name, kwargs=dict(kwargs), queue=queue)

    def submit(self, gateway: str, numbers: list[str], job: str) -> list[str]:
        plan = producer.plan(self.engine, numbers, f"{job} code 4821", account=gateway)
        return producer.write(self.engine, plan, job_id=job).ids


def ledger_rows(r: redis.Redis, ids: list[str]) -> list[dict[str, str]]:
    out = []
    for start in range(0, len(ids), 2000):
        with r.pipeline(transaction=False) as pipe:
            for msg_id in ids[start:start + 2000]:
                pipe.hgetall(f"smsq:m:{msg_id}")
            out += [{k.decode(): v.decode() for k, v in row.items()} for row in pipe.execute()]
    return out


def settled(r: redis.Redis, ids: list[str]) -> bool:
    try:
        rows = ledger_rows(r, ids)
        return (all(row.get("st") in FINAL or row.get("st") == "unknown" for row in rows)
                and r.zcard("smsq:q") == 0 and r.zcard("smsq:s") == 0)
    except redis.RedisError:
        return False


def progress(r: redis.Redis, ids: list[str]) -> int:
    try:
        return sum(1 for row in ledger_rows(r, ids) if row.get("st") not in ("queued", "sending"))
    except redis.RedisError:
        return 0


def audit(stack: Stack, rows: list[dict[str, str]], jobs: dict[str, str]) -> dict[str, Any]:
    """Compare the ledger with the sandbox's own record, per gateway."""
    sandbox = [m for m in stack.sandbox_messages() if any(j in m["text"] for j in jobs.values())]
    sent = Counter((m["gateway"], m["phone"].lstrip("+"), m["text"]) for m in sandbox)
    out: dict[str, Any] = {"duplicates": sum(n - 1 for n in sent.values() if n > 1),
                           "per_gateway": {}}
    for gw, job in jobs.items():
        mine = [row for row in rows if row.get("job") == job]
        accepted = {row["to"].lstrip("+") for row in mine if row.get("pid")}
        unknown = {row["to"].lstrip("+") for row in mine if row["st"] == "unknown"
                   and not row.get("pid")}
        recorded = {p for g, p, _ in sent if g == gw}
        out["per_gateway"][gw] = {
            "messages": len(mine), "ledger_accepted": len(accepted),
            "sandbox": sum(n for (g, _, _), n in sent.items() if g == gw),
            "unknown": sum(1 for row in mine if row["st"] == "unknown"),
            "unknown_without_id": len(unknown),
            "accepted_not_in_sandbox": len(accepted - recorded),
            "in_sandbox_not_accounted": len(recorded - accepted - unknown),
            "statuses": dict(Counter(row["st"] for row in mine))}
    return out


@pytest.fixture
def crash_stack() -> Iterator[Stack]:
    stack = Stack(appendonly=True, queued_for=0.2, final_after=0.8, poll_interval=1.0,
                  extra_env={"SMSQ_SEND_LEASE": "15", "SMSQ_REQUEUE_AFTER": "5",
                             "SMSQ_CONNECT_TIMEOUT": "1", "SMSQ_READ_TIMEOUT": "3"})
    stack.sandbox.sims["sms1000"].set_balance(Decimal("100000"))  # type: ignore[attr-defined]
    yield stack
    stack.stop()
    api.reset()


def test_ten_thousand_messages_survive_kills_and_restarts(crash_stack: Stack) -> None:
    """5 worker SIGKILLs, a beat kill, a Redis restart: nothing lost, nothing sent twice."""
    stack = crash_stack.start(workers=1, concurrency=4)
    rng = random.Random(int(os.environ.get("SMSQ_CRASH_SEED", "20251122")))
    prod = Producer(stack)
    jobs = {gw: f"crash{gw}" for gw in GATEWAYS}
    ids = [i for n, gw in enumerate(GATEWAYS)
           for i in prod.submit(gw, phones(gw, 2000, 1_000_000 + n * 10_000), jobs[gw])]
    assert len(ids) == 10_000
    r = redis.Redis.from_url(stack.redis_url or "", socket_timeout=5)
    events = ["worker"] * 5 + ["beat", "redis"]
    rng.shuffle(events)
    moments = sorted(rng.uniform(1.0, 35.0) for _ in events)  # seconds into the run
    started = time.monotonic()
    log: list[tuple[str, int]] = []
    for event, moment in zip(events, moments, strict=True):
        time.sleep(max(0.0, started + moment - time.monotonic()))
        log.append((event, progress(r, ids)))
        if event == "worker":
            stack.kill("worker0")
            stack.start_worker("worker0")
        elif event == "beat":
            stack.kill("beat")
            stack.start_beat()
        else:
            stack.redis.restart()  # type: ignore[union-attr]
    assert wait_for(lambda: settled(r, ids), timeout=300, step=1.0), \
        Counter(row.get("st") for row in ledger_rows(r, ids))
    rows = ledger_rows(r, ids)
    report = audit(stack, rows, jobs)
    report.update({"events": log, "messages": len(ids),
                   "lost": sum(1 for row in rows if not row), "stuck_queued":
                   r.zcard("smsq:q"), "stuck_sending": r.zcard("smsq:s")})
    if FIGURES:
        with open(FIGURES, "w") as fh:
            json.dump(report, fh, indent=1)
    assert report["lost"] == 0 and len(rows) == 10_000
    assert report["duplicates"] == 0
    for gw, fig in report["per_gateway"].items():
        assert fig["accepted_not_in_sandbox"] == 0, (gw, fig)
        assert fig["in_sandbox_not_accounted"] == 0, (gw, fig)
        assert fig["ledger_accepted"] + fig["unknown_without_id"] >= fig["sandbox"], (gw, fig)
        if fig["unknown_without_id"] == 0:
            assert fig["ledger_accepted"] == fig["sandbox"], (gw, fig)
    assert (report["stuck_queued"], report["stuck_sending"]) == (0, 0)
    assert [e for e, _ in log].count("worker") == 5
    r.close()


def test_graceful_shutdown_mid_batch_loses_nothing(crash_stack: Stack) -> None:
    """SIGTERM while a slow batch is on the wire: the worker finishes it, nothing is lost."""
    stack = crash_stack.start(workers=1, concurrency=2, receiver=False)
    stack.sandbox.state.add_fault(Fault(kind="slow", gateway="smsru", path="/sms/send",
                                        delay=2.0, count=-1))
    prod = Producer(stack)
    ids = prod.submit("smsru", phones("smsru", 300, 3_000_001), "graceful")
    r = redis.Redis.from_url(stack.redis_url or "")
    assert wait_for(lambda: r.zcard("smsq:s") > 0, timeout=30, step=0.05)
    in_flight = [m.decode() for m in r.zrange("smsq:s", 0, -1)]
    main = stack.procs["worker0"]
    os.kill(main.pid, signal.SIGTERM)  # warm shutdown, as systemd's KillMode=mixed and k8s do
    main.wait(timeout=90)
    rows = ledger_rows(r, in_flight)
    assert {row["st"] for row in rows} <= {"sent", "queued"} | FINAL, Counter(
        row["st"] for row in rows)
    stack.sandbox.state.faults.clear()
    stack.start_worker("worker0", concurrency=2)
    assert wait_for(lambda: settled(r, ids), timeout=120)
    rows = ledger_rows(r, ids)
    assert "unknown" not in {row["st"] for row in rows}
    sent = Counter(m["phone"] for m in stack.sandbox_messages() if "graceful" in m["text"])
    assert len(sent) == 300 and set(sent.values()) == {1}
    r.close()


def test_redis_outage_of_30_seconds(crash_stack: Stack) -> None:
    """Redis down 30 s under load: producers get LedgerUnavailable quickly, processes stay
    up and resume by themselves, and nothing accepted before the outage is lost."""
    stack = crash_stack
    stack.extra_env["SMSQ_PRODUCER_TIMEOUT"] = "2"
    stack.start(workers=1, concurrency=4)
    use_stack(stack)
    prod = Producer(stack)
    ids = [i for n, gw in enumerate(GATEWAYS)
           for i in prod.submit(gw, phones(gw, 200, 5_000_000 + n * 1000), f"outage{gw}")]
    r = redis.Redis.from_url(stack.redis_url or "")
    assert wait_for(lambda: progress(r, ids) > 100, timeout=60, step=0.1)
    stack.redis.stop()  # type: ignore[union-attr]
    errors, slowest = _producers_during_outage(seconds=30.0)
    alive = {name: proc.poll() is None for name, proc in stack.procs.items()}
    stack.redis.start()  # type: ignore[union-attr]
    assert errors and all(isinstance(e, LedgerUnavailable) for e in errors), errors
    assert "Redis is unreachable" in str(errors[0])
    assert slowest < 10.0  # a bound, not a benchmark: the 2 s producer timeout held
    assert all(alive.values()), alive
    assert wait_for(lambda: settled(r, ids), timeout=180, step=1.0)
    rows = ledger_rows(r, ids)
    assert len([row for row in rows if row]) == len(ids)
    after = api.submit(phones("smsru", 3, 6_000_000), "after the outage", account="smsru")
    assert wait_for(lambda: settled(r, after.ids), timeout=60)
    r.close()


def _producers_during_outage(seconds: float) -> tuple[list[BaseException], float]:
    errors: list[BaseException] = []
    slowest = 0.0
    deadline = time.monotonic() + seconds
    lock = threading.Lock()

    def one(n: int) -> None:
        nonlocal slowest
        started = time.monotonic()
        try:
            api.submit([f"+7916{7_000_000 + n:07d}"], "during outage", account="smsru")
            errors.append(AssertionError("submit succeeded while Redis was down"))
        except BaseException as exc:
            errors.append(exc)
        with lock:
            slowest = max(slowest, time.monotonic() - started)

    n = 0
    while time.monotonic() < deadline:
        one(n)
        n += 1
        time.sleep(1.0)
    return errors, slowest
