"""The contract every provider keeps, run against its in-process simulator.

Sandbox conventions every simulator honours: a recipient whose digits end in
"0000" is refused by the gateway (its own per-recipient error shape); faults
scripted through `SandboxState.add_fault`; hosts set down refuse connections.
"""

from __future__ import annotations

import logging

import pytest
import structlog

from providers.errors import (
    GatewayUnavailable,
    InvalidRecipient,
    MalformedResponse,
    OutcomeUnknown,
    PermanentError,
    ProviderAuthError,
    RateLimited,
    TransientError,
    ValidityExpired,
)
from providers.models import OutgoingMessage, Secret, Status, StatusQuery
from providers.sandbox.core import Fault

GOOD = ["+79161234501", "+79161234502", "+79161234503"]
BAD = "+79161230000"


def msgs(*phones: str, text: str = "Hello from smsq") -> list[OutgoingMessage]:
    return [OutgoingMessage(ref=f"ref{i}x{p[-4:]}", recipient=p, text=text, sender="smsq")
            for i, p in enumerate(phones)]


def send_one_request(provider, messages):
    """Send as the pipeline would: groups of one batch key, max_recipients each."""
    results = []
    size = provider.max_recipients
    for start in range(0, len(messages), size):
        results.extend(provider.send(messages[start:start + size]))
    return results


def test_success_returns_one_accepted_result_per_recipient(provider_name, make_provider, sandbox):
    """Every recipient of a good request is accepted with the gateway's message id."""
    provider = make_provider(provider_name)
    results = send_one_request(provider, msgs(*GOOD))
    assert [r.recipient for r in results] == GOOD
    assert all(r.accepted and r.provider_message_id for r in results)
    recorded = [m for m in sandbox.state.messages if m.gateway == provider_name]
    assert sorted(m.phone.lstrip("+")[-10:] for m in recorded) == sorted(p[-10:] for p in GOOD)


def test_partial_success_rejects_only_the_bad_recipient(provider_name, make_provider):
    """A refused recipient is an InvalidRecipient result; the others are accepted."""
    provider = make_provider(provider_name)
    results = send_one_request(provider, msgs(GOOD[0], BAD, GOOD[1]))
    by_phone = {r.recipient: r for r in results}
    assert by_phone[GOOD[0]].accepted and by_phone[GOOD[1]].accepted
    assert not by_phone[BAD].accepted
    assert isinstance(by_phone[BAD].error, InvalidRecipient)


def test_bad_credentials_raise_auth_error(provider_name, make_provider, sandbox):
    """Wrong credentials are a ProviderAuthError and nothing is sent."""
    good = sandbox.account(provider_name)
    wrong = {k: Secret("wrong-" + v.reveal()) for k, v in good.credentials.items()}
    provider = make_provider(provider_name, credentials=wrong)
    with pytest.raises(ProviderAuthError):
        send_one_request(provider, msgs(GOOD[0]))
    assert not [m for m in sandbox.state.messages if m.gateway == provider_name]


def test_throttle_reply_is_rate_limited(provider_name, make_provider, sandbox):
    """The gateway's throttle reply becomes RateLimited, a transient error."""
    provider = make_provider(provider_name)
    sandbox.state.add_fault(Fault(kind="throttle", gateway=provider_name, count=-1))
    with pytest.raises(RateLimited):
        send_one_request(provider, msgs(GOOD[0]))


def test_5xx_is_transient(provider_name, make_provider, sandbox):
    """A 5xx burst is a transient GatewayUnavailable."""
    provider = make_provider(provider_name)
    sandbox.state.add_fault(Fault(kind="http_error", status=503, gateway=provider_name, count=-1))
    with pytest.raises(GatewayUnavailable) as info:
        send_one_request(provider, msgs(GOOD[0]))
    assert isinstance(info.value, TransientError)


def test_html_error_page_is_classified(provider_name, make_provider, sandbox):
    """An HTML error page from a proxy is a classified transient error, not a crash."""
    provider = make_provider(provider_name)
    sandbox.state.add_fault(Fault(kind="html", gateway=provider_name, count=-1))
    with pytest.raises(TransientError):
        send_one_request(provider, msgs(GOOD[0]))


def test_connection_refused_never_reached(provider_name, make_provider, sandbox):
    """Every host refusing connections is GatewayUnavailable(never_reached=True)."""
    provider = make_provider(provider_name)
    for host in sandbox.sims[provider_name].hosts:
        sandbox.state.set_host(host, False)
    with pytest.raises(GatewayUnavailable) as info:
        send_one_request(provider, msgs(GOOD[0]))
    assert info.value.never_reached
    assert not [m for m in sandbox.state.messages if m.gateway == provider_name]


