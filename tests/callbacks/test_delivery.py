"""Delivering outboxes: signed, in order, retried with backoff, parked, never leaking the secret."""

from __future__ import annotations

import json

import pytest
from structlog.testing import capture_logs

from tests.callbacks.conftest import SECRET
from worker import sending
from worker.callbacks import delivery, guard, outbox, replay
from worker.callbacks.events import TASK_FLUSH
from worker.callbacks.outbox import Outbox
from worker.producer import submit as producer
from worker.settings import load


def submit(engine, phones, callback):
    plan = producer.plan(engine, phones, "Hello", account="smsru", callback=callback)
    job = producer.write(engine, plan)
    sending.deliver(engine, job.ids, "smsru")
    return job


def sub_id(engine):
    """The one subscription of the test's job (kept on the job's record)."""
    (key,) = engine.r.keys("smsq:job:*")
    return engine.r.hget(key, "cb").decode()


def test_http_events_arrive_signed_and_in_order(cb_engine, subscriber):
    """The subscriber verifies every request with standardwebhooks; events in order."""
    job = submit(cb_engine, ["+79161234501", "+79161234502"],
                 {"url": subscriber.url, "secret": "test"})
    counts = delivery.flush(cb_engine, sub_id(cb_engine))
    assert counts["delivered"] == 2 and subscriber.bad_signatures == 0
    assert [e["id"] for e in subscriber.events] == [f"{i}:sent" for i in job.ids]
    assert cb_engine.r.zcard("smsq:hook:due") == 0  # an empty outbox is no longer due


def test_batched_subscriber_gets_one_request(cb_engine, subscriber):
    """batch=N puts up to N events in one signed request."""
    submit(cb_engine, [f"+7916123450{i}" for i in range(5)],
           {"url": subscriber.url, "secret": "test", "batch": 10})
    delivery.flush(cb_engine, sub_id(cb_engine))
    assert len(subscriber.bodies) == 1 and len(subscriber.events) == 5


def test_failure_keeps_the_head_and_backs_off(cb_engine, subscriber):
    """A 500 leaves the event first in line and schedules a retry; the next flush delivers
    it, then the rest, in order."""
    job = submit(cb_engine, ["+79161234501", "+79161234502"],
                 {"url": subscriber.url, "secret": "test"})
    subscriber.codes = [500]
    sid = sub_id(cb_engine)
    assert delivery.flush(cb_engine, sid)["retry"] == 1
    due = cb_engine.r.zscore("smsq:hook:due", sid)
    assert due > cb_engine.clock() + 0.4  # base 1 s, jitter over the upper half
    assert delivery.flush(cb_engine, sid)["delivered"] == 2
    assert [e["id"] for e in subscriber.events] == [f"{i}:sent" for i in job.ids]


def test_after_the_window_the_event_is_parked_and_the_next_goes(cb_engine, subscriber):
    """Past SMSQ_CALLBACK_WINDOW the head is parked (listed, counted) and delivery moves on."""
    job = submit(cb_engine, ["+79161234501", "+79161234502"],
                 {"url": subscriber.url, "secret": "test"})
    sid = sub_id(cb_engine)
    subscriber.codes = [503]
    delivery.flush(cb_engine, sid)
    cb_engine.r.hset(f"smsq:hook:fail:{sid}", "since", cb_engine.clock() - 61)
    subscriber.codes = [503]
    counts = delivery.flush(cb_engine, sid)
    assert counts["parked"] == 1 and counts["delivered"] == 1
    parked = outbox.failed(cb_engine.r)
    assert [p["event_id"] for p in parked] == [f"{job.ids[0]}:sent"]
    assert parked[0]["attempts"] == 2 and parked[0]["error"] == "HTTP 503"
    assert outbox.gauges(cb_engine.r)["failed"] == 1.0


