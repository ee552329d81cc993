"""A seeded adversarial chaos run: jobs through the API and `smsq.send` while nodes, pool
children, beat and Redis are SIGKILLed and the gateways fail; then an audit of every
accepted id against the sandbox's own record.

    python -m tests.reliability.chaos --seed 7 --messages 6000

Prints the seed first and a JSON report last; exits 1 when the audit finds a message
lost, sent twice or stuck. The same seed replays the same jobs and the same faults at
the same moments (process timing still varies)."""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from celery import Celery
from kombu import Connection

from tests.reliability.chaos_cluster import GATEWAYS, Cluster, send_path, serve_sandbox
from worker import settings
from worker.engine import Engine, redis_client
from worker.producer import submit as producer

SENT = {"sent", "delivered", "undelivered", "expired"}
EXPLAINED = {"rejected", "failed", "unknown"}
EVENTS = ["pool_child", "pool_child", "main", "node", "node", "intake_kill", "redis_write",
          "beat", "w503", "w429", "timeouts", "drops"]


@dataclass
class Job:
    """One submission: how it was made, and what its caller can find it by."""

    kind: str  # api-idem | api-job | task | task-idem | task-job
    gateway: str
    phones: list[str]
    texts: list[str]  # one per phone; "" is a bad (empty) text
    ref: str  # idempotency key, job id or task id: stable across the caller's retries
    job_id: str | None = None
    done: bool = False
    errors: int = field(default=0)

    def kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"account": self.gateway}
        if len(set(self.texts)) == 1:
            kw.update(recipients=self.phones, text=self.texts[0])
        else:
            kw["messages"] = [{"to": p, "text": t} for p, t in
                              zip(self.phones, self.texts, strict=True)]
        if self.kind == "task-idem":
            kw["idempotency_key"] = self.ref
        if self.kind == "task-job":
            kw["job_id"] = self.ref
        return kw


class Feeder:
    """Another application: submits through the API and by task name, retrying each call
    under the same key / job id / task id until it is accepted."""

    def __init__(self, cluster: Cluster) -> None:
        env = {k: v for k, v in cluster.env().items() if k.startswith("SMSQ_")}
        cfg = settings.load(env)
        self.celery = Celery(broker=cluster.redis_url)
        self.engine = Engine(cfg, client=redis_client(cfg.redis_url, timeout=2.0),
                             enqueue=self._enqueue)

    def _enqueue(self, name: str, kwargs: Any, queue: str) -> None:
        self.celery.send_task(name, kwargs=dict(kwargs), queue=queue)

    def submit(self, job: Job, patience: float = 120.0) -> None:
        deadline = time.monotonic() + patience
        while not job.done and time.monotonic() < deadline:
            try:
                self._once(job)
                job.done = True
            except Exception:  # Redis killed under us: the caller retries, same identity
                job.errors += 1
                time.sleep(0.3)

    def _once(self, job: Job) -> None:
        if job.kind.startswith("task"):
            self.celery.send_task("smsq.send", kwargs=job.kwargs(), queue="smsq",
                                  task_id=job.ref)
            job.job_id = job.ref if job.kind != "task-idem" else None
            return
        kw = job.kwargs()
        p = producer.plan(self.engine, kw.get("recipients"), kw.get("text"),
                          messages=kw.get("messages"), account=job.gateway)
        key = job.ref if job.kind == "api-idem" else None
        own = job.ref if job.kind == "api-job" else None
        job.job_id = producer.write(self.engine, p, job_id=own, idempotency_key=key).job_id


def make_jobs(rng: random.Random, seed: int, messages: int) -> list[Job]:
    jobs: list[Job] = []
    kinds = ["api-idem", "api-job", "task", "task-idem", "task-job"]
    n = 0
    while n < messages:
        gw = rng.choices(GATEWAYS, weights=[25, 20, 20, 20, 15])[0]
        size = min(messages - n, rng.randint(1, 250 if gw != "sms1000" else 40))
        prefix = "+38097" if gw == "smsclub" else "+7916"
        phones = [f"{prefix}{2_000_000 + n + i:07d}" for i in range(size)]
        tag = f"s{seed}j{len(jobs)}"
        if rng.random() < 0.5:
            texts = [f"chaos {tag} code {rng.randint(1000, 9999)}"] * size
        else:
            texts = [f"chaos {tag} p{i}" for i in range(size)]
        kind = rng.choice(kinds)
        if kind.startswith("task") and len(set(texts)) > 1 and rng.random() < 0.2:
            texts[rng.randrange(size)] = ""  # bad input: that message alone is rejected
        jobs.append(Job(kind, gw, phones, texts, f"{tag}-{kind}"))
        n += size
    return jobs


