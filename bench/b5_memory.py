"""B5 - memory over time: one worker node's resident memory across 200,000 messages.

    .venv/bin/python bench/b5_memory.py [--messages 200000] [--chunk 10000]

sms.ru sandbox over loopback HTTP, one text per 10,000-recipient job (batches
of 100). RSS is VmRSS from /proc/<pid>/status of the worker's main process
plus its pool children, sampled each time another chunk has reached `sent`;
the producer keeps one chunk ahead so the worker never idles.
"""

from __future__ import annotations

import argparse
import time

from common import (
    api,
    exit_on_sigterm,
    job_done,
    phone,
    quiet_stack,
    record,
    rss_mb,
    table,
    use_stack,
    wait_until,
    wait_workers_ready,
    worker_pids,
)

from worker.local.stack import Stack


def run(stack: Stack, total: int, chunk: int) -> list[tuple[int, float, float]]:
    pids = worker_pids(stack)
    samples = [(0, 0.0, rss_mb(pids))]
    t0 = time.perf_counter()
    pending: list[str] = []
    done = 0
    for start in range(0, total, chunk):
        nums = [phone(start + i) for i in range(min(chunk, total - start))]
        pending.append(api.submit(nums, "Your order has shipped", account="smsru").job_id)
        if len(pending) > 1:
            done += _wait(pending.pop(0), chunk)
            samples.append((done, time.perf_counter() - t0, rss_mb(pids)))
            print(samples[-1], flush=True)
    while pending:
        done += _wait(pending.pop(0), chunk)
        samples.append((done, time.perf_counter() - t0, rss_mb(pids)))
    return samples


def _wait(job: str, n: int) -> int:
    if not wait_until(job_done([job], n), timeout=300, step=0.05):
        raise RuntimeError(f"job {job} did not finish: {api.job_status(job)}")
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--chunk", type=int, default=10_000)
    args = ap.parse_args()
    exit_on_sigterm()
    stack = Stack(poll_interval=3600, final_after=3600)
    try:
        stack.start(workers=1, concurrency=4, receiver=False)
        quiet_stack(stack)
        wait_workers_ready(stack, ["worker0"])
        use_stack(stack)
        samples = run(stack, args.messages, args.chunk)
    finally:
        stack.stop()
    report(samples, args)


def report(samples: list[tuple[int, float, float]], args: argparse.Namespace) -> None:
    def at(n: int) -> tuple[int, float, float]:
        return min(samples, key=lambda s: abs(s[0] - n))

    marks = [at(n) for n in (10_000, 100_000, args.messages)]
    later = [s for s in samples if s[0] >= 10_000]
    xs, ys = [s[0] for s in later], [s[2] for s in later]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / max(
        1e-9, sum((x - mx) ** 2 for x in xs))
    body = table([[f"{n:,}", f"{t:.0f} s", f"{rss:.1f} MB"] for n, t, rss in marks],
                 ["messages sent", "elapsed", "worker RSS (main + 4 pool children)"])
    body += (f"\n\nBefore the first message: {samples[0][2]:.1f} MB. Least-squares trend from "
             f"10k to {args.messages // 1000}k: {slope * 100_000:+.2f} MB per 100,000 messages "
             f"({len(later)} samples, one per {args.chunk:,}). Max sampled "
             f"{max(ys):.1f} MB, min {min(ys):.1f} MB.")
    print(body)
    record("B5 memory over time", ".venv/bin/python bench/b5_memory.py", body)


if __name__ == "__main__":
    main()
