"""Intake under failure: a job is written all or nothing, a retry under its idempotency key
or a redelivered `smsq.send` finds it whole, bad input ends `rejected` (never vanishes),
an interrupted batch is found again by reconcile, and recovered work is batched like
fresh work and dispatched once. Real Redis, in-process sandbox, fake clock."""

from __future__ import annotations

import pytest
import redis
from structlog.testing import capture_logs

from providers import REGISTRY
from providers.base import Provider
from tests.reliability.conftest import SyncRunner, snapshot
from worker import reconcile, sending
from worker.ledger.records import outgoing
from worker.producer import submit as producer
from worker.producer.intake import intake

SENT_FINAL = {"delivered", "undelivered", "expired", "rejected"}
LOOKUP = [name for name, cls in REGISTRY.items() if cls.lookup is not Provider.lookup]


def numbers(n: int, start: int = 0) -> list[str]:
    return [f"+7916{1_234_567 + start + i:07d}" for i in range(n)]


def job_counts(runner: SyncRunner, job_id: str) -> dict[str, int]:
    job = runner.engine.ledger.job(job_id) or {}
    return {k[3:]: int(v) for k, v in job.items() if k.startswith("st:") and int(v)}


def record_counts(runner: SyncRunner, ids: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in runner.engine.ledger.get_many(ids):
        assert row is not None
        out[row["st"]] = out.get(row["st"], 0) + 1
    return out


def test_failed_write_leaves_nothing_and_the_retry_returns_every_id(
        runner: SyncRunner, rclient: redis.Redis) -> None:
    """Redis refuses a write midway (out of memory): nothing half-written, idempotency
    key not held; the retry under the same key writes all 3,000 records, counters equal."""
    p = producer.plan(runner.engine, numbers(3000), "code 1234", account="smsru")
    before = snapshot(rclient)
    used = int(rclient.info("memory")["used_memory"])
    rclient.config_set("maxmemory", used + 100_000)  # a key fits, 3,000 records do not
    try:
        with pytest.raises(redis.ResponseError):
            producer.write(runner.engine, p, job_id="big", idempotency_key="k-1")
    finally:
        rclient.config_set("maxmemory", 0)
    assert snapshot(rclient) == before
    again = producer.write(runner.engine, p, job_id="big2", idempotency_key="k-1")
    assert len(again.ids) == 3000 and not again.duplicate
    third = producer.write(runner.engine, p, idempotency_key="k-1")
    assert third.duplicate and third.ids == again.ids
    assert record_counts(runner, again.ids) == job_counts(runner, "big2") == {"queued": 3000}
    assert rclient.zcard("smsq:q") == 3000


def test_redelivered_send_task_changes_nothing(runner: SyncRunner) -> None:
    """The same `smsq.send` (same task id) run again: the job is found, no record rewritten."""
    kwargs = {"recipients": numbers(3), "text": "hello", "account": "smsc"}
    first = intake(runner.engine, (), kwargs, "task-aaaa")
    assert first is not None and first.job_id == "task-aaaa"
    runner.drain()
    sent = record_counts(runner, first.ids)
    assert sent == {"sent": 3}
    again = intake(runner.engine, (), kwargs, "task-aaaa")
    assert again is not None and again.duplicate and again.ids == first.ids
    assert record_counts(runner, first.ids) == sent == job_counts(runner, "task-aaaa")
    assert runner.tasks == []
    assert sum(runner.sandbox_count().values()) == 3


def test_existing_job_id_is_never_overwritten(runner: SyncRunner) -> None:
    """A client job id already written: same content → that job; other content → refused,
    the refusal recorded under the task id, the first job's text unchanged."""
    base = {"recipients": numbers(2), "text": "first text", "account": "smsc", "job_id": "x"}
    first = intake(runner.engine, (), base, "t1")
    same = intake(runner.engine, (), base, "t2")
    assert first is not None and same is not None and same.duplicate and same.ids == first.ids
    with capture_logs() as logs:
        other = intake(runner.engine, (), {**base, "text": "second text"}, "t3")
    assert other is None
    assert (runner.engine.ledger.job("x") or {})["text"] == "first text"
    refusal = runner.engine.ledger.job("t3") or {}
    assert "already exists with different content" in refusal["error"]
    assert any(e["log_level"] == "warning" and e["event"] == "sms_job_rejected" for e in logs)


def test_bad_messages_are_rejected_one_by_one(runner: SyncRunner) -> None:
    """An empty text and a lone surrogate reject their own message; the rest is queued."""
    messages = [{"to": numbers(1)[0], "text": "fine"}, {"to": numbers(1, 1)[0], "text": ""},
                {"to": numbers(1, 2)[0], "text": "bad \ud800"}]
    with capture_logs() as logs:
        done = intake(runner.engine, (), {"messages": messages, "account": "smsc"}, "t-msg")
    assert done is not None and done.job_id == "t-msg" and len(done.ids) == 3
    rows = runner.engine.ledger.get_many(done.ids)
    assert [r["st"] for r in rows if r] == ["queued", "rejected", "rejected"]
    assert "empty" in rows[1]["reason"] and "surrogate" in rows[2]["reason"]  # type: ignore[index]
    assert job_counts(runner, "t-msg") == {"queued": 1, "rejected": 2}
    assert any(e["log_level"] == "warning" for e in logs)


@pytest.mark.parametrize("call", [
    ((numbers(1), "hi"), {"account": "smsc"}),
    ((), {"recipients": numbers(2), "text": "\udfff", "account": "smsc"}),
    ((), {"recipients": numbers(2), "text": "hi", "account": "smsc", "job_id": "bad id!"}),
    ((), {"recipients": ["\ud800"], "text": "hi", "account": "smsc", "\ud800": 1}),
], ids=["positional", "surrogate-text", "bad-job-id", "surrogate-everywhere"])
def test_refused_call_is_a_job_found_by_task_id(runner: SyncRunner, call: tuple) -> None:
    """A call refused whole ends as a job under its task id, each message rejected, logged."""
    args, kwargs = call
    with capture_logs() as logs:
        intake(runner.engine, args, kwargs, "task-bad")
    job = runner.engine.ledger.job("task-bad")
    assert job is not None
    ids = runner.engine.ledger.job_ids("task-bad")
    rows = runner.engine.ledger.get_many(ids)
    assert all(r and r["st"] == "rejected" and r["reason"] for r in rows)
    assert job.get("error") or all(r and r["reason"] for r in rows)
    assert any(e["log_level"] == "warning" for e in logs)


@pytest.mark.parametrize("gateway", LOOKUP)
def test_reconcile_finds_every_message_of_an_interrupted_batch(runner: SyncRunner,
                                                                gateway: str) -> None:
    """The worker died with a 5-message request at the gateway: every message is found."""
    ids = runner.submit(gateway, numbers(5), "batch text", "intr")
    runner.tasks.clear()
    eng = runner.engine
    lease = eng.clock() + eng.cfg.send_lease
    rows, jobs = eng.ledger.claim(ids, gateway, lease, sending.SEND_FIELDS, sending.JOB_FIELDS)
    provider = eng.provider(gateway)
    assert eng.ledger.mark_on_wire(ids, lease)
    sender = provider.account.options.get("sender")
    provider.send(outgoing(rows, jobs, sender))  # ...and the worker dies here
    runner.clock.advance(eng.cfg.send_lease + 1)
    rows = runner.settle(ids)
    assert {r["st"] for r in rows} <= SENT_FINAL, [r["st"] for r in rows]
    assert all(r.get("pid") for r in rows)
    assert sum(runner.sandbox_count().values()) == 5


def test_recovered_per_recipient_texts_go_out_in_full_batches(runner: SyncRunner) -> None:
    """100 personal texts whose dispatch was lost: one deliver task, one request."""
    messages = [{"to": n, "text": f"your code {i}"} for i, n in enumerate(numbers(100))]
    p = producer.plan(runner.engine, None, None, messages=messages, account="smsc")
    ids = producer.write(runner.engine, p, job_id="pers").ids
    runner.tasks.clear()  # the deliver tasks were lost with a node
    runner.clock.advance(runner.engine.cfg.redispatch_after + 1)
    reconcile.release(runner.engine)
    assert [len(kw["ids"]) for _, kw in runner.tasks] == [100]
    runner.drain()
    assert record_counts(runner, ids) == {"sent": 100}
    assert len(runner.sandbox.state.requests) == 1


def test_release_never_dispatches_what_is_already_dispatched(runner: SyncRunner) -> None:
    """Until the visibility timeout could have brought a lost task back, a dispatched id is
    not dispatched again, however long its deliver task waits in the queue."""
    runner.submit("smsc", numbers(10), "queued long", "wait")
    assert len(runner.tasks) == 1
    for _ in range(10):
        runner.clock.advance(runner.engine.cfg.redispatch_after / 11)
        reconcile.release(runner.engine)
    assert len(runner.tasks) == 1
    runner.clock.advance(runner.engine.cfg.redispatch_after)
    reconcile.release(runner.engine)
    assert len(runner.tasks) == 2


def test_a_task_that_outlived_its_lease_never_sends_what_another_claimed(
        runner: SyncRunner) -> None:
    """A slow task's lease expired, the sweep re-queued its unsent ids and a second worker
    claimed them: the first task's next chunk sends nothing; each message goes out once."""
    ids = runner.submit("smsclub", [f"+38097{1_234_567 + i:07d}" for i in range(3)],
                        "lease test", "lease")
    runner.tasks.clear()
    eng = runner.engine
    lease = eng.clock() + eng.cfg.send_lease
    rows, jobs = eng.ledger.claim(ids, "smsclub", lease, sending.SEND_FIELDS,
                                  sending.JOB_FIELDS)
    provider = eng.provider("smsclub")
    sender = provider.account.options.get("sender")
    chunk = list(zip(rows, outgoing(rows, jobs, sender), strict=True))
    runner.clock.advance(eng.cfg.send_lease + 1)
    assert reconcile.reclaim_leases(eng) == 3
    runner.clock.advance(eng.cfg.redispatch_after + 1)
    reconcile.release(eng)
    runner.drain()  # the second worker sends them
    assert sending._send_chunk(eng, provider, "smsclub", chunk, lease) == {}
    assert sorted(runner.sandbox_count().values()) == [1, 1, 1]


def test_a_chunk_paused_past_its_lease_after_renewing_sends_nothing(
        runner: SyncRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """The task renewed its chunk's claim, then stood still (SIGSTOP, a swapped-out host)
    past the lease: the sweep re-queued the ids and a second worker sent them. When the
    first task's slot comes, its request must not leave (chaos seed 203: 135 sent twice).
    Fails before MARK_ON_WIRE checked the claim: each message went out twice."""
    ids = runner.submit("smsclub", [f"+38097{1_300_001 + i:07d}" for i in range(3)],
                        "paused", "paused")
    runner.tasks.clear()
    eng = runner.engine
    real_renew = eng.ledger.renew
    paused: list[bool] = []

    def renew_then_stand_still(ids_: list[str], held: float, until: float) -> list[str]:
        got = real_renew(ids_, held, until)
        if not paused:
            paused.append(True)
            runner.clock.advance(eng.cfg.send_lease + 1)
            assert reconcile.reclaim_leases(eng) == 3
            runner.clock.advance(eng.cfg.redispatch_after + 1)
            reconcile.release(eng)
            runner.drain()  # the second worker claims and sends them
        return got

    monkeypatch.setattr(eng.ledger, "renew", renew_then_stand_still)
    with capture_logs() as logs:
        assert sending.deliver(eng, ids, "smsclub") == {}
    assert sorted(runner.sandbox_count().values()) == [1, 1, 1]
    assert any(e["event"] == "sms_lease_lost" for e in logs)
    assert {r["st"] for r in runner.settle(ids)} <= SENT_FINAL
