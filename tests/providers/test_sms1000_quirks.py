"""1000sms.ru wire details: form POST send, GET reads, one phone / id per call, code tables."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from providers.errors import (
    GatewayUnavailable,
    InvalidRecipient,
    MessageRejected,
    PermanentError,
    ProviderAuthError,
    ValidationError,
)
from providers.models import OutgoingMessage, Status, StatusQuery
from providers.sms1000 import parse_report, parse_send, parse_time

SIM_EMAIL = "sandbox@example.com"
SIM_PASSWORD = "sandbox-sms1000-pass"
PHONE = "+79161234501"


@pytest.fixture
def provider(make_provider):
    return make_provider("sms1000")


@pytest.fixture
def sim(sandbox):
    return sandbox.sims["sms1000"]


def msg(text: str = "Hello", sender: str | None = "smsq", phone: str = PHONE) -> OutgoingMessage:
    return OutgoingMessage(ref="r1", recipient=phone, text=text, sender=sender)


def body(code: object, data: object = None) -> bytes:
    return json.dumps({"response": {"msg": {"err_code": code, "text": "t", "type": "x"},
                                    "data": data}}).encode()


def send_id(provider, **kw) -> str:
    result = provider.send([msg(**kw)])[0]
    assert result.accepted
    return str(result.provider_message_id)


def test_push_msg_is_a_form_post_with_every_argument_in_the_body(provider, sim):
    """push_msg goes as a form POST to "/" with method, format, credentials, phone digits."""
    provider.send([msg(text="Привет", sender="smsq")])
    call = sim.calls()[-1]
    assert call["http"] == "POST" and call["query"] == {}
    assert call["form"] == {"method": "push_msg", "phone": "79161234501", "text": "Привет",
                            "sender_name": "smsq", "format": "JSON",
                            "email": SIM_EMAIL, "password": SIM_PASSWORD}


def test_missing_sender_is_left_to_the_gateway_default(provider, sim, sandbox):
    """Without a sender no sender_name is sent and the profile's default is used."""
    provider.send([msg(sender=None)])
    assert "sender_name" not in sim.calls()[-1]["form"]
    assert sandbox.state.messages[-1].sender == "sandbox"


def test_report_is_a_get_with_one_id(provider, sim):
    """get_msg_report is a GET carrying exactly one id, format=JSON and the credentials."""
    msg_id = send_id(provider)
    provider.status([StatusQuery(msg_id, PHONE)])
    call = sim.calls()[-1]
    assert call["http"] == "GET" and call["form"] == {}
    assert call["query"] == {"method": "get_msg_report", "id": msg_id, "format": "JSON",
                             "email": SIM_EMAIL, "password": SIM_PASSWORD}


def test_several_status_queries_cost_one_request_each(provider, sim):
    """Two ids are looked up with two GETs, answered in query order."""
    ids = [send_id(provider), send_id(provider)]
    before = len(sim.calls())
    results = provider.status([StatusQuery(i) for i in ids])
    assert len(sim.calls()) - before == 2
    assert [r.provider_message_id for r in results] == ids


def test_send_refuses_more_than_one_recipient(provider):
    """max_recipients is 1: a two-message batch is a ValidationError, nothing is sent."""
    assert provider.max_recipients == 1 and provider.max_status_ids == 1
    with pytest.raises(ValidationError):
        provider.send([msg(), msg(phone="+79161234502")])


def test_cost_is_part_price_times_parts(provider):
    """credits is the price of one part: a two-part text costs 2 x 1.75."""
    result = provider.send([msg(text="x" * 200)])[0]
    assert result.segments == 2
    assert result.cost == Decimal("3.50")


def test_message_ids_increase(provider):
    """The gateway's ids grow with every accepted message."""
    first, second = int(send_id(provider)), int(send_id(provider))
    assert second > first


def test_numeric_err_code_is_accepted():
    """err_code may come as a number as well as a string."""
    data = {"id": 7, "credits": 1.5, "n_raw_sms": "3", "sender_name": "smsq"}
    result = parse_send(body(0, data), msg())
    assert result.provider_message_id == "7" and result.cost == Decimal("4.5")


@pytest.mark.parametrize(("code", "error"), [
    (2, ProviderAuthError), (604, ProviderAuthError), (605, ProviderAuthError),
    (623, ProviderAuthError), (99, GatewayUnavailable), (501, GatewayUnavailable),
    (699, GatewayUnavailable), (7, MessageRejected), (607, MessageRejected),
    (608, MessageRejected), (616, MessageRejected), (620, MessageRejected),
    (621, MessageRejected), (624, MessageRejected), (610, PermanentError),
    (9999, PermanentError),
])
def test_request_level_codes_raise_their_class(code, error):
    """Each documented err_code on push_msg raises its class, carrying the code."""
    with pytest.raises(error) as info:
        parse_send(body(str(code)), msg())
    assert info.value.code == str(code)


@pytest.mark.parametrize("code", [617, 618, 619, 622])
def test_recipient_codes_are_a_per_recipient_result(code):
    """Number errors refuse the one recipient as a result, not a raised error."""
    result = parse_send(body(str(code)), msg())
    assert isinstance(result.error, InvalidRecipient) and result.raw_code == str(code)


def test_black_listed_number_is_618(provider):
    """The sandbox's "0000" numbers come back refused with the black-list code."""
    result = provider.send([msg(phone="+79161230000")])[0]
    assert isinstance(result.error, InvalidRecipient) and result.raw_code == "618"


def test_non_russian_length_number_is_617(provider):
    """A twelve-digit number is not the 11-digit format the gateway takes: 617."""
    result = provider.send([msg(phone="+380971234567")])[0]
    assert isinstance(result.error, InvalidRecipient) and result.raw_code == "617"


