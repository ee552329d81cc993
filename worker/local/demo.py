"""`smsq demo`: the main job end to end on a private Redis and the sandbox.

Starts Redis, the five gateway simulators over HTTP, a Celery worker, beat and
the delivery-report receiver; submits a mixed job across all five gateways
(shared and personal texts, Latin and Cyrillic, some invalid numbers and some
the gateways refuse); shows progress; prints the outcome per gateway next to
the sandbox's own record; stops everything it started.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections import Counter
from typing import Any, TextIO

from providers import REGISTRY
from providers.sandbox import simulator_class
from worker.ledger import lifecycle

FINAL = {*lifecycle.FINAL, lifecycle.Status.UNKNOWN}  # the demo waits for these
STATUSES = ["delivered", "undelivered", "expired", "rejected", "failed", "unknown", "pending"]


def _numbers(gateway: str, n: int, rng: random.Random) -> list[str]:
    prefix = simulator_class(gateway).number_prefix
    width = 7
    out = []
    for i in range(n):
        roll = rng.random()
        if roll < 0.02:
            out.append(rng.choice(["+7916123", "12345", "not-a-number", "+7000000000000000"]))
        elif roll < 0.03:
            out.append(f"{prefix}{rng.randrange(10 ** (width - 4)):0{width - 4}d}0000")
        else:
            local = (i * 7919 + rng.randrange(10 ** (width - 2))) % 10 ** width
            out.append(f"{prefix}{local:0{width}d}")
    return out


def submit_demo(total: int, rng: random.Random) -> dict[str, list[str]]:
    from worker import api

    per = total // len(REGISTRY)
    ids: dict[str, list[str]] = {}
    for gateway in REGISTRY:
        numbers = _numbers(gateway, per, rng)
        a, b = int(per * 0.5), int(per * 0.8)
        jobs = [
            api.submit(numbers[:a], "Your smsq demo code is 4821", account=gateway,
                       reject_invalid=True),
            api.submit(numbers[a:b], "Ваш заказ готов к выдаче. Спасибо!", account=gateway,
                       reject_invalid=True),
            api.submit(messages=[{"to": n, "text": f"Hello #{i}, your balance is {i * 3} RUB"}
                                 for i, n in enumerate(numbers[b:])],
                       account=gateway, reject_invalid=True),
        ]
        ids[gateway] = [i for job in jobs for i in job.ids]
    return ids


def _counts(ids: dict[str, list[str]]) -> dict[str, Counter[str]]:
    from worker.api import engine

    ledger = engine().ledger
    out: dict[str, Counter[str]] = {}
    for gateway, group in ids.items():
        rows = ledger.get_many(group)
        out[gateway] = Counter(r["st"] if r["st"] in FINAL else "pending" for r in rows if r)
        out[gateway]["accepted"] = sum(1 for r in rows if r and r.get("pid"))
    return out


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = int(width * done / max(total, 1))
    return "[" + "#" * filled + "." * (width - filled) + f"] {done}/{total}"


def watch(ids: dict[str, list[str]], timeout: float, out: Any) -> dict[str, Counter[str]]:
    deadline = time.monotonic() + timeout
    tty, drawn = out.isatty(), False
    while True:
        counts = _counts(ids)
        lines = [f"  {g:<8} {_bar(len(ids[g]) - c['pending'], len(ids[g]))}"
                 for g, c in counts.items()]
        if tty:
            out.write(f"\x1b[{len(lines)}A" if drawn else "")
            drawn = True
        out.write("\n".join(lines) + "\n")
        out.flush()
        if all(c["pending"] == 0 for c in counts.values()) or time.monotonic() > deadline:
            return counts
        time.sleep(1.0 if tty else 3.0)


def table(counts: dict[str, Counter[str]], sandbox: Counter[str]) -> tuple[str, bool]:
    head = f"{'gateway':<9}" + "".join(f"{s:>12}" for s in STATUSES) + \
        f"{'accepted':>10}{'sandbox':>9}{'match':>7}"
    rows, ok = [head, "-" * len(head)], True
    for gateway, c in counts.items():
        match = c["accepted"] == sandbox[gateway]
        ok &= match
        rows.append(f"{gateway:<9}" + "".join(f"{c[s]:>12}" for s in STATUSES)
                    + f"{c['accepted']:>10}{sandbox[gateway]:>9}{'yes' if match else 'NO':>7}")
    return "\n".join(rows), ok


def run(messages: int = 2500, json_out: bool = False, timeout: float = 180.0) -> int:
    from worker.local.stack import Stack

    out = sys.stderr if json_out else sys.stdout
    _say_private(out)
    stack = Stack()  # always private: a demo never touches the operator's Redis
    ok = False
    try:
        print("Starting a private Redis, the sandbox gateways, a worker, beat and the "
              "delivery-report receiver...", file=out, flush=True)
        stack.start(workers=1, concurrency=4)
        stack.use_here()
        started = time.monotonic()
        ids = submit_demo(messages, random.Random(7))
        total = sum(len(v) for v in ids.values())
        print(f"Submitted {total} messages across {len(ids)} gateways "
              f"(logs in {stack.dir}).", file=out, flush=True)
        counts = watch(ids, timeout, out)
        sandbox = Counter(m["gateway"] for m in stack.sandbox_messages())
        text, ok = table(counts, sandbox)
        elapsed = time.monotonic() - started
        if json_out:
            print(json.dumps({"counts": {g: dict(c) for g, c in counts.items()},
                              "sandbox": dict(sandbox), "match": ok, "seconds": elapsed}))
        else:
            print(f"\nOutcome after {elapsed:.1f}s (ledger vs the sandbox's own record):\n")
            print(text)
            print("\nEvery message accepted by a gateway is in the ledger exactly once."
                  if ok else "\nMISMATCH between the ledger and the sandbox.")
        return 0 if ok else 1
    finally:
        print("Stopping everything the demo started...", file=out, flush=True)
        stack.stop()
        if ok:
            stack.remove_logs()
        else:
            print(f"Logs kept in {stack.dir}", file=out, flush=True)


def _say_private(out: TextIO) -> None:
    from providers.errors import ConfigurationError
    from worker.settings import configured_redis_url
    from worker.transport.connection import target

    url = configured_redis_url()
    if url:
        try:
            where = target(url).where
        except ConfigurationError:
            where = "not a Redis URL"
        print(f"Ignoring SMSQ_REDIS_URL ({where}): the demo always runs its own private "
              "Redis and never touches yours.", file=out, flush=True)