class Chaos:
    def __init__(self, cluster: Cluster, rng: random.Random, say: Callable[[str], None]) -> None:
        self.c, self.rng, self.say = cluster, rng, say
        self.log: list[str] = []

    def fire(self, event: str, feeder: Feeder, jobs: list[Job]) -> None:
        self.log.append(event)
        self.say(f"chaos: {event}")
        getattr(self, f"_{event}")(feeder, jobs)

    def _node_name(self) -> str:
        return self.rng.choice(["node0", "node1"])

    def _pool_child(self, feeder: Feeder, jobs: list[Job]) -> None:
        self.c.kill_pool_child(self._node_name(), self.rng.randrange(9))

    def _main(self, feeder: Feeder, jobs: list[Job]) -> None:
        name = self._node_name()
        self.c.kill_main(name)
        self.c.restart(name)

    def _node(self, feeder: Feeder, jobs: list[Job]) -> None:
        name = self._node_name()
        self.c.kill_node(name)
        self.c.restart(name)

    def _beat(self, feeder: Feeder, jobs: list[Job]) -> None:
        self.c.kill_node("beat")
        self.c.restart("beat")

    def _intake_kill(self, feeder: Feeder, jobs: list[Job]) -> None:
        """node1 frozen, so node0 takes the smsq.send; node0 dies the moment it has it."""
        job = Job("task", "smsc", [f"+7916{9_000_000 + i:07d}" for i in range(50)],
                  ["chaos intake kill"] * 50, f"intake-kill-{self.rng.randrange(10**9)}")
        jobs.append(job)
        r = redis.Redis.from_url(self.c.redis_url)
        self.c.freeze("node1", True)
        try:
            feeder.submit(job)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not _taken(r, job.ref):
                time.sleep(0.002)
            self.c.kill_node("node0")
        finally:
            self.c.freeze("node1", False)
            r.close()
        self.c.restart("node0")

    def _redis_write(self, feeder: Feeder, jobs: list[Job]) -> None:
        """Redis SIGKILLed while a producer writes a 2,000-message job under its key."""
        job = Job("api-idem", "smsc", [f"+7916{8_000_000 + i:07d}" for i in range(2000)],
                  [f"chaos redis p{i}" for i in range(2000)],
                  f"redis-write-{self.rng.randrange(10**9)}")
        jobs.append(job)
        writer = threading.Thread(target=feeder.submit, args=(job,))
        writer.start()
        time.sleep(self.rng.uniform(0.0, 0.08))
        self.c.kill_redis()
        writer.join()

    def _window(self, fault: dict[str, Any], seconds: float,
                gateways: list[str] = GATEWAYS) -> None:
        """The fault on every gateway's send path at once, so the window always hits."""
        self.c.faults([{**fault, "gateway": gw, "path": send_path(gw)} for gw in gateways])
        time.sleep(seconds)
        self.c.slow_all()

    def _w503(self, feeder: Feeder, jobs: list[Job]) -> None:
        self._window({"kind": "http_error", "status": 503, "count": -1}, 3.0)

    def _w429(self, feeder: Feeder, jobs: list[Job]) -> None:
        """sms.ru documents no request-rate limit: its sandbox's throttle reply is the
        daily-limit error 206 ("next day"), which smsq rightly holds for an hour. A 3 s
        "next day" is no rate-limit window, so sms.ru sits this one out (206 itself is
        covered by test_faults.py's 429 storm)."""
        self._window({"kind": "throttle", "count": -1}, 3.0,
                     [gw for gw in GATEWAYS if gw != "smsru"])

    def _timeouts(self, feeder: Feeder, jobs: list[Job]) -> None:
        self._window({"kind": "timeout", "count": 2}, 6.0)

    def _drops(self, feeder: Feeder, jobs: list[Job]) -> None:
        self._window({"kind": "drop", "count": 2}, 4.0)


def _taken(r: redis.Redis, task_id: str) -> bool:
    for raw in r.hvals("unacked"):
        if task_id.encode() in raw:
            return True
    return False


def fast_forward(url: str) -> int:
    """The visibility timeout passes: kombu's own restore puts every unacked message back."""
    with Connection(url, transport_options={"visibility_timeout": 0}) as conn:
        r = redis.Redis.from_url(url)
        n = int(r.hlen("unacked"))
        r.close()
        conn.default_channel.qos.restore_visible(num=100_000)
        return n


