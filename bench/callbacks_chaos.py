"""Status callbacks under chaos, and a failing subscriber's effect on sending.

Part 1 (chaos): jobs subscribed to a local signed-HTTP subscriber; while events are in
flight the callbacks worker and the sending worker are SIGKILLed and restarted several
times, and the subscriber answers 500 to a share of requests. Counts: events expected
(every final of every message + each job.completed), delivered, duplicates (allowed),
lost (must be 0), out of order (must be 0).

Part 2 (isolation): seconds until N messages are all final with no subscriber, then with
a subscriber that answers 500 after a 2 s delay to everything.

    python bench/callbacks_chaos.py [--messages 300] [--seed N]
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


class Recorder:
    def __init__(self, fail_share: float, delay: float, rng: random.Random) -> None:
        self.events: list[dict] = []
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
                self.send_response(500 if fail else 200)
                self.end_headers()

            def log_message(self, *a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def stack() -> Stack:
    return Stack(queued_for=0.3, final_after=2.0, poll_interval=1.0, extra_env={
        "SMSQ_CALLBACK_SCHEMES": "http", "SMSQ_CALLBACK_ALLOWED_HOSTS": "127.0.0.1",
        "SMSQ_CALLBACK_SECRETS": f"bench={SECRET}", "SMSQ_CALLBACK_BACKOFF_BASE": "0.5",
        "SMSQ_CALLBACK_BACKOFF_MAX": "2", "SMSQ_CALLBACK_SWEEP_INTERVAL": "3"})


def chaos(n: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    rec = Recorder(fail_share=0.2, delay=0.0, rng=rng)
    s = stack().start(workers=1, concurrency=4)
    try:
        s.start_worker("callbacks", concurrency=2, queues="smsq.callbacks")
        use_stack(s)
        cb = {"url": rec.url, "secret": "bench"}
        jobs = [api.submit([phone(k * n + i) for i in range(n // 3)], "Chaos", account=acc,
                           callback=cb) for k, acc in enumerate(["smsru", "smsclub", "gatum"])]
        for _ in range(4):
            time.sleep(rng.uniform(1.0, 3.0))
            victim = rng.choice(["callbacks", "worker0"])
            s.kill(victim, signal.SIGKILL)
            if victim == "callbacks":
                s.start_worker("callbacks", concurrency=2, queues="smsq.callbacks")
            else:
                s.start_worker("worker0", concurrency=4)
        want = {j.job_id for j in jobs}
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with rec.lock:
                done = {e["data"]["job_id"] for e in rec.events if e["type"] == "job.completed"}
            if done >= want:
                break
            time.sleep(1.0)
        return count(rec.events, jobs)
    finally:
        s.stop()
        rec.server.shutdown()


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
    a = p.parse_args()
    print("seed", a.seed, flush=True)
    print(json.dumps({"chaos": chaos(a.messages, a.seed)}), flush=True)
    print(json.dumps({"seconds_to_all_final": isolation(a.messages)}), flush=True)


if __name__ == "__main__":
    main()
