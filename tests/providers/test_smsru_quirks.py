"""sms.ru's wire details, run in-process against its simulator."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from urllib.parse import parse_qsl

import pytest

from providers.errors import (
    GatewayUnavailable,
    InvalidRecipient,
    MessageRejected,
    PermanentError,
    ProviderAuthError,
    RateLimited,
    ValidationError,
)
from providers.models import OutgoingMessage, Status, StatusQuery
from providers.sandbox import Sandbox
from providers.sandbox.core import SandboxState
from providers.smsru import (
    SmsRu,
    callback_hash,
    parse_callback,
    verify_callback,
)
from providers.smsru_codes import (
    error_for,
    parse_balance_reply,
    parse_status_reply,
    status_for,
)

API_ID = "sandbox-smsru-api-id"
A, B = "+79161234501", "+79161234502"


@pytest.fixture
def sandbox(clock):
    return Sandbox(SandboxState(clock=clock, queued_for=1.0, final_after=5.0), names=["smsru"])


@pytest.fixture
def sent(session):
    """Form bodies of every request the session sends, as lists of pairs."""
    bodies: list[list[tuple[str, str]]] = []

    def hook(response, *args, **kwargs):
        body = response.request.body or ""
        text = body.decode() if isinstance(body, bytes) else body
        bodies.append(parse_qsl(text, keep_blank_values=True))
    session.hooks["response"].append(hook)
    return bodies


@pytest.fixture
def smsru(make_provider) -> SmsRu:
    return make_provider("smsru")


def msg(phone: str, text: str = "hello", sender: str | None = "smsq", **options) -> OutgoingMessage:
    return OutgoingMessage(ref="r" + phone[-4:], recipient=phone, text=text, sender=sender,
                           options=options)


def test_one_text_is_sent_as_to_and_msg(smsru, sent):
    """One shared text goes as `to` (comma-joined 11-digit numbers) plus `msg`, json=1."""
    smsru.send([msg(A), msg(B)])
    form = dict(sent[-1])
    assert form["to"] == "79161234501,79161234502"
    assert form["msg"] == "hello" and form["json"] == "1" and form["api_id"] == API_ID
    assert form["from"] == "smsq"


def test_different_texts_are_sent_as_to_brackets(smsru, sent, sandbox):
    """Different texts go as `to[<phone>]=<text>` with no `to`/`msg`."""
    results = smsru.send([msg(A, "one"), msg(B, "two")])
    form = dict(sent[-1])
    assert form["to[79161234501]"] == "one" and form["to[79161234502]"] == "two"
    assert "to" not in form and "msg" not in form
    assert all(r.accepted for r in results)
    assert sorted(m.text for m in sandbox.state.messages) == ["one", "two"]


def test_options_become_form_fields(smsru, sent):
    """Options map to ip/time/ttl/daytime/translit/partner_id fields; False is omitted."""
    smsru.send([msg(A, ip="10.1.2.3", time=1700000600, ttl=60, daytime=True, translit=False,
                    partner_id=358434)])
    form = dict(sent[-1])
    assert {k: form[k] for k in ("ip", "time", "ttl", "daytime", "partner_id")} == {
        "ip": "10.1.2.3", "time": "1700000600", "ttl": "60", "daytime": "1",
        "partner_id": "358434"}
    assert "translit" not in form


def test_batch_key_ignores_text_but_not_options(smsru):
    """Texts may differ within one request; senders or send options may not."""
    assert smsru.batch_key(msg(A, "x")) == smsru.batch_key(msg(B, "y"))
    assert smsru.batch_key(msg(A)) != smsru.batch_key(msg(A, ttl=5))
    assert smsru.per_recipient_texts and smsru.max_segments == 8


def test_test_mode_records_without_progress(smsru, sandbox, clock):
    """test=1 is recorded with meta test=True and stays queued (100) forever."""
    [result] = smsru.send([msg(A, test=True)])
    assert sandbox.state.messages[0].meta["test"] is True
    clock.advance(3600)
    [status] = smsru.status([StatusQuery(result.provider_message_id)])
    assert (status.status, status.raw_code) == (Status.QUEUED, "100")


def test_repeated_number_is_held_back(smsru, sandbox):
    """A number repeated in one batch is sent once; the repeat is never_reached, retry 0."""
    results = smsru.send([msg(A, "one"), msg(A, "two")])
    assert results[0].accepted
    assert isinstance(results[1].error, GatewayUnavailable) and results[1].error.never_reached
    assert len(sandbox.state.messages) == 1


def test_sms_id_format_and_segments(smsru):
    """sms_id looks like 000000-10000001 and results carry the segment count."""
    [result] = smsru.send([msg(A, "я" * 71)])
    assert result.provider_message_id == "000000-10000001"
    assert result.segments == 2


def test_no_money_is_auth_error(smsru, sandbox):
    """201 (not enough money) is a request-level ProviderAuthError."""
    sandbox.sims["smsru"].data()["balance"] = Decimal(0)
    with pytest.raises(ProviderAuthError) as info:
        smsru.send([msg(A)])
    assert info.value.code == "201"


def test_unapproved_sender_is_rejected(smsru):
    """204: a sender name not approved for the account rejects the message."""
    with pytest.raises(MessageRejected) as info:
        smsru.send([msg(A, sender="Unknown")])
    assert info.value.code == "204"


def test_nine_segments_are_rejected(smsru, sandbox):
    """205: a text over 8 segments is refused and nothing is recorded."""
    with pytest.raises(MessageRejected) as info:
        smsru.send([msg(A, "x" * (153 * 8 + 1))])
    assert info.value.code == "205" and not sandbox.state.messages


def test_stop_listed_number_is_invalid_recipient(smsru):
    """A number on the account stop list comes back per recipient as 209."""
    smsru.stoplist_add(B, "complained")
    results = smsru.send([msg(A), msg(B)])
    assert results[0].accepted and results[1].raw_code == "209"
    assert isinstance(results[1].error, InvalidRecipient)


def test_stoplist_round_trip_uses_national_keys(smsru, sent):
    """stoplist/add sends stoplist_phone/stoplist_text; get lists 10-digit keys; del removes."""
    smsru.stoplist_add(A, "note")
    assert dict(sent[-1])["stoplist_phone"] == "79161234501"
    assert smsru.stoplist() == {"9161234501": "note"}
    smsru.stoplist_del(A)
    assert smsru.stoplist() == {}


def test_more_than_100_numbers_is_213(session):
    """The simulator answers 101 numbers with a request-level 213."""
    numbers = ",".join(f"79161{i:06d}" for i in range(101))
    reply = session.post("http://smsru.sandbox/sms/send",
                         data={"api_id": API_ID, "json": 1, "to": numbers, "msg": "x"}).json()
    assert (reply["status"], reply["status_code"]) == ("ERROR", 213)


def test_provider_refuses_more_than_100(smsru):
    """The provider never builds a request over 100 recipients."""
    with pytest.raises(ValidationError):
        smsru.send([msg(f"+7916{i:07d}") for i in range(101)])


def test_wrong_api_id_answers_error_200(session):
    """A wrong api_id is HTTP 200 with status ERROR, status_code 200."""
    reply = session.post("http://smsru.sandbox/my/balance", data={"api_id": "x", "json": 1})
    assert reply.status_code == 200
    assert reply.json() == {"status": "ERROR", "status_code": 200,
                            "status_text": "Неправильный api_id"}


def test_plain_text_reply_without_json(session):
    """Without json=1 the send reply is lines: code, sms_id or error code, balance=."""
    reply = session.post("http://smsru.sandbox/sms/send", data={
        "api_id": API_ID, "to": "79161234501,79161230000", "msg": "hi"})
    lines = reply.text.split("\n")
    assert lines[0] == "100" and lines[1].startswith("000000-") and lines[2] == "207"
    assert lines[3].startswith("balance=")


def test_get_with_text_and_ten_digits_is_keyed_by_eleven(session):
    """GET with `text` and a 10-digit number is accepted and keyed by the 11-digit number."""
    reply = session.get("http://smsru.sandbox/sms/send", params={
        "api_id": API_ID, "json": 1, "to": "9161234501", "text": "hi"}).json()
    assert reply["sms"]["79161234501"]["status_code"] == 100


def test_status_sends_comma_separated_ids(smsru, sent):
    """sms/status gets every id in one `sms_id` field, comma-separated."""
    results = smsru.send([msg(A), msg(B)])
    smsru.status([StatusQuery(r.provider_message_id) for r in results])
    assert dict(sent[-1])["sms_id"] == "000000-10000001,000000-10000002"


def test_status_refuses_more_than_100_ids(smsru):
    """More than 100 ids in one status call is a ValidationError before any request."""
    with pytest.raises(ValidationError):
        smsru.status([StatusQuery(str(i)) for i in range(101)])


def test_status_accepts_money_as_string_and_times():
    """Status items may carry cost as a string and send/status times as ints."""
    [result] = parse_status_reply({"status": "OK", "status_code": 100, "sms": {"1-2": {
        "status": "OK", "status_code": 102, "cost": "0.50", "send_time": 1651453200,
        "status_time": 1651453260}}}, ["1-2"])
    assert (result.status, result.cost, result.sent_at, result.updated_at) == (
        Status.SENT, Decimal("0.50"), 1651453200.0, 1651453260.0)


@pytest.mark.parametrize(("code", "status"), [
    (-1, Status.UNKNOWN), (100, Status.QUEUED), (101, Status.QUEUED), (102, Status.SENT),
    (103, Status.DELIVERED), (104, Status.EXPIRED), (105, Status.UNDELIVERED),
    (106, Status.UNDELIVERED), (107, Status.UNDELIVERED), (108, Status.REJECTED),
    (110, Status.DELIVERED), (150, Status.FAILED), (999, Status.UNKNOWN)])
def test_status_code_table(code, status):
    """Message state codes map per providers.md §1.4."""
    assert status_for(code) is status and status_for(str(code)) is status


@pytest.mark.parametrize(("code", "cls"), [
    (200, ProviderAuthError), (201, ProviderAuthError), (301, ProviderAuthError),
    (202, InvalidRecipient), (207, InvalidRecipient), (209, InvalidRecipient),
    (214, InvalidRecipient), (215, InvalidRecipient), (203, MessageRejected),
    (204, MessageRejected), (205, MessageRejected), (216, MessageRejected),
    (217, MessageRejected), (221, MessageRejected), (220, GatewayUnavailable),
    (500, GatewayUnavailable), (206, RateLimited), (230, RateLimited), (231, RateLimited),
    (232, RateLimited), (233, RateLimited), (901, PermanentError), (12345, PermanentError)])
def test_error_code_table(code, cls):
    """Request / recipient error codes are classified per providers.md §1.4 and §7."""
    error = error_for(code)
    assert type(error) is cls and error.code == str(code)


def test_daily_limits_carry_a_long_retry_after():
    """206/230/232 wait an hour, 231 a minute: never a tight retry loop."""
    assert error_for(206).retry_after == error_for(232).retry_after == 3600.0
    assert error_for(231).retry_after == 60.0


def test_balance_accepts_a_string():
    """my/balance money may be a JSON string."""
    assert parse_balance_reply({"status": "OK", "status_code": 100,
                                "balance": "4122.56"}).amount == Decimal("4122.56")


def test_cost_quote(smsru, sent):
    """sms/cost returns per-recipient cost and segments plus totals, sends nothing."""
    quote = smsru.cost([msg(A), msg("+79161230000")])
    assert quote.results[0].cost == Decimal("0.5") and quote.results[0].segments == 1
    assert quote.results[1].raw_code == "207"
    assert (quote.total_cost, quote.total_sms) == (Decimal("0.5"), 1)


def test_account_counters_and_senders(smsru):
    """my/limit, my/free (used_today null) and my/senders parse into typed values."""
    smsru.send([msg(A)])
    assert (smsru.limit().total, smsru.limit().used_today) == (5000, 1)
    assert smsru.free().used_today is None
    assert smsru.senders() == ["smsq", "SMS.RU"]


def test_callback_add_returns_full_list(smsru, sandbox):
    """callback/add answers with every registered URL, stored for the report pusher."""
    smsru.callback_add("http://a.example/cb")
    assert smsru.callback_add("https://b.example/cb") == ["http://a.example/cb",
                                                          "https://b.example/cb"]
    assert sandbox.state.callbacks["smsru"] == smsru.callbacks()


def test_callback_errors(smsru):
    """A URL not starting with http:// is 901; deleting a missing one is 902."""
    with pytest.raises(PermanentError) as bad:
        smsru.callback_add("ftp://x")
    with pytest.raises(PermanentError) as missing:
        smsru.callback_del("http://never.example/")
    assert (bad.value.code, missing.value.code) == ("901", "902")


