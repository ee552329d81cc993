"""Status events from the ledger: produced once, in order, never backwards, never lost."""

from __future__ import annotations

import json
import random

import pytest

from providers.errors import ValidationError
from providers.models import Status, StatusResult
from worker import sending
from worker.callbacks import events, sweep
from worker.producer import submit as producer
from worker.reports import apply_reports

TASK = {"task": "billing.sms_status", "queue": "billing"}


def submit(engine, phones, callback=TASK, **kw):
    plan = producer.plan(engine, phones, "Hello", account="smsru", callback=callback,
                         strict=kw.pop("strict", True))
    return producer.write(engine, plan, **kw)


def outbox(engine, job_or_sub=None):
    subs = [k.decode().rsplit(":", 1)[1] for k in engine.r.keys("smsq:hook:q:*")]
    return [json.loads(e) for s in subs for e in engine.r.lrange(f"smsq:hook:q:{s}", 0, -1)]


def send(engine, job):
    sending.deliver(engine, job.ids, "smsru")
    return [engine.ledger.get(i)["pid"] for i in job.ids]


def report(engine, pid, status):
    apply_reports(engine, "smsru", [StatusResult(pid, status, "raw-" + str(status))])


def test_sent_then_final_in_order_with_stable_ids(cb_engine):
    """A subscribed message yields message.sent then message.delivered, ids <msg>:<status>."""
    job = submit(cb_engine, ["+79161234501"])
    (pid,) = send(cb_engine, job)
    report(cb_engine, pid, Status.DELIVERED)
    evs = outbox(cb_engine)
    assert [e["type"] for e in evs] == ["message.sent", "message.delivered", "job.completed"]
    assert [e["id"] for e in evs] == [f"{job.ids[0]}:sent", f"{job.ids[0]}:delivered",
                                      f"{job.job_id}:completed"]
    assert evs[0]["data"]["provider_message_id"] == pid and evs[0]["data"]["segments"] == 1
    assert evs[1]["data"]["raw_code"] == "raw-delivered"
    assert evs[2]["data"]["counts"] == {"delivered": 1}


def test_a_late_sent_after_delivered_is_suppressed(cb_engine):
    """A final reported before the send result was notified leaves no sent event after it."""
    job = submit(cb_engine, ["+79161234501"])
    sending.deliver(cb_engine, job.ids, "smsru")
    cb_engine.r.delete(*cb_engine.r.keys("smsq:hook:q:*"))  # as if sent's notify never ran
    cb_engine.r.hdel(f"smsq:m:{job.ids[0]}", "cbr")
    cb_engine.ledger.transition(job.ids[0], ["sent"], "delivered")
    events.notify(cb_engine, job.ids)
    events.notify(cb_engine, job.ids)  # the late notify of `sent`
    assert [e["type"] for e in outbox(cb_engine)] == ["message.delivered", "job.completed"]


def test_finals_only_skips_sent(cb_engine):
    """finals_only subscribers see only final events."""
    job = submit(cb_engine, ["+79161234501"], callback={**TASK, "finals_only": True})
    (pid,) = send(cb_engine, job)
    report(cb_engine, pid, Status.UNDELIVERED)
    assert [e["type"] for e in outbox(cb_engine)] == ["message.undelivered", "job.completed"]


def test_unsubscribed_messages_produce_nothing(cb_engine):
    """Without a callback (and no default) no outbox is written and nothing is enqueued."""
    job = submit(cb_engine, ["+79161234501"], callback=None)
    send(cb_engine, job)
    assert outbox(cb_engine) == []
    assert not cb_engine.r.keys("smsq:hook:*")


def test_rejected_at_intake_is_reported(cb_engine):
    """An invalid number rejected at submit yields message.rejected with its reason."""
    job = submit(cb_engine, ["+79161234501", "12"], strict=False)
    evs = [e for e in outbox(cb_engine) if e["type"] == "message.rejected"]
    assert [e["data"]["message_id"] for e in evs] == [job.ids[1]]
    assert evs[0]["data"]["reason"]


def test_first_publish_only_while_the_outbox_is_awake(cb_engine):
    """Only an idle outbox costs a task publish; later events ride on the pending flush."""
    job = submit(cb_engine, [f"+7916123450{i}" for i in range(5)])
    send(cb_engine, job)
    flushes = [k for n, k, q in cb_engine.enqueued if n == events.TASK_FLUSH]
    assert len(flushes) == 1 and flushes[0]["sub"]
    assert all(q == "smsq.callbacks" for n, _, q in cb_engine.enqueued if n == events.TASK_FLUSH)


def test_sweep_produces_what_a_crash_left_unproduced(cb_engine):
    """A transition whose notify never ran is caught by beat's sweep, once."""
    job = submit(cb_engine, ["+79161234501"])
    (_pid,) = send(cb_engine, job)
    cb_engine.ledger.transition(job.ids[0], ["sent"], "delivered")  # no notify: a crash
    assert [e["type"] for e in outbox(cb_engine)] == ["message.sent"]
    sweep.sweep(cb_engine, cb_engine.clock() + 3600)
    sweep.sweep(cb_engine, cb_engine.clock() + 7200)
    assert [e["type"] for e in outbox(cb_engine)] == ["message.sent", "message.delivered",
                                                      "job.completed"]
    assert cb_engine.r.zcard(events.JOBS) == 0  # settled jobs leave the sweep


