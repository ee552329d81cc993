"""Gatum REST quirks: two-step token, array sends, sms-full-data status, groups, DLR webhook."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import requests

from providers.errors import (
    InvalidRecipient,
    MessageRejected,
    ProviderAuthError,
    RateLimited,
)
from providers.gatum import Gatum, parse_dlr
from providers.gatum_codes import ERROR_CODES, STATES, classify, status_of
from providers.models import OutgoingMessage, Secret, Status, StatusQuery
from providers.sandbox import Sandbox
from providers.sandbox.adapter import WSGIAdapter
from providers.sandbox.core import Fault, SandboxState
from providers.sandbox.reports import ReportPusher

A, B, C = "+79161234501", "+79161234502", "+79161234503"


@pytest.fixture
def sandbox(clock) -> Sandbox:
    return Sandbox(SandboxState(clock=clock, queued_for=1.0, final_after=5.0), names=["gatum"])


@pytest.fixture
def wire(session) -> list[requests.PreparedRequest]:
    seen: list[requests.PreparedRequest] = []
    session.hooks["response"].append(lambda r, *a, **k: seen.append(r.request))
    return seen


@pytest.fixture
def gatum(make_provider, clock) -> Gatum:
    provider = make_provider("gatum")
    provider.clock = clock
    return provider


def msg(phone: str = A, text: str = "Hi", sender: str | None = "smsq", **opt) -> OutgoingMessage:
    return OutgoingMessage(ref="r" + phone[-4:], recipient=phone, text=text, sender=sender,
                           options=opt)


def paths(wire) -> list[str]:
    return [r.path_url for r in wire]


def body(req: requests.PreparedRequest) -> Any:
    return json.loads(req.body)


def test_token_takes_two_steps_then_rides_in_header(gatum, wire):
    """authorize -> accesstoken, then the token goes in X-Access-Token."""
    gatum.send([msg()])
    assert paths(wire) == ["/v1/authorize", "/v1/accesstoken", "/v1/send"]
    assert body(wire[0]) == {"username": "sandbox", "password": "sandbox-gatum-pass"}
    assert set(body(wire[1])) == {"authorization_code"}
    assert wire[2].headers["X-Access-Token"] == gatum._token[0]


def test_token_is_cached_between_calls(gatum, wire):
    """A second call reuses the token: no new authorize."""
    gatum.send([msg()])
    gatum.balance()
    assert paths(wire).count("/v1/authorize") == 1


def test_trailing_slash_base_url_never_doubles_the_slash(make_provider, sandbox, wire):
    """A base URL ending in "/" still yields /v1/... paths."""
    provider = make_provider("gatum", base_url=sandbox.account("gatum").base_url + "/")
    provider.balance()
    assert all("//v1" not in r.url for r in wire)


def test_send_groups_texts_into_objects_of_one_array(gatum, wire):
    """Different texts share one request: one message object per (sender, text)."""
    gatum.send([msg(A, "one"), msg(B, "two"), msg(C, "one")])
    sends = [r for r in wire if r.path_url == "/v1/send"]
    assert len(sends) == 1
    assert body(sends[0]) == [
        {"number": ["79161234501", "79161234503"], "senderID": "smsq", "text": "one",
         "type": "sms", "delivery": True},
        {"number": ["79161234502"], "senderID": "smsq", "text": "two",
         "type": "sms", "delivery": True}]


def test_schedule_options_go_on_the_object(gatum, wire):
    """lifetime / begin_date / begin_time options become lifetime, beginDate, beginTime."""
    gatum.send([msg(lifetime=3600, begin_date="2030-01-02", begin_time="10:00:00")])
    obj = body(wire[-1])[0]
    assert (obj["lifetime"], obj["beginDate"], obj["beginTime"]) == \
        ("3600", "2030-01-02", "10:00:00")


def test_results_follow_message_order_with_id_state(gatum, sandbox):
    """Each result carries its recipient's id_state, in the caller's order."""
    results = gatum.send([msg(A, "one"), msg(B, "two"), msg(C, "one")])
    recorded = {m.phone: m.id for m in sandbox.state.messages}
    assert [r.provider_message_id for r in results] == \
        [recorded["79161234501"], recorded["79161234502"], recorded["79161234503"]]


def test_black_listed_number_is_refused_per_recipient(gatum):
    """A number on the black list is an InvalidRecipient with code black_list."""
    gatum.black_list_add([79161234502])
    results = gatum.send([msg(A), msg(B)])
    assert results[0].accepted
    assert isinstance(results[1].error, InvalidRecipient)
    assert results[1].raw_code == "black_list"


def test_expired_token_reauthenticates_once(gatum, sandbox, wire):
    """A 401 mid-run drops the token, re-authenticates once and retries the call."""
    gatum.send([msg(A)])
    sandbox.sims["gatum"].expire_tokens()
    assert gatum.send([msg(B)])[0].accepted
    assert paths(wire)[3:] == ["/v1/send", "/v1/authorize", "/v1/accesstoken", "/v1/send"]


def test_second_401_is_auth_error_not_a_loop(gatum, sandbox, wire):
    """A 401 after re-authentication raises ProviderAuthError; the call ran twice."""
    sandbox.state.add_fault(Fault(kind="http_error", status=401, gateway="gatum",
                                  path="/v1/send", count=-1))
    with pytest.raises(ProviderAuthError):
        gatum.send([msg()])
    assert paths(wire).count("/v1/send") == 2


def test_token_renewed_shortly_before_expires_at(gatum, sandbox, clock, wire):
    """With a 120 s token, a call 61 s later authenticates anew (60 s margin)."""
    sandbox.sims["gatum"].configure(token_ttl=120)
    gatum.balance()
    clock.advance(61)
    gatum.balance()
    assert paths(wire).count("/v1/authorize") == 2


def test_wrong_password_is_auth_error_on_password_field(make_provider):
    """The documented 400 {"errors": {"password": [...]}} is ProviderAuthError."""
    provider = make_provider("gatum", credentials={"username": Secret("sandbox"),
                                                   "password": Secret("nope")})
    with pytest.raises(ProviderAuthError) as info:
        provider.balance()
    assert (info.value.http_status, info.value.code) == (400, "password")


def test_unregistered_sender_is_message_rejected(gatum):
    """A sender the gateway refuses is MessageRejected code not_registr_originator."""
    with pytest.raises(MessageRejected) as info:
        gatum.send([msg(sender="far-too-long-sender")])
    assert info.value.code == "not_registr_originator"


def test_malformed_number_field_is_invalid_recipient():
    """A 400 on the number field is InvalidRecipient, any other field MessageRejected."""
    assert isinstance(classify(400, {"number": ["bad"]}), InvalidRecipient)
    assert isinstance(classify(400, {"text": ["blank"]}), MessageRejected)


@pytest.mark.parametrize(("code", "whole", "one"), [
    ("not_registr_originator", MessageRejected, MessageRejected),
    ("no_client_price", ProviderAuthError, InvalidRecipient),
    ("no_active_aggregator", ProviderAuthError, InvalidRecipient),
    ("invalid_credentials", ProviderAuthError, ProviderAuthError),
    ("unauthorized", ProviderAuthError, ProviderAuthError),
    ("invalid_number", InvalidRecipient, InvalidRecipient),
    ("black_list", InvalidRecipient, InvalidRecipient),
])
def test_error_code_table(code, whole, one):
    """Every documented error string maps to its class, request-wide and per recipient."""
    assert set(ERROR_CODES) >= {code}
    assert type(classify(400, {"x": [code]})) is whole
    assert type(classify(None, {"number": [code]}, per_recipient=True)) is one


def test_429_is_rate_limited_with_retry_after():
    """HTTP 429 is RateLimited carrying the Retry-After hint."""
    error = classify(429, None, retry_after=7.0)
    assert isinstance(error, RateLimited) and error.retry_after == 7.0


@pytest.mark.parametrize(("state", "status"), [
    *STATES.items(), ("UNKNOWN", Status.UNKNOWN), ("delivrd", Status.DELIVERED),
    (None, Status.UNKNOWN)])
def test_state_table(state, status):
    """id_state states map per providers.md §4.5; anything else is UNKNOWN."""
    assert status_of(state) is status


def test_status_searches_sms_full_data_by_phone(gatum, sandbox, clock, wire):
    """status() posts sms-full-data {"phone": [...]} and matches rows by id_state."""
    sandbox.state.outcomes = {"undelivered": 1.0}
    sent = gatum.send([msg(A), msg(B)])
    clock.advance(10)
    result = gatum.status([StatusQuery(r.provider_message_id, r.recipient) for r in sent])
    assert body(wire[-1]) == {"phone": ["79161234501", "79161234502"]}
    assert [(r.status, r.raw_code) for r in result] == [(Status.UNDELIVERED, "UNDELIV")] * 2


def test_lookup_finds_unknown_send_by_phone_period_and_text(gatum, clock, wire):
    """lookup() filters by phone and time_period, then picks the row with the same text."""
    start = clock()
    sent = gatum.send([msg(A, "other"), msg(A, "the one")])
    found = gatum.lookup(msg(A, "the one"), start)
    assert found is not None and found.provider_message_id == sent[1].provider_message_id
    sent_body = body(wire[-1])
    assert sent_body["phone"] == ["79161234501"]
    assert sent_body["time_period"] == "2023-11-14 22:13:19 - 2023-11-14 22:14:20"


def test_lookup_without_matching_text_is_none(gatum, clock):
    """No row with the same text means the send never happened: None."""
    start = clock()
    gatum.send([msg(A, "other")])
    assert gatum.lookup(msg(A, "never sent"), start) is None


def test_sms_full_data_sends_every_filter(gatum, wire):
    """Each filter goes out under its wire name; unset ones are omitted."""
    gatum.sms_full_data(mcc=250, mnc=1, sender="smsq", phone=["79161234501"], id_base=[2],
                        time_period="2023-11-14 00:00:00 - 2023-11-15 00:00:00",
                        type_sms="sms", limit=5, state=["DELIVRD"], offset=0)
    assert body(wire[-1]) == {
        "MCC": 250, "MNC": 1, "sender": "smsq", "phone": ["79161234501"], "id_base": [2],
        "time_period": "2023-11-14 00:00:00 - 2023-11-15 00:00:00", "type_sms": "sms",
        "limit": 5, "state": ["DELIVRD"], "offset": 0}


def test_send_bulk_expands_groups_minus_excluded_and_black_list(gatum, sandbox):
    """send-bulk reaches group numbers + phones, minus excluded groups and the black list."""
    keep = gatum.create_group("keep")["id_group"]
    drop = gatum.create_group("drop")["id_group"]
    gatum.group_number_add(keep, [{"number": 79161234501}, {"number": 79161234502},
                                  {"number": 79161234503}])
    gatum.group_number_add(drop, [{"number": 79161234502}])
    gatum.black_list_add([79161234503])
    data = gatum.send_bulk("smsq", "Promo", [keep], id_group_excluded=[drop],
                           phone=["79161234504"])
    recorded = sorted((m.phone, m.meta["bulk"], tuple(m.meta["groups"]))
                      for m in sandbox.state.messages)
    assert recorded == [("79161234501", True, (keep,)), ("79161234504", True, (keep,))]
    assert data["details"]["count"] == 2


def test_list_groups_offset_is_a_page_index(gatum):
    """offset=1 with limit=2 returns the third and fourth groups."""
    for i in range(5):
        gatum.create_group(f"g{i}")
    page = gatum.list_groups(limit=2, offset=1)
    assert [g["name_group"] for g in page["list"]] == ["g2", "g3"]


def test_register_needs_no_token(gatum, wire):
    """register goes out without X-Access-Token and without authorizing first."""
    gatum.register_customer("newbie", "pw", "Ann", "79161234509", "a@example.com")
    assert paths(wire) == ["/v1/register"]
    assert "X-Access-Token" not in wire[0].headers


def test_logout_destroys_the_token(gatum, wire):
    """After GET /v1/logout the next call authenticates again."""
    gatum.balance()
    gatum.logout()
    gatum.balance()
    assert paths(wire).count("/v1/authorize") == 2
    assert wire[3].method == "GET" and wire[3].path_url == "/v1/logout"


def test_balance_reads_finance_balance(gatum):
    """balance() reads /v1/me finance.balance and currency."""
    balance = gatum.balance()
    assert (balance.amount, balance.currency) == (Decimal("1000.00"), "EUR")


def test_parse_dlr_acks_every_id_state_as_string():
    """The seed's DLR array parses, and the ack is the id_state list as strings."""
    body = json.dumps([
        {"id_state": 598933232, "originator": "SMS", "phone": "380957225759", "type_sms": "sms",
         "text_sms": "Your OTP is 42432", "num_parts": 1, "part_no": 1, "state": "DELIVRD",
         "time": "2023-07-24 12:03:48"},
        {"id_state": 598933233, "state": "UNDELIV", "phone": "380957225759"}]).encode()
    results, ack = parse_dlr(body)
    assert ack == ["598933232", "598933233"]
    assert [r.status for r in results] == [Status.DELIVERED, Status.UNDELIVERED]
    assert results[0].updated_at == 1690200228.0 and results[0].recipient == "+380957225759"


