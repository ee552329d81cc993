"""Per-recipient caps (issue 14), against a real redis-server: counted once per message in
the step that writes the job, refused messages end `rejected` (reason recipient_cap),
the rest of the job goes on."""

from __future__ import annotations

import dataclasses
import os
import random
import threading

import pytest
import redis

from providers.errors import ValidationError
from worker.engine import Engine
from worker.ledger.caps import CAPPED_KEY, capped_totals
from worker.ledger.jobs import NewRecord
from worker.ops.metrics.serve import RedisCollector
from worker.producer import intake
from worker.producer import submit as producer

CLUB = "smsclub"
HOT = "+380971234567"


def submit(engine, phones, lane="otp", text="Your code: 1234", **kw):
    return producer.write(engine, producer.plan(engine, phones, text, account=CLUB, lane=lane,
                                                strict=kw.pop("strict", True)), **kw)


def with_caps(engine: Engine, **caps: int) -> Engine:
    """The same engine under other cap settings (e.g. cap_transactional_hour=3)."""
    engine.cfg = dataclasses.replace(engine.cfg, **caps)
    return engine


def statuses(engine, ids):
    return [(r["status"], r.get("reason")) for r in producer.status(engine, ids)]


def test_otp_is_capped_by_default_and_the_rest_of_the_job_goes_on(engine):
    """Default OTP cap 5/hour: 7 codes to one number -> 5 queued, 2 rejected; others pass."""
    assert engine.cfg.caps("otp") == (5, 20)
    job = submit(engine, [HOT] * 7 + ["+380971111111", "+380972222222"])
    assert job.rejected == {f"{job.job_id}.{i}": "recipient_cap" for i in (5, 6)}
    assert statuses(engine, job.ids) == [("queued", None)] * 5 + [
        ("rejected", "recipient_cap")] * 2 + [("queued", None)] * 2
    queued = [m for _, kw, _ in engine.enqueued for m in kw["ids"]]
    assert sorted(queued) == sorted(job.ids[:5] + job.ids[7:])
    assert producer.job_status(engine, job.job_id)["counts"] == {"queued": 7, "rejected": 2}
    assert capped_totals(engine.r) == {"otp": 2}
    # The estimate leaves out what will never be sent.
    assert job.estimate.segments == (1, 1, 1, 1, 1, 0, 0, 1, 1) and job.estimate.total == 7


def test_the_count_spans_jobs_but_not_lanes_or_numbers(engine):
    """Caps count per number and lane across jobs; transactional is uncapped by default."""
    for _ in range(5):
        assert not submit(engine, [HOT]).rejected
    assert list(submit(engine, [HOT]).rejected.values()) == ["recipient_cap"]
    assert not submit(engine, ["+380979999999"]).rejected
    assert not submit(engine, [HOT] * 30, lane="transactional").rejected
    with_caps(engine, cap_bulk_hour=2)
    bulk = submit(engine, [HOT] * 3, lane="bulk")
    assert list(bulk.rejected) == [f"{bulk.job_id}.2"]
    assert capped_totals(engine.r) == {"otp": 1, "bulk": 1}


def test_hour_and_day_windows_slide(engine):
    """2 per hour, 3 per day: the hour frees up after 3600 s, the day after 86400 s."""
    jobs = engine.ledger.jobs
    t0 = 1_800_000_000.0

    def one(n: int, now: float) -> bool:
        done = jobs.create(f"w{n}", {"lane": "otp"}, [NewRecord(HOT)], digest=str(n), now=now,
                           release_at=now, account=CLUB, caps=(2, 3))
        return not done.capped

    assert [one(1, t0), one(2, t0 + 10), one(3, t0 + 20)] == [True, True, False]
    assert one(4, t0 + 3599) is False  # the first two are still within the hour
    assert one(5, t0 + 3601) is True  # the first left the hour: 3 today now
    assert one(6, t0 + 7300) is False  # the hour is free, the day is full
    assert one(7, t0 + 86_401) is True  # the first left the day
    assert one(8, t0 + 86_402) is False  # the day holds 2, 5 and 7
    assert one(9, t0 + 86_411) is True  # 2 left it


