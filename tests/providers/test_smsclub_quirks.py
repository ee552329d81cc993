"""SMS Club's wire details, against its in-process simulator (providers.md §2)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import requests

from providers import build_provider
from providers.errors import (
    GatewayUnavailable,
    InvalidRecipient,
    MessageRejected,
    OutcomeUnknown,
    ProviderAuthError,
    RateLimited,
    ValidationError,
)
from providers.models import OutgoingMessage, Secret, Status, StatusQuery
from providers.sandbox import Sandbox
from providers.sandbox.core import SandboxState
from providers.smsclub import SmsClub, parse_send, parse_status, read_reply
from providers.smsclub_codes import error_for, status_for

URL = "http://smsclub.sandbox"
TOKEN = "sandbox-smsclub-token"


@pytest.fixture
def sandbox(clock) -> Sandbox:
    """Only SMS Club's simulator, on the fake clock."""
    return Sandbox(SandboxState(clock=clock, queued_for=1.0, final_after=5.0), names=["smsclub"])


@pytest.fixture
def wire(session) -> list[requests.PreparedRequest]:
    """Every request the session sends, as it went on the wire."""
    sent: list[requests.PreparedRequest] = []
    session.hooks["response"].append(lambda r, *a, **k: sent.append(r.request))
    return sent


@pytest.fixture
def provider(sandbox, session) -> SmsClub:
    built = build_provider(sandbox.account("smsclub"), session=session)
    assert isinstance(built, SmsClub)
    return built


def msgs(*phones: str, text: str = "Привет", sender: str = "smsq") -> list[OutgoingMessage]:
    return [OutgoingMessage(ref=f"r{i}", recipient=p, text=text, sender=sender)
            for i, p in enumerate(phones)]


def post(session, path: str, body: object = None, token: str = TOKEN) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return session.post(URL + path, json=body, headers=headers)


def test_send_is_a_json_post_with_bearer_token(provider, wire):
    """Send POSTs JSON {phone: [digits as strings], src_addr, message} with a Bearer token."""
    provider.send(msgs("+380989361131", "+79161234567"))
    request = wire[-1]
    assert request.method == "POST" and request.url == URL + "/sms/send"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {"phone": ["380989361131", "79161234567"],
                                        "src_addr": "smsq", "message": "Привет"}


def test_integration_id_comes_from_account_options(sandbox, session, wire):
    """An integer `integration_id` account option is sent; it is not an idempotency key."""
    account = sandbox.account("smsclub", options={"integration_id": 42})
    build_provider(account, session=session).send(msgs("+380989361131"))
    assert json.loads(wire[-1].body)["integration_id"] == 42


def test_partial_success_shape(provider, session):
    """The simulator answers 200 with info {id: phone} and add_info {phone: error text}."""
    body = {"phone": ["380989361131", "380989360000"], "src_addr": "smsq", "message": "x"}
    reply = post(session, "/sms/send", body)
    assert reply.status_code == 200
    inner = reply.json()["success_request"]
    assert list(inner["info"].values()) == ["380989361131"]
    assert inner["add_info"] == {"380989360000": "Данный номер находится в черном списке"}


def test_partial_success_maps_each_recipient(provider):
    """Accepted phones get their id, the blacklisted one an InvalidRecipient with the text."""
    good, bad = provider.send(msgs("+380989361131", "+380989360000"))
    assert good.accepted and good.provider_message_id and good.provider_message_id.isdigit()
    assert isinstance(bad.error, InvalidRecipient)
    assert bad.raw_code == "Данный номер находится в черном списке"


def test_ids_are_increasing_integers_as_string_keys(provider):
    """Ids are increasing integers; a phone sent twice gets two ids, in request order."""
    results = provider.send(msgs("+380989361131", "+380989361132", "+380989361131"))
    ids = [int(r.provider_message_id or "0") for r in results]
    assert ids == sorted(ids) and len(set(ids)) == 3


def test_phones_echoed_as_ints_are_matched():
    """`info` values may be ints (clients send ints); they still match the recipient."""
    data = {"success_request": {"info": {"7": 380989361131}}}
    (result,) = parse_send(data, msgs("+380989361131"))
    assert result.provider_message_id == "7"


def test_every_number_refused_is_200_with_only_add_info(provider):
    """All numbers refused is HTTP 200 with only add_info: per-recipient errors, no raise."""
    results = provider.send(msgs("+380989360000", "+3809893"))
    assert all(isinstance(r.error, InvalidRecipient) for r in results)


