"""Status callbacks end to end: real Redis, worker, callbacks worker, beat, sandbox over HTTP,
a signed POST to a real local HTTP server, and a task in a second real Celery app."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import redis

from tests.callbacks.conftest import SECRET, Subscriber
from tests.integration.conftest import all_final, use_stack, wait_for
from worker import api
from worker.local.stack import Stack

pytestmark = pytest.mark.integration
RANK = {"sent": 1, "unknown": 2}


@pytest.fixture(scope="module")
def cb_stack():
    s = Stack(queued_for=0.3, final_after=1.5, poll_interval=1.0, extra_env={
        "SMSQ_CALLBACK_SCHEMES": "https,http", "SMSQ_CALLBACK_ALLOWED_HOSTS": "127.0.0.1",
        "SMSQ_CALLBACK_SECRETS": f"test={SECRET}", "SMSQ_CALLBACK_BACKOFF_BASE": "0.5",
        "SMSQ_CALLBACK_BACKOFF_MAX": "2", "SMSQ_CALLBACK_SWEEP_INTERVAL": "2"})
    s.start(workers=1, concurrency=3)
    s.start_worker("callbacks", concurrency=2, queues="smsq.callbacks")
    use_stack(s)
    yield s
    s.stop()
    api.reset()


def check_order(events, jobs):
    """Per message: ranks only rise and the last is final; job.completed after its messages."""
    seen: dict[str, int] = {}
    done: set[str] = set()
    for e in events:
        if e["type"] == "job.completed":
            done.add(e["data"]["job_id"])
            continue
        d = e["data"]
        assert d["job_id"] not in done, "a message event after its job.completed"
        r = RANK.get(d["status"], 3)
        assert r > seen.get(d["message_id"], 0), f"backwards: {e['id']}"
        seen[d["message_id"]] = r
    ids = [i for job in jobs for i in job.ids]
    missing = {i: seen.get(i) for i in ids if seen.get(i) != 3}
    assert not missing, f"final events missing (id: highest rank seen): {missing}"
    assert {j.job_id for j in jobs} <= done


def test_signed_posts_arrive_complete_and_in_order(cb_stack):
    """Reports (smsru) and polling (smsclub) end in signed POSTs the test verifies with
    standardwebhooks: every final, in order, then job.completed. In a third job every
    other message has its own subscriber: its events go there, the rest to the job's."""
    cb_stack.sandbox.state.outcomes = {"delivered": 0.7, "undelivered": 0.3}
    sub, own = Subscriber(), Subscriber()
    try:
        cb = {"url": sub.url, "secret": "test"}
        msgs = [{"to": f"+7916{i:07d}", "text": "Own"} | (
            {"callback": {"url": own.url, "secret": "test"}} if i % 2 else {})
            for i in range(50, 60)]
        jobs = [api.submit([f"+7916{i:07d}" for i in range(20)], "Hi", account="smsru",
                           callback=cb),
                api.submit([f"+38097{i:07d}" for i in range(10)], "Hi", account="smsclub",
                           callback={**cb, "batch": 5}),
                api.submit(messages=msgs, account="smsru", callback=cb)]
        mixed = jobs[2]
        def done():  # own's outbox is not ordered with the job's: wait for both
            owned = {e["data"]["message_id"] for e in own.events
                     if RANK.get(e["data"]["status"]) is None}
            return {e["data"].get("job_id") for e in sub.events if e["type"] ==
                    "job.completed"} >= {j.job_id for j in jobs} and \
                owned == set(mixed.ids[1::2])
        assert wait_for(done, timeout=90)
        assert sub.bad_signatures == 0 and own.bad_signatures == 0
        assert {e["data"]["message_id"] for e in own.events} == set(mixed.ids[1::2])
        theirs = [e for e in sub.events if e["data"].get("job_id") == mixed.job_id]
        assert {e["data"].get("message_id") for e in theirs} == {*mixed.ids[0::2], None}
        check_order(own.events + theirs, [mixed])
        check_order([e for e in sub.events if e["data"].get("job_id") == jobs[0].job_id],
                    jobs[:1])
        check_order([e for e in sub.events if e["data"].get("job_id") == jobs[1].job_id],
                    jobs[1:2])
        statuses = {r["id"]: r["status"] for j in jobs for r in api.get_status(j.ids)}
        finals = {e["data"]["message_id"]: e["data"]["status"] for e in sub.events + own.events
                  if e["type"].startswith("message.") and RANK.get(e["data"]["status"]) is None}
        assert finals == statuses
    finally:
        sub.close()
        own.close()


def test_celery_task_reaches_a_second_celery_app(cb_stack):
    """A task subscription is received by another Celery app's own worker on its queue."""
    env = {**os.environ, "BILLING_BROKER": cb_stack.redis_url,
           "PYTHONPATH": os.getcwd()}
    log = open(cb_stack.dir / "billing.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "tests.integration.callback_app",
                             "worker", "-Q", "billing", "-c", "1", "-P", "solo", "-n",
                             "billing@%h", "--without-gossip", "--without-mingle",
                             "--without-heartbeat", "-l", "WARNING"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        r = redis.Redis.from_url(cb_stack.redis_url)
        job = api.submit([f"+7916{i:07d}" for i in range(100, 105)], "Hi", account="smsru",
                         callback={"task": "billing.sms_status", "queue": "billing"})
        def got():
            return [json.loads(x) for x in r.lrange("billing:events", 0, -1)]
        assert wait_for(lambda: any(e["type"] == "job.completed" for e in got()), timeout=90)
        check_order(got(), [job])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_a_failing_subscriber_does_not_hold_up_sending(cb_stack):
    """With a subscriber answering 500 to everything, every message still ends final and
    the subscriber's events wait in its outbox, retried, none lost."""
    cb_stack.sandbox.state.outcomes = {"delivered": 1.0}
    sub = Subscriber()
    sub.codes = [500] * 10_000
    try:
        job = api.submit([f"+7916{i:07d}" for i in range(200, 260)], "Hi", account="smsru",
                         callback={"url": sub.url, "secret": "test"})
        assert wait_for(lambda: all_final(job.ids), timeout=90)
        r = redis.Redis.from_url(cb_stack.redis_url)
        sid = r.hget(f"smsq:job:{job.job_id}", "cb").decode()
        assert int(r.hget(f"smsq:hook:fail:{sid}", "att") or 0) >= 1
        assert sub.events == []
        waiting = [json.loads(e) for e in r.lrange(f"smsq:hook:q:{sid}", 0, -1)]
        finals = {e["data"]["message_id"] for e in waiting if e["type"] == "message.delivered"}
        assert finals == set(job.ids)  # all there, in line behind the failing head
        sub.codes = []
        assert wait_for(lambda: r.llen(f"smsq:hook:q:{sid}") == 0, timeout=60)
        check_order(sub.events, [job])
    finally:
        sub.close()