def test_a_message_counts_once_whatever_the_retries(engine):
    """The same idempotency key, a redelivered smsq.send and a job-id replay count nothing
    more; a duplicate still reports which messages the cap refused."""
    first = submit(engine, [HOT] * 6, idempotency_key="k1")
    again = submit(engine, [HOT] * 6, idempotency_key="k1")
    assert again.duplicate and again.rejected == first.rejected == {
        f"{first.job_id}.5": "recipient_cap"}
    assert again.estimate.total == 5
    with pytest.raises(ValidationError):  # other content under the key: nothing counted
        submit(engine, [HOT, "+380970000001"], idempotency_key="k1")
    kwargs = {"recipients": ["+380975550000"] * 3, "text": "code 1", "account": CLUB,
              "lane": "otp"}
    for _ in range(4):  # the broker hands the same task over again
        intake.intake(engine, (), kwargs, "task-abc")
    assert producer.job_status(engine, "task-abc")["counts"] == {"queued": 3}
    assert intake.intake(engine, (), kwargs, "task-def").rejected == {
        "task-def.2": "recipient_cap"}
    assert capped_totals(engine.r) == {"otp": 2}


def test_messages_refused_for_another_reason_consume_nothing(engine):
    """An invalid number (reject_invalid) and a refused job never count against the cap."""
    job = submit(engine, ["nope", HOT, "+1", HOT, HOT, HOT, HOT, HOT], strict=False)
    assert sorted(job.rejected) == [f"{job.job_id}.{i}" for i in (0, 2, 7)]
    assert job.rejected[f"{job.job_id}.7"] == "recipient_cap"
    assert "recipient_cap" not in (job.rejected[f"{job.job_id}.0"],
                                   job.rejected[f"{job.job_id}.2"])
    with pytest.raises(ValidationError):
        submit(engine, ["+380973330000"] * 3, text="")
    keys = engine.r.keys("smsq:cap:otp:*")
    assert len(keys) == 1 and engine.r.zcard(keys[0]) == 5


def test_keys_and_logs_carry_no_number(engine, capsys):
    """Cap keys name the number by its SHA-1; smsq.send's warning names reasons only."""
    submit(engine, [HOT] * 6)
    intake.intake(engine, (), {"recipients": [HOT], "text": "x", "account": CLUB,
                               "lane": "otp"}, "t1")
    keys = [k.decode() for k in engine.r.keys("smsq:cap*")]
    assert len(keys) == 2 and CAPPED_KEY in keys
    assert not any("1234567" in k for k in keys)
    out = capsys.readouterr()
    assert "recipient_cap" in out.out + out.err and "1234567" not in out.out + out.err


def test_the_metric_counts_refusals_by_lane(engine):
    """smsq_recipient_cap_rejected_total{lane} is read from Redis at scrape time."""
    submit(engine, [HOT] * 8)
    families = {f.name: f for f in RedisCollector(engine.cfg).collect()}
    samples = {s.labels["lane"]: s.value for s in families["smsq_recipient_cap_rejected"].samples
               if s.name.endswith("_total")}
    assert samples == {"otp": 3.0, "transactional": 0.0, "bulk": 0.0}


def test_concurrent_submits_never_pass_the_cap(engine):
    """Seeded: 6 threads, each its own Redis connection, submit jobs of random size to 4
    numbers; per number the accepted messages never exceed the hour cap, and together
    with the refused ones they add up to what was submitted."""
    seed = int(os.environ.get("SMSQ_TEST_SEED") or random.randrange(1 << 30))
    print(f"seed={seed} (replay: SMSQ_TEST_SEED={seed})")
    with_caps(engine, cap_otp_hour=7, cap_otp_day=9)
    numbers = [f"+38097{n:07d}" for n in range(4)]
    sent: list[list[str]] = []
    errors: list[BaseException] = []

    def run(worker: int) -> None:
        rng = random.Random(seed + worker)
        own = Engine(engine.cfg, client=redis.Redis.from_url(engine.cfg.redis_url))
        own.enqueue = lambda *a: None
        try:
            for _ in range(12):
                phones = [rng.choice(numbers) for _ in range(rng.randint(1, 4))]
                sent.append(phones)
                submit(own, phones)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    rows = [r for j in engine.ledger.r.zrange("smsq:jobs", 0, -1)
            for r in producer.status(engine, engine.ledger.job_ids(j.decode()))]
    for phone in numbers:
        mine = [r for r in rows if r["recipient"] == phone]
        accepted = sum(r["status"] == "queued" for r in mine)
        assert accepted <= 7, (phone, accepted, seed)
        assert len(mine) == sum(p.count(phone) for p in sent)
        assert all(r["status"] == "queued" or r["reason"] == "recipient_cap" for r in mine)
        assert accepted == min(len(mine), 7), (phone, accepted, seed)  # reached, not undershot
    assert sum(capped_totals(engine.r).values()) == sum(
        r["status"] == "rejected" for r in rows)