def test_request_level_add_info_is_message_rejected(provider, session, sandbox):
    """An invalid src_addr is HTTP 400 add_info {src_addr: ...} and MessageRejected."""
    reply = post(session, "/sms/send", {"phone": ["380989361131"], "src_addr": "",
                                        "message": "x"})
    assert reply.status_code == 400
    assert reply.json() == {"success_request": {"add_info": {"src_addr": "Некорректное Альфа Имя"}}}
    with pytest.raises(MessageRejected) as info:
        provider.send(msgs("+380989361131", sender="TwelveChars!"))
    assert info.value.code == "src_addr" and info.value.http_status == 400
    assert not sandbox.state.messages


def test_request_level_add_info_in_a_200_still_raises():
    """The seed's field-keyed add_info without info raises even when the status is 200."""
    data = {"success_request": {"add_info": {"message": "Пустое сообщение"}}}
    with pytest.raises(MessageRejected):
        parse_send(data, msgs("+380989361131"))


def test_unmentioned_recipient_is_outcome_unknown():
    """A recipient in neither info nor add_info may have been sent: OutcomeUnknown."""
    data = {"success_request": {"info": {"9": "380989361131"}}}
    _, other = parse_send(data, msgs("+380989361131", "+380989361132"))
    assert isinstance(other.error, OutcomeUnknown)


def test_more_than_100_phones(provider, session):
    """The simulator refuses 101 phones with 400; the client never sends that many."""
    body = {"phone": [f"3809893{i:05d}" for i in range(101)], "src_addr": "smsq", "message": "x"}
    reply = post(session, "/sms/send", body)
    assert reply.status_code == 400 and "phone" in reply.json()["success_request"]["add_info"]
    with pytest.raises(ValidationError):
        provider.send(msgs(*[f"+3809893{i:05d}" for i in range(101)]))


def test_wrong_token_is_401_with_yii_body(session, sandbox):
    """A wrong token is HTTP 401 {"name", "message", "code", "status"} and ProviderAuthError."""
    reply = post(session, "/sms/balance", token="nope")
    assert reply.status_code == 401
    assert reply.json()["name"] == "Unauthorized" and reply.json()["status"] == 401
    wrong = sandbox.account("smsclub", credentials={"token": Secret("nope")})
    with pytest.raises(ProviderAuthError) as info:
        build_provider(wrong, session=session).balance()
    assert info.value.http_status == 401 and "nope" not in str(info.value)


def test_missing_bearer_is_401(session):
    """No Authorization header at all is 401 too."""
    assert post(session, "/sms/balance", token="").status_code == 401


def test_get_is_405(session):
    """Every endpoint is POST only."""
    reply = session.get(URL + "/sms/balance", headers={"Authorization": f"Bearer {TOKEN}"})
    assert reply.status_code == 405 and reply.headers["Allow"] == "POST"


def test_nine_requests_in_one_second_pass_the_tenth_is_429(session, clock):
    """Nine requests inside one second pass; the tenth in that second is HTTP 429."""
    codes = []
    for _ in range(10):
        codes.append(post(session, "/sms/balance").status_code)
        clock.advance(0.1)  # ten requests over 0.9 s
    assert codes == [200] * 9 + [429]


def test_rate_window_slides(session, clock):
    """As each old request leaves the one-second window, exactly one new request passes."""
    for _ in range(9):  # at t = 0, 1/16, ..., 8/16 s (dyadic steps keep the clock exact)
        assert post(session, "/sms/balance").status_code == 200
        clock.advance(0.0625)
    clock.advance(0.4375)  # t = 1.0: the request from t = 0 has just left the window
    assert [post(session, "/sms/balance").status_code for _ in range(2)] == [200, 429]
    clock.advance(0.0625)
    assert [post(session, "/sms/balance").status_code for _ in range(2)] == [200, 429]


def test_refused_requests_do_not_count(session, clock):
    """429s and 401s use no budget: one second after nine admitted requests, nine pass again."""
    for _ in range(9):
        post(session, "/sms/balance")
    for _ in range(5):
        assert post(session, "/sms/balance").status_code == 429
        assert post(session, "/sms/balance", token="nope").status_code == 401
    clock.advance(1.0)
    assert [post(session, "/sms/balance").status_code for _ in range(10)] == [200] * 9 + [429]


def test_429_is_rate_limited_with_at_least_one_second(provider, clock):
    """The client turns 429 into RateLimited with retry_after of at least one second."""
    for _ in range(9):
        provider.balance()
    with pytest.raises(RateLimited) as info:
        provider.send(msgs("+380989361131"))
    assert info.value.http_status == 429 and info.value.retry_after >= 1.0


