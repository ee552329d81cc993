"""Gatum's `lifetime` (seconds, per message object, default 86400): what smsq puts on the
wire for a deadline, and how the simulator checks and enforces it."""

from __future__ import annotations

import json

import pytest
import requests

from providers.errors import MessageRejected, ValidityExpired
from providers.gatum import Gatum
from providers.models import Status, StatusQuery
from providers.sandbox import Sandbox
from providers.sandbox.core import SandboxState
from tests.providers.validity_helpers import msg

A, B, C = "+79161234501", "+79161234502", "+79161234503"


@pytest.fixture
def sandbox(clock) -> Sandbox:
    return Sandbox(SandboxState(clock=clock, queued_for=1.0, final_after=5.0), names=["gatum"])


@pytest.fixture
def gatum(make_provider, clock) -> Gatum:
    provider = make_provider("gatum")
    provider.clock = clock
    return provider


def sends(sandbox):
    return [r for r in sandbox.state.requests if r["path"] == "/v1/send"]


@pytest.mark.parametrize(("left", "lifetime"), [(1, "1"), (1.999, "1"), (300.5, "300"),
                                                (86400, "86400"), (7 * 86400, "86400")])
def test_remaining_validity_goes_as_whole_seconds_rounded_down_and_capped(
        gatum, sandbox, clock, left, lifetime):
    assert gatum.send([msg(A, clock, left)])[0].accepted
    assert sends(sandbox)[-1]["validity"] == [lifetime]
    assert sandbox.state.messages[-1].valid_until == clock.now + int(lifetime)


def test_no_deadline_sends_no_lifetime_and_the_default_applies(gatum, sandbox, clock):
    gatum.send([msg(A, clock, None)])
    assert "validity" not in sends(sandbox)[-1]
    assert sandbox.state.messages[-1].valid_until == clock.now + 86400


def test_under_a_second_left_nothing_is_sent(gatum, sandbox, clock):
    with pytest.raises(ValidityExpired):
        gatum.send([msg(A, clock, 0.5)])
    assert sends(sandbox) == []


def test_lifetime_is_counted_after_the_wait(gatum, sandbox, clock):
    gatum.access_token()  # the token's own requests are not the send
    gatum.throttle = lambda: clock.advance(7)
    gatum.send([msg(A, clock, 30)])
    assert sends(sandbox)[-1]["validity"] == ["23"]


def test_each_message_object_carries_its_own_lifetime(gatum, sandbox, clock):
    """One request, deadlines in different seconds: one object each, each its own value;
    the same second and text share an object."""
    gatum.send([msg(A, clock, 100), msg(B, clock, 100.4), msg(C, clock, 200)])
    assert sends(sandbox)[-1]["validity"] == ["100", "200"]
    by_phone = {m.phone: m.valid_until - clock.now for m in sandbox.state.messages}
    assert by_phone == {"79161234501": 100, "79161234502": 100, "79161234503": 200}


def test_a_producer_lifetime_option_only_ever_shortens(gatum, sandbox, clock):
    gatum.send([msg(A, clock, 600, lifetime="60")])
    gatum.send([msg(B, clock, 600, lifetime="6000")])
    assert [r["validity"] for r in sends(sandbox)] == [["60"], ["600"]]


@pytest.mark.parametrize("lifetime", [0, "0", -1, 86401, "1.5", "abc", True, []])
def test_the_simulator_refuses_a_bad_lifetime_with_a_400_naming_it(
        gatum, sandbox, lifetime):
    token = gatum.access_token()
    obj = {"number": ["79161234501"], "senderID": "smsq", "text": "x", "lifetime": lifetime}
    reply = gatum.session.post("http://gatum.sandbox/v1/send", json=[obj],
                               headers={"X-Access-Token": token})
    assert reply.status_code == 400 and "lifetime" in reply.json()["errors"]
    assert sandbox.state.messages == []


def test_a_refused_lifetime_is_a_rejection(gatum, sandbox, clock, monkeypatch):
    """Should smsq ever send a value the gateway refuses, the message is rejected."""
    from providers import gatum as module
    from providers.validity import WireValidity

    monkeypatch.setattr(module, "LIFETIME", WireValidity("lifetime", 1.0, 1, 10**6))
    with pytest.raises(MessageRejected):
        gatum.send([msg(A, clock, 100_000)])


def test_the_simulator_expires_a_message_whose_lifetime_ends_before_delivery(
        gatum, sandbox, clock):
    sandbox.state.configure({"final_after": 60, "outcomes": {"delivered": 1.0}})
    res = gatum.send([msg(A, clock, 20)])[0]
    query = [StatusQuery(res.provider_message_id, A)]
    clock.advance(19)
    assert gatum.status(query)[0].status is Status.SENT
    clock.advance(1)
    assert gatum.status(query)[0].status is Status.EXPIRED


def test_request_body_is_valid_json_with_lifetime_as_a_string(gatum, session, clock):
    seen: list[requests.PreparedRequest] = []
    session.hooks["response"].append(lambda r, *a, **k: seen.append(r.request))
    gatum.send([msg(A, clock, 42)])
    (obj,) = json.loads(seen[-1].body)
    assert obj["lifetime"] == "42" and obj["number"] == ["79161234501"]
