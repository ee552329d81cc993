"""SMSC's wire details: exact parameters, mirrors, error 9, client ids, POST switch, SMTP."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
import structlog

from providers import build_provider
from providers.errors import (
    GatewayUnavailable,
    InvalidRecipient,
    MessageRejected,
    OutcomeUnknown,
    ProviderAuthError,
    RateLimited,
)
from providers.models import OutgoingMessage, Secret, Status, StatusQuery
from providers.sandbox import Sandbox
from providers.sandbox.adapter import WSGIAdapter
from providers.sandbox.core import Fault, SandboxState
from providers.sandbox.reports import ReportPusher
from providers.sandbox.smsc_smtp import SmscSmtpServer
from providers.smsc import Smsc, derive_mirrors, parse_callback
from providers.smsc_codes import classify, decode_reply, status_for
from providers.smsc_mail import SmscMail

PHONE, PHONE2, BAD = "+79161234501", "+79161234502", "+79161230000"
HOSTS = ["smsc", "smsc-www2", "smsc-www3", "smsc-www4", "smsc-www5"]


class RecordingSession(requests.Session):
    """A real session that remembers every request it was asked to make, refused or not."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.calls.append({"method": method, "url": url, "params": kwargs.get("params"),
                           "data": kwargs.get("data")})
        return super().request(method, url, *args, **kwargs)

    def sent(self, index: int = -1) -> dict[str, str]:
        call = self.calls[index]
        return dict(call["params"] or call["data"])


@pytest.fixture
def sandbox(clock) -> Sandbox:
    return Sandbox(SandboxState(clock=clock, queued_for=1.0, final_after=5.0), names=["smsc"])


@pytest.fixture
def session(sandbox: Sandbox) -> RecordingSession:
    rec = RecordingSession()
    for host, app in sandbox.apps().items():
        rec.mount(f"http://{host}.sandbox/", WSGIAdapter(app))
    return rec


@pytest.fixture
def smsc(make_provider) -> Smsc:
    provider: Smsc = make_provider("smsc")
    return provider


def msg(phone: str = PHONE, text: str = "Hello", ref: str = "ref-1", **options: Any):
    return OutgoingMessage(ref=ref, recipient=phone, text=text, sender="smsq", options=options)


def test_send_parameters_are_exact(smsc, session):
    """A send is a GET to send.php with auth, fmt=3, utf-8, cost=3, op=1 and our client id."""
    smsc.send([msg()])
    call = session.calls[-1]
    assert call["method"] == "GET" and call["url"] == "http://smsc.sandbox/sys/send.php"
    assert session.sent() == {
        "login": "sandbox", "psw": "sandbox-smsc-pass", "fmt": "3", "charset": "utf-8",
        "cost": "3", "op": "1", "phones": "79161234501", "mes": "Hello", "sender": "smsq",
        "id": "ref-1"}


def test_apikey_replaces_login_and_password(make_provider, sandbox, session):
    """Without a login the API key is sent as `apikey`, and neither login nor psw goes out."""
    creds = {"login": Secret(""), "password": Secret(""),
             "apikey": Secret("sandbox-smsc-apikey")}
    provider = make_provider("smsc", credentials=creds)
    assert provider.send([msg()])[0].accepted
    sent = session.sent()
    assert sent["apikey"] == "sandbox-smsc-apikey" and "login" not in sent and "psw" not in sent


def test_batch_is_a_comma_list_sharing_one_client_id(smsc, session):
    """One text to many phones: phones=a,b; every result carries the first ref as SMSC id."""
    results = smsc.send([msg(PHONE, ref="r1"), msg(PHONE2, ref="r2")])
    assert session.sent()["phones"] == "79161234501,79161234502"
    assert session.sent()["id"] == "r1"
    assert [r.provider_message_id for r in results] == ["r1", "r1"]


def test_per_recipient_texts_go_as_list_lines(smsc, session, sandbox):
    """Different texts travel as list=phone:text lines; a newline inside a text as \\n."""
    smsc.send([msg(PHONE, text="Code 1\nbye", ref="r1"), msg(PHONE2, text="Code 2", ref="r2")])
    sent = session.sent()
    assert sent["list"] == "79161234501:Code 1\\nbye\n79161234502:Code 2"
    assert "phones" not in sent and "mes" not in sent
    assert sorted(m.text for m in sandbox.state.messages) == ["Code 1\nbye", "Code 2"]