def run(seed: int, messages: int, say: Callable[[str], None] = print) -> dict[str, Any]:
    say(f"chaos seed={seed} messages={messages}")
    rng = random.Random(seed)
    jobs = make_jobs(rng, seed, messages)
    cluster = Cluster(visibility_timeout=30.0).start()
    try:
        feeder = Feeder(cluster)
        chaos = Chaos(cluster, rng, say)
        feed_for = max(20.0, messages / 120.0)
        events = list(EVENTS)
        rng.shuffle(events)
        moments = sorted(rng.uniform(2.0, feed_for + 5.0) for _ in events)
        started = time.monotonic()
        feed = threading.Thread(target=_feed, args=(feeder, list(jobs), feed_for))
        feed.start()
        for event, moment in zip(events, moments, strict=True):
            time.sleep(max(0.0, started + moment - time.monotonic()))
            chaos.fire(event, feeder, jobs)
        feed.join()
        cluster.slow_all()
        restored = fast_forward(cluster.redis_url)
        say(f"fast-forwarded the visibility timeout: {restored} unacked restored")
        r = redis.Redis.from_url(cluster.redis_url, socket_timeout=10)
        settled = _wait(lambda: _settled(r, jobs, cluster.sandbox_messages), 360.0)
        report = audit(r, cluster.sandbox_messages(), jobs)
        report["backlog"] = _backlog(r)
        report.update(seed=seed, messages=messages, events=chaos.log, restored=restored,
                      settled=settled, logs=str(cluster.dir),
                      caller_retries=sum(j.errors for j in jobs),
                      gateway_answers=cluster.answer_counts())
        r.close()
        return report
    finally:
        cluster.stop()


def _feed(feeder: Feeder, jobs: list[Job], seconds: float) -> None:
    start = time.monotonic()
    for i, job in enumerate(jobs):
        time.sleep(max(0.0, start + seconds * i / len(jobs) - time.monotonic()))
        feeder.submit(job)


