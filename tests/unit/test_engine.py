"""The engine without Celery: ledger transitions, sending outcomes, polling, reconciliation."""

from __future__ import annotations

import time

import pytest

from providers.errors import ValidationError
from providers.sandbox.core import Fault
from worker import polling, reconcile, sending
from worker.ledger.lifecycle import Status, Step
from worker.ledger.records import Recheck, Sent
from worker.ledger.store import QUEUED, SENDING
from worker.producer import submit as producer


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


def test_claim_takes_only_queued_messages_of_the_account(engine):
    """One claim call moves the account's queued messages to sending and returns their fields."""
    job = submit(engine, ["+79161234501", "+79161234502", "+79161234503"])
    a, b, c = job.ids
    engine.ledger.transition(b, ["queued"], "cancelled")
    engine.ledger.set_fields(c, acc="smsclub")
    rows, jobs = engine.ledger.claim(job.ids, "smsru", time.time() + 60, ("to", "job"),
                                     ("text", "absent"))
    assert [(r["id"], r["to"], r["job"]) for r in rows] == [(a, "+79161234501", job.job_id)]
    assert jobs == {job.job_id: {"text": "Hello"}}
    assert statuses(engine, job.ids) == ["sending", "cancelled", "queued"]
    assert engine.ledger.claim(job.ids, "smsru", time.time() + 60, ("to",)) == ([], {})


def test_pick_many_reads_only_the_named_fields(engine):
    """Each record comes back with the asked fields and its id; a missing one is None."""
    job = submit(engine, ["+79161234501"])
    rows = engine.ledger.pick_many([job.ids[0], "nope.0"], ("st", "to", "absent"))
    assert rows == [{"id": job.ids[0], "st": "queued", "to": "+79161234501"}, None]


def test_distinct_texts_of_one_job_each_reach_the_gateway(engine, sandbox):
    """Per-recipient texts override the job's shared fields message by message."""
    msgs = [{"to": "+79161234501", "text": "Code 1"}, {"to": "+79161234502", "text": "Code 2"}]
    plan = producer.plan(engine, None, None, messages=msgs, account="smsru")
    job = producer.write(engine, plan)
    run_enqueued(engine)
    assert statuses(engine, job.ids) == ["sent", "sent"]
    assert sorted((m.phone[-2:], m.text) for m in sandbox.state.messages) == [
        ("01", "Code 1"), ("02", "Code 2")]


def _sent_message(engine, phone="+79161234501"):
    job = submit(engine, [phone])
    run_enqueued(engine)
    return job.ids[0], engine.ledger.get(job.ids[0])


def test_send_result_maps_the_gateway_id_and_takes_a_parked_report(engine):
    """A report parked before the send result is returned by the same script call."""
    job = submit(engine, ["+79161234501", "+79161234502"])
    a, b = job.ids
    assert engine.ledger.park_orphan("smsru", "gw-1", {"status": "delivered"}) is True
    engine.ledger.claim(job.ids, "smsru", time.time() + 60, ("to",))
    done, moved, parked = engine.ledger.record_sends(
        "smsru", time.time(), {"prov": "smsru"}, [Sent(a, "gw-1", "gw-1", "", "1", "100")],
        [Step(b, (Status.SENDING,), Status.FAILED, 0.0, {"err": "x"})])
    assert (done, moved) == ([True], [True])
    assert parked == [(a, "gw-1", {"status": "delivered"})]
    row = engine.ledger.get(a)
    assert (row["st"], row["pid"], row["prov"], row["seg"]) == ("sent", "gw-1", "smsru", "1")
    assert "cost" not in row and statuses(engine, [b]) == ["failed"]
    assert engine.ledger.find_pids("smsru", ["gw-1"]) == [a]
    assert engine.ledger.r.exists("smsq:orphan:smsru:gw-1") == 0
    assert engine.ledger.r.zcard("smsq:orphans") == 0
    assert engine.ledger.park_orphan("smsru", "gw-1", {"status": "delivered"}) == a


def test_reschedule_skips_a_message_made_final_meanwhile(engine):
    """Only messages still sent get their next check; a final one stays out of the index."""
    from worker.ledger.store import pending_key

    a, _ = _sent_message(engine, "+79161234501")
    b, _ = _sent_message(engine, "+79161234502")
    engine.ledger.transition(b, ["sent"], "delivered")
    assert engine.ledger.reschedule([Recheck(a, 1234.0, "3", "102", ""),
                                     Recheck(b, 1234.0, "3", "", "")]) == 1
    row = engine.ledger.get(a)
    assert (row["st"], row["chk"], row["raw"]) == ("sent", "3", "102")
    assert engine.ledger.r.zscore(pending_key("smsru"), a) == 1234.0
    assert engine.ledger.r.zscore(pending_key("smsru"), b) is None
    assert engine.ledger.get(b)["st"] == "delivered"


def test_one_poll_pass_hands_over_the_whole_backlog(engine):
    """poll_pending keeps taking per_pass ids until nothing is due, up to its cap."""
    from worker.ledger.store import pending_key

    ids = [_sent_message(engine, f"+7916123450{i}")[0] for i in range(5)]
    engine.ledger.r.zadd(pending_key("smsru"), dict.fromkeys(ids, 0))
    assert polling.poll_pending(engine, per_pass=2, max_per_beat=4) == {"smsru": 4}
    assert polling.poll_pending(engine, per_pass=2) == {"smsru": 1}
    handed = [i for name, kw, _ in engine.enqueued if name == "smsq.check_status"
              for i in kw["ids"]]
    assert sorted(handed) == sorted(ids)


def test_status_check_reschedules_pending_and_finishes_delivered(engine, sandbox):
    """A check moves a final message on (job counters too) and re-schedules the other."""
    from worker.ledger.store import pending_key

    a, _ = _sent_message(engine, "+79161234501")
    b, row_b = _sent_message(engine, "+79161234502")
    with sandbox.state.lock:
        for m in sandbox.state.messages:
            if m.id == row_b["pid"]:
                m.time, m.outcome = m.time - 100, "delivered"
    counts = polling.check_status(engine, [a, b], "smsru")
    assert counts == {"delivered": 1, "rescheduled": 1}
    assert statuses(engine, [a, b]) == ["sent", "delivered"]
    assert engine.ledger.get(a)["chk"] == "1"
    assert engine.ledger.r.zscore(pending_key("smsru"), b) is None
    job = engine.ledger.job(row_b["job"])
    assert (job["st:delivered"], job["st:sent"]) == ("1", "0")