def test_long_request_switches_to_post(smsc, session, sandbox):
    """Above 2000 characters of query the request becomes a form POST with no query string."""
    assert smsc.send([msg(text="Привет " * 60)])[0].accepted
    call = session.calls[-1]
    assert call["method"] == "POST" and call["params"] is None
    assert dict(call["data"])["mes"] == "Привет " * 60
    assert sandbox.state.requests[-1]["method"] == "POST"


def test_mirror_order_when_hosts_are_down(smsc, session, sandbox):
    """Refused connections walk main -> www2 -> www3 -> www4 -> www5, never www1."""
    for host in HOSTS[:4]:
        sandbox.state.set_host(host, False)
    assert smsc.send([msg()])[0].accepted
    assert [c["url"].split("//")[1].split(".")[0] for c in session.calls] == HOSTS
    assert [m.host for m in sandbox.state.messages] == ["smsc-www5"]


def test_mirrors_are_derived_from_the_base_url(sandbox, session):
    """Without configured mirrors, www2..www5 are inserted before the host."""
    assert derive_mirrors("https://smscentre.com/sys") == [
        f"https://www{i}.smscentre.com/sys" for i in range(2, 6)]
    provider = build_provider(sandbox.account("smsc", base_url=None, mirrors=()),
                              session=session)
    assert provider.hosts[0] == "https://smscentre.com/sys"  # type: ignore[attr-defined]
    assert len(provider.hosts) == 5  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["timeout", "drop"])
def test_no_mirror_walk_after_an_ambiguous_send(smsc, session, sandbox, kind):
    """A read timeout or a dropped connection is OutcomeUnknown after exactly one attempt."""
    sandbox.state.add_fault(Fault(kind=kind, gateway="smsc", host="smsc", path="/send.php"))
    with pytest.raises(OutcomeUnknown):
        smsc.send([msg()])
    assert len(session.calls) == 1
    assert {r["host"] for r in sandbox.state.requests} <= {"smsc"}  # a drop is not logged
    assert [m.host for m in sandbox.state.messages] == ["smsc"]


def test_no_mirror_walk_after_5xx(smsc, session, sandbox):
    """A 5xx reply proves the host answered: GatewayUnavailable, no mirror tried."""
    sandbox.state.add_fault(Fault(kind="http_error", status=502, gateway="smsc", host="smsc"))
    with pytest.raises(GatewayUnavailable) as info:
        smsc.send([msg()])
    assert not info.value.never_reached and len(session.calls) == 1


def test_identical_send_within_a_minute_is_outcome_unknown(smsc, sandbox, clock):
    """Error 9 on a send means the first copy was accepted: OutcomeUnknown, nothing re-sent."""
    smsc.send([msg()])
    with pytest.raises(OutcomeUnknown) as info:
        smsc.send([msg()])
    assert info.value.code == "9" and not isinstance(info.value, RateLimited)
    assert len(sandbox.state.messages) == 1
    clock.advance(61)
    assert smsc.send([msg()])[0].accepted


def test_lookup_finds_the_message_by_client_id(smsc, session, clock):
    """lookup asks status.php for (our ref, phone) in the array form and reads its status."""
    sent_at = clock()
    smsc.send([msg(ref="order-77")])
    found = smsc.lookup(msg(ref="order-77"), sent_after=sent_at)
    assert found is not None and found.provider_message_id == "order-77"
    assert found.status is Status.QUEUED
    assert session.sent()["id"] == "order-77," and session.sent()["phone"] == "79161234501,"


def test_lookup_of_a_message_never_sent_is_none(smsc, clock):
    """An (id, phone) SMSC does not know (status -3) is not found."""
    assert smsc.lookup(msg(ref="never-sent"), sent_after=clock()) is None


def test_lookup_ignores_an_older_message_with_the_same_client_id(smsc, clock):
    """Client ids are not unique: a hit whose last change predates the send is not ours."""
    smsc.send([msg(ref="reused")])
    clock.advance(3600)
    assert smsc.lookup(msg(ref="reused"), sent_after=clock()) is None


