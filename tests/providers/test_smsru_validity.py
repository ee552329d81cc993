"""sms.ru's `ttl` (whole minutes, 1..1440): what smsq puts on the wire for a deadline, and
how the simulator checks and enforces it (in-process, fake clock)."""

from __future__ import annotations

import random

import pytest

from providers.errors import MessageRejected, ValidityExpired
from providers.models import OutgoingMessage, Status, StatusQuery
from providers.sandbox import Sandbox
from providers.sandbox.core import SandboxState
from tests.providers.validity_helpers import msg

A, B = "+79161234501", "+79161234502"


@pytest.fixture
def sandbox(clock):
    return Sandbox(SandboxState(clock=clock, queued_for=1.0, final_after=5.0), names=["smsru"])


@pytest.fixture
def smsru(make_provider, clock):
    provider = make_provider("smsru")
    provider.clock = clock
    return provider


def sends(sandbox):
    return [r for r in sandbox.state.requests if r["path"] == "/sms/send"]


@pytest.mark.parametrize(("left", "ttl"), [(60, "1"), (119.9, "1"), (120, "2"), (300, "5"),
                                           (86400, "1440"), (7 * 86400, "1440")])
def test_remaining_validity_goes_as_whole_minutes_rounded_down_and_capped(
        smsru, sandbox, clock, left, ttl):
    """Never longer than what remains: 119.9 s is 1 minute; a week is the 1440 cap."""
    assert smsru.send([msg(A, clock, left)])[0].accepted
    assert sends(sandbox)[-1]["validity"] == ttl
    assert sandbox.state.messages[-1].meta["ttl"] == ttl


def test_no_deadline_sends_no_ttl(smsru, sandbox, clock):
    smsru.send([msg(A, clock, None)])
    assert "validity" not in sends(sandbox)[-1]


def test_under_a_minute_left_nothing_is_sent(smsru, sandbox, clock):
    """59 s cannot be said in minutes without saying too much: ValidityExpired, no request."""
    with pytest.raises(ValidityExpired):
        smsru.send([msg(A, clock, 59.5)])
    assert sends(sandbox) == [] and sandbox.state.messages == []


def test_ttl_is_counted_after_the_rate_limit_wait(smsru, sandbox, clock):
    """The throttle's wait comes off the validity: 10 min left, 3 min wait -> ttl 7."""
    smsru.throttle = lambda: clock.advance(180)
    smsru.send([msg(A, clock, 600)])
    assert sends(sandbox)[-1]["validity"] == "7"


def test_a_wait_past_the_minimum_expires_instead_of_sending(smsru, sandbox, clock):
    smsru.throttle = lambda: clock.advance(30)
    with pytest.raises(ValidityExpired):
        smsru.send([msg(A, clock, 80)])
    assert sends(sandbox) == []


def test_one_request_uses_the_earliest_deadline(smsru, sandbox, clock):
    """Two recipients, different texts, one request: the shorter validity is sent."""
    smsru.send([msg(A, clock, 300, "one"), msg(B, clock, 250, "two")])
    assert sends(sandbox)[-1]["validity"] == "4"


@pytest.mark.parametrize(("given", "left", "ttl"), [("3", 600, "3"), ("30", 600, "10"),
                                                    ("junk", 600, "10"), ("0", 600, "10")])
def test_a_producer_ttl_option_only_ever_shortens(smsru, sandbox, clock, given, ttl, left):
    smsru.send([msg(A, clock, left, ttl=given)])
    assert sends(sandbox)[-1]["validity"] == ttl


def test_batch_key_splits_deadlines_more_than_a_minute_apart(smsru, clock):
    """Deadlines in one minute share a request; a minute later, or none, does not."""
    clock.now = 1_700_000_040.0  # a whole minute: buckets start here
    key = smsru.batch_key
    assert key(msg(A, clock, 300, "x")) == key(msg(B, clock, 359, "y"))
    assert key(msg(A, clock, 300)) != key(msg(B, clock, 360))
    assert key(msg(A, clock, 300)) != key(msg(B, clock, None))


@pytest.mark.parametrize("ttl", ["0", "1441", "-5", "abc", "1.5", ""])
def test_the_simulator_refuses_a_ttl_out_of_range_with_208(session, sandbox, ttl):
    """Request level, nothing accepted (`ttl=` empty counts as given and wrong)."""
    reply = session.post("http://smsru.sandbox/sms/send", data={
        "api_id": "sandbox-smsru-api-id", "json": "1", "to": "79161234501", "msg": "x",
        "ttl": ttl}).json()
    assert (reply["status"], reply["status_code"]) == ("ERROR", 208)
    assert sandbox.state.messages == []


def test_208_reads_as_a_rejection():
    from providers.smsru_codes import error_for

    assert isinstance(error_for(208), MessageRejected)


def test_the_simulator_expires_a_message_whose_ttl_ends_before_delivery(
        smsru, sandbox, clock):
    """Delivery takes 10 min, ttl is 2: sent until minute 2, then 104 from that moment."""
    sandbox.state.configure({"final_after": 600, "outcomes": {"delivered": 1.0}})
    res = smsru.send([msg(A, clock, 150)])[0]
    query = [StatusQuery(res.provider_message_id, A)]
    clock.advance(119)
    assert smsru.status(query)[0].status is Status.SENT
    clock.advance(1)
    (late,) = smsru.status(query)
    assert (late.status, late.raw_code) == (Status.EXPIRED, "104")
    assert late.updated_at == pytest.approx(clock.now)


def test_a_ttl_longer_than_the_delivery_changes_nothing(smsru, sandbox, clock):
    sandbox.state.configure({"outcomes": {"delivered": 1.0}})
    res = smsru.send([msg(A, clock, 600)])[0]
    clock.advance(6)
    assert smsru.status([StatusQuery(res.provider_message_id, A)])[0].status is Status.DELIVERED


def test_random_deadlines_never_go_out_longer_than_what_remains(smsru, sandbox, clock):
    """Seeded: for any remaining time and wait, ttl*60 <= what was left when it left."""
    seed = random.randrange(2**32)
    print("seed", seed)
    rng = random.Random(seed)
    for i in range(200):
        left, wait = rng.uniform(0, 2 * 86400), rng.choice([0.0, rng.uniform(0, 120)])
        smsru.throttle = lambda wait=wait: clock.advance(wait)
        start = clock.now
        try:
            smsru.send([msg(f"+7916{i + 1:07d}", clock, left)])
        except ValidityExpired:
            assert left - wait < 60
            continue
        ttl = int(sends(sandbox)[-1]["validity"])
        assert 1 <= ttl <= 1440 and ttl * 60 <= start + left - clock.now
        assert ttl == min(1440, int((start + left - clock.now) // 60))


def test_hostile_deadlines_and_options(smsru, sandbox, clock):
    """An infinite deadline is no limit (the cap), NaN is no time left, junk options yield."""
    inf = OutgoingMessage("r1", A, "x", "smsq", {"ttl": {"a": 1}}, valid_until=float("inf"))
    nan = OutgoingMessage("r2", B, "x", "smsq", valid_until=float("nan"))
    assert smsru.batch_key(inf) != smsru.batch_key(nan) != smsru.batch_key(msg(A, clock, 60))
    smsru.send([inf])
    assert sends(sandbox)[-1]["validity"] == "1440"
    with pytest.raises(ValidityExpired):
        smsru.send([nan])
    for given in (True, -3, 2.5, "", None, "7"):
        smsru.send([msg(A, clock, 600, ttl=given)])
        assert sends(sandbox)[-1]["validity"] == ("7" if given == "7" else "10")
