"""B6 - lanes: OTPs while a campaign saturates SMS Club's 9 requests/second.

    .venv/bin/python bench/b6_lanes.py [--recipients 100000] [--otps 200] [--seconds 60]
                                       [--nodes 2] [--concurrency 4] [--priority 1]
                                       [--only lanes|fifo] [--subscriber none|http500|timeout]

A campaign of `--recipients` numbers (one text, 100 per request) runs through the
sandbox over HTTP with `--nodes` Celery worker nodes, `--priority` one-process workers
that consume only the high-lane queue (as deploy/ runs them), and beat. Once it saturates
the account, `--otps` one-recipient OTP sends are submitted at random moments
(seeded) over `--seconds`. Figures, from the sandbox's own record: OTP latency
from the submit call to the sandbox's acceptance (p50/p99/max), the share of the
9/s limit used while both ran (bulk + OTP requests), bulk's own requests/s, 429
replies and the most requests in any one-second window. The same run with
SMSQ_LANES=fifo (one line per account, as before lanes) is reported beside it.
Status polling is pushed out of the run (SMSQ_POLL_INTERVAL=600) so the account's
slots are shared by the two kinds of sends only. Load average is recorded.
`--subscriber http500|timeout`: every OTP job (through the deployment's default
SMSQ_CALLBACK; campaigns carry no subscription) is subscribed to a local receiver that
answers 500, or only after 30 s, with a callbacks worker beside the senders: does a
failing subscriber move B6?
"""

from __future__ import annotations

import argparse
import os
import random
import time
from typing import Any

from common import (
    exit_on_sigterm,
    max_in_window,
    quiet_stack,
    record,
    table,
    use_stack,
    wait_until,
    wait_workers_ready,
)

from providers import REGISTRY
from worker import api
from worker.engine import high_queues
from worker.local.stack import Stack

LIMIT = 9.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def club(stack: Stack) -> list[tuple[str, float]]:
    """(phone with +, acceptance time) of every SMS Club message, read without copying."""
    with stack.sandbox.state.lock:
        return [("+" + m.phone.lstrip("+"), m.time) for m in stack.sandbox.state.messages
                if m.gateway == "smsclub"]


def run(args: argparse.Namespace, fifo: bool, seed: int) -> dict[str, Any]:
    env = {"SMSQ_POLL_INTERVAL": "600", "SMSQ_LANES": "fifo" if fifo else "priority"}
    rec = None
    if args.subscriber != "none":
        from b1_callbacks import SECRET, Receiver

        rec = Receiver(args.subscriber)
        env.update(SMSQ_CALLBACK=rec.url, SMSQ_CALLBACK_SECRET=SECRET,
                   SMSQ_CALLBACK_SCHEMES="http", SMSQ_CALLBACK_ALLOWED_HOSTS="127.0.0.1")
    stack = Stack(queued_for=0.3, final_after=1.5, poll_interval=600.0, extra_env=env)
    try:
        stack.start(workers=0, beat=False, receiver=False)
        quiet_stack(stack)
        names = [f"b6node{i}" for i in range(args.nodes)]
        if rec is not None:
            names.append("b6callbacks")
            stack.start_worker(names[-1], concurrency=2, queues="smsq.callbacks")
        for name in names:
            stack.start_worker(name, concurrency=args.concurrency)
        for i in range(args.priority):  # in fifo mode, just one more process on the one line
            names.append(f"b6prio{i}")
            stack.start_worker(names[-1], concurrency=1,
                               queues=",".join(high_queues(list(REGISTRY))))
        stack.start_beat()
        wait_workers_ready(stack, names)
        use_stack(stack)
        out = _measure(args, stack, seed)
        out["callback_requests"] = rec.requests if rec is not None else 0
        return out
    finally:
        stack.stop()
        api.reset()
        if rec is not None:
            rec.close()