def test_status_batches_pairs_as_comma_lists(smsc, session):
    """Several (id, phone) pairs go in one request, ≤100 per request, answered in order."""
    queries = [StatusQuery(f"id{i}", PHONE) for i in range(150)]
    results = smsc.status(queries)
    assert len(session.calls) == 2
    assert session.sent(0)["id"] == ",".join(f"id{i}" for i in range(100))
    assert [r.provider_message_id for r in results] == [q.provider_message_id for q in queries]
    assert {r.status for r in results} == {Status.UNKNOWN}


@pytest.mark.parametrize(("code", "status"), [
    (-3, Status.UNKNOWN), (-2, Status.FAILED), (-1, Status.QUEUED), (0, Status.SENT),
    (1, Status.DELIVERED), (2, Status.DELIVERED), (4, Status.DELIVERED), (3, Status.EXPIRED),
    (20, Status.UNDELIVERED), (25, Status.UNDELIVERED), (22, Status.REJECTED),
    (23, Status.REJECTED), (24, Status.FAILED), (99, Status.UNKNOWN)])
def test_status_code_table(code, status):
    """Every documented status code maps as providers.md §3.4 says."""
    assert status_for(code) is status


@pytest.mark.parametrize(("code", "sending", "cls"), [
    (1, True, MessageRejected), (2, True, ProviderAuthError), (3, True, ProviderAuthError),
    (4, True, RateLimited), (5, True, MessageRejected), (6, True, MessageRejected),
    (7, True, InvalidRecipient), (8, True, InvalidRecipient), (9, True, OutcomeUnknown),
    (9, False, RateLimited), (2, False, ProviderAuthError)])
def test_error_code_table(code, sending, cls):
    """Every documented error code is classified; 9 depends on whether it was a send."""
    error = classify(code, sending=sending)
    assert type(error) is cls and error.code == str(code)


def test_ip_block_is_rate_limited_without_a_made_up_wait(smsc, sandbox):
    """Error 4 (the throttle reply, HTTP 200) is RateLimited; SMSC does not say how long the
    ban lasts, so no retry_after is invented (the worker probes with a doubling hold-off)."""
    sandbox.state.add_fault(Fault(kind="throttle", gateway="smsc"))
    with pytest.raises(RateLimited) as info:
        smsc.send([msg()])
    assert info.value.retry_after is None and info.value.http_status is None


def test_every_recipient_bad_is_per_recipient_error_7(smsc):
    """A top-level error 7 refuses each recipient instead of failing the request."""
    results = smsc.send([msg(BAD)])
    assert isinstance(results[0].error, InvalidRecipient) and results[0].raw_code == "7"


def test_partial_refusal_reads_the_op1_phone_rows(smsc):
    """With op=1 the refused phone gets its error 7, the other its cost and the shared id."""
    good, bad = smsc.send([msg(PHONE, ref="r9"), msg(BAD, ref="r10")])
    assert good.provider_message_id == "r9" and good.cost == Decimal("2.50")
    assert isinstance(bad.error, InvalidRecipient) and bad.raw_code == "7"


def test_no_money_is_an_auth_error(smsc, sandbox):
    """Error 3 (no money) stops the account: ProviderAuthError."""
    sandbox.sims["smsc"].store()["balance"] = Decimal(0)
    with pytest.raises(ProviderAuthError) as info:
        smsc.send([msg()])
    assert info.value.code == "3"


def test_windows_1251_reply_is_decoded():
    """A body really encoded windows-1251 (as its label claims) still parses."""
    raw = json.dumps({"error": "неверный номер", "error_code": 7}, ensure_ascii=False)
    assert decode_reply(raw.encode("cp1251"))["error_code"] == 7


def test_cost_prices_without_sending(smsc, session, sandbox):
    """cost() sends cost=1 and reads cost/cnt; nothing is recorded as sent."""
    estimate = smsc.cost([msg()])
    assert estimate.cost == Decimal("2.50") and estimate.segments == 1
    assert session.sent()["cost"] == "1" and not sandbox.state.messages


@pytest.mark.parametrize(("options", "switch"), [
    ({"flash": True}, ("flash", "1")), ({"format": 5}, ("bin", "2")),
    ({"format": "viber"}, ("viber", "1")), ({"format": 13}, ("tg", "1"))])
def test_format_switches_from_options(smsc, session, options, switch):
    """The seed's message formats become their switches (format=5 is bin=2)."""
    smsc.send([msg(**options)])
    assert session.sent()[switch[0]] == switch[1]


