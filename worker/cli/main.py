"""smsq: queue SMS through five gateways, follow their status, run campaigns and the sandbox.

Every command takes `--json` for machine-readable output. Errors print one
line naming the problem and exit 2 (bad input) or 1 (anything else).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from typing import Any

from providers.errors import SmsqError, ValidationError
from worker.cli import callbacks, campaign, contacts, failures, ops, sandbox, workers
from worker.cli.output import Handler, emit, port_number
from worker.engine import DEFAULT_LANE, LANES


def cmd_send(args: argparse.Namespace) -> int:
    from worker import api

    recipients = [r for chunk in args.to for r in chunk.split(",") if r.strip()]
    if args.file:
        with open(args.file, encoding="utf-8", errors="replace") as fh:
            recipients += [line.strip() for line in fh if line.strip()]
    common: dict[str, Any] = {"account": args.account, "route": args.route,
                              "sender": args.sender, "lane": args.lane,
                              "valid_for": args.valid_for}
    try:
        if args.dry_run:
            est = api.estimate(recipients, args.text, **common)
        else:
            result = api.submit(recipients, args.text, idempotency_key=args.idempotency_key,
                                job_id=args.job_id, **common)
    except ValidationError as exc:
        raise _as_typed(exc, recipients) from None
    if args.dry_run:
        emit(args, {"dry_run": True, "messages": len(est.segments), **est.as_dict()},
             f"dry run: {len(est.segments)} message(s), {est.describe()}; nothing queued "
             "(per-recipient caps are counted only when sent)")
        return 0
    est, refused = result.estimate, result.rejected
    why = ", ".join(sorted(set(refused.values())))
    emit(args, {"job_id": result.job_id, "ids": result.ids, "duplicate": result.duplicate,
                "rejected": refused, **est.as_dict()},
         f"job {result.job_id}: {len(result.ids) - len(refused)} message(s) queued"
         + (f", {len(refused)} rejected ({why})" if refused else "")
         + (" (already submitted with this idempotency key)" if result.duplicate else "")
         + f"; {est.describe()}\n"
         + "\n".join(i + (f"  rejected: {refused[i]}" if i in refused else "")
                     for i in result.ids))
    return 0


def _as_typed(exc: ValidationError, recipients: list[str]) -> ValidationError:
    """The user typed the number: show it as typed (logs and Redis keep it masked)."""
    found = re.search(r"\(recipient #(\d+)\)$", exc.message)
    if found is None or not 0 < int(found.group(1)) <= len(recipients):
        return exc
    typed = recipients[int(found.group(1)) - 1]
    return ValidationError(f"{exc.message}: you typed {typed[:40]!r}", field=exc.field)


def cmd_status(args: argparse.Namespace) -> int:
    from worker import api

    if args.job:
        data = api.job_status(args.job)
        counts = ", ".join(f"{k}={v}" for k, v in sorted(data["counts"].items()))
        emit(args, data, f"job {args.job}: {data['total']} message(s): {counts}"
             + (f"\nerror: {data['error']}" if data.get("error") else ""))
        return 0
    if not args.ids:
        raise ValidationError("give message ids or --job", field="ids")
    rows = api.get_status(args.ids)
    lines = [f"{r['id']}  {r['status']:<11} {r['recipient'] or '':<16} {r['account'] or '':<8}"
             f" {r['lane']:<13}"
             f" attempts={r['attempts']} raw={r['raw_code'] or '-'}"
             + (f" reason={r['reason']}" if r.get("reason") else "")
             + (f" error={r['last_error']['message']}" if r.get("last_error") else "")
             for r in rows]
    emit(args, rows, "\n".join(lines))
    return 0


def cmd_balance(args: argparse.Namespace) -> int:
    from providers import build_provider
    from worker.settings import get

    cfg = get()
    names = [args.account] if args.account else list(cfg.accounts)
    out = {}
    for name in names:
        try:
            bal = build_provider(cfg.account(name)).balance()
            out[name] = {"amount": str(bal.amount), "currency": bal.currency}
        except SmsqError as exc:
            out[name] = {"error": str(exc)}
    emit(args, out, "\n".join(f"{n}: {v.get('amount', '')} {v.get('currency') or ''}"
                              f"{v.get('error', '')}" for n, v in out.items()))
    return 0


def cmd_providers(args: argparse.Namespace) -> int:
    from providers import REGISTRY
    from worker.settings import load

    cfg = load()
    rows: list[dict[str, Any]] = []
    for name, cls in REGISTRY.items():
        accounts = [a.name for a in cfg.accounts.values() if a.provider == name]
        rows.append({"provider": name, "accounts": accounts, "base_url": cls.default_base_url,
                     "max_recipients": cls.max_recipients, "max_status_ids": cls.max_status_ids,
                     "rate_per_second": cls.default_rate, "reports": cls.reports,
                     "credentials": [f"SMSQ_{name.upper()}_{f.upper()}"
                                     for f in cls.credential_fields]})
    emit(args, rows, "\n".join(
        f"{r['provider']:<8} accounts={','.join(r['accounts']) or '-':<10} "
        f"batch={r['max_recipients']:<4} status_batch={r['max_status_ids']:<4} "
        f"rate={r['rate_per_second'] or '-'}/s  settings: {' '.join(r['credentials'])}"
        for r in rows))
    return 0


def cmd_webhooks(args: argparse.Namespace) -> int:
    from providers import REGISTRY
    from worker.engine import Engine
    from worker.ops.logs import configure
    from worker.ops.serve import run

    configure()
    engine = Engine()
    if not engine.cfg.webhook_token:
        raise ValidationError("SMSQ_WEBHOOK_TOKEN is not set", field="SMSQ_WEBHOOK_TOKEN")
    pushing = ",".join(name for name, cls in REGISTRY.items() if cls.reports)
    host = args.host if args.host is not None else engine.cfg.webhook_host

    def announce(port: int) -> None:
        print(f"smsq webhooks on http://{host}:{port}/<token>/{{{pushing}}}", flush=True)

    run(engine, args.host, args.port, announce)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from worker.local.demo import run

    return run(messages=args.messages, json_out=args.json)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smsq", description=(__doc__ or "smsq").split("\n")[0],
        epilog="Settings come from SMSQ_* environment variables (see deploy/env.example); "
               "`smsq COMMAND --help` for each command.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(handler=handler)
        return p

    p = add("send", cmd_send, "queue one text to one or many recipients")
    p.add_argument("--to", action="append", default=[], help="recipient(s), comma-separated; "
                   "repeatable")
    p.add_argument("--file", help="a file with one recipient per line")
    p.add_argument("--text", required=True, help="the message text")
    p.add_argument("--account", help="gateway account (e.g. smsru)")
    p.add_argument("--route", help="a route name from SMSQ_ROUTES (failover chain)")
    p.add_argument("--sender", help="sender name")
    p.add_argument("--idempotency-key", help="the same key never sends twice")
    p.add_argument("--job-id", help="your own job id (A-Z a-z 0-9 _ -)")
    p.add_argument("--lane", choices=LANES, default=DEFAULT_LANE,
                   help="otp / transactional go ahead of bulk on every account")
    p.add_argument("--valid-for", type=float, help="seconds; not sent later than that "
                   "(ends expired); otp default SMSQ_OTP_VALID_FOR")
    p.add_argument("--dry-run", action="store_true", help="check the input and print the "
                   "SMS segments and estimated cost; queue nothing")
    p = add("status", cmd_status, "show messages' status, or a job's counts")
    p.add_argument("ids", nargs="*", help="message ids")
    p.add_argument("--job", help="a job id")
    p = add("balance", cmd_balance, "ask each configured account's gateway for its balance")
    p.add_argument("--account")
    add("providers", cmd_providers, "list gateways, configured accounts and their settings")
    sandbox.register(add)
    p = add("webhooks", cmd_webhooks, "serve the delivery-report receiver (waitress; "
            "SMSQ_WEBHOOK_* settings)")
    p.add_argument("--host", help="bind address (default SMSQ_WEBHOOK_HOST, 127.0.0.1)")
    p.add_argument("--port", type=port_number, help="port (default SMSQ_WEBHOOK_PORT, 8088; "
                   "0 = a free port, printed)")
    p = add("demo", cmd_demo, "run the whole pipeline end to end on a private Redis + sandbox")
    p.add_argument("--messages", type=int, default=2500)
    for group in (ops, campaign, contacts, callbacks, workers):
        group.register(add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    return failures.run(args.handler, args)


def entry() -> int:
    """The `smsq` command: logs go to stderr (warnings and up; webhooks and sandbox set their
    own level), so what a command prints on stdout, `--json` included, is only its output.
    `main()` leaves logging alone for callers that configured their own."""
    from worker.ops.logs import configure

    configure(level=logging.WARNING)
    return main()


if __name__ == "__main__":
    sys.exit(entry())