def _measure(args: argparse.Namespace, stack: Stack, seed: int) -> dict[str, Any]:
    from worker.campaigns import service as campaigns

    rng = random.Random(seed)
    audience = [f"+38097{i:07d}" for i in range(1, args.recipients + 1)]
    campaigns.create(text="Spring sale: -20% on everything", recipients=audience,
                     account="smsclub", start="now")
    # Saturated: the campaign has had a few seconds at the limit before the first OTP.
    wait_until(lambda: len(club(stack)) >= 30 * 100, timeout=300, step=0.5)
    print("campaign saturating; OTPs start", flush=True)
    start = time.time()
    moments = sorted(rng.uniform(0, args.seconds) for _ in range(args.otps))
    submitted: dict[str, float] = {}
    for i, at in enumerate(moments):
        time.sleep(max(0.0, start + at - time.time()))
        phone = f"+38063{i + 1:07d}"
        submitted["+" + phone.lstrip("+")] = time.time()
        api.submit([phone], f"Your code: {rng.randrange(10**6):06d}", account="smsclub",
                   lane="otp")
    end = time.time()
    print(f"{len(submitted)} OTPs submitted", flush=True)
    wait_until(lambda: len(submitted.keys() & {p for p, _ in club(stack)}) == len(submitted),
               timeout=600, step=0.5)
    return _figures(stack, submitted, start, end)


def _figures(stack: Stack, submitted: dict[str, float], start: float, end: float
             ) -> dict[str, Any]:
    accepted = dict(club(stack))
    lat = [accepted[p] - t for p, t in submitted.items() if p in accepted]
    reqs = [r for r in stack.sandbox_requests() if r["gateway"] == "smsclub"]
    during = [r for r in reqs if start <= r["time"] <= end]
    ok = [r for r in during if r["status"] == 200 and r["path"].endswith("/sms/send")]
    otp_reqs = len(lat)
    span = end - start
    return {"otps": len(lat), "missing": len(submitted) - len(lat),
            "p50": pct(lat, 0.50), "p99": pct(lat, 0.99), "max": max(lat),
            "used": len(ok) / (LIMIT * span), "bulk_rate": (len(ok) - otp_reqs) / span,
            "n429": sum(1 for r in reqs if r["status"] == 429),
            "window": max_in_window([r["time"] for r in reqs]), "span": span,
            "load": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--otps", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--priority", type=int, default=1)
    parser.add_argument("--subscriber", choices=["none", "http500", "timeout"], default="none")
    parser.add_argument("--only", choices=["lanes", "fifo"])
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    exit_on_sigterm()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"seed={seed}", flush=True)
    rows = []
    for mode in ("lanes", "fifo"):
        if args.only and args.only != mode:
            continue
        load_before = os.getloadavg()[0]
        f = run(args, mode == "fifo", seed)
        print(mode, f, flush=True)
        label = mode + ("" if args.subscriber == "none" else
                        f", subscriber {args.subscriber} ({f['callback_requests']} "
                        "callback requests)")
        rows.append([label, f"{f['otps']}", f"{f['p50']:.3f}", f"{f['p99']:.3f}",
                     f"{f['max']:.3f}", f"{f['used']:.1%}", f"{f['bulk_rate']:.2f}",
                     f["n429"], f["window"], f"{load_before:.1f} / {f['load'][0]:.1f}"])
    header = ["mode", "OTPs", "OTP p50 s", "OTP p99 s", "OTP max s", "limit used",
              "bulk req/s", "429s", "max in 1 s", "load avg before / after"]
    body = table(rows, header)
    print(body)
    cmd = (f"bench/b6_lanes.py --recipients {args.recipients} --otps {args.otps} "
           f"--seconds {args.seconds:g} --nodes {args.nodes} --concurrency {args.concurrency}"
           f" --priority {args.priority} --seed {seed}"
           + ("" if args.subscriber == "none" else f" --subscriber {args.subscriber}"))
    title = "B6 - lanes: OTPs during a saturating campaign"
    if args.subscriber != "none":
        title += ", a failing callback subscriber"
    record(title, cmd, _notes(args) + "\n\n" + body)


def _notes(args: argparse.Namespace) -> str:
    return (f"SMS Club sandbox over HTTP at 9 requests/s; a {args.recipients:,}-recipient "
            f"campaign (100 per request), {args.nodes} worker nodes x {args.concurrency} "
            f"processes, {args.priority} one-process worker(s) on the high-lane queue only, "
            f"and beat; {args.otps} OTPs (one recipient each) at random moments over "
            f"{args.seconds:g} s once the campaign saturated the account. Latency: submit call "
            "to the sandbox's acceptance. Limit used: accepted send requests (bulk + OTP) "
            "during the OTP phase / (9 x its length). `fifo` is SMSQ_LANES=fifo: one "
            "line per account, as before lanes. Status polling is out of the run "
            "(SMSQ_POLL_INTERVAL=600).")


if __name__ == "__main__":
    main()
