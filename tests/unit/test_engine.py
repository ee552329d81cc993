"""The engine without Celery: ledger transitions, sending outcomes, polling, reconciliation."""

from __future__ import annotations

import time

import pytest

from providers.errors import ValidationError
from providers.sandbox.core import Fault
from worker import polling, producer, reconcile, sending
from worker.ledger import QUEUED, SENDING


def submit(engine, phones, text="Hello", account="smsru", **kw):
    plan = producer.plan(engine, phones, text, account=account, strict=kw.pop("strict", True))
    return producer.write(engine, plan, **kw)


def run_enqueued(engine):
    """Run what the engine enqueued, as a worker would."""
    while engine.enqueued:
        name, kwargs, _ = engine.enqueued.pop(0)
        if name == "smsq.deliver":
            sending.deliver(engine, kwargs["ids"], kwargs["account"])
        elif name == "smsq.check_status":
            polling.check_status(engine, kwargs["ids"], kwargs["account"])


def statuses(engine, ids):
    return [r["st"] for r in engine.ledger.get_many(ids)]


def test_submit_writes_records_before_enqueueing(engine):
    """Every recipient gets a queued record and one deliver task carries the batch."""
    job = submit(engine, ["+79161234501", "+79161234502"])
    assert statuses(engine, job.ids) == ["queued", "queued"]
    assert [(n, k["ids"]) for n, k, _ in engine.enqueued] == [("smsq.deliver", job.ids)]


def test_bad_input_writes_nothing(engine, redis_client):
    """A validation error leaves Redis untouched."""
    with pytest.raises(ValidationError) as info:
        submit(engine, ["+79161234501", "12"])
    assert info.value.field == "recipients"
    assert redis_client.dbsize() == 0 and not engine.enqueued


def test_claim_guards_against_a_second_delivery(engine, sandbox):
    """Delivering the same ids twice sends once: the second finds nothing queued."""
    job = submit(engine, ["+79161234501"])
    assert sending.deliver(engine, job.ids, "smsru") == {"sent": 1}
    assert sending.deliver(engine, job.ids, "smsru") == {}
    assert len(sandbox.state.messages) == 1


def test_transient_error_requeues_with_backoff_then_fails(engine, sandbox):
    """5xx re-queues (attempt counted) until the attempt budget, then failed."""
    sandbox.state.add_fault(Fault(kind="http_error", status=503, gateway="smsru", count=-1))
    job = submit(engine, ["+79161234501"])
    for _ in range(engine.cfg.max_attempts):
        engine.ledger.r.zadd(QUEUED, {job.ids[0]: 0})
        sending.deliver(engine, job.ids, "smsru")
    row = engine.ledger.get(job.ids[0])
    assert row["st"] == "failed" and int(row["att"]) == engine.cfg.max_attempts


def test_timeout_after_acceptance_is_unknown_not_resent(engine, sandbox):
    """A read timeout after the gateway accepted leaves the message unknown, sent once."""
    sandbox.state.add_fault(Fault(kind="timeout", gateway="smsru", path="/sms/send"))
    job = submit(engine, ["+79161234501"])
    sending.deliver(engine, job.ids, "smsru")
    assert statuses(engine, job.ids) == ["unknown"]
    reconcile.release(engine)
    run_enqueued(engine)
    assert len(sandbox.state.messages) == 1


def test_polling_reaches_final_status(engine, sandbox, clock):
    """Beat's poll hands due checks to the gateway queue and they end delivered."""
    sandbox.state.outcomes = {"delivered": 1.0}
    job = submit(engine, ["+79161234501", "+79161234502"])
    run_enqueued(engine)
    clock.advance(30)
    engine.clock = lambda: time.time() + 100  # the first check is due
    polling.poll_pending(engine)
    run_enqueued(engine)
    assert statuses(engine, job.ids) == ["delivered", "delivered"]


def test_dead_lease_before_the_wire_is_requeued(engine):
    """A claim whose request never left goes back to queued; one that left becomes unknown."""
    job = submit(engine, ["+79161234501", "+79161234502"])
    a, b = job.ids
    engine.ledger.transition_many([a, b], ["queued"], "sending", score=0.0, wire="0")
    engine.ledger.set_fields(b, wire="1")
    engine.ledger.r.zadd(SENDING, {a: 0, b: 0})
    reconcile.reclaim_leases(engine)
    assert statuses(engine, [a, b]) == ["queued", "unknown"]


