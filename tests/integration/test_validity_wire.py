"""Validity on the wire, end to end: real Redis, Celery worker and beat, the sandbox over
HTTP. A short-lived message to sms.ru and to SMSC carries its remaining validity in the
request (`ttl`, `valid`), and when the gateway holds it past that, it ends `expired`."""

from __future__ import annotations

import pytest
import requests

from tests.integration.conftest import use_stack, wait_for
from worker import api
from worker.local.stack import Stack

pytestmark = pytest.mark.integration


def status_of(ids: list[str]) -> list[str]:
    return [r["status"] for r in api.get_status(ids)]


def test_remaining_validity_rides_on_the_wire_and_the_gateway_expires_it(
        fresh_stack: Stack) -> None:
    stack = fresh_stack.start(workers=1, concurrency=2)
    use_stack(stack)
    control = stack.server.control_url
    # The gateways hold every message ten minutes before delivering it.
    requests.post(f"{control}/config", json={"final_after": 600,
                                             "outcomes": {"delivered": 1.0}}, timeout=5)
    ru = api.submit(["+79161234501"], "Code 4321", account="smsru", valid_for=150)
    smsc = api.submit(["+79161234502"], "Code 8765", account="smsc", valid_for=150)
    ids = ru.ids + smsc.ids
    assert wait_for(lambda: status_of(ids) == ["sent", "sent"], timeout=30), status_of(ids)

    wire = requests.get(f"{control}/requests", timeout=5).json()
    sends = {r["gateway"]: r for r in wire if r["path"] in ("/sms/send", "/sys/send.php")}
    assert sends["smsru"]["validity"] == "2"  # 150 s left -> 2 whole minutes
    assert sends["smsc"]["validity"] == "00:02"

    # The gateways' clock passes the two minutes (no test waits that long): both give up.
    requests.post(f"{control}/config", json={"advance": 125}, timeout=5)
    assert wait_for(lambda: status_of(ids) == ["expired", "expired"], timeout=30), \
        status_of(ids)
    rows = api.get_status(ids)
    assert [r["raw_code"] for r in rows] == ["104", "3"]
    assert all(r["attempts"] == 1 for r in rows)
