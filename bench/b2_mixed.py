"""B2's mixed workload (issue 16): an operator's ordinary day on one SMS Club account.

Two worker nodes (`-c 2` each, all queues) and beat, status polling on; one job of
`bulk` recipients with one text (100 per request), then one of `unique` messages
each with its own text (one request each). Judged from the sandbox's own log of
requests to the account, every kind (sends and status checks share the 9/s):

- the most requests in any sliding one-second window (t - 1 s, t],
- the number of 429 replies,
- the admitted requests per second over the busy span (first to last send request),
  as a share of 9/s, and every message accepted (sent or further, none failed).

`--burn` adds a process spinning on one core for the whole run (the loaded machine).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

from common import api, max_in_window, phone, quiet_stack, wait_until, wait_workers_ready

from worker.local.stack import ALL_QUEUES, Stack

LIMIT = 9.0


def accepted(stack: Stack) -> int:
    """Messages the sandbox accepted (its own record; cheap enough to poll)."""
    with stack.sandbox.state.lock:
        return len(stack.sandbox.state.messages)


def accepted_once(stack: Stack, phones: set[str]) -> bool:
    """Every phone of the run accepted exactly once, nothing else."""
    with stack.sandbox.state.lock:
        got = [m.phone for m in stack.sandbox.state.messages if m.gateway == "smsclub"]
    return len(got) == len(set(got)) and set(got) == phones


def account_requests(stack: Stack, t0: float, t1: float) -> list[dict[str, Any]]:
    return [r for r in stack.sandbox_requests()
            if r["gateway"] == "smsclub" and t0 <= r["time"] <= t1]


def mixed_figures(reqs: list[dict[str, Any]]) -> dict[str, Any]:
    sends = sorted(r["time"] for r in reqs if r["path"].endswith("/sms/send"))
    span = sends[-1] - sends[0] if len(sends) > 1 else 0.0
    busy = [r for r in reqs if sends and sends[0] <= r["time"] <= sends[-1]]
    ok = sum(1 for r in busy if r["status"] == 200)
    rate = (ok - 1) / span if span else 0.0
    return {"requests": len(reqs), "sends": len(sends),
            "status_checks": sum(1 for r in reqs if r["path"].endswith("/sms/status")),
            "span": span, "max_window": max_in_window([r["time"] for r in reqs]),
            "n429": sum(1 for r in reqs if r["status"] == 429),
            "rate": rate, "share": rate / LIMIT}


def burner() -> subprocess.Popen[bytes]:
    """A second process burning one core for as long as it lives."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"],
                            start_new_session=True)


def mixed_run(bulk: int, unique: int, burn: bool, poll: float = 2.0) -> dict[str, Any]:
    """One fresh stack (polling every `poll` s, finals after 3 s), two 2-process nodes."""
    stack = Stack(poll_interval=poll, final_after=3)
    hog = burner() if burn else None
    try:
        stack.start(workers=0, receiver=False)
        quiet_stack(stack)
        stack.use_here()
        for name in ("hostA", "hostB"):
            stack.start_worker(name, concurrency=2, queues=ALL_QUEUES)
        wait_workers_ready(stack, ["hostA", "hostB"])
        load0 = os.getloadavg()[0]
        t0 = time.time()
        bulk_to = [phone(300_000 + i) for i in range(bulk)]
        own_to = [phone(400_000 + i) for i in range(unique)]
        one = api.submit(bulk_to, "Your order has shipped", account="smsclub").job_id
        own = api.submit(messages=[{"to": to, "text": f"Your code is {i}"}
                                   for i, to in enumerate(own_to)], account="smsclub").job_id
        wait_until(lambda: accepted(stack) >= bulk + unique,
                   timeout=(bulk / 100 + unique) / 4 + 120, step=0.5)
        t1 = time.time()
        out = mixed_figures(account_requests(stack, t0, t1))
        phones = {to.lstrip("+") for to in bulk_to + own_to}
        out.update(done=accepted_once(stack, phones), load=(load0, os.getloadavg()[0]),
                   burn=burn, counts=[api.job_status(j)["counts"] for j in (one, own)])
        return out
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
        stack.stop()


def mixed_row(label: str, f: dict[str, Any]) -> list[str]:
    return [label, f"{f['sends']} + {f['status_checks']}", f"{f['span']:.1f} s",
            str(f["max_window"]), str(f["n429"]), f"{f['rate']:.2f}/s", f"{f['share']:.1%}",
            "all" if f["done"] else f"no: {f['counts']}",
            f"{f['load'][0]:.2f} / {f['load'][1]:.2f}"]


MIXED_HEADER = ["run", "send + status requests", "busy span", "max in any 1 s window",
                "429s", "admitted rate", "of 9/s", "every message accepted",
                "load average (start / end)"]