def test_callcheck_confirms_after_five_seconds(smsru, clock):
    """callcheck/status is "400" until 5 s after callcheck/add, then "401"."""
    check = smsru.callcheck_add(A)
    assert check.call_phone == "78005008275" and "-" in check.check_id
    assert smsru.callcheck_status(check.check_id).code == "400"
    clock.advance(5)
    assert smsru.callcheck_status(check.check_id).confirmed


def test_callcheck_never_called_expires(smsru, clock):
    """A number ending in 0000 never calls: "400", then "402" after 300 s."""
    check = smsru.callcheck_add("+79161230000")
    clock.advance(299)
    assert smsru.callcheck_status(check.check_id).code == "400"
    clock.advance(1)
    assert smsru.callcheck_status(check.check_id).code == "402"


def test_parse_callback_orders_items_and_skips_callcheck():
    """data[i] items are read in index order; callcheck_status items are skipped."""
    form = [("data[1]", "sms_status\n000000-2\n104\n1700000001"),
            ("data[0]", "sms_status\n000000-1\n103\n1700000000"),
            ("data[2]", "callcheck_status\n201737-542\n401\n1700000002"), ("hash", "x")]
    results = parse_callback(form)
    assert [(r.provider_message_id, r.status, r.updated_at) for r in results] == [
        ("000000-1", Status.DELIVERED, 1700000000.0), ("000000-2", Status.EXPIRED, 1700000001.0)]


def test_callback_hash_is_sha256_of_api_id_and_items():
    """hash = sha256 hex of api_id followed by the data items concatenated."""
    items = ["sms_status\n1\n103\n1", "sms_status\n2\n104\n2"]
    assert callback_hash("key", items) == hashlib.sha256(
        ("key" + items[0] + items[1]).encode()).hexdigest()


def test_simulator_report_round_trip(smsru, sandbox, clock):
    """The simulator's report POST parses, verifies, and is acked only by body "100"."""
    sandbox.state.outcomes = {"delivered": 1.0}
    [result] = smsru.send([msg(A)])
    clock.advance(10)
    sim = sandbox.sims["smsru"]
    ctype, body = sim.report_request(list(sandbox.state.messages))
    form = parse_qsl(body.decode(), keep_blank_values=True)
    assert ctype == "application/x-www-form-urlencoded" and verify_callback(API_ID, form)
    [report] = parse_callback(form)
    assert (report.provider_message_id, report.status) == (result.provider_message_id,
                                                           Status.DELIVERED)
    assert sim.report_acked(200, b"100", []) and not sim.report_acked(200, b"OK", [])
