"""Status callbacks under chaos, and a failing subscriber's effect on sending.

Part 1 (chaos): six jobs, submitted one before each kill, subscribed to a local
signed-HTTP subscriber (one job's odd messages to a second URL of their own, a
per-message subscription); while events are produced and delivered
the callbacks worker and the sending worker are SIGKILLed and restarted several times,
and the subscriber answers 500 to a share of requests. With `--redis-kills N`, Redis
(appendonly, appendfsync everysec, as the tests run it) is SIGKILLed N times among them
and restarted from its AOF on the same port. Counts: events expected (every final of
every message + each job.completed), delivered, duplicates (allowed), lost (must be 0),
out of order (must be 0).

Part 2 (isolation): seconds until N messages are all final with no subscriber, then with
a subscriber that answers 500 after a 2 s delay to everything.

    python bench/callbacks_chaos.py [--messages 300] [--seed N] [--redis-kills 3]
                                    [--no-isolation]
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from common import api, exit_on_sigterm, phone, use_stack
from standardwebhooks.webhooks import Webhook

from worker.local.stack import Stack

SECRET = "whsec_" + base64.b64encode(b"bench-callback-secret-0123456789").decode()
RANK = {"sent": 1, "unknown": 2}
STALL = 150.0  # seconds without a new event after which what is missing counts as lost


class Recorder:
    def __init__(self, fail_share: float, delay: float, rng: random.Random) -> None:
        self.events: list[dict] = []
        self.times: list[float] = []
        self.lock = threading.Lock()
        rec = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                time.sleep(delay)
                with rec.lock:
                    fail = rng.random() < fail_share
                    if not fail:
                        payload = Webhook(SECRET).verify(body, dict(self.headers))
                        rec.events.append(payload)
                        rec.times.append(time.time())
                self.send_response(500 if fail else 200)
                self.end_headers()

            def log_message(self, *a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def stack(appendonly: bool = False) -> Stack:
    return Stack(appendonly=appendonly, queued_for=0.3, final_after=2.0, poll_interval=1.0,
                 extra_env={
        "SMSQ_CALLBACK_SCHEMES": "http", "SMSQ_CALLBACK_ALLOWED_HOSTS": "127.0.0.1",
        "SMSQ_CALLBACK_SECRETS": f"bench={SECRET}", "SMSQ_CALLBACK_BACKOFF_BASE": "0.5",
        "SMSQ_CALLBACK_BACKOFF_MAX": "2", "SMSQ_CALLBACK_SWEEP_INTERVAL": "3"})


def kill_redis(s: Stack) -> None:
    """SIGKILL (no shutdown, no final AOF write), then a restart from the AOF, same port."""
    assert s.redis is not None and s.redis.proc is not None
    s.redis.proc.kill()
    s.redis.proc.wait()
    s.redis.proc = None
    s.redis.start()


def submit_wave(k: int, size: int, url: str, tag: str) -> object:
    """Job k of the run, on a gateway in turn; in job 1 the odd messages carry their own
    subscription (another URL). Retried under the same job id while Redis is down: a
    retry of a job already written is a duplicate, not a second job."""
    cb = {"url": url, "secret": "bench"}
    own = {"url": url + "/own", "secret": "bench"}
    acc = ["smsru", "smsclub", "gatum"][k % 3]
    msgs = [{"to": phone(k * size + i), "text": "Chaos"} | (
        {"callback": own} if k == 1 and i % 2 else {}) for i in range(size)]
    for _ in range(100):
        try:
            return api.submit(messages=msgs, account=acc, callback=cb, job_id=f"{tag}-{k}")
        except Exception as exc:  # Redis restarting: the same call again
            print("submit retried:", type(exc).__name__, flush=True)
            time.sleep(0.3)
    raise RuntimeError("submit kept failing")


def chaos(n: int, seed: int, redis_kills: int = 0, waves: int = 6) -> dict[str, int]:
    """`waves` jobs of n / waves messages, one submitted before each of the first kills,
    so events are being produced and delivered while processes and Redis die."""
    rng = random.Random(seed)
    rec = Recorder(fail_share=0.2, delay=0.0, rng=rng)
    s = stack(appendonly=redis_kills > 0).start(workers=1, concurrency=4)
    kills: dict[str, int] = {}
    try:
        s.start_worker("callbacks", concurrency=2, queues="smsq.callbacks")
        use_stack(s)
        t0 = time.time()
        victims = [rng.choice(["callbacks", "worker0"]) for _ in range(4)] + \
            ["redis"] * redis_kills
        rng.shuffle(victims)
        victims += [""] * max(0, waves - len(victims))
        jobs = []
        for k, victim in enumerate(victims):
            if k < waves:
                jobs.append(submit_wave(k, n // waves, rec.url, f"chaos{seed}"))
            time.sleep(rng.uniform(1.0, 3.0))
            if not victim:
                continue
            kills[victim] = kills.get(victim, 0) + 1
            if victim == "redis":
                kill_redis(s)
                continue
            s.kill(victim, signal.SIGKILL)
            if victim == "callbacks":
                s.start_worker("callbacks", concurrency=2, queues="smsq.callbacks")
            else:
                s.start_worker("worker0", concurrency=4)
        print("kills", kills, "chaos over after", round(time.time() - t0, 1), "s",
              flush=True)
        want = {j.job_id for j in jobs}
        # Done, or stalled: nothing arrived for STALL seconds (a slow tail is not a loss;
        # 20 % of requests fail and each failure waits for beat's next wake-up).
        restarts = 0
        while True:
            seen, quiet_since = 0, time.monotonic()
            while time.monotonic() - quiet_since < STALL:
                with rec.lock:
                    done = {e["data"]["job_id"] for e in rec.events
                            if e["type"] == "job.completed"}
                    if len(rec.events) > seen:
                        seen, quiet_since = len(rec.events), time.monotonic()
                if done >= want:
                    break
                time.sleep(1.0)
            if done >= want or restarts:
                break
            # Stalled: say why, then restart the sending node once (as a supervisor whose
            # liveness check failed would) to see whether the waiting events still arrive.
            diagnose(s, rec, jobs)
            # Celery's SIGUSR1 handler writes every thread's stack to the node's log.
            s.procs["worker0"].send_signal(signal.SIGUSR1)
            time.sleep(2.0)
            print("worker0 stacks in", s.dir / "worker0.log", flush=True)
            restarts += 1
            s.kill("worker0", signal.SIGKILL)
            s.start_worker("worker0", concurrency=4)
        dead = [name for name, proc in s.procs.items() if proc.poll() is not None]
        with rec.lock:
            result = count(rec.events, jobs)
            lag = lags(s, rec, t0)
        if result["lost"]:
            diagnose(s, rec, jobs)
        return {**result, **lag, "stalled_node_restarts": restarts, "dead": dead}
    finally:
        s.stop()
        rec.server.shutdown()


def lags(s: Stack, rec: Recorder, t0: float) -> dict[str, float]:
    """When the last message became final in the ledger, when its last final event
    arrived, and the longest wait of a final event behind its ledger change."""
    import redis

    r = redis.Redis.from_url(s.redis_url or "", decode_responses=True)
    arrived: dict[str, float] = {}
    for e, t in zip(rec.events, rec.times, strict=True):
        if e["type"] != "job.completed" and e["data"]["status"] not in RANK:
            arrived.setdefault(e["data"]["message_id"], t)
    final_at = {m: float(r.hget(f"smsq:m:{m}", "updated") or 0) for m in arrived}
    if not final_at:
        return {}
    return {"parked": int(r.llen("smsq:hook:failed")),
            "last_final_in_ledger_s": round(max(final_at.values()) - t0, 1),
            "last_final_event_s": round(max(arrived.values()) - t0, 1),
            "max_event_lag_s": round(max(arrived[m] - final_at[m] for m in arrived), 1)}


def diagnose(s: Stack, rec: Recorder, jobs: list) -> None:
    """What the ledger and the outboxes hold for what the subscriber did not get."""
    import collections

    import redis

    r = redis.Redis.from_url(s.redis_url or "", decode_responses=True)
    with rec.lock:
        got = {e["data"]["message_id"] for e in rec.events if e["type"] != "job.completed"
               and e["data"]["status"] not in RANK}
    missing = [i for j in jobs for i in j.ids if i not in got]
    states = collections.Counter((r.hget(f"smsq:m:{i}", "st"), r.hget(f"smsq:m:{i}", "cbr"))
                                 for i in missing)
    print("missing", len(missing), "by (status, cbr):", dict(states), flush=True)
    for j in jobs:
        print("job", j.job_id, {k: v for k, v in r.hgetall(f"smsq:job:{j.job_id}").items()
                                if k.startswith(("st:", "cb", "total"))})
    print("due", r.zrange("smsq:hook:due", 0, -1, withscores=True), "now", time.time())
    # Overdue outboxes mean no tick ran; ticks piling up in `smsq` mean beat publishes
    # but no worker consumes; neither means beat itself stopped.
    print("queued tasks: smsq", r.llen("smsq"), "smsq.callbacks", r.llen("smsq.callbacks"),
          "unacked", r.hlen("unacked"))
    print("jobs", r.zrange("smsq:hook:jobs", 0, -1, withscores=True))
    for key in r.scan_iter("smsq:hook:*"):
        if key.startswith(("smsq:hook:q:", "smsq:hook:lock:", "smsq:hook:fail:")):
            print(key, r.type(key), r.llen(key) if r.type(key) == "list" else r.get(key)
                  if r.type(key) == "string" else r.hgetall(key), r.ttl(key))
    print("parked", r.lrange("smsq:hook:failed", 0, 5))
    print("logs in", s.dir, flush=True)


def count(events: list[dict], jobs: list) -> dict[str, int]:
    ids = {i for j in jobs for i in j.ids}
    expected = len(ids) + len(jobs)
    seen_ids, dup, out_of_order, last = set(), 0, 0, {}
    finals, completed = set(), set()
    for e in events:
        if e["id"] in seen_ids:
            dup += 1
        seen_ids.add(e["id"])
        if e["type"] == "job.completed":
            completed.add(e["data"]["job_id"])
            continue
        m, r = e["data"]["message_id"], RANK.get(e["data"]["status"], 3)
        if r < last.get(m, 0):
            out_of_order += 1
        last[m] = max(r, last.get(m, 0))
        if r == 3:
            finals.add(m)
    lost = len(ids - finals) + len({j.job_id for j in jobs} - completed)
    return {"messages": len(ids), "events_expected": expected,
            "events_delivered": len(finals) + len(completed), "requests_received": len(events),
            "duplicates": dup, "lost": lost, "out_of_order": out_of_order}


def isolation(n: int) -> dict[str, float]:
    out = {}
    for label, with_sub in (("no_subscriber", False), ("failing_slow_subscriber", True)):
        rec = Recorder(fail_share=1.0, delay=2.0, rng=random.Random(0))
        s = stack().start(workers=1, concurrency=4)
        try:
            s.start_worker("callbacks", concurrency=2, queues="smsq.callbacks")
            use_stack(s)
            cb = {"url": rec.url, "secret": "bench"} if with_sub else False
            t0 = time.monotonic()
            job = api.submit([phone(i) for i in range(n)], "Iso", account="smsru", callback=cb)
            while any(r["status"] in ("queued", "sending", "sent")
                      for r in api.get_status(job.ids)):
                time.sleep(0.2)
            out[label] = round(time.monotonic() - t0, 2)
        finally:
            s.stop()
            rec.server.shutdown()
    return out


def main() -> None:
    exit_on_sigterm()
    p = argparse.ArgumentParser()
    p.add_argument("--messages", type=int, default=300)
    p.add_argument("--seed", type=int, default=random.randrange(1_000_000))
    p.add_argument("--redis-kills", type=int, default=0,
                   help="SIGKILL Redis this many times among the worker kills")
    p.add_argument("--no-isolation", action="store_true", help="skip part 2")
    a = p.parse_args()
    print("seed", a.seed, flush=True)
    print(json.dumps({"chaos": chaos(a.messages, a.seed, a.redis_kills)}), flush=True)
    if not a.no_isolation:
        print(json.dumps({"seconds_to_all_final": isolation(a.messages)}), flush=True)


if __name__ == "__main__":
    main()
