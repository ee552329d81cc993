"""Lanes without Celery: where each lane's work waits, how much bulk the broker gets, and
the limiter's slot schedule under bulk pressure (real Redis, in-process sandbox)."""

from __future__ import annotations

import random
import time

import pytest

from providers.errors import ValidationError
from worker import reconcile
from worker.engine import BULK_LOOKAHEAD
from worker.ledger.store import QUEUED, bulk_key
from worker.limiter import RateLimiter
from worker.ops import health
from worker.producer import submit as producer

CLUB = "smsclub"


def submit(engine, n, lane=None, base=0, text="Hello"):
    phones = [f"+38097{base + i:07d}" for i in range(n)]
    return producer.write(engine, producer.plan(engine, phones, text, account=CLUB, lane=lane))


def queues(engine):
    return [q for _, _, q in engine.enqueued]


def test_transactional_is_enqueued_on_the_high_lane(engine):
    """A one-off send goes straight to smsq.<gw>, its records carry the default lane."""
    job = submit(engine, 3)
    assert queues(engine) == ["smsq.smsclub"]
    assert {r["lane"] for r in engine.ledger.get_many(job.ids)} == {"transactional"}
    assert producer.status(engine, job.ids[:1])[0]["lane"] == "transactional"


def test_bulk_waits_in_the_ledger_and_is_released_a_few_seconds_at_a_time(engine):
    """A 50-batch bulk job enqueues nothing; each sweep hands over rate x lookahead batches."""
    job = submit(engine, 50 * 100, lane="bulk")
    assert engine.enqueued == []
    assert engine.r.zcard(bulk_key(CLUB)) == 5000 and engine.r.zcard(QUEUED) == 0
    reconcile.release(engine)
    room = int(9 * BULK_LOOKAHEAD)
    assert queues(engine) == ["smsq.smsclub.bulk"] * room
    assert sum(len(k["ids"]) for _, k, _ in engine.enqueued) == room * 100
    assert len(job.ids) == 5000


def test_bulk_release_counts_what_the_broker_already_holds(engine):
    """Tasks still waiting in smsq.<gw>.bulk use up the room: nothing more is handed over."""
    submit(engine, 3000, lane="bulk")
    engine.r.rpush("smsq.smsclub.bulk", *["task"] * 18)
    reconcile.release(engine)
    assert engine.enqueued == []
    engine.r.ltrim("smsq.smsclub.bulk", 0, 14)  # 15 left: room for 3
    reconcile.release(engine)
    assert len(engine.enqueued) == 3


def test_a_retried_bulk_message_goes_back_to_the_bulk_index(engine):
    """queued -> sending -> queued keeps a bulk message out of the high lane's index."""
    job = submit(engine, 2, lane="bulk")
    msg = job.ids[0]
    assert engine.ledger.transition(msg, ["queued"], "sending", score=time.time() + 60)
    assert engine.r.zscore(bulk_key(CLUB), msg) is None
    assert engine.ledger.transition(msg, ["sending"], "queued", score=time.time())
    assert engine.r.zscore(bulk_key(CLUB), msg) is not None
    assert engine.r.zscore(QUEUED, msg) is None


def test_failover_moves_a_bulk_message_to_the_next_accounts_bulk_index(engine):
    """A changed account moves the entry from qb:<old> to qb:<new>."""
    job = submit(engine, 1, lane="bulk")
    msg = job.ids[0]
    engine.ledger.transition(msg, ["queued"], "sending", score=time.time() + 60)
    engine.ledger.transition(msg, ["sending"], "queued", score=1.0, acc="smsc")
    assert engine.r.zscore(bulk_key(CLUB), msg) is None
    assert engine.r.zscore(bulk_key("smsc"), msg) == 1.0


@pytest.mark.parametrize("lane", ["urgent", "", 3, ["bulk"], "bulk\x00"])
def test_an_unknown_lane_is_refused_and_nothing_written(engine, redis_client, lane):
    """A lane outside otp/transactional/bulk is a ValidationError naming `lane`."""
    with pytest.raises(ValidationError) as info:
        submit(engine, 1, lane=lane)
    assert info.value.field == "lane"
    assert redis_client.dbsize() == 0


def test_bulk_never_books_far_future_slots(redis_client):
    """However many bulk requests ask at once, a transactional one finds the schedule at
    most two slots ahead; without the horizon it would wait behind all of them."""
    seed = random.randrange(1 << 30)
    print(f"seed={seed}")
    n = random.Random(seed).randrange(5, 40)
    limiter = RateLimiter(redis_client, max_wait=10.0)
    rate, interval = 10.0, 0.1
    booked = [limiter.try_acquire("lanes", rate, horizon=interval) for _ in range(n)]
    assert sum(g.allowed for g in booked) <= 2
    assert all(g.deferred for g in booked if not g.allowed)
    assert limiter.try_acquire("lanes", rate).wait <= 2 * interval + 0.05
    fifo = [limiter.try_acquire("fifo", rate) for _ in range(n)]
    assert all(g.allowed for g in fifo)
    assert limiter.try_acquire("fifo", rate).wait >= (n - 1) * interval