def test_report_acked_only_when_every_id_comes_back(gatum, sandbox):
    """The simulator counts a DLR push as acked only for a JSON list of every id_state."""
    sim = sandbox.sims["gatum"]
    gatum.send([msg(A), msg(B)])
    msgs = list(sandbox.state.messages)
    ids = [m.id for m in msgs]
    assert sim.report_acked(200, json.dumps(ids).encode(), msgs)
    assert not sim.report_acked(200, json.dumps(ids[:1]).encode(), msgs)
    assert not sim.report_acked(200, json.dumps([int(i) for i in ids]).encode(), msgs)
    assert not sim.report_acked(500, json.dumps(ids).encode(), msgs)


def test_dlr_webhook_round_trip(gatum, sandbox, clock):
    """Pushed DLRs are a JSON array a parse_dlr receiver acknowledges in full."""
    received: list[str] = []

    def receiver(environ, start_response):
        raw = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        results, ack = parse_dlr(raw)
        received.extend(f"{r.provider_message_id}:{r.status}" for r in results)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(ack).encode()]

    hook = requests.Session()
    hook.mount("http://hooks.test/", WSGIAdapter(receiver))
    sandbox.state.callbacks["gatum"] = ["http://hooks.test/restdlr"]
    sandbox.state.outcomes = {"delivered": 1.0}
    sent = gatum.send([msg(A), msg(B)])
    clock.advance(10)
    assert ReportPusher(sandbox, session=hook).push_once() == 2
    assert received == [f"{r.provider_message_id}:delivered" for r in sent]