def test_unusable_ref_sends_no_client_id(smsc, session):
    """A ref outside [A-Za-z0-9._-]{1,40} is not sent; SMSC's own id comes back."""
    result = smsc.send([msg(ref="has space")])[0]
    assert "id" not in session.sent() and result.provider_message_id.isdigit()


def test_seed_plain_formats_are_served(sandbox):
    """The simulator answers fmt=1 (the seed's format) and fmt=0 plain text."""
    plain = sandbox.session()
    auth = {"login": "sandbox", "psw": "sandbox-smsc-pass", "phones": "79161234501"}
    one = plain.get("http://smsc.sandbox/sys/send.php",
                    params={**auth, "fmt": "1", "cost": "3", "mes": "a", "id": "5"})
    assert one.text == "5,1,2.50,9997.50"
    zero = plain.get("http://smsc.sandbox/sys/send.php", params={**auth, "mes": "b"})
    assert zero.text.startswith("OK - 1 SMS, ID - ")


def test_wrong_password_is_error_2(make_provider, sandbox):
    """Wrong credentials answer error_code 2 "authorise error" with HTTP 200."""
    creds = {**sandbox.account("smsc").credentials, "password": Secret("nope")}
    with pytest.raises(ProviderAuthError) as info:
        make_provider("smsc", credentials=creds).balance()
    assert info.value.code == "2"


def test_callbacks_are_one_form_post_per_message(smsc, sandbox, clock):
    """The simulator posts id, phone, status, err, time per message; parse_callback reads it."""
    bodies: list[bytes] = []

    def receiver(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        bodies.append(environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b""]

    sandbox.state.outcomes = {"delivered": 1.0}
    sandbox.state.callbacks["smsc"] = ["http://receiver.test/smsc"]
    smsc.send([msg(PHONE, ref="cb1"), msg(PHONE2, ref="cb2")])
    clock.advance(10)
    hook = requests.Session()
    hook.mount("http://receiver.test/", WSGIAdapter(receiver))
    assert ReportPusher(sandbox, session=hook).push_once() == 2
    reports = [parse_callback(dict(parse_qsl(b.decode())))[0] for b in bodies]
    assert {(r.provider_message_id, r.recipient) for r in reports} == {
        ("cb1", PHONE), ("cb1", PHONE2)}
    assert {r.status for r in reports} == {Status.DELIVERED}


def test_smtp_send_over_loopback(sandbox, smsc):
    """The seed's mail order goes through real SMTP; the message is then found by client id."""
    with SmscSmtpServer(sandbox.sims["smsc"]) as server:
        account = sandbox.account("smsc", options={"smtp_host": "127.0.0.1",
                                                   "smtp_port": server.port})
        results = SmscMail(account).send([msg(text="Код: 1\nok", ref="mail-1")])
    assert results[0].provider_message_id == "mail-1"
    assert server.mails[0].split(b"\r\n\r\n", 1)[1].startswith(
        b"sandbox:sandbox-smsc-pass:mail-1::0,0,smsq:79161234501:")
    assert [(m.text, m.meta) for m in sandbox.state.messages] == [("Код: 1\nok", {"via": "smtp"})]
    assert smsc.status([StatusQuery("mail-1", PHONE)])[0].status is Status.QUEUED


def test_smtp_wrong_credentials_is_auth_error(sandbox):
    """A mailed order with a wrong password is refused 550: ProviderAuthError."""
    with SmscSmtpServer(sandbox.sims["smsc"]) as server:
        account = sandbox.account("smsc", options={"smtp_host": "127.0.0.1",
                                                   "smtp_port": server.port},
                                  credentials={"login": Secret("sandbox"),
                                               "password": Secret("bad")})
        with pytest.raises(ProviderAuthError):
            SmscMail(account).send([msg()])
    assert not sandbox.state.messages


def test_login_stays_out_of_errors_and_logs(smsc, sandbox):
    """The login (left out of secrets()) still appears in no error or log event."""
    creds = {"login": Secret("smsc-login-x"), "password": Secret("p")}
    provider = build_provider(sandbox.account("smsc", credentials=creds),
                              session=sandbox.session())
    with structlog.testing.capture_logs() as events:
        with pytest.raises(ProviderAuthError) as info:
            provider.send([msg()])
    blob = repr(events) + str(info.value) + repr(info.value.__dict__)
    assert "smsc-login-x" not in blob