def test_read_timeout_after_acceptance_is_outcome_unknown(provider_name, make_provider, sandbox):
    """A timeout after the gateway accepted is OutcomeUnknown, and it was really accepted."""
    provider = make_provider(provider_name)
    path = sandbox.sims[provider_name].send_path
    sandbox.state.add_fault(Fault(kind="timeout", gateway=provider_name, path=path))
    with pytest.raises(OutcomeUnknown):
        send_one_request(provider, msgs(GOOD[0]))
    assert [m for m in sandbox.state.messages if m.gateway == provider_name]


def test_dropped_connection_after_send_is_outcome_unknown(provider_name, make_provider, sandbox):
    """A connection dropped after the request left is OutcomeUnknown, never a retry."""
    provider = make_provider(provider_name)
    path = sandbox.sims[provider_name].send_path
    sandbox.state.add_fault(Fault(kind="drop", gateway=provider_name, path=path))
    with pytest.raises(OutcomeUnknown):
        send_one_request(provider, msgs(GOOD[0]))


def test_malformed_body_is_malformed_response(provider_name, make_provider, sandbox):
    """A truncated body is MalformedResponse (an OutcomeUnknown), not a crash."""
    provider = make_provider(provider_name)
    path = sandbox.sims[provider_name].send_path
    sandbox.state.add_fault(Fault(kind="malformed", gateway=provider_name, path=path))
    with pytest.raises(MalformedResponse):
        send_one_request(provider, msgs(GOOD[0]))


def test_status_follows_the_timeline(provider_name, make_provider, sandbox, clock):
    """Accepted messages read as queued or sent at first, then reach a final status."""
    provider = make_provider(provider_name)
    sandbox.state.outcomes = {"delivered": 1.0}
    results = send_one_request(provider, msgs(*GOOD))
    queries = [StatusQuery(r.provider_message_id, r.recipient) for r in results]
    early = provider.status(queries)
    assert {s.status for s in early} <= {Status.QUEUED, Status.SENT}
    clock.advance(10)
    late = provider.status(queries)
    assert [s.provider_message_id for s in late] == [q.provider_message_id for q in queries]
    assert {s.status for s in late} == {Status.DELIVERED}


def test_unknown_status_id_is_unknown(provider_name, make_provider):
    """An id the gateway never issued reads as UNKNOWN (or raises a classified error)."""
    provider = make_provider(provider_name)
    try:
        result = provider.status([StatusQuery("999999999", GOOD[0])])
    except PermanentError:
        return
    assert result[0].status is Status.UNKNOWN


def test_balance_is_a_decimal(provider_name, make_provider):
    """Balance parses into a Decimal amount."""
    balance = make_provider(provider_name).balance()
    assert balance.amount >= 0


def test_no_credential_in_logs_or_errors(provider_name, make_provider, sandbox, caplog):
    """Credentials appear in no log record, structlog event or exception text."""
    provider = make_provider(provider_name)
    secrets = provider.secrets()
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    with structlog.testing.capture_logs() as events:
        send_one_request(provider, msgs(GOOD[0], BAD))
        for kind in ("http_error", "malformed", "throttle"):
            sandbox.state.add_fault(Fault(kind=kind, gateway=provider_name))
            try:
                send_one_request(provider, msgs(GOOD[1]))
            except Exception as exc:
                texts.append(str(exc) + repr(exc) + repr(exc.__dict__))
        provider.balance()
    texts += [r.getMessage() for r in caplog.records] + [repr(e) for e in events]
    texts.append(repr(provider.account))
    blob = "\n".join(texts)
    assert secrets and all(s not in blob for s in secrets)


@pytest.mark.parametrize("left", [30.0, 600.0])
def test_a_deadline_goes_on_the_wire_where_the_gateway_takes_one(
        provider_name, make_provider, sandbox, clock, left):
    """With a deadline: a gateway with a validity parameter carries no more than what is
    left (or refuses to send when less than its unit is left); the others send as before."""
    provider = make_provider(provider_name)
    provider.clock = clock
    wire = type(provider).validity
    message = OutgoingMessage("ref-v", GOOD[0], "Code 1234", "smsq", valid_until=clock.now + left)
    if wire is not None and left < wire.unit * wire.low:
        with pytest.raises(ValidityExpired):
            provider.send([message])
        assert [m for m in sandbox.state.messages if m.gateway == provider_name] == []
        return
    assert provider.send([message])[0].accepted
    sent = [r for r in sandbox.state.requests if r["gateway"] == provider_name
            and r["method"] in ("GET", "POST")]
    (accepted,) = [m for m in sandbox.state.messages if m.gateway == provider_name]
    if wire is None:
        assert all("validity" not in r for r in sent)
    else:
        assert "validity" in sent[-1]
        assert accepted.valid_until is not None and accepted.valid_until <= clock.now + left
