"""Validity periods: a message not on the wire in time ends `expired` (reason validity)
and never reaches the gateway, whether it ran out in the queue, in a retry's backoff or
while waiting for its rate-limit slot (real Redis, in-process sandbox, injected clock)."""

from __future__ import annotations

import time

import pytest

from providers.errors import ValidationError
from providers.sandbox.core import Fault
from worker import sending
from worker.producer import submit as producer

CLUB = "smsclub"


@pytest.fixture
def timed(engine, clock):
    clock.now = time.time()
    engine.clock = clock
    return engine


def submit(engine, lane="transactional", **kw):
    plan = producer.plan(engine, ["+380971234567"], "Code 1234", account=CLUB, lane=lane, **kw)
    return producer.write(engine, plan)


def club_sent(sandbox):
    return [m for m in sandbox.state.messages if m.gateway == CLUB]


def row(engine, job):
    return engine.ledger.get(job.ids[0])


def test_an_otp_gets_the_default_validity(engine):
    """lane otp without valid_for: valid until now + SMSQ_OTP_VALID_FOR (300 s)."""
    before = time.time()
    job = submit(engine, lane="otp")
    until = float(engine.ledger.job(job.job_id)["vu"])
    assert before + 299 <= until <= time.time() + 300
    assert "vu" not in engine.ledger.job(submit(engine).job_id)


def test_a_message_past_its_validity_is_expired_at_claim_and_not_sent(timed, sandbox):
    """The deliver task claims it after valid_for ran out: expired/validity, nothing sent."""
    job = submit(timed, valid_for=30)
    timed.clock.advance(31)
    assert sending.deliver(timed, job.ids, CLUB) == {"expired": 1}
    rec = row(timed, job)
    assert (rec["st"], rec["reason"]) == ("expired", "validity")
    assert club_sent(sandbox) == []


def test_validity_running_out_while_waiting_for_the_slot_stops_the_request(timed, sandbox):
    """The check right before the wire: a slot granted after the deadline sends nothing."""
    job = submit(timed, valid_for=5)
    for _ in range(3):
        timed.limiter.try_acquire(CLUB, 9.0)  # the slot is a third of a second away
    timed.limiter.sleep = lambda seconds: timed.clock.advance(10)
    assert sending.deliver(timed, job.ids, CLUB) == {"expired": 1}
    assert row(timed, job)["reason"] == "validity" and row(timed, job).get("wire") != "1"
    assert club_sent(sandbox) == []


def test_a_retry_after_the_validity_is_not_sent(timed, sandbox):
    """A transient error queues a retry; once the validity passed, the retry expires."""
    sandbox.state.add_fault(Fault(kind="http_error", status=503, gateway=CLUB, count=1))
    job = submit(timed, valid_until=time.time() + 60)
    sending.deliver(timed, job.ids, CLUB)
    assert row(timed, job)["st"] == "queued"
    timed.clock.advance(61)
    assert sending.deliver(timed, job.ids, CLUB) == {"expired": 1}
    assert club_sent(sandbox) == []


def test_within_its_validity_a_message_is_sent(timed, sandbox):
    """The control: the same message inside its validity goes out."""
    job = submit(timed, valid_for=30)
    timed.clock.advance(10)
    assert sending.deliver(timed, job.ids, CLUB) == {"sent": 1}
    assert len(club_sent(sandbox)) == 1


@pytest.mark.parametrize("kw", [{"valid_for": 0}, {"valid_for": -5}, {"valid_for": "300"},
                                {"valid_for": float("nan")}, {"valid_for": True},
                                {"valid_for": 8 * 86400}, {"valid_until": 1.0},
                                {"valid_for": 10, "valid_until": time.time() + 60}])
def test_bad_validity_is_refused_and_nothing_written(engine, redis_client, kw):
    """A validity that is not a positive number of seconds within 7 days names its field."""
    with pytest.raises(ValidationError) as info:
        submit(engine, **kw)
    assert info.value.field in ("valid_for", "valid_until")
    assert redis_client.dbsize() == 0


# -- validity on the wire (sms.ru's `ttl`, whole minutes) ----------------------------------

RU = "smsru"


def ru_sends(sandbox):
    return [r for r in sandbox.state.requests if r["gateway"] == RU and r["path"] == "/sms/send"]


def ru_submit(engine, phone, text, **kw):
    plan = producer.plan(engine, [phone], text, account=RU, **kw)
    return producer.write(engine, plan)


def test_the_remaining_validity_goes_on_the_wire(timed, sandbox):
    """Submitted with 10.5 min, sent 3 min later: ttl=7 in the request the sandbox got
    (half a minute off the boundary: the ledger keeps deadlines to the millisecond)."""
    job = ru_submit(timed, "+79161234501", "Code 1", valid_for=630)
    timed.clock.advance(180)
    assert sending.deliver(timed, job.ids, RU) == {"sent": 1}
    assert ru_sends(sandbox)[-1]["validity"] == "7"


def test_different_deadlines_are_not_merged_into_one_ttl(timed, sandbox):
    """Two OTPs and a message without validity, one deliver: one request each, its own ttl
    (sms.ru could carry all three texts in one request, but not three ttls)."""
    jobs = [ru_submit(timed, "+79161234501", "Code 1", valid_for=330),
            ru_submit(timed, "+79161234502", "Code 2", valid_for=930),
            ru_submit(timed, "+79161234503", "Hello")]
    ids = [i for j in jobs for i in j.ids]
    assert sending.deliver(timed, ids, RU) == {"sent": 3}
    assert sorted(str(r.get("validity")) for r in ru_sends(sandbox)) == ["15", "5", "None"]


def test_under_a_minute_left_at_the_slot_expires_and_sends_nothing(timed, sandbox):
    """Still valid at the slot (so our own guard lets it pass), but less than sms.ru's one
    minute left: ending it expired beats sending a code that may arrive late."""
    job = ru_submit(timed, "+79161234501", "Code 1", valid_for=90)
    timed.clock.advance(45)
    assert sending.deliver(timed, job.ids, RU) == {"expired": 1}
    rec = row(timed, job)
    assert (rec["st"], rec["reason"], rec.get("wire")) == ("expired", "validity", "0")
    assert ru_sends(sandbox) == []
