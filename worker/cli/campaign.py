"""`smsq campaign ...` (and, via worker.cli.contacts, `smsq suppress ...` / `smsq group ...`).

    smsq campaign create --csv people.csv --text "Hello {name}" --account smsru \\
        --start 2025-06-01T10:00+03:00 --window 09:00-21:00
    smsq campaign show <id> --follow
    smsq campaign report <id> --out report.csv

Registered into `smsq` by worker.cli.main (EXTRA_COMMANDS).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from worker.api import engine
from worker.cli.output import Add, bar, emit, subcommands
from worker.ledger.lifecycle import Status as S

FINAL = ("completed", "cancelled", "failed")
PENDING = (S.SCHEDULED, S.QUEUED, S.SENDING)  # message states: not on the wire yet


def register(add: Add) -> None:
    sub = subcommands(add, "campaign", "scheduled campaigns: create, list, show, pause, "
                      "resume, cancel, report")
    p = sub("create", cmd_create, "import an audience and schedule a campaign")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--csv", help="CSV file: a header row naming the phone column and fields")
    src.add_argument("--group", help="a stored contact group (smsq group ...)")
    src.add_argument("--gatum-group", type=int, action="append",
                     help="a Gatum server-side group id (sent through Gatum's send-bulk)")
    p.add_argument("--gatum-exclude", type=int, action="append", help="Gatum group to exclude")
    p.add_argument("--text", required=True, help="template, e.g. 'Hello {name}'")
    p.add_argument("--account", help="gateway account")
    p.add_argument("--route", help="route name (failover chain)")
    p.add_argument("--sender", help="sender name")
    p.add_argument("--start", help="ISO 8601 time, epoch seconds, 'now' or '+10m' (default now)")
    p.add_argument("--window", help="daily send window in the recipient's zone, e.g. 09:00-21:00")
    p.add_argument("--zone", help="IANA zone for numbers whose own zone is ambiguous")
    p.add_argument("--rate", type=float, help="cap in messages per second")
    p.add_argument("--failure-threshold", type=float, help="auto-pause above this failed share")
    p.add_argument("--phone-column", help="the CSV column with the numbers")
    p.add_argument("--encoding", help="CSV encoding (default: UTF-8, else cp1251, detected)")
    p.add_argument("--id", dest="campaign_id", help="your own campaign id")
    p.add_argument("--draft", action="store_true", help="import only; schedule later")
    sub("list", cmd_list, "campaigns, newest first")
    p = sub("show", cmd_show, "a campaign's settings and live progress")
    p.add_argument("id")
    p.add_argument("--follow", action="store_true", help="redraw progress until it is done")
    p = sub("schedule", cmd_schedule, "schedule a draft (or move a scheduled start)")
    p.add_argument("id")
    p.add_argument("--start", help="as for create (default now)")
    for name, text in (("pause", "stop releasing new messages"),
                       ("resume", "continue a paused campaign"),
                       ("cancel", "cancel everything not yet sent")):
        sub(name, _action(name), text).add_argument("id")
    p = sub("report", cmd_report, "CSV, one row per recipient: outcome, gateway id, cost, times")
    p.add_argument("id")
    p.add_argument("--out", help="file to write (default stdout)")


def cmd_create(args: argparse.Namespace) -> int:
    from worker.campaigns import service as campaigns

    keys = ("csv", "group", "gatum_group", "gatum_exclude", "account", "route", "sender",
            "start", "window", "zone", "rate", "failure_threshold", "phone_column",
            "encoding", "campaign_id")
    kw: dict[str, Any] = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
    show_bar = sys.stderr.isatty() and not args.json
    progress = (lambda done, total: bar("importing", done, total, unit="bytes")) \
        if show_bar else None
    data = campaigns.create(engine(), text=args.text, draft=args.draft, progress=progress,
                            **kw)
    if show_bar:
        print(file=sys.stderr)
    emit(args, data, _summary(data))
    return 0


def _summary(d: dict[str, Any]) -> str:
    counts = ", ".join(f"{k}={v}" for k, v in sorted(d["counts"].items())) or "none"
    start = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(d["start"])) \
        if d.get("start") else "-"
    lines = [f"campaign {d['id']}: {d['status']}" + (f" ({d['reason']})" if d.get("reason")
                                                     else ""),
             f"  recipients {d['total']}: {counts}",
             f"  start {start}  window {d.get('window') or 'any time'}  account "
             f"{d.get('route')}"]
    if "invalid" in d:
        lines.append(f"  invalid rows {d['invalid']}  duplicates {d['duplicates']}  "
                     f"suppressed {d['suppressed']}  capped {d.get('capped', 0)}  "
                     f"released {d['released']}")
        lines.append(f"  segments {d.get('segments')} (max {d.get('max_segments')} per "
                     f"message)  estimated cost {d.get('estimated_cost')}")
        lines += [f"  rejected: {p}" for p in d.get("problems", [])[:5]]
        if d.get("gatum"):
            lines.append(f"  gatum: {d['gatum']}")
    return "\n".join(lines)


def cmd_list(args: argparse.Namespace) -> int:
    from worker.campaigns import service as campaigns

    rows = campaigns.list_campaigns(engine())
    emit(args, rows, "\n".join(
        f"{r['id']:<14} {r['status']:<10} {r['total']:>9}  "
        + ", ".join(f"{k}={v}" for k, v in sorted(r["counts"].items())) for r in rows)
        or "no campaigns")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from worker.campaigns import service as campaigns

    eng = engine()
    data = campaigns.show(eng, args.id)
    if not args.follow:
        emit(args, data, _summary(data))
        return 0
    while True:
        counts, total = data["counts"], max(data["total"], 1)
        done = total - sum(counts.get(s, 0) for s in PENDING)
        bar(f"{args.id} {data['status']}", done, total, unit="messages",
            extra=", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
        if data["status"] in FINAL and not any(counts.get(s) for s in PENDING):
            print(file=sys.stderr)
            emit(args, data, _summary(data))
            return 0
        time.sleep(1.0)
        data = campaigns.show(eng, args.id)


def cmd_schedule(args: argparse.Namespace) -> int:
    from worker.campaigns import service as campaigns

    data = campaigns.schedule(engine(), args.id, args.start)
    emit(args, data, _summary(data))
    return 0


def _action(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from worker.campaigns import service as campaigns

        data = getattr(campaigns, name)(engine(), args.id)
        emit(args, data, _summary(data))
        return 0

    return run


def cmd_report(args: argparse.Namespace) -> int:
    from worker.campaigns import service as campaigns

    eng = engine()
    as_json = bool(getattr(args, "json", False))
    if not args.out:
        campaigns.report(eng, args.id, sys.stdout, as_json=as_json)
        return 0
    campaigns.show(eng, args.id)  # an unknown campaign leaves no file behind
    with open(args.out, "w", encoding="utf-8", newline="") as out:
        rows = campaigns.report(eng, args.id, out, as_json=as_json)
    print(f"{rows} row(s) written to {args.out}", file=sys.stderr)
    return 0