def _wait(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except redis.RedisError:
            pass
        time.sleep(2.0)
    return False


def _backlog(r: redis.Redis) -> dict[str, Any]:
    """Where unfinished work sits at the audit: the sweep indexes, broker queues, unacked,
    and a few queued records (account, attempts, seconds until their release)."""
    now = time.time()
    out: dict[str, Any] = {k: r.zcard(f"smsq:{k}") for k in ("q", "s", "u")}
    out.update({q: r.llen(q) for q in ["smsq", *[f"smsq.{g}" for g in GATEWAYS]]})
    out["unacked"] = r.hlen("unacked")
    stuck = []
    for msg_id, score in r.zrange("smsq:q", 0, 4, withscores=True):
        acc, att, err = r.hmget(f"smsq:m:{msg_id.decode()}", ["acc", "att", "err"])
        stuck.append([msg_id.decode(), acc and acc.decode(), att and att.decode(),
                      round(score - now), (err or b"")[:80].decode(errors="replace")])
    out["queued_sample"] = stuck
    return out


def _job_id(r: redis.Redis, job: Job) -> str | None:
    if job.job_id is None and job.kind == "task-idem":
        raw = r.get(f"smsq:idem:{job.ref}")
        job.job_id = json.loads(raw)["job"] if raw else None
    return job.job_id


def _rows(r: redis.Redis, job_id: str, n: int) -> list[dict[str, str]]:
    with r.pipeline(transaction=False) as pipe:
        for i in range(n):
            pipe.hgetall(f"smsq:m:{job_id}.{i}")
        return [{k.decode(): v.decode() for k, v in row.items()} for row in pipe.execute()]


def _snapshot(r: redis.Redis, job_id: str, n: int
              ) -> tuple[list[dict[str, str]], dict[bytes, bytes]]:
    """A job's records and its counters as of one moment (MULTI): status reports still
    arriving move a record and its counter in one script, never between the two reads."""
    with r.pipeline(transaction=True) as pipe:
        for i in range(n):
            pipe.hgetall(f"smsq:m:{job_id}.{i}")
        pipe.hgetall(f"smsq:job:{job_id}")
        *raw, job_hash = pipe.execute()
    return [{k.decode(): v.decode() for k, v in row.items()} for row in raw], job_hash


def _settled(r: redis.Redis, jobs: list[Job], sandbox: Callable[[], list[Any]]) -> bool:
    """Nothing queued or sending, and no unknown left that its gateway could still name."""
    if r.zcard("smsq:q") or r.zcard("smsq:s") or r.llen("smsq"):
        return False
    for job in jobs:
        job_id = _job_id(r, job)
        if not job_id or not r.exists(f"smsq:job:{job_id}"):
            return False
        if any(row.get("st") in (None, "queued", "sending")
               for row in _rows(r, job_id, len(job.phones))):
            return False
    if not r.zcard("smsq:u"):
        return True
    seen = {(m["gateway"], m["phone"].lstrip("+")) for m in sandbox()}
    for msg_id in r.zrange("smsq:u", 0, -1):
        acc, to = r.hmget(f"smsq:m:{msg_id.decode()}", ["acc", "to"])
        if acc and to and (acc.decode(), to.decode().lstrip("+")) in seen:
            return False
    return True


def audit(r: redis.Redis, sandbox: list[dict[str, Any]], jobs: list[Job]) -> dict[str, Any]:
    """Every accepted id: in the sandbox's record exactly once, or rejected / failed /
    unknown with a reason; nothing queued or sending; job counters equal the records."""
    seen = Counter((m["gateway"], m["phone"].lstrip("+")) for m in sandbox)
    out: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    unresolved: Counter[str] = Counter()
    mine: set[tuple[str, str]] = set()
    for job in jobs:
        job_id = _job_id(r, job)
        if not job_id or not r.exists(f"smsq:job:{job_id}"):
            out["lost_jobs"] += 1
            out["lost"] += len(job.phones)
            continue
        rows, job_hash = _snapshot(r, job_id, len(job.phones))
        counters = {k.decode()[3:]: int(v) for k, v in job_hash.items()
                    if k.startswith(b"st:") and int(v)}
        if counters != dict(Counter(row.get("st") for row in rows)):
            out["counter_mismatch"] += 1
        for phone, row in zip(job.phones, rows, strict=True):
            key = (job.gateway, phone.lstrip("+"))
            mine.add(key)
            _judge(row, seen[key], out, statuses, unresolved, job.gateway)
    out["duplicates"] = sum(n - 1 for n in seen.values() if n > 1)
    out["unaccounted"] = sum(n for k, n in seen.items() if k not in mine)
    return {"lost": out["lost"], "duplicates": out["duplicates"], "stuck": out["stuck"],
            "unexplained": out["unexplained"], "counter_mismatch": out["counter_mismatch"],
            "unaccounted": out["unaccounted"], "lost_jobs": out["lost_jobs"],
            "statuses": dict(statuses), "unknown_by_gateway": dict(unresolved),
            "jobs": len(jobs), "accepted": sum(statuses.values()),
            "unexplained_samples": list(SAMPLES), "reasons": dict(REASONS.most_common(12))}


def _judge(row: dict[str, str], seen: int, out: Counter[str], statuses: Counter[str],
           unresolved: Counter[str], gateway: str) -> None:
    before = out["unexplained"]
    _verdict(row, seen, out, statuses, unresolved, gateway)
    if row.get("st") in EXPLAINED and not row.get("pid"):
        why = row.get("reason") or row.get("err") or ""
        try:
            data = json.loads(why)
            why = f"{data.get('class')}: {data.get('message')}"
        except ValueError:
            pass
        REASONS[f"{row.get('st')} {gateway}: {why[:80]}"] += 1
    if out["unexplained"] > before and len(SAMPLES) < 5:
        SAMPLES.append({"st": row.get("st"), "fields": sorted(row), "seen": seen,
                        "gateway": gateway})


SAMPLES: list[dict[str, Any]] = []  # the first unexplained rows of a run, for its report
REASONS: Counter[str] = Counter()  # why messages ended rejected / failed / unknown


def _verdict(row: dict[str, str], seen: int, out: Counter[str], statuses: Counter[str],
             unresolved: Counter[str], gateway: str) -> None:
    st = row.get("st")
    statuses[str(st)] += 1
    if st is None:
        out["lost"] += 1
    elif st in ("queued", "sending"):
        out["stuck"] += 1
    elif st in SENT or row.get("pid"):  # the gateway took it (it may refuse it later)
        if seen == 0:
            out["lost"] += 1
    elif st in EXPLAINED:
        if not (row.get("reason") or row.get("err")):
            out["unexplained"] += 1
        if st == "unknown":
            unresolved[gateway] += 1
        elif seen:
            out["unexplained"] += 1  # refused, yet the gateway has it


def passed(report: dict[str, Any]) -> bool:
    return report["settled"] and not any(report[k] for k in (
        "lost", "duplicates", "stuck", "unexplained", "counter_mismatch", "unaccounted"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd")
    box = sub.add_parser("sandbox")
    box.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--messages", type=int, default=6000)
    args = parser.parse_args(argv)
    if args.cmd == "sandbox":
        serve_sandbox(args.out)
        return 0
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    report = run(seed, args.messages)
    print(json.dumps(report, indent=1))
    return 0 if passed(report) else 1


if __name__ == "__main__":
    sys.exit(main())
