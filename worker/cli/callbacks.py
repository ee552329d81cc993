"""`smsq callbacks failed` (parked events) and `smsq callbacks replay` (a job's statuses again).

    smsq callbacks failed --limit 20
    smsq callbacks replay --job 3f2a9c1d7e00
    smsq callbacks replay --since 2025-06-01T00:00Z --until 2025-06-02T00:00Z

Output names subscriptions by id and target (no query string); secrets never appear.
"""

from __future__ import annotations

import argparse
from datetime import datetime

from providers.errors import ValidationError
from worker.api import engine
from worker.callbacks import outbox, replay, subscription
from worker.cli.output import Add, emit, subcommands


def register(add: Add) -> None:
    sub = subcommands(add, "callbacks", "status callbacks to producers: parked events, replay")
    p = sub("failed", cmd_failed, "events parked after their retry window (newest first)")
    p.add_argument("--limit", type=int, default=50)
    p = sub("replay", cmd_replay, "queue a job's (or a time range's jobs') current statuses "
            "to their subscribers again")
    p.add_argument("--job", help="a job id")
    p.add_argument("--since", help="jobs created from (ISO 8601 or epoch seconds)")
    p.add_argument("--until", help="jobs created until (default: now)")


def cmd_failed(args: argparse.Namespace) -> int:
    eng = engine()
    rows = outbox.failed(eng.r, max(1, args.limit))
    targets: dict[str, str] = {}
    for row in rows:
        if row["sub"] not in targets:
            sub = subscription.load(eng.r, row["sub"])
            targets[row["sub"]] = sub.describe() if sub else "(expired subscription)"
        row["target"] = targets[row["sub"]]
        row.pop("event", None)
    emit(args, rows, "\n".join(
        f"{r['event_id']:<28} {r['type']:<20} attempts={r['attempts']:<3} "
        f"{r['target']}  error={r['error']}" for r in rows) or "no parked callback events")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    eng = engine()
    if args.job:
        n = replay.replay_job(eng, args.job)
        emit(args, {"job": args.job, "events": n}, f"job {args.job}: {n} event(s) queued")
        return 0
    if not args.since:
        raise ValidationError("give --job or --since", field="job")
    until = _when(args.until) if args.until else eng.clock()
    done = replay.replay_range(eng, _when(args.since), until)
    emit(args, done, f"{len(done)} job(s), {sum(done.values())} event(s) queued")
    return 0


def _when(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ValidationError(f"not a time: {text!r} (ISO 8601 or epoch seconds)",
                              field="since") from None