def test_reports_never_move_backwards(engine):
    """A 'sent' report after 'delivered' changes nothing."""
    from providers.models import Status, StatusResult
    from worker.reports import apply_reports

    job = submit(engine, ["+79161234501"])
    run_enqueued(engine)
    pid = engine.ledger.get(job.ids[0])["pid"]
    apply_reports(engine, "smsru", [StatusResult(pid, Status.DELIVERED, "103")])
    apply_reports(engine, "smsru", [StatusResult(pid, Status.SENT, "102")])
    assert statuses(engine, job.ids) == ["delivered"]


def test_report_before_send_result_is_parked_then_applied(engine, sandbox):
    """A report for an unknown gateway id waits and is applied when the result lands."""
    from providers.models import Status, StatusResult
    from worker.reports import apply_reports

    job = submit(engine, ["+79161234501"])
    counts = apply_reports(engine, "smsru", [StatusResult("000000-10000000", Status.DELIVERED,
                                                          "103")])
    assert counts["parked"] == 1
    run_enqueued(engine)
    row = engine.ledger.get(job.ids[0])
    if row["pid"] == "000000-10000000":
        assert row["st"] == "delivered"
    else:
        assert row["st"] == "sent"


def test_idempotency_same_key_same_ids(engine):
    """The same key and content returns the first job's ids; other content is refused."""
    first = submit(engine, ["+79161234501"], idempotency_key="k1")
    again = submit(engine, ["+79161234501"], idempotency_key="k1")
    assert again.ids == first.ids and again.duplicate
    with pytest.raises(ValidationError):
        submit(engine, ["+79161234502"], idempotency_key="k1")


def test_auth_failure_fails_over_along_the_route(engine, sandbox):
    """Bad credentials on the first account move the message to the next one."""
    from dataclasses import replace

    from providers.models import Secret

    bad = replace(engine.cfg.accounts["smsclub"], name="badclub",
                  credentials={"token": Secret("nope")})
    engine.cfg = replace(engine.cfg, accounts={**engine.cfg.accounts, "badclub": bad},
                         routes={"main": ("badclub", "smsru")})
    plan = producer.plan(engine, ["+79161234501"], "Hi", route="main")
    job = producer.write(engine, plan)
    run_enqueued(engine)
    row = engine.ledger.get(job.ids[0])
    assert row["st"] == "sent" and row["acc"] == "smsru"


def test_open_circuit_hands_messages_to_the_next_account(engine, sandbox):
    """Consecutive 5xx open the account's circuit; routed messages then fail over."""
    from dataclasses import replace

    engine.cfg = replace(engine.cfg, routes={"main": ("smsclub", "smsru")}, max_attempts=50)
    sandbox.state.add_fault(Fault(kind="http_error", status=503, gateway="smsclub", count=-1))
    plan = producer.plan(engine, ["+380971234501"], "Hi", route="main")
    job = producer.write(engine, plan)
    engine.enqueued.clear()
    for _ in range(engine.cfg.circuit_threshold):
        engine.ledger.r.zadd(QUEUED, {job.ids[0]: 0})
        sending.deliver(engine, job.ids, "smsclub")
    assert engine.circuit.state("smsclub") == "open"
    run_enqueued(engine)
    row = engine.ledger.get(job.ids[0])
    assert row["acc"] == "smsru" and row["st"] == "sent"


def test_circuit_closes_after_a_successful_probe(engine, sandbox):
    """After the cooldown the next request probes; success closes the circuit."""
    for _ in range(engine.cfg.circuit_threshold):
        engine.circuit.failure("smsru")
    assert engine.circuit.state("smsru") == "open"
    engine.ledger.r.hset(engine.circuit.key("smsru"), "open_until", 0)
    assert engine.circuit.state("smsru") == "half-open"
    job = submit(engine, ["+79161234501"])
    assert sending.deliver(engine, job.ids, "smsru") == {"sent": 1}
    assert engine.circuit.state("smsru") == "closed"
