"""B1 - pipeline throughput: submit -> `sent`, smsq vs a naive Celery task per message
vs the smsru-api client in a loop, all against the sandbox over loopback HTTP.

    .venv/bin/python bench/b1_throughput.py [--shared N] [--distinct N] [--naive N]

sms.ru has no documented rate limit, so nothing throttles; the sandbox answers
at once. (a) one text to many recipients (batches of 100 per request);
(b) a distinct text per recipient (sms.ru takes per-recipient texts in one
request). Worker CPU is read from the worker process tree before and after.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from common import (
    api,
    cpu_seconds,
    exit_on_sigterm,
    job_done,
    phone,
    quiet_stack,
    record,
    spawn_celery,
    table,
    use_stack,
    wait_until,
    wait_workers_ready,
    worker_pids,
)

from worker.local.stack import Stack

CONCURRENCY = 4


def smsq_run(stack: Stack, n: int, distinct: bool, offset: int) -> dict[str, Any]:
    pids = worker_pids(stack)
    cpu0 = cpu_seconds(pids)
    t0 = time.perf_counter()
    if distinct:
        msgs = [{"to": phone(offset + i), "text": f"Code {offset + i}"} for i in range(n)]
        jobs = [api.submit(messages=msgs[s:s + 50_000], account="smsru").job_id
                for s in range(0, n, 50_000)]
    else:
        nums = [phone(offset + i) for i in range(n)]
        jobs = [api.submit(nums[s:s + 50_000], "Your order has shipped", account="smsru")
                .job_id for s in range(0, n, 50_000)]
    t_submit = time.perf_counter() - t0
    if not wait_until(job_done(jobs, n), timeout=300, step=0.02):
        raise RuntimeError("smsq run did not finish")
    elapsed = time.perf_counter() - t0
    cpu = cpu_seconds(pids) - cpu0
    return {"n": n, "seconds": elapsed, "rate": n / elapsed, "submit_s": t_submit,
            "cpu_us": cpu / n * 1e6}


def naive_run(stack: Stack, n: int, distinct: bool, offset: int) -> dict[str, Any]:
    from naive.app import app as naive_app

    state = stack.sandbox.state
    before = len(state.messages)
    pids = worker_pids(stack, "naive")
    cpu0 = cpu_seconds(pids)
    t0 = time.perf_counter()
    for i in range(n):
        text = f"Code {offset + i}" if distinct else "Your order has shipped"
        naive_app.send_task("naive.smsru_send", args=[phone(offset + i)[1:], text],
                            queue="naive")
    if not wait_until(lambda: len(state.messages) - before >= n, timeout=300, step=0.02):
        raise RuntimeError("naive run did not finish")
    elapsed = time.perf_counter() - t0
    cpu = cpu_seconds(pids) - cpu0
    return {"n": n, "seconds": elapsed, "rate": n / elapsed, "cpu_us": cpu / n * 1e6}


def smsru_api_run(stack: Stack, n: int, distinct: bool, offset: int) -> dict[str, Any]:
    from smsru_api import Client

    state = stack.sandbox.state
    before = len(state.messages)
    t0 = time.perf_counter()
    with Client(stack.sandbox.sims["smsru"].credentials["api_id"]) as client:
        client._base_url = stack.server.urls()["smsru"]
        for i in range(n):
            text = f"Code {offset + i}" if distinct else "Your order has shipped"
            client.send(phone(offset + i)[1:], message=text)
    elapsed = time.perf_counter() - t0
    assert len(state.messages) - before == n
    return {"n": n, "seconds": elapsed, "rate": n / elapsed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=int, default=20_000, help="messages in run (a)")
    ap.add_argument("--distinct", type=int, default=5_000, help="messages in run (b)")
    ap.add_argument("--naive", type=int, default=2_000, help="messages per baseline run")
    args = ap.parse_args()
    exit_on_sigterm()
    stack = Stack(poll_interval=3600, final_after=3600)
    try:
        stack.start(workers=1, concurrency=CONCURRENCY, receiver=False)
        quiet_stack(stack)
        spawn_celery(stack, "naive", "naive.app", "naive", CONCURRENCY)
        wait_workers_ready(stack, ["worker0", "naive"])
        use_stack(stack)
        results = run_all(stack, args)
    finally:
        stack.stop()
    report(results, args)


def run_all(stack: Stack, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    smsq_run(stack, 200, False, 9_000_000)  # warm-up: engines built, connections open
    naive_run(stack, 50, False, 9_100_000)
    out: dict[str, dict[str, Any]] = {}
    offset = 0
    for mode, distinct in (("a", False), ("b", True)):
        n = args.shared if mode == "a" else args.distinct
        out[f"smsq_{mode}"] = smsq_run(stack, n, distinct, offset)
        offset += n
        out[f"naive_{mode}"] = naive_run(stack, args.naive, distinct, offset)
        offset += args.naive
        out[f"smsru_api_{mode}"] = smsru_api_run(stack, args.naive, distinct, offset)
        offset += args.naive
        print(mode, {k: v for k, v in out.items() if k.endswith(mode)}, flush=True)
    return out


def report(r: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    rows = []
    for mode, label in (("a", "(a) one text, many recipients"),
                        ("b", "(b) distinct text per recipient")):
        s, n, c = r[f"smsq_{mode}"], r[f"naive_{mode}"], r[f"smsru_api_{mode}"]
        target = 100 if mode == "a" else 1000
        rows.append([label, f"{s['rate']:,.0f}", f"{n['rate']:,.0f}", f"{c['rate']:,.0f}",
                     f"{s['rate'] / n['rate']:.1f}x", f"{s['rate'] / c['rate']:.1f}x",
                     f"{s['cpu_us']:.0f} µs (target ≤ {target})", f"{n['cpu_us']:.0f} µs"])
    body = table(rows, ["mode", "smsq msg/s", "naive Celery msg/s", "smsru-api loop msg/s",
                        "smsq / naive", "smsq / smsru-api", "smsq worker CPU/msg",
                        "naive worker CPU/msg"])
    body += (f"\n\nMessages: smsq (a) {args.shared:,}, (b) {args.distinct:,}; baselines "
             f"{args.naive:,} each. smsq (a) submit call took {r['smsq_a']['submit_s']:.2f} s "
             f"of its {r['smsq_a']['seconds']:.2f} s; (b) {r['smsq_b']['submit_s']:.2f} s of "
             f"{r['smsq_b']['seconds']:.2f} s. One smsq worker node and one naive node, "
             f"prefork, concurrency {CONCURRENCY} each; sandbox, Redis and producer share "
             "the same 2 cores.")
    print(body)
    record("B1 pipeline throughput", ".venv/bin/python bench/b1_throughput.py",
           body)


if __name__ == "__main__":
    main()