def test_retry_after_below_one_second_is_raised_to_one():
    """A Retry-After of 0 still backs off one second (providers.md §2.3)."""
    with pytest.raises(RateLimited) as info:
        read_reply(429, b'{"status": 429}', "0")
    assert info.value.retry_after == 1.0


@pytest.mark.parametrize("code", [500, 502, 503, 504])
def test_5xx_is_gateway_unavailable(code):
    """Any 5xx ("500x") is a transient GatewayUnavailable."""
    with pytest.raises(GatewayUnavailable):
        read_reply(code, b"<html>oops</html>")


def test_400_without_add_info_is_message_rejected():
    """A 400 without field errors is still a validation error: MessageRejected."""
    with pytest.raises(MessageRejected):
        read_reply(400, b'{"name": "Bad Request", "message": "bad", "status": 400}')


def test_status_body_and_timeline(provider, wire, clock, sandbox):
    """Status POSTs {"id_sms": [ids as strings]}; ENROUTE reads sent, DELIVRD delivered."""
    sandbox.state.outcomes = {"delivered": 1.0}
    (sent,) = provider.send(msgs("+380989361131"))
    query = [StatusQuery(sent.provider_message_id or "")]
    (early,) = provider.status(query)
    assert json.loads(wire[-1].body) == {"id_sms": [sent.provider_message_id]}
    assert (early.status, early.raw_code) == (Status.SENT, "ENROUTE")
    clock.advance(10)
    (late,) = provider.status(query)
    assert (late.status, late.raw_code) == (Status.DELIVERED, "DELIVRD")


def test_status_for_ids_not_returned_is_unknown():
    """Ids missing from info come back UNKNOWN, in query order, as strings."""
    data = {"success_request": {"info": {"5": "UNDELIV"}, "add_info": {"6": "not found"}}}
    results = parse_status(data, ["6", "5", "7"])
    assert [r.provider_message_id for r in results] == ["6", "5", "7"]
    assert [r.status for r in results] == [Status.UNKNOWN, Status.UNDELIVERED, Status.UNKNOWN]
    assert results[0].error == "not found"


def test_php_empty_info_list_is_an_empty_object():
    """PHP encodes an empty info as [], which reads as no ids at all."""
    (result,) = parse_status({"success_request": {"info": []}}, ["5"])
    assert result.status is Status.UNKNOWN


@pytest.mark.parametrize(("raw", "status"), [
    ("ENROUTE", Status.SENT), ("DELIVRD", Status.DELIVERED), ("EXPIRED", Status.EXPIRED),
    ("UNDELIV", Status.UNDELIVERED), ("REJECTD", Status.REJECTED),
    ("Ожидает отправки", Status.QUEUED), ("Отправлено", Status.SENT),
    ("Доставлено", Status.DELIVERED), ("Просрочено", Status.EXPIRED),
    ("Недоставляемое", Status.UNDELIVERED), ("Отклонено", Status.REJECTED),
    ("ACCEPTD", Status.UNKNOWN), (None, Status.UNKNOWN), (3, Status.UNKNOWN),
])
def test_status_table(raw, status):
    """Every documented status word maps as providers.md §2.4 says; the rest is UNKNOWN."""
    assert status_for(raw) is status


@pytest.mark.parametrize(("key", "cls"), [
    ("src_addr", MessageRejected), ("message", MessageRejected), ("phone", MessageRejected),
    ("id_sms", MessageRejected), ("invalid_phone", InvalidRecipient),
    ("380989360000", InvalidRecipient),
])
def test_add_info_key_table(key, cls):
    """add_info field names are request-level errors; phone keys are per-recipient."""
    assert type(error_for(key=key, text="Ошибка")) is cls


def test_balance_money_is_a_string_with_four_decimals(provider, session, wire):
    """Balance is a bodiless POST; money "8111.1700" becomes Decimal("8111.1700") in UAH."""
    raw = post(session, "/sms/balance").json()
    assert raw == {"success_request": {"info": {"money": "8111.1700", "currency": "UAH"}}}
    balance = provider.balance()
    assert not wire[-1].body and wire[-1].method == "POST"
    assert balance.amount == Decimal("8111.1700") and str(balance.amount) == "8111.1700"
    assert balance.currency == "UAH"


def test_originators(provider, wire):
    """The originator list is a plain JSON list of alpha names."""
    assert provider.originators() == ["smsq", "SmsClub"]
    assert wire[-1].url == URL + "/sms/originator"
