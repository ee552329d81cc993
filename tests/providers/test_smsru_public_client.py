"""Fidelity: the real `smsru_api.Client` (smsru-api 1.4.1, unchanged) against the sandbox.

It sends 10-digit national numbers, `text` instead of `msg`, and always
`partner_id`, over real HTTP on loopback.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from smsru_api import Client

from providers.sandbox import Sandbox
from providers.sandbox.core import SandboxState
from providers.sandbox.server import SandboxServer

API_ID = "sandbox-smsru-api-id"


@pytest.fixture
def server(clock) -> Iterator[SandboxServer]:
    state = SandboxState(clock=clock, queued_for=1.0, final_after=5.0,
                         outcomes={"delivered": 1.0})
    srv = SandboxServer(Sandbox(state, names=["smsru"]), push_reports=False).start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server: SandboxServer) -> Client:
    c = Client(API_ID)
    c._base_url = server.urls()["smsru"]
    return c


def test_send_numbers_keys_by_eleven_digits(client, server):
    """send(*numbers) posts 10-digit numbers with `text`; the reply keys by 79XXXXXXXXX."""
    reply = client.send("+79161234501", "89161230000", message="Hello")
    assert (reply["status"], reply["status_code"]) == ("OK", 100)
    assert reply["sms"]["79161234501"]["sms_id"].startswith("000000-")
    assert reply["sms"]["79161230000"]["status_code"] == 207
    assert isinstance(reply["balance"], float)
    [recorded] = server.sandbox.state.messages
    assert (recorded.phone, recorded.text, recorded.meta["partner_id"]) == (
        "79161234501", "Hello", "358434")


def test_send_multi(client, server):
    """send(multi=...) posts to[<10 digits>] per number, each with its own text."""
    reply = client.send(multi={"9161234501": "one", "9161234502": "two"}, from_name="smsq")
    assert {k: v["status_code"] for k, v in reply["sms"].items()} == {
        "79161234501": 100, "79161234502": 100}
    assert sorted(m.text for m in server.sandbox.state.messages) == ["one", "two"]


def test_send_test_mode(client, server):
    """debug=True sends test=1: recorded as a test message."""
    client.send("9161234501", message="x", debug=True)
    assert server.sandbox.state.messages[0].meta["test"] is True


def test_cost(client):
    """cost() prices per number and totals, sending nothing."""
    reply = client.cost("9161234501", "9161234502", message="Hello")
    assert reply["sms"]["79161234501"] == {"status": "OK", "status_code": 100, "cost": 0.5,
                                           "sms": 1}
    assert (reply["total_cost"], reply["total_sms"]) == (1.0, 2)


def test_status_follows_the_clock(client, clock):
    """status() reports 100, then 103 once the fake clock passes the final stage."""
    sms_id = client.send("9161234501", message="x")["sms"]["79161234501"]["sms_id"]
    assert client.status(sms_id)["sms"][sms_id]["status_code"] == 100
    clock.advance(10)
    item = client.status(sms_id)["sms"][sms_id]
    assert (item["status"], item["status_code"]) == ("OK", 103)
    assert client.status("000000-1")["sms"]["000000-1"]["status_code"] == -1


def test_balance_limit_free_senders(client):
    """balance, limit, free and senders answer the seed's shapes."""
    assert client.balance() == {"status": "OK", "status_code": 100, "balance": 1000000.0}
    assert client.limit() == {"status": "OK", "status_code": 100, "total_limit": 5000,
                              "used_today": 0}
    assert client.free() == {"status": "OK", "status_code": 100, "total_free": 5,
                             "used_today": None}
    assert client.senders()["senders"] == ["smsq", "SMS.RU"]


def test_stop_list(client):
    """add_stop_list, stop_list and del_stop_list round-trip a 10-digit key."""
    assert client.add_stop_list("+79161234501", "spam")["status"] == "OK"
    assert client.stop_list()["stoplist"] == {"9161234501": "spam"}
    assert client.del_stop_list("89161234501")["status_code"] == 100
    assert client.stop_list()["stoplist"] == {}


def test_callbacks(client):
    """add_callback returns the full list, del_callback the rest, callbacks the list."""
    client.add_callback("http://a.example/cb")
    assert client.add_callback("http://b.example/cb")["callback"] == [
        "http://a.example/cb", "http://b.example/cb"]
    assert client.del_callback("http://a.example/cb")["callback"] == ["http://b.example/cb"]
    assert client.callbacks()["callback"] == ["http://b.example/cb"]
    assert client.del_callback("http://a.example/cb")["status_code"] == 902


def test_callcheck(client, clock):
    """callcheck_add gives a check_id and call phone; status turns "401" after 5 s."""
    added = client.callcheck_add("+7 916 123-45-01")
    assert (added["status"], added["call_phone"]) == ("OK", "78005008275")
    assert client.callcheck_status(added["check_id"])["check_status"] == "400"
    clock.advance(6)
    reply = client.callcheck_status(added["check_id"])
    assert reply["check_status"] == "401" and "подтвержден" in reply["check_status_text"]


def test_wrong_api_id(server):
    """A wrong api_id reaches the client as HTTP 200 with ERROR 200."""
    bad = Client("nope")
    bad._base_url = server.urls()["smsru"]
    assert bad.balance()["status_code"] == 200
