"""SMSC's `valid` (the message's lifetime, `hh:mm` or whole hours, 00:01..24:00): what smsq
puts on the wire for a deadline, and how the simulator checks and enforces it."""

from __future__ import annotations

import random

import pytest

from providers.errors import PermanentError, ValidityExpired
from providers.models import Status, StatusQuery
from providers.sandbox import Sandbox
from providers.sandbox.core import SandboxState
from providers.smsc_codes import classify
from providers.validity import hhmm, parse_hhmm
from tests.providers.validity_helpers import msg as validity_msg

A, B = "+79161234501", "+79161234502"
AUTH = {"login": "sandbox", "psw": "sandbox-smsc-pass", "fmt": "3", "charset": "utf-8"}


@pytest.fixture
def sandbox(clock):
    return Sandbox(SandboxState(clock=clock, queued_for=1.0, final_after=5.0), names=["smsc"])


@pytest.fixture
def smsc(make_provider, clock):
    provider = make_provider("smsc")
    provider.clock = clock
    return provider


def msg(phone, clock, left, text="Code 1234", ref="ref-1", **options):
    return validity_msg(phone, clock, left, text, ref, **options)


def sends(sandbox):
    return [r for r in sandbox.state.requests if r["path"] == "/sys/send.php"]


@pytest.mark.parametrize(("left", "valid"), [(60, "00:01"), (119.99, "00:01"), (3600, "01:00"),
                                             (5430, "01:30"), (86400, "24:00"),
                                             (3 * 86400, "24:00")])
def test_remaining_validity_goes_as_hh_mm_rounded_down_and_capped(
        smsc, sandbox, clock, left, valid):
    assert smsc.send([msg(A, clock, left)])[0].accepted
    assert sends(sandbox)[-1]["validity"] == valid


def test_no_deadline_sends_no_valid(smsc, sandbox, clock):
    smsc.send([msg(A, clock, None)])
    assert "validity" not in sends(sandbox)[-1]


def test_under_a_minute_left_nothing_is_sent(smsc, sandbox, clock):
    with pytest.raises(ValidityExpired):
        smsc.send([msg(A, clock, 59)])
    assert sends(sandbox) == []


def test_valid_is_counted_after_the_wait_on_every_mirror(smsc, sandbox, clock):
    """Main host down, then a wait before the mirror: valid counts from the mirror's send."""
    sandbox.state.set_host("smsc", False)
    smsc.throttle = lambda: clock.advance(120)
    smsc.send([msg(A, clock, 3600)])
    (sent,) = sends(sandbox)
    assert sent["host"] == "smsc-www2" and sent["validity"] == "00:56"


def test_a_long_request_goes_as_post_with_valid(smsc, sandbox, clock):
    """Past 2000 characters the request is a POST; `valid` rides in its body."""
    smsc.send([msg(A, clock, 600, text="я" * 400)])
    assert sends(sandbox)[-1]["method"] == "POST" and sends(sandbox)[-1]["validity"] == "00:10"


@pytest.mark.parametrize(("given", "valid"), [("00:05", "00:05"), ("2", "00:10"),
                                              ("bad", "00:10"), ("01:00", "00:10")])
def test_a_producer_valid_option_only_ever_shortens(smsc, sandbox, clock, given, valid):
    smsc.send([msg(A, clock, 600, valid=given)])
    assert sends(sandbox)[-1]["validity"] == valid


def test_a_producer_valid_without_deadline_is_passed_through(smsc, sandbox, clock):
    smsc.send([msg(A, clock, None, valid="02:00")])
    assert sends(sandbox)[-1]["validity"] == "02:00"


def test_per_recipient_texts_share_the_earliest_deadline(smsc, sandbox, clock):
    smsc.send([msg(A, clock, 900, "one"), msg(B, clock, 700, "two", ref="ref-2")])
    assert sends(sandbox)[-1]["validity"] == "00:11"


def test_batch_key_splits_deadlines_a_minute_apart(smsc, clock):
    clock.now = 1_700_000_040.0
    assert smsc.batch_key(msg(A, clock, 600)) == smsc.batch_key(msg(B, clock, 659, "y"))
    assert smsc.batch_key(msg(A, clock, 600)) != smsc.batch_key(msg(B, clock, 660))


@pytest.mark.parametrize("valid", ["00:00", "0", "24:01", "25", "01:60", "1:5", "abc", "-1",
                                   "", "001:00"])
def test_the_simulator_refuses_valid_out_of_form_or_range_with_error_1(
        session, sandbox, valid):
    reply = session.get("http://smsc.sandbox/sys/send.php", params={
        **AUTH, "phones": "79161234501", "mes": "x", "valid": valid}).json()
    assert reply["error_code"] == 1 and sandbox.state.messages == []
    assert isinstance(classify(1, sending=True), PermanentError)


@pytest.mark.parametrize(("valid", "seconds"), [("3", 10800), ("24", 86400), ("00:01", 60),
                                                ("24:00", 86400), ("7:30", 27000)])
def test_the_simulator_takes_hours_and_hh_mm(session, sandbox, valid, seconds, clock):
    reply = session.get("http://smsc.sandbox/sys/send.php", params={
        **AUTH, "phones": "79161234501", "mes": "x", "valid": valid}).json()
    assert reply["cnt"] == 1
    assert sandbox.state.messages[-1].valid_until == clock.now + seconds


def test_the_simulator_expires_a_message_whose_valid_ends_before_delivery(
        smsc, sandbox, clock):
    """Delivery takes an hour, valid is 00:02: status 3 (Просрочено) from minute 2."""
    sandbox.state.configure({"final_after": 3600, "outcomes": {"delivered": 1.0}})
    res = smsc.send([msg(A, clock, 150)])[0]
    query = [StatusQuery(res.provider_message_id, A)]
    clock.advance(119)
    assert smsc.status(query)[0].status is Status.SENT
    clock.advance(1)
    (late,) = smsc.status(query)
    assert (late.status, late.raw_code) == (Status.EXPIRED, "3")
    assert late.updated_at == pytest.approx(clock.now)


def test_hhmm_and_its_reading_agree():
    """Every minute count the client can send reads back the same (seeded sample)."""
    seed = random.randrange(2**32)
    print("seed", seed)
    rng = random.Random(seed)
    for minutes in [1, 59, 60, 61, 1439, 1440, *(rng.randrange(1, 1441) for _ in range(200))]:
        assert parse_hhmm(hhmm(minutes)) == minutes
    assert parse_hhmm("3") == 180 and parse_hhmm("01:75") is None and parse_hhmm("x") is None
