"""The queue pipeline end to end: real Redis, real Celery worker and beat, sandbox over HTTP."""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest
from celery import Celery

from providers.errors import ValidationError
from tests.integration.conftest import all_final, use_stack, wait_for
from worker import api
from worker.local.stack import Stack

pytestmark = pytest.mark.integration


def ru(n: int, base: int = 0) -> list[str]:
    return [f"+7916{base + i:07d}" for i in range(n)]


def ua(n: int, base: int = 0) -> list[str]:
    return [f"+38097{base + i:07d}" for i in range(n)]


def sandbox_count(stack: Stack, gateway: str) -> Counter[str]:
    return Counter(m["phone"] for m in stack.sandbox_messages() if m["gateway"] == gateway)


def test_submit_reaches_delivered_through_polling(stack: Stack) -> None:
    """Messages to gateways without delivery reports end final through beat's polling."""
    stack.sandbox.state.outcomes = {"delivered": 1.0}
    club = api.submit(ua(30, 100), "Poll me", account="smsclub")
    k1000 = api.submit(ru(5, 200), "Poll me too", account="sms1000")
    ids = club.ids + k1000.ids
    assert wait_for(lambda: all_final(ids, ("delivered",)), timeout=60)
    rows = api.get_status(ids)
    assert all(r["provider_message_id"] and r["raw_code"] for r in rows)
    assert all(r["attempts"] == 1 for r in rows)


def test_every_gateway_accepts_and_finishes(stack: Stack) -> None:
    """One job per gateway: every accepted message is in the sandbox exactly once."""
    stack.sandbox.state.outcomes = {"delivered": 0.8, "undelivered": 0.2}
    jobs = {gw: api.submit(ru(20, 300 + i * 100) if gw != "smsclub" else ua(20, 300),
                           f"Hello from {gw}", account=gw)
            for i, gw in enumerate(["smsru", "smsclub", "smsc", "gatum", "sms1000"])}
    ids = [i for j in jobs.values() for i in j.ids]
    assert wait_for(lambda: all_final(ids), timeout=90)
    for gw, job in jobs.items():
        statuses = Counter(r["status"] for r in api.get_status(job.ids))
        assert set(statuses) <= {"delivered", "undelivered"}, (gw, statuses)
        counts = sandbox_count(stack, gw)
        assert all(c == 1 for c in counts.values()), gw


def test_idempotency_key_sends_once(stack: Stack) -> None:
    """The same idempotency key returns the same ids and nothing is sent twice."""
    first = api.submit(ru(3, 900), "Once only", account="smsru", idempotency_key="order-77")
    again = api.submit(ru(3, 900), "Once only", account="smsru", idempotency_key="order-77")
    assert again.ids == first.ids and again.duplicate
    with pytest.raises(ValidationError) as info:
        api.submit(ru(3, 900), "Different", account="smsru", idempotency_key="order-77")
    assert info.value.field == "idempotency_key"
    assert wait_for(lambda: all_final(first.ids), timeout=60)
    counts = sandbox_count(stack, "smsru")
    assert all(counts[p.lstrip("+")] == 1 for p in ru(3, 900))


def test_other_application_enqueues_by_task_name(stack: Stack) -> None:
    """A bare Celery client enqueues smsq.send by name and reads the outcome."""
    client = Celery(broker=stack.redis_url)
    client.send_task("smsq.send", queue="smsq", kwargs={
        "recipients": ru(4, 1000), "text": "By name", "account": "smsru", "job_id": "byname1"})
    client.send_task("smsq.send", queue="smsq", kwargs={
        "recipients": ["+7916", "nope"], "text": "", "account": "smsru", "job_id": "byname2"})
    assert wait_for(lambda: _job_total(api, "byname1") == 4, timeout=30)
    assert wait_for(lambda: all_final([f"byname1.{i}" for i in range(4)]), timeout=60)
    assert wait_for(lambda: _job_total(api, "byname2") == 2, timeout=30)
    bad = api.job_status("byname2")
    assert bad["counts"] == {"rejected": 2} and "text" in (bad["error"] or "")


def _job_total(module: object, job: str) -> int:
    try:
        return int(api.job_status(job)["total"])
    except ValidationError:
        return 0