def test_bad_callbacks_are_refused_and_write_nothing(cb_engine, redis_client):
    """Each malformed callback names the problem and nothing is written."""
    bad = [{"url": "file:///etc/passwd"}, {"url": "https://10.0.0.5/x"},
           {"url": "https://user:pw@example.com/"}, {"url": "ftp://example.com"},
           {"task": "x", "queue": "smsq.smsru"}, {"task": "bad name!", "queue": "q"},
           {"url": "https://example.com", "secret": "whsec_abc"},
           {"url": "https://example.com", "task": "x"}, {"url": "https://example.com",
                                                        "batch": 0}, "not a url", 42,
           {"url": "https://example.com", "extra": 1}]
    for cb in bad:
        with pytest.raises(ValidationError) as info:
            submit(cb_engine, ["+79161234501"], callback=cb)
        assert info.value.field == "callback", cb
    assert redis_client.dbsize() == 0


def test_random_orders_never_go_backwards(cb_engine):
    """Seeded: reports, duplicates and sweeps in random order; per message the event ranks
    only rise, every final arrives, each event id appears once."""
    seed = random.randrange(1_000_000)
    print("seed", seed)
    rng = random.Random(seed)
    job = submit(cb_engine, [f"+791612345{i:02d}" for i in range(30)])
    pids = send(cb_engine, job)
    news = [(pid, s) for pid in pids for s in (Status.SENT, rng.choice(
        [Status.DELIVERED, Status.UNDELIVERED, Status.EXPIRED]))]
    news += rng.sample(news, 20)
    rng.shuffle(news)
    later = iter(range(1, 1000))
    for pid, status in news:
        if rng.random() < 0.3:
            ids = cb_engine.ledger.find_pids("smsru", [pid])
            moves_from = [s for s in ("sent", "unknown") if s != status]  # the lifecycle's own
            cb_engine.ledger.transition(ids[0], moves_from, str(status))  # no notify
        else:
            report(cb_engine, pid, status)
        if rng.random() < 0.2:
            sweep.sweep(cb_engine, cb_engine.clock() + 3600 * next(later))
    sweep.sweep(cb_engine, cb_engine.clock() + 3600 * next(later))
    rank = {"sent": 1, "unknown": 2}
    seen: dict[str, int] = {}
    evs = outbox(cb_engine)
    assert len({e["id"] for e in evs}) == len(evs), seed
    for e in evs:
        if e["type"] == "job.completed":
            continue
        r = rank.get(e["data"]["status"], 3)
        assert r > seen.get(e["data"]["message_id"], 0), seed
        seen[e["data"]["message_id"]] = r
    assert all(seen.get(i) == 3 for i in job.ids), seed
    assert evs[-1]["type"] == "job.completed"


def test_a_huge_job_is_swept_in_turns_and_leaves_after_a_clean_cycle(cb_engine, monkeypatch):
    """A pass re-reads at most PASS_IDS messages from where the last one stopped and skips
    the settled prefix; a final whose notify never ran is still produced within a cycle;
    the job leaves the sweep only after a whole cycle found nothing open."""
    monkeypatch.setattr(sweep, "PASS_IDS", 10)
    monkeypatch.setattr(sweep, "CHUNK", 4)
    read: list[int] = []
    run = events.run
    monkeypatch.setattr(events, "run", lambda r, ids, **kw: read.append(len(ids)) or
                        run(r, ids, **kw))
    job = submit(cb_engine, [f"+791612345{i:02d}" for i in range(25)], callback=TASK)
    pids = send(cb_engine, job)
    for pid in pids[:24]:
        report(cb_engine, pid, Status.DELIVERED)
    cb_engine.ledger.transition(job.ids[24], ["sent"], "delivered")  # no notify: a crash
    t = iter(range(1, 100))
    passes = 0
    while cb_engine.r.zscore(events.JOBS, job.job_id) is not None:
        read.clear()
        sweep.sweep(cb_engine, cb_engine.clock() + 3600 * next(t))
        assert sum(read) <= 10
        passes += 1
        assert passes < 10
    finals = [e for e in outbox(cb_engine) if e["type"] == "message.delivered"]
    assert sorted(e["data"]["message_id"] for e in finals) == sorted(job.ids)
    assert [e["type"] for e in outbox(cb_engine)][-1] == "job.completed"
    assert not cb_engine.r.exists(sweep.STATE + job.job_id)


def test_the_sweep_keeps_a_job_while_a_message_is_open(cb_engine, monkeypatch):
    """An open message anywhere keeps the job in the sweep, cycle after cycle; once it is
    final its event comes and the job leaves."""
    monkeypatch.setattr(sweep, "PASS_IDS", 4)
    job = submit(cb_engine, [f"+791612345{i:02d}" for i in range(9)])
    pids = send(cb_engine, job)
    for pid in pids[:4] + pids[5:]:
        report(cb_engine, pid, Status.DELIVERED)
    for hour in range(1, 8):
        sweep.sweep(cb_engine, cb_engine.clock() + 3600 * hour)
        assert cb_engine.r.zscore(events.JOBS, job.job_id) is not None
    state = cb_engine.r.hgetall(sweep.STATE + job.job_id)
    assert int(state[b"lo"]) == 4  # the settled prefix is skipped
    cb_engine.ledger.transition(job.ids[4], ["sent"], "undelivered")  # no notify
    for hour in range(8, 12):
        sweep.sweep(cb_engine, cb_engine.clock() + 3600 * hour)
    assert cb_engine.r.zscore(events.JOBS, job.job_id) is None
    assert f"{job.ids[4]}:undelivered" in {e["id"] for e in outbox(cb_engine)}
