"""The receiver over HTTP against a real Redis: parked unknown-id reports are capped in total
(SMSQ_PARK_MAX, refusals counted in `smsq_reports_total{result="park_refused"}`) and by age
(SMSQ_PARK_TTL); and while Redis is frozen or down, a report gets a 503 (which gateways
retry), never a 500 or a traceback, and is applied once Redis is back."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest
import redis
import requests

from providers.sandbox.server import free_port
from tests.integration.conftest import use_stack, wait_for
from tests.integration.test_ops import scrape, value
from worker import api
from worker.local.stack import Stack

pytestmark = pytest.mark.integration
FORM = "application/x-www-form-urlencoded"
PARK_MAX, PARK_TTL = 10, 2


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[Stack, int]]:
    metrics_port = free_port()
    s = Stack(queued_for=0.2, final_after=0.5, poll_interval=600.0, appendonly=True,
              outcomes={"delivered": 1.0},
              extra_env={"SMSQ_PARK_MAX": str(PARK_MAX), "SMSQ_PARK_TTL": str(PARK_TTL)})
    s.start(workers=1, concurrency=1, receiver=False)
    s.extra_env["SMSQ_METRICS_PORT"] = str(metrics_port)  # the receiver's metrics only
    s.start_receiver()
    use_stack(s)
    yield s, metrics_port
    s.stop()
    api.reset()


@pytest.fixture(scope="module")
def r(stack: tuple[Stack, int]) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack[0].redis_url or "", socket_timeout=5)
    yield client
    client.close()


def unknown(prefix: str, n: int) -> bytes:
    """An sms.ru report body for `n` gateway ids no message has."""
    return "&".join(f"data[{i}]=sms_status%0A{prefix}-{i}%0A103%0A1700000000"
                    for i in range(n)).encode()


def post(s: Stack, body: bytes, gateway: str = "smsru") -> requests.Response:
    return requests.post(s.webhook_url(gateway), data=body, headers={"Content-Type": FORM},
                         timeout=30)


def refused(port: int) -> float:
    return value(scrape(port), "smsq_reports_total", gateway="smsru", result="park_refused")


def parked_keys(r: redis.Redis, prefix: str) -> list[bytes]:
    return list(r.scan_iter(f"smsq:orphan:smsru:{prefix}-*"))


def test_parked_reports_are_capped_in_total_and_expire_by_age(
        stack: tuple[Stack, int], r: redis.Redis) -> None:
    """SMSQ_PARK_MAX parked reports at most, across requests; the rest refused and counted.
    After SMSQ_PARK_TTL they are gone, and the room they held is free again."""
    s, port = stack
    assert r.zcard("smsq:orphans") == 0
    before = refused(port)
    assert post(s, unknown("a", PARK_MAX + 5)).text == "100"
    assert r.zcard("smsq:orphans") == PARK_MAX
    assert len(parked_keys(r, "a")) == PARK_MAX
    assert refused(port) - before == 5
    assert post(s, unknown("b", 4)).text == "100"  # the total is full: all four refused
    assert parked_keys(r, "b") == [] and r.zcard("smsq:orphans") == PARK_MAX
    assert refused(port) - before == 9
    assert all(0 < r.ttl(k) <= PARK_TTL for k in parked_keys(r, "a"))

    assert wait_for(lambda: not parked_keys(r, "a"), timeout=15, step=0.2), \
        "parked reports outlived SMSQ_PARK_TTL"
    assert post(s, unknown("c", 3)).text == "100"
    assert len(parked_keys(r, "c")) == 3
    assert r.zcard("smsq:orphans") == 3  # the expired ones left the index on the next park
    assert refused(port) - before == 9


def _report_for(s: Stack, phone: str) -> tuple[str, bytes]:
    """The body sms.ru itself would POST for the message sent to `phone`."""
    sim = s.sandbox.sims["smsru"]
    with s.sandbox.state.lock:
        msgs = [m for m in s.sandbox.state.messages if m.phone.lstrip("+") == phone.lstrip("+")]
    assert len(msgs) == 1, msgs
    return sim.report_request(msgs)


def _deliver_through_an_outage(s: Stack, phone: str, freeze: bool) -> None:
    """Send to `phone` with report pushes held back, take Redis away (SIGSTOP, or stop the
    process), post the gateway's report: 503. Bring Redis back, let the gateway push and
    retry: the report is applied."""
    assert s.redis is not None and s.redis.proc is not None
    s.sandbox.state.configure({"callbacks": {"smsru": []}})  # no push until Redis is away
    ids = api.submit([phone], "outage test", account="smsru").ids
    assert wait_for(lambda: api.get_status(ids)[0]["status"] == "sent", timeout=60)
    if freeze:
        os.kill(s.redis.proc.pid, signal.SIGSTOP)
    else:
        s.redis.stop()
    try:
        ctype, body = _report_for(s, phone)
        started = time.monotonic()
        # bounded: the request times out (and the test fails) if no answer comes in 60 s
        reply = requests.post(s.webhook_url("smsru"), data=body,
                              headers={"Content-Type": ctype}, timeout=60)
        print(f"redis {'frozen' if freeze else 'stopped'}: {reply.status_code} after "
              f"{time.monotonic() - started:.1f} s")
        assert reply.status_code == 503, (reply.status_code, reply.text)
        assert reply.text == "storage unavailable, retry"
        assert requests.get(s.webhook_url("smsru").rsplit("/", 2)[0] + "/healthz",
                            timeout=10).ok  # the receiver itself is still up
        s.point_reports()  # the gateway pushes now, and keeps retrying until acknowledged
        assert s.server.pusher is not None
        failures = s.server.pusher.failures
        assert wait_for(lambda: s.server.pusher is not None
                        and s.server.pusher.failures > failures, timeout=60, step=0.1)
    finally:
        if freeze:
            os.kill(s.redis.proc.pid, signal.SIGCONT)
        else:
            s.redis.start()
    assert wait_for(lambda: api.get_status(ids)[0]["status"] == "delivered", timeout=60), \
        api.get_status(ids)


@pytest.mark.parametrize("freeze", [True, False], ids=["redis-frozen", "redis-stopped"])
def test_redis_away_is_503_never_500_and_the_retried_report_is_applied(
        stack: tuple[Stack, int], freeze: bool) -> None:
    """A frozen Redis (SIGSTOP: connections hang until the client's timeout) and a stopped
    one (connections refused): the receiver answers 503 — no 500, no traceback in its log
    — and the sandbox's retries land once Redis is back."""
    s, _ = stack
    _deliver_through_an_outage(s, "+79161230001" if freeze else "+79161230002", freeze)
    log = (s.dir / "receiver.log").read_text(errors="replace")
    assert "Traceback" not in log
    assert '"report_deferred"' in log
    assert " 500 " not in log