def test_global_limiter_keeps_smsclub_under_its_limit(stack: Stack) -> None:
    """Unique texts to SMS Club from 4 processes: no 429 and ≤ 9 requests in any second."""
    stack.sandbox.state.requests.clear()
    job = api.submit(messages=[{"to": p, "text": f"unique {i}"} for i, p in
                               enumerate(ua(40, 5000))], account="smsclub")
    assert wait_for(lambda: all_final(job.ids) or _all_sent(job.ids), timeout=60)
    sends = sorted(r["time"] for r in stack.sandbox_requests()
                   if r["gateway"] == "smsclub" and r["path"].endswith("/send"))
    statuses = [r["status"] for r in stack.sandbox_requests() if r["gateway"] == "smsclub"]
    assert 429 not in statuses
    assert len(sends) == 40
    assert max(sum(1 for t in sends if s <= t < s + 1.0) for s in sends) <= 9


def _all_sent(ids: list[str]) -> bool:
    return all(r["status"] not in ("queued", "sending") for r in api.get_status(ids))


def test_route_fails_over_on_bad_credentials(fresh_stack: Stack) -> None:
    """An account refusing for account reasons hands the message to the next in the route."""
    fresh_stack.extra_env.update({
        "SMSQ_ACCOUNTS": "badclub:smsclub", "SMSQ_BADCLUB_TOKEN": "wrong-token",
        "SMSQ_BADCLUB_BASE_URL": "{url:smsclub}", "SMSQ_BADCLUB_SENDER": "smsq",
        "SMSQ_ROUTES": "main=badclub,smsru"})
    fresh_stack.start(workers=1, concurrency=2)
    use_stack(fresh_stack)
    job = api.submit(ru(5, 7000), "Fail over", route="main")
    assert wait_for(lambda: all_final(job.ids), timeout=60)
    rows = api.get_status(job.ids)
    assert {r["account"] for r in rows} == {"smsru"}
    assert not sandbox_count(fresh_stack, "smsclub")
    assert sum(sandbox_count(fresh_stack, "smsru").values()) == 5


def test_worker_killed_mid_batch_sends_nothing_twice(fresh_stack: Stack) -> None:
    """SIGKILL a worker while it sends, restart it: all final or unknown, no duplicates."""
    fresh_stack.sandbox.state.final_after = 0.5
    fresh_stack.start(workers=1, concurrency=4)
    use_stack(fresh_stack)
    numbers = ru(600, 20000)
    jobs = [api.submit(messages=[{"to": p, "text": f"k{i}"} for i, p in
                                 enumerate(numbers[:300])], account="sms1000"),
            api.submit(numbers[300:], "Kill test", account="smsru")]
    ids = [i for j in jobs for i in j.ids]
    time.sleep(1.0)
    fresh_stack.kill("worker0", signal.SIGKILL)
    fresh_stack.start_worker("worker0", concurrency=4)
    assert wait_for(lambda: all_final(ids), timeout=120)
    for gw in ("sms1000", "smsru"):
        assert all(c == 1 for c in sandbox_count(fresh_stack, gw).values()), gw
    rows = api.get_status(ids)
    accepted = sum(1 for r in rows if r["provider_message_id"])
    recorded = sum(sum(sandbox_count(fresh_stack, gw).values()) for gw in ("sms1000", "smsru"))
    unknown = sum(1 for r in rows if r["status"] == "unknown" and not r["provider_message_id"])
    assert accepted <= recorded <= accepted + unknown


def test_delivery_reports_finish_messages_without_polling(fresh_stack: Stack) -> None:
    """With polling far away, sms.ru, Gatum and SMSC messages end final through pushed reports."""
    fresh_stack.extra_env.update({"SMSQ_POLL_INTERVAL": "600", "SMSQ_POLL_FIRST_AFTER": "600"})
    fresh_stack.sandbox.state.outcomes = {"delivered": 0.7, "undelivered": 0.3}
    fresh_stack.start(workers=1, concurrency=2)
    use_stack(fresh_stack)
    jobs = {gw: api.submit(ru(15, 40001 + i * 100), f"Report me via {gw}", account=gw)
            for i, gw in enumerate(["smsru", "gatum", "smsc"])}
    ids = [i for j in jobs.values() for i in j.ids]
    assert wait_for(lambda: all_final(ids, ("delivered", "undelivered")), timeout=60)
    pushed = [r for r in fresh_stack.sandbox_requests() if "/status" in r["path"]
              or "sms-full-data" in r["path"]]
    assert not pushed  # no status request was made: the reports did it
    assert fresh_stack.server.pusher is not None and fresh_stack.server.pusher.attempts > 0