@pytest.mark.parametrize(("sender", "code"), [
    ("Отправитель", "620"), ("ab@cd", "607"), ("abcdefghijkl", "608"),
    ("abc", "621"), ("ab123", "621"),
])
def test_sender_rules(provider, sender, code):
    """Sender names break the table's rules with 620/607/608/621, raised as MessageRejected."""
    with pytest.raises(MessageRejected) as info:
        provider.send([msg(sender=sender)])
    assert info.value.code == code


def test_empty_balance_is_an_account_error(provider, sim, sandbox):
    """No money (623) is a ProviderAuthError, so the pipeline moves to another account."""
    sim.set_balance(Decimal(0))
    with pytest.raises(ProviderAuthError) as info:
        provider.send([msg()])
    assert info.value.code == "623"
    assert not sandbox.state.messages


def test_state_codes_follow_the_timeline(provider, clock, sandbox):
    """A message reads state 4, then 8, then 0, then 1 as it moves along."""
    sandbox.state.outcomes = {"delivered": 1.0}
    query = StatusQuery(send_id(provider), PHONE)
    seen = []
    for _ in range(4):
        result = provider.status([query])[0]
        seen.append((result.raw_code, result.status))
        clock.advance(2)
    assert seen == [("4", Status.QUEUED), ("8", Status.SENT), ("0", Status.SENT),
                    ("1", Status.DELIVERED)]


@pytest.mark.parametrize(("outcome", "state", "status"), [
    ("undelivered", "2", Status.UNDELIVERED), ("expired", "34", Status.EXPIRED),
    ("rejected", "16", Status.FAILED),
])
def test_final_failures_map_with_state_text(provider, clock, sandbox, outcome, state, status):
    """Final failures keep the raw state and the gateway's state_text as the error."""
    sandbox.state.outcomes = {outcome: 1.0}
    query = StatusQuery(send_id(provider), PHONE)
    clock.advance(10)
    result = provider.status([query])[0]
    assert (result.raw_code, result.status) == (state, status)
    assert result.error


def test_last_update_is_moscow_time(provider, clock, sandbox):
    """last_update ("yyyy-MM-dd HH:mm:ss", Moscow) becomes the final-status timestamp."""
    sent_at = clock.now
    query = StatusQuery(send_id(provider), PHONE)
    clock.advance(10)
    result = provider.status([query])[0]
    assert result.updated_at == sent_at + sandbox.state.final_after
    assert result.sent_at == sent_at
    assert parse_time("2024-01-01 03:00:00") == 1704067200.0


def test_last_update_empty_in_transit(provider):
    """While in transit last_update is empty and updated_at stays None."""
    result = provider.status([StatusQuery(send_id(provider), PHONE)])[0]
    assert result.updated_at is None


@pytest.mark.parametrize(("msg_id", "raw"), [("999999999", "err602"), ("abc", "err1")])
def test_unknown_ids_are_unknown(provider, msg_id, raw):
    """602 (no such SMS) and 1 (bad id) on a report read as UNKNOWN, not as errors."""
    result = provider.status([StatusQuery(msg_id)])[0]
    assert (result.status, result.raw_code) == (Status.UNKNOWN, raw)


def test_report_data_id_is_not_the_message_id():
    """The report's data.id (the sender's user id) is ignored; the queried id is kept."""
    report = {"id": "4242", "state": "1", "state_text": "Доставлено", "last_update": ""}
    result = parse_report(body("0", report), StatusQuery("3000001"))
    assert result.provider_message_id == "3000001" and result.status is Status.DELIVERED


def test_balance_reads_credits_and_currency_without_the_email(provider):
    """get_profile: credits is the amount, "руб." the currency; email stays out of extra."""
    provider.send([msg()])
    balance = provider.balance()
    assert balance.amount == Decimal("999998.25") and balance.currency == "руб."
    assert balance.extra["credits_used"] == "1.75"
    assert "email" not in balance.extra


def test_sim_wrong_password_is_err_code_2_with_http_200(session):
    """Wrong credentials answer HTTP 200 with err_code "2" (a string) and type error."""
    resp = session.get("http://sms1000.sandbox/", params={
        "method": "get_profile", "email": SIM_EMAIL, "password": "nope", "format": "json"})
    assert resp.status_code == 200
    assert resp.json()["response"]["msg"] == {
        "err_code": "2", "text": "Неверный логин и(или) пароль.", "type": "error"}


def test_sim_default_format_is_xml(session):
    """Without format the sandbox answers its XML rendering of the same envelope."""
    resp = session.get("http://sms1000.sandbox/", params={
        "method": "get_profile", "email": SIM_EMAIL, "password": SIM_PASSWORD})
    assert resp.headers["Content-Type"].startswith("text/xml")
    assert b"<response><msg><err_code>0</err_code>" in resp.content


def test_sim_accepts_push_msg_over_get_and_checks_params(session, sandbox):
    """The seed's GET form of push_msg works; a missing text is err_code 7."""
    base = {"method": "push_msg", "email": SIM_EMAIL, "password": SIM_PASSWORD,
            "format": "JSON", "phone": "79161234501"}
    ok = session.get("http://sms1000.sandbox/", params={**base, "text": "hi"}).json()
    missing = session.get("http://sms1000.sandbox/", params=base).json()
    assert ok["response"]["msg"]["err_code"] == "0" and ok["response"]["data"]["id"]
    assert missing["response"]["msg"]["err_code"] == "7"
    assert len(sandbox.state.messages) == 1