def test_refused_address_is_parked_at_once(cb_engine, subscriber):
    """A host that is loopback but not allowed is never contacted."""
    cfg = load({"SMSQ_CALLBACK_SCHEMES": "http"})
    with pytest.raises(guard.CallbackRefused):
        guard.check_before_send(subscriber.url, cfg)
    with pytest.raises(guard.CallbackRefused):  # a public-looking name resolving inside
        guard.check_before_send("http://hooks.example.com/x", cfg,
                                resolve=lambda h, p: ["169.254.169.254"])
    with pytest.raises(guard.CallbackRefused):
        guard.check_before_send("http://h.example.com/", cfg,
                                resolve=lambda h, p: ["::ffff:10.1.1.1"])
    guard.check_before_send("http://h.example.com/", cfg, resolve=lambda h, p: ["93.184.216.34"])


def test_secret_never_in_redis_logs_or_task_messages(cb_engine, subscriber):
    """After a full delivery, no Redis value, log event or enqueued task holds the secret."""
    with capture_logs() as logs:
        job = submit(cb_engine, ["+79161234501"], {"url": subscriber.url, "secret": "test"})
        subscriber.codes = [500]
        delivery.flush(cb_engine, sub_id(cb_engine))
        replay.replay_job(cb_engine, job.job_id)
    raw = SECRET.removeprefix("whsec_")
    dump = []
    for key in cb_engine.r.keys("*"):
        kind = cb_engine.r.type(key).decode()
        if kind == "hash":
            dump.append(json.dumps({k.decode(): v.decode()
                                    for k, v in cb_engine.r.hgetall(key).items()}))
        elif kind == "list":
            dump += [v.decode() for v in cb_engine.r.lrange(key, 0, -1)]
        elif kind == "string":
            dump.append(cb_engine.r.get(key).decode(errors="replace"))
    text = "\n".join(dump) + json.dumps(logs, default=str) + json.dumps(cb_engine.enqueued)
    assert raw not in text and "callback-test-secret" not in text


def test_task_subscriber_gets_the_event_as_kwargs(cb_engine):
    """A Celery-task subscription publishes its task with the event as kwargs, on its queue."""
    job = submit(cb_engine, ["+79161234501"], {"task": "billing.sms_status", "queue": "billing"})
    delivery.flush(cb_engine, sub_id(cb_engine))
    sent = [(n, k, q) for n, k, q in cb_engine.enqueued if n == "billing.sms_status"]
    assert sent == [("billing.sms_status", sent[0][1], "billing")]
    assert sent[0][1]["id"] == f"{job.ids[0]}:sent" and sent[0][1]["type"] == "message.sent"


def test_one_flusher_at_a_time_and_a_stale_ack_drops_nothing(cb_engine, subscriber):
    """While one flusher holds the outbox a second does nothing; an ack for events no
    longer at the head removes nothing."""
    submit(cb_engine, ["+79161234501"], {"url": subscriber.url, "secret": "test"})
    box = Outbox(cb_engine.r, sub_id(cb_engine))
    assert box.lock()
    assert delivery.flush(cb_engine, box.sub) == {"busy": 1}
    assert not box.ack([b'{"id": "someone else"}'])
    assert len(box.head(10)) == 1
    box.unlock()


def test_backoff_grows_to_its_cap_with_jitter():
    """Delays double per attempt, stop at the cap, and jitter stays in the upper half."""
    b = delivery.Backoff(base=5.0, cap=100.0)
    assert [b.delay(n, rand=lambda: 1.0) for n in (1, 2, 3, 6, 40)] == [5, 10, 20, 100, 100]
    assert b.delay(3, rand=lambda: 0.0) == 10.0


def test_a_long_outbox_hands_on_to_a_fresh_task(cb_engine, subscriber):
    """A flush that runs out of its budget re-enqueues itself instead of hogging a slot."""
    submit(cb_engine, ["+79161234501", "+79161234502"], {"url": subscriber.url,
                                                         "secret": "test"})
    cb_engine.enqueued.clear()
    delivery.flush(cb_engine, sub_id(cb_engine), budget=0.0)
    assert [n for n, _, _ in cb_engine.enqueued] == [TASK_FLUSH]