def test_a_deferred_bulk_request_waits_and_books_nothing_meanwhile(redis_client):
    """book() waits (injected sleep) while the slot is beyond the horizon; past max_wait it
    gives up without having pushed the schedule back."""
    sleeps: list[float] = []
    limiter = RateLimiter(redis_client, max_wait=1.0, sleep=sleeps.append)
    for _ in range(5):
        limiter.try_acquire("wait", 10.0)  # the schedule is 0.5 s ahead
    grant = limiter.book("wait", 10.0, horizon=0.1)
    assert not grant.allowed and not grant.deferred
    assert sleeps and sum(sleeps) <= 1.0
    assert 0.4 <= limiter.try_acquire("wait", 10.0).wait <= 0.55


def test_health_reports_the_oldest_waiting_transactional_message(engine):
    """check_lanes fails once an otp/transactional message waited over a minute."""
    job = submit(engine, 1, lane="otp")
    submit(engine, 1, lane="bulk", base=10)
    assert health.check_lanes(engine.r, engine.cfg).ok
    engine.r.hset(f"smsq:m:{job.ids[0]}", "created", time.time() - 120)
    check = health.check_lanes(engine.r, engine.cfg)
    assert not check.ok and check.value["otp"] >= 119 and check.value["bulk"] < 60


def test_a_campaigns_recipients_are_bulk(engine):
    """Campaign records carry lane bulk and the tick hands them to smsq.<gw>.bulk."""
    from worker.campaigns import service as campaigns
    from worker.campaigns import tick

    made = campaigns.create(engine, text="Sale", recipients=[f"+38097{i:07d}" for i in
                                                             range(1, 251)],
                            account=CLUB, start="now")
    tick.tick(engine)
    assert engine.enqueued and set(queues(engine)) == {"smsq.smsclub.bulk"}
    ids = [i for _, k, _ in engine.enqueued for i in k["ids"]]
    assert {r["lane"] for r in engine.ledger.get_many(ids)} == {"bulk"}
    assert all(i.startswith(made["id"]) for i in ids)


def test_bulk_yields_admission_to_a_waiting_transactional_request(redis_client):
    """While a higher-lane request waits for room in the window, a bulk one is not admitted
    even when room appears; the higher one is, and bulk follows."""
    from worker.limiter import Throttled, Window

    limiter = RateLimiter(redis_client, max_wait=0.05, sleep=lambda s: None)
    window = Window(1, 30.0)
    limiter.admit("hi", window, 1.0)  # the window is full for 30 s
    log = limiter.log_key("hi")
    args = [1, f"{30e6:.0f}", f"{30e6:.0f}"]
    assert limiter._admit(keys=[log, log + ":hi"], args=[*args, "otp-1", 0, "5000000"])[0] == 0
    redis_client.delete(log)  # room
    with pytest.raises(Throttled):
        limiter.admit("hi", window, 0.05, bulk=True)
    assert limiter._admit(keys=[log, log + ":hi"], args=[*args, "otp-1", 0, "5000000"])[0] == 1
    redis_client.delete(log)
    assert limiter.admit("hi", window, 0.05, bulk=True)


def test_the_opt_out_list_applies_to_a_bulk_job_not_to_a_transactional_one(engine):
    """A number on `smsq suppress` is rejected (suppressed) in a bulk job and nothing is
    handed on for it; a transactional message to it is sent as before."""
    from worker.contacts.suppression import Suppression

    Suppression(engine.r, engine.cfg.default_region).add(["+380970000002"])
    job = submit(engine, 3, lane="bulk", base=1)
    reconcile.release(engine)
    handed = [i for _, k, _ in engine.enqueued for i in k["ids"]]
    rows = engine.ledger.get_many(job.ids)
    assert [(r["st"], r.get("reason")) for r in rows] == [
        ("queued", None), ("rejected", "suppressed"), ("queued", None)]
    assert handed == [job.ids[0], job.ids[2]]
    engine.enqueued.clear()
    one = submit(engine, 1, base=2)
    assert engine.ledger.get(one.ids[0])["st"] == "queued" and engine.enqueued


def test_suppress_lanes_extends_the_opt_out_list_to_transactional(engine):
    """SMSQ_SUPPRESS_LANES=transactional: a listed number in a transactional job is rejected
    (suppressed) at submit and never handed on; the others of the job go; OTPs still go."""
    import dataclasses

    from worker.contacts.suppression import Suppression

    engine.cfg = dataclasses.replace(engine.cfg, suppress_lanes=("transactional", "bulk"))
    Suppression(engine.r, engine.cfg.default_region).add(["+380970000012"])
    job = submit(engine, 3, base=11)
    assert job.rejected == {job.ids[1]: "suppressed"}
    assert [(r["st"], r.get("reason")) for r in engine.ledger.get_many(job.ids)] == [
        ("queued", None), ("rejected", "suppressed"), ("queued", None)]
    handed = [i for _, k, _ in engine.enqueued for i in k["ids"]]
    assert sorted(handed) == sorted([job.ids[0], job.ids[2]])
    engine.enqueued.clear()
    otp = submit(engine, 1, lane="otp", base=12)
    assert engine.ledger.get(otp.ids[0])["st"] == "queued" and engine.enqueued


def test_suppress_lanes_refuses_an_unknown_lane():
    from providers.errors import ConfigurationError
    from worker.settings import load

    with pytest.raises(ConfigurationError, match="SMSQ_SUPPRESS_LANES"):
        load({"SMSQ_SUPPRESS_LANES": "transactional,promo"})
    assert load({"SMSQ_SUPPRESS_LANES": "otp"}).suppress_lanes == ("otp", "bulk")
    assert load({}).suppress_lanes == ("bulk",)

